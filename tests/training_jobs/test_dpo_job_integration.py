"""The thin training loop on real parts: Postgres, Redis, a Celery worker process, TRL."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from annotation import services
from annotation.models import Role
from factories import ProjectFactory, member, pair_task
from training_jobs.models import TrainingJob

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def celery_worker(tmp_path, tiny_models):
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "integration tests need Redis"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),  # the test database pytest-django created
        "ARBITER_TRAINING_DIR": str(tmp_path / "training"),
    }
    _purge_queues(["gpu", "default"])  # stale messages from an earlier run name other rows
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "gpu,default",
            "-P",
            "solo",
            "-n",
            f"test-{os.getpid()}@%h",
            "--purge",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    _wait_ready(worker, tmp_path / "worker.log")
    yield {"process": worker, "log": tmp_path / "worker.log", "training_dir": tmp_path / "training"}
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
    log.close()


def _purge_queues(queues: list[str]) -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in queues:
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # a queue that was never declared has nothing to purge
                pass


def _wait_ready(worker: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if " ready." in log_path.read_text(errors="replace"):
            return
        if worker.poll() is not None:
            break
        time.sleep(0.3)
    pytest.fail("celery worker did not start:\n" + log_path.read_text(errors="replace")[-3000:])


def _judged_project(pairs: int):
    project = ProjectFactory(slug="dpo-loop")
    for n in range(pairs):
        pair_task(project, texts=(f"A clear helpful answer number {n}.", f"bad {n} nonsense"))
    annotator = member(project)
    for n in range(pairs):
        assignment = services.assignment_claim_next(annotator=annotator)
        good = assignment.task.completions.get(content__startswith="A clear").pk
        choice = 1 if assignment.shown_order[0] == good else 5
        services.judgment_submit(
            assignment=assignment, choice=choice, idempotency_key=f"dpo-{n:06d}"
        )
    return project


def _wait_finished(job_id: int, worker, timeout: float = 300) -> TrainingJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = TrainingJob.objects.get(pk=job_id)
        if job.status in TrainingJob.FINISHED:
            return job
        if worker["process"].poll() is not None:
            pytest.fail("celery worker died:\n" + worker["log"].read_text()[-3000:])
        time.sleep(1)
    pytest.fail(f"job still {job.status} after {timeout}s:\n" + worker["log"].read_text()[-3000:])


def test_dpo_job_trains_on_exported_judgments_in_a_worker(celery_worker):
    import torch
    from transformers import AutoModelForCausalLM

    project = _judged_project(pairs=8)
    researcher = member(project, Role.RESEARCHER)
    client = APIClient()
    client.force_authenticate(researcher)
    response = client.post(
        "/api/v1/training-jobs/",
        {"project": project.slug, "config": {"max_steps": 4, "learning_rate": 1e-3, "beta": 0.1}},
        format="json",
    )
    assert response.status_code == 201, response.content

    job = _wait_finished(response.json()["id"], celery_worker)

    assert job.status == TrainingJob.Status.SUCCEEDED, f"{job.error}\n{job.log_tail}"
    assert job.data_rows == 8
    assert job.progress_step == job.progress_total == 4
    assert job.metrics_history and all("loss" in point for point in job.metrics_history)
    checkpoint = Path(job.checkpoint_path)
    assert checkpoint.is_relative_to(celery_worker["training_dir"])
    trained = AutoModelForCausalLM.from_pretrained(checkpoint)
    start = AutoModelForCausalLM.from_pretrained(settings.TINY_POLICY_DIR)
    changed = [
        name
        for (name, p), (_, q) in zip(
            trained.named_parameters(), start.named_parameters(), strict=True
        )
        if not torch.equal(p, q)
    ]
    assert changed, "DPO left every parameter unchanged"


def test_redelivered_message_for_a_finished_job_does_nothing(celery_worker):
    from training_jobs.tasks import run_training_job

    project = ProjectFactory(slug="redeliver")
    job = TrainingJob.objects.create(project=project, status=TrainingJob.Status.SUCCEEDED)
    run_training_job.delay(job.pk)
    empty = TrainingJob.objects.create(project=project)  # queued, but no judgments exist
    run_training_job.delay(empty.pk)
    assert _wait_finished(empty.pk, celery_worker).error == "No preference pairs to train on yet."
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.SUCCEEDED and job.started_at is None
