from django.conf import settings
from django.db.models import QuerySet

from .client import ModelVersionDisabled, ModelVersionNotReady, SamplingParams, ServerConfig
from .models import ModelEndpoint, ModelVersion


def model_endpoint_list() -> QuerySet[ModelEndpoint]:
    return ModelEndpoint.objects.order_by("name")


def model_version_list(*, enabled: bool | None = None) -> QuerySet[ModelVersion]:
    """Newest first; ``enabled=True``: the versions one can sample now (switched on and ready)."""
    versions = ModelVersion.objects.select_related("endpoint").order_by("-created_at", "-id")
    if enabled is None:
        return versions
    if enabled:
        return versions.filter(enabled=True, status=ModelVersion.Status.READY)
    return versions.filter(enabled=False)


def server_config_for(version: ModelVersion) -> ServerConfig:
    """How to reach ``version``: its endpoint's URL, key, limits and default sampling."""
    endpoint = version.endpoint
    if not (version.enabled and endpoint.enabled):
        raise ModelVersionDisabled(f"model version {version.label!r} is disabled")
    if version.status == ModelVersion.Status.PENDING:
        raise ModelVersionNotReady(
            f"model version {version.label!r} is still being loaded on its server; try again soon"
        )
    if version.status == ModelVersion.Status.FAILED:
        raise ModelVersionNotReady(
            f"model version {version.label!r} could not be loaded on its server: "
            f"{version.status_detail or 'see the model versions page'}"
        )
    return ServerConfig(
        base_url=endpoint.base_url,
        model=version.model_name,
        # The SDK refuses an empty key; servers started without --api-key ignore it.
        api_key=endpoint.api_key or "EMPTY",
        supports_n=endpoint.supports_n,
        supports_logprobs=endpoint.supports_logprobs,
        max_concurrency=endpoint.max_concurrency,
        connect_timeout=settings.MODEL_CONNECT_TIMEOUT,
        read_timeout=settings.MODEL_READ_TIMEOUT,
        default_sampling=SamplingParams(**endpoint.default_sampling_params),
        endpoint_id=endpoint.pk,
        version_id=version.pk,
    )
