"""The thin training loop on real parts: Postgres, Redis, a Celery worker process, TRL."""

import time
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from annotation import services
from annotation.models import Role
from factories import ProjectFactory, member, pair_task
from training_jobs.models import TrainingJob

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


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
