"""How long the on-policy loop takes to turn: a round closes → the next round's first completion.

What is measured, on real parts with the tiny CPU models: a fresh `arbiter_bench_loop`
database, a Celery worker process (queues `gpu` and `default`, as `make run` splits them
over two), the local `transformers serve` (unpinned, so it serves new checkpoints), and a
project with a judged first round (pairs judged directly through the services, shorter
reply preferred). The clock starts when the round is closed; in between, the worker trains
a Bradley–Terry reward model and a DPO policy on the round, registers the DPO checkpoint as
a model version, creates the next round from it, and generates; the clock stops at the
next round's first stored completion. Printed: each phase's seconds.

Why: on-policy collection only pays off if a new checkpoint is sampled soon after its
labels are in (book §11.2). Target: <= 3 min with the tiny CPU models.

Run: `.venv/bin/python bench/loop_latency.py [--quick]` (`--quick`: 16 prompts instead of 40).
The last line is one JSON object with `loop_latency_s`.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB = "arbiter_bench_loop"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup(var_dir: str) -> dict[str, str]:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "REDIS_URL": "redis://127.0.0.1:6379/14",
        "ARBITER_VAR_DIR": var_dir,
        "ARBITER_MODELS_DIR": str(ROOT / "var" / "models"),
        "DJANGO_DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "HF_HUB_OFFLINE": "1",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("build_tiny_models", verbosity=0)
    return env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in ("gpu", "default"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # never declared: nothing to purge
                pass
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "gpu,default"]
    argv += ["-P", "solo", "-n", f"loop-{os.getpid()}@%h", "--without-gossip", "-l", "info"]
    worker = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 90
    while " ready." not in log.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("worker did not start:\n" + log.read_text()[-2000:])
        time.sleep(0.3)
    return worker


def judged_round(base_url: str, prompts: int):
    """A closed-ready first round: generated through the worker, judged via the services."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from annotation import rounds, services
    from annotation.models import Membership, Prompt, Role
    from models_serving.models import ModelEndpoint, ModelVersion

    endpoint = ModelEndpoint.objects.create(
        name=settings.TRAINING_REGISTER_ENDPOINT, base_url=base_url, kind="transformers-serve"
    )
    base = ModelVersion.objects.create(
        endpoint=endpoint, model_name=str(settings.TINY_POLICY_DIR), label="base"
    )
    project = services.project_create(slug="loop", name="Loop latency")
    for i in range(2 * prompts):
        Prompt.objects.create(project=project, messages=[{"role": "user", "content": f"Q{i}?"}])
    annotator = get_user_model().objects.create(username="loop-annotator")
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    first = rounds.round_create(
        project=project,
        name="r1",
        model_versions=[base],
        prompt_count=prompts,
        sampling_params={"max_tokens": 24},
        train_on_close=True,
        continue_automatically=True,
    )
    rounds.round_start(round=first)
    return first, annotator


def wait(predicate, what: str, worker: subprocess.Popen, log: Path, timeout: float = 900):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if worker.poll() is not None:
            raise RuntimeError("worker died:\n" + log.read_text()[-3000:])
        time.sleep(0.2)
    raise TimeoutError(f"{what}:\n" + log.read_text()[-3000:])


def judge_all(round_, annotator) -> int:
    from annotation import services

    done = 0
    while (assignment := services.assignment_claim_next(annotator=annotator)) is not None:
        texts = {c.pk: c.content for c in assignment.task.completions.all()}
        first, second = assignment.shown_order
        choice = 1 if len(texts[first]) <= len(texts[second]) else 5
        services.judgment_submit(
            assignment=assignment, choice=choice, idempotency_key=f"loop-{assignment.pk:06d}"
        )
        done += 1
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 prompts instead of 40")
    args = parser.parse_args()
    prompts = 16 if args.quick else 40
    with tempfile.TemporaryDirectory(prefix="arbiter-loop-") as var_dir:
        env = setup(var_dir)
        from django.conf import settings

        from annotation import rounds
        from annotation.models import Completion, Round
        from models_serving.local_server import local_model_server
        from training_jobs.models import TrainingJob

        log = Path(var_dir) / "worker.log"
        port = free_port()
        with local_model_server(settings.TINY_POLICY_DIR, port, pinned=False) as base_url:
            worker = start_worker(env, log)
            try:
                first, annotator = judged_round(base_url, prompts)

                def status() -> str:
                    return Round.objects.values_list("status", flat=True).get(pk=first.pk)

                wait(lambda: status() == "collecting", "first round generated", worker, log)
                judgments = judge_all(first, annotator)
                started = time.monotonic()
                rounds.round_close(round=first, reason="by hand")
                marks: dict[str, float] = {}

                def mark(name: str, done: bool) -> bool:
                    if done and name not in marks:
                        marks[name] = round(time.monotonic() - started, 1)
                    return done

                def first_completion() -> bool:
                    jobs = TrainingJob.objects.filter(round=first)
                    mark(
                        "reward_model_s",
                        jobs.filter(kind="reward_model", status="succeeded").exists(),
                    )
                    mark("dpo_s", jobs.filter(kind="dpo", status="succeeded").exists())
                    nxt = Round.objects.filter(previous=first).first()
                    mark("next_round_s", nxt is not None)
                    failed = jobs.filter(status="failed").first()
                    if failed is not None:
                        raise RuntimeError(f"job {failed.pk} failed: {failed.error}")
                    return nxt is not None and Completion.objects.filter(round=nxt).exists()

                wait(first_completion, "next round's first completion", worker, log)
                total = round(time.monotonic() - started, 1)
            finally:
                worker.terminate()
                worker.wait(timeout=30)
    print(f"{judgments} judgments; round closed -> next round's first completion in {total} s")
    print(f"  marks (s after close): {marks}")
    print(
        json.dumps(
            {
                "loop_latency_s": total,
                "judgments": judgments,
                "prompts": prompts,
                "quick": args.quick,
                **marks,
            }
        )
    )


if __name__ == "__main__":
    main()
