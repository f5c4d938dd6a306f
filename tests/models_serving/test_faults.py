"""A model server that dies, hangs or fails, and what annotators and rounds see each time.

Already covered elsewhere (tests/annotation/test_live_stream.py, tests/models_serving/
test_client*.py, tests/annotation/test_rounds.py): a refused connection, a scripted 500 and a
scripted crash mid-stream in the live stream; the client's typed errors for each; a refused
connection in a round. Here: a real `transformers serve` process killed mid-stream, a real 500
from it (asked for a checkpoint it cannot load), and a server that hangs past the read timeout
(scripted: a real one cannot be made to hang on purpose) — in the live stream and in a round.
"""

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from asgiref.testing import ApplicationCommunicator
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from transformers import LlamaForCausalLM

import config.asgi
from annotation import rounds, sessions
from annotation.live_turns import SERVER_DOWN
from annotation.models import Completion, Round, RoundPrompt
from factories import ProjectFactory, PromptFactory, member
from fake_model_server import Reply, ScriptedServer
from models_serving.local_server import (
    local_model_server,
    local_server_command,
    served_model_name,
    stop_process_group,
    wait_until_healthy,
)
from models_serving.models import ModelEndpoint, ModelVersion
from models_serving.tiny_models import policy_tokenizer, tiny_generation_config, tiny_policy_config

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

MISSING_CHECKPOINT = "/nonexistent/checkpoints/job-404/checkpoint"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def talkative_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny policy without its stop calibration: it practically never picks EOS, so a
    reply runs to max_tokens and there is time to kill the server in the middle of it."""
    out = tmp_path_factory.mktemp("models") / "talkative"
    tokenizer = policy_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(tiny_policy_config(tokenizer))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    tiny_generation_config(tokenizer).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def unpinned_server(tiny_models) -> Iterator[str]:
    """The embedded server as `make run` starts it: it loads any checkpoint a request names,
    and answers HTTP 500 for one it cannot load."""
    with local_model_server(tiny_models["policy"], _free_port(), pinned=False) as base_url:
        yield base_url


@pytest.fixture(autouse=True)
def _pool_closed_after_each_test():
    yield
    if hasattr(connection, "close_pool"):
        connection.close_pool()


def version_at(base_url: str, model_name: str, **sampling) -> ModelVersion:
    endpoint = ModelEndpoint.objects.create(
        name=f"e-{_free_port()}",
        base_url=base_url,
        kind="transformers-serve",
        default_sampling_params={"temperature": 1.0, "max_tokens": 12, **sampling},
    )
    return ModelVersion.objects.create(endpoint=endpoint, model_name=model_name, label="secret-v")


# --- the live stream through config.asgi.application ----------------------------------------


class Live:
    """An annotator's session with one user message, waiting for its two candidates."""

    def __init__(self, version: ModelVersion) -> None:
        project = ProjectFactory()
        self.owner = member(project)
        self.token = Token.objects.create(user=self.owner).key
        self.session = sessions.session_start(
            project=project, owner=self.owner, system="Be brief.", model_versions=[version]
        )
        self.turn = sessions.session_add_user_turn(conversation=self.session, content="Hi there")

    async def events(self) -> AsyncIterator[tuple[str, dict]]:
        body = b"{}"
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": f"/api/v1/sessions/{self.session.pk}/stream/",
            "raw_path": f"/api/v1/sessions/{self.session.pk}/stream/".encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"authorization", f"Token {self.token}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }
        talk = ApplicationCommunicator(config.asgi.application, scope)
        await talk.send_input({"type": "http.request", "body": body})
        assert (await talk.receive_output(timeout=60))["status"] == 200
        buffer, ended = b"", False
        while True:
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.decode().splitlines())
                yield fields["event"], json.loads(fields["data"])
            if ended:
                await talk.wait(timeout=10)
                return
            message = await talk.receive_output(timeout=120)
            ended = not message.get("more_body")
            buffer += message.get("body", b"")

    def stream_all(self) -> tuple[list[tuple[str, dict]], bytes]:
        async def collect():
            return [event async for event in self.events()]

        events = asyncio.run(collect())
        return events, json.dumps(events).encode()

    def state(self) -> dict:
        """The session as the annotator's page loads it."""
        api = APIClient()
        api.force_authenticate(self.owner)
        return api.get(f"/api/v1/sessions/{self.session.pk}/").json()

    def assert_kept_its_place(self) -> None:
        """The annotator's message is there and the turn waits for candidates again."""
        state = self.state()
        assert state["turn"] == {
            "id": self.turn.pk,
            "state": "awaiting_candidates",
            "assignment": None,
        }
        assert [m["content"] for m in state["messages"]] == ["Be brief.", "Hi there"]
        stored = list(self.turn.completions.all())
        assert stored and all(c.incomplete for c in stored)


@contextmanager
def scripted() -> Iterator[ScriptedServer]:
    yield from ScriptedServer().serve()


def test_model_server_killed_mid_stream(talkative_policy):
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"

    def start() -> subprocess.Popen:
        process = subprocess.Popen(
            local_server_command(talkative_policy, port),
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until_healthy(base_url, 180, process)
        return process

    server = start()
    try:
        live = Live(version_at(base_url, served_model_name(talkative_policy), max_tokens=400))

        async def kill_after_first_tokens():
            events = []
            async for event in live.events():
                events.append(event)
                if [name for name, _ in events].count("delta") == 3:
                    os.killpg(server.pid, signal.SIGKILL)  # the machine's OOM killer, say
            return events

        events = asyncio.run(kill_after_first_tokens())
        server.wait()

        names = [name for name, _ in events]
        assert names[0] == "start" and "ready" not in names
        assert events[-1] == ("error", {"message": SERVER_DOWN})
        raw = json.dumps(events)
        assert "127.0.0.1" not in raw and str(talkative_policy) not in raw
        live.assert_kept_its_place()
        # What the annotator saw of each candidate is what was kept of it.
        streamed = {"A": "", "B": ""}
        for name, data in events:
            if name == "delta":
                streamed[data["label"]] += data["text"]
        kept = [c.content for c in live.turn.completions.all()]
        for text in filter(None, streamed.values()):
            assert any(content.startswith(text) for content in kept)

        # The server comes back: the same turn gets its pair, nothing was lost meanwhile.
        server = start()
        ModelEndpoint.objects.filter(base_url=base_url).update(
            default_sampling_params={"temperature": 1.0, "max_tokens": 8}
        )
        events, _ = live.stream_all()
        assert events[-1][0] == "ready"
        assert events[0][1]["turn"] == live.turn.pk
        assert live.state()["turn"]["state"] == "judging"
    finally:
        stop_process_group(server)


def test_a_real_http_500_is_a_clear_error_in_the_live_stream(unpinned_server):
    live = Live(version_at(unpinned_server, MISSING_CHECKPOINT))
    events, raw = live.stream_all()
    assert events[-1] == ("error", {"message": SERVER_DOWN})
    for secret in (b"Internal Server Error", MISSING_CHECKPOINT.encode(), b"127.0.0.1"):
        assert secret not in raw
    live.assert_kept_its_place()


def test_a_server_hanging_past_the_read_timeout_is_a_clear_error(settings):
    settings.MODEL_READ_TIMEOUT = 0.5
    with scripted() as hanging:
        hanging.fallback = Reply(delay=20.0, body={})  # takes the request, never answers
        live = Live(version_at(hanging.base_url, "m"))
        started = time.monotonic()
        events, _ = live.stream_all()
        elapsed = time.monotonic() - started
        assert events[-1] == ("error", {"message": SERVER_DOWN})
        assert elapsed < 10  # the read timeout cut it, not the hang
        assert len(hanging.requests) == 2  # one per candidate: a hang is not retried
        live.assert_kept_its_place()


# --- bulk generation for a round --------------------------------------------------------------


def round_over(version: ModelVersion, prompts: int) -> Round:
    project = ProjectFactory()
    for _ in range(prompts):
        PromptFactory(project=project)
    round_ = rounds.round_create(
        project=project,
        name="faults",
        model_versions=[version],
        prompt_count=prompts,
        rng=random.Random(0),
    )
    Round.objects.filter(pk=round_.pk).update(status=Round.Status.GENERATING)
    return round_


def generate_until_settled(round_: Round) -> list[rounds.GenerationPass]:
    return [rounds.round_generate(round_id=round_.pk) for _ in range(rounds.MAX_ATTEMPTS)]


def assert_failed_per_prompt(round_: Round, prompts: int, words: str) -> None:
    round_.refresh_from_db()
    assert (round_.generation_done, round_.generation_failed) == (0, prompts)
    assert round_.status == Round.Status.COLLECTING  # the progress bar shows the failures
    failed = RoundPrompt.objects.filter(round=round_)
    assert {rp.status for rp in failed} == {RoundPrompt.Status.FAILED}
    assert {rp.attempts for rp in failed} == {rounds.MAX_ATTEMPTS}
    errors = {rp.error for rp in failed}
    assert len(errors) == 1
    error = errors.pop()
    assert words in error, error
    assert not Completion.objects.filter(round=round_).exists()


def test_a_real_http_500_fails_each_prompt_of_a_round_with_a_clear_message(unpinned_server):
    round_ = round_over(version_at(unpinned_server, MISSING_CHECKPOINT), prompts=2)
    passes = generate_until_settled(round_)
    assert [p.pending for p in passes] == [2, 2, 0] and passes[-1].failed == 2
    assert_failed_per_prompt(round_, 2, "is unavailable (HTTP 500)")
    error = RoundPrompt.objects.filter(round=round_).first().error
    assert "Internal Server Error" not in error and MISSING_CHECKPOINT not in error


def test_a_round_on_a_hanging_server_records_the_timeout_per_prompt(settings):
    settings.MODEL_READ_TIMEOUT = 0.5
    with scripted() as hanging:
        hanging.fallback = Reply(delay=20.0, body={})
        round_ = round_over(version_at(hanging.base_url, "m"), prompts=2)
        started = time.monotonic()
        generate_until_settled(round_)
        assert time.monotonic() - started < 30
        assert_failed_per_prompt(round_, 2, "did not answer in time")


def test_a_round_survives_its_server_being_killed_and_finishes_once_it_is_back(tiny_models):
    port = _free_port()
    with local_model_server(tiny_models["policy"], port) as base_url:
        version = version_at(base_url, served_model_name(tiny_models["policy"]))
        round_ = round_over(version, prompts=3)
        first = rounds.round_generate(round_id=round_.pk)
        assert (first.done, first.pending) == (3, 0)
    # Killed (the block stopped it). A new round on the same version: every prompt fails this
    # pass and stays pending with the reason; nothing of the first round is touched.
    second = round_over(version, prompts=2)
    attempt = rounds.round_generate(round_id=second.pk)
    assert (attempt.done, attempt.failed, attempt.pending) == (0, 0, 2)
    pending = RoundPrompt.objects.filter(round=second)
    assert {rp.status for rp in pending} == {RoundPrompt.Status.PENDING}
    assert all("unreachable" in rp.error for rp in pending)
    assert Completion.objects.filter(round=round_).count() == 6
    # Back on the same port before the task's next retry: the pending prompts complete.
    with local_model_server(tiny_models["policy"], port):
        again = rounds.round_generate(round_id=second.pk)
    assert (again.done, again.failed, again.pending) == (2, 0, 0)
    second.refresh_from_db()
    assert (second.generation_done, second.generation_failed) == (2, 0)
