from celery import shared_task

from . import exports, rounds, services
from .models import Project


@shared_task(name="annotation.tasks.expire_stale_assignments")
def expire_stale_assignments() -> int:
    return services.assignments_expire_stale()


@shared_task(
    bind=True,
    name="annotation.tasks.generate_round",
    acks_late=True,
    max_retries=rounds.MAX_ATTEMPTS,
)
def generate_round(self, round_id: int) -> dict:
    """Bulk generation of a round (default queue: the GPU work is on the model server).

    Prompts that failed this pass stay pending with an attempt counted; the task comes back
    for them with backoff until each is done or has used its attempts (then reported failed).
    """
    result = rounds.round_generate(round_id=round_id)
    if result.waiting:  # models_serving's version_ready signal queues this task again
        return {"done": result.done, "failed": result.failed, "waiting": result.pending}
    if result.pending:
        raise self.retry(countdown=min(300, 10 * 2**self.request.retries))
    return {"done": result.done, "failed": result.failed}


@shared_task(name="annotation.tasks.top_up_buffers")
def top_up_buffers() -> int:
    """Keep each project's configured number of ready tasks generated ahead of annotators."""
    projects = Project.objects.filter(buffer_size__gt=0, buffer_model_version__isnull=False)
    return sum(
        rounds.buffer_top_up(project=p) for p in projects.select_related("buffer_model_version")
    )


@shared_task(name="annotation.tasks.run_export", acks_late=True)
def run_export(snapshot_id: int) -> int | None:
    """Build a queued export snapshot; a redelivered message finds it taken and does nothing."""
    snapshot = exports.export_run(snapshot_id=snapshot_id)
    return snapshot.row_count if snapshot else None


@shared_task(name="annotation.tasks.close_due_rounds")
def close_due_rounds() -> list[int]:
    """Close rounds at their target number of judgments or their deadline."""
    return rounds.rounds_close_due()
