"""The command line a GPU worker builds to start a recipe: python, accelerate launch, torchrun."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from training_jobs import services
from training_jobs.child import recipe_command, recipe_launch
from training_jobs.models import TrainingJob
from training_jobs.recipes.common import DistributedConfig
from training_jobs.recipes.dpo import DPORecipeConfig
from training_jobs.recipes.dpo import trl_config as dpo_trl_config
from training_jobs.recipes.reward import RewardRecipeConfig
from training_jobs.recipes.reward import trl_config as reward_trl_config

CONFIG = Path("/ck/job-7/recipe-config.json")
PROGRESS = Path("/ck/job-7/progress.jsonl")
RECIPE_ARGS = [
    *("-m", "training_jobs.recipes.dpo"),
    *("--config", str(CONFIG), "--progress-file", str(PROGRESS)),
]


def test_python_runs_the_recipe_module_in_the_workers_interpreter():
    assert recipe_command("dpo", CONFIG, PROGRESS) == [sys.executable, *RECIPE_ARGS]
    reward = recipe_command("reward_model", CONFIG, PROGRESS, launcher="python")
    assert reward[:3] == [sys.executable, "-m", "training_jobs.recipes.reward"]


def test_torchrun_starts_one_process_per_gpu_on_a_free_port():
    command = recipe_command("dpo", CONFIG, PROGRESS, launcher="torchrun", num_processes=4)
    assert command == [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
        *("--nproc_per_node", "4"),
        *RECIPE_ARGS,
    ]


def test_accelerate_with_one_process_needs_no_rendezvous():
    command = recipe_command("dpo", CONFIG, PROGRESS, launcher="accelerate", port=29600)
    assert command == [
        *(sys.executable, "-m", "accelerate.commands.launch"),
        *("--num_processes", "1", "--num_machines", "1"),
        *("--mixed_precision", "no", "--dynamo_backend", "no"),
        *RECIPE_ARGS,
    ]


def test_accelerate_with_several_processes_is_multi_gpu_on_the_given_port():
    command = recipe_command(
        "dpo", CONFIG, PROGRESS, launcher="accelerate", num_processes=8, port=29617
    )
    assert command == [
        *(sys.executable, "-m", "accelerate.commands.launch"),
        *("--num_processes", "8", "--num_machines", "1"),
        *("--mixed_precision", "no", "--dynamo_backend", "no"),
        *("--multi_gpu", "--main_process_port", "29617"),
        *RECIPE_ARGS,
    ]


@pytest.mark.parametrize("launcher", ["accelerate", "torchrun"])
def test_the_launchers_parse_the_command_they_are_given(launcher):
    """The launcher's own parser accepts the arguments (a typo in a flag fails here)."""
    if launcher == "torchrun":
        from torch.distributed.run import get_args_parser as parser
    else:
        from accelerate.commands.launch import launch_command_parser as parser
    command = recipe_command("dpo", CONFIG, PROGRESS, launcher=launcher, num_processes=2, port=1)
    args = parser().parse_args(command[3:])
    assert args.module and args.training_script == "training_jobs.recipes.dpo"
    assert args.training_script_args == ["--config", str(CONFIG), "--progress-file", str(PROGRESS)]
    processes = args.nproc_per_node if launcher == "torchrun" else args.num_processes
    assert int(processes) == 2


def test_the_accelerate_entry_point_runs_as_a_module():
    done = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "--num_processes" in done.stdout


def test_a_jobs_own_launch_settings_win_over_the_workers():
    defaults = {"default_launcher": "accelerate", "default_processes": 4}
    assert recipe_launch({}, **defaults) == ("accelerate", 4)
    assert recipe_launch({"num_processes": 2}, **defaults) == ("accelerate", 2)
    assert recipe_launch({"launcher": "torchrun"}, **defaults) == ("torchrun", 4)
    config = {"launcher": "python", "num_processes": 1}
    assert recipe_launch(config, **defaults) == ("python", 1)


@pytest.mark.parametrize(
    ("config", "defaults", "problem"),
    [
        ({}, ("mpirun", 1), "launcher must be one of"),
        ({}, ("python", 2), "runs one process"),  # TRAINING_NUM_PROCESSES without a launcher
        ({"num_processes": 2}, ("python", 1), "runs one process"),
        ({"fsdp": True}, ("python", 1), "need launcher"),
        ({}, ("torchrun", 0), "whole number"),
    ],
)
def test_a_launch_that_cannot_work_is_refused(config, defaults, problem):
    launcher, processes = defaults
    with pytest.raises(ValueError, match=problem):
        recipe_launch(config, default_launcher=launcher, default_processes=processes)


@pytest.mark.parametrize(
    ("config_cls", "trl_config"),
    [(DPORecipeConfig, dpo_trl_config), (RewardRecipeConfig, reward_trl_config)],
)
def test_sharding_settings_reach_the_training_arguments(config_cls, trl_config, tmp_path):
    base = {"data_path": "d.jsonl", "model_path": "m", "output_dir": str(tmp_path / "out")}
    plain = trl_config(config_cls(**base), "cpu", tmp_path / "out.tmp")
    assert not plain.deepspeed and not plain.fsdp
    # TrainingArguments checks FSDP's settings itself; no GPU is needed to build them.
    fsdp = config_cls(**base, fsdp=True, fsdp_config={"reshard_after_forward": False})
    args = trl_config(fsdp, "cpu", tmp_path / "out.tmp")
    assert args.fsdp and args.fsdp_config["reshard_after_forward"] is False
    assert not args.deepspeed


def test_deepspeed_goes_to_the_training_arguments_as_given():
    config = DistributedConfig(deepspeed="/ck/job-7/deepspeed.json")
    assert config.trainer_kwargs() == {"deepspeed": "/ck/job-7/deepspeed.json"}
    assert DistributedConfig().trainer_kwargs() == {}


@pytest.mark.django_db
def test_the_recipe_config_leaves_launch_settings_out_and_writes_deepspeed_to_a_file(tmp_path):
    zero2 = {"zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": "auto"}
    job = TrainingJob(
        pk=7,
        kind=TrainingJob.Kind.REWARD_MODEL,
        config={"launcher": "accelerate", "num_processes": 2, "deepspeed": zero2, "seed": 3},
        data_path="/exports/x.jsonl",
        data_snapshot_id="abc",
    )
    config = services._recipe_config(job, tmp_path)
    assert "launcher" not in config and "num_processes" not in config
    assert config["seed"] == 3
    assert config["deepspeed"] == str(tmp_path / "deepspeed.json")
    assert json.loads((tmp_path / "deepspeed.json").read_text()) == zero2
    RewardRecipeConfig(**config)  # the recipe takes every field it is given


@pytest.mark.django_db
def test_the_worker_starts_the_recipe_with_its_launcher_settings(
    judged_project, settings, tmp_path, monkeypatch
):
    settings.CHECKPOINT_ROOT = tmp_path / "checkpoints"
    settings.EXPORTS_DIR = tmp_path / "exports"
    settings.TRAINING_LAUNCHER = "torchrun"
    settings.TRAINING_NUM_PROCESSES = 2
    started: list[list[str]] = []

    def start(command, **kwargs):  # stands in for the real child: exits without training
        started.append(command)
        return subprocess.Popen(["true"])

    monkeypatch.setattr(services, "child_start", start)
    job = services.training_job_create(
        project=judged_project("launch-settings", 2),
        created_by=None,
        kind=TrainingJob.Kind.REWARD_MODEL,
        config={"num_processes": 3},
    )
    services.training_job_run(job_id=job.pk)

    (command,) = started
    assert command[1:7] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "3",
        "-m",
    ]
    config_path = Path(command[command.index("--config") + 1])
    assert config_path.is_relative_to(settings.CHECKPOINT_ROOT)
    assert "num_processes" not in json.loads(config_path.read_text())
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.FAILED and "no metrics.json" in job.error


@pytest.mark.django_db
def test_a_worker_set_up_to_launch_wrongly_fails_the_job_before_exporting(
    judged_project, settings, tmp_path
):
    settings.CHECKPOINT_ROOT = tmp_path / "checkpoints"
    settings.TRAINING_LAUNCHER = "mpirun"
    job = services.training_job_create(
        project=judged_project("launch-wrong", 1), created_by=None, config={}
    )
    services.training_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.FAILED
    assert job.error.startswith("Cannot launch the recipe: launcher must be one of")
    assert job.export is None
