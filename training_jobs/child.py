"""Starting and stopping a recipe's child process (no Django here: a bare process can use it).

A child process returns its GPU memory when it exits and can be stopped without touching the
worker. It dies with the worker too: a SIGKILLed worker cannot stop it, so the child asks the
kernel for SIGKILL when its parent goes (Linux), instead of training on as an orphan. Under a
launcher (`accelerate launch`, `torchrun`) the ranks are the launcher's children, each in a
session of its own; the environment asks them to do the same (recipes/common.py).
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from models_serving.local_server import stop_process_group

from .recipes import DIE_WITH_PARENT_ENV

LAUNCHERS = ("python", "accelerate", "torchrun")
RECIPES = {
    "dpo": "training_jobs.recipes.dpo",
    "reward_model": "training_jobs.recipes.reward",
}
STOP_TIMEOUT = 30.0
_PR_SET_PDEATHSIG = 1


def recipe_launch(
    config: dict, *, default_launcher: str, default_processes: int
) -> tuple[str, int]:
    """The launcher and process count for a job: its own config's, else the worker's settings.

    ValueError names what does not fit, e.g. a worker set to several processes and no launcher.
    """
    launcher = config.get("launcher", default_launcher)
    processes = config.get("num_processes", default_processes)
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {', '.join(LAUNCHERS)}, not {launcher!r}")
    if not isinstance(processes, int) or processes < 1:
        raise ValueError(f"num_processes must be a whole number >= 1, not {processes!r}")
    if launcher == "python" and processes > 1:
        raise ValueError(f"launcher 'python' runs one process, not {processes}")
    if launcher == "python" and (config.get("deepspeed") or config.get("fsdp")):
        raise ValueError("DeepSpeed and FSDP need launcher 'accelerate' or 'torchrun'")
    return launcher, processes


def recipe_command(
    kind: str,
    config_path: Path,
    progress_path: Path,
    *,
    launcher: str = "python",
    num_processes: int = 1,
    port: int | None = None,
) -> list[str]:
    """The command line that runs a recipe, under the venv's own Python in every case.

    ``port`` is the rendezvous port of a multi-process `accelerate launch` (its fixed default,
    29500, would collide with another job's on the same node); torchrun's ``--standalone``
    picks a free one itself.
    """
    recipe = [
        *("-m", RECIPES[kind]),
        *("--config", str(config_path)),
        *("--progress-file", str(progress_path)),
    ]
    if launcher == "python":
        return [sys.executable, *recipe]
    if launcher == "torchrun":
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        return [*torchrun, "--nproc_per_node", str(num_processes), *recipe]
    if launcher == "accelerate":
        accelerate = [sys.executable, "-m", "accelerate.commands.launch"]
        # Spelled out so that no accelerate config file on the node changes the launch;
        # precision comes from the recipe (bf16 on CUDA), DeepSpeed/FSDP from its config.
        accelerate += ["--num_processes", str(num_processes), "--num_machines", "1"]
        accelerate += ["--mixed_precision", "no", "--dynamo_backend", "no"]
        if num_processes > 1:
            accelerate += ["--multi_gpu"]
            if port is not None:
                accelerate += ["--main_process_port", str(port)]
        return [*accelerate, *recipe]
    raise ValueError(f"unknown launcher {launcher!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_start(
    command: list[str], *, cwd: Path, stdout_path: Path, stderr_path: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        DIE_WITH_PARENT_ENV: "1",
    }
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        # Its own process group, so a stop also reaches any process the recipe starts.
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()) if sys.platform == "linux" else None,
        )


def child_stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's group, SIGKILL it if it is still there after STOP_TIMEOUT."""
    stop_process_group(child, timeout=STOP_TIMEOUT)


def _die_with_parent(parent_pid: int):
    libc = ctypes.CDLL(None, use_errno=True)  # looked up before fork: preexec_fn must be small

    def set_parent_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return set_parent_death_signal
