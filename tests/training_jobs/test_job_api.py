"""Jobs through the HTTP API and the services, without a worker: create, cancel, register, reap."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import Role
from factories import ProjectFactory, member
from models_serving.models import ModelEndpoint, ModelVersion
from training_jobs import services
from training_jobs.models import TrainingJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(slug="jobs")


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _running(project, kind=TrainingJob.Kind.DPO, **fields) -> TrainingJob:
    now = timezone.now()
    return TrainingJob.objects.create(
        project=project,
        kind=kind,
        status=TrainingJob.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        **fields,
    )


def test_create_takes_the_kind_and_its_own_settings(project, django_capture_on_commit_callbacks):
    researcher = member(project, Role.RESEARCHER)
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        response = _client(researcher).post(
            "/api/v1/training-jobs/",
            {"project": "jobs", "kind": "reward_model", "config": {"margin": "strength"}},
            format="json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["status"], body["config"]) == (
        "reward_model",
        "queued",
        {"margin": "strength"},
    )
    assert len(enqueued) == 1  # the task is sent once the row is committed


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("reward_model", {"beta": 0.1}, "config.beta"),
        ("dpo", {"model_path": "/etc"}, "config.model_path"),
        ("dpo", {"max_steps": -1}, "config.max_steps"),
    ],
)
def test_a_setting_the_recipe_lacks_is_a_400_naming_it(project, kind, config, field):
    researcher = member(project, Role.RESEARCHER)
    response = _client(researcher).post(
        "/api/v1/training-jobs/", {"project": "jobs", "kind": kind, "config": config}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not TrainingJob.objects.exists()


def test_detail_has_progress_history_log_and_version_and_the_list_is_lighter(project):
    researcher = member(project, Role.RESEARCHER)
    endpoint = ModelEndpoint.objects.create(name="e", base_url="http://127.0.0.1:9/v1")
    version = ModelVersion.objects.create(endpoint=endpoint, model_name="/ckpt", label="v")
    job = _running(
        project,
        progress_step=3,
        progress_total=10,
        metrics_history=[{"step": 3, "loss": 0.5}],
        log_tail="step 3",
        registered_version=version,
    )
    detail = _client(researcher).get(f"/api/v1/training-jobs/{job.pk}/").json()
    assert detail["progress_step"] == 3 and detail["progress_total"] == 10
    assert detail["metrics_history"] == [{"step": 3, "loss": 0.5}]
    assert detail["log_tail"] == "step 3" and detail["registered_version"] == version.pk
    [row] = _client(researcher).get("/api/v1/training-jobs/").json()
    assert row["id"] == job.pk and "metrics_history" not in row and "log_tail" not in row


def test_cancel_a_queued_job_then_its_message_does_nothing(project):
    researcher = member(project, Role.RESEARCHER)
    job = TrainingJob.objects.create(project=project)
    response = _client(researcher).post(f"/api/v1/training-jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert not services.training_job_claim(job.pk)
    again = _client(researcher).post(f"/api/v1/training-jobs/{job.pk}/cancel/")
    assert again.status_code == 409


def test_only_the_projects_researchers_cancel(project):
    job = _running(project)
    for user in (member(project, Role.ANNOTATOR), member(ProjectFactory(), Role.RESEARCHER)):
        assert _client(user).post(f"/api/v1/training-jobs/{job.pk}/cancel/").status_code == 404
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.RUNNING


def test_success_registers_a_dpo_checkpoint_on_the_local_endpoint(project, settings):
    settings.MODEL_BASE_URL = "http://127.0.0.1:8011/v1"
    job = _running(project, data_snapshot_id="ab" * 32, judgment_count=8, judgment_max_id=42)
    assert not ModelVersion.objects.exists()

    done = services.training_job_complete(
        job=job, checkpoint=Path("/ckpt/job-1"), metrics={"eval_loss": 0.1}
    )

    assert done
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.SUCCEEDED and job.metrics == {"eval_loss": 0.1}
    version = job.registered_version
    assert version.model_name == job.checkpoint_path == "/ckpt/job-1"
    assert version.kind == ModelVersion.Kind.CHECKPOINT
    assert (version.endpoint.name, version.endpoint.base_url) == ("local", settings.MODEL_BASE_URL)
    assert "ab" * 32 in version.notes


def test_a_reward_model_is_recorded_on_the_job_but_not_registered(project):
    job = _running(project, kind=TrainingJob.Kind.REWARD_MODEL)
    assert services.training_job_complete(job=job, checkpoint=Path("/rm"), metrics={"a": 1})
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.SUCCEEDED and job.checkpoint_path == "/rm"
    assert job.registered_version is None and not ModelVersion.objects.exists()


def test_the_configured_endpoint_gets_the_version(project, settings):
    ModelEndpoint.objects.create(name="vllm-a", base_url="http://vllm:8000/v1")
    settings.TRAINING_REGISTER_ENDPOINT = "vllm-a"
    job = _running(project)
    services.training_job_complete(job=job, checkpoint=Path("/ckpt"), metrics={})
    job.refresh_from_db()
    assert job.registered_version.endpoint.name == "vllm-a"


def test_a_missing_configured_endpoint_is_an_error_not_a_new_endpoint(settings):
    settings.TRAINING_REGISTER_ENDPOINT = "typo"
    with pytest.raises(services.TrainingError, match="typo"):
        services.registration_endpoint()
    assert not ModelEndpoint.objects.exists()


def test_a_job_cancelled_before_success_registers_nothing(project):
    job = _running(project)
    assert services.training_job_cancel(job=job)
    assert not services.training_job_complete(job=job, checkpoint=Path("/ckpt"), metrics={})
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.CANCELLED and job.checkpoint_path == ""
    assert not ModelVersion.objects.exists()


def test_reaper_fails_jobs_without_heartbeat_and_only_those(project, settings):
    settings.TRAINING_HEARTBEAT_TIMEOUT = 60
    stale = _running(project)
    fresh = _running(project)
    queued = TrainingJob.objects.create(project=project)
    TrainingJob.objects.filter(pk=stale.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=61)
    )

    assert services.training_jobs_reap_stale() == 1

    statuses = dict(TrainingJob.objects.values_list("pk", "status"))
    assert statuses == {stale.pk: "failed", fresh.pk: "running", queued.pk: "queued"}
    # The worker, should it still be alive, neither succeeds nor registers afterwards.
    assert not services.training_job_complete(job=stale, checkpoint=Path("/x"), metrics={})
    assert not ModelVersion.objects.exists()
