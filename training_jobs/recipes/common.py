"""Plumbing shared by the training recipes: data loading, the held-out split, progress, run dirs.

No Django here either: recipes run on bare training nodes under ``torchrun``/``accelerate``.
"""

import argparse
import hashlib
import json
import math
import random
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import torch
import transformers
import trl
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

ProgressFn = Callable[[dict[str, Any]], None]
PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")
ConfigT = TypeVar("ConfigT")


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
    config = config_from_dict(config_cls, json.loads(args.config.read_text()))
    progress = jsonl_progress_writer(args.progress_file) if args.progress_file else None
    metrics = run(config, progress)
    json.dump(metrics, sys.stdout)
    sys.stdout.write("\n")
    return 0
