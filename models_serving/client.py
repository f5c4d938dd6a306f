"""Client for OpenAI-compatible chat-completion servers (vLLM, `transformers serve`).

The rest of Arbiter asks this module for candidates and never speaks HTTP to a model
itself. Errors come out typed so callers can turn them into clear messages.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import httpx
import openai
from openai import AsyncOpenAI


class ModelServerError(Exception):
    """The model server could not produce a completion."""


class ModelServerUnavailable(ModelServerError):
    """Connection refused, timed out or the server answered 5xx."""


class ModelServerRejected(ModelServerError):
    """The server refused the request (4xx): retrying the same request will not help."""


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 64

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    content: str
    model: str
    seed: int | None
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int
    sampling_params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ServerConfig:
    base_url: str
    model: str
    api_key: str = "EMPTY"
    supports_n: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    max_retries: int = 2


class ChatClient:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        # The SDK retries connection errors, 408/409/429 and 5xx with backoff, never other 4xx.
        self._client = AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=timeout,
            max_retries=config.max_retries,
        )

    async def generate(
        self, messages: Sequence[dict], *, k: int, params: SamplingParams, base_seed: int = 0
    ) -> list[Candidate]:
        """K candidates for one prefix: one ``n=k`` request if supported, else K seeded ones."""
        if self.config.supports_n:
            return await self._request(messages, n=k, params=params, seed=base_seed)
        batches = await asyncio.gather(
            *(self._request(messages, n=1, params=params, seed=base_seed + i) for i in range(k))
        )
        return [c for batch in batches for c in batch]

    async def close(self) -> None:
        await self._client.close()

    async def _request(
        self, messages: Sequence[dict], *, n: int, params: SamplingParams, seed: int
    ) -> list[Candidate]:
        started = time.monotonic()
        try:
            response = await self._client.chat.completions.create(
                model=self.config.model,
                messages=list(messages),  # type: ignore[arg-type]
                n=n,
                seed=seed,
                **params.as_dict(),
            )
        except (
            openai.APIConnectionError,
            openai.APITimeoutError,
            openai.InternalServerError,
        ) as exc:
            raise ModelServerUnavailable(
                f"model server at {self.config.base_url} is unavailable"
            ) from exc
        except openai.RateLimitError as exc:
            raise ModelServerUnavailable("model server is overloaded (429)") from exc
        except openai.APIStatusError as exc:
            raise ModelServerRejected(
                f"model server refused the request ({exc.status_code})"
            ) from exc
        latency_ms = int((time.monotonic() - started) * 1000)
        usage = response.usage
        return [
            Candidate(
                content=choice.message.content or "",
                model=response.model or self.config.model,
                seed=seed,
                finish_reason=choice.finish_reason or "",
                prompt_tokens=usage.prompt_tokens if usage else None,
                completion_tokens=usage.completion_tokens if usage and n == 1 else None,
                latency_ms=latency_ms,
                sampling_params={**params.as_dict(), "n": n},
            )
            for choice in response.choices
        ]


def server_config_from_settings() -> ServerConfig:
    from django.conf import settings

    return ServerConfig(
        base_url=settings.MODEL_BASE_URL,
        model=settings.MODEL_NAME,
        api_key=settings.MODEL_API_KEY,
        supports_n=settings.MODEL_SUPPORTS_N,
        connect_timeout=settings.MODEL_CONNECT_TIMEOUT,
        read_timeout=settings.MODEL_READ_TIMEOUT,
    )


def generate_many(
    config: ServerConfig,
    prefixes: Sequence[Sequence[dict]],
    *,
    k: int,
    params: SamplingParams,
    max_concurrency: int = 4,
) -> list[list[Candidate] | ModelServerError]:
    """K candidates for each prefix with bounded concurrency; a failed prefix yields its error."""

    async def run() -> list[list[Candidate] | ModelServerError]:
        client = ChatClient(config)
        gate = asyncio.Semaphore(max_concurrency)

        async def one(index: int, prefix: Sequence[dict]) -> list[Candidate] | ModelServerError:
            async with gate:
                try:
                    return await client.generate(prefix, k=k, params=params, base_seed=index * k)
                except ModelServerError as exc:
                    return exc

        try:
            return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(prefixes))))
        finally:
            await client.close()

    return asyncio.run(run())
