"""A schedule trigger on real parts: beat's entry sent to a Celery worker, which starts jobs.

The message is sent by django-celery-beat's DatabaseScheduler from the trigger's own
PeriodicTask, as beat does when the cron comes due (waiting for 03:00 is not an option).
The worker checks the trigger and starts both jobs; the first is claimed by the same worker.
"""

import time

import pytest
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery import app
from training_jobs import services, triggers
from training_jobs.models import TrainingJob, TrainingTrigger

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PAIRS = 6


def _fire(trigger: TrainingTrigger) -> None:
    """Send the entry beat builds from the trigger's PeriodicTask, as beat sends a due one."""
    scheduler = DatabaseScheduler(app=app, lazy=True)
    entry = scheduler.Entry(trigger.periodic_task, app=app)
    assert entry.schedule.hour == {3} and entry.schedule.minute == {0}
    scheduler.apply_async(entry, advance=False)


def _checked_after(trigger: TrainingTrigger, since, worker, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trigger.refresh_from_db()
        if trigger.last_checked_at and trigger.last_checked_at != since:
            return trigger
        if worker.process.poll() is not None:
            pytest.fail("celery worker died:\n" + worker.text()[-3000:])
        time.sleep(0.2)
    pytest.fail("the trigger was never checked:\n" + worker.text()[-3000:])


def test_a_scheduled_trigger_fired_by_beat_starts_both_jobs_on_the_worker(
    celery_worker, judged_project, wait_until, wait_finished
):
    project = judged_project("nightly", PAIRS)
    trigger = triggers.trigger_create(
        project=project,
        created_by=None,
        cron="0 3 * * *",
        min_new_judgments=PAIRS,
        config={"dpo": {"max_steps": 2}},
    )

    _fire(trigger)
    trigger = _checked_after(trigger, None, celery_worker)

    reward, dpo = TrainingJob.objects.order_by("pk")
    assert trigger.last_result == f"started jobs {reward.pk},{dpo.pk}"
    assert (reward.kind, dpo.kind, dpo.config) == ("reward_model", "dpo", {"max_steps": 2})
    assert set(trigger.last_jobs.all()) == {reward, dpo}
    # The check ran on the default queue; the job it queued reaches the gpu queue's worker.
    assert "training_jobs.tasks.run_trigger[" in celery_worker.text()
    wait_until(reward.pk, celery_worker, lambda job: job.status != "queued", timeout=60)

    # Training itself is covered by test_job_lifecycle_integration; stop here, and leave the
    # worker idle for the next module.
    for job in (reward, dpo):
        services.training_job_cancel(job=job)
    for job in (reward, dpo):
        assert wait_finished(job.pk, celery_worker, timeout=60).status == "cancelled"
