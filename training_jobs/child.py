"""Starting and stopping a recipe's child process.

A child process returns its GPU memory when it exits and can be stopped without touching the
worker. It dies with the worker too: a SIGKILLed worker cannot stop it, so the child asks the
kernel for SIGKILL when its parent goes (Linux), instead of training on as an orphan.
"""

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

from models_serving.local_server import stop_process_group

RECIPES = {
    "dpo": "training_jobs.recipes.dpo",
    "reward_model": "training_jobs.recipes.reward",
}
STOP_TIMEOUT = 30.0
_PR_SET_PDEATHSIG = 1


def recipe_command(kind: str, config_path: Path, progress_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        RECIPES[kind],
        "--config",
        str(config_path),
        "--progress-file",
        str(progress_path),
    ]


def child_start(
    command: list[str], *, cwd: Path, stdout_path: Path, stderr_path: Path
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
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
