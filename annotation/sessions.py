"""Live multi-turn sessions: the annotator writes a turn, judges candidates, and the
conversation continues from the chosen reply (book §11.2.3).

Generation of the candidates belongs to models_serving (the generation issue); here a
turn's candidates are attached by whoever produced them and judged like any pair.
"""

import random
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from models_serving.client import Candidate

from . import services
from .models import (
    Assignment,
    Conversation,
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


class SessionConflict(Exception):
    """The session is not in a state that allows this step; the message says why."""


def session_start(*, project: Project, owner: AbstractBaseUser, system: str = "") -> Conversation:
    with transaction.atomic():
        conversation = Conversation.objects.create(project=project, owner=owner)
        if system:
            head = Message.objects.create(conversation=conversation, role="system", content=system)
            conversation.head = head
            conversation.save(update_fields=["head"])
    return conversation


def session_current_turn(conversation: Conversation) -> Prompt | None:
    return conversation.turns.order_by("-id").first()


def turn_state(turn: Prompt | None) -> str:
    if turn is None:
        return "none"
    task = turn.tasks.first()
    if task is None:
        return "awaiting_candidates"
    return "judged" if task.judgments.exists() else "judging"


def session_add_user_turn(*, conversation: Conversation, content: str) -> Prompt:
    """Append the annotator's message under the current head and open a turn for it."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        _require_open(conversation)
        if turn_state(session_current_turn(conversation)) not in ("none", "judged"):
            raise SessionConflict("judge the current turn before writing the next message")
        if conversation.head is not None and conversation.head.role == "user":
            raise SessionConflict("the conversation is waiting for an assistant reply")
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
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=turn.conversation_id)
        _require_open(conversation)
        if session_current_turn(conversation) != turn or turn_state(turn) != "awaiting_candidates":
            raise SessionConflict("this turn is not waiting for candidates")
        completions = [
            services.completion_store(prompt=turn, candidate_index=i, candidate=c)
            for i, c in enumerate(candidates)
        ]
        task = Task.objects.create(
            project=turn.project, prompt=turn, kind=Task.Kind.LIVE_TURN, overlap=1, slots_taken=1
        )
        TaskCandidate.objects.bulk_create(
            TaskCandidate(task=task, completion=c, position=i) for i, c in enumerate(completions)
        )
        shown = (rng or random.Random()).sample([c.pk for c in completions], k=len(completions))
        services.assignment_lease(
            task=task, annotator=conversation.owner, shown_order=shown, hold=LIVE_TURN_HOLD
        )
    return task


def session_continue_from(judgment: Judgment) -> None:
    """After a live turn is judged, the chosen reply joins the conversation.

    A tie or "both bad" continues from the reply shown first, so the session can go on;
    the judgment itself still records that nothing was preferred.
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


def session_end(*, conversation: Conversation) -> Conversation:
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.ENDED)
    conversation.refresh_from_db()
    return conversation


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
