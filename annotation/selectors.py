from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, QuerySet
from django.utils import timezone

from .access import projects_for
from .likert import FIVE_POINT_SCALE
from .models import Assignment, PairwiseJudgment, Project, Role, Task


def assignment_pending_for(annotator: AbstractBaseUser) -> Assignment | None:
    return (
        Assignment.objects.filter(
            annotator=annotator, status=Assignment.Status.PENDING, expires_at__gt=timezone.now()
        )
        .order_by("claimed_at")
        .first()
    )


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
        "scale": [{"value": v, "label": label} for v, label in FIVE_POINT_SCALE],
        "expires_at": assignment.expires_at,
    }


def judgments_for_export(project: Project) -> QuerySet[PairwiseJudgment]:
    return (
        PairwiseJudgment.objects.filter(task__project=project)
        .select_related("task__prompt", "chosen", "rejected")
        .order_by("id")
    )
