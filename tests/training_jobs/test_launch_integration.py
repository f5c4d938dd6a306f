"""Real launches of the DPO recipe on CPU: `accelerate launch`, and `torchrun` with two ranks.

The commands are the ones a GPU worker builds (training_jobs.child.recipe_command), started the
way it starts them (child_start). Two CPU ranks with the gloo backend stand in for two GPUs:
they show that only rank 0 reports progress and writes the checkpoint and metrics.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from models_serving.tiny_models import build_tiny_policy
from training_jobs.child import child_start, recipe_command

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_TIMEOUT = 240


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_policy(tmp_path_factory.mktemp("models") / "policy")


def write_job(directory: Path, policy_dir: Path, **overrides) -> Path:
    """A job directory like a worker's: preference data and the recipe's config."""
    rows = [
        {
            "prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
            "chosen": [{"role": "assistant", "content": f"It is {2 * i}."}],
            "rejected": [{"role": "assistant", "content": "No idea, sorry."}],
        }
        for i in range(8)
    ]
    (directory / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = {
        "data_path": str(directory / "data.jsonl"),
        "model_path": str(policy_dir),
        "output_dir": str(directory / "checkpoint"),
        "learning_rate": 5e-4,
        "max_steps": 2,
        "per_device_train_batch_size": 2,
        "max_length": 128,
        "device": "cpu",
        **overrides,
    }
    (directory / "recipe-config.json").write_text(json.dumps(config))
    return directory / "recipe-config.json"


def launch(directory: Path, command: list[str]) -> subprocess.CompletedProcess:
    child = child_start(
        command, cwd=ROOT, stdout_path=directory / "stdout.log", stderr_path=directory / "train.log"
    )
    try:
        child.wait(timeout=LAUNCH_TIMEOUT)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    log = (directory / "train.log").read_text(errors="replace")
    assert child.returncode == 0, log[-4000:]
    return child


def progress_steps(directory: Path) -> list[int]:
    lines = (directory / "progress.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def test_accelerate_launch_trains_dpo_on_cpu(tmp_path, policy_dir):
    config = write_job(tmp_path, policy_dir)
    command = recipe_command(
        "dpo", config, tmp_path / "progress.jsonl", launcher="accelerate", num_processes=1
    )
    assert command[1:3] == ["-m", "accelerate.commands.launch"]

    launch(tmp_path, command)

    metrics = json.loads((tmp_path / "checkpoint" / "metrics.json").read_text())
    assert metrics["processes"] == 1 and metrics["steps"] == 2
    assert progress_steps(tmp_path) == [1, 2]
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "checkpoint")
    start = AutoModelForCausalLM.from_pretrained(policy_dir)
    assert any(
        not torch.equal(p, q) for p, q in zip(trained.parameters(), start.parameters(), strict=True)
    ), "DPO left every parameter unchanged"


def test_torchrun_two_ranks_report_and_save_once(tmp_path, policy_dir):
    cache_dir = tmp_path / "ref-logps"
    config = write_job(
        tmp_path, policy_dir, max_steps=3, eval_fraction=0.25, ref_logps_cache_dir=str(cache_dir)
    )
    command = recipe_command(
        "dpo", config, tmp_path / "progress.jsonl", launcher="torchrun", num_processes=2
    )

    launch(tmp_path, command)

    checkpoint = tmp_path / "checkpoint"
    metrics = json.loads((checkpoint / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["steps"] == 3
    # Both ranks scored the held-out pairs; rank 0 reports the figures over all of them.
    assert metrics["eval_rows_used"] == metrics["eval_rows"] > 0
    assert metrics["eval_reward_accuracy"] is not None
    assert progress_steps(tmp_path) == [1, 2, 3]  # one report per step, from rank 0 only
    printed = [
        line for line in (tmp_path / "stdout.log").read_text().splitlines() if line[:1] == "{"
    ]
    assert [json.loads(line)["steps"] for line in printed if line.startswith('{"')] == [3]
    assert sorted(p.name for p in checkpoint.iterdir() if p.is_dir()) == []  # no scratch data
    assert not checkpoint.with_name("checkpoint.tmp").exists()
    assert len(list(cache_dir.glob("ref-logps-*.json"))) == 1
    AutoModelForCausalLM.from_pretrained(checkpoint)


PARENT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from training_jobs.child import child_start

    directory = Path(sys.argv[1])
    child_start(
        json.loads((directory / "command.json").read_text()), cwd=Path.cwd(),
        stdout_path=directory / "stdout.log", stderr_path=directory / "train.log",
    )
    time.sleep(600)
    """
)


def test_ranks_die_with_a_killed_worker(tmp_path, policy_dir):
    """torchrun starts each rank in a session of its own: the rank must die with its launcher."""
    config = write_job(tmp_path, policy_dir, max_steps=100_000)
    command = recipe_command(
        "dpo", config, tmp_path / "progress.jsonl", launcher="torchrun", num_processes=1
    )
    (tmp_path / "command.json").write_text(json.dumps(command))
    worker = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], cwd=ROOT)
    try:
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while not (tmp_path / "progress.jsonl").exists():
            assert time.monotonic() < deadline, (tmp_path / "train.log").read_text()[-3000:]
            assert worker.poll() is None
            time.sleep(0.3)
        ranks = processes_naming(config)
        assert len(ranks) == 2  # the launcher and its one rank

        worker.kill()
        worker.wait()

        deadline = time.monotonic() + 20
        while processes_naming(config) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not processes_naming(config), "a rank outlived its worker"
    finally:
        worker.kill()
        for pid in processes_naming(config):
            os.kill(pid, signal.SIGKILL)


def processes_naming(path: Path) -> list[int]:
    """Live (not zombie) processes whose command line names ``path``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            zombie = ") Z " in (proc / "stat").read_text()
        except OSError:
            continue
        if str(path).encode() in argv and not zombie:
            found.append(int(proc.name))
    return found
