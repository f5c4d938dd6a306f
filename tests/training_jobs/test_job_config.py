"""Which recipe settings a job accepts, per kind, and how a bad one is named."""

from dataclasses import fields

import pytest

from annotation.answers import InvalidInput
from training_jobs.job_config import (
    JOB_DEFAULTS,
    LAUNCH_FIELDS,
    job_config_validate,
    tunable_fields,
)
from training_jobs.models import TrainingJob
from training_jobs.recipes.dpo import LOSS_TYPES, DPORecipeConfig
from training_jobs.recipes.reward import MARGIN_MODES, RewardRecipeConfig

RECIPE_CONFIGS = {
    TrainingJob.Kind.DPO: DPORecipeConfig,
    TrainingJob.Kind.REWARD_MODEL: RewardRecipeConfig,
}
# Chosen by the platform for every job, never by the caller.
PLATFORM_FIELDS = {
    "data_path",
    "model_path",
    "output_dir",
    "data_snapshot_id",
    "ref_logps_cache_dir",
    "device",
}


@pytest.mark.parametrize("kind", list(RECIPE_CONFIGS))
def test_tunables_are_recipe_fields_and_never_paths(kind):
    recipe_fields = {f.name for f in fields(RECIPE_CONFIGS[kind])}
    # The launch fields say how the recipe is started; the platform strips them off its config.
    assert set(tunable_fields(kind)) - set(LAUNCH_FIELDS) <= recipe_fields
    assert not set(LAUNCH_FIELDS) & recipe_fields
    assert not set(tunable_fields(kind)) & PLATFORM_FIELDS
    assert set(JOB_DEFAULTS[kind]) <= set(tunable_fields(kind))


def test_choices_match_the_recipes():
    for loss in LOSS_TYPES:
        assert job_config_validate(kind="dpo", config={"loss_type": loss}) == {"loss_type": loss}
    for margin in MARGIN_MODES:
        checked = job_config_validate(kind="reward_model", config={"margin": margin})
        assert checked == {"margin": margin}


def test_valid_overrides_come_back_normalised():
    checked = job_config_validate(
        kind="reward_model",
        config={"learning_rate": "0.001", "margin": "strength", "margin_by_strength": {"2": 1}},
    )
    assert checked == {
        "learning_rate": 0.001,
        "margin": "strength",
        "margin_by_strength": {"2": 1.0},
    }
    assert job_config_validate(kind="dpo", config={}) == {}


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("dpo", {"num_train_epochs": 2}, "config.num_train_epochs"),  # a reward-model setting
        ("reward_model", {"beta": 0.1}, "config.beta"),  # a DPO setting
        ("dpo", {"model_path": "/etc"}, "config.model_path"),  # paths are the platform's
        ("dpo", {"output_dir": "/tmp/x"}, "config.output_dir"),
        ("dpo", {"beta": "much"}, "config.beta"),
        ("dpo", {"max_steps": 0}, "config.max_steps"),
        ("dpo", {"loss_type": "kto"}, "config.loss_type"),
        ("dpo", {"label_smoothing": 0.1}, "config.label_smoothing"),  # sigmoid ignores it
        ("dpo", {"lora_target_modules": "q_proj; rm -rf"}, "config.lora_target_modules"),
        ("reward_model", {"margin_by_strength": {"1": "big"}}, "config.margin_by_strength"),
        ("reward_model", {"eval_fraction": 1.0}, "config.eval_fraction"),
        ("dpo", {"launcher": "deepspeed"}, "config.launcher"),
        ("dpo", {"launcher": "python", "num_processes": 2}, "config.num_processes"),
        ("dpo", {"num_processes": 0}, "config.num_processes"),
        ("dpo", {"deepspeed": "ds.json"}, "config.deepspeed"),  # not an absolute path
        ("dpo", {"deepspeed": "/etc/passwd"}, "config.deepspeed"),
        ("dpo", {"deepspeed": "/opt/../etc/ds.json"}, "config.deepspeed"),
        ("dpo", {"deepspeed": 3}, "config.deepspeed"),
        ("reward_model", {"deepspeed": {"x": "y" * 70_000}}, "config.deepspeed"),
        ("dpo", {"launcher": "python", "deepspeed": {"zero_optimization": {}}}, "config.deepspeed"),
        ("dpo", {"fsdp": "full_shard"}, "config.fsdp"),  # FSDP's options go in fsdp_config
        ("dpo", {"fsdp": True, "deepspeed": {"train_batch_size": 8}}, "config.fsdp"),
        ("reward_model", {"fsdp_config": {"cpu_offload": True}}, "config.fsdp_config"),
        ("reward_model", {"fsdp": True, "fsdp_config": ["cpu_offload"]}, "config.fsdp_config"),
        ("reward_model", {"launcher": "python", "fsdp": True}, "config.fsdp"),
    ],
)
def test_a_bad_setting_is_named(kind, config, field):
    with pytest.raises(InvalidInput) as raised:
        job_config_validate(kind=kind, config=config)
    assert raised.value.field == field


@pytest.mark.parametrize("kind", list(RECIPE_CONFIGS))
def test_launch_and_sharding_settings_come_back_as_given(kind):
    zero3 = {"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": "auto"}
    config = {"launcher": "accelerate", "num_processes": 8, "deepspeed": zero3}
    assert job_config_validate(kind=kind, config=config) == config
    path = {"launcher": "torchrun", "deepspeed": "/etc/arbiter/zero2.json"}
    assert job_config_validate(kind=kind, config=path) == path
    fsdp = {"num_processes": 4, "fsdp": True, "fsdp_config": {"reshard_after_forward": False}}
    assert job_config_validate(kind=kind, config=fsdp) == fsdp


def test_robust_loss_takes_label_smoothing():
    config = {"loss_type": "robust", "label_smoothing": 0.1}
    assert job_config_validate(kind="dpo", config=config) == config


def test_config_must_be_an_object():
    with pytest.raises(InvalidInput) as raised:
        job_config_validate(kind="dpo", config=["beta"])
    assert raised.value.field == "config"
