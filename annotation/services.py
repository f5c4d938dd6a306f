import random
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from models_serving.client import Candidate

from . import selectors
from .answers import FLAGS, Answer, InvalidInput, Rules, judgment_fields
from .assignment_policy import draw_source, swapped
from .likert import scale_points
from .models import (
    Assignment,
    Completion,
    GuidelinesVersion,
    Interface,
    Judgment,
    Project,
    Prompt,
    Task,
    TaskCandidate,
)
from .prompt_import import LineError, parse_prompt_file

__all__ = ["FLAGS", "InvalidInput"]  # re-exported for views and serializers


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
    """Hand the annotator one task: their oldest pending one if any, else claim a free slot.

    Resuming instead of claiming again is what stops task hoarding (one lease per annotator
    unless the project allows more for clients that prefetch).
    """
    leases = selectors.assignments_pending_for(annotator, project=project)
    if leases and len(leases) >= min(a.task.project.max_pending for a in leases):
        return leases[0]
    rng = rng or random.Random()
    claimed = _claim_gold_or_reask(annotator, project, rng) or _claim_free_slot(
        annotator, project, rng
    )
    if claimed is None and assignments_expire_stale():
        # Beat returns expired leases every minute; an empty queue should not wait for it.
        claimed = _claim_free_slot(annotator, project, rng)
    return claimed or (leases[0] if leases else None)


def _claim_gold_or_reask(
    annotator: AbstractBaseUser, project: Project | None, rng: random.Random
) -> Assignment | None:
    """Interleave gold items and swapped re-asks at the project's rates."""
    if project is None:
        project = selectors.project_mixing_quality_checks(annotator)
    if project is None or (project.gold_rate <= 0 and project.reask_rate <= 0):
        return None
    gold_ids = selectors.gold_task_ids_for(annotator, project) if project.gold_rate > 0 else []
    original = selectors.judgment_to_reask(annotator, project) if project.reask_rate > 0 else None
    source = draw_source(
        rng,
        gold_rate=project.gold_rate,
        reask_rate=project.reask_rate,
        gold_available=bool(gold_ids),
        reask_available=original is not None,
    )
    try:
        with transaction.atomic():  # a failed insert must not poison an outer transaction
            if source == "gold":
                task_id = rng.choice(gold_ids)
                return _assignment_create(task_id=task_id, annotator=annotator, rng=rng)
            if source == "reask":
                assert original is not None
                return _reask_create(original, annotator)
    except IntegrityError:
        return None  # a concurrent request of the same annotator got it first
    return None


@transaction.atomic
def _reask_create(original: Judgment, annotator: AbstractBaseUser) -> Assignment:
    source = original.task
    task = Task.objects.create(
        project_id=source.project_id,
        prompt_id=source.prompt_id,
        interface=source.interface,
        overlap=1,
        slots_taken=1,
        reask_of=source,
        reserved_for=annotator,
    )
    TaskCandidate.objects.bulk_create(
        TaskCandidate(task=task, completion_id=c.completion_id, position=c.position)
        for c in source.candidates.all()
    )
    hold = timedelta(seconds=source.project.lease_seconds)
    return assignment_lease(
        task=task, annotator=annotator, shown_order=swapped(original.shown_order), hold=hold
    )


def task_mark_gold(*, task: Task, chosen_completion_id: int | None) -> Task:
    """Make a pairwise task a gold item with a known answer (None = a tie is right)."""
    if task.interface != Interface.PAIRWISE or task.kind != Task.Kind.PAIRWISE:
        raise InvalidInput("task", "only queue pairwise tasks can be gold items")
    candidate_ids = set(task.candidates.values_list("completion_id", flat=True))
    if chosen_completion_id is not None and chosen_completion_id not in candidate_ids:
        raise InvalidInput("chosen", f"chosen must be one of {sorted(candidate_ids)} or null")
    task.is_gold = True
    task.gold_answer = (
        {"tie": True} if chosen_completion_id is None else {"chosen": chosen_completion_id}
    )
    task.save(update_fields=["is_gold", "gold_answer"])
    return task


CLAIM_ATTEMPTS = 5


def _claim_free_slot(
    annotator: AbstractBaseUser, project: Project | None, rng: random.Random
) -> Assignment | None:
    """One short transaction: lock a free task nobody else holds, take a slot, lease it.

    SKIP LOCKED (Postgres) lets concurrent annotators pick different rows instead of
    queueing on the same one; the conditional UPDATE is the guard on backends without it.
    """
    for _ in range(CLAIM_ATTEMPTS):
        try:
            with transaction.atomic():
                task_id = selectors.task_next_claimable_id(annotator, project=project)
                if task_id is None:
                    return None
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
    task = Task.objects.select_related("project", "prompt").get(pk=task_id)
    candidate_ids = list(
        TaskCandidate.objects.filter(task=task)
        .order_by("position")
        .values_list("completion_id", flat=True)
    )
    # Randomised display order guards the data against position bias.
    shown_order = rng.sample(candidate_ids, k=len(candidate_ids))
    hold = timedelta(seconds=task.project.lease_seconds)
    return assignment_lease(task=task, annotator=annotator, shown_order=shown_order, hold=hold)


def assignment_lease(
    *, task: Task, annotator: AbstractBaseUser, shown_order: list[int], hold: timedelta
) -> Assignment:
    """Reserve ``task`` for ``annotator`` for ``hold``, showing candidates in ``shown_order``."""
    now = timezone.now()
    return Assignment.objects.create(
        task=task,
        annotator=annotator,
        shown_order=shown_order,
        claimed_at=now,
        expires_at=now + hold,
    )


@dataclass(frozen=True)
class SubmitResult:
    judgment: Judgment
    created: bool


def judgment_submit(
    *, assignment: Assignment, idempotency_key: str, **answer_fields
) -> SubmitResult:
    """Store the annotator's verdict once; a repeat with the same key returns the first one.

    ``answer_fields`` are those of ``answers.Answer`` (choice, ranking, ratings, thumbs, …).
    A submit after the lease expired is refused (409) even if nobody else took the task
    yet: the slot may already be promised to another annotator.
    """
    answer = Answer(**answer_fields)
    fields = judgment_fields(answer, assignment.shown_order, _rules(assignment.task))
    try:
        with transaction.atomic():
            # of=("self",): lock only the assignment row, never the shared task/project rows.
            locked = (
                Assignment.objects.select_for_update(of=("self",))
                .select_related("task__project")
                .get(pk=assignment.pk)
            )
            existing = _judgment_by_key(locked.annotator_id, idempotency_key)
            if existing is not None:
                return _repeat_or_conflict(existing, locked)
            if locked.status == Assignment.Status.SUBMITTED:
                raise JudgmentConflict("this task has already been judged")
            if locked.status == Assignment.Status.SKIPPED:
                raise JudgmentConflict("this task was skipped; its slot went back to the pool")
            if locked.is_expired():
                raise JudgmentConflict("the time reserved for this task ran out; load the next one")
            judgment = _judgment_create(locked, fields, idempotency_key)
            locked.status = Assignment.Status.SUBMITTED
            locked.save(update_fields=["status"])
            if locked.task.kind == Task.Kind.LIVE_TURN:
                from .sessions import session_continue_from

                session_continue_from(judgment)
            return SubmitResult(judgment=judgment, created=True)
    except IntegrityError:
        # Lost a race against a concurrent submit with the same key (SQLite has no row lock).
        existing = _judgment_by_key(assignment.annotator_id, idempotency_key)
        if existing is None:
            raise
        return _repeat_or_conflict(existing, assignment)


def _rules(task: Task) -> Rules:
    project = task.project
    return Rules(
        interface=task.interface,
        scale=project.scale(),
        allow_both_bad=project.allow_both_bad,
        aspects=list(project.rating_aspects),
    )


def _judgment_by_key(annotator_id: int, key: str) -> Judgment | None:
    return Judgment.objects.filter(annotator_id=annotator_id, idempotency_key=key).first()


def _repeat_or_conflict(existing: Judgment, assignment: Assignment) -> SubmitResult:
    if existing.assignment_id != assignment.pk:
        raise JudgmentConflict("idempotency_key was already used for another assignment")
    return SubmitResult(judgment=existing, created=False)


def _judgment_create(assignment: Assignment, fields: dict, key: str) -> Judgment:
    project = assignment.task.project
    return Judgment.objects.create(
        assignment=assignment,
        task_id=assignment.task_id,
        annotator_id=assignment.annotator_id,
        scale_kind=project.scale_kind,
        shown_order=assignment.shown_order,
        guidelines_version=project.guidelines_version,
        idempotency_key=key,
        **fields,
    )


def assignment_skip(*, assignment: Assignment, reason: str) -> None:
    """Give a pending task back with a reason; this annotator is never offered it again."""
    with transaction.atomic():
        changed = Assignment.objects.filter(
            pk=assignment.pk, status=Assignment.Status.PENDING
        ).update(status=Assignment.Status.SKIPPED, skip_reason=reason)
        if changed != 1:
            raise JudgmentConflict("only a pending assignment can be skipped")
        Task.objects.filter(pk=assignment.task_id, slots_taken__gt=0).update(
            slots_taken=F("slots_taken") - 1
        )


def project_create(
    *, slug: str, name: str, guidelines: str = "", created_by: AbstractBaseUser | None = None
) -> Project:
    with transaction.atomic():
        project = Project.objects.create(slug=slug, name=name, guidelines=guidelines)
        GuidelinesVersion.objects.create(
            project=project, version=1, text=guidelines, created_by=created_by
        )
    return project


PROJECT_SETTINGS = (
    "name",
    "scale_kind",
    "custom_scale",
    "allow_both_bad",
    "overlap",
    "max_pending",
    "lease_seconds",
    "gold_rate",
    "reask_rate",
    "rating_rubric",
    "rating_aspects",
)


def project_update(*, project: Project, user: AbstractBaseUser, **changes) -> Project:
    """Change settings; a new guidelines text becomes the next version, kept in history."""
    unknown = set(changes) - set(PROJECT_SETTINGS) - {"guidelines"}
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "not a project setting")
    kind = changes.get("scale_kind", project.scale_kind)
    custom = changes.get("custom_scale", project.custom_scale)
    try:
        scale_points(kind, custom)
    except ValueError as exc:
        raise InvalidInput("custom_scale", str(exc)) from exc
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        fields = [name for name in PROJECT_SETTINGS if name in changes]
        for name in fields:
            setattr(project, name, changes[name])
        text = changes.get("guidelines")
        if text is not None and text != project.guidelines:
            project.guidelines = text
            project.guidelines_version += 1
            fields += ["guidelines", "guidelines_version"]
            GuidelinesVersion.objects.create(
                project=project, version=project.guidelines_version, text=text, created_by=user
            )
        if fields:
            project.save(update_fields=fields)
    return project


@dataclass(frozen=True)
class PromptImportReport:
    created: int
    duplicates: list[int]  # lines whose prompt the project (or an earlier line) already has
    errors: list[LineError]


def prompts_import(*, project: Project, data: bytes, filename: str) -> PromptImportReport:
    """Store every valid, new prompt of an uploaded file; bad lines are reported, not fatal."""
    try:
        parsed = parse_prompt_file(data, filename=filename)
    except ValueError as exc:
        raise InvalidInput("file", str(exc)) from exc
    known_hashes = set(project.prompts.values_list("content_hash", flat=True))
    known_ids = set(project.prompts.exclude(external_id="").values_list("external_id", flat=True))
    fresh, duplicates = [], list(parsed.duplicates)
    for p in parsed.prompts:
        if p.content_hash in known_hashes or (p.external_id and p.external_id in known_ids):
            duplicates.append(p.line)
            continue
        fresh.append(
            Prompt(
                project=project,
                messages=p.messages,
                external_id=p.external_id,
                metadata=p.metadata,
                content_hash=p.content_hash,
            )
        )
    # ignore_conflicts: a concurrent import of the same ids must not fail the whole file.
    Prompt.objects.bulk_create(fresh, batch_size=1000, ignore_conflicts=True)
    return PromptImportReport(
        created=len(fresh), duplicates=sorted(duplicates), errors=parsed.errors
    )


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


_CANDIDATES_PER_INTERFACE = {
    Interface.PAIRWISE: (2, 2),
    Interface.RANKING: (2, 8),
    Interface.RATING: (1, 8),
    Interface.THUMBS: (1, 1),
}


def task_create(
    *, prompt: Prompt, completions: list[Completion], interface: str = Interface.PAIRWISE
) -> Task:
    low, high = _CANDIDATES_PER_INTERFACE[Interface(interface)]
    if not low <= len(completions) <= high:
        raise InvalidInput("completions", f"a {interface} task takes {low} to {high} candidates")
    with transaction.atomic():
        task = Task.objects.create(
            project=prompt.project,
            prompt=prompt,
            interface=interface,
            overlap=prompt.project.overlap,
        )
        TaskCandidate.objects.bulk_create(
            TaskCandidate(task=task, completion=c, position=i) for i, c in enumerate(completions)
        )
    return task


def task_create_pair(*, prompt: Prompt) -> Task | None:
    """One pairwise task over the prompt's first two candidates, created once."""
    existing = Task.objects.filter(prompt=prompt).first()
    if existing is not None:
        return existing
    completions = list(prompt.completions.order_by("candidate_index")[:2])
    if len(completions) < 2:
        return None
    return task_create(prompt=prompt, completions=completions)
