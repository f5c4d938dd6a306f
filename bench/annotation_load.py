"""How fast annotators can label through the real HTTP API, with the production server setup.

What is measured: closed-loop simulated annotators (each with its own API token and its own
keep-alive connection, like a browser tab; they join 5 ms apart) at concurrency C = 1, 8, 32
against the web server as docker-compose's `web` runs it (`python -m config.serve`: uvicorn
serving `config.asgi:application`, `WEB_WORKERS` = 2 workers with a listening socket each:
the machine has 2 cores; DEBUG off) on Postgres. Two client modes:

- submit-and-next: `POST .../{id}/submit-and-next/`, one round trip per annotation (what the
  annotation UI does; the headline figures), and
- two-step: `GET /api/v1/assignments/next/` then `POST .../{id}/judgment/`.

Little's law bounds the headline latency: with C annotators in a closed loop without think
time, the mean time per call is C / throughput (32 / 230 per s = 139 ms).

Per level it reports annotations/s (201 responses per second), p50/p95/p99 latency per
request kind, errors by status, and where the 2 cores went (server workers, Postgres, this
load generator — which shares the machine, so its CPU is taken from the server). After each
level the database is checked: no task may hold more judgments than its overlap, no
annotator may judge a task twice (`duplicates`), and every judgment acknowledged with 201
must be stored (`lost`). Then judgments and assignments are truncated so every level starts
from the same queue of tasks and levels are comparable.

Why: annotator throughput and the latency of loading the next pair bound how much preference
data a team collects per hour; a reference platform (Label Studio) did 9-11 annotations/s on
this machine with next-task p99 0.61 s at C=8. Our target is >= 230 annotations/s at C=32
with next-task p99 <= 100 ms.

Run: `.venv/bin/python bench/annotation_load.py [--quick]`. It drops and recreates the
`arbiter_bench` database on 127.0.0.1:5432 (user postgres). The full run takes about 6
minutes (20,000 tasks, 45 s per level, both modes at every level); `--quick` under a minute
(3,000 tasks, 6 s per level, two-step at C=8 and 32 only). `BENCH_SERVER_CMD` (with a
`{port}` placeholder) benchmarks another server command instead. The last line printed is one
JSON object of figures.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BENCH_DB = "arbiter_bench"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DSN = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}"
SERVER_WORKERS = 2
ANNOTATORS = 64
LEVELS = (1, 8, 32)
API = "/api/v1/assignments"
NEXT_STATUS, SUBMIT_STATUS = 200, 201


@dataclass(frozen=True)
class Plan:
    quick: bool
    tasks: int
    seconds: float
    warmup_seconds: float
    runs: list[tuple[int, str]]  # (concurrency, mode) in the order they run


def plan_for(quick: bool) -> Plan:
    if quick:
        runs = [(c, "submit_and_next") for c in LEVELS] + [(8, "two_step"), (32, "two_step")]
        return Plan(quick=True, tasks=3_000, seconds=6.0, warmup_seconds=1.0, runs=runs)
    runs = [(c, mode) for c in LEVELS for mode in ("submit_and_next", "two_step")]
    return Plan(quick=False, tasks=20_000, seconds=45.0, warmup_seconds=3.0, runs=runs)


# --- database -------------------------------------------------------------------------------


def bench_env(var_dir: str) -> dict[str, str]:
    """The production settings, pointed at the bench database and a throwaway var dir."""
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "ARBITER_VAR_DIR": var_dir,
        "DJANGO_DEBUG": "false",
        # Set as in production; generating it into an empty var dir races between 2 workers.
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    }


def db_recreate() -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def db_migrate(env: dict[str, str]) -> None:
    cmd = [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


@dataclass(frozen=True)
class Tables:
    """Table names as the models define them (checked with plain SQL, outside Django)."""

    judgment: str
    assignment: str
    task: str


def db_seed(env: dict[str, str], tasks: int) -> tuple[list[str], Tables]:
    script = ROOT / "bench" / "annotation_load_seed.py"
    cmd = [PYTHON, str(script), "--tasks", str(tasks), "--annotators", str(ANNOTATORS)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    seeded = json.loads(out.stdout.strip().splitlines()[-1])
    return seeded["tokens"], Tables(**seeded["tables"])


def db_vacuum() -> None:
    with psycopg.connect(BENCH_DSN, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def db_reset_queue(t: Tables) -> None:
    """Forget all judgments and assignments so the next level sees the same queue.

    Statistics are taken while the tables are full and not after they are emptied: a
    production database's autovacuum has analysed thousands of assignments, while statistics
    of an empty table make Postgres plan sequential scans (and per-annotator index scans for
    the claim's NOT EXISTS probe) that grow slower with every judgment of the level.
    """
    with psycopg.connect(BENCH_DSN, autocommit=True) as conn:
        conn.execute(f"ANALYZE {t.judgment}, {t.assignment}")
        conn.execute(f"TRUNCATE {t.judgment}, {t.assignment}")
        conn.execute(f"UPDATE {t.task} SET slots_taken = 0 WHERE slots_taken <> 0")
        conn.execute(f"VACUUM ANALYZE {t.task}")


DB_COUNTERS = ("sessions", "xact_commit", "xact_rollback", "tup_returned", "tup_fetched")


def db_counters() -> Counter[str]:
    """Cumulative Postgres statistics of the bench database (sessions = connections opened)."""
    with psycopg.connect(BENCH_DSN, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT {', '.join(DB_COUNTERS)} FROM pg_stat_database WHERE datname = %s",
            [BENCH_DB],
        ).fetchone()
    return Counter(dict(zip(DB_COUNTERS, row, strict=True)))


@dataclass(frozen=True)
class Integrity:
    duplicates: int  # tasks over their overlap + (task, annotator) repeats
    lost: int  # 201 responses whose judgment is not in the database
    stored: int  # judgments in the database


DUPLICATES_SQL = """
SELECT
  (SELECT count(*) FROM (
     SELECT 1 FROM {judgment} j JOIN {task} t ON t.id = j.task_id
     GROUP BY j.task_id, t.overlap HAVING count(*) > t.overlap) AS over_overlap)
+ (SELECT count(*) FROM (
     SELECT 1 FROM {judgment} GROUP BY task_id, annotator_id HAVING count(*) > 1) AS repeats)
"""


def db_check(t: Tables, acknowledged_ids: list[int]) -> Integrity:
    acknowledged = sorted(set(acknowledged_ids))
    with psycopg.connect(BENCH_DSN) as conn:
        duplicates = scalar(conn, DUPLICATES_SQL.format(judgment=t.judgment, task=t.task))
        found = scalar(conn, f"SELECT count(*) FROM {t.judgment} WHERE id = ANY(%s)", acknowledged)
        stored = scalar(conn, f"SELECT count(*) FROM {t.judgment}")
    return Integrity(duplicates=duplicates, lost=len(acknowledged) - found, stored=stored)


def scalar(conn: psycopg.Connection, sql: str, *params: object) -> int:
    return conn.execute(sql, list(params)).fetchone()[0]


# --- server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(port: int) -> list[str]:
    if os.environ.get("BENCH_SERVER_CMD"):
        return shlex.split(os.environ["BENCH_SERVER_CMD"].format(port=port))
    return [
        PYTHON,
        "-m",
        "config.serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(SERVER_WORKERS),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


@contextlib.contextmanager
def server_running(env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    """Start the web server in its own process group; on any exit, stop the whole group."""
    proc = subprocess.Popen(server_command(port), cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield proc
    finally:
        stop_process_group(proc)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def stop_process_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --- where the CPU goes (Linux /proc) -------------------------------------------------------


def cpu_seconds(server_pgid: int) -> Counter[str]:
    """CPU seconds used so far by the server's process group, Postgres, this process, all."""
    tick = os.sysconf("SC_CLK_TCK")
    used: Counter[str] = Counter()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            comm = text[text.index("(") + 1 : text.rindex(")")]
            rest = text[text.rindex(")") + 2 :].split()
            # utime, stime and the reaped children's cutime, cstime: Postgres backends that
            # exit (one per request without a pool) are counted in the postmaster's cutime.
            seconds = sum(int(v) for v in rest[11:15]) / tick
            if int(rest[2]) == server_pgid:
                used["server"] += seconds
            elif comm == "postgres":
                used["postgres"] += seconds
            elif int(stat.parent.name) == os.getpid():
                used["client"] += seconds
    used["total"] = machine_busy_seconds()
    used["other"] = used["total"] - used["server"] - used["postgres"] - used["client"]
    return used


def busy_cores_now(seconds: float = 2.0) -> float:
    """How many cores something else keeps busy; other work on the machine skews the figures."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds


def machine_busy_seconds() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# --- load -----------------------------------------------------------------------------------


@dataclass
class LevelStats:
    latencies: dict[str, list[float]] = field(default_factory=dict)  # kind -> seconds
    errors: Counter[str] = field(default_factory=Counter)
    judgment_ids: list[int] = field(default_factory=list)
    empty_queue: int = 0


class HttpConnection:
    """One annotator's keep-alive HTTP/1.1 connection, as a browser tab holds one.

    Hand-rolled because the load generator shares the 2 cores with the server: httpx spent
    about 2 ms of CPU per request here, which the server's figures then paid for.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: dict | None = None
    ) -> tuple[int, dict | None]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(body).encode() if body is not None else b""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        try:
            return await self._response()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            await self.close()
            raise

    async def _response(self) -> tuple[int, dict | None]:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields = dict(line.split(":", 1) for line in header_lines if ":" in line)
        fields = {name.strip().lower(): value.strip() for name, value in fields.items()}
        if fields.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                data += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            data = await self.reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        is_json = fields.get("content-type", "").startswith("application/json")
        return status, json.loads(data) if is_json and data else None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def call(
    conn: HttpConnection,
    stats: LevelStats,
    kind: str,
    expected: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict | None = None,
) -> dict | None:
    """Send one request and time it; return the JSON body, or None (counted as an error)."""
    started = time.perf_counter()
    try:
        status, data = await conn.request(method, path, headers, body)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        stats.errors[f"{kind}:{type(exc).__name__}"] += 1
        return None
    stats.latencies.setdefault(kind, []).append(time.perf_counter() - started)
    if status != expected:
        stats.errors[f"{kind}:{status}"] += 1
        return None
    return data


def answer(rng: random.Random) -> dict:
    return {"choice": rng.randint(1, 5), "idempotency_key": uuid.uuid4().hex, "time_spent_ms": 0}


async def claim_next(conn: HttpConnection, stats: LevelStats, token: str) -> dict | None:
    body = await call(conn, stats, "next", NEXT_STATUS, "GET", f"{API}/next/", auth(token))
    if body is not None and body["assignment"] is None:
        stats.empty_queue += 1
        await asyncio.sleep(0.1)  # queue drained: do not spin
    return body["assignment"] if body else None


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


async def annotate_two_step(
    conn: HttpConnection, stats: LevelStats, token: str, deadline: float
) -> None:
    rng = random.Random(token)
    while time.perf_counter() < deadline:
        assignment = await claim_next(conn, stats, token)
        if assignment is None:
            continue
        path = f"{API}/{assignment['id']}/judgment/"
        judgment = await call(
            conn, stats, "submit", SUBMIT_STATUS, "POST", path, auth(token), answer(rng)
        )
        if judgment is not None:
            stats.judgment_ids.append(judgment["id"])


async def annotate_submit_and_next(
    conn: HttpConnection, stats: LevelStats, token: str, deadline: float
) -> None:
    rng = random.Random(token)
    assignment = None
    while time.perf_counter() < deadline:
        if assignment is None:
            assignment = await claim_next(conn, stats, token)
            continue
        path = f"{API}/{assignment['id']}/submit-and-next/"
        body = await call(
            conn, stats, "submit_and_next", SUBMIT_STATUS, "POST", path, auth(token), answer(rng)
        )
        assignment = body["next"] if body else None
        if body is not None:
            stats.judgment_ids.append(body["judgment"]["id"])


ANNOTATE = {"two_step": annotate_two_step, "submit_and_next": annotate_submit_and_next}
# Annotators start (and open their connection) this far apart, as people do, not all in the
# same millisecond: a burst of 32 connects lands on whichever web process wakes first (its
# event loop accepts every pending connection at once), and keep-alive pins them there.
JOIN_INTERVAL = 0.005


async def _joining(delay: float, annotator) -> None:
    await asyncio.sleep(delay)
    await annotator


async def run_level(
    base_url: str, tokens: list[str], concurrency: int, seconds: float, mode: str
) -> tuple[LevelStats, float]:
    """Run `concurrency` annotators for `seconds`; return their stats and the elapsed time."""
    stats = LevelStats()
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    conns = [HttpConnection(host, int(port)) for _ in range(concurrency)]
    started = time.perf_counter()
    deadline = started + seconds
    annotators = [
        _joining(index * JOIN_INTERVAL, ANNOTATE[mode](conn, stats, token, deadline))
        for index, (conn, token) in enumerate(zip(conns, tokens[:concurrency], strict=True))
    ]
    await asyncio.gather(*annotators)
    elapsed = time.perf_counter() - started
    for conn in conns:
        await conn.close()
    return stats, elapsed


# --- report ---------------------------------------------------------------------------------


def percentile_ms(latencies: list[float], q: float) -> float | None:
    if not latencies:
        return None
    ranked = sorted(latencies)
    return round(1000 * ranked[min(len(ranked) - 1, int(q * len(ranked)))], 1)


def level_figures(
    stats: LevelStats, elapsed: float, cpu: Counter[str], db: Counter[str], integrity: Integrity
) -> dict:
    annotations = len(stats.judgment_ids)
    requests = sum(len(v) for v in stats.latencies.values())
    figures: dict = {
        "annotations_per_s": round(annotations / elapsed, 1),
        "annotations": annotations,
        "requests": requests,
        "errors": dict(stats.errors),
        "empty_queue": stats.empty_queue,
        "duplicates": integrity.duplicates,
        "lost": integrity.lost,
        "cpu_cores": {k: round(v / elapsed, 2) for k, v in cpu.items()},
        "db_sessions_per_request": round(db["sessions"] / max(requests, 1), 2),
        "db_xacts_per_annotation": round(
            (db["xact_commit"] + db["xact_rollback"]) / max(annotations, 1), 1
        ),
        "db_rows_read_per_annotation": round(
            (db["tup_returned"] + db["tup_fetched"]) / max(annotations, 1)
        ),
    }
    for kind, latencies in sorted(stats.latencies.items()):
        for q in (50, 95, 99):
            figures[f"{kind}_p{q}_ms"] = percentile_ms(latencies, q / 100)
    return figures


def describe(concurrency: int, mode: str, figures: dict) -> str:
    kinds = ("next", "submit", "submit_and_next")
    latency = " | ".join(
        f"{k} p50/p95/p99 {figures[f'{k}_p50_ms']}/{figures[f'{k}_p95_ms']}/"
        f"{figures[f'{k}_p99_ms']} ms"
        for k in kinds
        if f"{k}_p50_ms" in figures
    )
    cores = " ".join(f"{k} {v}" for k, v in figures["cpu_cores"].items())
    return (
        f"C={concurrency:<2} {mode:<15} {figures['annotations_per_s']:7.1f} annotations/s | "
        f"{latency} | errors {figures['errors'] or 0} | empty {figures['empty_queue']} | "
        f"duplicates {figures['duplicates']} lost {figures['lost']}\n"
        f"     cores used: {cores} | per annotation: "
        f"{figures['db_xacts_per_annotation']} db transactions, "
        f"{figures['db_rows_read_per_annotation']} rows read | "
        f"{figures['db_sessions_per_request']} db connections per request"
    )


def summary(
    plan: Plan,
    every_level: list[dict],
    results: dict[tuple[int, str], dict],
    setup_s: float,
    busy_before: float,
) -> dict:
    """Headline keys (``c32_annotations_per_s``, ``c32_next_p99_ms``) are the UI's loop,
    submit-and-next, where the call that brings the next task is the submit-and-next call;
    the two-step loop's figures carry a ``two_step_`` infix."""
    out: dict = {}
    for (concurrency, mode), figures in results.items():
        prefix = f"c{concurrency}_" if mode == "submit_and_next" else f"c{concurrency}_{mode}_"
        out[f"{prefix}annotations_per_s"] = figures["annotations_per_s"]
        next_kind = "submit_and_next" if mode == "submit_and_next" else "next"
        for q in (50, 95, 99):
            out[f"{prefix}next_p{q}_ms"] = figures.get(f"{next_kind}_p{q}_ms")
            if mode == "two_step":
                out[f"{prefix}submit_p{q}_ms"] = figures.get(f"submit_p{q}_ms")
        out[f"{prefix}errors"] = sum(figures["errors"].values())
        out[f"{prefix}server_cores"] = figures["cpu_cores"].get("server")
        out[f"{prefix}client_cores"] = figures["cpu_cores"].get("client")
        out[f"{prefix}other_cores"] = figures["cpu_cores"].get("other")
    out.update(
        duplicates=sum(f["duplicates"] for f in every_level),  # the warm-up is checked too
        lost=sum(f["lost"] for f in every_level),
        tasks=plan.tasks,
        seconds_per_level=plan.seconds,
        server_workers=SERVER_WORKERS,
        server=" ".join(Path(part).name for part in server_command(0)[:3]) + ", DEBUG off",
        cpus=os.cpu_count(),
        setup_s=round(setup_s, 1),
        busy_cores_before=round(busy_before, 2),
        quick=plan.quick,
    )
    return out


# --- main -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    base_url: str
    server_pgid: int
    tokens: list[str]
    tables: Tables


def measure(target: Target, concurrency: int, seconds: float, mode: str) -> dict:
    """One level: load, CPU and database accounting, integrity check, then reset the queue."""
    cpu_before, db_before = cpu_seconds(target.server_pgid), db_counters()
    load = run_level(target.base_url, target.tokens, concurrency, seconds, mode)
    stats, elapsed = asyncio.run(load)
    cpu = cpu_seconds(target.server_pgid)
    cpu.subtract(cpu_before)
    time.sleep(1.1)  # idle backends flush their statistics at most once a second
    db = db_counters()
    db.subtract(db_before)
    integrity = db_check(target.tables, stats.judgment_ids)
    if integrity.stored != len(set(stats.judgment_ids)):
        print(f"  note: {integrity.stored} judgments stored, {len(stats.judgment_ids)} acked")
    db_reset_queue(target.tables)
    return level_figures(stats, elapsed, cpu, db, integrity)


def run(plan: Plan) -> dict:
    busy_before = busy_cores_now()
    if busy_before > 0.2:
        print(f"warning: {busy_before:.2f} cores busy before the run; figures will be low")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-") as var_dir:
        env = bench_env(var_dir)
        db_recreate()
        db_migrate(env)
        tokens, tables = db_seed(env, plan.tasks)
        db_vacuum()
        setup_s = time.monotonic() - started
        print(f"setup: {plan.tasks} tasks, {len(tokens)} annotators in {setup_s:.1f} s")
        port = free_port()
        print("server:", shlex.join(server_command(port)), flush=True)
        with server_running(env, port) as server:
            target = Target(f"http://127.0.0.1:{port}", server.pid, tokens, tables)
            warm = measure(target, 8, plan.warmup_seconds, "two_step")
            print(f"warm-up: {warm['annotations']} annotations, errors {warm['errors'] or 0}")
            results = {}
            for concurrency, mode in plan.runs:
                results[(concurrency, mode)] = measure(target, concurrency, plan.seconds, mode)
                print(describe(concurrency, mode, results[(concurrency, mode)]), flush=True)
    return summary(plan, [warm, *results.values()], results, setup_s, busy_before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3,000 tasks, 6 s per level")
    args = parser.parse_args()
    # Ctrl-C and SIGTERM both unwind through server_running, which stops the server group.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(json.dumps(run(plan_for(args.quick))))


if __name__ == "__main__":
    main()
