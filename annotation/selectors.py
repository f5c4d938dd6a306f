from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, QuerySet
from django.utils import timezone

from .access import projects_for
from .models import Assignment, PairwiseJudgment, Project, Role, Task


def assignments_pending_for(
    annotator: AbstractBaseUser, *, project: Project | None = None
) -> list[Assignment]:
    """The annotator's live leases, oldest first."""
    pending = Assignment.objects.filter(
        annotator=annotator, status=Assignment.Status.PENDING, expires_at__gt=timezone.now()
    ).select_related("task__project")
    if project is not None:
        pending = pending.filter(task__project=project)
    return list(pending.order_by("claimed_at")[:50])


def task_claimable_ids(
    annotator: AbstractBaseUser, *, project: Project | None = None, limit: int = 20
) -> list[int]:
    """Tasks with a free slot that this annotator has never been assigned, oldest first."""
    projects = projects_for(annotator, min_role=Role.ANNOTATOR)
    if project is not None:
        projects = projects.filter(pk=project.pk)
    tasks: QuerySet[Task] = (
        Task.objects.filter(project__in=projects, slots_taken__lt=F("overlap"))
        .exclude(assignments__annotator=annotator)
        .order_by("id")
    )
    return list(tasks.values_list("id", flat=True)[:limit])


def assignment_display(assignment: Assignment) -> dict:
    """What an annotator sees: the prompt and candidates labelled A/B, never model names."""
    task = assignment.task
    contents = dict(task.completions.values_list("id", "content"))
    labels = "ABCDEFGH"
    return {
        "id": assignment.pk,
        "project": task.project,
        "prompt": task.prompt.messages,
        "candidates": [
            {"label": labels[i], "content": contents[cid]}
            for i, cid in enumerate(assignment.shown_order)
        ],
        "scale": [p.as_dict() for p in task.project.scale()],
        "allow_both_bad": task.project.allow_both_bad,
        "guidelines_version": task.project.guidelines_version,
        "expires_at": assignment.expires_at,
    }


def judgments_for_export(project: Project) -> QuerySet[PairwiseJudgment]:
    return (
        PairwiseJudgment.objects.filter(task__project=project)
        .select_related("task__prompt", "chosen", "rejected")
        .order_by("id")
    )
