"""Contract tests of Arbiter's vLLM paths against recorded vLLM answers (tests/fake_vllm_server).

vLLM cannot run here (no GPU, CUDA wheels), so these check that Arbiter sends what vLLM expects
and reads what vLLM answers: `n` with logprobs in one request, usage at the end of a stream,
/health and /v1/models, and LoRA adapters hot-loaded under their checkpoint id.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_vllm_server import FakeVLLM
from models_serving import selectors, services, tasks
from models_serving.client import (
    ChatClient,
    ModelServerRejected,
    ModelServerUnavailable,
    ModelVersionDisabled,
    ModelVersionNotReady,
    SamplingParams,
    StreamEnd,
)
from models_serving.models import ModelEndpoint, ModelVersion

pytestmark = pytest.mark.django_db

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
PARAMS = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=32)


@pytest.fixture
def vllm() -> Iterator[FakeVLLM]:
    yield from FakeVLLM().serve()


@pytest.fixture
def queued(monkeypatch) -> dict[str, list[int]]:
    """What was queued for Celery, by task name (nothing runs: tests call the services)."""
    sent: dict[str, list[int]] = {"load_version": [], "serve_checkpoint": []}
    for name, ids in sent.items():
        monkeypatch.setattr(getattr(tasks, name), "delay", ids.append)
    return sent


@pytest.fixture
def register(django_capture_on_commit_callbacks):
    """checkpoint_register as training calls it, with the after-commit work let through."""

    def run(**kwargs) -> ModelVersion:
        with django_capture_on_commit_callbacks(execute=True):
            return services.checkpoint_register(**kwargs)

    return run


def vllm_endpoint(base_url: str, **fields) -> ModelEndpoint:
    defaults = {"name": "vllm", "kind": "vllm", "supports_n": True, "supports_logprobs": True}
    return services.model_endpoint_create(base_url=base_url, **{**defaults, **fields})


def adapter_dir(tmp_path: Path, name: str = "adapter") -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    (path / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    return path


def generate(config, k: int):
    async def go():
        client = ChatClient(config)
        try:
            return await client.generate(MESSAGES, k=k, params=PARAMS, base_seed=7)
        finally:
            await client.close()

    return asyncio.run(go())


def stream(config):
    async def go():
        client = ChatClient(config)
        try:
            return [item async for item in client.stream(MESSAGES, params=PARAMS, seed=7)]
        finally:
            await client.close()

    return asyncio.run(go())


# --- completions --------------------------------------------------------------------------


def test_k_candidates_with_logprobs_come_from_one_n_request(vllm):
    version = services.model_version_create(
        endpoint=vllm_endpoint(vllm.base_url), model_name="/models/policy", label="base"
    )
    candidates = generate(selectors.server_config_for(version), k=2)

    [request] = vllm.requests
    assert request["path"] == "/v1/chat/completions"
    assert (request["n"], request["seed"], request["logprobs"]) == (2, 7, True)
    assert (request["temperature"], request["top_p"], request["max_tokens"]) == (0.8, 0.95, 32)
    assert [c.content for c in candidates] == ["Paris is the capital.", "It is Paris."]
    assert all(c.finish_reason == "stop" and c.seed == 7 for c in candidates)
    assert candidates[0].prompt_tokens == 14
    # vLLM's usage covers all n choices together, so no per-candidate count is invented.
    assert candidates[0].completion_tokens is None
    assert candidates[0].sampling_params == {**PARAMS.as_dict(), "n": 2}
    assert [t["token"] for t in candidates[1].logprobs] == ["It", " is", " Paris", "."]
    assert candidates[0].logprobs[0] == {"token": "Paris", "logprob": -0.0312}


def test_without_n_support_k_seeded_requests_go_out(vllm):
    endpoint = vllm_endpoint(vllm.base_url, supports_n=False, supports_logprobs=False)
    version = services.model_version_create(
        endpoint=endpoint, model_name="/models/policy", label="base"
    )
    candidates = generate(selectors.server_config_for(version), k=2)
    assert sorted(r["seed"] for r in vllm.requests) == [7, 8]
    assert {r["n"] for r in vllm.requests} == {1}
    assert all("logprobs" not in r for r in vllm.requests)
    assert all(c.logprobs is None for c in candidates)


def test_stream_asks_for_usage_and_reads_it_from_the_choiceless_last_chunk(vllm):
    version = services.model_version_create(
        endpoint=vllm_endpoint(vllm.base_url), model_name="/models/policy", label="base"
    )
    items = stream(selectors.server_config_for(version))

    [request] = vllm.requests
    assert request["stream"] is True and request["seed"] == 7
    assert request["stream_options"] == {"include_usage": True}
    assert "".join(i for i in items if isinstance(i, str)) == "Paris is the capital."
    end = items[-1]
    assert isinstance(end, StreamEnd)
    assert (end.finish_reason, end.prompt_tokens, end.completion_tokens) == ("stop", 14, 4)


def test_unknown_model_is_a_404_rejected_without_retry_or_upstream_text(vllm):
    version = services.model_version_create(
        endpoint=vllm_endpoint(vllm.base_url), model_name="not-served", label="x"
    )
    with pytest.raises(ModelServerRejected) as caught:
        generate(selectors.server_config_for(version), k=1)
    assert caught.value.status_code == 404
    assert "does not exist" not in str(caught.value)
    assert len(vllm.requests) == 1


def test_api_key_is_sent_to_every_vllm_route(register, tmp_path, queued):
    with FakeVLLM(api_key="sk-vllm") as running:
        endpoint = vllm_endpoint(running.base_url, api_key="sk-vllm", supports_lora=True)
        checked = services.endpoint_check_health(endpoint=endpoint)
        assert checked.last_health_ok is True
        version = register(
            endpoint=endpoint, path=str(adapter_dir(tmp_path)), checkpoint_id="c1", label="c1"
        )
        assert services.version_load(version_id=version.pk).status == "ready"
        guarded = [r for r in running.requests if r["path"].startswith("/v1/")]
        assert guarded and {r["authorization"] for r in guarded} == {"Bearer sk-vllm"}


# --- health -------------------------------------------------------------------------------


def test_health_check_asks_health_and_models(vllm):
    checked = services.endpoint_check_health(endpoint=vllm_endpoint(vllm.base_url))
    assert (checked.last_health_ok, checked.last_health_detail) == (True, "OK: 1 model listed")
    assert [r["path"] for r in vllm.requests] == ["/v1/models", "/health"]


def test_a_server_still_loading_is_unhealthy(vllm):
    vllm.health_status = 503
    checked = services.endpoint_check_health(endpoint=vllm_endpoint(vllm.base_url))
    assert (checked.last_health_ok, checked.last_health_detail) == (
        False,
        "/health answered HTTP 503",
    )


# --- LoRA checkpoints: hot-loaded under their checkpoint id --------------------------------


def test_lora_checkpoint_is_hot_loaded_and_sampleable_once_listed(register, vllm, tmp_path, queued):
    endpoint = vllm_endpoint(vllm.base_url, supports_lora=True)
    path = adapter_dir(tmp_path)
    version = register(
        endpoint=endpoint, path=str(path), checkpoint_id="demo-dpo-job-3", label="DPO 3"
    )
    assert (version.kind, version.model_name, version.weights_path) == (
        "lora",
        "demo-dpo-job-3",
        str(path),
    )
    # Pending until the server lists it: nothing samples it, no session picks it by default.
    assert version.status == "pending"
    assert queued["load_version"] == [version.pk]
    with pytest.raises(ModelVersionNotReady, match="still being loaded"):
        selectors.server_config_for(version)
    assert version not in selectors.model_version_list(enabled=True)

    version = services.version_load(version_id=version.pk)

    load = next(r for r in vllm.requests if r["path"] == "/v1/load_lora_adapter")
    assert (load["lora_name"], load["lora_path"]) == ("demo-dpo-job-3", str(path))
    assert vllm.requests[-1]["path"] == "/v1/models"  # checked after loading
    assert (version.status, version.status_detail) == ("ready", "listed by the server")
    assert version in selectors.model_version_list(enabled=True)
    candidates = generate(selectors.server_config_for(version), k=2)
    assert vllm.requests[-1]["model"] == "demo-dpo-job-3" and len(candidates) == 2


def test_an_adapter_already_loaded_is_ready(register, vllm, tmp_path, queued):
    path = adapter_dir(tmp_path)
    vllm.loras["c7"] = str(path)
    version = register(
        endpoint=vllm_endpoint(vllm.base_url, supports_lora=True),
        path=str(path),
        checkpoint_id="c7",
        label="c7",
    )
    assert services.version_load(version_id=version.pk).status == "ready"


def test_a_server_without_runtime_lora_updating_fails_the_version_clearly(
    register, tmp_path, queued
):
    with FakeVLLM(runtime_lora=False) as server:
        version = register(
            endpoint=vllm_endpoint(server.base_url, supports_lora=True),
            path=str(adapter_dir(tmp_path)),
            checkpoint_id="c1",
            label="c1",
        )
        version = services.version_load(version_id=version.pk)
    assert version.status == "failed"
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in version.status_detail
    with pytest.raises(ModelVersionNotReady) as caught:
        selectors.server_config_for(version)
    assert "could not be loaded" in str(caught.value)
    # The live stream view answers a disabled or unready version with a 409, not a 500.
    assert isinstance(caught.value, ModelVersionDisabled)


def test_an_adapter_the_server_cannot_find_fails_in_our_words(register, vllm, tmp_path, queued):
    path = adapter_dir(tmp_path)
    version = register(
        endpoint=vllm_endpoint(vllm.base_url, supports_lora=True),
        path=str(path),
        checkpoint_id="gone",
        label="gone",
    )
    (path / "adapter_config.json").unlink()  # the GPU node does not see it
    version = services.version_load(version_id=version.pk)
    assert version.status == "failed"
    assert version.status_detail == f"the server found no LoRA adapter at {path}"
    assert "No adapter found" not in version.status_detail


def test_lora_on_an_endpoint_without_lora_support_fails_at_once(register, vllm, tmp_path, queued):
    version = register(
        endpoint=vllm_endpoint(vllm.base_url, supports_lora=False),
        path=str(adapter_dir(tmp_path)),
        checkpoint_id="c1",
        label="c1",
    )
    assert version.status == "failed" and "supports_lora" in version.status_detail
    assert queued == {"load_version": [], "serve_checkpoint": []}
    assert vllm.requests == []


def test_an_unreachable_server_is_retried_then_the_version_fails(
    register, closed_port_url, tmp_path, queued
):
    version = register(
        endpoint=vllm_endpoint(closed_port_url, supports_lora=True),
        path=str(adapter_dir(tmp_path)),
        checkpoint_id="c1",
        label="c1",
    )
    with pytest.raises(ModelServerUnavailable):
        services.version_load(version_id=version.pk)
    assert ModelVersion.objects.get(pk=version.pk).status == "pending"
    # The task's last retry gives up and says why.
    assert tasks.load_version.apply(args=[version.pk], retries=tasks.LOAD_RETRIES).get() == "failed"
    version.refresh_from_db()
    assert version.status == "failed" and "unreachable" in version.status_detail


def test_health_round_reloads_adapters_a_restarted_server_forgot(register, vllm, tmp_path, queued):
    endpoint = vllm_endpoint(vllm.base_url, supports_lora=True)
    version = register(
        endpoint=endpoint, path=str(adapter_dir(tmp_path)), checkpoint_id="c1", label="c1"
    )
    services.version_load(version_id=version.pk)
    vllm.loras.clear()  # vLLM restarted: runtime-loaded adapters are gone

    assert services.endpoints_check_all() == {"vllm": True}

    assert "c1" in vllm.loras
    loads = [r for r in vllm.requests if r["path"] == "/v1/load_lora_adapter"]
    assert len(loads) == 2
    version.refresh_from_db()
    assert version.status == "ready"


# --- other servers -------------------------------------------------------------------------


def test_on_transformers_serve_the_checkpoint_path_is_the_model_and_ready_at_once(
    register, tmp_path, queued
):
    endpoint = services.model_endpoint_create(
        name="local", base_url="http://127.0.0.1:9/v1", kind="transformers-serve"
    )
    path = tmp_path / "checkpoint"
    path.mkdir()
    version = register(endpoint=endpoint, path=str(path), checkpoint_id="c1", label="c1")
    assert (version.model_name, version.kind, version.status) == (str(path), "checkpoint", "ready")
    assert queued == {"load_version": [], "serve_checkpoint": []}
    assert selectors.server_config_for(version).model == str(path)


@pytest.mark.parametrize(("listed", "status"), [(True, "ready"), (False, "failed")])
def test_other_openai_servers_must_list_a_new_version(
    register, vllm, tmp_path, queued, listed, status
):
    path = tmp_path / "ckpt"
    path.mkdir()
    if listed:
        vllm.base_model = str(path)
    endpoint = services.model_endpoint_create(
        name="other", base_url=vllm.base_url, kind="openai-compatible"
    )
    version = register(endpoint=endpoint, path=str(path), checkpoint_id="c1", label="c1")
    assert version.status == "pending" and queued["load_version"] == [version.pk]
    version = services.version_load(version_id=version.pk)
    assert version.status == status
    if not listed:
        assert "does not list" in version.status_detail


def test_a_redelivered_load_leaves_a_settled_version_alone(vllm, queued):
    version = services.model_version_create(
        endpoint=vllm_endpoint(vllm.base_url), model_name="/models/policy", label="base"
    )
    assert services.version_load(version_id=version.pk).status == "ready"
    assert vllm.requests == []
