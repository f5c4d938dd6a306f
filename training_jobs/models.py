from django.conf import settings
from django.db import models
from django.utils import timezone

from annotation.models import ExportSnapshot, Project, Round
from models_serving.models import ModelVersion


class TrainingJob(models.Model):
    """The source of truth for one training run; the broker message only starts it.

    A DPO job's checkpoint is registered as a sampleable ModelVersion in the same transaction
    that marks the job succeeded. A reward model is not a chat model, so it gets no version:
    its checkpoint path and held-out metrics stay on the job.
    """

    class Kind(models.TextChoices):
        DPO = "dpo", "DPO policy"
        REWARD_MODEL = "reward_model", "Bradley-Terry reward model"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DPO)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="training_jobs")
    round = models.ForeignKey(
        Round,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="training_jobs",
        help_text="Trains on this round's judgments only (else all of the project's).",
    )
    export = models.ForeignKey(
        ExportSnapshot,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="training_jobs",
        help_text="The export trained on; its file is the exact data.",
    )
    data_snapshot_id = models.CharField(
        max_length=64, blank=True, default="", help_text="sha256 of the exact training file."
    )
    judgment_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Distinct judgments behind the training rows."
    )
    judgment_max_id = models.BigIntegerField(
        null=True, blank=True, help_text="The newest judgment the training rows cite."
    )
    registered_version = models.OneToOneField(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="produced_by",
        help_text="The checkpoint, registered as a sampleable model version (DPO jobs).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    config = models.JSONField(
        default=dict, blank=True, help_text="Recipe overrides (beta, steps…)."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    data_rows = models.PositiveIntegerField(null=True, blank=True)
    data_path = models.CharField(max_length=1000, blank=True, default="")
    progress_step = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True, help_text="The recipe's metrics.json.")
    metrics_history = models.JSONField(
        default=list, blank=True, help_text="Numbers logged per step (loss…), thinned when long."
    )
    checkpoint_path = models.CharField(max_length=1000, blank=True, default="")
    error = models.TextField(blank=True, default="")
    log_tail = models.TextField(blank=True, default="", help_text="The end of the recipe's stderr.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"


def _both_kinds() -> list[str]:
    return [TrainingJob.Kind.REWARD_MODEL, TrainingJob.Kind.DPO]


class TrainingTrigger(models.Model):
    """Starts a project's training jobs on a cron schedule or when one of its rounds closes.

    Each kind trains only if at least ``min_new_judgments`` judgments arrived since the last
    succeeded job of that kind and none of that kind is queued or running; every check writes
    what it did, or why it did nothing, into ``last_result``. A schedule trigger owns a
    django-celery-beat PeriodicTask (kept in step by training_jobs.triggers).
    """

    class When(models.TextChoices):
        SCHEDULE = "schedule", "On a cron schedule"
        ROUND_CLOSED = "round_closed", "When a round of the project closes"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_triggers")
    name = models.CharField(max_length=200, blank=True, default="")
    when = models.CharField(max_length=16, choices=When.choices, default=When.SCHEDULE)
    cron = models.CharField(
        max_length=100,
        default="0 3 * * *",
        help_text="minute hour day-of-month month day-of-week (schedule triggers).",
    )
    cron_timezone = models.CharField(max_length=64, default="UTC", help_text="The cron's zone.")
    kinds = models.JSONField(default=_both_kinds, help_text="Job kinds to train, in order.")
    min_new_judgments = models.PositiveIntegerField(
        default=1, help_text="Train a kind only after this many judgments since its last job."
    )
    config = models.JSONField(
        default=dict, blank=True, help_text='Recipe overrides by kind: {"dpo": {"beta": 0.1}}.'
    )
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="training_trigger",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_result = models.TextField(blank=True, default="", help_text="What the last check did.")
    last_jobs = models.ManyToManyField(
        TrainingJob, blank=True, related_name="+", help_text="The jobs it started most recently."
    )

    class Meta:
        ordering = ["project_id", "pk"]

    def __str__(self) -> str:
        return f"trigger {self.pk} of {self.project_id} ({self.when})"
