"""Stream a live turn's candidates side by side and store each one as it ends (issue #4).

Model I/O runs here on the event loop; every database step is a short call in a thread
(``db_step``), never a transaction held across the I/O (STYLE rule 2). The model requests
start as soon as the turn is checked and the candidates drawn, while the step that opens the
turn is still writing the pair (``TurnRun.begin_soon``): the model works during those writes
instead of after them. Nothing is sent or stored before the pair's task and assignment exist
(``sessions.turn_stream_open``), so the first event is ``start`` and the owner may judge
mid-stream through the normal judgment endpoint: a poll notices, the streams stop, their
upstream requests are closed, and what they had produced is stored as incomplete.

Events, in order (the view sends each as ``event: <name>`` / ``data: <json>``; under load the
deltas waiting in the queue are merged per label and sent in one write, so a busy server does
not pay per token):
  start   {"turn", "assignment"}         the pair exists and may be judged; contents still empty
  delta   {"label", "text"}              more text for candidate "A" or "B"
  done    {"label", "finish_reason", "incomplete"}   that candidate is stored (one per label)
then exactly one of
  ready   {"assignment"}                 every candidate ended; the stored pair to judge
  stopped {"reason": "judged" | "withdrawn"}   judged (or redrawn elsewhere) before the end
  error   {"message"}                    the model server failed; the turn waits for a retry
and, whenever nothing was sent for LIVE_STREAM_KEEPALIVE_SECONDS (a busy vLLM can take that
long to its first token), a ``: keepalive`` comment line, so proxies and browsers do not close
an idle connection. Clients skip comment lines, as the SSE format says.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from models_serving.client import ChatClient, ModelServerError, ServerConfig, StreamEnd

from . import sessions
from .models import Assignment
from .serializers import assignment_data

logger = logging.getLogger(__name__)

Event = tuple[str, dict]

SERVER_DOWN = "The model server is not answering; your conversation is saved, try again."
KEEPALIVE: Event = ("keepalive", {})  # sent as an SSE comment, not as an event
# A run attached to its pair whose events nobody starts reading in this time (the client left
# between the opening step and the first byte) is halted as if the client had disconnected.
UNREAD_GRACE_SECONDS = 10.0

P = ParamSpec("P")
R = TypeVar("R")


def db_step(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``fn`` as a short database step off the event loop, its connection handed back after.

    A stream lasts minutes; a connection held by its thread all along would starve the pool.
    """

    def step(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            if not connection.in_atomic_block:  # a test's transaction; never a request's
                close_old_connections()

    return sync_to_async(step)


async def live_turn_events(run: "TurnRun") -> AsyncGenerator[list[Event], None]:
    """The events of an attached turn run, in batches of what was ready at once.

    Closing the iterator early cancels the upstream requests.
    """
    plan = run.plan
    assert plan is not None, "attach the stored pair first"
    try:
        run.watch()
        yield [("start", {"turn": plan.turn_id, "assignment": assignment_data(plan.assignment)})]
        while batch := await run.next_batch():
            yield batch
        if closing := await run.halt(run.reason):
            yield closing
    finally:
        # Reached early only when the client went away (Django cancels or closes us).
        await run.halt("disconnect")


@dataclass(frozen=True)
class _Stop:
    reason: str  # becomes the finish_reason of candidates cut off by it


_FINISHED = object()  # one stream ended and its candidate is stored


@dataclass
class _Stream:
    index: int  # its place in the draw; its label is known once the pair is stored
    server: ServerConfig
    seed: int
    spec: sessions.LiveCandidate | None = None  # set by attach()
    parts: list[str] = field(default_factory=list)
    end: StreamEnd | None = None
    announced: bool = False  # its done event is queued: it was stored whole

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def label(self) -> str:
        assert self.spec is not None
        return self.spec.label


@dataclass(frozen=True)
class _Delta:
    stream: _Stream  # labelled when sent: the pair may not be stored yet when text arrives
    text: str


class TurnRun:
    """A live turn's model streams and the events they make.

    The streams begin as soon as the candidates are drawn (``begin_soon``, called by
    ``sessions.turn_stream_open`` from its database step, before it writes the pair), so the
    model works while the pair is being stored; ``attach`` then hands over the stored pair,
    and nothing is stored or sent before it. ``abort`` stops streams whose pair was never
    stored.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.plan: sessions.LiveTurnPlan | None = None
        self.streams: list[_Stream] = []
        self.queue: asyncio.Queue[Event | _Delta | _Stop | object] = asyncio.Queue()
        self.tasks: list[asyncio.Task] = []
        self.clients: list[ChatClient] = []
        self.reason = ""
        self.attached = asyncio.Event()
        self.started = self.loop.time()
        self.deadline = self.started + settings.LIVE_STREAM_MAX_SECONDS
        self._running = 0
        self._halting: asyncio.Future[list[Event]] | None = None
        self.reading = False  # live_turn_events has started

    def begin_soon(self, draw: sessions.LiveDraw) -> None:
        """Start the draw's streams on the event loop; safe to call from another thread."""
        self.loop.call_soon_threadsafe(self._begin, draw)

    def _begin(self, draw: sessions.LiveDraw) -> None:
        if self.streams or self._halting is not None:
            return  # begun already (attach got here first), or given up
        self.started = self.loop.time()
        self.deadline = self.started + settings.LIVE_STREAM_MAX_SECONDS
        clients: dict = {}
        for index, (server, seed) in enumerate(draw.draws):
            stream = _Stream(index=index, server=server, seed=seed)
            self.streams.append(stream)
            client = clients.setdefault(server, ChatClient(server))
            self.tasks.append(asyncio.create_task(self._pump(stream, client, draw.messages)))
        self.clients = list(clients.values())
        self._running = len(self.streams)

    def attach(self, plan: sessions.LiveTurnPlan) -> None:
        """The pair is stored: label the streams, and let them store and announce themselves."""
        self._begin(plan.draw)  # a no-op when begin_soon's call came first, as it does
        for spec in plan.candidates:
            self.streams[spec.draw_index].spec = spec
        self.plan = plan
        self.attached.set()
        self.loop.call_later(UNREAD_GRACE_SECONDS, self._halt_if_unread)

    def _halt_if_unread(self) -> None:
        if not self.reading and self._halting is None:
            self._unread_halt = asyncio.ensure_future(self.halt("disconnect"))

    def watch(self) -> None:
        """The events are being read: look out for a judgment made meanwhile."""
        self.reading = True
        self.tasks.append(asyncio.create_task(self._watch()))

    async def abort(self) -> None:
        """Stop streams whose pair was not stored (the step that stores it failed)."""
        if self._halting is None:
            self._halting = asyncio.ensure_future(self._stop_streams())
        await asyncio.shield(self._halting)

    async def next_batch(self) -> list[Event]:
        """The events ready now (waiting for one if none is), or [] once the turn must stop.

        ``self.reason`` then says why.
        """
        loop = self.loop
        while not self.reason:
            quiet_until = loop.time() + settings.LIVE_STREAM_KEEPALIVE_SECONDS
            try:
                async with asyncio.timeout_at(min(self.deadline, quiet_until)):
                    first = await self.queue.get()
            except TimeoutError:
                if loop.time() < self.deadline:
                    return [KEEPALIVE]
                self.reason = "timeout"
                return []
            batch = _Batch()
            items = [first, *_drain(self.queue)]
            for i, item in enumerate(items):
                if isinstance(item, _Stop):
                    self.reason = item.reason
                    for rest in items[i + 1 :]:  # back in the queue, for the halt to drain
                        self.queue.put_nowait(rest)
                    break
                if item is _FINISHED:
                    self._running -= 1
                    if self._running == 0:
                        self.reason = "finished"
                    continue
                batch.add(_event(item))
            if events := batch.events():
                # Sent before the turn stops: the closing events come in the next batch.
                return events
        return []

    async def halt(self, reason: str) -> list[Event]:
        """Stop everything once, store what is left, and return the closing events."""
        if self._halting is None:
            self._halting = asyncio.ensure_future(self._halt(reason))
        # Shielded: a client leaving mid-halt must not leave candidates half stored.
        return await asyncio.shield(self._halting)

    async def _stop_streams(self) -> list[Event]:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for client in self.clients:
            await client.close()
        return []

    async def _halt(self, reason: str) -> list[Event]:
        await self._stop_streams()
        # Text read but not sent yet goes out now, so the client ends with the stored text.
        unsent = _Batch()
        for item in _drain(self.queue):
            if isinstance(item, tuple | _Delta):
                unsent.add(_event(item))
        elapsed_ms = int((asyncio.get_running_loop().time() - self.started) * 1000)
        closing = await db_step(self._store_rest)(reason, elapsed_ms)
        return [] if reason == "disconnect" else unsent.events() + closing

    def _store_rest(self, reason: str, elapsed_ms: int) -> list[Event]:
        """Store the candidates cut off by ``reason``; the done events and the closing event."""
        assert self.plan is not None and all(stream.spec for stream in self.streams)
        events: list[Event] = []
        for stream in self.streams:
            if stream.announced:
                continue
            label = stream.label
            if sessions.live_candidate_save(
                completion_id=stream.spec.completion_id,  # type: ignore[union-attr]
                content=stream.text,
                finish_reason=reason,
                incomplete=True,
                latency_ms=elapsed_ms,
            ):
                events.append(_done(label, reason, incomplete=True))
            elif stream.end is not None:  # stored whole just as we cancelled its task
                events.append(_done(label, stream.end.finish_reason, incomplete=False))
        cut = any(e[1]["incomplete"] for e in events)
        # A failed pair, or one the annotator left half-streamed, is withdrawn: the turn then
        # waits for a fresh pair, and the stored (incomplete) candidates stay for the record.
        if reason == "error" or (reason == "disconnect" and cut):
            withdrawn = sessions.live_turn_withdraw(
                assignment_id=self.plan.assignment_id, reason=reason
            )
            if withdrawn and reason == "error":
                return [("error", {"message": SERVER_DOWN})]
        return events + [self._closing_event()]

    def _closing_event(self) -> Event:
        assert self.plan is not None  # only _store_rest calls this, once the plan is attached
        display = sessions.live_assignment_display(assignment_id=self.plan.assignment_id)
        if display is not None:
            return "ready", {"assignment": assignment_data(display)}
        status = sessions.live_assignment_status(assignment_id=self.plan.assignment_id)
        return "stopped", {
            "reason": "judged" if status == Assignment.Status.SUBMITTED else "withdrawn"
        }

    async def _pump(self, stream: _Stream, client: ChatClient, messages: list[dict]) -> None:
        try:
            await self._read(stream, client, messages)
            await self.attached.wait()
            await db_step(self._store_whole)(stream)
        except ModelServerError as exc:
            logger.warning("live turn, candidate %s: %s", stream.index, exc)
            self.queue.put_nowait(_Stop("error"))
            return
        except Exception:
            logger.exception("live turn, candidate %s failed", stream.index)
            self.queue.put_nowait(_Stop("error"))
            return
        stream.announced = True
        assert stream.end is not None
        self.queue.put_nowait(_done(stream.label, stream.end.finish_reason, incomplete=False))
        self.queue.put_nowait(_FINISHED)

    async def _read(self, stream: _Stream, client: ChatClient, messages: list[dict]) -> None:
        params = stream.server.default_sampling
        items = client.stream(messages, params=params, seed=stream.seed)
        async with contextlib.aclosing(items):
            async for item in items:
                if isinstance(item, StreamEnd):
                    stream.end = item
                else:
                    stream.parts.append(item)
                    self.queue.put_nowait(_Delta(stream, item))

    def _store_whole(self, stream: _Stream) -> None:
        end = stream.end
        assert end is not None
        assert stream.spec is not None
        sessions.live_candidate_save(
            completion_id=stream.spec.completion_id,
            content=stream.text,
            finish_reason=end.finish_reason,
            incomplete=False,
            model_name=end.model,
            prompt_tokens=end.prompt_tokens,
            completion_tokens=end.completion_tokens,
            latency_ms=end.latency_ms,
        )

    async def _watch(self) -> None:
        """Notice a judgment (or a redraw) made through the normal API while we stream."""
        assert self.plan is not None  # watch() is called only after the plan is attached
        status = db_step(sessions.live_assignment_status)
        current: str = Assignment.Status.PENDING
        while current == Assignment.Status.PENDING:
            await asyncio.sleep(settings.LIVE_STREAM_POLL_SECONDS)
            try:
                current = await status(assignment_id=self.plan.assignment_id)
            except Exception:  # a database hiccup: the streams go on, we look again later
                logger.exception("live turn %s: could not check its assignment", self.plan.turn_id)
        judged = current == Assignment.Status.SUBMITTED
        self.queue.put_nowait(_Stop("judged" if judged else "withdrawn"))


class _Batch:
    """Events in queue order, with each label's consecutive deltas merged into one.

    A and B stream independently, so merging A's deltas across B's changes no text; a
    non-delta event (done) comes after its label's deltas, as it was queued.
    """

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._open: dict[str, dict] = {}  # label -> the delta event still taking text

    def add(self, event: Event) -> None:
        name, data = event
        if name != "delta":
            self._open.clear()
            self._events.append(event)
        elif (merged := self._open.get(data["label"])) is not None:
            merged["text"] += data["text"]
        else:
            merged = {"label": data["label"], "text": data["text"]}
            self._open[data["label"]] = merged
            self._events.append(("delta", merged))

    def events(self) -> list[Event]:
        return self._events


def _event(item: Event | _Delta) -> Event:
    if isinstance(item, _Delta):
        return "delta", {"label": item.stream.label, "text": item.text}
    return item


def _done(label: str, finish_reason: str, *, incomplete: bool) -> Event:
    return "done", {"label": label, "finish_reason": finish_reason, "incomplete": incomplete}


def _drain(queue: asyncio.Queue) -> list:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
