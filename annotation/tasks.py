from celery import shared_task

from . import services


@shared_task(name="annotation.tasks.expire_stale_assignments")
def expire_stale_assignments() -> int:
    return services.assignments_expire_stale()
