"""Training triggers: start a project's jobs on a cron schedule or when a round closes.

A schedule trigger owns a django-celery-beat PeriodicTask that calls
``training_jobs.tasks.run_trigger``; it is created, changed and deleted in the same
transaction as the trigger, so beat (DatabaseScheduler) never runs a schedule whose trigger
is gone or was never saved. Each check decides per kind, writes what it started or why it
started nothing into the trigger, and is safe to run twice: the second run finds the first
one's jobs queued and records that.
"""

import functools
import json
import zoneinfo
from typing import Any

from celery.schedules import crontab
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_celery_beat import validators
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from annotation.answers import InvalidInput
from annotation.models import Judgment, Project, Round

from . import services
from .job_config import job_config_validate
from .models import TrainingJob, TrainingTrigger

TASK_NAME = "training_jobs.tasks.run_trigger"
KIND_ORDER = [TrainingJob.Kind.REWARD_MODEL, TrainingJob.Kind.DPO]
EDITABLE = [
    "name",
    "when",
    "cron",
    "cron_timezone",
    "kinds",
    "min_new_judgments",
    "config",
    "enabled",
]
# Standard crontab order; django-celery-beat's validator for each (index into its five slots).
CRON_PARTS = ["minute", "hour", "day_of_month", "month_of_year", "day_of_week"]


# --- editing ---------------------------------------------------------------------------------


def trigger_clean(values: dict[str, Any]) -> dict[str, Any]:
    """All editable fields, checked and normalised; InvalidInput names the first bad field."""
    cleaned = dict(values)
    kinds = values["kinds"]
    if not isinstance(kinds, list) or not kinds or not set(kinds) <= set(KIND_ORDER):
        raise InvalidInput("kinds", f"give one or more of {', '.join(KIND_ORDER)}")
    cleaned["kinds"] = [kind for kind in KIND_ORDER if kind in kinds]  # the reward model first
    cleaned["config"] = _config_clean(values["config"])
    if values["when"] not in TrainingTrigger.When.values:
        raise InvalidInput("when", f"choose from {', '.join(TrainingTrigger.When.values)}")
    if values["cron_timezone"] not in _time_zones():
        raise InvalidInput("cron_timezone", f"no time zone {values['cron_timezone']!r}")
    cleaned["cron"] = " ".join(cron_parse(values["cron"]).values())
    if not isinstance(values["min_new_judgments"], int) or values["min_new_judgments"] < 1:
        raise InvalidInput("min_new_judgments", "give a whole number of at least 1")
    return cleaned


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())  # reads the tz database from disk


def cron_parse(cron: str) -> dict[str, str]:
    """'0 3 * * *' → CrontabSchedule's fields; InvalidInput('cron') says which part is wrong."""
    parts = str(cron).split()
    if len(parts) != len(CRON_PARTS):
        raise InvalidInput(
            "cron", "give five parts: minute hour day-of-month month day-of-week, e.g. '0 3 * * *'"
        )
    for name, value in zip(CRON_PARTS, parts, strict=True):
        if len(value) > CrontabSchedule._meta.get_field(name).max_length:
            raise InvalidInput("cron", f"{name.replace('_', ' ')}: {value!r} is too long")
        try:
            getattr(validators, f"{name}_validator")(value)
            crontab(**{name: value})  # what beat will run; stricter on some ranges ("7")
        except ValidationError as exc:
            raise InvalidInput("cron", f"{name.replace('_', ' ')}: {exc.messages[0]}") from exc
        except ValueError as exc:
            raise InvalidInput("cron", f"{name.replace('_', ' ')}: {exc}") from exc
    return dict(zip(CRON_PARTS, parts, strict=True))


def _config_clean(config: object) -> dict[str, dict]:
    if not isinstance(config, dict):
        raise InvalidInput("config", 'give recipe settings by kind, e.g. {"dpo": {"beta": 0.1}}')
    cleaned = {}
    for kind, overrides in config.items():
        if kind not in KIND_ORDER:
            raise InvalidInput(f"config.{kind}", f"not a job kind; choose from {KIND_ORDER}")
        try:
            cleaned[kind] = job_config_validate(kind=kind, config=overrides)
        except InvalidInput as exc:  # "config.beta" → "config.dpo.beta"
            raise InvalidInput(exc.field.replace("config", f"config.{kind}", 1), str(exc)) from exc
    return cleaned


def trigger_create(*, project: Project, created_by, **fields: Any) -> TrainingTrigger:
    trigger = TrainingTrigger(project=project, created_by=created_by)
    return trigger_update(trigger=trigger, **fields)


def trigger_update(*, trigger: TrainingTrigger, **fields: Any) -> TrainingTrigger:
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "not a setting of triggers")
    current = {name: getattr(trigger, name) for name in EDITABLE}
    for name, value in trigger_clean({**current, **fields}).items():
        setattr(trigger, name, value)
    trigger_save(trigger=trigger)
    return trigger


def trigger_save(*, trigger: TrainingTrigger) -> None:
    """Save an already cleaned trigger and its beat schedule together."""
    with transaction.atomic():
        trigger.save()
        _schedule_sync(trigger)


def trigger_delete(*, trigger: TrainingTrigger) -> None:
    with transaction.atomic():
        trigger.delete()  # and its PeriodicTask: see trigger_deleted


def trigger_deleted(sender, instance: TrainingTrigger, **kwargs) -> None:
    """post_delete: however a trigger goes (API, admin bulk delete, its project's cascade),
    its schedule goes too, so beat never fires for a trigger that is not there."""
    if instance.periodic_task_id:
        # django-celery-beat's own delete signals tell beat the schedule changed.
        PeriodicTask.objects.filter(pk=instance.periodic_task_id).delete()


def _schedule_sync(trigger: TrainingTrigger) -> None:
    """The PeriodicTask that beat runs: present, on the trigger's cron, for schedule triggers."""
    task = trigger.periodic_task
    if trigger.when != TrainingTrigger.When.SCHEDULE:
        if task is not None:
            trigger.periodic_task = None
            trigger.save(update_fields=["periodic_task"])
            task.delete()
        return
    fields = {**cron_parse(trigger.cron), "timezone": trigger.cron_timezone}
    crontab = CrontabSchedule.objects.filter(**fields).first()
    crontab = crontab or CrontabSchedule.objects.create(**fields)
    task = task or PeriodicTask(name=f"training trigger {trigger.pk}", task=TASK_NAME)
    task.crontab = crontab
    task.args = json.dumps([trigger.pk])
    task.enabled = trigger.enabled
    task.description = f"{trigger.project.slug}: {trigger.name or 'training trigger'}"[:200]
    task.save()  # PeriodicTask.save() tells beat the schedule changed
    if trigger.periodic_task_id != task.pk:
        trigger.periodic_task = task
        trigger.save(update_fields=["periodic_task"])


# --- running ---------------------------------------------------------------------------------


def trigger_reason(
    *, kind: str, new_judgments: int, needed: int, since_job: int | None, busy: TrainingJob | None
) -> str | None:
    """Why a kind does not train now, or None when it should (the policy, kept pure)."""
    if busy is not None:
        return f"{kind} job {busy.pk} is still {busy.status}"
    if new_judgments < needed:
        since = f"since job {since_job}" if since_job else f"and no {kind} job yet"
        return f"{new_judgments} new judgments {since}, needs {needed}"
    return None


def _kind_reason(trigger: TrainingTrigger, kind: str) -> str | None:
    jobs = TrainingJob.objects.filter(project=trigger.project_id, kind=kind)
    busy = jobs.filter(status__in=[TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING])
    # Only a job that produced a model has seen its data: a failed one's judgments are new still.
    last = (
        jobs.filter(status=TrainingJob.Status.SUCCEEDED, judgment_max_id__isnull=False)
        .order_by("-judgment_max_id", "-pk")
        .first()
    )
    judgments = Judgment.objects.filter(task__project=trigger.project_id)
    if last is not None:
        judgments = judgments.filter(pk__gt=last.judgment_max_id)
    return trigger_reason(
        kind=kind,
        new_judgments=judgments.count(),
        needed=trigger.min_new_judgments,
        since_job=last.pk if last else None,
        busy=busy.order_by("pk").first(),
    )


def trigger_run(
    *, trigger_id: int, round_id: int | None = None, scheduled: bool = False
) -> TrainingTrigger | None:
    """Check the trigger now: start the kinds that have enough new data, record the rest.

    ``scheduled`` runs come from beat and do nothing for a disabled trigger; "run now" does
    not ask. With ``round_id`` (a round of the project closed) a round that trains on close
    gets its jobs through services.training_round_start, so the round still advances.
    """
    with transaction.atomic():
        # The row lock serialises two checks of one trigger (beat twice, beat + run now).
        trigger = (
            TrainingTrigger.objects.select_for_update(of=("self",))
            .select_related("project")
            .filter(pk=trigger_id)
            .first()
        )
        if trigger is None or (scheduled and not trigger.enabled):
            return trigger
        reasons = {kind: _kind_reason(trigger, kind) for kind in trigger.kinds}
        ready = [kind for kind, reason in reasons.items() if reason is None]
        round_ = Round.objects.get(pk=round_id) if round_id else None
        try:
            with transaction.atomic():  # all of the check's jobs, or none
                jobs = _start(trigger, ready, round_) if ready else []
            result = _describe(reasons, ready, jobs, round_)
        except InvalidInput as exc:  # settings.TRAINING_ROUND_CONFIG and the overrides clash
            jobs, result = [], f"failed: {exc.field}: {exc}"
        trigger.last_checked_at = timezone.now()
        trigger.last_result = result
        trigger.save(update_fields=["last_checked_at", "last_result"])
        if jobs:
            trigger.last_jobs.set(jobs)
    return trigger


def _start(trigger: TrainingTrigger, kinds: list[str], round_: Round | None) -> list[TrainingJob]:
    if round_ is not None and round_.train_on_close:
        return services.training_round_start(round_id=round_.pk, kinds=kinds, config=trigger.config)
    return [
        services.training_job_create(
            project=trigger.project,
            created_by=trigger.created_by,
            config=trigger.config.get(kind, {}),
            kind=kind,
        )
        for kind in kinds
    ]


def _describe(
    reasons: dict[str, str | None], ready: list[str], jobs: list[TrainingJob], round_: Round | None
) -> str:
    parts = []
    if jobs:
        ids = ",".join(str(job.pk) for job in jobs)
        parts.append(f"started job{'s' if len(jobs) > 1 else ''} {ids}")
    elif ready:  # only a round can refuse: another listener moved it on first
        parts.append("started nothing: the round is no longer closed")
    parts += [f"skipped {kind}: {reason}" for kind, reason in reasons.items() if reason]
    prefix = f"round {round_.name} closed: " if round_ is not None else ""
    return prefix + "; ".join(parts)


def triggers_round_closed(*, round_id: int) -> None:
    """A round closed: the project's round-close triggers decide; without one, the round does.

    A round with ``train_on_close`` trains under the trigger's kinds, config and minimum (and
    stays closed, with the reason on the trigger, when there is too little new data).
    """
    project_id = Round.objects.values_list("project_id", flat=True).get(pk=round_id)
    found = TrainingTrigger.objects.filter(
        project_id=project_id, when=TrainingTrigger.When.ROUND_CLOSED, enabled=True
    )
    trigger_ids = list(found.order_by("pk").values_list("pk", flat=True))
    if not trigger_ids:
        services.training_round_start(round_id=round_id)
        return
    for trigger_id in trigger_ids:
        trigger_run(trigger_id=trigger_id, round_id=round_id)
