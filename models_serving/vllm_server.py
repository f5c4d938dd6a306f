"""Start, watch and stop `vllm serve` processes for new full checkpoints. No Django imports.

A checkpoint that is not a LoRA adapter cannot be added to a running vLLM server without its
dev-mode weight endpoints (version-dependent, with open correctness bugs), so Arbiter starts a
new server for it instead and switches over once it answers (blue/green, see
services.checkpoint_serve). The server is started so that what Arbiter records is what it
applies: ``--generation-config vllm`` (otherwise vLLM silently applies the checkpoint's
generation_config.json defaults on top of the request), and never in dev mode.
"""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx

# vLLM turns on /reset_prefix_cache, /sleep, /collective_rpc and friends with this variable.
DEV_MODE_VARIABLES = ("VLLM_SERVER_DEV_MODE",)
POLL_SECONDS = 1.0
PROBE_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


def vllm_serve_command(
    model_path: str,
    *,
    port: int,
    host: str = "127.0.0.1",
    served_model_name: str | None = None,
    enable_lora: bool = False,
    executable: str = "vllm",
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The argv of a vLLM OpenAI-compatible server for ``model_path`` at ``host:port``.

    The API key, if any, goes in the environment (VLLM_API_KEY), never on the command line
    where any local user could read it.
    """
    command = [
        executable,
        "serve",
        model_path,
        # Sampling defaults come from the request alone, not from the checkpoint's
        # generation_config.json: the params Arbiter records are the ones applied.
        "--generation-config",
        "vllm",
        "--host",
        host,
        "--port",
        str(port),
        "--served-model-name",
        served_model_name or model_path,
    ]
    if enable_lora:
        command.append("--enable-lora")
    return [*command, *extra_args]


def vllm_serve_env(
    base: Mapping[str, str], *, enable_lora: bool = False, api_key: str = ""
) -> dict[str, str]:
    """The server's environment: ours minus dev mode, plus runtime LoRA loading if wanted."""
    env = {k: v for k, v in base.items() if k not in DEV_MODE_VARIABLES}
    env.pop("VLLM_API_KEY", None)
    env.pop("VLLM_ALLOW_RUNTIME_LORA_UPDATING", None)
    if enable_lora:
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return env


def port_range(spec: str) -> range:
    """ "8100-8199" (or one port, "8100") as a range of ports."""
    first, _, last = spec.partition("-")
    start, stop = int(first), int(last or first)
    if not (0 < start <= stop < 65536):
        raise ValueError(f"not a port range: {spec!r}")
    return range(start, stop + 1)


def free_port(ports: range, bind: str, taken: frozenset[int] | set[int] = frozenset()) -> int:
    """The first port of ``ports`` that nothing listens on (and no endpoint row claims)."""
    for port in ports:
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((bind, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def start_server(
    command: Sequence[str], env: Mapping[str, str], log_path: Path
) -> subprocess.Popen:
    """Start the server in its own session, so it outlives the task and stops as a group."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(command),
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


@dataclass(frozen=True)
class Probe:
    health_ok: bool
    model_ids: list[str] | None  # None when the model list could not be read


def probe(base_url: str, api_key: str = "") -> Probe:
    """GET {root}/health and {base_url}/models once; connection errors count as not ready."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    health_ok, model_ids = False, None
    with httpx.Client(timeout=PROBE_TIMEOUT, follow_redirects=False, headers=headers) as client:
        try:
            health_ok = client.get(f"{server_root(base_url)}/health").status_code == 200
            reply = client.get(f"{base_url.rstrip('/')}/models")
            if reply.status_code == 200:
                data = reply.json().get("data")
                # The server's JSON, as read: ids are strings in the OpenAI model list.
                model_ids = cast(list[str], [m.get("id") for m in data if isinstance(m, dict)])
        except (httpx.HTTPError, ValueError, AttributeError, TypeError):
            pass
    return Probe(health_ok, model_ids)


def wait_until_serving(
    base_url: str,
    model_name: str,
    process: subprocess.Popen,
    *,
    timeout: float,
    api_key: str = "",
    poll: float = POLL_SECONDS,
) -> None:
    """Until /health answers 200 and /v1/models lists ``model_name``; raise if the process dies."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"vLLM exited with code {process.returncode} before serving")
        state = probe(base_url, api_key)
        if state.health_ok and state.model_ids is not None and model_name in state.model_ids:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"vLLM did not serve the checkpoint within {timeout:.0f} s")
        time.sleep(poll)


def server_root(base_url: str) -> str:
    """http://host:8000/v1 → http://host:8000 (where vLLM answers /health)."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def stop_server(pid: int, port: int, *, timeout: float = 30.0) -> bool:
    """SIGTERM (then SIGKILL) the server's process group if ``pid`` is still our server.

    The command line must still be a server on ``port``: after a restart the pid may belong to
    something else. False when there was nothing of ours to stop.
    """
    if not _is_server(pid, port):
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    _signal_group(pid, signal.SIGKILL)
    return True


def _is_server(pid: int, port: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in argv and any(
        argv[i] == b"--port" and argv[i + 1] == str(port).encode() for i in range(len(argv) - 1)
    )


def _alive(pid: int) -> bool:
    try:
        # A zombie (exited, not yet reaped by the worker that started it) is not alive.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    # Reap it if this process started it, so it does not linger as a zombie.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
