from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from .validators import validate_base_url, validate_no_control_chars, validate_sampling_params

MAX_CONCURRENCY_LIMIT = 1024


class ModelEndpoint(models.Model):
    """An OpenAI-compatible server that admins register; only admins may set its URL."""

    class Kind(models.TextChoices):
        VLLM = "vllm", "vLLM"
        OPENAI_COMPATIBLE = "openai-compatible", "OpenAI-compatible"
        TRANSFORMERS_SERVE = "transformers-serve", "transformers serve"

    name = models.CharField(max_length=100, unique=True, validators=[validate_no_control_chars])
    base_url = models.CharField(
        max_length=500,
        validators=[validate_base_url],
        help_text="The server's OpenAI-compatible root, e.g. http://vllm:8000/v1.",
    )
    # Stored in plain text: the app must send it, so hashing is impossible. No API returns it.
    api_key = models.CharField(max_length=500, blank=True, default="")
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.VLLM)
    supports_n = models.BooleanField(default=False, help_text="Honours n>1 in one request.")
    supports_logprobs = models.BooleanField(default=False, help_text="Returns token logprobs.")
    supports_lora = models.BooleanField(default=False, help_text="Loads LoRA adapters at runtime.")
    max_concurrency = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_CONCURRENCY_LIMIT)],
        help_text="Most requests one Arbiter process sends it at a time.",
    )
    default_sampling_params = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_sampling_params],
        help_text="Any of temperature, top_p, max_tokens.",
    )
    enabled = models.BooleanField(default=True)
    last_health_ok = models.BooleanField(null=True, blank=True)
    last_health_detail = models.CharField(max_length=200, blank=True, default="")
    last_health_at = models.DateTimeField(null=True, blank=True)
    # Set when Arbiter started this server itself (a vLLM process for a new full checkpoint,
    # see services.checkpoint_serve): which process on which host, so it can be retired.
    process_pid = models.PositiveIntegerField(null=True, blank=True)
    process_host = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_concurrency__gte=1), name="endpoint_max_concurrency_positive"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key)


class ModelVersion(models.Model):
    """One `model` string to request on an endpoint; rounds and live chats sample from these.

    The training job that produced a version points here (TrainingJob.registered_version), so
    this app stays free of imports from the apps that use it.
    """

    class Kind(models.TextChoices):
        BASE = "base", "Base model"
        LORA = "lora", "LoRA adapter"
        CHECKPOINT = "checkpoint", "Full checkpoint"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending: being loaded on its server"
        READY = "ready", "Ready: its server lists it"
        FAILED = "failed", "Failed: could not be loaded"

    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.PROTECT, related_name="versions")
    model_name = models.CharField(
        max_length=500,
        validators=[validate_no_control_chars],
        help_text="Sent as `model`: a model name, LoRA adapter or checkpoint path.",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.BASE)
    label = models.CharField(max_length=200, validators=[validate_no_control_chars])
    notes = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    # Nothing samples a version until it is ready: a new checkpoint is pending while its server
    # loads it (see services.version_make_sampleable); versions registered by hand are ready.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    status_detail = models.CharField(max_length=300, blank=True, default="")
    weights_path = models.CharField(
        max_length=1000,
        blank=True,
        default="",
        help_text="Where the weights are on disk (checkpoint or LoRA adapter directory).",
    )
    # Set by the gpu worker that starts a vLLM server for this version (a conditional UPDATE):
    # a redelivered serve message finds it claimed and starts no second server.
    serve_claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "model_name"], name="version_unique_model_per_endpoint"
            )
        ]

    def __str__(self) -> str:
        return self.label
