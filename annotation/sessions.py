"""Live multi-turn sessions: the annotator writes a turn, judges candidates, and the
conversation continues from the chosen reply (book §11.2.3).

A turn's candidates either stream from the session's model versions (``turn_stream_open``,
then annotation/live_turns.py) or are attached by whoever produced them; either way they are
judged like any pair, through the normal judgment endpoint.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Substr
from django.utils import timezone

from models_serving.client import Candidate, ServerConfig
from models_serving.models import ModelVersion
from models_serving.selectors import model_version_list, server_config_for

from . import services
from .answers import LABELS
from .models import (
    LIVE_MAX_CANDIDATES,
    Assignment,
    Completion,
    Conversation,
    Interface,
    Judgment,
    Message,
    Project,
    Prompt,
    Task,
    TaskCandidate,
)
from .prompt_import import messages_content_hash
from .selectors import assignment_display

# A live turn is held for its owner, not leased from a shared pool.
LIVE_TURN_HOLD = timedelta(days=7)
MAX_CANDIDATES = 8
# A streamed candidate not finished yet: created empty, filled in when its stream ends. Cut
# ones get their own finish_reason ("judged", "disconnect", ...), so this state is never final.
STREAMING = Q(incomplete=True, finish_reason="")


class SessionConflict(Exception):
    """The session is not in a state that allows this step; the message says why."""


def session_start(
    *,
    project: Project,
    owner: User,
    system: str = "",
    model_versions: Sequence[ModelVersion] | None = None,
    candidates_per_turn: int = 2,
) -> Conversation:
    """Open a session; it samples ``model_versions`` (default: ``session_default_versions``).

    Each turn streams ``candidates_per_turn`` replies: two are judged on the project's
    pairwise scale, three or more are ranked best to worst (the best continues).
    """
    if not 2 <= candidates_per_turn <= LIVE_MAX_CANDIDATES:
        raise services.InvalidInput(
            "candidates_per_turn", f"ask for 2 to {LIVE_MAX_CANDIDATES} replies per turn"
        )
    versions = session_default_versions(project) if model_versions is None else model_versions
    with transaction.atomic():
        conversation = Conversation.objects.create(
            project=project, owner=owner, candidates_per_turn=candidates_per_turn
        )
        conversation.model_versions.set(versions)
        if system:
            head = Message.objects.create(conversation=conversation, role="system", content=system)
            conversation.head = head
            conversation.save(update_fields=["head"])
    return conversation


def session_default_versions(project: Project) -> list[ModelVersion]:
    """The project's buffer version if it has one, else the newest enabled version, else none."""
    version = project.buffer_model_version or model_version_list(enabled=True).first()
    return [version] if version is not None else []


def session_current_turn(conversation: Conversation) -> Prompt | None:
    return conversation.turns.order_by("-id").first()


def turn_state(turn: Prompt | None) -> str:
    if turn is None:
        return "none"
    task = turn.tasks.order_by("-id").first()
    if task is None:
        return "awaiting_candidates"
    if task.judgments.exists():
        return "judged"
    # A pair withdrawn (regenerated, or its stream failed) leaves the turn waiting for a new one.
    pending = task.assignments.filter(status=Assignment.Status.PENDING).exists()
    return "judging" if pending else "awaiting_candidates"


def session_add_user_turn(*, conversation: Conversation, content: str) -> Prompt:
    """Append the annotator's message under the current head and open a turn for it."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        _require_open(conversation)
        if turn_state(session_current_turn(conversation)) not in ("none", "judged"):
            raise SessionConflict("judge the current turn before writing the next message")
        if conversation.head is not None and conversation.head.role == "user":
            raise SessionConflict("the conversation is waiting for an assistant reply")
        if _reply_still_streaming(conversation.head):
            raise SessionConflict("the chosen reply is still being saved; try again in a moment")
        message = Message.objects.create(
            conversation=conversation, parent=conversation.head, role="user", content=content
        )
        prefix = [{"role": m.role, "content": m.content} for m in message.path()]
        turn = Prompt.objects.create(
            project=conversation.project,
            messages=prefix,
            conversation=conversation,
            leaf_message=message,
            content_hash=messages_content_hash(prefix),
        )
        conversation.head = message
        conversation.save(update_fields=["head"])
    return turn


def turn_attach_candidates(
    *, turn: Prompt, candidates: list[Candidate], rng: random.Random | None = None
) -> Task:
    """Store K candidates for the open turn and hand the pair to the session's owner."""
    if not 2 <= len(candidates) <= MAX_CANDIDATES:
        raise services.InvalidInput("candidates", f"send 2 to {MAX_CANDIDATES} candidates")
    if len({c.content for c in candidates}) != len(candidates):
        # Identical candidates make a meaningless comparison; the generator must redraw.
        raise services.InvalidInput("candidates", "candidates must differ from each other")
    assert turn.conversation_id is not None  # a turn always belongs to a conversation
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=turn.conversation_id)
        _require_open(conversation)
        if session_current_turn(conversation) != turn or turn_state(turn) != "awaiting_candidates":
            raise SessionConflict("this turn is not waiting for candidates")
        # After a withdrawn pair the turn already has candidates: number on after them.
        first = turn.completions.count()
        completions = [
            services.completion_store(prompt=turn, candidate_index=first + i, candidate=c)
            for i, c in enumerate(candidates)
        ]
        assignment = _turn_pair_for_owner(turn, completions, conversation.owner_id, rng)
    return assignment.task


def session_continue_from(judgment: Judgment) -> None:
    """After a live turn is judged, the chosen reply joins the conversation.

    A ranked turn continues from the reply ranked first. A tie or "both bad" continues from
    the reply shown first, so the session can go on; the judgment itself still records that
    nothing was preferred. A reply judged while it still streams is copied as stored so far;
    ``live_candidate_save`` then gives the message the candidate's final text, and the next
    message waits for that (``_reply_still_streaming``).
    """
    prompt = judgment.task.prompt
    if prompt.conversation_id is None:
        return
    winner_id = judgment.chosen_id or judgment.shown_order[0]
    winner = prompt.completions.get(pk=winner_id)
    reply = Message.objects.create(
        conversation_id=prompt.conversation_id,
        parent=prompt.leaf_message,
        role="assistant",
        content=winner.content,
        completion=winner,
    )
    Conversation.objects.filter(pk=prompt.conversation_id).update(head=reply)


@dataclass(frozen=True)
class LiveDraw:
    """What a live turn's model requests need: the prefix, and a server and seed per candidate."""

    messages: list[dict]
    draws: list[tuple[ServerConfig, int]]


@dataclass(frozen=True)
class LiveCandidate:
    """One streamed candidate: its placeholder Completion, its blind label, its draw."""

    completion_id: int
    label: str
    draw_index: int  # its place in LiveDraw.draws: the server and seed it samples with


@dataclass(frozen=True)
class LiveTurnPlan:
    turn_id: int
    assignment_id: int
    candidates: list[LiveCandidate]  # in label order: A, B, ...
    assignment: dict  # assignment_display(), contents still empty
    draw: LiveDraw


def turn_stream_open(
    *,
    conversation: Conversation,
    regenerate: bool = False,
    rng: random.Random | None = None,
    on_drawn: Callable[[LiveDraw], None] | None = None,
) -> LiveTurnPlan:
    """Create the current turn's candidates empty, with their task and the owner's assignment.

    Everything exists before the first token, so the owner may judge while the candidates
    stream (the stream fills them in). ``regenerate`` withdraws an unjudged pair first; its
    completions stay stored, and the new ones are numbered after them on the same turn Prompt.
    ``on_drawn`` gets the draw once the turn is checked and before the pair is written, so the
    model requests can start meanwhile (if the writing then fails, the caller stops them).
    Raises SessionConflict when the turn is not waiting for candidates (or no model is set),
    and ModelVersionDisabled when an admin switched the session's model off.
    """
    rng = rng or random.Random()
    servers = _live_servers(conversation)
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        _require_open(conversation)
        turn = _turn_open_for_candidates(conversation, regenerate=regenerate)
        # Candidate i samples version i mod n: with two versions, they alternate.
        k = conversation.candidates_per_turn
        drawn = [(servers[i % len(servers)], rng.randrange(2**31)) for i in range(k)]
        draw = LiveDraw(messages=list(turn.messages), draws=drawn)
        if on_drawn is not None:
            on_drawn(draw)
        first = turn.completions.count()
        completions = [
            _placeholder(turn, candidate_index=first + i, server=server, seed=seed)
            for i, (server, seed) in enumerate(drawn)
        ]
        assignment = _turn_pair_for_owner(turn, completions, conversation.owner_id, rng)
    index_of = {c.pk: i for i, c in enumerate(completions)}
    candidates = [
        LiveCandidate(completion_id=cid, label=LABELS[position], draw_index=index_of[cid])
        for position, cid in enumerate(assignment.shown_order)
    ]
    return LiveTurnPlan(
        turn_id=turn.pk,
        assignment_id=assignment.pk,
        candidates=candidates,
        assignment=assignment_display(assignment),
        draw=draw,
    )


def _live_servers(conversation: Conversation) -> list[ServerConfig]:
    versions = list(conversation.model_versions.select_related("endpoint").order_by("pk"))
    versions = versions or session_default_versions(conversation.project)
    if not versions:
        raise SessionConflict("no model is set up for live sessions here; ask a researcher")
    return [server_config_for(v) for v in versions]


def _turn_open_for_candidates(conversation: Conversation, *, regenerate: bool) -> Prompt:
    """The current turn, once it waits for candidates (after withdrawing its pair if asked)."""
    turn = session_current_turn(conversation)
    state = turn_state(turn)
    if turn is not None and state == "judging" and regenerate:
        _withdraw(Assignment.objects.filter(task__prompt=turn), "regenerated")
    elif turn is None or state != "awaiting_candidates":
        raise SessionConflict(_NOT_AWAITING[state])
    return turn


def _placeholder(
    turn: Prompt, *, candidate_index: int, server: ServerConfig, seed: int
) -> Completion:
    return Completion.objects.create(
        prompt=turn,
        candidate_index=candidate_index,
        content="",
        model_name=server.model,
        model_version_id=server.version_id,
        endpoint_id=server.endpoint_id,
        sampling_params={**server.default_sampling.as_dict(), "n": 1},
        seed=seed,
        incomplete=True,
    )


def _turn_pair_for_owner(
    turn: Prompt,
    completions: list[Completion],
    owner_id: int,
    rng: random.Random | None,
) -> Assignment:
    """A live-turn task over ``completions``, held for the session's owner in random order.

    Two are compared on the project's scale; more are ranked.
    """
    task = Task.objects.create(
        project_id=turn.project_id,
        prompt=turn,
        kind=Task.Kind.LIVE_TURN,
        interface=Interface.PAIRWISE if len(completions) == 2 else Interface.RANKING,
        overlap=1,
        slots_taken=1,
    )
    TaskCandidate.objects.bulk_create(
        TaskCandidate(task=task, completion=c, position=i) for i, c in enumerate(completions)
    )
    shown = (rng or random.Random()).sample([c.pk for c in completions], k=len(completions))
    return services.assignment_lease(
        task=task, annotator_id=owner_id, shown_order=shown, hold=LIVE_TURN_HOLD
    )


_NOT_AWAITING = {
    "none": "write a message first",
    "judged": "this turn is judged; write the next message",
    "judging": "this turn's candidates are drawn: judge them, or ask for new ones (regenerate)",
}


def live_candidate_save(
    *,
    completion_id: int,
    content: str,
    finish_reason: str,
    incomplete: bool,
    model_name: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    latency_ms: int | None = None,
) -> bool:
    """Fill in a streamed candidate once, when its stream ends or is cut off.

    If the owner judged before the end and picked it, the reply already in the conversation
    gets the same text. Returns False when the candidate was already saved.
    """
    fields = {
        "content": content,
        "finish_reason": finish_reason,
        "incomplete": incomplete,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "latency_ms": latency_ms,
    }
    if model_name:
        fields["model_name"] = model_name
    with transaction.atomic():
        saved = Completion.objects.filter(STREAMING, pk=completion_id).update(**fields) == 1
        if saved:
            Message.objects.filter(completion_id=completion_id).update(content=content)
        if saved and not incomplete and _repeats_a_sibling(completion_id, content):
            # Already shown, so it cannot be redrawn like a bulk candidate; flagged instead.
            Completion.objects.filter(pk=completion_id).update(duplicate=True)
    return saved


def _repeats_a_sibling(completion_id: int, content: str) -> bool:
    tasks = TaskCandidate.objects.filter(completion_id=completion_id).values("task_id")
    siblings = Completion.objects.filter(taskcandidate__task_id__in=tasks, incomplete=False)
    texts = siblings.exclude(pk=completion_id).values_list("content", flat=True)
    return any(text.strip() == content.strip() for text in texts)


def live_assignment_status(*, assignment_id: int) -> str:
    return Assignment.objects.filter(pk=assignment_id).values_list("status", flat=True).get()


def live_assignment_display(*, assignment_id: int) -> dict | None:
    """The pair as it is stored now, if it still waits for the owner's judgment."""
    pending = Assignment.objects.filter(pk=assignment_id, status=Assignment.Status.PENDING).first()
    return assignment_display(pending) if pending else None


def live_turn_withdraw(*, assignment_id: int, reason: str) -> bool:
    """Take back a live pair nobody judged (its stream failed or was cut off).

    The turn then waits for candidates again; the stored completions stay. False if the owner
    judged it first.
    """
    return _withdraw(Assignment.objects.filter(pk=assignment_id), reason) == 1


def _withdraw(assignments, reason: str) -> int:
    # Conditional on PENDING, like every other assignment transition: a judgment that lands
    # at the same moment wins, and the withdrawal changes nothing.
    return assignments.filter(status=Assignment.Status.PENDING).update(
        status=Assignment.Status.SKIPPED, skip_reason=f"withdrawn: {reason}"
    )


def _reply_still_streaming(head: Message | None) -> bool:
    """The head is a reply judged before its stream ended, and the stream has not saved it yet.

    A stream outlives its deadline only if its process died; then what was stored is final.
    """
    if head is None or head.completion_id is None:
        return False
    recent = timezone.now() - timedelta(seconds=settings.LIVE_STREAM_MAX_SECONDS + 30)
    return Completion.objects.filter(
        STREAMING, pk=head.completion_id, created_at__gt=recent
    ).exists()


def session_end(*, conversation: Conversation) -> Conversation:
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.ENDED)
    conversation.refresh_from_db()
    return conversation


SESSION_LIST_LIMIT = 50


def session_list(*, project: Project, owner: User) -> list[dict]:
    """The owner's sessions in ``project``, open ones first, newest first (at most 50)."""
    first_message = (
        Message.objects.filter(conversation=OuterRef("pk"), role="user")
        .order_by("id")
        .annotate(start=Substr("content", 1, 200))  # a title, not the whole message
    )
    rows = (
        Conversation.objects.filter(project=project, owner=owner)
        .annotate(turn_count=Count("turns"), title=Subquery(first_message.values("start")[:1]))
        .order_by("-status", "-created_at", "-id")[:SESSION_LIST_LIMIT]  # "open" > "ended"
    )
    return [
        {
            "id": c.pk,
            "status": c.status,
            "created_at": c.created_at,
            "turns": c.turn_count,
            "title": _title(c.title or ""),
        }
        for c in rows
    ]


def _title(first_message: str, limit: int = 80) -> str:
    line = " ".join(first_message.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def session_display(conversation: Conversation) -> dict:
    path = conversation.head.path() if conversation.head else []
    turn = session_current_turn(conversation)
    state = turn_state(turn)
    assignment = None
    if state == "judging":
        assignment = Assignment.objects.filter(
            task__prompt=turn, status=Assignment.Status.PENDING
        ).first()
    return {
        "id": conversation.pk,
        "project": conversation.project.slug,
        "status": conversation.status,
        "candidates_per_turn": conversation.candidates_per_turn,
        "messages": [{"id": m.pk, "role": m.role, "content": m.content} for m in path],
        "turn": None
        if turn is None
        else {
            "id": turn.pk,
            "state": state,
            "assignment": assignment_display(assignment) if assignment else None,
        },
    }


def _require_open(conversation: Conversation) -> None:
    if conversation.status != Conversation.Status.OPEN:
        raise SessionConflict("this conversation has ended")
