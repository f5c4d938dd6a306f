import errno
import json
import socket
import ssl

import httpx
from django.utils import timezone

from .models import ModelEndpoint, ModelVersion

# A model list is small; the whole check must stay quick enough to run from a request.
HEALTH_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
HEALTH_MAX_BODY = 1 << 20

ENDPOINT_EDITABLE_FIELDS = {
    "name",
    "base_url",
    "api_key",
    "kind",
    "supports_n",
    "supports_logprobs",
    "supports_lora",
    "max_concurrency",
    "default_sampling_params",
    "enabled",
}
# What a completion records must keep meaning what it meant: endpoint, model_name and kind
# of a version are fixed once created; register a new version instead.
VERSION_EDITABLE_FIELDS = {"label", "notes", "enabled"}


def model_endpoint_create(
    *,
    name: str,
    base_url: str,
    api_key: str = "",
    kind: str = ModelEndpoint.Kind.VLLM,
    supports_n: bool = False,
    supports_logprobs: bool = False,
    supports_lora: bool = False,
    max_concurrency: int = 4,
    default_sampling_params: dict | None = None,
    enabled: bool = True,
) -> ModelEndpoint:
    endpoint = ModelEndpoint(
        name=name,
        base_url=base_url,
        api_key=api_key,
        kind=kind,
        supports_n=supports_n,
        supports_logprobs=supports_logprobs,
        supports_lora=supports_lora,
        max_concurrency=max_concurrency,
        default_sampling_params=default_sampling_params or {},
        enabled=enabled,
    )
    endpoint.full_clean()  # callers other than the API (training, commands) get the same checks
    endpoint.save()
    return endpoint


def model_endpoint_update(*, endpoint: ModelEndpoint, **fields: object) -> ModelEndpoint:
    _refuse_unknown(fields, ENDPOINT_EDITABLE_FIELDS)
    for name, value in fields.items():
        setattr(endpoint, name, value)
    endpoint.full_clean()
    endpoint.save(update_fields=list(fields) or None)
    return endpoint


def model_version_create(
    *,
    endpoint: ModelEndpoint,
    model_name: str,
    label: str,
    kind: str = ModelVersion.Kind.BASE,
    notes: str = "",
    enabled: bool = True,
) -> ModelVersion:
    version = ModelVersion(
        endpoint=endpoint,
        model_name=model_name,
        label=label,
        kind=kind,
        notes=notes,
        enabled=enabled,
    )
    version.full_clean()
    version.save()
    return version


def model_version_update(*, version: ModelVersion, **fields: object) -> ModelVersion:
    _refuse_unknown(fields, VERSION_EDITABLE_FIELDS)
    for name, value in fields.items():
        setattr(version, name, value)
    version.full_clean()
    version.save(update_fields=list(fields) or None)
    return version


def endpoint_check_health(*, endpoint: ModelEndpoint) -> ModelEndpoint:
    """Ask the endpoint for its model list and record the outcome in our own words.

    The detail never quotes the server's answer: an admin may point this at any URL, and the
    result is shown in the browser (the SSRF-to-XSS path of Label Studio's CVE-2025-25297).
    """
    ok, detail = _probe_models(endpoint.base_url, endpoint.api_key)
    endpoint.last_health_ok = ok
    endpoint.last_health_detail = detail
    endpoint.last_health_at = timezone.now()
    endpoint.save(update_fields=["last_health_ok", "last_health_detail", "last_health_at"])
    return endpoint


def _probe_models(base_url: str, api_key: str) -> tuple[bool, str]:
    """GET {base_url}/models, which vLLM and `transformers serve` both answer."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = f"{base_url.rstrip('/')}/models"
    try:
        with httpx.Client(timeout=HEALTH_TIMEOUT, follow_redirects=False) as client:
            with client.stream("GET", url, headers=headers) as reply:
                if reply.status_code != 200:
                    return False, f"HTTP {reply.status_code}"
                body = _read_at_most(reply, HEALTH_MAX_BODY)
    except httpx.ConnectTimeout:
        return False, "connection timed out"
    except httpx.TimeoutException:
        return False, f"no answer within {HEALTH_TIMEOUT.read:g} s"
    except httpx.ConnectError as exc:
        return False, _connect_failure(exc)
    except httpx.HTTPError:
        return False, "the connection broke or the answer was not valid HTTP"
    if body is None:
        return False, "HTTP 200 but the answer is too large to be a model list"
    count = _model_count(body)
    if count is None:
        return False, "HTTP 200 but not an OpenAI-compatible model list"
    return True, f"OK: {count} model{'' if count == 1 else 's'} listed"


def _read_at_most(reply: httpx.Response, limit: int) -> bytes | None:
    body = b""
    for chunk in reply.iter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return body


def _model_count(body: bytes) -> int | None:
    try:
        models = json.loads(body)["data"]
    except (ValueError, TypeError, KeyError):
        return None
    return len(models) if isinstance(models, list) else None


def _connect_failure(exc: BaseException) -> str:
    """A short reason from the exception chain (httpx wraps httpcore, which wraps the OS error)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return "host not found"
        if isinstance(cause, ssl.SSLError):
            return "TLS handshake failed"
        if getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    # httpcore re-raises without chaining in some versions; its message is the OS error's.
    return "connection refused" if "refused" in str(exc).lower() else "could not connect"


def _refuse_unknown(fields: dict, allowed: set[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))}")
