"""ChatClient.stream against a real HTTP server on loopback: deltas, usage, errors, cancelling."""

import asyncio

import pytest

from fake_model_server import Reply, stream_reply
from models_serving.client import (
    ChatClient,
    ModelServerError,
    ModelServerRejected,
    ModelServerUnavailable,
    SamplingParams,
    ServerConfig,
    StreamEnd,
)

MESSAGES = [{"role": "user", "content": "Say hello."}]
PARAMS = SamplingParams(temperature=0.8, top_p=0.9, max_tokens=16)


def config(base_url: str, **overrides) -> ServerConfig:
    defaults = {"model": "m", "retry_backoff": 0.01, "connect_timeout": 1.0, "read_timeout": 5.0}
    return ServerConfig(base_url=base_url, **{**defaults, **overrides})


def collect(cfg: ServerConfig, seed: int = 7) -> list:
    async def run():
        client = ChatClient(cfg)
        try:
            return [item async for item in client.stream(MESSAGES, params=PARAMS, seed=seed)]
        finally:
            await client.close()

    return asyncio.run(run())


def test_deltas_then_the_finish_reason_and_usage(model_server):
    model_server.then(stream_reply("Hel", "lo", "!", model="served-name"))
    *deltas, end = collect(config(model_server.base_url))
    assert deltas == ["Hel", "lo", "!"]
    assert isinstance(end, StreamEnd)
    assert (end.model, end.finish_reason, end.prompt_tokens, end.completion_tokens) == (
        "served-name",
        "stop",
        5,
        3,
    )
    assert end.latency_ms >= 0
    [request] = model_server.requests
    assert request["stream"] is True and request["seed"] == 7 and request["max_tokens"] == 16
    assert request["stream_options"] == {"include_usage": True}


def test_a_503_before_the_first_token_is_retried(model_server):
    model_server.then(Reply(status=503, body={"error": "loading"}), stream_reply("ok"))
    assert collect(config(model_server.base_url))[0] == "ok"
    assert len(model_server.requests) == 2


def test_4xx_is_rejected_without_retry_or_upstream_text(model_server):
    model_server.then(Reply(status=400, body={"error": "SECRET prompt echo"}))
    with pytest.raises(ModelServerRejected) as caught:
        collect(config(model_server.base_url))
    assert "SECRET" not in str(caught.value) and len(model_server.requests) == 1


def test_refused_connection_is_unavailable(closed_port_url):
    with pytest.raises(ModelServerUnavailable, match="unreachable"):
        collect(config(closed_port_url, max_retries=1))


def test_a_crash_mid_stream_is_not_retried(model_server):
    model_server.then(stream_reply("a", "b", "c", "d", drop_after=2), stream_reply("never"))
    seen = []

    async def run():
        client = ChatClient(config(model_server.base_url))
        try:
            async for item in client.stream(MESSAGES, params=PARAMS, seed=1):
                seen.append(item)
        finally:
            await client.close()

    with pytest.raises(ModelServerUnavailable, match="mid-reply"):
        asyncio.run(run())
    assert seen == ["a", "b"] and len(model_server.requests) == 1


def test_an_error_event_in_the_stream_keeps_its_text_upstream(model_server):
    # An SSE error payload, as `transformers serve` sends when generation fails.
    model_server.then(Reply(body=b'data: {"error": "CUDA out of memory at SECRET path"}\n\n'))
    with pytest.raises(ModelServerError) as caught:
        collect(config(model_server.base_url))
    assert "SECRET" not in str(caught.value)


def test_cancelling_the_reader_closes_the_upstream_connection(model_server):
    model_server.then(stream_reply(*(f"t{i} " for i in range(400)), chunk_delay=0.01))

    async def run():
        client = ChatClient(config(model_server.base_url))
        got: list = []

        async def read():
            async for item in client.stream(MESSAGES, params=PARAMS, seed=1):
                got.append(item)

        task = asyncio.create_task(read())
        while len(got) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.close()
        return got

    got = asyncio.run(run())
    assert 3 <= len(got) < 400
    # The server notices on its next writes that nobody is reading any more.
    assert model_server.streams_ended.acquire(timeout=5)
    assert model_server.hung_up == 1
