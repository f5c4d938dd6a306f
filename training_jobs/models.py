from django.conf import settings
from django.db import models
from django.utils import timezone

from annotation.models import Project


class TrainingJob(models.Model):
    """The source of truth for one training run; the broker message only starts it."""

    class Kind(models.TextChoices):
        DPO = "dpo", "DPO policy"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DPO)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="training_jobs")
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
    metrics = models.JSONField(default=dict, blank=True)
    metrics_history = models.JSONField(default=list, blank=True)
    checkpoint_path = models.CharField(max_length=1000, blank=True, default="")
    error = models.TextField(blank=True, default="")
    log_tail = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"
