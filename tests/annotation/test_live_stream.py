"""Live multi-turn streams through the real ASGI entry point (config.asgi.application).

Candidates come from a real `transformers serve` on the tiny model, or, for failures,
slow streams and cancellation, from the scripted loopback server in tests/fake_model_server.py.
The app runs its database steps in other threads, hence transactional tests.
"""

import asyncio
import dataclasses
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.db import connection, connections
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

import config.asgi
from annotation import live_turns, sessions
from annotation.live_turns import SERVER_DOWN
from annotation.models import Assignment, Completion, Conversation, Message, Prompt, Role
from factories import ProjectFactory, member
from fake_model_server import Reply, ScriptedServer, stream_reply
from models_serving.local_server import local_model_server, served_model_name
from models_serving.models import ModelEndpoint, ModelVersion

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

SECRET_MODEL = "secret-model-name"
SECRET_LABEL = "secret-version-label"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local_model(tiny_models) -> Iterator[str]:
    with local_model_server(settings.TINY_POLICY_DIR, _free_port()) as base_url:
        yield base_url


@pytest.fixture
def model_server() -> Iterator[ScriptedServer]:
    yield from ScriptedServer().serve()


@pytest.fixture(autouse=True)
def _pool_closed_after_each_test():
    yield
    # The app's threads hand their connections back to the pool, which would otherwise keep
    # them open and stop the test database from being dropped at the end.
    if hasattr(connection, "close_pool"):
        connection.close_pool()


@pytest.fixture
def closed_port() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{_free_port()}/v1"


@pytest.fixture
def fast_polls(settings):
    settings.LIVE_STREAM_POLL_SECONDS = 0.05


def slow_by_seed(request: dict) -> Reply:
    """A long reply, different per candidate (its seed), one delta every 20 ms."""
    deltas = [f"s{request['seed']}-{i} " for i in range(300)]
    return stream_reply(*deltas, chunk_delay=0.02, model=SECRET_MODEL)


def quick_by_seed(request: dict) -> Reply:
    return stream_reply("Hello ", f"from {request['seed']}", model=SECRET_MODEL)


def version_at(base_url: str, *, kind: str = "vllm", model_name: str = SECRET_MODEL):
    endpoint = ModelEndpoint.objects.create(
        name=f"live-{secrets.token_hex(4)}",
        base_url=base_url,
        kind=kind,
        default_sampling_params={"max_tokens": 12, "temperature": 1.0},
    )
    return ModelVersion.objects.create(endpoint=endpoint, model_name=model_name, label=SECRET_LABEL)


class Live:
    """A project, its annotator (with an API token) and a session waiting for candidates."""

    def __init__(self, version: ModelVersion | None) -> None:
        self.project = ProjectFactory()
        self.owner = member(self.project, Role.ANNOTATOR)
        self.token = Token.objects.create(user=self.owner).key
        versions = [version] if version else []
        self.session = sessions.session_start(
            project=self.project, owner=self.owner, system="Be brief.", model_versions=versions
        )
        self.turn = sessions.session_add_user_turn(conversation=self.session, content="Hi there")
        self.path = f"/api/v1/sessions/{self.session.pk}/stream/"

    def api(self) -> APIClient:
        client = APIClient()
        client.force_authenticate(self.owner)
        return client

    def state(self) -> dict:
        return self.api().get(f"/api/v1/sessions/{self.session.pk}/").json()


# --- speaking HTTP to config.asgi.application -----------------------------------------------


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }


class Http:
    """One request through the ASGI app, its response read as it streams."""

    def __init__(self, method: str, path: str, *, body=None, token=None, headers=()) -> None:
        extra = list(headers)
        if token:
            extra.append((b"authorization", f"Token {token}".encode()))
        self.body = b"" if body is None else json.dumps(body).encode()
        if body is not None:
            extra.append((b"content-type", b"application/json"))
            extra.append((b"content-length", str(len(self.body)).encode()))
        self.talk = ApplicationCommunicator(config.asgi.application, _scope(method, path, extra))
        self.buffer = b""
        self.ended = False
        self.comments: list[str] = []

    async def start(self) -> int:
        await self.talk.send_input({"type": "http.request", "body": self.body})
        start = await self.talk.receive_output(timeout=30)
        return start["status"]

    async def chunk(self) -> bytes:
        message = await self.talk.receive_output(timeout=30)
        self.ended = not message.get("more_body")
        return message.get("body", b"")

    async def read_all(self) -> bytes:
        while not self.ended:
            self.buffer += await self.chunk()
        await self.talk.wait(timeout=10)  # let the app finish its own cleanup
        return self.buffer

    async def events(self) -> AsyncIterator[tuple[str, dict]]:
        """Server-sent events as they arrive, until the response ends."""
        while True:
            while b"\n\n" in self.buffer:
                block, self.buffer = self.buffer.split(b"\n\n", 1)
                if block.startswith(b":"):  # a comment: the keepalive
                    self.comments.append(block.decode())
                    continue
                fields = dict(line.split(": ", 1) for line in block.decode().splitlines())
                yield fields["event"], json.loads(fields["data"])
            if self.ended:
                await self.talk.wait(timeout=10)
                return
            self.buffer += await self.chunk()

    async def disconnect(self) -> None:
        await self.talk.send_input({"type": "http.disconnect"})
        await self.talk.wait(timeout=10)


async def call(method: str, path: str, **kwargs) -> tuple[int, dict]:
    http = Http(method, path, **kwargs)
    status = await http.start()
    body = await http.read_all()
    return status, json.loads(body) if body.strip() else {}


async def stream_all(live: Live, **body) -> tuple[int, list[tuple[str, dict]], bytes]:
    http = Http("POST", live.path, body=body, token=live.token)
    status = await http.start()
    if status != 200:
        return status, [], await http.read_all()
    events = [event async for event in http.events()]
    return status, events, json.dumps(events).encode()


def texts_of(events: list[tuple[str, dict]]) -> dict[str, str]:
    texts = {"A": "", "B": ""}
    for name, data in events:
        if name == "delta":
            texts[data["label"]] += data["text"]
    return texts


def dones(events) -> dict[str, dict]:
    return {data["label"]: data for name, data in events if name == "done"}


def stored(assignment_id: int) -> dict[str, Completion]:
    """The pair's completions by the label the annotator saw."""
    shown = Assignment.objects.get(pk=assignment_id).shown_order
    return {"AB"[i]: Completion.objects.get(pk=cid) for i, cid in enumerate(shown)}


# --- the tests ------------------------------------------------------------------------------


def test_two_candidates_stream_side_by_side_and_are_stored_with_provenance(local_model):
    model_name = served_model_name(settings.TINY_POLICY_DIR)
    version = version_at(local_model, kind="transformers-serve", model_name=model_name)
    live = Live(version)

    status, events, raw = asyncio.run(stream_all(live))

    assert status == 200
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "ready"
    assert set(names) == {"start", "delta", "done", "ready"}
    start, ready = events[0][1], events[-1][1]
    assert start["turn"] == live.turn.pk
    assert [c["label"] for c in start["assignment"]["candidates"]] == ["A", "B"]
    assert ready["assignment"]["id"] == start["assignment"]["id"]
    texts = texts_of(events)
    assert {c["label"]: c["content"] for c in ready["assignment"]["candidates"]} == texts
    assert all(texts.values()), "the tiny model produced no text"
    # Blind: no event names the model, its version or its endpoint.
    for secret in (model_name, SECRET_LABEL, version.endpoint.name, local_model):
        assert secret.encode() not in raw
    assert {label: d["incomplete"] for label, d in dones(events).items()} == {
        "A": False,
        "B": False,
    }

    pair = stored(start["assignment"]["id"])
    assert {label: c.content for label, c in pair.items()} == texts
    for label, completion in pair.items():
        assert completion.prompt_id == live.turn.pk
        assert completion.model_version_id == version.pk
        assert completion.endpoint_id == version.endpoint_id
        assert completion.model_name == model_name
        assert completion.finish_reason == dones(events)[label]["finish_reason"]
        assert completion.finish_reason in ("stop", "length") and not completion.incomplete
        assert completion.latency_ms and completion.latency_ms > 0
        assert completion.completion_tokens and completion.prompt_tokens
        assert completion.sampling_params["max_tokens"] == 12
    assert pair["A"].seed != pair["B"].seed

    # Judged afterwards through the normal endpoint, the session continues from the winner.
    judged = live.api().post(
        f"/api/v1/assignments/{start['assignment']['id']}/judgment/",
        {"choice": 5, "idempotency_key": "live-after-stream"},
        format="json",
    )
    assert judged.status_code == 201
    state = live.state()
    assert state["turn"]["state"] == "judged"
    assert state["messages"][-1] == {
        "id": state["messages"][-1]["id"],
        "role": "assistant",
        "content": texts["B"],
    }


def test_judging_mid_stream_stops_both_streams_and_keeps_what_was_streamed(
    model_server, fast_polls
):
    model_server.fallback = slow_by_seed
    live = Live(version_at(model_server.base_url))

    async def scenario():
        http = Http("POST", live.path, body={"regenerate": False}, token=live.token)
        assert await http.start() == 200
        events = []
        async for event in http.events():
            events.append(event)
            texts = texts_of(events)
            if len(texts["A"]) > 20 and len(texts["B"]) > 20:
                break
        # The pair exists from the first event: judge it now, as Chatbot Arena users want to.
        assignment_id = events[0][1]["assignment"]["id"]
        status, _ = await call(
            "POST",
            f"/api/v1/assignments/{assignment_id}/judgment/",
            body={"choice": 1, "idempotency_key": "mid-stream-1"},
            token=live.token,
        )
        assert status == 201
        events += [event async for event in http.events()]
        return events

    events = asyncio.run(scenario())

    assert events[-1] == ("stopped", {"reason": "judged"})
    assert "ready" not in [name for name, _ in events]
    assert dones(events) == {
        "A": {"label": "A", "finish_reason": "judged", "incomplete": True},
        "B": {"label": "B", "finish_reason": "judged", "incomplete": True},
    }
    assert SECRET_MODEL not in json.dumps(events)
    texts = texts_of(events)
    pair = stored(events[0][1]["assignment"]["id"])
    # Stored exactly as streamed to the annotator, and far from the full 300 deltas.
    assert {label: c.content for label, c in pair.items()} == texts
    assert all(c.incomplete and c.finish_reason == "judged" for c in pair.values())
    assert all(0 < len(c.content.split()) < 300 for c in pair.values())
    # Both upstream requests were closed: the server saw its client hang up.
    assert model_server.streams_ended.acquire(timeout=5)
    assert model_server.streams_ended.acquire(timeout=5)
    assert model_server.hung_up == 2

    # "A is much better": the conversation continues from A's text as it was when judged.
    head = Conversation.objects.get(pk=live.session.pk).head
    assert (head.role, head.content, head.completion_id) == ("assistant", texts["A"], pair["A"].pk)
    reply = live.api().post(
        f"/api/v1/sessions/{live.session.pk}/turns/", {"content": "And then?"}, format="json"
    )
    assert reply.status_code == 201
    next_turn = Prompt.objects.get(pk=reply.json()["turn"]["id"])
    assert next_turn.messages[-2:] == [
        {"role": "assistant", "content": texts["A"]},
        {"role": "user", "content": "And then?"},
    ]


def test_a_client_leaving_cancels_upstream_and_keeps_partial_candidates(model_server, fast_polls):
    model_server.fallback = slow_by_seed
    live = Live(version_at(model_server.base_url))

    async def scenario():
        http = Http("POST", live.path, body={}, token=live.token)
        assert await http.start() == 200
        events = []
        async for event in http.events():
            events.append(event)
            if len([e for e in events if e[0] == "delta"]) >= 10:
                break
        await http.disconnect()
        return events

    events = asyncio.run(scenario())

    assert model_server.streams_ended.acquire(timeout=5)
    assert model_server.streams_ended.acquire(timeout=5)
    assert model_server.hung_up == 2
    pair = stored(events[0][1]["assignment"]["id"])
    full = {c.seed: "".join(f"s{c.seed}-{i} " for i in range(300)) for c in pair.values()}
    for completion in pair.values():
        assert completion.incomplete and completion.finish_reason == "disconnect"
        assert completion.content and full[completion.seed].startswith(completion.content)
        assert completion.content != full[completion.seed]
    # The half-streamed pair is withdrawn; the annotator's message and place are kept.
    assignment = Assignment.objects.get(pk=events[0][1]["assignment"]["id"])
    assert assignment.status == Assignment.Status.SKIPPED
    state = live.state()
    assert state["turn"]["state"] == "awaiting_candidates"
    assert state["messages"][-1]["content"] == "Hi there"

    # Coming back draws a fresh pair for the same turn.
    model_server.fallback = quick_by_seed
    status, events, _ = asyncio.run(stream_all(live))
    assert status == 200 and events[-1][0] == "ready"
    assert events[0][1]["turn"] == live.turn.pk
    assert live.turn.completions.count() == 4


@pytest.mark.parametrize("failure", ["refused", "http-500", "crash-mid-stream"])
def test_model_server_down_gives_a_clear_error_and_keeps_the_turn(
    model_server, closed_port, failure
):
    if failure == "refused":
        base_url = closed_port
    else:
        base_url = model_server.base_url
        model_server.fallback = (
            Reply(status=500, body=b"Traceback: SECRET upstream detail")
            if failure == "http-500"
            else stream_reply("partial ", "text ", "then ", "nothing", drop_after=2)
        )
    version = version_at(base_url)
    live = Live(version)

    status, events, raw = asyncio.run(stream_all(live))

    assert status == 200
    assert events[0][0] == "start" and events[-1] == ("error", {"message": SERVER_DOWN})
    for secret in (b"SECRET", b"127.0.0.1", b"Traceback", SECRET_MODEL.encode()):
        assert secret not in raw
    # Nothing lost: the message stays and the turn waits for candidates again.
    state = live.state()
    assert state["turn"] == {"id": live.turn.pk, "state": "awaiting_candidates", "assignment": None}
    assert [m["content"] for m in state["messages"]] == ["Be brief.", "Hi there"]
    assert all(c.incomplete for c in live.turn.completions.all())

    # Once the server is back, trying again works from the same place.
    version.endpoint.base_url = model_server.base_url
    version.endpoint.save(update_fields=["base_url"])
    model_server.fallback = quick_by_seed
    status, events, _ = asyncio.run(stream_all(live))
    assert status == 200 and events[-1][0] == "ready"


def test_regenerate_draws_a_new_pair_for_the_same_prefix(model_server):
    model_server.fallback = quick_by_seed
    live = Live(version_at(model_server.base_url))

    _, first, _ = asyncio.run(stream_all(live))
    assert first[-1][0] == "ready"
    old_assignment = first[0][1]["assignment"]["id"]

    # Without regenerate the drawn pair is kept, so a reload cannot silently redraw it.
    status, _, body = asyncio.run(stream_all(live))
    assert status == 409 and b"regenerate" in body

    status, second, _ = asyncio.run(stream_all(live, regenerate=True))
    assert status == 200 and second[-1][0] == "ready"
    new_assignment = second[0][1]["assignment"]["id"]
    assert new_assignment != old_assignment and second[0][1]["turn"] == live.turn.pk
    old = Assignment.objects.get(pk=old_assignment)
    assert (old.status, old.skip_reason) == ("skipped", "withdrawn: regenerated")
    # Same turn Prompt and prefix; the old candidates stay stored, the new ones follow them.
    indexes = sorted(live.turn.completions.values_list("candidate_index", flat=True))
    assert indexes == [0, 1, 2, 3]
    assert live.state()["turn"]["assignment"]["id"] == new_assignment

    api = live.api()
    late = api.post(
        f"/api/v1/assignments/{old_assignment}/judgment/",
        {"choice": 1, "idempotency_key": "old-pair"},
        format="json",
    )
    assert late.status_code == 409
    judged = api.post(
        f"/api/v1/assignments/{new_assignment}/judgment/",
        {"choice": 4, "idempotency_key": "new-pair"},
        format="json",
    )
    assert judged.status_code == 201
    assert live.state()["messages"][-1]["content"] == texts_of(second)["B"]
    # A judged turn cannot be redrawn.
    status, _, _ = asyncio.run(stream_all(live, regenerate=True))
    assert status == 409


def test_a_stream_past_its_deadline_is_cut_and_can_still_be_judged(model_server, settings):
    settings.LIVE_STREAM_MAX_SECONDS = 0.6
    model_server.fallback = slow_by_seed
    live = Live(version_at(model_server.base_url))

    status, events, _ = asyncio.run(stream_all(live))

    assert status == 200 and events[-1][0] == "ready"
    assert {d["finish_reason"] for d in dones(events).values()} == {"timeout"}
    ready = events[-1][1]["assignment"]
    assert {c["label"]: c["content"] for c in ready["candidates"]} == texts_of(events)
    assert all(c.incomplete for c in stored(ready["id"]).values())
    judged = live.api().post(
        f"/api/v1/assignments/{ready['id']}/judgment/",
        {"choice": 3, "idempotency_key": "after-timeout"},
        format="json",
    )
    assert judged.status_code == 201


def test_a_slow_first_token_keeps_the_connection_alive_with_comments(model_server, settings):
    settings.LIVE_STREAM_KEEPALIVE_SECONDS = 0.1
    late = dataclasses.replace(stream_reply("Late ", "but here"), delay=0.6)
    model_server.fallback = lambda request: late
    live = Live(version_at(model_server.base_url))

    async def go() -> tuple[list, list[str]]:
        http = Http("POST", live.path, body={}, token=live.token)
        assert await http.start() == 200
        events = [event async for event in http.events()]
        return events, http.comments

    events, comments = asyncio.run(go())

    # Nothing to say for 0.6 s after start: comments every 0.1 s, then the turn as usual.
    assert len(comments) >= 3 and set(comments) == {": keepalive"}
    assert [name for name, _ in events][0] == "start" and events[-1][0] == "ready"
    assert texts_of(events) == {"A": "Late but here", "B": "Late but here"}


def _wait_for_model_requests(model_server, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(model_server.requests) < count:
        assert time.monotonic() < deadline, "the model was not asked while the pair was written"
        time.sleep(0.01)


def test_the_model_is_asked_before_the_pair_is_written(model_server, monkeypatch):
    """The streams start once the turn is checked, not after the pair is stored."""
    model_server.fallback = quick_by_seed
    live = Live(version_at(model_server.base_url))
    write_pair = sessions._turn_pair_for_owner

    def write_pair_once_asked(*args, **kwargs):
        _wait_for_model_requests(model_server, 2)  # times out if the streams waited for us
        return write_pair(*args, **kwargs)

    monkeypatch.setattr(sessions, "_turn_pair_for_owner", write_pair_once_asked)

    status, events, _ = asyncio.run(stream_all(live))

    assert status == 200 and events[0][0] == "start" and events[-1][0] == "ready"
    pair = stored(events[0][1]["assignment"]["id"])
    assert {label: c.content for label, c in pair.items()} == texts_of(events)
    assert {c.content for c in pair.values()} == {f"Hello from {c.seed}" for c in pair.values()}


def test_streams_started_for_a_pair_that_could_not_be_written_are_stopped(
    model_server, monkeypatch
):
    model_server.fallback = slow_by_seed
    live = Live(version_at(model_server.base_url))

    def conflict_once_asked(*args, **kwargs):
        _wait_for_model_requests(model_server, 2)
        raise sessions.SessionConflict("the conversation moved on")

    monkeypatch.setattr(sessions, "_turn_pair_for_owner", conflict_once_asked)

    status, body = asyncio.run(call("POST", live.path, body={}, token=live.token))

    assert status == 409 and body == {"detail": "the conversation moved on"}
    # Both upstream requests are closed long before their 6 s of deltas end.
    assert model_server.streams_ended.acquire(timeout=3)
    assert model_server.streams_ended.acquire(timeout=3)
    assert model_server.hung_up == 2
    assert not Completion.objects.filter(prompt=live.turn).exists()  # rolled back


def test_a_stream_nobody_reads_is_halted_like_a_disconnect(model_server, monkeypatch):
    """The client left between the opening step and the first byte: nothing reads the events."""
    monkeypatch.setattr(live_turns, "UNREAD_GRACE_SECONDS", 0.5)
    model_server.fallback = slow_by_seed
    live = Live(version_at(model_server.base_url))

    async def open_and_walk_away() -> int:
        run = live_turns.TurnRun()
        open_turn = live_turns.db_step(sessions.turn_stream_open)
        plan = await open_turn(conversation=live.session, on_drawn=run.begin_soon)
        run.attach(plan)
        await asyncio.sleep(0.6)  # past the grace: the halt has begun
        assert run._halting is not None, "nobody read the events, yet the run goes on"
        await asyncio.wait_for(asyncio.shield(run._halting), timeout=20)
        return plan.assignment_id

    assignment_id = asyncio.run(open_and_walk_away())

    assert model_server.streams_ended.acquire(timeout=3)
    assert model_server.streams_ended.acquire(timeout=3)
    assert model_server.hung_up == 2  # long before their 6 s of deltas
    for completion in stored(assignment_id).values():
        assert completion.incomplete and completion.finish_reason == "disconnect"
    assert Assignment.objects.get(pk=assignment_id).status == Assignment.Status.SKIPPED


def test_the_stream_also_works_under_wsgi(model_server):
    """Django's WSGI handler runs the view on one event loop and reads the response on another."""
    model_server.fallback = quick_by_seed
    live = Live(version_at(model_server.base_url))
    client = Client(HTTP_AUTHORIZATION=f"Token {live.token}")

    response = client.post(live.path, {}, content_type="application/json")

    assert response.status_code == 200
    blocks = b"".join(response).decode().strip().split("\n\n")
    names = [block.splitlines()[0].removeprefix("event: ") for block in blocks]
    assert names[0] == "start" and names[-1] == "ready" and names.count("done") == 2


def test_only_the_owner_may_stream_and_cookie_logins_need_csrf(model_server):
    model_server.fallback = quick_by_seed
    live = Live(version_at(model_server.base_url))
    other = member(live.project, Role.ANNOTATOR)
    researcher = member(live.project, Role.RESEARCHER)
    other_token = Token.objects.create(user=other).key
    researcher_token = Token.objects.create(user=researcher).key
    browser = Client()
    browser.force_login(live.owner)
    cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
    csrf = secrets.token_hex(16)  # 32 characters, like Django's own secret

    def with_cookie(csrf_header: bool) -> list[tuple[bytes, bytes]]:
        cookies = f"{settings.SESSION_COOKIE_NAME}={cookie}; csrftoken={csrf}"
        headers = [(b"cookie", cookies.encode())]
        return headers + ([(b"x-csrftoken", csrf.encode())] if csrf_header else [])

    async def scenario():
        post = {"body": {}}
        return {
            "anonymous": await call("POST", live.path, **post),
            "bad token": await call("POST", live.path, token="0" * 40, **post),
            "other annotator": await call("POST", live.path, token=other_token, **post),
            "researcher": await call("POST", live.path, token=researcher_token, **post),
            "missing session": await call(
                "POST", "/api/v1/sessions/999999/stream/", token=live.token, **post
            ),
            "cookie without csrf": await call(
                "POST", live.path, headers=with_cookie(False), **post
            ),
            "bad body": await call("POST", live.path, token=live.token, body=["x"]),
            "get": await call("GET", live.path, token=live.token),
        }

    results = asyncio.run(scenario())

    assert {who: status for who, (status, _) in results.items()} == {
        "anonymous": 403,
        "bad token": 403,
        "other annotator": 404,
        "researcher": 404,
        "missing session": 404,
        "cookie without csrf": 403,
        "bad body": 400,
        "get": 405,
    }
    assert "CSRF" in results["cookie without csrf"][1]["detail"]
    # Someone else's session looks exactly like a missing one.
    assert results["other annotator"][1]["detail"] == f"no conversation {live.session.pk}"
    assert not live.turn.completions.exists()

    async def cookie_stream():
        http = Http("POST", live.path, body={}, headers=with_cookie(True))
        status = await http.start()
        return status, [event async for event in http.events()]

    status, events = asyncio.run(cookie_stream())
    assert status == 200 and events[-1][0] == "ready"


def test_researchers_choose_a_sessions_models_and_annotators_cannot(model_server):
    project = ProjectFactory(slug="live-models")
    default = version_at(model_server.base_url)
    chosen = version_at(model_server.base_url, model_name="another")
    annotator, researcher = APIClient(), APIClient()
    annotator.force_authenticate(member(project, Role.ANNOTATOR))
    researcher.force_authenticate(member(project, Role.RESEARCHER))
    url = "/api/v1/projects/live-models/sessions/"

    plain = annotator.post(url, {}, format="json")
    assert plain.status_code == 201 and SECRET_LABEL not in plain.content.decode()
    by_default = Conversation.objects.get(pk=plain.json()["id"])
    assert list(by_default.model_versions.all()) == [chosen]  # the newest enabled version

    project.buffer_model_version = default
    project.save(update_fields=["buffer_model_version"])
    buffered = annotator.post(url, {}, format="json").json()["id"]
    assert list(Conversation.objects.get(pk=buffered).model_versions.all()) == [default]

    both = researcher.post(url, {"model_version_ids": [default.pk, chosen.pk]}, format="json")
    assert both.status_code == 201
    assert set(Conversation.objects.get(pk=both.json()["id"]).model_versions.all()) == {
        default,
        chosen,
    }
    refused = annotator.post(url, {"model_version_ids": [chosen.pk]}, format="json")
    assert refused.status_code == 403
    missing = researcher.post(url, {"model_version_ids": [999999]}, format="json")
    assert missing.status_code == 400 and "model_version_ids" in missing.json()["errors"]


def test_two_versions_are_sampled_one_each(model_server):
    model_server.fallback = quick_by_seed
    live = Live(version_at(model_server.base_url))
    second = version_at(model_server.base_url, model_name="second-model")
    live.session.model_versions.add(second)

    status, events, raw = asyncio.run(stream_all(live))

    assert status == 200 and events[-1][0] == "ready"
    pair = stored(events[0][1]["assignment"]["id"])
    assert {c.model_version_id for c in pair.values()} == {
        live.session.model_versions.order_by("pk")[0].pk,
        second.pk,
    }
    assert sorted(r["model"] for r in model_server.requests) == sorted(
        [SECRET_MODEL, "second-model"]
    )
    assert b"second-model" not in raw


def test_three_replies_per_turn_stream_side_by_side_are_ranked_and_the_best_continues(
    model_server,
):
    model_server.fallback = quick_by_seed
    live = Live(version_at(model_server.base_url))
    second = version_at(model_server.base_url, model_name="second-model")
    live.session.model_versions.add(second)
    Conversation.objects.filter(pk=live.session.pk).update(candidates_per_turn=3)

    status, events, raw = asyncio.run(stream_all(live))

    assert status == 200 and events[-1][0] == "ready", events[-1]
    assignment = events[-1][1]["assignment"]
    assert assignment["interface"] == "ranking"
    assert [c["label"] for c in assignment["candidates"]] == ["A", "B", "C"]
    assert set(dones(events)) == {"A", "B", "C"}
    streamed = {label: "" for label in "ABC"}
    for name, data in events:
        if name == "delta":
            streamed[data["label"]] += data["text"]
    shown = {c["label"]: c["content"] for c in assignment["candidates"]}
    assert shown == streamed and len(set(shown.values())) == 3
    # Versions alternate over the candidates: 2 of the first, 1 of the second.
    completions = Completion.objects.filter(prompt=live.turn)
    by_version = sorted(completions.values_list("model_version_id", flat=True))
    assert by_version.count(second.pk) == 1 and len(by_version) == 3
    assert b"second-model" not in raw and SECRET_MODEL.encode() not in raw

    api = live.api()
    refused = api.post(
        f"/api/v1/assignments/{assignment['id']}/judgment/",
        {"choice": 1, "idempotency_key": "wrong-kind"},
        format="json",
    )
    assert refused.status_code == 400 and "choice" in refused.json()["errors"]
    judged = api.post(
        f"/api/v1/assignments/{assignment['id']}/judgment/",
        {"ranking": ["C", "A", "B"], "idempotency_key": "ranked-turn"},
        format="json",
    )
    assert judged.status_code == 201, judged.content
    state = live.state()
    assert state["candidates_per_turn"] == 3 and state["turn"]["state"] == "judged"
    assert state["messages"][-1] == {
        "id": state["messages"][-1]["id"],
        "role": "assistant",
        "content": shown["C"],
    }


def test_replies_per_turn_are_chosen_at_session_start_and_checked(model_server):
    project = ProjectFactory(slug="live-k")
    version_at(model_server.base_url)
    annotator = APIClient()
    annotator.force_authenticate(member(project, Role.ANNOTATOR))
    url = "/api/v1/projects/live-k/sessions/"

    made = annotator.post(url, {"candidates_per_turn": 4}, format="json")
    assert made.status_code == 201 and made.json()["candidates_per_turn"] == 4
    assert Conversation.objects.get(pk=made.json()["id"]).candidates_per_turn == 4
    plain = annotator.post(url, {}, format="json")
    assert plain.json()["candidates_per_turn"] == 2
    for bad in (1, 5, "three", None):
        answer = annotator.post(url, {"candidates_per_turn": bad}, format="json")
        assert answer.status_code == 400, (bad, answer.content)
        assert "candidates_per_turn" in answer.json()["errors"]
    assert Conversation.objects.filter(project=project).count() == 2


def test_a_reply_judged_mid_stream_blocks_the_next_message_until_it_is_stored(model_server):
    live = Live(version_at(model_server.base_url))
    plan = sessions.turn_stream_open(conversation=live.session)
    api = live.api()
    judged = api.post(
        f"/api/v1/assignments/{plan.assignment_id}/judgment/",
        {"choice": 1, "idempotency_key": "early-judgment"},
        format="json",
    )
    assert judged.status_code == 201, judged.content
    early = api.post(
        f"/api/v1/sessions/{live.session.pk}/turns/", {"content": "next"}, format="json"
    )
    assert early.status_code == 409 and "still being saved" in early.json()["detail"]

    chosen = plan.candidates[0].completion_id
    assert sessions.live_candidate_save(
        completion_id=chosen, content="partial reply", finish_reason="judged", incomplete=True
    )
    assert Message.objects.get(completion_id=chosen).content == "partial reply"
    later = api.post(
        f"/api/v1/sessions/{live.session.pk}/turns/", {"content": "next"}, format="json"
    )
    assert later.status_code == 201


def test_an_identical_pair_is_flagged_as_duplicate(model_server):
    model_server.fallback = lambda request: stream_reply("Same ", "answer")
    live = Live(version_at(model_server.base_url))

    status, events, _ = asyncio.run(stream_all(live))

    assert status == 200 and events[-1][0] == "ready"
    pair = stored(events[0][1]["assignment"]["id"])
    assert sorted(c.duplicate for c in pair.values()) == [False, True]


def test_database_steps_hand_their_connection_back():
    # A stream lasts minutes; its thread must not keep a (pooled) connection all along.
    used = []

    def step() -> bool:
        used.append(connections["default"])  # this thread's own connection wrapper
        return Conversation.objects.exists()

    assert asyncio.run(live_turns.db_step(step)()) is False
    assert used[0] is not connections["default"] and used[0].connection is None
