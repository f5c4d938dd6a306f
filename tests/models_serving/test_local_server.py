import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from models_serving.local_server import (
    local_model_server,
    local_server_command,
    served_model_name,
    server_is_healthy,
)
from models_serving.tiny_models import build_tiny_policy

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello."},
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_policy(tmp_path_factory.mktemp("models") / "policy")


@pytest.fixture(scope="module")
def server(policy_dir: Path) -> Iterator[str]:
    with local_model_server(policy_dir, free_port()) as base_url:
        yield base_url
    assert not server_is_healthy(base_url)  # stopped on exit


def chat(base_url: str, model: str, **params: object) -> openai.types.chat.ChatCompletion:
    async def call() -> openai.types.chat.ChatCompletion:
        async with AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0) as client:
            return await client.chat.completions.create(
                model=model, messages=MESSAGES, max_tokens=8, **params
            )

    return asyncio.run(call())


def test_command_uses_the_venv_transformers_cli(policy_dir: Path) -> None:
    argv = local_server_command(policy_dir, 8123)
    assert Path(argv[0]).name == "transformers" and Path(argv[0]).exists()
    assert argv[1:3] == ["serve", str(policy_dir)]
    assert argv[argv.index("--device") + 1] == "cpu"


def test_chat_completion_through_the_openai_sdk(server: str, policy_dir: Path) -> None:
    response = chat(server, served_model_name(policy_dir), temperature=1.0, seed=1)

    assert len(response.choices) == 1
    choice = response.choices[0]
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert response.model == served_model_name(policy_dir)
    assert response.usage is not None
    assert 0 < response.usage.completion_tokens <= 8
    assert response.usage.prompt_tokens > 0


def test_same_seed_same_sample_when_requests_are_sequential(server: str, policy_dir: Path) -> None:
    # The server seeds torch's global RNG per request, so this only holds without concurrency.
    first = chat(server, served_model_name(policy_dir), seed=7)
    second = chat(server, served_model_name(policy_dir), seed=7)
    assert first.choices[0].message.content == second.choices[0].message.content


def test_server_ignores_n(server: str, policy_dir: Path) -> None:
    response = chat(server, served_model_name(policy_dir), n=2)
    assert len(response.choices) == 1  # callers must send one seeded request per candidate


def test_pinned_server_rejects_another_model_name(server: str) -> None:
    with pytest.raises(openai.BadRequestError):
        chat(server, "some-other-model")
