"""Jobs on real parts: a Celery worker process, Postgres, Redis, the recipes on tiny models.

Success for both kinds (and the DPO checkpoint served by `transformers serve`), a recipe that
fails, a recipe killed mid-run, and a cancel that stops it. One worker serves the module.
"""

import json
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import Max
from rest_framework.test import APIClient

from annotation.models import Judgment, Role
from factories import member
from models_serving.local_server import local_model_server
from models_serving.models import ModelVersion
from training_jobs.models import TrainingJob

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PAIRS = 8
# Strengths of the default scale, each with a margin (the export writes them as 2.0, 3.0…).
MARGINS = {str(k): round(0.1 * k, 2) for k in range(1, 11)}
LONG_DPO = {"max_steps": 100_000, "learning_rate": 1e-4}  # runs until stopped


def _start(project, kind: str, config: dict) -> int:
    client = APIClient()
    client.force_authenticate(member(project, Role.RESEARCHER))
    response = client.post(
        "/api/v1/training-jobs/",
        {"project": project.slug, "kind": kind, "config": config},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _workdir(worker, job: TrainingJob) -> Path:
    [workdir] = worker.training_dir.glob(f"job-{job.pk}-*")
    return workdir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reward_model_job(celery_worker, judged_project, wait_finished):
    from transformers import AutoModelForSequenceClassification

    project = judged_project("rm-job", PAIRS)
    config = {"learning_rate": 1e-3, "margin": "strength", "margin_by_strength": MARGINS}
    job = wait_finished(_start(project, "reward_model", config), celery_worker)

    assert job.status == TrainingJob.Status.SUCCEEDED, f"{job.error}\n{job.log_tail}"
    # Recorded on the job, not registered: a reward model is not a chat model to sample.
    assert job.registered_version is None and not ModelVersion.objects.exists()
    assert job.progress_step == job.progress_total > 0 and job.metrics_history
    assert job.metrics["eval_accuracy"] is not None
    assert "unknown" not in job.metrics["eval_accuracy_by_strength"]  # strengths were read
    # The data snapshot: the exact file, and the judgments behind it.
    assert job.metrics["data_snapshot_id"] == job.data_snapshot_id == job.export.content_sha256
    judgments = Judgment.objects.filter(task__project=project)
    assert job.judgment_count == judgments.count() == PAIRS
    assert job.judgment_max_id == judgments.aggregate(top=Max("id"))["top"]
    model = AutoModelForSequenceClassification.from_pretrained(job.checkpoint_path)
    assert model.config.num_labels == 1


def test_dpo_job_registers_its_checkpoint_only_on_success(
    celery_worker, judged_project, wait_until
):
    project = judged_project("dpo-job", PAIRS)
    config = {"max_steps": 4, "learning_rate": 1e-3}
    job_id = _start(project, "dpo", config)
    versions_while_running = set()

    def no_version_until_done(job: TrainingJob) -> bool:
        if job.status not in TrainingJob.FINISHED:
            versions_while_running.update(ModelVersion.objects.values_list("pk", flat=True))
            return False
        return True

    job = wait_until(job_id, celery_worker, no_version_until_done)

    assert job.status == TrainingJob.Status.SUCCEEDED, f"{job.error}\n{job.log_tail}"
    assert not versions_while_running
    version = job.registered_version
    assert version.model_name == job.checkpoint_path and version.kind == "checkpoint"
    assert version.endpoint.name == settings.TRAINING_REGISTER_ENDPOINT == "local"
    assert job.metrics["ref_logps_cache"] == "miss"  # computed once, kept for the next job
    assert list((celery_worker.directory / "ref-logps").glob("ref-logps-*.json"))
    assert job.metrics["eval_rows"] >= 1  # jobs hold out 10% of prompts by default

    # The embedded server (unpinned, as `make run` starts it) answers for the new checkpoint.
    with local_model_server(settings.TINY_POLICY_DIR, _free_port(), pinned=False) as base_url:
        request = urllib.request.Request(
            f"{base_url}/chat/completions",
            json.dumps(
                {
                    "model": version.model_name,
                    "messages": [{"role": "user", "content": "Hello?"}],
                    "max_tokens": 4,
                }
            ).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as reply:
            answer = json.load(reply)
    assert answer["model"] == version.model_name and answer["choices"][0]["message"]["content"]


def test_a_failing_recipe_fails_the_job(celery_worker, judged_project, wait_finished):
    project = judged_project("rm-fails", PAIRS)
    config = {"margin": "strength", "margin_by_strength": {"99": 1.0}}
    job = wait_finished(_start(project, "reward_model", config), celery_worker)

    assert job.status == TrainingJob.Status.FAILED
    assert "exited with code 1" in job.error and "no margin for strength" in job.error
    assert "Traceback" in job.log_tail
    assert job.checkpoint_path == "" and not ModelVersion.objects.exists()


def test_killing_the_recipe_fails_the_job_and_registers_nothing(
    celery_worker, judged_project, wait_training, wait_finished, recipe_processes, kill
):
    project = judged_project("killed", PAIRS)
    job = wait_training(_start(project, "dpo", LONG_DPO), celery_worker)
    pids = recipe_processes(job)
    assert pids, "found no recipe process to kill"
    for pid in pids:
        kill(pid)

    job = wait_finished(job.pk, celery_worker, timeout=60)

    assert job.status == TrainingJob.Status.FAILED
    assert "killed by signal 9" in job.error
    assert job.registered_version is None and not ModelVersion.objects.exists()
    workdir = _workdir(celery_worker, job)
    assert not (workdir / "checkpoint").exists()
    assert not (workdir / "checkpoint.tmp").exists()  # the half-written run is cleared


def test_cancel_stops_the_running_recipe(
    celery_worker, judged_project, wait_training, recipe_processes, processes_gone
):
    project = judged_project("cancelled", PAIRS)
    tasks_before = celery_worker.tasks_done()
    job = wait_training(_start(project, "dpo", LONG_DPO), celery_worker)
    pids = recipe_processes(job)
    assert pids

    client = APIClient()
    client.force_authenticate(member(project, Role.RESEARCHER, username="canceller"))
    response = client.post(f"/api/v1/training-jobs/{job.pk}/cancel/")

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert processes_gone(pids), "the recipe kept running after the cancel"
    _wait_task_returned(celery_worker, tasks_before)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.CANCELLED and job.log_tail
    assert job.registered_version is None and not ModelVersion.objects.exists()
    assert not (_workdir(celery_worker, job) / "checkpoint.tmp").exists()


def _wait_task_returned(worker, before: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while worker.tasks_done() <= before:
        assert time.monotonic() < deadline, worker.text()[-3000:]
        time.sleep(0.2)
