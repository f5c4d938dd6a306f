"""The recipe settings a job may override, per kind, and their validation.

Only tunables are listed: paths, the data snapshot and the device are chosen by the platform.
The names mirror the recipes' dataclass configs (tests/training_jobs/test_job_config.py checks
that); they are spelled out here because importing a recipe would load torch into the web app.
`launcher` and `num_processes` are the exception: they say how the recipe's processes are
started (training_jobs/child.py), so the platform takes them out of the recipe's config.
"""

import json
from pathlib import PurePosixPath
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.answers import InvalidInput

from .child import LAUNCHERS
from .models import TrainingJob

# Held out by default for jobs (the DPO recipe's own default is 0): a job's metrics should
# say how the checkpoint does on pairs it did not train on.
JOB_DEFAULTS: dict[str, dict[str, Any]] = {
    TrainingJob.Kind.DPO: {"eval_fraction": 0.1},
    TrainingJob.Kind.REWARD_MODEL: {"eval_fraction": 0.1},
}


LAUNCH_FIELDS = ("launcher", "num_processes")
MAX_INLINE_CONFIG_BYTES = 64 * 1024


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "object", "additionalProperties": True}],
        "description": "A DeepSpeed config: an absolute path to a .json file on the GPU workers, "
        "or the config itself (written to deepspeed.json in the job's directory).",
    }
)
class DeepSpeedConfigField(serializers.Field):
    def to_internal_value(self, data: Any) -> str | dict:
        if isinstance(data, dict):
            _check_size(data)
            return data
        if not isinstance(data, str):
            raise serializers.ValidationError("give a path to a .json file or a config object")
        path = PurePosixPath(data)
        if not path.is_absolute() or path.suffix != ".json" or ".." in path.parts:
            raise serializers.ValidationError("give an absolute path to a .json file")
        if len(data) > 1000 or "\x00" in data:
            raise serializers.ValidationError("not a usable path")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "description": 'TrainingArguments\' fsdp_config, e.g. {"reshard_after_forward": true}.',
    }
)
class InlineConfigField(serializers.DictField):
    def to_internal_value(self, data: Any) -> dict:
        value = super().to_internal_value(data)
        _check_size(value)
        return value


def _check_size(value: dict) -> None:
    if len(json.dumps(value)) > MAX_INLINE_CONFIG_BYTES:
        raise serializers.ValidationError(f"at most {MAX_INLINE_CONFIG_BYTES} bytes of JSON")


class _CommonConfigSerializer(serializers.Serializer):
    launcher = serializers.ChoiceField(
        choices=LAUNCHERS,
        required=False,
        help_text="How the recipe starts; the worker's TRAINING_LAUNCHER when left out.",
    )
    num_processes = serializers.IntegerField(
        min_value=1,
        max_value=64,
        required=False,
        help_text="Processes (one per GPU) under accelerate/torchrun; the worker's "
        "TRAINING_NUM_PROCESSES when left out.",
    )
    deepspeed = DeepSpeedConfigField(required=False)
    fsdp = serializers.BooleanField(required=False, help_text="Shard the model with FSDP.")
    fsdp_config = InlineConfigField(required=False)
    learning_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    per_device_train_batch_size = serializers.IntegerField(
        min_value=1, max_value=1024, required=False
    )
    max_length = serializers.IntegerField(min_value=16, max_value=131_072, required=False)
    eval_fraction = serializers.FloatField(min_value=0.0, max_value=0.9, required=False)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    gradient_checkpointing = serializers.BooleanField(required=False)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("deepspeed") and attrs.get("fsdp"):
            raise serializers.ValidationError({"fsdp": "use DeepSpeed or FSDP, not both"})
        if attrs.get("fsdp_config") and not attrs.get("fsdp"):
            raise serializers.ValidationError({"fsdp_config": "only used together with fsdp"})
        if attrs.get("launcher") == "python":
            # The plain launcher starts one process, without the distributed setup these need.
            if attrs.get("num_processes", 1) > 1:
                problem = "launcher 'python' runs one process; use accelerate or torchrun"
                raise serializers.ValidationError({"num_processes": problem})
            for name in ("deepspeed", "fsdp"):
                if attrs.get(name):
                    raise serializers.ValidationError(
                        {name: "needs launcher 'accelerate' or 'torchrun'"}
                    )
        return attrs


class DPOConfigSerializer(_CommonConfigSerializer):
    """Tunable fields of ``training_jobs.recipes.dpo.DPORecipeConfig``."""

    beta = serializers.FloatField(min_value=0.0, max_value=10.0, required=False)
    loss_type = serializers.ChoiceField(
        choices=["sigmoid", "ipo", "robust", "hinge"], required=False
    )
    label_smoothing = serializers.FloatField(min_value=0.0, max_value=0.49, required=False)
    max_steps = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    precompute_ref_log_probs = serializers.BooleanField(required=False)
    lora_r = serializers.IntegerField(min_value=0, max_value=1024, required=False)
    lora_alpha = serializers.IntegerField(min_value=1, max_value=4096, required=False)
    lora_dropout = serializers.FloatField(min_value=0.0, max_value=0.9, required=False)
    lora_target_modules = serializers.RegexField(
        r"^(all-linear|[A-Za-z0-9_.]+(,[A-Za-z0-9_.]+)*)$", max_length=500, required=False
    )

    def validate(self, attrs: dict) -> dict:
        # The recipe refuses this too, but only after the job has queued and exported.
        if attrs.get("label_smoothing") and attrs.get("loss_type") != "robust":
            raise serializers.ValidationError(
                {"label_smoothing": "only loss_type 'robust' uses label smoothing"}
            )
        return super().validate(attrs)


class RewardModelConfigSerializer(_CommonConfigSerializer):
    """Tunable fields of ``training_jobs.recipes.reward.RewardRecipeConfig``."""

    num_train_epochs = serializers.FloatField(min_value=0.01, max_value=100.0, required=False)
    margin = serializers.ChoiceField(choices=["off", "strength"], required=False)
    margin_by_strength = serializers.DictField(
        child=serializers.FloatField(min_value=0.0, max_value=100.0), required=False
    )
    balance_prompts = serializers.BooleanField(required=False)
    center_rewards_coefficient = serializers.FloatField(
        min_value=0.0, max_value=1.0, allow_null=True, required=False
    )


CONFIG_SERIALIZERS: dict[str, type[serializers.Serializer]] = {
    TrainingJob.Kind.DPO: DPOConfigSerializer,
    TrainingJob.Kind.REWARD_MODEL: RewardModelConfigSerializer,
}


def tunable_fields(kind: str) -> list[str]:
    return list(CONFIG_SERIALIZERS[kind]().fields)


def job_config_validate(*, kind: str, config: object) -> dict[str, Any]:
    """The overrides, checked and normalised; InvalidInput names the first bad field."""
    if not isinstance(config, dict):
        raise InvalidInput("config", "give an object of recipe settings")
    allowed = tunable_fields(kind)
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"config.{unknown[0]}",
            f"not a setting of {kind} jobs; choose from {', '.join(sorted(allowed))}",
        )
    checked = CONFIG_SERIALIZERS[kind](data=config)
    if not checked.is_valid():
        name, problem = next(iter(checked.errors.items()))
        field = "config" if name == "non_field_errors" else f"config.{name}"
        raise InvalidInput(field, _first_message(problem))
    return dict(checked.validated_data)


def _first_message(problem: Any) -> str:
    # DictField errors nest by key: {"margin_by_strength": {"3": ["..."]}}.
    while isinstance(problem, dict | list):
        problem = next(iter(problem.values())) if isinstance(problem, dict) else problem[0]
    return str(problem)
