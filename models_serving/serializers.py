from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import MAX_CONCURRENCY_LIMIT, ModelEndpoint, ModelVersion
from .validators import SAMPLING_LIMITS, validate_sampling_params

INT64_MAX = 2**63 - 1  # BigAutoField ids


class DefaultSamplingParamsSerializer(serializers.Serializer):
    """Documents the shape of default_sampling_params; the checks are validate_sampling_params."""

    temperature = serializers.FloatField(required=False, min_value=0.0, max_value=2.0)
    top_p = serializers.FloatField(required=False, min_value=SAMPLING_LIMITS["top_p"][1])
    max_tokens = serializers.IntegerField(
        required=False, min_value=1, max_value=int(SAMPLING_LIMITS["max_tokens"][2])
    )


@extend_schema_field(DefaultSamplingParamsSerializer)
class SamplingParamsField(serializers.JSONField):
    """A JSON object checked key by key, so unknown keys are refused rather than dropped."""


class ModelEndpointSerializer(serializers.ModelSerializer):
    """Admins write it; anyone who may read it gets everything but the API key."""

    api_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=500,
        style={"input_type": "password"},
        help_text="Sent as a Bearer token; never returned. Omit to keep, send '' to clear.",
    )
    has_api_key = serializers.BooleanField(read_only=True)
    default_sampling_params = SamplingParamsField(
        required=False, validators=[validate_sampling_params]
    )
    max_concurrency = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_CONCURRENCY_LIMIT
    )

    class Meta:
        model = ModelEndpoint
        fields = [
            "id",
            "name",
            "base_url",
            "api_key",
            "has_api_key",
            "kind",
            "supports_n",
            "supports_logprobs",
            "supports_lora",
            "max_concurrency",
            "default_sampling_params",
            "enabled",
            "last_health_ok",
            "last_health_detail",
            "last_health_at",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "has_api_key",
            "last_health_ok",
            "last_health_detail",
            "last_health_at",
            "created_at",
        ]


class ModelVersionSerializer(serializers.ModelSerializer):
    endpoint = serializers.PrimaryKeyRelatedField(
        queryset=ModelEndpoint.objects.all(),
        pk_field=serializers.IntegerField(min_value=1, max_value=INT64_MAX),
    )
    endpoint_name = serializers.CharField(source="endpoint.name", read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "endpoint",
            "endpoint_name",
            "model_name",
            "kind",
            "label",
            "notes",
            "enabled",
            "status",
            "status_detail",
            "created_at",
        ]
        read_only_fields = ["id", "endpoint_name", "status", "status_detail", "created_at"]
        validators: list = []  # the unique pair is checked in validate(), to name the field

    def validate(self, attrs: dict) -> dict:
        taken = ModelVersion.objects.filter(
            endpoint=attrs["endpoint"], model_name=attrs["model_name"]
        ).exists()
        if taken:
            raise serializers.ValidationError(
                {"model_name": "is already registered on this endpoint"}
            )
        return attrs


class ModelVersionUpdateSerializer(serializers.ModelSerializer):
    """Only the description and the enabled flag change; see VERSION_EDITABLE_FIELDS."""

    class Meta:
        model = ModelVersion
        fields = ["label", "notes", "enabled"]

    def validate(self, attrs: dict) -> dict:
        # Say so rather than silently ignore a change that would not happen.
        fixed = sorted({"endpoint", "model_name", "kind"} & set(self.initial_data))
        if fixed:
            raise serializers.ValidationError(
                {name: "cannot change once created; register a new version" for name in fixed}
            )
        return attrs
