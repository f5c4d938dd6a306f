"""Client for OpenAI-compatible chat-completion servers (vLLM, `transformers serve`).

The rest of Arbiter asks this module for candidates and never speaks HTTP to a model
itself. Errors come out typed so callers can turn them into clear messages.
"""

import asyncio
import functools
import itertools
import math
import random
import ssl
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

import openai
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletion

MAX_RETRY_DELAY = 8.0  # seconds; also the most of a server's Retry-After we are willing to wait


class ModelServerError(Exception):
    """The model server could not produce a completion."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelServerUnavailable(ModelServerError):
    """Connection refused, timed out or the server answered 429/5xx, after our retries."""


class ModelServerRejected(ModelServerError):
    """The server refused the request (4xx): retrying the same request will not help."""


class ModelServerMalformed(ModelServerError):
    """The server answered 200 with something that is not a chat completion."""


class ModelVersionDisabled(ModelServerError):
    """An admin disabled the model version or its endpoint: nothing may be sent to it."""


class ModelVersionNotReady(ModelVersionDisabled):
    """The version's server does not serve it (yet): still loading, or loading failed."""


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
    # [{"token": str, "logprob": float | None}, ...] when the endpoint returns logprobs.
    logprobs: list[dict] | None = None
    # Same text as an earlier candidate of its group even after redrawing with new seeds.
    duplicate: bool = False


@dataclass(frozen=True)
class StreamEnd:
    """The last item of ``ChatClient.stream``: how the reply ended and what it cost."""

    model: str
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int


@dataclass(frozen=True)
class ServerConfig:
    base_url: str
    model: str
    api_key: str = "EMPTY"
    supports_n: bool = False
    supports_logprobs: bool = False
    max_concurrency: int = 4
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    max_retries: int = 2
    retry_backoff: float = 0.5  # first retry's delay in seconds, doubled for each next one
    duplicate_retries: int = 2  # redraws of a candidate whose text repeats an earlier one
    default_sampling: SamplingParams = SamplingParams()
    endpoint_id: int | None = None  # the ModelEndpoint / ModelVersion rows, when built from them
    version_id: int | None = None


# One gate per endpoint and event loop, shared by every ChatClient in the process: live streams
# and bulk rounds together never exceed the endpoint's max_concurrency from one process.
# asyncio primitives belong to one loop, hence the per-loop table (weak, so closed loops go).
_Gates = dict[tuple[str, int], asyncio.Semaphore]
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Gates] = weakref.WeakKeyDictionary()


def endpoint_gate(config: ServerConfig) -> asyncio.Semaphore:
    per_loop = _gates.setdefault(asyncio.get_running_loop(), {})
    key = (config.base_url, config.max_concurrency)
    if key not in per_loop:
        per_loop[key] = asyncio.Semaphore(max(1, config.max_concurrency))
    return per_loop[key]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client in the process (the system's CA store).

    Building one loads the CA bundle: 30-150 ms of CPU that every live turn would otherwise
    pay before its first token (the SDK builds a fresh one per client).
    """
    return ssl.create_default_context()


class ChatClient:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        timeout = openai.Timeout(
            config.read_timeout, connect=config.connect_timeout, pool=config.read_timeout
        )
        # Retries are ours (see _request): the SDK's would also retry 408, 409 and any 4xx that
        # carries `x-should-retry: true`, and would wait up to two minutes on a Retry-After.
        self._client = AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=timeout,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(verify=_tls_context()),
        )

    async def generate(
        self, messages: Sequence[dict], *, k: int, params: SamplingParams, base_seed: int = 0
    ) -> list[Candidate]:
        """K candidates for one prefix: one ``n=k`` request if supported, else K seeded ones.

        A candidate whose text repeats an earlier one is redrawn with fresh seeds; if it still
        repeats, it comes back with ``duplicate=True`` for the caller to handle.
        """
        candidates: list[Candidate] = []
        if self.config.supports_n and k > 1:
            candidates = (await self._request(messages, n=k, params=params, seed=base_seed))[:k]
        # An endpoint may ignore `n` and answer with one choice; top up with seeded requests.
        missing = range(len(candidates), k)
        batches = await asyncio.gather(
            *(self._request(messages, n=1, params=params, seed=base_seed + i) for i in missing)
        )
        candidates += [c for batch in batches for c in batch]
        return await self._redraw_duplicates(
            messages, candidates, params=params, next_seed=base_seed + k
        )

    async def stream(
        self, messages: Sequence[dict], *, params: SamplingParams, seed: int
    ) -> AsyncGenerator[str | StreamEnd, None]:
        """One candidate as the server generates it: text deltas, then one StreamEnd.

        Opening the request is retried like ``generate``; once the server has answered nothing
        is retried, since the caller may already have shown the tokens. Closing the iterator or
        cancelling the task that reads it closes the HTTP response, so the server stops too.
        """
        started = time.monotonic()
        for attempt in itertools.count():
            async with endpoint_gate(self.config):  # held for the whole stream
                try:
                    response = await self._stream_open(messages, params=params, seed=seed)
                except ModelServerUnavailable as exc:
                    delay = _retry_delay(exc.__cause__, attempt, self.config.retry_backoff)
                    if attempt >= self.config.max_retries or delay is None:
                        raise
                else:
                    async with response:
                        async for item in self._stream_items(response, started=started):
                            yield item
                    return
            await asyncio.sleep(delay)  # outside the gate: a waiting retry holds no slot

    async def close(self) -> None:
        await self._client.close()

    @property
    def _where(self) -> str:
        return f"model server at {self.config.base_url}"

    async def _stream_open(
        self, messages: Sequence[dict], *, params: SamplingParams, seed: int
    ) -> AsyncStream[object]:
        """Open the stream; its chunks come back as plain dicts.

        The SDK's own `chat.completions.create(stream=True)` builds a pydantic model per chunk:
        about 160 us of CPU each, which at 32 live turns (64 streams of ~50 tokens/s) is a
        quarter of a core. Through the SDK's generic `post` (its way to call any endpoint) the
        request, status errors, timeouts and in-stream error events are handled the same way,
        and each chunk is only decoded from JSON.
        """
        body = {
            "model": self.config.model,
            "messages": list(messages),
            "seed": seed,
            "stream": True,
            # Token usage at the end of the stream. vLLM and OpenAI send it only when asked, and
            # so does `transformers serve` since 5.x (4.x sent it anyway, warning of the field).
            "stream_options": {"include_usage": True},
            **params.as_dict(),
        }
        with _typed_errors(self._where):
            return await self._client.post(
                "/chat/completions",
                body=body,
                cast_to=object,
                stream=True,
                stream_cls=AsyncStream[object],
            )

    async def _stream_items(
        self, response: AsyncStream[object], *, started: float
    ) -> AsyncIterator[str | StreamEnd]:
        model, finish_reason, usage = self.config.model, "", None
        with _typed_errors(self._where, reading=True):
            async for chunk in response:
                model = chunk.get("model") or model  # type: ignore[attr-defined]
                # The last chunk carries the usage, or one with no choices after it (vLLM).
                usage = chunk.get("usage") or usage  # type: ignore[attr-defined]
                for choice in chunk.get("choices") or ():  # type: ignore[attr-defined]
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        yield _storable(content)
                    finish_reason = choice.get("finish_reason") or finish_reason
        if not finish_reason:
            # Every OpenAI-compatible server ends a reply with a finish reason; a body that just
            # stops (a crash behind a proxy, or HTTP/1.0) is a reply cut off, not a short one.
            raise ModelServerUnavailable(f"{self._where} closed the connection mid-reply")
        yield StreamEnd(
            model=model if isinstance(model, str) else self.config.model,
            finish_reason=str(finish_reason),
            prompt_tokens=_token_count(usage, "prompt_tokens"),
            completion_tokens=_token_count(usage, "completion_tokens"),
            latency_ms=int((time.monotonic() - started) * 1000),
        )

    async def _redraw_duplicates(
        self,
        messages: Sequence[dict],
        candidates: list[Candidate],
        *,
        params: SamplingParams,
        next_seed: int,
    ) -> list[Candidate]:
        seen: set[str] = set()
        result = []
        for candidate in candidates:
            # Greedy decoding gives the same text for every seed: redrawing would only cost time.
            tries = self.config.duplicate_retries if params.temperature > 0 else 0
            while _comparable(candidate) in seen and tries > 0:
                tries -= 1
                try:
                    [candidate] = await self._request(messages, n=1, params=params, seed=next_seed)
                except ModelServerError:
                    break  # keep the candidate we have, flagged below, rather than lose all K
                finally:
                    next_seed += 1
            if _comparable(candidate) in seen:
                candidate = replace(candidate, duplicate=True)
            seen.add(_comparable(candidate))
            result.append(candidate)
        return result

    async def _request(
        self, messages: Sequence[dict], *, n: int, params: SamplingParams, seed: int
    ) -> list[Candidate]:
        """One chat completion, retried on connection errors, 429 and 5xx; never on other 4xx."""
        attempt = 0
        while True:
            try:
                async with endpoint_gate(self.config):
                    return await self._request_once(messages, n=n, params=params, seed=seed)
            except ModelServerUnavailable as exc:
                delay = _retry_delay(exc.__cause__, attempt, self.config.retry_backoff)
                if attempt >= self.config.max_retries or delay is None:
                    raise
            attempt += 1
            await asyncio.sleep(delay)  # outside the gate: a waiting retry holds no slot

    async def _request_once(
        self, messages: Sequence[dict], *, n: int, params: SamplingParams, seed: int
    ) -> list[Candidate]:
        started = time.monotonic()
        extra = {"logprobs": True} if self.config.supports_logprobs else {}
        with _typed_errors(self._where):
            # The sampling params are spread from a plain dict, which no overload can check.
            response = await self._client.chat.completions.create(  # type: ignore[call-overload]
                model=self.config.model,
                messages=list(messages),  # type: ignore[arg-type]
                n=n,
                seed=seed,
                **params.as_dict(),
                **extra,
            )
        latency_ms = int((time.monotonic() - started) * 1000)
        try:
            return self._candidates(response, n=n, params=params, seed=seed, latency_ms=latency_ms)
        except (AttributeError, TypeError, ValueError) as exc:
            # The SDK builds its models without validating them, so a wrong shape shows up here.
            raise ModelServerMalformed(f"{self._where} answered with no usable completion") from exc

    def _candidates(
        self,
        response: ChatCompletion,
        *,
        n: int,
        params: SamplingParams,
        seed: int,
        latency_ms: int,
    ) -> list[Candidate]:
        if not response.choices:
            raise ValueError("no choices")
        usage = response.usage
        return [
            Candidate(
                content=_storable(choice.message.content or ""),
                model=response.model or self.config.model,
                seed=seed,
                finish_reason=choice.finish_reason or "",
                prompt_tokens=usage.prompt_tokens if usage else None,
                completion_tokens=usage.completion_tokens if usage and n == 1 else None,
                latency_ms=latency_ms,
                sampling_params={**params.as_dict(), "n": n},
                logprobs=parse_logprobs(choice.logprobs) if self.config.supports_logprobs else None,
            )
            for choice in response.choices
        ]


@contextmanager
def _typed_errors(where: str, *, reading: bool = False) -> Iterator[None]:
    """The SDK's errors as ours; ``reading``: while reading a stream the server already opened."""
    try:
        yield
    except openai.APITimeoutError as exc:
        raise ModelServerUnavailable(f"{where} did not answer in time") from exc
    except openai.APIConnectionError as exc:
        lost = "closed the connection mid-reply" if reading else "is unreachable"
        raise ModelServerUnavailable(f"{where} {lost}") from exc
    except openai.APIStatusError as exc:
        # Only our words and the status code: an upstream body may echo prompts or secrets.
        code = exc.status_code
        if code == 429 or code >= 500:
            raise ModelServerUnavailable(
                f"{where} is unavailable (HTTP {code})", status_code=code
            ) from exc
        raise ModelServerRejected(
            f"{where} refused the request (HTTP {code})", status_code=code
        ) from exc
    except openai.APIError as exc:  # an error event inside a stream; its text stays upstream
        raise ModelServerError(f"{where} reported an error mid-reply") from exc
    except ValueError as exc:  # a 200 whose body is not JSON (a proxy's HTML page)
        raise ModelServerMalformed(f"{where} answered with something other than JSON") from exc
    except (AttributeError, TypeError) as exc:
        if not reading:
            raise
        raise ModelServerMalformed(f"{where} streamed something other than chat chunks") from exc


def _token_count(usage: object, name: str) -> int | None:
    value = usage.get(name) if isinstance(usage, dict) else None
    return value if isinstance(value, int) else None


def _retry_delay(cause: BaseException | None, attempt: int, backoff: float) -> float | None:
    """Seconds to wait before retrying after ``cause``, or None when a retry cannot help."""
    if isinstance(cause, openai.APITimeoutError) and _timed_out_reading(cause):
        # The server took the request and stayed silent for the whole read timeout: another try
        # would most likely hang as long again while an annotator waits.
        return None
    if isinstance(cause, openai.APIStatusError):
        retry_after = _retry_after_seconds(cause.response.headers.get("retry-after"))
        if retry_after is not None:
            return retry_after
    delay = min(backoff * 2**attempt, MAX_RETRY_DELAY)
    return delay * random.uniform(0.75, 1.0)  # jitter, so clients that failed together spread


def _timed_out_reading(exc: openai.APITimeoutError) -> bool:
    # The SDK wraps httpx or httpx2 depending on its version; both name this exception so.
    return type(exc.__cause__).__name__ == "ReadTimeout"


def _retry_after_seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None  # an HTTP date: rare from model servers, so fall back to our backoff
    return seconds if 0 <= seconds <= MAX_RETRY_DELAY else None


def parse_logprobs(choice_logprobs: object) -> list[dict] | None:
    """The chosen tokens' logprobs as ``[{"token", "logprob"}]``; alternatives are dropped."""
    tokens = getattr(choice_logprobs, "content", None)
    if not tokens:
        return None
    return [
        {
            "token": _storable(t.token),
            # vLLM reports -inf (or -9999.0) for impossible tokens; JSON and jsonb have no -inf.
            "logprob": t.logprob if math.isfinite(t.logprob) else None,
        }
        for t in tokens
    ]


def _comparable(candidate: Candidate) -> str:
    # Texts that differ only in surrounding whitespace look the same to an annotator.
    return candidate.content.strip()


def _storable(text: str) -> str:
    """Postgres refuses NUL and unpaired surrogates in text; a model can emit either."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


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
    max_concurrency: int | None = None,
) -> list[list[Candidate] | ModelServerError]:
    """K candidates for each prefix with bounded concurrency; a failed prefix yields its error.

    ``max_concurrency`` bounds the prefixes in flight (default: the endpoint's own limit, which
    also bounds the HTTP requests underneath).
    """

    async def run() -> list[list[Candidate] | ModelServerError]:
        client = ChatClient(config)
        gate = asyncio.Semaphore(max_concurrency or config.max_concurrency)

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
