from celery import shared_task

from . import services


@shared_task(name="training_jobs.tasks.run_training_job")
def run_training_job(job_id: int) -> None:
    # Safe to deliver twice (acks_late): only the first delivery claims the queued row.
    services.training_job_run(job_id=job_id)


@shared_task(name="training_jobs.tasks.reap_stale_jobs")
def reap_stale_jobs() -> int:
    return services.training_jobs_reap_stale()
