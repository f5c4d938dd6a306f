from django.contrib import admin

from .models import Assignment, Completion, Judgment, Membership, Project, Prompt, Task


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "overlap", "guidelines_version", "created_at"]
    inlines = [MembershipInline]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "external_id", "created_at"]
    list_filter = ["project"]


@admin.register(Completion)
class CompletionAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "candidate_index", "model_name", "finish_reason", "latency_ms"]
    list_select_related = ["prompt"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "prompt", "overlap", "slots_taken"]
    list_filter = ["project"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "annotator", "status", "expires_at"]
    list_filter = ["status"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "annotator", "choice", "strength", "created_at"]
    readonly_fields = [f.name for f in Judgment._meta.fields]
