import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotation.exports import export_write_jsonl
from annotation.models import Project

from .models import TrainingJob

LOG_TAIL_CHARS = 4000
# Recipe fields a caller may override; paths are always chosen by the platform.
TUNABLE_FIELDS = (
    "beta",
    "loss_type",
    "learning_rate",
    "max_steps",
    "per_device_train_batch_size",
    "max_length",
    "seed",
)


def training_job_create(
    *, project: Project, created_by: AbstractBaseUser | None, config: dict
) -> TrainingJob:
    unknown = set(config) - set(TUNABLE_FIELDS)
    if unknown:
        raise ValueError(f"unknown config fields: {', '.join(sorted(unknown))}")
    job = TrainingJob.objects.create(project=project, created_by=created_by, config=config)
    training_job_enqueue(job)
    return job


def training_job_enqueue(job: TrainingJob) -> None:
    from .tasks import run_training_job

    # After commit, so the worker can never look for a row that is not there yet.
    transaction.on_commit(lambda: run_training_job.delay(job.pk))


def training_job_claim(job_id: int) -> bool:
    """Move queued → running exactly once; a redelivered message finds nothing to claim."""
    now = timezone.now()
    claimed = TrainingJob.objects.filter(pk=job_id, status=TrainingJob.Status.QUEUED).update(
        status=TrainingJob.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    return claimed == 1


def training_job_run(*, job_id: int) -> None:
    if not training_job_claim(job_id):
        return
    job = TrainingJob.objects.select_related("project").get(pk=job_id)
    workdir = settings.TRAINING_OUTPUT_DIR / f"job-{job.pk}"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        data_path = workdir / "data.jsonl"
        rows = export_write_jsonl(project=job.project, fmt="trl-preference", out=data_path)
        _update(job, data_rows=rows, data_path=str(data_path))
        if rows == 0:
            _finish(job, TrainingJob.Status.FAILED, error="No preference pairs to train on yet.")
            return
        _run_recipe(job, workdir, data_path)
    except Exception as exc:  # the row must never stay 'running' after the task is gone
        _finish(job, TrainingJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise


def _recipe_config(job: TrainingJob, workdir: Path, data_path: Path) -> dict:
    base_model = job.config.get("model_path") or str(settings.TINY_POLICY_DIR)
    overrides = {k: v for k, v in job.config.items() if k in TUNABLE_FIELDS}
    return {
        **overrides,
        "data_path": str(data_path),
        "model_path": base_model,
        "output_dir": str(workdir / "checkpoint"),
    }


def _run_recipe(job: TrainingJob, workdir: Path, data_path: Path) -> None:
    config_path = workdir / "recipe-config.json"
    config_path.write_text(json.dumps(_recipe_config(job, workdir, data_path), indent=2))
    progress_path = workdir / "progress.jsonl"
    progress_path.unlink(missing_ok=True)
    log_path = workdir / "train.log"
    command = [
        sys.executable,
        "-m",
        "training_jobs.recipes.dpo",
        "--config",
        str(config_path),
        "--progress-file",
        str(progress_path),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    # A child process returns GPU memory on exit and can be killed cleanly.
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=settings.BASE_DIR
        )
        offset = 0
        while child.poll() is None:
            time.sleep(1.0)
            offset = _consume_progress(job, progress_path, offset)
            if _cancel_requested(job):
                child.terminate()
                child.wait(timeout=30)
                _finish(job, TrainingJob.Status.CANCELLED, log_tail=_tail(log_path))
                return
        _consume_progress(job, progress_path, offset)
    metrics_path = workdir / "checkpoint" / "metrics.json"
    if child.returncode != 0 or not metrics_path.exists():
        _finish(
            job,
            TrainingJob.Status.FAILED,
            log_tail=_tail(log_path),
            error=f"training process exited with code {child.returncode}",
        )
        return
    _finish(
        job,
        TrainingJob.Status.SUCCEEDED,
        log_tail=_tail(log_path),
        metrics=json.loads(metrics_path.read_text()),
        checkpoint_path=str(workdir / "checkpoint"),
    )


def _consume_progress(job: TrainingJob, progress_path: Path, offset: int) -> int:
    """Fold new progress lines from the child into the row; returns the new file offset."""
    fields: dict = {"heartbeat_at": timezone.now()}
    if progress_path.exists():
        with progress_path.open("r", encoding="utf-8") as fh:
            fh.seek(offset)
            chunk = fh.read()
        complete, _, _ = chunk.rpartition("\n")
        offset += len(complete.encode()) + (1 if complete else 0)
        events = [json.loads(line) for line in complete.splitlines() if line.strip()]
        for event in events:
            fields["progress_step"] = int(event.get("step", job.progress_step))
            fields["progress_total"] = int(event.get("total", job.progress_total))
            if "loss" in event:
                job.metrics_history.append({"step": event.get("step"), "loss": event["loss"]})
                fields["metrics_history"] = job.metrics_history
    _update(job, **fields)
    return offset


def _cancel_requested(job: TrainingJob) -> bool:
    status = TrainingJob.objects.filter(pk=job.pk).values_list("status", flat=True).first()
    return status == TrainingJob.Status.CANCELLED


def _tail(path: Path) -> str:
    if not path.exists():
        return ""
    return path.read_bytes()[-LOG_TAIL_CHARS:].decode("utf-8", errors="replace")


def _update(job: TrainingJob, **fields) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=list(fields))


def _finish(job: TrainingJob, status: str, **fields) -> None:
    _update(job, status=status, finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields)


def training_jobs_reap_stale(*, now=None) -> int:
    """Fail running jobs whose worker stopped sending heartbeats (killed, OOM, node lost)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT)
    return TrainingJob.objects.filter(
        status=TrainingJob.Status.RUNNING, heartbeat_at__lt=cutoff
    ).update(
        status=TrainingJob.Status.FAILED,
        finished_at=now,
        error="The worker stopped reporting (killed or lost); no checkpoint was registered.",
    )
