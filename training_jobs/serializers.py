from typing import TYPE_CHECKING

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from annotation.serializers import refuse_nul_in_json

from .job_config import DPOConfigSerializer, RewardModelConfigSerializer
from .models import TrainingJob, TrainingTrigger

if TYPE_CHECKING:
    from annotation.models import Project


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="TrainingJobConfig",
        serializers=[DPOConfigSerializer, RewardModelConfigSerializer],
        resource_type_field_name=None,
    )
)
class TrainingJobConfigField(serializers.DictField):
    """Recipe overrides; which fields are allowed depends on `kind` (checked by the service)."""


class TrainingJobCreateSerializer(serializers.Serializer):
    project = serializers.SlugField()
    kind = serializers.ChoiceField(choices=TrainingJob.Kind.choices, default=TrainingJob.Kind.DPO)
    config = TrainingJobConfigField(required=False, default=dict)


class TrainingJobSerializer(serializers.ModelSerializer):
    project: "serializers.SlugRelatedField[Project]" = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = TrainingJob
        fields = [
            "id",
            "kind",
            "project",
            "status",
            "config",
            "round",
            "export",
            "data_snapshot_id",
            "data_rows",
            "judgment_count",
            "judgment_max_id",
            "progress_step",
            "progress_total",
            "metrics",
            "metrics_history",
            "checkpoint_path",
            "registered_version",
            "error",
            "log_tail",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        ]
        read_only_fields = fields


class TrainingJobSummarySerializer(TrainingJobSerializer):
    """A list row: the job without its per-step history and log."""

    class Meta(TrainingJobSerializer.Meta):
        fields = [
            f for f in TrainingJobSerializer.Meta.fields if f not in ("metrics_history", "log_tail")
        ]
        read_only_fields = fields


class TrainingTriggerConfigSerializer(serializers.Serializer):
    """Recipe overrides by job kind (the schema of a trigger's `config`)."""

    reward_model = RewardModelConfigSerializer(required=False)
    dpo = DPOConfigSerializer(required=False)


@extend_schema_field(TrainingTriggerConfigSerializer)
class TrainingTriggerConfigField(serializers.DictField):
    """Checked by the service, so a bad setting is a 400 naming `config.<kind>.<setting>`."""


class TrainingTriggerWriteSerializer(serializers.Serializer):
    """Create takes the model's defaults for what is left out; patch changes what is given."""

    name = serializers.CharField(
        max_length=200, allow_blank=True, required=False, validators=[refuse_nul_in_json]
    )
    when = serializers.ChoiceField(choices=TrainingTrigger.When.choices, required=False)
    cron = serializers.CharField(
        max_length=100,
        required=False,
        validators=[refuse_nul_in_json],
        help_text="minute hour day-of-month month day-of-week, e.g. '0 3 * * *' (nightly).",
    )
    cron_timezone = serializers.CharField(
        max_length=64, required=False, validators=[refuse_nul_in_json]
    )
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=TrainingJob.Kind.choices),
        min_length=1,
        max_length=len(TrainingJob.Kind.choices),
        required=False,
    )
    min_new_judgments = serializers.IntegerField(min_value=1, max_value=100_000_000, required=False)
    config = TrainingTriggerConfigField(required=False, validators=[refuse_nul_in_json])
    enabled = serializers.BooleanField(required=False)


class TrainingTriggerSerializer(serializers.ModelSerializer):
    project: "serializers.SlugRelatedField[Project]" = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=TrainingJob.Kind.choices), read_only=True
    )
    config = TrainingTriggerConfigField(read_only=True)
    last_jobs: "serializers.PrimaryKeyRelatedField[TrainingJob]" = (
        serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    )

    class Meta:
        model = TrainingTrigger
        fields = [
            "id",
            "project",
            "name",
            "when",
            "cron",
            "cron_timezone",
            "kinds",
            "min_new_judgments",
            "config",
            "enabled",
            "last_checked_at",
            "last_result",
            "last_jobs",
            "created_at",
        ]
        read_only_fields = fields
