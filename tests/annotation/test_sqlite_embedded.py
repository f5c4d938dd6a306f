import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_annotator_loop_runs_on_the_embedded_sqlite_default(tmp_path):
    """`make run` without DATABASE_URL uses SQLite; the hand-written loop SQL must work there."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["ARBITER_VAR_DIR"] = str(tmp_path)
    script = Path(__file__).with_name("sqlite_annotator_loop.py")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sqlite annotator loop ok 4" in done.stdout
