"""How fast a `trl-preference` export streams out of Postgres, against `COPY` as the floor.

What is measured: N synthetic pairwise judgments (20,000 and 1,000,000; `--quick`: 20,000
only) are written straight into a fresh `arbiter_bench_export` database with
`generate_series`; then, in this process with the production settings, the export that
the API's background job and `export_dataset` run (a server-side cursor, rows streamed to
a file) is timed: total seconds, seconds to the first byte written, and the growth of peak
RSS over the run (Linux's VmHWM, reset before each run). Beside it, `COPY (the same join)
TO STDOUT` into a file is the physical floor: the bytes Postgres can hand over at all.

Why: Label Studio 1.23.2 exported 20k annotated tasks in 42.5 s with +197 MB worker RSS on
this 2-core machine, building the whole file before its first byte. Targets: 20k in
<= 0.85 s, first byte < 0.2 s, RSS growth <= 50 MB; 1M in <= 30 s and <= 2x COPY.

Run: `.venv/bin/python bench/export.py [--quick]`. The last line is one JSON object.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB = "arbiter_bench_export"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DSN = f"postgresql://postgres@127.0.0.1:5432/{DB}"


def setup_django() -> None:
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DB}"
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ["DATABASE_POOL"] = "false"  # the database is dropped between sizes
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("ARBITER_VAR_DIR", tempfile.mkdtemp(prefix="arbiter-bench-export-"))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def db_recreate() -> None:
    from django.db import connections

    connections.close_all()
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(n: int) -> float:
    """One project, 8 annotators, n prompts with 2 completions, n judged pairwise tasks."""
    from django.contrib.auth import get_user_model

    from annotation import services
    from annotation.models import Membership, Role

    started = time.monotonic()
    project = services.project_create(slug="bench", name="Export benchmark")
    users = [get_user_model().objects.create(username=f"export{i}") for i in range(8)]
    for user in users:
        Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
    first_user = users[0].pk
    statements = [
        "INSERT INTO annotation_prompt (id, project_id, messages, external_id, content_hash,"
        " metadata, created_at) SELECT g, %(p)s, jsonb_build_array(jsonb_build_object("
        "'role', 'user', 'content', 'Question ' || g || '?')), '', '', '{}', now()"
        " FROM generate_series(1, %(n)s) g",
        "INSERT INTO annotation_completion (id, prompt_id, candidate_index, content,"
        " model_name, sampling_params, finish_reason, created_at, duplicate, incomplete)"
        " SELECT 2 * g - 1 + k, g, k, 'Answer ' || k || ' to ' || g || ': '"
        " || repeat('with some detail ', 20), 'm', '{}', 'stop', now(), false, false"
        " FROM generate_series(1, %(n)s) g, generate_series(0, 1) k",
        "INSERT INTO annotation_task (id, project_id, prompt_id, overlap, slots_taken,"
        " created_at, kind, interface, is_gold) SELECT g, %(p)s, g, 1, 1, now(), 'pairwise',"
        " 'pairwise', false FROM generate_series(1, %(n)s) g",
        "INSERT INTO annotation_taskcandidate (task_id, completion_id, position)"
        " SELECT g, 2 * g - 1 + k, k FROM generate_series(1, %(n)s) g, generate_series(0, 1) k",
        "INSERT INTO annotation_assignment (id, task_id, annotator_id, status, shown_order,"
        " claimed_at, expires_at, skip_reason) SELECT g, g, %(u)s + g %% 8, 'submitted',"
        " jsonb_build_array(2 * g, 2 * g - 1), now(), now(), ''"
        " FROM generate_series(1, %(n)s) g",
        # choice cycles 1, 2, 4, 5 (A>>B, A>B, B>A, B>>B); A is shown first (2g).
        "INSERT INTO annotation_judgment (id, assignment_id, task_id, annotator_id, kind,"
        " choice, chosen_id, rejected_id, strength, scale_kind, both_bad, flags, shown_order,"
        " comment, rewrite, time_spent_ms, guidelines_version, idempotency_key, created_at)"
        " SELECT g, g, g, %(u)s + g %% 8, 'pairwise', c, CASE WHEN c < 3 THEN 2 * g"
        " ELSE 2 * g - 1 END, CASE WHEN c < 3 THEN 2 * g - 1 ELSE 2 * g END,"
        " CASE WHEN c IN (1, 5) THEN 2 ELSE 1 END, 'five_point', false, '[]',"
        " jsonb_build_array(2 * g, 2 * g - 1), '', '', 5000, 1, 'key-' || g, now()"
        " FROM (SELECT g, (ARRAY[1, 2, 4, 5])[1 + g %% 4] AS c"
        " FROM generate_series(1, %(n)s) g) s",
    ]
    with psycopg.connect(DSN, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql, {"n": n, "p": project.pk, "u": first_user})
        for table in ("prompt", "completion", "task", "assignment", "judgment"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('annotation_{table}', 'id'),"
                f" (SELECT max(id) FROM annotation_{table}))"
            )
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def reset_peak_rss() -> int:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    return rss_kb("VmRSS")


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


class Timed:
    """A file that notes when its first byte was written."""

    def __init__(self, fh, started: float) -> None:
        self.fh, self.started, self.first_byte = fh, started, None

    def write(self, text: str) -> int:
        if self.first_byte is None:
            self.first_byte = time.perf_counter() - self.started
        return self.fh.write(text)


def time_export(out: Path) -> dict:
    from annotation.exports import export_stream
    from annotation.models import Project

    project = Project.objects.get(slug="bench")
    base = reset_peak_rss()
    started = time.perf_counter()
    with out.open("w", encoding="utf-8") as fh:
        timed = Timed(fh, started)
        rows = export_stream(project=project, fmt="trl-preference", out=timed)
    seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "first_byte_s": round(timed.first_byte or seconds, 3),
        "rss_growth_mb": round((rss_kb("VmHWM") - base) / 1024, 1),
        "bytes": out.stat().st_size,
    }


def time_copy(out: Path) -> float:
    """COPY of the same join (prompt, both texts, strength) to a file: the floor."""
    sql = (
        "COPY (SELECT j.id, p.messages, c.content, r.content, j.strength"
        " FROM annotation_judgment j JOIN annotation_task t ON t.id = j.task_id"
        " JOIN annotation_prompt p ON p.id = t.prompt_id"
        " JOIN annotation_completion c ON c.id = j.chosen_id"
        " JOIN annotation_completion r ON r.id = j.rejected_id"
        " WHERE j.strength > 0 ORDER BY j.task_id, j.id) TO STDOUT"
    )
    started = time.perf_counter()
    with psycopg.connect(DSN) as conn, out.open("wb") as fh, conn.cursor() as cur:
        with cur.copy(sql) as copy:
            for block in copy:
                fh.write(block)
    return time.perf_counter() - started


def measure(n: int, workdir: Path) -> dict:
    db_recreate()
    seed_s = seed(n)
    export = time_export(workdir / f"export-{n}.jsonl")
    copy_s = time_copy(workdir / f"copy-{n}.tsv")
    print(
        f"n={n}: export {export['seconds']} s ({export['rows']} rows,"
        f" {export['bytes'] / 1e6:.1f} MB), first byte {export['first_byte_s']} s,"
        f" RSS +{export['rss_growth_mb']} MB | COPY {copy_s:.3f} s | seed {seed_s:.1f} s",
        flush=True,
    )
    return {**export, "copy_s": round(copy_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 judgments only")
    args = parser.parse_args()
    setup_django()
    figures: dict = {"quick": args.quick, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="arbiter-export-") as tmp:
        small = measure(20_000, Path(tmp))
        figures.update(
            export_20k_s=small["seconds"],
            first_byte_20k_s=small["first_byte_s"],
            rss_growth_20k_mb=small["rss_growth_mb"],
            copy_20k_s=small["copy_s"],
        )
        if not args.quick:
            big = measure(1_000_000, Path(tmp))
            figures.update(
                export_1m_s=big["seconds"],
                first_byte_1m_s=big["first_byte_s"],
                rss_growth_1m_mb=big["rss_growth_mb"],
                copy_1m_s=big["copy_s"],
                export_vs_copy_1m=round(big["seconds"] / big["copy_s"], 2),
            )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
