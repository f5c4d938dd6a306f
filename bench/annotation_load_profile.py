"""Where one annotation's server time goes, in-process, on the database `annotation_load` left.

Run after `bench/annotation_load.py` (which leaves `arbiter_bench` seeded, queue empty):
`.venv/bin/python bench/annotation_load_profile.py [--half-done]`. It prints

1. every SQL query of `next`, `judgment` and `submit-and-next` with its time,
2. what opening a database connection costs (the server opens one per request: Django
   closes it at the end of every request when CONN_MAX_AGE is 0),
3. a cProfile of 300 annotations through the Django test client (no HTTP, no uvicorn),
4. EXPLAIN ANALYZE of the claim query, optionally with half the tasks already taken.

The test client keeps one connection open, so sections 1 and 3 leave out item 2's cost.
"""

import argparse
import cProfile
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1/assignments"
JSON = "application/json"


def setup_django() -> None:
    os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/arbiter_bench"
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def client_for(index: int):
    from django.test import Client
    from rest_framework.authtoken.models import Token

    token = Token.objects.get(user__username=f"bench{index}")
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def body() -> dict:
    return {"choice": 2, "idempotency_key": uuid.uuid4().hex, "time_spent_ms": 0}


def show_queries(client) -> str:
    """Print each endpoint's queries; return the claim query's SQL for EXPLAIN."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    claim_sql = ""
    assignment_id = client.get(f"{API}/next/").json()["assignment"]["id"]
    calls = [
        ("GET next (resume)", lambda: client.get(f"{API}/next/")),
        ("POST judgment", lambda: client.post(f"{API}/{assignment_id}/judgment/", body(), JSON)),
        ("GET next (claim)", lambda: client.get(f"{API}/next/")),
    ]
    for label, send in calls:
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = send()
            wall_ms = 1000 * (time.perf_counter() - started)
        print_queries(label, response.status_code, wall_ms, ctx.captured_queries)
        # The last query filtering on "never assigned to this annotator" is the claim itself.
        claims = [q["sql"] for q in ctx if "NOT EXISTS" in q["sql"]]
        claim_sql = claims[-1] if claims else claim_sql
    following = client.get(f"{API}/next/").json()["assignment"]["id"]
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        response = client.post(f"{API}/{following}/submit-and-next/", body(), JSON)
        wall_ms = 1000 * (time.perf_counter() - started)
    print_queries("POST submit-and-next", response.status_code, wall_ms, ctx.captured_queries)
    return claim_sql


def print_queries(label: str, status: int, wall_ms: float, queries: list[dict]) -> None:
    sql_ms = sum(1000 * float(q["time"]) for q in queries)
    print(f"\n## {label}: HTTP {status}, {len(queries)} queries, ", end="")
    print(f"{sql_ms:.1f} ms in SQL of {wall_ms:.1f} ms in-process")
    for q in queries:
        print(f"  {1000 * float(q['time']):6.2f} ms  {q['sql'][:150]}")


def connection_cost(rounds: int = 50) -> None:
    from django.db import connection

    started = time.perf_counter()
    for _ in range(rounds):
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    per_ms = 1000 * (time.perf_counter() - started) / rounds
    print(f"\n## a new database connection + SELECT 1: {per_ms:.1f} ms (mean of {rounds})")


def annotate(client, rounds: int) -> tuple[float, float]:
    """Label `rounds` pairs with submit-and-next; return mean wall and CPU ms per annotation."""
    started, cpu_started = time.perf_counter(), time.process_time()
    assignment_id = client.get(f"{API}/next/").json()["assignment"]["id"]
    for _ in range(rounds):
        reply = client.post(f"{API}/{assignment_id}/submit-and-next/", body(), JSON)
        assignment_id = reply.json()["next"]["id"]
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return 1000 * wall / rounds, 1000 * cpu / rounds


def rows_read() -> int:
    from annotation_load import db_counters

    counters = db_counters()
    return counters["tup_returned"] + counters["tup_fetched"]


def profile_annotations(client, rounds: int = 300) -> None:
    before = rows_read()
    wall_ms, cpu_ms = annotate(client, rounds)
    time.sleep(1.1)  # let the backend flush its statistics
    per_rows = (rows_read() - before) / rounds
    print(f"\n## {rounds} annotations on one kept connection, in-process: {wall_ms:.1f} ms each")
    print(f"   ({cpu_ms:.1f} ms of it Python CPU), {per_rows:.0f} rows read in Postgres each")
    profiler = cProfile.Profile()
    profiler.enable()
    annotate(client, rounds)
    profiler.disable()
    print(f"\n## cProfile of {rounds} more annotations")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def explain_claim(sql: str, *, half_done: bool) -> None:
    from django.db import connection, transaction

    from annotation.models import Task

    task = Task._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if half_done:
            cursor.execute(
                f"UPDATE {task} SET slots_taken = 1"
                f" WHERE id <= (SELECT min(id) + count(*) / 2 FROM {task})"
            )
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        plan = "\n  ".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    state = "half the tasks taken" if half_done else "as the profile left it"
    print(f"\n## EXPLAIN ANALYZE of the claim query ({state}):\n  {sql}\n  {plan}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--half-done", action="store_true", help="EXPLAIN with half taken too")
    args = parser.parse_args()
    setup_django()
    from annotation_load import Tables, db_reset_queue
    from annotation_load_seed import table_names

    try:
        claim_sql = show_queries(client_for(0))
        connection_cost()
        profile_annotations(client_for(1))
        explain_claim(claim_sql, half_done=False)
        if args.half_done:
            explain_claim(claim_sql, half_done=True)
    finally:
        db_reset_queue(Tables(**table_names()))


if __name__ == "__main__":
    main()
