"""What running a recipe as an Arbiter job costs over running the same recipe by hand.

What is measured, with the tiny CPU models: a fresh `arbiter_bench_training` database, a
project with N judged pairs (the clear answer preferred), and a production-shaped gpu worker
(`-Q gpu --concurrency 1 --max-tasks-per-child 1 --prefetch-multiplier 1`, prefork) on
Postgres + Redis. For each kind (reward model, then DPO) and repetition:

- **job**: `training_job_create` (enqueued on commit) → the worker claims the row, exports
  the judgments to a snapshot, starts the recipe as a child process, folds its progress into
  the row, registers the DPO checkpoint. Timed from the row's `created_at` to `finished_at`.
- **plain**: the same recipe on the same exported file with the same config (the job's own
  `recipe-config.json`, another output dir), started by hand as a plain script:
  `python -m training_jobs.recipes.<kind> --config cfg.json`. Timed around the process.

Both start Python, import torch/transformers/TRL, load the model and train; the reference
log-prob cache is emptied before every run so neither reuses the other's. The job's phases
(dispatch, export, child, registration) and the CPU the worker spent on the job outside the
recipe's process (from /proc: the worker's process tree before and after, less the CPU the
recipe reports for itself) are printed so overhead can be located. The ratio compares the
medians of the repetitions (the best runs' ratio is printed beside it). Samples/s are TRL's
`train_samples_per_second` of the plain runs (the training loop only, best run).

Target (issue 6): job / plain wall time <= 1.10.

Run: `.venv/bin/python bench/training_overhead.py [--quick]` (`--quick`: 16 pairs, one
repetition, shorter training). `BENCH_REDIS_URL` picks the Redis database (default db 13).
The last line is one JSON object with `job_vs_plain_ratio`, `rm_samples_per_s`,
`dpo_samples_per_s`.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB = "arbiter_bench_training"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
RECIPES = {"reward_model": "training_jobs.recipes.reward", "dpo": "training_jobs.recipes.dpo"}


def setup(var_dir: Path) -> dict[str, str]:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "ARBITER_VAR_DIR": str(var_dir),
        "ARBITER_MODELS_DIR": str(ROOT / "var" / "models"),
        "CHECKPOINT_ROOT": str(var_dir / "checkpoints"),
        "DJANGO_DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for name in ("ARBITER_TRAINING_DIR", "ARBITER_EXPORTS_DIR", "ARBITER_REF_LOGPS_DIR"):
        env.pop(name, None)  # everything under this run's var dir
    os.environ.clear()
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
        try:
            conn.default_channel.queue_purge("gpu")
        except Exception:  # never declared: nothing to purge
            pass
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "gpu"]
    argv += ["--concurrency", "1", "--max-tasks-per-child", "1", "--prefetch-multiplier", "1"]
    argv += ["-n", f"bench-training-{os.getpid()}@%h", "--without-gossip", "-l", "info"]
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def wait_ready(worker: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while " ready." not in log.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("worker did not start:\n" + log.read_text()[-2000:])
        time.sleep(0.2)


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process, its live children and every child it has reaped.

    The worker reaps its pool process, which reaped the recipe's child: so the worker's total
    over a job is the recipe's CPU plus the platform's own.
    """
    ticks = os.sysconf("SC_CLK_TCK")

    def times(stat: str) -> tuple[int, list[int]]:
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"
        return int(fields[1]), [int(value) for value in fields[11:15]]  # ppid, u/s/cu/cs time

    total = sum(times(Path(f"/proc/{pid}/stat").read_text())[1])
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid, cpu = times((proc / "stat").read_text())
            except (OSError, IndexError):
                continue
            if ppid == pid:
                total += sum(cpu)
    return total / ticks


def judged_project(pairs: int):
    """N pairwise tasks, each judged once: the clear answer over the nonsense one."""
    from django.contrib.auth import get_user_model

    from annotation import services
    from annotation.models import Completion, Membership, Prompt, Role, Task, TaskCandidate

    project = services.project_create(slug="training-bench", name="Training overhead")
    for i in range(pairs):
        prompt = Prompt.objects.create(
            project=project, messages=[{"role": "user", "content": f"Question {i}: what now?"}]
        )
        texts = (f"A clear helpful answer number {i}.", f"bad {i} nonsense")
        task = Task.objects.create(project=project, prompt=prompt, overlap=1)
        for k, text in enumerate(texts):
            completion = Completion.objects.create(
                prompt=prompt, candidate_index=k, content=text, model_name="m"
            )
            TaskCandidate.objects.create(task=task, completion=completion, position=k)
    annotator = get_user_model().objects.create(username="training-bench-annotator")
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    for n in range(pairs):
        assignment = services.assignment_claim_next(annotator=annotator)
        good = assignment.task.completions.get(content__startswith="A clear").pk
        choice = 1 if assignment.shown_order[0] == good else 5
        services.judgment_submit(
            assignment=assignment, choice=choice, idempotency_key=f"bench-{n:06d}"
        )
    return project


def run_job(project, kind: str, config: dict, worker: subprocess.Popen, log: Path) -> dict:
    from django.db import transaction

    from training_jobs import services
    from training_jobs.models import TrainingJob

    cpu_before = tree_cpu_s(worker.pid)
    with transaction.atomic():
        job = services.training_job_create(
            project=project, created_by=None, config=config, kind=kind
        )
    deadline = time.monotonic() + 900
    while True:
        job.refresh_from_db()
        if job.status in TrainingJob.FINISHED:
            break
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"job {job.pk} is {job.status}:\n" + log.read_text()[-3000:])
        time.sleep(0.25)  # the timing comes from the row, not from this loop
    if job.status != TrainingJob.Status.SUCCEEDED:
        raise RuntimeError(f"job {job.pk} {job.status}: {job.error}\n{job.log_tail}")
    time.sleep(0.5)  # the task's last statements after the row says succeeded
    worker_cpu = tree_cpu_s(worker.pid) - cpu_before
    workdir = Path(job.checkpoint_path).parent
    config_written = _mtime(workdir / "recipe-config.json")
    metrics_written = _mtime(Path(job.checkpoint_path) / "metrics.json")
    return {
        "wall_s": (job.finished_at - job.created_at).total_seconds(),
        # Phases, from the row's timestamps and the files the worker and recipe wrote.
        "dispatch_s": (job.started_at - job.created_at).total_seconds(),
        "export_s": config_written - job.started_at.timestamp(),
        "child_s": metrics_written - config_written,
        # The child's interpreter shutdown, then the worker's completion transaction.
        "exit_register_s": job.finished_at.timestamp() - metrics_written,
        "recipe_s": job.metrics["seconds"],
        # The CPU the worker's process tree spent on the job, less the recipe's own.
        "worker_cpu_s": worker_cpu - job.metrics["process_cpu_s"],
        "workdir": workdir,
    }


def run_plain(kind: str, job_workdir: Path, scratch: Path) -> dict:
    """The job's recipe config, another output dir, started as a plain script."""
    config = json.loads((job_workdir / "recipe-config.json").read_text())
    clear_ref_logps()
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    config["output_dir"] = str(scratch / "checkpoint")
    config_path = scratch / "config.json"
    config_path.write_text(json.dumps(config))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", RECIPES[kind], "--config", str(config_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall, ended = time.monotonic() - started, time.time()
    if done.returncode != 0:
        raise RuntimeError(f"plain {kind} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((scratch / "checkpoint" / "metrics.json").read_text())
    return {
        "wall_s": wall,
        "exit_s": ended - _mtime(scratch / "checkpoint" / "metrics.json"),
        "recipe_s": metrics["seconds"],
        "samples_per_s": metrics["train_samples_per_s"],
        "train_rows": metrics["train_rows_used"],
        "steps": metrics["steps"],
    }


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def warm_up() -> subprocess.Popen:
    """Import the recipes once, so the first timed run does not read torch from a cold disk."""
    imports = "import training_jobs.recipes.dpo, training_jobs.recipes.reward"
    return subprocess.Popen([sys.executable, "-c", imports], cwd=ROOT)


def clear_ref_logps() -> None:
    from django.conf import settings

    shutil.rmtree(settings.TRAINING_REF_LOGPS_DIR, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 pairs, 1 repetition")
    args = parser.parse_args()
    pairs, reps = (16, 1) if args.quick else (64, 3)
    configs = {
        "reward_model": {
            "learning_rate": 1e-3,
            "num_train_epochs": 1 if args.quick else 3,
            "per_device_train_batch_size": 8,
        },
        "dpo": {
            "learning_rate": 5e-4,
            "max_steps": 4 if args.quick else 30,
            "per_device_train_batch_size": 2,
        },
    }
    load_before = os.getloadavg()[0]
    bench_started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="arbiter-training-bench-") as tmp:
        var_dir = Path(tmp)
        warming = warm_up()  # meanwhile: the database, the worker, the judgments
        env = setup(var_dir)
        log = var_dir / "worker.log"
        worker = start_worker(env, log)
        results: dict[str, dict[str, list[dict]]] = {k: {"job": [], "plain": []} for k in configs}
        try:
            project = judged_project(pairs)
            wait_ready(worker, log)
            if warming.wait() != 0:
                raise RuntimeError("the recipes do not import")
            print(f"set up in {time.monotonic() - bench_started:.1f} s", flush=True)
            job_dirs: dict[str, Path] = {}  # the first job's dir: its config for the plain runs
            for rep in range(reps):
                for kind, config in configs.items():
                    # Alternate which side goes first (from the second repetition, when the
                    # job's config is known), so neither always meets the warmer cache.
                    plain_first = rep % 2 == 1
                    if plain_first:
                        plain = run_plain(kind, job_dirs[kind], var_dir / "plain" / kind)
                    clear_ref_logps()
                    job = run_job(project, kind, config, worker, log)
                    job_dirs.setdefault(kind, job["workdir"])
                    if not plain_first:
                        plain = run_plain(kind, job_dirs[kind], var_dir / "plain" / kind)
                    results[kind]["job"].append(job)
                    results[kind]["plain"].append(plain)
                    print(
                        f"rep {rep + 1} {kind:>12}: job {job['wall_s']:.2f} s "
                        f"(dispatch {job['dispatch_s']:.2f}, export {job['export_s']:.2f}, "
                        f"child {job['child_s']:.2f} [recipe {job['recipe_s']:.2f}], "
                        f"exit+register {job['exit_register_s']:.2f}) | plain "
                        f"{plain['wall_s']:.2f} s (recipe {plain['recipe_s']:.2f}, "
                        f"exit {plain['exit_s']:.2f}) | {plain['samples_per_s']:.1f} samples/s"
                        f" | worker CPU outside the recipe {job['worker_cpu_s']:.2f} s",
                        flush=True,
                    )
        finally:
            worker.terminate()
            worker.wait(timeout=60)

    # Medians of the repetitions; the best runs (as timeit reports them) beside them. On a
    # shared 2-core machine either side's runs vary by more than the overhead measured here,
    # so the phases outside the recipe's process are printed too: they are the overhead.
    def best(kind: str, side: str, key: str = "wall_s") -> float:
        return min(run[key] for run in results[kind][side])

    def median(kind: str, side: str, key: str = "wall_s") -> float:
        return statistics.median(run[key] for run in results[kind][side])

    def speed(kind: str) -> float:
        return max(run["samples_per_s"] for run in results[kind]["plain"])

    job_total = sum(median(kind, "job") for kind in configs)
    plain_total = sum(median(kind, "plain") for kind in configs)
    best_ratio = sum(best(k, "job") for k in configs) / sum(best(k, "plain") for k in configs)
    summary = {
        "job_vs_plain_ratio": round(job_total / plain_total, 3),
        "rm_samples_per_s": round(speed("reward_model"), 2),
        "dpo_samples_per_s": round(speed("dpo"), 2),
        "job_s": round(job_total, 2),
        "plain_s": round(plain_total, 2),
        **{
            f"{short}_{side}_s": round(median(kind, side), 2)
            for short, kind in (("rm", "reward_model"), ("dpo", "dpo"))
            for side in ("job", "plain")
        },
        "rm_ratio": round(median("reward_model", "job") / median("reward_model", "plain"), 3),
        "dpo_ratio": round(median("dpo", "job") / median("dpo", "plain"), 3),
        "best_of_ratio": round(best_ratio, 3),
        "worker_cpu_outside_recipe_s": round(
            max(run["worker_cpu_s"] for kind in configs for run in results[kind]["job"]), 2
        ),
        "job_outside_child_s": round(
            max(run["wall_s"] - run["child_s"] for kind in configs for run in results[kind]["job"]),
            2,
        ),
        "pairs": pairs,
        "rm_train_rows": results["reward_model"]["plain"][0]["train_rows"],
        "dpo_steps": results["dpo"]["plain"][0]["steps"],
        "repetitions": reps,
        "quick": args.quick,
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "bench_s": round(time.monotonic() - bench_started, 1),
        "date": datetime.now().date().isoformat(),
    }
    print(
        f"job {job_total:.2f} s vs plain {plain_total:.2f} s (medians of {reps}): ratio "
        f"{summary['job_vs_plain_ratio']} (target <= 1.10; best runs: {summary['best_of_ratio']}); "
        f"outside the recipe's process <= {summary['job_outside_child_s']} s per job, "
        f"the worker's own CPU per job <= {summary['worker_cpu_outside_recipe_s']} s; "
        f"RM {summary['rm_samples_per_s']} "
        f"samples/s, DPO {summary['dpo_samples_per_s']} samples/s (CPU, tiny models)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
