from typing import cast

from django import forms
from django.contrib import admin

from annotation.answers import InvalidInput

from . import services, triggers
from .job_config import job_config_validate
from .models import TrainingJob, TrainingTrigger


class TrainingJobForm(forms.ModelForm):
    class Meta:
        model = TrainingJob
        fields = ["kind", "project", "round", "config"]

    def clean(self) -> dict:
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean returns self.cleaned_data
        if "kind" in cleaned and "config" in cleaned:
            try:
                cleaned["config"] = job_config_validate(
                    kind=cleaned["kind"], config=cleaned["config"] or {}
                )
            except InvalidInput as exc:
                self.add_error("config", f"{exc.field}: {exc}")
        return cleaned


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    form = TrainingJobForm
    list_display = [
        "id",
        "kind",
        "project",
        "status",
        "progress_step",
        "progress_total",
        "registered_version",
        "created_at",
    ]
    list_filter = ["status", "kind", "project"]
    fields = [
        "kind",
        "project",
        "round",
        "config",
        "status",
        "progress_step",
        "progress_total",
        "export",
        "data_snapshot_id",
        "data_rows",
        "judgment_count",
        "judgment_max_id",
        "metrics",
        "checkpoint_path",
        "registered_version",
        "error",
        "log_tail",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    ]
    # fields above is a flat list of names (ModelAdmin's type also allows groups)
    readonly_fields = [f for f in cast(list[str], fields) if f not in TrainingJobForm.Meta.fields]
    actions = ["requeue", "cancel"]

    def get_readonly_fields(self, request, obj=None):
        # A job's recipe and data are fixed once it exists; re-run it as a new job instead.
        return self.fields if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        is_new = obj.pk is None
        if is_new:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if is_new:  # creating a job in the admin starts it
            services.training_job_enqueue(obj)

    @admin.action(description="Re-run selected finished jobs as new jobs")
    def requeue(self, request, queryset):
        for job in queryset.filter(status__in=TrainingJob.FINISHED):
            services.training_job_create(
                project=job.project,
                created_by=request.user,
                config=job.config,
                kind=job.kind,
                round=job.round,
            )

    @admin.action(description="Cancel selected queued or running jobs")
    def cancel(self, request, queryset):
        for job in queryset:
            services.training_job_cancel(job=job)


class TrainingTriggerForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        choices=TrainingJob.Kind.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = TrainingTrigger
        fields = ["project", *triggers.EDITABLE]

    def clean(self) -> dict:
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean returns self.cleaned_data
        if all(name in cleaned for name in triggers.EDITABLE):
            values = {name: cleaned[name] for name in triggers.EDITABLE}
            values["config"] = values["config"] or {}
            try:
                cleaned.update(triggers.trigger_clean(values))
            except InvalidInput as exc:
                field = exc.field.split(".")[0]
                self.add_error(field if field in self.fields else None, f"{exc.field}: {exc}")
        return cleaned


@admin.register(TrainingTrigger)
class TrainingTriggerAdmin(admin.ModelAdmin):
    form = TrainingTriggerForm
    list_display = [
        "id",
        "project",
        "name",
        "when",
        "cron",
        "min_new_judgments",
        "enabled",
        "last_checked_at",
        "last_result",
    ]
    list_filter = ["when", "enabled", "project"]
    readonly_fields = [
        "periodic_task",
        "last_checked_at",
        "last_result",
        "last_jobs",
        "created_by",
        "created_at",
    ]
    actions = ["run_now"]

    def save_model(self, request, obj, form, change):
        if obj.pk is None:
            obj.created_by = request.user
        triggers.trigger_save(trigger=obj)  # with its beat schedule, in one transaction

    @admin.action(description="Check selected triggers now")
    def run_now(self, request, queryset):
        for trigger in queryset:
            triggers.trigger_run(trigger_id=trigger.pk)
