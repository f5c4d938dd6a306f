"""Collection rounds: bulk generation of candidates, and the pre-generated task buffer.

The model servers are called outside any transaction (STYLE.md rule 2); each prompt's
candidates are stored with a unique (round, prompt, candidate index) key, so a retried or
redelivered generation task skips what is stored and never adds a candidate twice.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, QuerySet

from models_serving.client import (
    Candidate,
    ModelServerError,
    SamplingParams,
    ServerConfig,
    generate_many,
)
from models_serving.models import ModelVersion
from models_serving.selectors import server_config_for

from . import services
from .answers import InvalidInput
from .models import Completion, Interface, Judgment, Project, Prompt, Round, RoundPrompt, Task

LIFECYCLE_FIELDS = (
    "target_judgments",
    "deadline",
    "train_on_close",
    "continue_automatically",
    "pairing",
)
MAX_ATTEMPTS = 3  # per prompt; after that it is reported as failed on the round
BATCH = 32  # prompts generated between two progress updates


def round_create(
    *,
    project: Project,
    name: str,
    model_versions: Sequence[ModelVersion],
    prompt_ids: Sequence[int] | None = None,
    prompt_count: int | None = None,
    candidates_per_prompt: int = 2,
    sampling_params: dict | None = None,
    allow_repeat: bool = False,
    created_by: User | None = None,
    rng: random.Random | None = None,
    **lifecycle,
) -> Round:
    """A draft round over the given prompts, or ``prompt_count`` sampled from the pool.

    The pool is the project's imported prompts (not live-session turns); unless
    ``allow_repeat``, prompts already used by an earlier round are left out. ``lifecycle``:
    target_judgments, deadline, train_on_close, continue_automatically, pairing.
    """
    unknown = set(lifecycle) - set(LIFECYCLE_FIELDS)
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "not a round setting")
    if not model_versions:
        raise InvalidInput("model_versions", "choose at least one model version")
    if candidates_per_prompt < 2:
        raise InvalidInput("candidates_per_prompt", "a round needs at least 2 candidates")
    pool = _prompt_pool(project, allow_repeat=allow_repeat)
    if prompt_ids is not None:
        chosen = list(pool.filter(pk__in=prompt_ids).values_list("pk", flat=True))
        missing = sorted(set(prompt_ids) - set(chosen))
        if missing:
            raise InvalidInput("prompt_ids", f"not in this project's unused pool: {missing[:10]}")
    else:
        available = list(pool.values_list("pk", flat=True))
        if not prompt_count or prompt_count > len(available):
            raise InvalidInput("prompt_count", f"give 1 to {len(available)} (unused prompts)")
        chosen = sorted((rng or random.Random()).sample(available, prompt_count))
    with transaction.atomic():
        round_ = Round.objects.create(
            project=project,
            name=name,
            candidates_per_prompt=candidates_per_prompt,
            sampling_params=sampling_params or {},
            generation_total=len(chosen),
            created_by=created_by,
            **lifecycle,
        )
        round_.model_versions.set(model_versions)
        RoundPrompt.objects.bulk_create(RoundPrompt(round=round_, prompt_id=p) for p in chosen)
    return round_


def _prompt_pool(project: Project, *, allow_repeat: bool) -> QuerySet[Prompt]:
    pool = project.prompts.filter(conversation__isnull=True)
    if not allow_repeat:
        pool = pool.exclude(round_prompts__isnull=False)
    return pool


def rounds_resume_for_version(*, version_id: int) -> int:
    """Queue generation again for the generating rounds that waited for this version."""
    from .tasks import generate_round

    waiting = list(
        Round.objects.filter(
            status=Round.Status.GENERATING, model_versions__pk=version_id
        ).values_list("pk", flat=True)
    )
    for round_id in waiting:
        generate_round.delay(round_id)
    return len(waiting)


def round_start(*, round: Round) -> None:
    """Mark the round generating and queue the bulk generation task once the row is committed."""
    from .tasks import generate_round

    changed = Round.objects.filter(pk=round.pk, status=Round.Status.DRAFT).update(
        status=Round.Status.GENERATING
    )
    if changed != 1:
        raise InvalidInput("status", "only a draft round can be started")
    transaction.on_commit(lambda: generate_round.delay(round.pk))


@dataclass(frozen=True)
class GenerationPass:
    done: int
    failed: int
    pending: int  # still to try (failed this pass, attempts left): the task retries later
    waiting: bool = False  # a version is still being loaded: resumed when it is ready


def round_generate(*, round_id: int) -> GenerationPass:
    """Try every pending prompt of the round once; safe to run twice at the same time.

    A version still being loaded (a new checkpoint on its way onto a vLLM server) is no
    failure of the prompts: nothing is tried, no attempt counted, and the round waits until
    models_serving announces the version ready (``rounds_resume_for_version``).
    """
    round_ = Round.objects.get(pk=round_id)
    versions = list(round_.model_versions.order_by("pk"))
    if any(v.status == ModelVersion.Status.PENDING for v in versions):
        pending = round_.round_prompts.filter(status=RoundPrompt.Status.PENDING).count()
        return GenerationPass(done=0, failed=0, pending=pending, waiting=True)
    pending_ids = list(
        round_.round_prompts.filter(status=RoundPrompt.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    done = failed = 0
    for start in range(0, len(pending_ids), BATCH):
        batch = list(
            RoundPrompt.objects.filter(
                pk__in=pending_ids[start : start + BATCH], status=RoundPrompt.Status.PENDING
            )
            .select_related("prompt")
            .order_by("pk")
        )
        errors = _generate_prompts(round_, versions, [rp.prompt for rp in batch])
        for round_prompt in batch:
            error = errors.get(round_prompt.prompt_id)
            if error is None:
                done += _round_prompt_close(round_prompt, RoundPrompt.Status.DONE, "")
            elif round_prompt.attempts + 1 >= MAX_ATTEMPTS:
                failed += _round_prompt_close(round_prompt, RoundPrompt.Status.FAILED, error)
            else:
                RoundPrompt.objects.filter(pk=round_prompt.pk).update(
                    attempts=F("attempts") + 1, error=error
                )
    pending = round_.round_prompts.filter(status=RoundPrompt.Status.PENDING).count()
    if pending == 0:
        Round.objects.filter(pk=round_.pk, status=Round.Status.GENERATING).update(
            status=Round.Status.COLLECTING
        )
    return GenerationPass(done=done, failed=failed, pending=pending)


def _round_prompt_close(round_prompt: RoundPrompt, status: str, error: str) -> int:
    """Close a prompt once and count it on the round; 0 if a concurrent run closed it first."""
    with transaction.atomic():
        changed = RoundPrompt.objects.filter(
            pk=round_prompt.pk, status=RoundPrompt.Status.PENDING
        ).update(status=status, error=error, attempts=F("attempts") + 1)
        if changed:
            counter = (
                "generation_done" if status == RoundPrompt.Status.DONE else "generation_failed"
            )
            Round.objects.filter(pk=round_prompt.round_id).update(**{counter: F(counter) + 1})
    return changed


def _generate_prompts(
    round_: Round | None, versions: list[ModelVersion], prompts: list[Prompt], k: int | None = None
) -> dict[int, str]:
    """Fill each prompt's missing candidates and make its tasks; return errors by prompt id."""
    k = k or round_.candidates_per_prompt  # type: ignore[union-attr]
    params = SamplingParams(**(round_.sampling_params if round_ else {}))
    errors: dict[int, str] = {}
    # Candidate i comes from versions[i % len(versions)]: one version = on-policy pairs of
    # two samples, two versions = version against version.
    for v_index, version in enumerate(versions):
        indices = list(range(v_index, k, len(versions)))
        try:
            server = server_config_for(version)
        except ModelServerError as exc:
            errors.update({p.pk: str(exc) for p in prompts})
            continue
        todo = [p for p in prompts if p.pk not in errors and _missing(round_, p, indices)]
        if not todo:
            continue
        results = generate_many(server, [p.messages for p in todo], k=len(indices), params=params)
        for prompt, result in zip(todo, results, strict=True):
            if isinstance(result, ModelServerError):
                errors[prompt.pk] = str(result)[:300]
                continue
            _store(round_, prompt, indices, result, server)
    for prompt in prompts:
        if prompt.pk not in errors:
            _tasks_for(round_, prompt, k)
    return errors


def _missing(round_: Round | None, prompt: Prompt, indices: list[int]) -> bool:
    stored = Completion.objects.filter(round=round_, prompt=prompt, candidate_index__in=indices)
    return stored.count() < len(indices)


def _store(
    round_: Round | None,
    prompt: Prompt,
    indices: list[int],
    candidates: list[Candidate],
    server: ServerConfig,
) -> None:
    for index, candidate in zip(indices, candidates, strict=True):
        services.completion_store(
            prompt=prompt, candidate_index=index, candidate=candidate, round=round_, server=server
        )


def _tasks_for(round_: Round | None, prompt: Prompt, k: int) -> None:
    """Pairwise tasks over candidates (0, 1), (2, 3), ...; created once per round and prompt."""
    with transaction.atomic():
        Prompt.objects.select_for_update().get(pk=prompt.pk)  # one creator at a time
        if Task.objects.filter(prompt=prompt, round=round_).exists():
            return
        completions = list(
            Completion.objects.filter(round=round_, prompt=prompt).order_by("candidate_index")
        )
        for first in range(0, len(completions) - 1, 2):
            pair = completions[first : first + 2]
            if pair[0].duplicate or pair[1].duplicate or pair[0].content == pair[1].content:
                continue  # identical texts are not a comparison
            services.task_create(
                prompt=prompt, completions=pair, interface=Interface.PAIRWISE, round=round_
            )


# --- lifecycle: close, train, continue --------------------------------------------------------


def round_close(*, round: Round, reason: str) -> bool:
    """Close a collecting round (at its target, its deadline or by hand) once.

    Returns False if it was not open. Listeners of ``round_closed`` (training) run after
    the commit, so they never see a round that rolled back.
    """
    from django.utils import timezone

    from .signals import round_closed

    changed = Round.objects.filter(
        pk=round.pk, status__in=[Round.Status.GENERATING, Round.Status.COLLECTING]
    ).update(status=Round.Status.CLOSED, closed_at=timezone.now(), close_reason=reason)
    if changed:
        round_id = round.pk
        transaction.on_commit(lambda: round_closed.send(sender=Round, round_id=round_id))
    return bool(changed)


def rounds_close_due(*, now=None) -> list[int]:
    """Close collecting rounds that reached their target number of judgments or deadline."""
    from django.db.models import Count, Q
    from django.utils import timezone

    now = now or timezone.now()
    closed = []
    candidates = Round.objects.filter(status=Round.Status.COLLECTING).filter(
        Q(target_judgments__isnull=False) | Q(deadline__isnull=False)
    )
    counted = candidates.annotate(n=Count("tasks__judgments"))
    for round_ in counted:
        if round_.deadline is not None and round_.deadline <= now:
            reason = "deadline"
        elif round_.target_judgments is not None and round_.n >= round_.target_judgments:
            reason = "target"
        else:
            continue
        if round_close(round=round_, reason=reason):
            closed.append(round_.pk)
    return closed


def round_set_status(*, round_id: int, status: str, expected: Sequence[str]) -> bool:
    """Move a round along (closed → training → done / failed) if it is where we think."""
    return bool(Round.objects.filter(pk=round_id, status__in=list(expected)).update(status=status))


def round_continue(*, round: Round, version: ModelVersion) -> Round | None:
    """The next round of an automatic loop: same settings, sampling the new version.

    Created once per round (the ``previous`` link is unique) and started at once; None if
    the pool has no unused prompts left or it already exists.
    """
    if Round.objects.filter(previous=round).exists():
        return None
    versions: list[ModelVersion | None] = [version]
    if round.pairing == Round.Pairing.VERSUS_PREVIOUS:
        versions.append(round.model_versions.order_by("-created_at", "-pk").first())
    count = round.generation_total
    available = _prompt_pool(round.project, allow_repeat=False).count()
    if available == 0:
        return None
    with transaction.atomic():
        following = round_create(
            project=round.project,
            name=f"{round.name} → next",
            model_versions=[v for v in versions if v is not None],
            prompt_count=min(count, available),
            candidates_per_prompt=round.candidates_per_prompt,
            sampling_params=round.sampling_params,
            created_by=round.created_by,
            **{name: getattr(round, name) for name in LIFECYCLE_FIELDS if name != "deadline"},
        )
        Round.objects.filter(pk=following.pk).update(previous=round)
        round_start(round=following)
        following.refresh_from_db()
    return following


def round_report(*, round: Round) -> dict:
    """Judgments, annotator time, agreement, and version win rates (Bradley–Terry + CIs)."""
    from django.db.models import Count, Q, Sum

    from . import leaderboard, quality, selectors

    judgments = Judgment.objects.filter(task__round=round)
    totals = judgments.aggregate(
        n=Count("id"),
        annotators=Count("annotator", distinct=True),
        ms=Sum("time_spent_ms"),
        ties=Count("id", filter=Q(kind="pairwise", strength=0, both_bad=False)),
        both_bad=Count("id", filter=Q(both_bad=True)),
    )
    task_ids = set(round.tasks.values_list("pk", flat=True))
    records = [r for r in selectors.quality_records(round.project) if r.task_id in task_ids]
    versions = dict(Completion.objects.filter(round=round).values_list("pk", "model_version_id"))
    outcomes = []
    for j in judgments.filter(kind="pairwise", both_bad=False).values("shown_order", "chosen_id"):
        first, second = j["shown_order"]
        a, b = versions.get(first), versions.get(second)
        if a is None or b is None or a == b:
            continue
        score = 0.5 if j["chosen_id"] is None else float(j["chosen_id"] == first)
        outcomes.append(leaderboard.Outcome(a=a, b=b, score=score))
    scores = leaderboard.bradley_terry(outcomes)
    intervals = leaderboard.bootstrap_intervals(outcomes)
    labels = dict(ModelVersion.objects.filter(pk__in=scores).values_list("pk", "label"))
    return {
        "judgments": totals["n"],
        "annotators": totals["annotators"],
        "annotator_hours": round_hours(totals["ms"]),
        "ties": totals["ties"],
        "both_bad": totals["both_bad"],
        "krippendorff_alpha": quality.krippendorff_alpha(records),
        "versions": [
            {
                "model_version_id": v,
                "label": labels.get(v, ""),
                "score": round_to(score),
                "ci_low": round_to(intervals[v][0]) if v in intervals else None,
                "ci_high": round_to(intervals[v][1]) if v in intervals else None,
            }
            for v, score in sorted(scores.items(), key=lambda kv: -kv[1])
        ],
        "head_to_head": leaderboard.head_to_head(outcomes),
    }


def round_hours(ms: int | None) -> float:
    return round_to((ms or 0) / 3_600_000)


def round_to(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}f}")


def buffer_top_up(*, project: Project, limit: int = BATCH) -> int:
    """Generate pairs for unused pool prompts until the project has ``buffer_size`` ready tasks.

    Returns how many prompts were generated. Annotators then never wait on a model server.
    """
    version = project.buffer_model_version
    if not project.buffer_size or version is None:
        return 0
    ready = Task.objects.filter(
        project=project,
        kind=Task.Kind.PAIRWISE,
        slots_taken__lt=F("overlap"),
        is_gold=False,
        reserved_for__isnull=True,
    ).count()
    need = min(project.buffer_size - ready, limit)
    if need <= 0:
        return 0
    fresh = list(
        _prompt_pool(project, allow_repeat=False).filter(tasks__isnull=True).order_by("pk")[:need]
    )
    if fresh:
        _generate_prompts(None, [version], fresh, k=2)
    return len(fresh)
