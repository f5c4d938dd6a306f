import random
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from models_serving.client import Candidate, ServerConfig

from . import queue_sql, selectors
from .access import AccessDenied
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
    Round,
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
    *,
    annotator: User,
    project: Project | None = None,
    project_id: int | None = None,
    rng: random.Random | None = None,
) -> Assignment | None:
    """Hand the annotator one task: their oldest pending one if any, else claim a free slot.

    Resuming instead of claiming again is what stops task hoarding (one lease per annotator
    unless the project allows more for clients that prefetch). ``project`` (or its id)
    limits the claim to one project; otherwise any project the annotator belongs to.
    """
    if project is not None:
        project_id = project.pk
    context = queue_sql.claim_context(
        annotator_id=annotator.pk,
        is_superuser=annotator.is_superuser,
        project_id=project_id,
        now=timezone.now(),
    )
    leases = context.leases
    if leases and len(leases) >= min(lease.max_pending for lease in leases):
        return Assignment.objects.get(pk=leases[0].assignment_id)
    rng = rng or random.Random()
    claimed = _claim_gold_or_reask(annotator, context.mix, rng) or _claim_free_slot(
        annotator, project_id, rng
    )
    if claimed is None and assignments_expire_stale():
        # Beat returns expired leases every minute; an empty queue should not wait for it.
        claimed = _claim_free_slot(annotator, project_id, rng)
    if claimed is None and leases:
        return Assignment.objects.get(pk=leases[0].assignment_id)
    return claimed


def _claim_gold_or_reask(
    annotator: User, mix: queue_sql.QualityMix | None, rng: random.Random
) -> Assignment | None:
    """Interleave gold items and swapped re-asks at the rates of ``mix``'s project."""
    if mix is None:
        return None
    project = Project.objects.get(pk=mix.project_id)
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
                gold_id = rng.choice(gold_ids)
                return _assignment_create(
                    task_id=gold_id,
                    candidate_ids=queue_sql.candidate_ids(task_id=gold_id),
                    annotator_id=annotator.pk,
                    lease_seconds=project.lease_seconds,
                    rng=rng,
                )
            if source == "reask":
                assert original is not None
                return _reask_create(original, annotator)
    except IntegrityError:
        return None  # a concurrent request of the same annotator got it first
    return None


@transaction.atomic
def _reask_create(original: Judgment, annotator: User) -> Assignment:
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
        task=task, annotator_id=annotator.pk, shown_order=swapped(original.shown_order), hold=hold
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
    annotator: User, project_id: int | None, rng: random.Random
) -> Assignment | None:
    """Claim in the given project, else in the annotator's projects, oldest project first."""
    if project_id is not None:
        return _claim_free_slot_in(annotator, project_id, rng)
    for candidate_project in queue_sql.annotating_project_ids(
        annotator_id=annotator.pk, is_superuser=annotator.is_superuser
    ):
        claimed = _claim_free_slot_in(annotator, candidate_project, rng)
        if claimed is not None:
            return claimed
    return None


def _claim_free_slot_in(annotator: User, project_id: int, rng: random.Random) -> Assignment | None:
    """One short transaction: lock a free task nobody else holds, take a slot, lease it.

    SKIP LOCKED (Postgres) lets concurrent annotators pick different rows instead of
    queueing on the same one; the conditional UPDATE is the guard on backends without it.
    """
    for _ in range(CLAIM_ATTEMPTS):
        # Inside submit-and-next's transaction no savepoint is needed (two round trips less):
        # nothing here raises on a race, every race is an answer of the statements.
        with transaction.atomic(savepoint=False):
            claimed = queue_sql.claim_slot(
                annotator_id=annotator.pk,
                is_superuser=annotator.is_superuser,
                project_id=project_id,
            )
            if claimed is None:
                return None
            if claimed == queue_sql.TAKEN_BY_ANOTHER:
                continue  # someone else took the last slot first
            assert isinstance(claimed, queue_sql.Claimed)
            assignment = _assignment_create(
                task_id=claimed.task_id,
                candidate_ids=claimed.candidate_ids,
                annotator_id=annotator.pk,
                lease_seconds=claimed.lease_seconds,
                rng=rng,
            )
            if assignment is not None:
                return assignment
            # A concurrent request of the same annotator got this task: give the slot back.
            queue_sql.slot_return(task_id=claimed.task_id)
    return None


def _assignment_create(
    *,
    task_id: int,
    candidate_ids: list[int],
    annotator_id: int,
    lease_seconds: int,
    rng: random.Random,
) -> Assignment | None:
    """Lease the task to the annotator (None if they already hold or held it)."""
    # Randomised display order guards the data against position bias.
    shown_order = rng.sample(candidate_ids, k=len(candidate_ids))
    now = timezone.now()
    return queue_sql.assignment_insert(
        task_id=task_id,
        annotator_id=annotator_id,
        shown_order=shown_order,
        claimed_at=now,
        expires_at=now + timedelta(seconds=lease_seconds),
    )


def assignment_lease(
    *, task: Task, annotator_id: int, shown_order: list[int], hold: timedelta
) -> Assignment:
    """Reserve ``task`` for the annotator for ``hold``, showing candidates in ``shown_order``."""
    now = timezone.now()
    return Assignment.objects.create(
        task=task,
        annotator_id=annotator_id,
        shown_order=shown_order,
        claimed_at=now,
        expires_at=now + hold,
    )


@dataclass(frozen=True)
class SubmitResult:
    judgment: Judgment
    created: bool
    project_id: int


_CLOSED: dict[str, str] = {
    Assignment.Status.SUBMITTED: "this task has already been judged",
    Assignment.Status.SKIPPED: "this task was skipped; its slot went back to the pool",
}
_LAPSED = "the time reserved for this task ran out; load the next one"


def judgment_submit(
    *, assignment: Assignment, idempotency_key: str, **answer_fields
) -> SubmitResult:
    """Store the verdict on ``assignment``; see ``judgment_submit_by_id``."""
    return judgment_submit_by_id(
        annotator_id=assignment.annotator_id,
        assignment_id=assignment.pk,
        idempotency_key=idempotency_key,
        **answer_fields,
    )


def judgment_submit_by_id(
    *, annotator_id: int, assignment_id: int, idempotency_key: str, **answer_fields
) -> SubmitResult:
    """Store the annotator's verdict once; a repeat with the same key returns the first one.

    ``answer_fields`` are those of ``answers.Answer`` (choice, ranking, ratings, thumbs, …).
    Another annotator's assignment is AccessDenied, exactly like a missing one. A submit
    after the lease expired is refused (409) even if nobody else took the task yet: the
    slot may already be promised to another annotator.
    """
    answer = Answer(**answer_fields)
    try:
        with transaction.atomic():
            return _judgment_store(annotator_id, assignment_id, idempotency_key, answer)
    except IntegrityError as error:
        return _repeat_after_race(error, annotator_id, assignment_id, idempotency_key)


def judgment_submit_and_claim_next(
    *, annotator: User, assignment_id: int, idempotency_key: str, **answer_fields
) -> tuple[SubmitResult, Assignment | None]:
    """``judgment_submit_by_id``, then ``assignment_claim_next`` in the judgment's project.

    One transaction and one commit for both: the annotator's loop is one request, and on the
    database one transaction too. Should claiming fail, the judgment is rolled back with it
    and the client's retry (same idempotency key) stores it.
    """
    answer = Answer(**answer_fields)
    try:
        with transaction.atomic():
            result = _judgment_store(annotator.pk, assignment_id, idempotency_key, answer)
            following = assignment_claim_next(annotator=annotator, project_id=result.project_id)
            return result, following
    except IntegrityError as error:
        result = _repeat_after_race(error, annotator.pk, assignment_id, idempotency_key)
    return result, assignment_claim_next(annotator=annotator, project_id=result.project_id)


def _judgment_store(
    annotator_id: int, assignment_id: int, idempotency_key: str, answer: Answer
) -> SubmitResult:
    """The submit itself; call inside a transaction."""
    # Locks only the assignment row, never the shared task/project rows.
    target = queue_sql.submit_target_lock(
        assignment_id=assignment_id, annotator_id=annotator_id, now=timezone.now()
    )
    if target is None:
        raise AccessDenied(f"no assignment {assignment_id}")
    fields = judgment_fields(answer, target.shown_order, _rules(target))
    if target.status != Assignment.Status.PENDING or target.lapsed:
        existing = _judgment_by_key(annotator_id, idempotency_key)
        if existing is not None:
            return _repeat_or_conflict(existing, target.assignment_id, target.project_id)
        raise JudgmentConflict(_CLOSED.get(target.status, _LAPSED))
    judgment = queue_sql.judgment_insert(
        {
            "assignment_id": assignment_id,
            "task_id": target.task_id,
            "annotator_id": annotator_id,
            "scale_kind": target.scale_kind,
            "shown_order": target.shown_order,
            "guidelines_version": target.guidelines_version,
            "idempotency_key": idempotency_key,
            **fields,
        }
    )
    if judgment is None:  # the key is taken; this assignment is still open
        existing = _judgment_by_key(annotator_id, idempotency_key)
        assert existing is not None
        return _repeat_or_conflict(existing, assignment_id, target.project_id)
    if target.task_kind == Task.Kind.LIVE_TURN:
        from .sessions import session_continue_from

        session_continue_from(judgment)
    return SubmitResult(judgment=judgment, created=True, project_id=target.project_id)


def _repeat_after_race(
    error: IntegrityError, annotator_id: int, assignment_id: int, idempotency_key: str
) -> SubmitResult:
    # Lost a race against a concurrent submit with the same key (SQLite has no row lock).
    existing = _judgment_by_key(annotator_id, idempotency_key)
    if existing is None:
        raise error
    return _repeat_or_conflict(existing, assignment_id, existing.task.project_id)


def _rules(target: queue_sql.SubmitTarget) -> Rules:
    return Rules(
        interface=target.interface,
        scale=scale_points(target.scale_kind, target.custom_scale),
        allow_both_bad=target.allow_both_bad,
        aspects=list(target.rating_aspects),
    )


def _judgment_by_key(annotator_id: int, key: str) -> Judgment | None:
    return Judgment.objects.filter(annotator_id=annotator_id, idempotency_key=key).first()


def _repeat_or_conflict(existing: Judgment, assignment_id: int, project_id: int) -> SubmitResult:
    if existing.assignment_id != assignment_id:
        raise JudgmentConflict("idempotency_key was already used for another assignment")
    return SubmitResult(judgment=existing, created=False, project_id=project_id)


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
    *, slug: str, name: str, guidelines: str = "", created_by: User | None = None
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


def project_update(*, project: Project, user: User, **changes) -> Project:
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


def completion_store(
    *,
    prompt: Prompt,
    candidate_index: int,
    candidate: Candidate,
    round: Round | None = None,
    server: ServerConfig | None = None,
) -> Completion:
    """Persist one generated candidate; storing the same (round, index) twice keeps the first.

    ``server`` (how it was generated) records the ModelVersion and endpoint rows it came from.
    """
    completion, _ = Completion.objects.get_or_create(
        prompt=prompt,
        round=round,
        candidate_index=candidate_index,
        defaults={
            "content": candidate.content,
            "model_name": candidate.model,
            "model_version_id": server.version_id if server else None,
            "endpoint_id": server.endpoint_id if server else None,
            "sampling_params": candidate.sampling_params,
            "seed": candidate.seed,
            "finish_reason": candidate.finish_reason,
            "prompt_tokens": candidate.prompt_tokens,
            "completion_tokens": candidate.completion_tokens,
            "latency_ms": candidate.latency_ms,
            "logprobs": candidate.logprobs,
            "duplicate": candidate.duplicate,
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
    *,
    prompt: Prompt,
    completions: list[Completion],
    interface: str = Interface.PAIRWISE,
    round: Round | None = None,
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
            round=round,
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
