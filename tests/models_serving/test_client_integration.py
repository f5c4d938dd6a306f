"""ChatClient and the health check against a real `transformers serve` on the tiny policy."""

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from models_serving import selectors, services
from models_serving.client import ChatClient, ModelServerRejected, SamplingParams
from models_serving.local_server import local_model_server, served_model_name
from models_serving.tiny_models import build_tiny_policy

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_policy(tmp_path_factory.mktemp("models") / "policy")


@pytest.fixture(scope="module")
def server(policy_dir: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with local_model_server(policy_dir, port) as base_url:
        yield base_url


def version_on(base_url: str, model_name: str, **endpoint_fields):
    endpoint = services.model_endpoint_create(
        name="local", base_url=base_url, kind="transformers-serve", **endpoint_fields
    )
    return services.model_version_create(endpoint=endpoint, model_name=model_name, label="tiny")


def generate(config, k: int):
    async def run():
        client = ChatClient(config)
        try:
            return await client.generate(
                MESSAGES, k=k, params=SamplingParams(temperature=1.0, max_tokens=8), base_seed=1
            )
        finally:
            await client.close()

    return asyncio.run(run())


def test_k_candidates_from_a_registered_version(server, policy_dir):
    # supports_n is set, but transformers serve answers n=2 with one choice: the client tops up.
    version = version_on(server, served_model_name(policy_dir), supports_n=True)
    candidates = generate(selectors.server_config_for(version), k=2)
    assert len(candidates) == 2
    for candidate in candidates:
        assert isinstance(candidate.content, str)
        assert candidate.finish_reason in ("stop", "length")
        assert candidate.prompt_tokens and candidate.prompt_tokens > 0
    # Gibberish from a random model can repeat, but then it must say so.
    if candidates[0].content.strip() == candidates[1].content.strip():
        assert candidates[1].duplicate


def test_wrong_model_name_is_rejected_without_retry(server):
    version = version_on(server, "not-the-served-model")
    with pytest.raises(ModelServerRejected) as caught:
        generate(selectors.server_config_for(version), k=1)
    assert caught.value.status_code == 400


def test_health_check_of_the_running_server(server, policy_dir):
    version = version_on(server, served_model_name(policy_dir))
    checked = services.endpoint_check_health(endpoint=version.endpoint)
    assert checked.last_health_ok is True
    assert checked.last_health_detail.startswith("OK:")
