from rest_framework import serializers

from .models import TrainingJob


class TrainingConfigSerializer(serializers.Serializer):
    beta = serializers.FloatField(min_value=0.0, max_value=10.0, required=False)
    loss_type = serializers.ChoiceField(
        choices=["sigmoid", "ipo", "robust", "hinge"], required=False
    )
    learning_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    max_steps = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    per_device_train_batch_size = serializers.IntegerField(
        min_value=1, max_value=1024, required=False
    )
    max_length = serializers.IntegerField(min_value=16, max_value=131_072, required=False)
    seed = serializers.IntegerField(min_value=0, required=False)


class TrainingJobCreateSerializer(serializers.Serializer):
    project = serializers.SlugField()
    kind = serializers.ChoiceField(choices=TrainingJob.Kind.choices, default=TrainingJob.Kind.DPO)
    config = TrainingConfigSerializer(required=False, default=dict)


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
            "data_rows",
            "progress_step",
            "progress_total",
            "metrics",
            "metrics_history",
            "checkpoint_path",
            "error",
            "log_tail",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        ]
        read_only_fields = fields
