from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from .job_config import DPOConfigSerializer, RewardModelConfigSerializer
from .models import TrainingJob


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
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)

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
