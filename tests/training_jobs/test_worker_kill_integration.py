"""A worker SIGKILLed mid-job: its recipe dies with it and the reaper fails the job.

Its own worker (the test kills it), so this lives apart from the module-wide worker's tests.
"""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from annotation.models import Role
from factories import member
from models_serving.models import ModelVersion
from training_jobs import services
from training_jobs.models import TrainingJob

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_killed_worker_leaves_a_failed_job_and_no_version(
    own_worker, judged_project, wait_training, recipe_processes, processes_gone, kill, settings
):
    project = judged_project("worker-killed", 8)
    client = APIClient()
    client.force_authenticate(member(project, Role.RESEARCHER))
    response = client.post(
        "/api/v1/training-jobs/",
        {"project": project.slug, "kind": "dpo", "config": {"max_steps": 100_000}},
        format="json",
    )
    assert response.status_code == 201, response.content
    job = wait_training(response.json()["id"], own_worker)
    pids = recipe_processes(job)
    assert pids

    kill(own_worker.process.pid)

    assert processes_gone(pids, timeout=15), "the recipe outlived its worker"
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.RUNNING  # nobody is left to say otherwise
    later = job.heartbeat_at + timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT + 1)
    assert services.training_jobs_reap_stale(now=later) == 1
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.FAILED and job.error == services.STALE_ERROR
    assert job.registered_version is None and not ModelVersion.objects.exists()
    assert not list(own_worker.training_dir.glob(f"job-{job.pk}-*/checkpoint"))
