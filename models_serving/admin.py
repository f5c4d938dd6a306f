from django import forms
from django.contrib import admin

from . import services
from .models import ModelEndpoint, ModelVersion


class ModelEndpointForm(forms.ModelForm):
    # The page never shows the stored key; an empty field keeps it (clear it through the API).
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave blank to keep the current key.",
    )

    class Meta:
        model = ModelEndpoint
        fields = [
            "name",
            "base_url",
            "api_key",
            "kind",
            "supports_n",
            "supports_logprobs",
            "supports_lora",
            "max_concurrency",
            "default_sampling_params",
            "enabled",
        ]

    def clean_api_key(self) -> str:
        return self.cleaned_data["api_key"] or self.instance.api_key


@admin.register(ModelEndpoint)
class ModelEndpointAdmin(admin.ModelAdmin):
    form = ModelEndpointForm
    list_display = ["name", "kind", "base_url", "enabled", "last_health_ok", "last_health_at"]
    list_filter = ["kind", "enabled"]
    readonly_fields = [
        "last_health_ok",
        "last_health_detail",
        "last_health_at",
        "process_pid",
        "process_host",
    ]
    actions = ["check_health"]

    @admin.action(description="Check health of selected endpoints")
    def check_health(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_check_health(endpoint=endpoint)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["label", "endpoint", "model_name", "kind", "status", "enabled", "created_at"]
    list_filter = ["kind", "status", "enabled", "endpoint"]
    list_select_related = ["endpoint"]
    actions = ["make_sampleable"]

    def get_readonly_fields(self, request, obj=None):
        # Completions refer to a version; what it requests stays fixed (VERSION_EDITABLE_FIELDS).
        fixed = ["endpoint", "model_name", "kind", "weights_path"] if obj is not None else []
        return [*fixed, "status", "status_detail"]

    @admin.action(description="Load selected versions on their servers again")
    def make_sampleable(self, request, queryset):
        for version in queryset.select_related("endpoint"):
            services.version_make_sampleable(version=version)
