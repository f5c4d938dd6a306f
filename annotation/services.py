import random
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from models_serving.client import Candidate

from . import selectors
from .likert import FIVE_POINT_SCALE, preference_from_choice
from .models import Assignment, Completion, PairwiseJudgment, Project, Prompt, Task, TaskCandidate


class InvalidChoice(ValueError):
    """The choice is not a point of the assignment's scale."""


class JudgmentConflict(Exception):
    """The assignment can no longer take this judgment (expired, or judged with another key)."""


def assignments_expire_stale(*, now=None) -> int:
    """Return expired leases' slots to the pool. Safe to run concurrently."""
    now = now or timezone.now()
    expired = 0
    stale = Assignment.objects.filter(status=Assignment.Status.PENDING, expires_at__lte=now)
    for assignment_id, task_id in stale.values_list("id", "task_id"):
        with transaction.atomic():
            # The conditional UPDATE makes a concurrent expirer or a racing submit a no-op.
            changed = Assignment.objects.filter(
                pk=assignment_id, status=Assignment.Status.PENDING
            ).update(status=Assignment.Status.EXPIRED)
            if changed == 1:
                Task.objects.filter(pk=task_id, slots_taken__gt=0).update(
                    slots_taken=F("slots_taken") - 1
                )
                expired += 1
    return expired


def assignment_claim_next(
    *, annotator: AbstractBaseUser, project: Project | None = None, rng: random.Random | None = None
) -> Assignment | None:
    """Hand the annotator one task: their pending one if any, else claim a free slot."""
    pending = selectors.assignment_pending_for(annotator)
    if pending is not None:
        return pending
    assignments_expire_stale()
    rng = rng or random.Random()
    for task_id in selectors.task_claimable_ids(annotator, project=project):
        try:
            with transaction.atomic():
                claimed = Task.objects.filter(pk=task_id, slots_taken__lt=F("overlap")).update(
                    slots_taken=F("slots_taken") + 1
                )
                if claimed != 1:
                    continue  # someone else took the last slot first
                return _assignment_create(task_id=task_id, annotator=annotator, rng=rng)
        except IntegrityError:
            continue  # a concurrent request of the same annotator got this task
    return None


def _assignment_create(
    *, task_id: int, annotator: AbstractBaseUser, rng: random.Random
) -> Assignment:
    task = Task.objects.select_related("project").get(pk=task_id)
    candidate_ids = list(
        TaskCandidate.objects.filter(task=task)
        .order_by("position")
        .values_list("completion_id", flat=True)
    )
    # Randomised display order guards the data against position bias.
    shown_order = rng.sample(candidate_ids, k=len(candidate_ids))
    now = timezone.now()
    return Assignment.objects.create(
        task=task,
        annotator=annotator,
        shown_order=shown_order,
        claimed_at=now,
        expires_at=now + timedelta(seconds=task.project.lease_seconds),
    )


@dataclass(frozen=True)
class SubmitResult:
    judgment: PairwiseJudgment
    created: bool


def judgment_submit(
    *,
    assignment: Assignment,
    choice: int,
    idempotency_key: str,
    time_spent_ms: int = 0,
    comment: str = "",
) -> SubmitResult:
    """Store the annotator's verdict once; a repeat with the same key returns the first one.

    A submit after the lease expired is refused (409) even if nobody else took the task
    yet: the slot may already be promised to another annotator.
    """
    valid_choices = {value for value, _ in FIVE_POINT_SCALE}
    if choice not in valid_choices:
        raise InvalidChoice(f"choice must be one of {sorted(valid_choices)}")
    existing = _judgment_by_key(assignment.annotator_id, idempotency_key)
    if existing is not None:
        return _repeat_or_conflict(existing, assignment)
    try:
        with transaction.atomic():
            locked = (
                Assignment.objects.select_for_update()
                .select_related("task__project")
                .get(pk=assignment.pk)
            )
            existing = _judgment_by_key(locked.annotator_id, idempotency_key)
            if existing is not None:
                return _repeat_or_conflict(existing, locked)
            if locked.status == Assignment.Status.SUBMITTED:
                raise JudgmentConflict("this pair has already been judged")
            if locked.is_expired():
                raise JudgmentConflict("the time reserved for this pair ran out; load the next one")
            judgment = _judgment_create(locked, choice, idempotency_key, time_spent_ms, comment)
            locked.status = Assignment.Status.SUBMITTED
            locked.save(update_fields=["status"])
            return SubmitResult(judgment=judgment, created=True)
    except IntegrityError:
        # Lost a race against a concurrent submit with the same key (SQLite has no row lock).
        existing = _judgment_by_key(assignment.annotator_id, idempotency_key)
        if existing is None:
            raise
        return _repeat_or_conflict(existing, assignment)


def _judgment_by_key(annotator_id: int, key: str) -> PairwiseJudgment | None:
    return PairwiseJudgment.objects.filter(annotator_id=annotator_id, idempotency_key=key).first()


def _repeat_or_conflict(existing: PairwiseJudgment, assignment: Assignment) -> SubmitResult:
    if existing.assignment_id != assignment.pk:
        raise JudgmentConflict("idempotency_key was already used for another assignment")
    return SubmitResult(judgment=existing, created=False)


def _judgment_create(
    assignment: Assignment, choice: int, key: str, time_spent_ms: int, comment: str
) -> PairwiseJudgment:
    preference = preference_from_choice(choice, assignment.shown_order)
    return PairwiseJudgment.objects.create(
        assignment=assignment,
        task_id=assignment.task_id,
        annotator_id=assignment.annotator_id,
        choice=choice,
        shown_order=assignment.shown_order,
        chosen_id=preference.chosen_id,
        rejected_id=preference.rejected_id,
        strength=preference.strength,
        comment=comment,
        time_spent_ms=time_spent_ms,
        guidelines_version=assignment.task.project.guidelines_version,
        idempotency_key=key,
    )


def prompt_create(*, project: Project, messages: list[dict], external_id: str = "") -> Prompt:
    if external_id:
        prompt, _ = Prompt.objects.get_or_create(
            project=project, external_id=external_id, defaults={"messages": messages}
        )
        return prompt
    return Prompt.objects.create(project=project, messages=messages)


def completion_store(*, prompt: Prompt, candidate_index: int, candidate: Candidate) -> Completion:
    """Persist one generated candidate; storing the same index twice keeps the first."""
    completion, _ = Completion.objects.get_or_create(
        prompt=prompt,
        candidate_index=candidate_index,
        defaults={
            "content": candidate.content,
            "model_name": candidate.model,
            "sampling_params": candidate.sampling_params,
            "seed": candidate.seed,
            "finish_reason": candidate.finish_reason,
            "prompt_tokens": candidate.prompt_tokens,
            "completion_tokens": candidate.completion_tokens,
            "latency_ms": candidate.latency_ms,
        },
    )
    return completion


def task_create_pair(*, prompt: Prompt) -> Task | None:
    """One pairwise task over the prompt's first two candidates, created once."""
    existing = Task.objects.filter(prompt=prompt).first()
    if existing is not None:
        return existing
    completions = list(prompt.completions.order_by("candidate_index")[:2])
    if len(completions) < 2:
        return None
    with transaction.atomic():
        task = Task.objects.create(
            project=prompt.project, prompt=prompt, overlap=prompt.project.overlap
        )
        TaskCandidate.objects.bulk_create(
            TaskCandidate(task=task, completion=c, position=i) for i, c in enumerate(completions)
        )
    return task
