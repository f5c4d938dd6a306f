"""config/serve.py: the web server's workers, one listening socket each (SO_REUSEPORT)."""

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT spreading is Linux's")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(port: int, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "config.serve", "--port", str(port), "--log-level", "warning"]
    return subprocess.Popen(
        [*argv, "--no-access-log", *extra],
        cwd=ROOT,
        env={**os.environ, "DJANGO_DEBUG": "false"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextlib.contextmanager
def server(workers: int) -> Iterator[tuple[subprocess.Popen, int]]:
    port = free_port()
    process = serve(port, "--workers", str(workers))
    try:
        wait_until(lambda: len(workers_of(process)) == workers and answers(port), process)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
        process.wait()


def wait_until(condition, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, "the server did not get there in time"
        time.sleep(0.2)


def workers_of(process: subprocess.Popen) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        children = psutil.Process(process.pid).children()
        return [c for c in children if "resource_tracker" not in " ".join(c.cmdline())]
    return []


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            return b" 200 " in get_healthz(sock)
    except OSError:
        return False


def get_healthz(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    reply = b""
    while b'"ok"' not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


def burst_of_connections(port: int, count: int) -> list[socket.socket]:
    """``count`` connections opened at the same moment, each kept alive after one request."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.connect(("127.0.0.1", port))
        socks.append(sock)
    for sock in socks:
        select.select([], [sock], [], 10)
        sock.setblocking(True)
        sock.settimeout(10)
        assert b" 200 " in get_healthz(sock)
    return socks


def connections_per_worker(process: subprocess.Popen, port: int) -> list[int]:
    return [
        sum(c.laddr.port == port and c.status == "ESTABLISHED" for c in worker.net_connections())
        for worker in workers_of(process)
    ]


def listening_sockets(worker: psutil.Process, port: int) -> set[str]:
    """The inodes of the worker's sockets that listen on ``port``."""
    fds = {c.fd for c in worker.net_connections() if c.status == "LISTEN" and c.laddr.port == port}
    return {os.readlink(f"/proc/{worker.pid}/fd/{fd}") for fd in fds}


def test_each_worker_accepts_on_its_own_socket():
    # With one shared socket (uvicorn --workers 2) the worker that woke first for a burst of
    # new connections could take nearly all of it, and keep-alive kept them there (31 of 32
    # live streams on one worker in bench/generation_overhead).
    with server(workers=2) as (process, port):
        first, second = (listening_sockets(w, port) for w in workers_of(process))
    assert len(first) == len(second) == 1
    assert first != second


def test_a_burst_of_connections_is_spread_over_the_workers():
    with server(workers=2) as (process, port):
        socks = burst_of_connections(port, 32)
        try:
            counts = connections_per_worker(process, port)
        finally:
            for sock in socks:
                sock.close()
    assert sum(counts) == 32
    assert min(counts) >= 6, counts  # hashing gives ~16 each; below 6 has odds ~1 in 2,500


def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all():
    with server(workers=2) as (process, port):
        first, second = workers_of(process)
        first.kill()
        wait_until(
            lambda: len(workers_of(process)) == 2 and first not in workers_of(process), process
        )
        assert second in workers_of(process)
        wait_until(lambda: answers(port), process)
        everyone = workers_of(process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not any(worker.is_running() for worker in everyone)


def test_a_port_taken_by_another_program_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = serve(taken.getsockname()[1], "--workers", "2")
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "cannot listen on 127.0.0.1" in output


def test_bad_arguments_are_refused():
    process = serve(free_port(), "--workers", "0")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "--workers must be at least 1" in output
