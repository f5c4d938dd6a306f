from django.contrib.auth.models import User
from django.db.models import QuerySet

from annotation.access import AccessDenied, projects_for
from annotation.models import Role

from .models import TrainingJob, TrainingTrigger


def training_jobs_visible_to(user: User) -> QuerySet[TrainingJob]:
    """Jobs of the projects where the caller is a researcher or admin."""
    projects = projects_for(user, min_role=Role.RESEARCHER)
    return TrainingJob.objects.filter(project__in=projects).select_related("project")


def access_training_job_by_id(user: User, job_id: int) -> TrainingJob:
    # Another project's job is indistinguishable from a missing one.
    job = training_jobs_visible_to(user).filter(pk=job_id).first()
    if job is None:
        raise AccessDenied(f"no training job {job_id}")
    return job


def access_training_trigger_by_id(user: User, trigger_id: int) -> TrainingTrigger:
    """Triggers of the projects where the caller is a researcher; others look missing."""
    projects = projects_for(user, min_role=Role.RESEARCHER)
    found = TrainingTrigger.objects.filter(project__in=projects, pk=trigger_id)
    trigger = found.select_related("project").first()
    if trigger is None:
        raise AccessDenied(f"no training trigger {trigger_id}")
    return trigger
