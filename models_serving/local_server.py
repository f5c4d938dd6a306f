"""Run the embedded model server: transformers' own OpenAI-compatible `transformers serve`.

Used by tests and by seeding commands when no vLLM server is configured. No Django imports.

The server is pinned to one model (its FORCE_MODEL argument), preloaded before it starts
listening, so the first answer to a health check means the model is ready. Requests must name
the model with exactly the string the server was started with, here ``str(model_dir)``, or the
server answers HTTP 400 ("Server is pinned to ..."): see ``served_model_name``.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 10.0


def served_model_name(model_dir: Path) -> str:
    """The ``model`` field chat-completion requests must carry for a server on ``model_dir``."""
    return str(model_dir)


def local_server_command(
    model_dir: Path, port: int, host: str = "127.0.0.1", *, pinned: bool = True
) -> list[str]:
    """The argv that serves ``model_dir`` on CPU at ``http://{host}:{port}/v1``.

    Requests must send ``model=served_model_name(model_dir)``. `transformers serve` honours
    ``max_tokens``, ``temperature`` (0 means greedy), ``top_p`` and ``stop`` (but keeps the stop
    string in the content), and reports ``usage`` and ``finish_reason`` ("stop" or "length").
    ``seed`` reseeds torch's global RNG, so it reproduces a sample only when requests do not
    overlap. ``n`` (always one choice) and ``logprobs`` are ignored with only a log warning.

    Unpinned, the server loads whatever local model directory a request names (and unloads
    idle ones): that is how checkpoints registered by training jobs become sampleable on the
    embedded default. An unknown name is then a 500 rather than a 400.
    """
    transformers_cli = Path(sys.executable).with_name("transformers")
    return [
        str(transformers_cli),
        "serve",
        *([served_model_name(model_dir)] if pinned else []),
        "--host",
        host,
        "--port",
        str(port),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--log-level",
        "warning",
    ]


def server_is_healthy(base_url: str, timeout: float = 2.0) -> bool:
    """True when the OpenAI-compatible server at ``base_url`` (ending in ``/v1``) lists models.

    ``GET {base_url}/models`` works for both vLLM and `transformers serve`, unlike ``/health``
    which lives outside ``/v1``.
    """
    try:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}/models", timeout=timeout) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_healthy(
    base_url: str, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``base_url`` until the server answers; stop early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server_is_healthy(base_url):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"model server exited with code {process.returncode} before answering at {base_url}"
            )
        time.sleep(0.25)
    raise TimeoutError(f"model server at {base_url} did not become healthy within {timeout:.0f}s")


@contextmanager
def local_model_server(
    model_dir: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    timeout: float = STARTUP_TIMEOUT,
    pinned: bool = True,
) -> Iterator[str]:
    """Serve ``model_dir`` for the duration of the block and yield its ``/v1`` base URL."""
    base_url = f"http://{host}:{port}/v1"
    if server_is_healthy(base_url):
        # Another server would answer our requests with its own model, or we would fail to bind.
        raise RuntimeError(f"something is already serving at {base_url}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    # The server logs every request; keep that out of the caller's output but at hand for errors.
    with tempfile.TemporaryFile() as log:
        # Own process group, so stopping it also stops any worker it spawned.
        process = subprocess.Popen(
            local_server_command(model_dir, port, host, pinned=pinned),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            try:
                wait_until_healthy(base_url, timeout, process)
            except (RuntimeError, TimeoutError) as exc:
                raise type(exc)(f"{exc}; server log ends with:\n{_tail(log)}") from exc
            yield base_url
        finally:
            stop_process_group(process)


def _tail(log: IO[bytes], size: int = 4000) -> str:
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - size))
    return log.read().decode(errors="replace")


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still alive after ``timeout``."""
    if process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass  # already gone between poll() and here
