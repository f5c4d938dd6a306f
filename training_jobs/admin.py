from django.contrib import admin

from . import services
from .models import TrainingJob


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "project",
        "status",
        "progress_step",
        "progress_total",
        "created_at",
    ]
    list_filter = ["status", "kind", "project"]
    fields = [
        "kind",
        "project",
        "config",
        "status",
        "progress_step",
        "progress_total",
        "data_rows",
        "metrics",
        "checkpoint_path",
        "error",
        "log_tail",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    ]
    readonly_fields = [f for f in fields if f not in ("kind", "project", "config")]
    actions = ["requeue"]

    def save_model(self, request, obj, form, change):
        is_new = obj.pk is None
        if is_new:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if is_new:  # creating a job in the admin starts it
            services.training_job_enqueue(obj)

    @admin.action(description="Re-run selected failed/cancelled jobs as new jobs")
    def requeue(self, request, queryset):
        for job in queryset.filter(status__in=TrainingJob.FINISHED):
            services.training_job_create(
                project=job.project, created_by=request.user, config=job.config
            )
