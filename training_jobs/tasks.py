from celery import shared_task

from . import services, triggers


@shared_task(name="training_jobs.tasks.run_training_job")
def run_training_job(job_id: int) -> None:
    # Safe to deliver twice (acks_late): only the first delivery claims the queued row.
    services.training_job_run(job_id=job_id)


@shared_task(name="training_jobs.tasks.reap_stale_jobs")
def reap_stale_jobs() -> int:
    return services.training_jobs_reap_stale()


@shared_task(name="training_jobs.tasks.run_trigger")
def run_trigger(trigger_id: int) -> None:
    # Beat's PeriodicTask calls this (default queue). Safe twice: a second run finds the first
    # one's jobs queued and records that instead of starting more.
    triggers.trigger_run(trigger_id=trigger_id, scheduled=True)
