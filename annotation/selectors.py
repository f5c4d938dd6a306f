from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, F, QuerySet
from django.db.models.functions import Length

from . import queue_sql
from .access import projects_for
from .answers import LABELS
from .models import Assignment, Completion, Judgment, Project, Role, Task
from .quality import PairJudgment


def task_claimable_ids(
    annotator: User, *, project: Project | None = None, limit: int = 20
) -> list[int]:
    """Tasks with a free slot that this annotator has never been assigned, oldest first.

    The ORM statement of what ``queue_sql.claim_slot`` claims; tests compare them.
    """
    return list(_claimable(annotator, project).values_list("id", flat=True)[:limit])


def _claimable(annotator: User, project: Project | None) -> QuerySet[Task]:
    projects = projects_for(annotator, min_role=Role.ANNOTATOR)
    if project is not None:
        projects = projects.filter(pk=project.pk)
    return (
        Task.objects.filter(
            project__in=projects,
            kind=Task.Kind.PAIRWISE,
            slots_taken__lt=F("overlap"),
            is_gold=False,
            reserved_for__isnull=True,
        )
        .exclude(assignments__annotator=annotator)
        .order_by("id")
    )


def gold_task_ids_for(annotator: User, project: Project, limit: int = 20) -> list[int]:
    """Gold items this annotator has not seen; they are shared, so they hold no slots."""
    gold = Task.objects.filter(project=project, is_gold=True).exclude(
        assignments__annotator=annotator
    )
    return list(gold.order_by("id").values_list("id", flat=True)[:limit])


def judgment_to_reask(annotator: User, project: Project) -> Judgment | None:
    """One of the annotator's own judged pairs that was never re-asked to them."""
    return (
        Judgment.objects.filter(
            annotator=annotator,
            task__project=project,
            kind="pairwise",
            both_bad=False,
            task__is_gold=False,
            task__reask_of__isnull=True,
            task__kind=Task.Kind.PAIRWISE,
        )
        .exclude(task__reasks__reserved_for=annotator)
        .select_related("task")
        .order_by("id")
        .first()
    )


def assignment_display(assignment: Assignment) -> dict:
    """What an annotator sees: the prompt and candidates labelled A/B, never model names."""
    view = queue_sql.task_view(task_id=assignment.task_id)
    project = view.project
    return {
        "id": assignment.pk,
        "project": project,
        "prompt": view.prompt,
        "candidates": [
            {"label": LABELS[i], "content": view.contents[cid]}
            for i, cid in enumerate(assignment.shown_order)
        ],
        "interface": view.interface,
        "scale": [p.as_dict() for p in project.scale()],
        "allow_both_bad": project.allow_both_bad,
        "rating_rubric": project.rating_rubric,
        "rating_aspects": project.rating_aspects,
        "guidelines_version": project.guidelines_version,
        "expires_at": assignment.expires_at,
    }


def quality_records(project: Project) -> list[PairJudgment]:
    """Judgments as plain records in canonical orientation (lower completion id first)."""
    judgments = Judgment.objects.filter(task__project=project).order_by("id")
    rows = list(
        judgments.values(
            "task__is_gold",
            "task__gold_answer",
            "task__reask_of_id",
            "task_id",
            "annotator_id",
            "shown_order",
            "chosen_id",
            "strength",
            "created_at",
            "time_spent_ms",
        )
    )
    ids = {cid for row in rows for cid in row["shown_order"]}
    lengths = dict(
        Completion.objects.filter(pk__in=ids).annotate(n=Length("content")).values_list("pk", "n")
    )
    return [_record(row, lengths) for row in rows]


def _record(row: Mapping[str, Any], lengths: dict[int, int]) -> PairJudgment:
    first, second = sorted(row["shown_order"])
    chosen = row["chosen_id"]
    sign = 0 if chosen is None else (1 if chosen == first else -1)
    return PairJudgment(
        task_id=row["task_id"],
        annotator_id=row["annotator_id"],
        first_id=first,
        second_id=second,
        preference=sign * row["strength"],
        shown_first_id=row["shown_order"][0],
        first_len=lengths.get(first, 0),
        second_len=lengths.get(second, 0),
        created_at=row["created_at"],
        time_spent_ms=row["time_spent_ms"],
        gold_preference=_gold_sign(row, first) if row["task__is_gold"] else None,
        reask_of_task_id=row["task__reask_of_id"],
    )


def _gold_sign(row: Mapping[str, Any], first: int) -> int:
    answer = row["task__gold_answer"] or {}
    if answer.get("tie"):
        return 0
    return 1 if answer.get("chosen") == first else -1


# Client-chosen filters and orderings are looked up here, never passed to the ORM as given
# (Label Studio CVE-2023-47117 leaked password hashes through client-supplied filters).
TASK_FILTERS = {"interface": "interface", "kind": "kind", "is_gold": "is_gold"}
TASK_ORDERINGS = {"id", "-id", "created_at", "-created_at", "slots_taken", "-slots_taken"}


def tasks_for_researchers(
    project: Project, *, filters: dict[str, object], ordering: str
) -> QuerySet[Task]:
    lookups = {TASK_FILTERS[name]: value for name, value in filters.items()}
    return (
        Task.objects.filter(project=project, **lookups)
        .select_related("prompt")
        .prefetch_related("candidates__completion")
        .annotate(n_judgments=Count("judgments"))
        .order_by(ordering)
    )
