"""Plumbing shared by the training recipes: data loading, the held-out split, progress, run dirs.

No Django here either: recipes run on bare training nodes under ``torchrun``/``accelerate``.
"""

import argparse
import atexit
import ctypes
import hashlib
import json
import math
import os
import random
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import torch
import transformers
import trl
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from . import DIE_WITH_PARENT_ENV

ProgressFn = Callable[[dict[str, Any]], None]
PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")
ConfigT = TypeVar("ConfigT")
_PR_SET_PDEATHSIG = 1


@dataclass(kw_only=True)
class DistributedConfig:
    """Sharding settings handed to TrainingArguments; the launcher starts one process per GPU.

    Both need the recipe to run under ``accelerate launch`` or ``torchrun``.
    """

    deepspeed: str | None = field(
        default=None,
        metadata={"help": "DeepSpeed config JSON file (ZeRO stage, offload, ...); None is off."},
    )
    fsdp: bool = field(
        default=False, metadata={"help": "Shard the model with PyTorch FSDP (FSDP2 by default)."}
    )
    fsdp_config: dict[str, Any] | None = field(
        default=None,
        metadata={
            "help": "TrainingArguments' fsdp_config when `fsdp` is on: reshard_after_forward, "
            "cpu_offload, transformer_layer_cls_to_wrap, state_dict_type, ..."
        },
    )

    def trainer_kwargs(self) -> dict[str, Any]:
        if self.deepspeed:
            return {"deepspeed": self.deepspeed}
        if self.fsdp:
            return {"fsdp": True, "fsdp_config": dict(self.fsdp_config or {})}
        return {}  # TrainingArguments' own defaults


def is_main_rank() -> bool:
    """Rank 0 of a launcher's processes, or the only process (no launcher sets RANK then)."""
    return int(os.environ.get("RANK", "0")) == 0


def die_with_parent_if_asked() -> None:
    """Ask Linux for SIGKILL when the parent goes, if the platform asked (DIE_WITH_PARENT_ENV).

    Under ``torchrun``/``accelerate launch`` each rank is the launcher's child in a session of
    its own, so neither the worker's process-group stop nor the launcher's own death signal
    reaches it: a rank must ask for this itself or train on as an orphan.
    """
    if os.environ.get(DIE_WITH_PARENT_ENV) != "1" or sys.platform != "linux":
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent went before prctl took effect
        os._exit(1)


def load_preference_rows(path: Path, *, extra_columns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Read the JSONL, keeping prompt/chosen/rejected (plain {role, content} messages) and extras.

    Other columns are dropped here rather than left to TRL: a stray `images` or `tools` column
    would switch TRL onto another code path, and ragged metadata can break Arrow's schema. An
    extra column missing from a row is kept as None.
    """
    rows = []
    with path.open(encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            missing = [column for column in PREFERENCE_COLUMNS if column not in record]
            if missing:
                raise ValueError(f"{path}:{line_no}: missing {missing}")
            row = {column: _plain_messages(record[column]) for column in PREFERENCE_COLUMNS}
            row.update({column: record.get(column) for column in extra_columns})
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no preference rows")
    return rows


def _plain_messages(value: Any) -> Any:
    if isinstance(value, list):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    return value  # TRL's standard (plain-text) format passes through untouched


def prompt_key(prompt: Any) -> str:
    """A stable id for a prompt (a message list or a string), used to group its pairs."""
    canonical = json.dumps(prompt, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def split_by_prompt(
    rows: list[dict[str, Any]], *, eval_fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out ``eval_fraction`` of the distinct prompts, with all of their pairs.

    Splitting by prompt rather than by row keeps a prompt's other pairs (other annotators, other
    pairs from one ranking) out of training when one of them is evaluated, which would otherwise
    inflate held-out accuracy. At least one prompt stays on each side when there are two or more.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), not {eval_fraction}")
    keys = sorted({prompt_key(row["prompt"]) for row in rows})
    if eval_fraction == 0.0 or len(keys) < 2:
        return list(rows), []
    random.Random(seed).shuffle(keys)
    held_out_count = min(len(keys) - 1, max(1, round(eval_fraction * len(keys))))
    held_out = set(keys[:held_out_count])
    train = [row for row in rows if prompt_key(row["prompt"]) not in held_out]
    held = [row for row in rows if prompt_key(row["prompt"]) in held_out]
    return train, held


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return device


def use_bf16(device: str) -> bool:
    """bf16 mixed precision on CUDA cards that have it; plain fp32 on CPU, where bf16 is slow."""
    return device == "cuda" and torch.cuda.is_bf16_supported()


def library_versions() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
    }


def start_run_dir(output_dir: Path) -> Path:
    """The scratch dir to train into; ``finish_run_dir`` renames it to ``output_dir`` at the end.

    ``output_dir`` existing therefore always means a finished run, and a ``.tmp`` sibling marks
    one that died (and is cleared here).
    """
    if output_dir.exists():
        raise FileExistsError(f"{output_dir} already exists; refusing to overwrite a finished run")
    scratch_dir = output_dir.with_name(output_dir.name + ".tmp")
    # Rank 0 only: a slower rank clearing it late could delete what rank 0 already put there.
    if is_main_rank():
        shutil.rmtree(scratch_dir, ignore_errors=True)
    return scratch_dir


def finish_run_dir(scratch_dir: Path, output_dir: Path, metrics: dict[str, Any]) -> None:
    (scratch_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    scratch_dir.rename(output_dir)  # last, so that `output_dir` existing means the run finished


class ProgressRecorder(TrainerCallback):
    """Keeps the per-step log history and forwards each logged step to ``progress``."""

    def __init__(self, progress: ProgressFn | None) -> None:
        self.progress = progress
        self.history: list[dict[str, float | None]] = []

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # The end-of-training summary and evaluations are logged without a per-step "loss".
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        entry = {"step": state.global_step, **finite_numbers(logs)}
        self.history.append(entry)
        if self.progress is not None:
            self.progress({"total": state.max_steps, **entry})

    def last_loss(self) -> float | None:
        return self.history[-1].get("loss") if self.history else None


def finite_numbers(logs: dict[str, Any]) -> dict[str, float | None]:
    # A diverged run logs NaN/inf; None keeps metrics.json and progress lines valid JSON.
    return {
        key: float(value) if math.isfinite(value) else None
        for key, value in logs.items()
        if isinstance(value, int | float)
    }


def jsonl_progress_writer(path: Path) -> ProgressFn:
    """Append each progress event as one JSON line, flushed so a watcher sees it at once."""

    def write(event: dict[str, Any]) -> None:
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(event) + "\n")
            out.flush()

    return write


def config_from_dict(cls: type[ConfigT], data: dict[str, Any]) -> ConfigT:
    """Build a recipe config dataclass, naming any field it does not have."""
    unknown = sorted(set(data) - {f.name for f in fields(cls)})  # type: ignore[arg-type]
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {unknown}")
    return cls(**data)


def recipe_main(
    description: str,
    config_cls: type[ConfigT],
    run: Callable[[ConfigT, ProgressFn | None], dict[str, Any]],
    argv: Sequence[str] | None = None,
) -> int:
    """The command line every recipe shares: ``--config cfg.json [--progress-file p.jsonl]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, required=True, help="JSON file of the config.")
    parser.add_argument("--progress-file", type=Path, help="Append JSON progress lines here.")
    args = parser.parse_args(argv)
    die_with_parent_if_asked()
    config = config_from_dict(config_cls, json.loads(args.config.read_text()))
    progress = jsonl_progress_writer(args.progress_file) if args.progress_file else None
    metrics = run(config, progress)
    if metrics:  # the other ranks of a multi-process run return none
        json.dump(metrics, sys.stdout)
        sys.stdout.write("\n")
    return 0


def exit_now(code: int) -> NoReturn:
    """End a finished run without the interpreter's teardown of torch & co.

    Tearing down the loaded modules costs 1-4 s of CPU per run here, after the checkpoint is
    already in place. The atexit handlers (temporary dataset files, logging) still run and
    the output is flushed; only the module teardown is skipped.
    """
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
