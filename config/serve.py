"""The web server: ``python -m config.serve [--host H] [--port P] [--workers N]``.

Runs ``config.asgi:application`` under uvicorn in N worker processes, each accepting on its
own listening socket bound with ``SO_REUSEPORT``, so the kernel spreads new connections over
the workers by a hash of each connection's addresses.

Why not ``uvicorn --workers N``: its workers share one listening socket, and the worker that
wakes first for a burst of new connections accepts every one of them (uvloop accepts until
the queue is empty); keep-alive then pins those clients to that process. In
bench/generation_overhead 31 of 32 live streams ended up on one of two workers, which ran
at full load while the other idled. With one socket per worker the 32 split about evenly.

The parent only supervises: a worker that dies is started again (a worker that keeps dying
within seconds of starting, e.g. on a settings error, stops the server with status 1), and
SIGTERM or SIGINT stops the workers gracefully. With one worker, or where the platform has
no ``SO_REUSEPORT``, this is plain ``uvicorn.run``.
"""

import argparse
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess

import uvicorn

APP = "config.asgi:application"
BACKLOG = 2048  # uvicorn's default
# A worker that exits this soon after it was started failed to start, rather than crashed.
STARTUP_GRACE_S = 20.0
STARTUP_FAILURES_ALLOWED = 3
GRACEFUL_STOP_S = 20.0
SAME_SIGNAL_WAIT_S = 1.0

log = logging.getLogger("arbiter.serve")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m config.serve", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_WORKERS", "1")),
        help="worker processes (default: $WEB_WORKERS, else 1); about one per core",
    )
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    return args


def uvicorn_options(args: argparse.Namespace) -> dict:
    return {"log_level": args.log_level, "access_log": args.access_log}


def reuseport_socket(host: str, port: int, *, listen: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def run_worker(host: str, port: int, options: dict) -> None:
    """One worker process: its own socket on the shared port, and a uvicorn server on it."""
    sock = reuseport_socket(host, port, listen=True)
    uvicorn.Server(uvicorn.Config(APP, host=host, port=port, **options)).run(sockets=[sock])


class Supervisor:
    def __init__(self, host: str, port: int, workers: int, options: dict) -> None:
        self.host, self.port, self.size, self.options = host, port, workers, options
        self.context = multiprocessing.get_context("spawn")
        self.stopping = threading.Event()
        self.workers: list[BaseProcess] = []
        self.started_at: list[float] = []
        self.quick_failures = 0

    def start_worker(self, index: int) -> None:
        process = self.context.Process(
            target=run_worker,
            args=(self.host, self.port, self.options),
            name=f"arbiter-web-{index}",
        )
        process.start()
        if index < len(self.workers):
            self.workers[index], self.started_at[index] = process, time.monotonic()
        else:
            self.workers.append(process)
            self.started_at.append(time.monotonic())

    def run(self) -> int:
        for index in range(self.size):
            self.start_worker(index)
        status = 0
        while not self.stopping.wait(0.5):
            status = self.replace_dead_workers()
            if status:
                break
        self.stop_workers()
        return status

    def replace_dead_workers(self) -> int:
        for index, process in enumerate(self.workers):
            if process.is_alive() or self.stopping.is_set():
                continue
            lived = time.monotonic() - self.started_at[index]
            if lived < STARTUP_GRACE_S:
                self.quick_failures += 1
                if self.quick_failures >= STARTUP_FAILURES_ALLOWED:
                    log.error(
                        "web workers keep exiting right after they start (last status %s); "
                        "stopping",
                        process.exitcode,
                    )
                    return 1
            else:
                self.quick_failures = 0
            log.warning(
                "web worker %s (pid %s) exited with status %s after %.0f s; starting another",
                index,
                process.pid,
                process.exitcode,
                lived,
            )
            self.start_worker(index)
        return 0

    def stop_workers(self) -> None:
        # Ctrl-C in a terminal reaches the whole process group: those workers are stopping
        # already, and a second signal would make uvicorn skip its graceful shutdown.
        deadline = time.monotonic() + SAME_SIGNAL_WAIT_S
        for process in self.workers:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self.workers:
            if process.is_alive() and process.pid:
                os.kill(process.pid, signal.SIGTERM)  # uvicorn's graceful shutdown
        deadline = time.monotonic() + GRACEFUL_STOP_S
        for process in self.workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    if args.workers == 1 or not hasattr(socket, "SO_REUSEPORT") or sys.platform != "linux":
        uvicorn.run(
            APP, host=args.host, port=args.port, workers=args.workers, **uvicorn_options(args)
        )
        return 0
    try:
        # Held (bound, never listening) for the server's life: a port taken by another
        # program fails here, once, and port 0 becomes one port that every worker shares.
        reservation = reuseport_socket(args.host, args.port, listen=False)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc.strerror)
        return 1
    port = reservation.getsockname()[1]
    supervisor = Supervisor(args.host, port, args.workers, uvicorn_options(args))

    def stop(signum: int, frame: object) -> None:
        supervisor.stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    log.info(
        "Arbiter web server on http://%s:%s: %s workers, one listening socket each",
        args.host,
        port,
        args.workers,
    )
    with reservation:
        return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
