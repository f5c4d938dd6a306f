import errno
import json
import os
import shlex
import socket
import ssl
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import vllm_server
from .client import ModelServerUnavailable
from .models import ModelEndpoint, ModelVersion
from .signals import announce_version_ready

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
    weights_path: str = "",
    status: str = ModelVersion.Status.READY,
) -> ModelVersion:
    version = ModelVersion(
        endpoint=endpoint,
        model_name=model_name,
        label=label,
        kind=kind,
        notes=notes,
        enabled=enabled,
        weights_path=weights_path,
        status=status,
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
    """Ask the endpoint for its model list (and vLLM / transformers serve for /health too) and
    record the outcome in our own words.

    The detail never quotes the server's answer: an admin may point this at any URL, and the
    result is shown in the browser (the SSRF-to-XSS path of Label Studio's CVE-2025-25297).
    """
    _check_health(endpoint)
    return endpoint


def endpoints_check_all() -> dict[str, bool]:
    """The beat's health round: every enabled endpoint, its result recorded on its row.

    On a healthy vLLM endpoint that loads LoRA adapters at runtime, ready adapters it no longer
    lists (the server restarted and forgot them) are loaded again.
    """
    results = {}
    for endpoint in ModelEndpoint.objects.filter(enabled=True).order_by("pk"):
        listed = _check_health(endpoint)
        results[endpoint.name] = bool(endpoint.last_health_ok)
        if listed is not None and endpoint.kind == ModelEndpoint.Kind.VLLM:
            _reload_forgotten_adapters(endpoint, listed)
    return results


def _check_health(endpoint: ModelEndpoint) -> list[str] | None:
    """Probe, save the result on the row; the listed model ids when healthy."""
    ok, detail, listed = _probe_models(endpoint.base_url, endpoint.api_key)
    if ok and endpoint.kind != ModelEndpoint.Kind.OPENAI_COMPATIBLE:
        # vLLM and `transformers serve` answer /health outside /v1; a hosted OpenAI-style API
        # has no such route, so it is asked for its model list only.
        ok, problem = _probe_health(endpoint.base_url, endpoint.api_key)
        detail = detail if ok else problem
    endpoint.last_health_ok = ok
    endpoint.last_health_detail = detail
    endpoint.last_health_at = timezone.now()
    endpoint.save(update_fields=["last_health_ok", "last_health_detail", "last_health_at"])
    return listed if ok else None


class _ProbeFailed(Exception):
    """A probe that got no usable answer; the message is ours, never the server's."""


def _fetch(url: str, api_key: str, limit: int = HEALTH_MAX_BODY) -> tuple[int, bytes | None]:
    """GET ``url`` without following redirects: (status, body or None if over ``limit``)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(timeout=HEALTH_TIMEOUT, follow_redirects=False) as client:
            with client.stream("GET", url, headers=headers) as reply:
                if reply.status_code != 200:
                    return reply.status_code, b""
                return 200, _read_at_most(reply, limit)
    except httpx.ConnectTimeout:
        raise _ProbeFailed("connection timed out") from None
    except httpx.TimeoutException:
        raise _ProbeFailed(f"no answer within {HEALTH_TIMEOUT.read:g} s") from None
    except httpx.ConnectError as exc:
        raise _ProbeFailed(_connect_failure(exc)) from None
    except httpx.HTTPError:
        raise _ProbeFailed("the connection broke or the answer was not valid HTTP") from None


def _probe_models(base_url: str, api_key: str) -> tuple[bool, str, list[str] | None]:
    """GET {base_url}/models, which vLLM and `transformers serve` both answer."""
    try:
        status, body = _fetch(f"{base_url.rstrip('/')}/models", api_key)
    except _ProbeFailed as exc:
        return False, str(exc), None
    if status != 200:
        return False, f"HTTP {status}", None
    if body is None:
        return False, "HTTP 200 but the answer is too large to be a model list", None
    listed = _model_ids(body)
    if listed is None:
        return False, "HTTP 200 but not an OpenAI-compatible model list", None
    count = len(listed)
    return True, f"OK: {count} model{'' if count == 1 else 's'} listed", listed


def _probe_health(base_url: str, api_key: str) -> tuple[bool, str]:
    try:
        status, _ = _fetch(f"{vllm_server.server_root(base_url)}/health", api_key, limit=4096)
    except _ProbeFailed as exc:
        return False, f"/health: {exc}"
    return (True, "") if status == 200 else (False, f"/health answered HTTP {status}")


def _read_at_most(reply: httpx.Response, limit: int) -> bytes | None:
    body = b""
    for chunk in reply.iter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return body


def _model_ids(body: bytes) -> list[str] | None:
    try:
        models = json.loads(body)["data"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(models, list):
        return None
    return [m["id"] for m in models if isinstance(m, dict) and isinstance(m.get("id"), str)]


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


# --- new checkpoints: sampleable without manual steps ---------------------------------------

LORA_ADAPTER_CONFIG = "adapter_config.json"  # what PEFT writes next to an adapter's weights
LOAD_TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # loading an adapter reads it from disk


class VersionLoadFailed(Exception):
    """The server refused to serve the version for good; the message (ours) says why."""


def checkpoint_register(
    *, endpoint: ModelEndpoint, path: str, checkpoint_id: str, label: str, notes: str = ""
) -> ModelVersion:
    """A checkpoint written by training as a model version, made sampleable with no manual step.

    A LoRA adapter directory (it holds adapter_config.json) is requested on vLLM under
    ``checkpoint_id`` once the server has loaded it; anything else by its path. Call inside the
    transaction that records the checkpoint: the work that needs the server is queued for after
    the commit.
    """
    lora = (Path(path) / LORA_ADAPTER_CONFIG).is_file()
    on_vllm = endpoint.kind == ModelEndpoint.Kind.VLLM
    version = model_version_create(
        endpoint=endpoint,
        model_name=checkpoint_id if lora and on_vllm else path,
        kind=ModelVersion.Kind.LORA if lora else ModelVersion.Kind.CHECKPOINT,
        label=label,
        notes=notes,
        weights_path=path,
        status=ModelVersion.Status.PENDING,
    )
    return version_make_sampleable(version=version)


def version_make_sampleable(*, version: ModelVersion) -> ModelVersion:
    """Get ``version`` served by its endpoint's kind of server; its status says how far it got.

    - `transformers serve` loads any checkpoint directory a request names: ready at once.
    - vLLM, LoRA adapter: loaded at runtime on the running server (load_version task).
    - vLLM, full checkpoint: a new `vllm serve` process on a GPU worker (serve_checkpoint task,
      gpu queue); the old server keeps serving until the new one answers.
    - anything else: ready once the server lists it in /v1/models (load_version task).
    """
    from .tasks import load_version, serve_checkpoint

    endpoint = version.endpoint
    if endpoint.kind == ModelEndpoint.Kind.TRANSFORMERS_SERVE:
        return _set_status(version, ModelVersion.Status.READY, "loaded by the server on demand")
    lora = version.kind == ModelVersion.Kind.LORA
    new_weights = version.kind != ModelVersion.Kind.BASE and bool(version.weights_path)
    if endpoint.kind == ModelEndpoint.Kind.VLLM and new_weights:
        if lora and not endpoint.supports_lora:
            return _set_status(
                version,
                ModelVersion.Status.FAILED,
                f"a LoRA adapter, but endpoint {endpoint.name!r} does not load adapters at "
                "runtime (turn on supports_lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING)",
            )
        if not lora:
            _set_status(version, ModelVersion.Status.PENDING, "starting a vLLM server for it")
            # A new attempt (first, or an admin's retry): the next serve message may claim it.
            ModelVersion.objects.filter(pk=version.pk).update(serve_claimed_at=None)
            transaction.on_commit(lambda: serve_checkpoint.delay(version.pk))
            return version
        detail = "loading the LoRA adapter on the server"
    else:
        detail = "waiting for the server to list it"
    _set_status(version, ModelVersion.Status.PENDING, detail)
    transaction.on_commit(lambda: load_version.delay(version.pk))
    return version


def version_load(*, version_id: int) -> ModelVersion:
    """Load a pending version on its (running) server and check that /v1/models lists it.

    Ready or failed afterwards; ModelServerUnavailable when the server did not answer (the
    task retries). A version no longer pending (a redelivered message) is left as it is.
    """
    version = ModelVersion.objects.select_related("endpoint").get(pk=version_id)
    if version.status != ModelVersion.Status.PENDING:
        return version
    endpoint = version.endpoint
    try:
        if version.kind == ModelVersion.Kind.LORA and endpoint.kind == ModelEndpoint.Kind.VLLM:
            _lora_load(version)
        listed = _listed_models(endpoint)
    except VersionLoadFailed as exc:
        return _set_status(version, ModelVersion.Status.FAILED, str(exc), only_if_pending=True)
    if version.model_name not in listed:
        return _set_status(
            version,
            ModelVersion.Status.FAILED,
            f"the server at {endpoint.base_url} does not list {version.model_name!r} in /v1/models",
            only_if_pending=True,
        )
    return _set_status(
        version, ModelVersion.Status.READY, "listed by the server", only_if_pending=True
    )


def version_load_gave_up(*, version_id: int, reason: str) -> None:
    """The server stayed unreachable through every retry: the version failed to load."""
    version = ModelVersion.objects.get(pk=version_id)
    _set_status(version, ModelVersion.Status.FAILED, reason, only_if_pending=True)


def _lora_load(version: ModelVersion) -> None:
    """POST /v1/load_lora_adapter {lora_name, lora_path}, as vLLM documents it.

    vLLM answers 200 with a plain-text "Success: ..." line, 400 when the name is already
    loaded (fine: the model list decides), 404 with an error object when there is no adapter
    at the path, and a bare 404 when it runs without VLLM_ALLOW_RUNTIME_LORA_UPDATING (the
    route does not exist then).
    """
    endpoint = version.endpoint
    url = f"{endpoint.base_url.rstrip('/')}/load_lora_adapter"
    body = {"lora_name": version.model_name, "lora_path": version.weights_path}
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    try:
        with httpx.Client(timeout=LOAD_TIMEOUT, follow_redirects=False) as client:
            reply = client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ModelServerUnavailable(f"model server at {endpoint.base_url} is unreachable") from exc
    code = reply.status_code
    if code == 200:
        return
    error = _error_object(reply)
    if code == 400 and "already been loaded" in str(error.get("message", "")):
        return
    if code == 404 and "detail" in error:
        raise VersionLoadFailed(
            "the server does not load LoRA adapters at runtime: start vLLM with "
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
        )
    if code == 404:
        raise VersionLoadFailed(f"the server found no LoRA adapter at {version.weights_path}")
    if code == 429 or code >= 500:
        raise ModelServerUnavailable(
            f"model server at {endpoint.base_url} is unavailable (HTTP {code})", status_code=code
        )
    raise VersionLoadFailed(
        f"the server could not load the LoRA adapter at {version.weights_path} (HTTP {code})"
    )


def _error_object(reply: httpx.Response) -> dict:
    """vLLM's error body: {"error": {...}} (recent), {"object": "error", ...} or {"detail": ...}."""
    try:
        body = reply.json()
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    inner = body.get("error")
    return inner if isinstance(inner, dict) else body


def _listed_models(endpoint: ModelEndpoint) -> list[str]:
    ok, detail, listed = _probe_models(endpoint.base_url, endpoint.api_key)
    if not ok or listed is None:
        raise ModelServerUnavailable(f"model server at {endpoint.base_url}: {detail}")
    return listed


def _reload_forgotten_adapters(endpoint: ModelEndpoint, listed: list[str]) -> None:
    if not endpoint.supports_lora:
        return
    forgotten = endpoint.versions.filter(
        kind=ModelVersion.Kind.LORA, status=ModelVersion.Status.READY, enabled=True
    ).exclude(model_name__in=listed)
    for version in forgotten:
        try:
            _lora_load(version)
        except VersionLoadFailed as exc:
            _set_status(version, ModelVersion.Status.FAILED, str(exc))
        except ModelServerUnavailable:
            pass  # the next health round tries again


def _set_status(
    version: ModelVersion, status: str, detail: str, *, only_if_pending: bool = False
) -> ModelVersion:
    """Record the version's status; with ``only_if_pending`` only a pending version moves."""
    rows = ModelVersion.objects.filter(pk=version.pk)
    if only_if_pending:
        rows = rows.filter(status=ModelVersion.Status.PENDING)
    if rows.update(status=status, status_detail=detail[:300]):
        version.status, version.status_detail = status, detail[:300]
        if status == ModelVersion.Status.READY:
            announce_version_ready(version.pk)
    else:
        version.refresh_from_db()
    return version


# --- blue/green: a new vLLM server for a full checkpoint ------------------------------------


def checkpoint_serve(*, version_id: int) -> ModelVersion:
    """Start `vllm serve` on this (GPU) host for a pending full checkpoint and switch to it.

    The version's current endpoint keeps serving everything else while the new server loads;
    once the new one answers /health and lists the checkpoint in /v1/models, it is registered
    as an endpoint and the version moves onto it, ready. Older servers Arbiter started here
    beyond VLLM_MAX_STARTED_SERVERS are then stopped and their endpoints disabled.
    """
    if not _serve_claim(version_id):
        # A redelivered message: served, given up, or another worker is starting it now.
        return ModelVersion.objects.select_related("endpoint").get(pk=version_id)
    version = ModelVersion.objects.select_related("endpoint").get(pk=version_id)
    origin = version.endpoint
    host = socket.gethostname()
    taken = {
        urlsplit(url).port
        # Retired servers (disabled endpoints) were stopped: their ports are free again.
        for url in ModelEndpoint.objects.filter(process_host=host, enabled=True).values_list(
            "base_url", flat=True
        )
    }
    try:
        port = vllm_server.free_port(
            vllm_server.port_range(settings.VLLM_SERVE_PORTS),
            settings.VLLM_SERVE_BIND,
            {p for p in taken if p},
        )
    except (RuntimeError, ValueError) as exc:
        return _set_status(version, ModelVersion.Status.FAILED, str(exc), only_if_pending=True)
    command = vllm_server.vllm_serve_command(
        version.weights_path,
        port=port,
        host=settings.VLLM_SERVE_BIND,
        served_model_name=version.model_name,
        enable_lora=origin.supports_lora,
        executable=settings.VLLM_EXECUTABLE,
        extra_args=shlex.split(settings.VLLM_SERVE_EXTRA_ARGS),
    )
    env = vllm_server.vllm_serve_env(
        os.environ, enable_lora=origin.supports_lora, api_key=origin.api_key
    )
    log_path = Path(settings.VAR_DIR) / "vllm" / f"version-{version.pk}-port-{port}.log"
    starting = f"vLLM starting on {host}:{port} (log: {log_path})"
    _set_status(version, ModelVersion.Status.PENDING, starting, only_if_pending=True)
    try:
        process = vllm_server.start_server(command, env, log_path)
    except OSError as exc:
        reason = f"could not start {settings.VLLM_EXECUTABLE!r}: {exc.strerror or exc}"
        return _set_status(version, ModelVersion.Status.FAILED, reason, only_if_pending=True)
    local = "127.0.0.1" if settings.VLLM_SERVE_BIND in ("0.0.0.0", "") else settings.VLLM_SERVE_BIND
    try:
        vllm_server.wait_until_serving(
            f"http://{local}:{port}/v1",
            version.model_name,
            process,
            timeout=settings.VLLM_SERVE_STARTUP_TIMEOUT,
            api_key=origin.api_key,
        )
    except (RuntimeError, TimeoutError) as exc:
        vllm_server.stop_server(process.pid, port)
        reason = f"{exc} (log: {log_path})"
        return _set_status(version, ModelVersion.Status.FAILED, reason, only_if_pending=True)
    served = _switch_to(version, origin, process.pid, host, port)
    if served is None:  # the version moved on meanwhile (an admin retried it): not needed
        vllm_server.stop_server(process.pid, port)
    else:
        _retire_started_servers(host, keep=settings.VLLM_MAX_STARTED_SERVERS)
    version.refresh_from_db()
    return version


def _serve_claim(version_id: int) -> bool:
    """Claim a pending version for this worker; False if it is not pending or claimed already.

    The broker redelivers a message whose worker is still busy after its visibility timeout
    (vLLM can take minutes to load), so the task itself must not start a server twice. A claim
    older than the startup timeout (plus a minute) is its worker's, dead before it finished:
    it may be taken again.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.VLLM_SERVE_STARTUP_TIMEOUT + 60)
    unclaimed = Q(serve_claimed_at__isnull=True) | Q(serve_claimed_at__lt=stale)
    pending = ModelVersion.objects.filter(
        unclaimed, pk=version_id, status=ModelVersion.Status.PENDING
    )
    return pending.update(serve_claimed_at=now) == 1


def _switch_to(
    version: ModelVersion, origin: ModelEndpoint, pid: int, host: str, port: int
) -> ModelEndpoint | None:
    base_url = f"http://{settings.VLLM_SERVE_HOST}:{port}/v1"
    with transaction.atomic():
        served = model_endpoint_create(
            name=f"{origin.name[:60]} → v{version.pk} ({port})",
            base_url=base_url,
            api_key=origin.api_key,
            kind=ModelEndpoint.Kind.VLLM,
            supports_n=origin.supports_n,
            supports_logprobs=origin.supports_logprobs,
            supports_lora=origin.supports_lora,
            max_concurrency=origin.max_concurrency,
            default_sampling_params=origin.default_sampling_params,
        )
        served.process_pid, served.process_host = pid, host
        served.last_health_ok, served.last_health_at = True, timezone.now()
        served.last_health_detail = "OK: started by Arbiter for a new checkpoint"
        served.save()
        # A version's endpoint is fixed once it has been sampled; a pending one never was.
        moved = ModelVersion.objects.filter(
            pk=version.pk, status=ModelVersion.Status.PENDING
        ).update(
            endpoint=served,
            status=ModelVersion.Status.READY,
            status_detail=f"served by a new vLLM server at {base_url}",
        )
        if not moved:
            transaction.set_rollback(True)
            return None
        announce_version_ready(version.pk)
    return served


def _retire_started_servers(host: str, *, keep: int) -> list[ModelEndpoint]:
    """Stop the servers Arbiter started on ``host`` beyond the newest ``keep``."""
    started = ModelEndpoint.objects.filter(
        process_pid__isnull=False, process_host=host, enabled=True
    ).order_by("-created_at", "-pk")
    retired = list(started[max(1, keep) :])
    for endpoint in retired:
        port = urlsplit(endpoint.base_url).port
        if endpoint.process_pid and port:
            vllm_server.stop_server(endpoint.process_pid, port)
        ModelEndpoint.objects.filter(pk=endpoint.pk).update(
            enabled=False,
            last_health_ok=False,
            last_health_detail="retired: servers of newer checkpoints replaced it",
            last_health_at=timezone.now(),
        )
    return retired
