"""ChatClient against a real HTTP server on loopback: retries, timeouts, logprobs, duplicates."""

import asyncio
import time

import pytest

from fake_model_server import Reply, chat_reply
from models_serving.client import (
    ChatClient,
    ModelServerMalformed,
    ModelServerRejected,
    ModelServerUnavailable,
    SamplingParams,
    ServerConfig,
    generate_many,
    parse_logprobs,
)

MESSAGES = [{"role": "user", "content": "Say hello."}]
PARAMS = SamplingParams(temperature=0.8, top_p=0.9, max_tokens=16)


def config(base_url: str, **overrides) -> ServerConfig:
    defaults = {"model": "m", "retry_backoff": 0.01, "connect_timeout": 1.0, "read_timeout": 5.0}
    return ServerConfig(base_url=base_url, **{**defaults, **overrides})


def generate(cfg: ServerConfig, k: int = 1, params: SamplingParams = PARAMS, base_seed: int = 0):
    async def run():
        client = ChatClient(cfg)
        try:
            return await client.generate(MESSAGES, k=k, params=params, base_seed=base_seed)
        finally:
            await client.close()

    return asyncio.run(run())


def by_seed(request: dict) -> Reply:
    return chat_reply(f"answer for seed {request['seed']}")


def seed_script(texts: dict[int, str]):
    """Answer each request by its seed: the K first draws go out concurrently, so their
    arrival order at the server is not fixed and a queue of scripted replies would race."""
    return lambda request: chat_reply(texts[request["seed"]])


# --- retries ------------------------------------------------------------------------------


def test_503_then_200_is_retried_and_succeeds(model_server):
    model_server.then(Reply(status=503, body={"error": "loading"}), chat_reply("hello"))
    [candidate] = generate(config(model_server.base_url))
    assert candidate.content == "hello"
    assert len(model_server.requests) == 2
    # The retry is the same request, seed included.
    assert model_server.requests[0]["seed"] == model_server.requests[1]["seed"] == 0


def test_429_is_retried_and_retry_after_is_honoured(model_server):
    model_server.then(Reply(status=429, headers={"Retry-After": "0.3"}), chat_reply("ok"))
    started = time.monotonic()
    [candidate] = generate(config(model_server.base_url))
    assert candidate.content == "ok"
    assert time.monotonic() - started >= 0.3
    assert len(model_server.requests) == 2


def test_dropped_connection_is_retried(model_server):
    model_server.then(Reply(hang_up=True), chat_reply("after the drop"))
    [candidate] = generate(config(model_server.base_url))
    assert candidate.content == "after the drop"
    assert len(model_server.requests) == 2


def test_persistent_5xx_gives_up_after_max_retries_with_our_own_message(model_server):
    secret = b"<script>alert(1)</script> internal trace with sk-secret"
    model_server.fallback = Reply(status=500, body=secret)
    with pytest.raises(ModelServerUnavailable) as caught:
        generate(config(model_server.base_url, max_retries=2))
    assert len(model_server.requests) == 3  # the first try and two retries
    assert caught.value.status_code == 500
    assert "HTTP 500" in str(caught.value)
    assert "script" not in str(caught.value) and "sk-secret" not in str(caught.value)


@pytest.mark.parametrize("status", [400, 401, 404, 408, 409, 422])
def test_4xx_is_never_retried(model_server, status):
    # x-should-retry would make the SDK's own retry loop try again; ours must not.
    model_server.then(
        Reply(status=status, body={"error": "no"}, headers={"x-should-retry": "true"})
    )
    model_server.fallback = chat_reply("must not be reached")
    with pytest.raises(ModelServerRejected) as caught:
        generate(config(model_server.base_url, max_retries=3))
    assert caught.value.status_code == status
    assert len(model_server.requests) == 1


def test_backoff_grows_between_retries(model_server):
    model_server.then(Reply(status=502), Reply(status=502), chat_reply("third time"))
    started = time.monotonic()
    generate(config(model_server.base_url, retry_backoff=0.2, max_retries=2))
    # 0.2 s then 0.4 s, each shortened by at most 25% of jitter.
    assert time.monotonic() - started >= 0.75 * (0.2 + 0.4)


def test_refused_connection_is_unavailable(closed_port_url):
    with pytest.raises(ModelServerUnavailable, match="unreachable"):
        generate(config(closed_port_url, max_retries=1))


def test_read_timeout_is_not_retried(model_server):
    model_server.fallback = Reply(delay=1.0, body=chat_reply("too late").body)
    started = time.monotonic()
    with pytest.raises(ModelServerUnavailable, match="did not answer in time"):
        generate(config(model_server.base_url, read_timeout=0.3, max_retries=3))
    assert time.monotonic() - started < 1.0
    assert len(model_server.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html>proxy login page</html>",
        {"choices": []},
        {"foo": 1},
        {"choices": [{"message": {"content": {"not": "text"}}}]},
    ],
)
def test_a_200_that_is_not_a_chat_completion_is_malformed_and_not_retried(model_server, body):
    model_server.fallback = Reply(status=200, body=body)
    with pytest.raises(ModelServerMalformed):
        generate(config(model_server.base_url))
    assert len(model_server.requests) == 1


def test_generate_many_returns_each_prefix_error_instead_of_raising(model_server):
    model_server.then(chat_reply("fine"), Reply(status=200, body=b"not json"))
    results = generate_many(config(model_server.base_url), [MESSAGES, MESSAGES], k=1, params=PARAMS)
    assert sum(isinstance(r, ModelServerMalformed) for r in results) == 1
    assert sum(isinstance(r, list) for r in results) == 1


# --- concurrency --------------------------------------------------------------------------


def test_requests_to_one_endpoint_stay_within_its_max_concurrency(model_server):
    model_server.fallback = lambda request: Reply(delay=0.1, body=by_seed(request).body)
    cfg = config(model_server.base_url, max_concurrency=2)
    results = generate_many(cfg, [MESSAGES] * 4, k=2, params=PARAMS, max_concurrency=4)
    assert all(isinstance(r, list) and len(r) == 2 for r in results)
    assert len(model_server.requests) == 8
    assert model_server.max_in_flight == 2


# --- candidates ---------------------------------------------------------------------------


def test_k_seeded_requests_without_n_support(model_server):
    model_server.fallback = by_seed
    candidates = generate(config(model_server.base_url), k=3, base_seed=10)
    assert [c.seed for c in candidates] == [10, 11, 12]
    assert [c.content for c in candidates] == [f"answer for seed {s}" for s in (10, 11, 12)]
    assert all(r["n"] == 1 for r in model_server.requests)
    assert candidates[0].sampling_params == {**PARAMS.as_dict(), "n": 1}
    assert not any(c.duplicate for c in candidates)


def test_one_n_request_when_supported(model_server):
    model_server.then(chat_reply("a", "b", "c"))
    candidates = generate(config(model_server.base_url, supports_n=True), k=3)
    assert [c.content for c in candidates] == ["a", "b", "c"]
    assert len(model_server.requests) == 1 and model_server.requests[0]["n"] == 3


def test_an_endpoint_that_ignores_n_is_topped_up(model_server):
    model_server.then(chat_reply("only one"))
    model_server.fallback = by_seed
    candidates = generate(config(model_server.base_url, supports_n=True), k=2, base_seed=4)
    assert [c.content for c in candidates] == ["only one", "answer for seed 5"]


def test_identical_candidate_is_redrawn_with_a_new_seed(model_server):
    model_server.fallback = seed_script({0: "same", 1: "same", 2: "different"})
    candidates = generate(config(model_server.base_url), k=2, base_seed=0)
    assert [c.content for c in candidates] == ["same", "different"]
    assert [c.duplicate for c in candidates] == [False, False]
    assert sorted(r["seed"] for r in model_server.requests) == [0, 1, 2]
    assert model_server.requests[-1]["seed"] == 2
    assert candidates[1].seed == 2


def test_candidate_still_identical_after_redraws_is_flagged(model_server):
    model_server.fallback = chat_reply("  always this  ")
    candidates = generate(config(model_server.base_url, duplicate_retries=2), k=2)
    assert [c.duplicate for c in candidates] == [False, True]
    assert len(model_server.requests) == 2 + 2
    assert len({r["seed"] for r in model_server.requests}) == 4


def test_whitespace_only_differences_count_as_identical(model_server):
    model_server.fallback = seed_script({0: "hello", 1: "hello\n", 2: "hi"})
    candidates = generate(config(model_server.base_url), k=2, base_seed=0)
    assert [c.content for c in candidates] == ["hello", "hi"]


def test_greedy_duplicates_are_flagged_without_redrawing(model_server):
    model_server.fallback = chat_reply("greedy")
    greedy = SamplingParams(temperature=0.0, max_tokens=8)
    candidates = generate(config(model_server.base_url), k=2, params=greedy)
    assert [c.duplicate for c in candidates] == [False, True]
    assert len(model_server.requests) == 2


def test_a_failed_redraw_keeps_the_flagged_duplicate(model_server):
    model_server.then(chat_reply("same"), chat_reply("same"), Reply(status=400))
    candidates = generate(config(model_server.base_url), k=2)
    assert [c.duplicate for c in candidates] == [False, True]


# --- logprobs -----------------------------------------------------------------------------

# vLLM's answer shape for logprobs=true, with its extra fields (written after vLLM's
# OpenAI-compatible server, not recorded from one: vLLM cannot run here).
VLLM_ANSWER = {
    "id": "chatcmpl-9f2c",
    "object": "chat.completion",
    "created": 1760000000,
    "model": "policy-lora-7",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hi!",
                "refusal": None,
                "annotations": None,
                "audio": None,
                "function_call": None,
                "tool_calls": [],
                "reasoning_content": None,
            },
            "logprobs": {
                "content": [
                    {"token": "Hi", "logprob": -0.031, "bytes": [72, 105], "top_logprobs": []},
                    {"token": "!", "logprob": -9999.0, "bytes": [33], "top_logprobs": []},
                ]
            },
            "finish_reason": "stop",
            "stop_reason": None,
        }
    ],
    "service_tier": None,
    "system_fingerprint": None,
    "usage": {"prompt_tokens": 12, "total_tokens": 14, "completion_tokens": 2},
    "prompt_logprobs": None,
    "kv_transfer_params": None,
}


def test_vllm_shaped_answer_is_parsed(model_server):
    model_server.then(Reply(body=VLLM_ANSWER))
    cfg = config(model_server.base_url, model="policy-lora-7", supports_logprobs=True)
    [candidate] = generate(cfg, base_seed=3)
    assert (candidate.content, candidate.model, candidate.seed) == ("Hi!", "policy-lora-7", 3)
    assert (candidate.prompt_tokens, candidate.completion_tokens) == (12, 2)
    assert candidate.finish_reason == "stop"
    assert candidate.logprobs == [
        {"token": "Hi", "logprob": -0.031},
        {"token": "!", "logprob": -9999.0},
    ]


def test_logprobs_are_requested_and_kept_when_supported(model_server):
    reply = chat_reply("Hello!", logprobs=[[("Hello", -0.25), ("!", -1.5)]])
    model_server.then(reply)
    [candidate] = generate(config(model_server.base_url, supports_logprobs=True))
    assert model_server.requests[0]["logprobs"] is True
    assert candidate.logprobs == [
        {"token": "Hello", "logprob": -0.25},
        {"token": "!", "logprob": -1.5},
    ]


def test_logprobs_are_not_requested_without_support(model_server):
    model_server.then(chat_reply("Hello!", logprobs=[[("Hello", -0.25)]]))
    [candidate] = generate(config(model_server.base_url))
    assert "logprobs" not in model_server.requests[0]
    assert candidate.logprobs is None


def test_parse_logprobs_makes_tokens_storable():
    class Token:
        def __init__(self, token: str, logprob: float) -> None:
            self.token, self.logprob = token, logprob

    class Logprobs:
        content = [Token("a\x00b", -0.5), Token("end", float("-inf"))]

    assert parse_logprobs(Logprobs()) == [
        {"token": "a\ufffdb", "logprob": -0.5},
        {"token": "end", "logprob": None},
    ]
    assert parse_logprobs(None) is None


def test_nul_in_model_output_is_made_storable(model_server):
    model_server.then(chat_reply("bad\x00byte"))
    [candidate] = generate(config(model_server.base_url))
    assert candidate.content == "bad\ufffdbyte"


def test_api_key_is_sent_as_bearer_token(model_server):
    model_server.then(chat_reply("ok"))
    generate(config(model_server.base_url, api_key="sk-test-key"))
    assert model_server.requests[0]["authorization"] == "Bearer sk-test-key"
