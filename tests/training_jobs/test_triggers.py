"""Training triggers through the services and the HTTP API, without a worker.

Whether a check trains or records why not, the beat schedule that follows the trigger, and
what a closing round does with and without a round-close trigger.
"""

import json

import pytest
from django.conf import settings
from django.db.models import Max
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from annotation import rounds
from annotation.models import Judgment, Role, Round
from factories import ProjectFactory, member
from training_jobs import tasks, triggers
from training_jobs.models import TrainingJob, TrainingTrigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """Job ids handed to the gpu queue (no broker here)."""
    ids: list[int] = []
    monkeypatch.setattr(tasks.run_training_job, "delay", ids.append)
    return ids


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _trigger(project, **fields) -> TrainingTrigger:
    return triggers.trigger_create(project=project, created_by=None, **fields)


def _max_judgment_id(project, upto: int | None = None) -> int:
    judgments = Judgment.objects.filter(task__project=project).order_by("pk")
    if upto is not None:
        return judgments.values_list("pk", flat=True)[upto - 1]
    return judgments.aggregate(top=Max("pk"))["top"]


# --- checks ------------------------------------------------------------------------------------


def test_too_little_data_records_why_and_starts_nothing(judged_project, sent):
    project = judged_project("few", 3)
    trigger = _trigger(project, min_new_judgments=5)

    checked = triggers.trigger_run(trigger_id=trigger.pk)

    assert not TrainingJob.objects.exists() and sent == []
    assert checked.last_checked_at is not None
    assert checked.last_result == (
        "skipped reward_model: 3 new judgments and no reward_model job yet, needs 5; "
        "skipped dpo: 3 new judgments and no dpo job yet, needs 5"
    )
    assert list(checked.last_jobs.all()) == []


def test_new_judgments_count_from_the_last_succeeded_job_of_each_kind(
    judged_project, sent, django_capture_on_commit_callbacks
):
    project = judged_project("since", 6)
    trained = TrainingJob.objects.create(
        project=project,
        kind="reward_model",
        status="succeeded",
        judgment_max_id=_max_judgment_id(project, upto=4),
    )
    # A failed job produced no model: the judgments it exported still count as new.
    TrainingJob.objects.create(
        project=project, kind="reward_model", status="failed", judgment_max_id=99_999_999
    )
    trigger = _trigger(project, kinds=["reward_model", "dpo"], min_new_judgments=3)

    with django_capture_on_commit_callbacks(execute=True):
        triggers.trigger_run(trigger_id=trigger.pk)

    trigger.refresh_from_db()
    [dpo] = TrainingJob.objects.filter(status="queued")
    assert dpo.kind == "dpo"  # 6 new for dpo (no job yet), 2 for the reward model
    assert trigger.last_result == (
        f"started job {dpo.pk}; skipped reward_model: 2 new judgments since job {trained.pk}, "
        "needs 3"
    )
    assert list(trigger.last_jobs.all()) == [dpo] and sent == [dpo.pk]


def test_enough_data_starts_each_kind_with_its_configured_settings(
    judged_project, sent, django_capture_on_commit_callbacks
):
    project = judged_project("enough", 3)
    owner = member(project, Role.RESEARCHER)
    trigger = triggers.trigger_create(
        project=project,
        created_by=owner,
        min_new_judgments=3,
        config={"dpo": {"beta": 0.3, "max_steps": 5}, "reward_model": {"margin": "strength"}},
    )

    with django_capture_on_commit_callbacks(execute=True):
        triggers.trigger_run(trigger_id=trigger.pk)

    reward, dpo = TrainingJob.objects.order_by("pk")
    assert (reward.kind, reward.config) == ("reward_model", {"margin": "strength"})
    assert (dpo.kind, dpo.config) == ("dpo", {"beta": 0.3, "max_steps": 5})
    assert {reward.status, dpo.status} == {"queued"}
    assert reward.round is None and reward.created_by == owner
    assert sent == [reward.pk, dpo.pk]  # queued after the commit
    trigger.refresh_from_db()
    assert trigger.last_result == f"started jobs {reward.pk},{dpo.pk}"
    assert set(trigger.last_jobs.all()) == {reward, dpo}


def test_a_queued_or_running_job_of_the_kind_is_not_joined_by_another(
    judged_project, sent, django_capture_on_commit_callbacks
):
    project = judged_project("busy", 3)
    running = TrainingJob.objects.create(project=project, kind="dpo", status="running")
    trigger = _trigger(project)

    with django_capture_on_commit_callbacks(execute=True):
        triggers.trigger_run(trigger_id=trigger.pk)
        # Beat delivering the same check again: the reward model job it started is queued.
        again = triggers.trigger_run(trigger_id=trigger.pk)

    reward = TrainingJob.objects.get(kind="reward_model")
    assert TrainingJob.objects.count() == 2
    assert again.last_result == (
        f"skipped reward_model: reward_model job {reward.pk} is still queued; "
        f"skipped dpo: dpo job {running.pk} is still running"
    )
    assert list(again.last_jobs.all()) == [reward]  # the jobs it started most recently
    assert sent == [reward.pk]


def test_beat_leaves_a_disabled_trigger_alone_but_run_now_checks_it(
    judged_project, sent, django_capture_on_commit_callbacks
):
    project = judged_project("off", 2)
    trigger = _trigger(project, enabled=False)

    tasks.run_trigger(trigger.pk)
    trigger.refresh_from_db()
    assert trigger.last_checked_at is None and not TrainingJob.objects.exists()

    researcher = member(project, Role.RESEARCHER)
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(researcher).post(f"/api/v1/training-triggers/{trigger.pk}/run-now/")
    assert response.status_code == 200
    assert response.json()["last_result"].startswith("started jobs ")
    assert len(response.json()["last_jobs"]) == 2 and len(sent) == 2


def test_a_missing_trigger_is_nothing_to_run():
    assert tasks.run_trigger(123_456) is None


# --- the beat schedule -------------------------------------------------------------------------


def test_the_periodic_task_is_created_changed_and_deleted_with_the_trigger():
    project = ProjectFactory()
    trigger = _trigger(project, name="nightly", cron="30 2 * * 1-5", cron_timezone="Europe/Paris")

    task = PeriodicTask.objects.get()
    assert trigger.periodic_task == task
    assert (task.task, json.loads(task.args), task.enabled) == (
        "training_jobs.tasks.run_trigger",
        [trigger.pk],
        True,
    )
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year) == (
        "30",
        "2",
        "*",
        "*",
    )
    assert (crontab.day_of_week, str(crontab.timezone)) == ("1-5", "Europe/Paris")

    triggers.trigger_update(trigger=trigger, cron="0 */6 * * *", enabled=False)
    task.refresh_from_db()
    assert PeriodicTask.objects.get() == task  # the same row, changed
    assert (task.crontab.minute, task.crontab.hour, task.enabled) == ("0", "*/6", False)

    triggers.trigger_update(trigger=trigger, when="round_closed")
    assert not PeriodicTask.objects.exists() and trigger.periodic_task is None
    triggers.trigger_update(trigger=trigger, when="schedule")
    assert PeriodicTask.objects.get().crontab.hour == "*/6"

    triggers.trigger_delete(trigger=trigger)
    assert not PeriodicTask.objects.exists() and not TrainingTrigger.objects.exists()


def test_a_trigger_deleted_with_its_project_takes_its_schedule_along():
    project = ProjectFactory()
    _trigger(project)
    _trigger(project, cron="0 12 * * *")
    assert PeriodicTask.objects.count() == 2

    project.delete()

    assert not TrainingTrigger.objects.exists() and not PeriodicTask.objects.exists()


@pytest.mark.django_db(transaction=True)  # the scheduler commits and recycles connections
def test_beat_database_scheduler_has_the_trigger_and_the_static_entries():
    from django_celery_beat.schedulers import DatabaseScheduler

    from config.celery import app

    # The scheduler only loads crons with a plain hour within two hours of now; "*/6" always.
    trigger = _trigger(ProjectFactory(), cron="15 */6 * * *")
    schedule = DatabaseScheduler(app=app).schedule

    entry = schedule[f"training trigger {trigger.pk}"]
    assert (entry.task, list(entry.args)) == ("training_jobs.tasks.run_trigger", [trigger.pk])
    assert entry.schedule.hour == {0, 6, 12, 18} and entry.schedule.minute == {15}
    for name, static in settings.CELERY_BEAT_SCHEDULE.items():
        assert schedule[name].task == static["task"]


# --- a closing round ---------------------------------------------------------------------------


def _close(project, django_capture_on_commit_callbacks, **fields) -> Round:
    round_ = Round.objects.create(project=project, name="r1", status="collecting", **fields)
    with django_capture_on_commit_callbacks(execute=True):
        assert rounds.round_close(round=round_, reason="by hand")
    round_.refresh_from_db()
    return round_


def test_without_a_trigger_a_round_that_trains_on_close_starts_both_jobs(
    judged_project, sent, django_capture_on_commit_callbacks
):
    project = judged_project("plain-round", 2)
    round_ = _close(project, django_capture_on_commit_callbacks, train_on_close=True)

    assert round_.status == "training"
    jobs = {job.kind: job for job in TrainingJob.objects.filter(round=round_)}
    assert set(jobs) == {"reward_model", "dpo"}
    assert jobs["dpo"].config == settings.TRAINING_ROUND_CONFIG["dpo"]


def test_a_round_close_trigger_applies_its_kinds_settings_and_minimum(
    judged_project, sent, django_capture_on_commit_callbacks
):
    project = judged_project("trigger-round", 2)
    trigger = _trigger(project, when="round_closed", kinds=["dpo"], config={"dpo": {"beta": 0.2}})
    round_ = _close(project, django_capture_on_commit_callbacks, train_on_close=True)

    [dpo] = TrainingJob.objects.all()
    assert (dpo.kind, dpo.round, round_.status) == ("dpo", round_, "training")
    assert dpo.config == {**settings.TRAINING_ROUND_CONFIG["dpo"], "beta": 0.2}
    trigger.refresh_from_db()
    assert trigger.last_result == f"round r1 closed: started job {dpo.pk}"


def test_a_round_close_trigger_with_too_little_data_leaves_the_round_closed(
    judged_project, sent, django_capture_on_commit_callbacks
):
    project = judged_project("thin-round", 2)
    trigger = _trigger(project, when="round_closed", kinds=["reward_model"], min_new_judgments=10)
    round_ = _close(project, django_capture_on_commit_callbacks, train_on_close=True)

    assert round_.status == "closed" and not TrainingJob.objects.exists()
    trigger.refresh_from_db()
    assert trigger.last_result == (
        "round r1 closed: skipped reward_model: 2 new judgments and no reward_model job yet, "
        "needs 10"
    )


def test_overrides_that_clash_with_the_round_settings_are_recorded_not_raised(
    judged_project, sent, django_capture_on_commit_callbacks, settings
):
    settings.TRAINING_ROUND_CONFIG = {"dpo": {"loss_type": "robust", "label_smoothing": 0.1}}
    project = judged_project("clash-round", 2)
    trigger = _trigger(
        project, when="round_closed", kinds=["dpo"], config={"dpo": {"loss_type": "sigmoid"}}
    )
    round_ = _close(project, django_capture_on_commit_callbacks, train_on_close=True)

    assert round_.status == "closed" and not TrainingJob.objects.exists()
    trigger.refresh_from_db()
    assert trigger.last_result.startswith("failed: config.label_smoothing: ")


def test_a_round_close_trigger_trains_on_the_project_when_the_round_does_not(
    judged_project, sent, django_capture_on_commit_callbacks
):
    project = judged_project("project-round", 2)
    _trigger(project, when="round_closed", kinds=["reward_model"])
    round_ = _close(project, django_capture_on_commit_callbacks, train_on_close=False)

    [reward] = TrainingJob.objects.all()
    assert reward.round is None and round_.status == "closed"


# --- the API -----------------------------------------------------------------------------------


def test_create_through_the_api_takes_defaults_and_schedules_it():
    project = ProjectFactory(slug="api-triggers")
    researcher = member(project, Role.RESEARCHER)

    response = _client(researcher).post(
        "/api/v1/projects/api-triggers/training-triggers/",
        {"name": "nightly", "min_new_judgments": 50},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["when"] == "schedule" and body["cron"] == "0 3 * * *"
    assert body["kinds"] == ["reward_model", "dpo"] and body["project"] == "api-triggers"
    trigger = TrainingTrigger.objects.get(pk=body["id"])
    assert trigger.created_by == researcher and trigger.periodic_task.crontab.hour == "3"
    listed = _client(researcher).get("/api/v1/projects/api-triggers/training-triggers/").json()
    assert [t["id"] for t in listed] == [body["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "0 3 * *"}, "cron"),
        ({"cron": "0 3 * * funday"}, "cron"),
        ({"cron": "0 3 * * 7"}, "cron"),  # django-celery-beat allows it, celery does not
        ({"cron": "0 3 * * " + ",".join(["1"] * 40)}, "cron"),  # longer than its column
        ({"cron_timezone": "Mars/Olympus"}, "cron_timezone"),
        ({"when": "hourly"}, "when"),
        ({"kinds": []}, "kinds"),
        ({"kinds": ["ppo"]}, "kinds"),
        ({"min_new_judgments": 0}, "min_new_judgments"),
        ({"config": "beta=0.1"}, "config"),
        ({"config": {"ppo": {}}}, "config.ppo"),
        ({"config": {"dpo": {"beta": -1}}}, "config.dpo.beta"),
        ({"config": {"reward_model": {"beta": 0.1}}}, "config.reward_model.beta"),
        ({"config": {"dpo": "fast"}}, "config.dpo"),
    ],
)
def test_bad_settings_are_a_400_naming_the_field(body, field):
    project = ProjectFactory(slug="bad-triggers")
    client = _client(member(project, Role.RESEARCHER))

    created = client.post("/api/v1/projects/bad-triggers/training-triggers/", body, format="json")
    assert created.status_code == 400, created.content
    assert list(created.json()["errors"]) == [field]
    assert not TrainingTrigger.objects.exists() and not PeriodicTask.objects.exists()

    trigger = _trigger(project, cron="5 1 * * *")
    patched = client.patch(f"/api/v1/training-triggers/{trigger.pk}/", body, format="json")
    assert patched.status_code == 400, patched.content
    assert list(patched.json()["errors"]) == [field]
    trigger.refresh_from_db()
    assert trigger.cron == "5 1 * * *" and trigger.periodic_task.crontab.hour == "1"


def test_patch_moves_the_schedule_and_delete_removes_it():
    project = ProjectFactory(slug="edit-triggers")
    client = _client(member(project, Role.RESEARCHER))
    trigger = _trigger(project)

    response = client.patch(
        f"/api/v1/training-triggers/{trigger.pk}/",
        {"cron": "0  22 * * 0", "min_new_judgments": 7},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert (response.json()["cron"], response.json()["min_new_judgments"]) == ("0 22 * * 0", 7)
    assert PeriodicTask.objects.get().crontab.hour == "22"

    assert client.delete(f"/api/v1/training-triggers/{trigger.pk}/").status_code == 204
    assert not TrainingTrigger.objects.exists() and not PeriodicTask.objects.exists()


def test_other_projects_and_annotators_see_no_triggers():
    project = ProjectFactory(slug="mine")
    trigger = _trigger(project)
    _trigger(ProjectFactory(slug="theirs"))
    researcher = member(project, Role.RESEARCHER)
    annotator = member(project, Role.ANNOTATOR)

    theirs = _client(researcher).get("/api/v1/projects/theirs/training-triggers/")
    assert theirs.status_code == 404
    other = TrainingTrigger.objects.exclude(pk=trigger.pk).get()
    assert _client(researcher).get(f"/api/v1/training-triggers/{other.pk}/").status_code == 404
    assert _client(annotator).get(f"/api/v1/training-triggers/{trigger.pk}/").status_code == 404
    assert _client(annotator).delete(f"/api/v1/training-triggers/{trigger.pk}/").status_code == 404
    assert TrainingTrigger.objects.count() == 2


# --- the admin ---------------------------------------------------------------------------------


def test_the_admin_checks_a_trigger_like_the_api_and_schedules_it(client):
    from factories import UserFactory

    project = ProjectFactory()
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    form = {
        "project": project.pk,
        "name": "nightly",
        "when": "schedule",
        "cron": "0 2 * * *",
        "cron_timezone": "UTC",
        "kinds": ["dpo"],
        "min_new_judgments": 20,
        "config": '{"dpo": {"beta": 5000}}',
        "enabled": "on",
    }

    refused = client.post("/admin/training_jobs/trainingtrigger/add/", form)
    assert refused.status_code == 200 and b"config.dpo.beta" in refused.content
    assert not TrainingTrigger.objects.exists()

    form["config"] = '{"dpo": {"beta": 0.5}}'
    saved = client.post("/admin/training_jobs/trainingtrigger/add/", form)
    assert saved.status_code == 302, saved.content[:2000]
    trigger = TrainingTrigger.objects.get()
    assert (trigger.kinds, trigger.config, trigger.created_by) == (
        ["dpo"],
        {"dpo": {"beta": 0.5}},
        admin_user,
    )
    assert trigger.periodic_task.crontab.hour == "2"
    assert (
        client.get(f"/admin/training_jobs/trainingtrigger/{trigger.pk}/change/").status_code == 200
    )
