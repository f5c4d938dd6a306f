"""Make sure the Postgres and Redis the tests need are up; start them if they are not.

Order of attempts for each service: already listening → the machine's own service
(pg_ctlcluster / redis-server) → a throwaway instance in a temp dir. If none works it
exits non-zero naming what to install; it never lets the tests skip silently.
Run as a script (`python tests/ensure_services.py`) or import `ensure_services()`.
"""

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlparse

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/arbiter"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def _listening(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait(host: str, port: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _listening(host, port):
            return True
        time.sleep(0.3)
    return False


def _run(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _start_postgres(host: str, port: int) -> bool:
    if shutil.which("pg_ctlcluster"):
        for version in (
            sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        ):
            _run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"])
        if _wait(host, port, 10):
            return True
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    if not initdb[-1]:
        return False
    bindir = os.path.dirname(initdb[-1])
    datadir = tempfile.mkdtemp(prefix="arbiter-pg-")
    user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if user:
        shutil.chown(datadir, "postgres")
    ok = _run([*user, f"{bindir}/initdb", "-D", datadir, "-U", "postgres", "--auth=trust"])
    ok = ok and _run(
        [
            *user,
            f"{bindir}/pg_ctl",
            "-D",
            datadir,
            "-l",
            f"{datadir}/log",
            "-o",
            f"-p {port} -k {datadir} -c listen_addresses={host}",
            "start",
        ]
    )
    return ok and _wait(host, port)


def _start_redis(host: str, port: int) -> bool:
    if not shutil.which("redis-server"):
        return False
    workdir = tempfile.mkdtemp(prefix="arbiter-redis-")
    _run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            host,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--logfile",
            os.path.join(workdir, "redis.log"),
        ]
    )
    return _wait(host, port)


def ensure_services() -> list[str]:
    """Returns problems; empty when both services answer."""
    problems = []
    db = urlparse(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    if db.scheme.startswith("postgres"):
        host, port = db.hostname or "127.0.0.1", db.port or 5432
        if not _listening(host, port) and not _start_postgres(host, port):
            problems.append(
                f"PostgreSQL is not reachable at {host}:{port} and could not be started; "
                "install it (Debian/Ubuntu: `sudo apt-get install postgresql`) or set DATABASE_URL."
            )
    redis = urlparse(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))
    host, port = redis.hostname or "127.0.0.1", redis.port or 6379
    if not _listening(host, port) and not _start_redis(host, port):
        problems.append(
            f"Redis is not reachable at {host}:{port} and could not be started; "
            "install it (Debian/Ubuntu: `sudo apt-get install redis-server`) or set REDIS_URL."
        )
    return problems


if __name__ == "__main__":
    found = ensure_services()
    for problem in found:
        print(f"ensure_services: {problem}", file=sys.stderr)
    sys.exit(1 if found else 0)
