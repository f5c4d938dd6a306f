"""DPO on an exported preference dataset with TRL's ``DPOTrainer``.

Self-contained (no Django) so the same file runs in a Celery-spawned child process, under
``torchrun`` or under ``accelerate launch``::

    python -m training_jobs.recipes.dpo --config config.json [--progress-file progress.jsonl]

``config.json`` holds the fields of ``DPORecipeConfig``. The recipe trains into
``<output_dir>.tmp`` and renames it to ``output_dir`` only once the checkpoint (model, tokenizer)
and ``metrics.json`` are fully written, so an ``output_dir`` that exists is always complete and a
``.tmp`` sibling marks a run that died.
"""

import argparse
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import transformers
import trl
from datasets import Dataset
from transformers import (
    AutoTokenizer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from trl import DPOConfig, DPOTrainer

ProgressFn = Callable[[dict[str, Any]], None]
PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


@dataclass
class DPORecipeConfig:
    data_path: str = field(
        metadata={
            "help": "JSONL in TRL's conversational preference format: `prompt` is a list of "
            "{role, content} messages, `chosen` and `rejected` are one-message assistant lists. "
            "Other columns (metadata) are dropped."
        }
    )
    model_path: str = field(
        metadata={"help": "Starting policy (a local checkpoint dir); also the frozen reference."}
    )
    output_dir: str = field(metadata={"help": "Where the final checkpoint and metrics.json go."})
    beta: float = field(
        default=0.1, metadata={"help": "Strength of the KL penalty towards the reference."}
    )
    loss_type: str = field(
        default="sigmoid", metadata={"help": "TRL DPO loss: sigmoid, ipo, hinge, robust, ..."}
    )
    learning_rate: float = field(
        default=1e-6,
        metadata={
            "help": "AdamW learning rate. 1e-6 (TRL's default) suits real models; the tiny CPU "
            "policy needs ~5e-4 for the loss to move within a few steps."
        },
    )
    max_steps: int = field(default=10, metadata={"help": "Optimizer steps to run."})
    per_device_train_batch_size: int = field(
        default=2, metadata={"help": "Preference pairs per device per step."}
    )
    max_length: int = field(
        default=512,
        metadata={
            "help": "Max tokens of prompt+completion; longer pairs are cut at the end and pairs "
            "whose prompt alone fills it are dropped (see `train_rows_used` in metrics.json)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed for data order and initialisation."})
    device: str = field(
        default="auto",
        metadata={"help": "auto (CUDA when available), cpu or cuda. bf16 is used on CUDA."},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for memory on big models."}
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DPORecipeConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DPO config fields: {unknown}")
        return cls(**data)


def run_dpo(config: DPORecipeConfig, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Train, write checkpoint + metrics.json into ``config.output_dir`` and return the metrics."""
    started = time.monotonic()
    output_dir = Path(config.output_dir)
    if output_dir.exists():
        raise FileExistsError(f"{output_dir} already exists; refusing to overwrite a finished run")
    scratch_dir = output_dir.with_name(output_dir.name + ".tmp")
    shutil.rmtree(scratch_dir, ignore_errors=True)  # left by a run that died

    device = resolve_device(config.device)
    rows = load_preference_rows(Path(config.data_path))
    recorder = ProgressRecorder(progress)
    trainer = DPOTrainer(
        model=config.model_path,
        args=trl_config(config, device, scratch_dir),
        train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(config.model_path),
        callbacks=[recorder],
    )
    result = trainer.train()
    # Trainer turns the KV cache off for training and would save it off; servers want it on.
    trainer.model.config.use_cache = True
    # Every rank calls save_model: sharded (FSDP/ZeRO-3) weights are gathered there.
    trainer.save_model(str(scratch_dir))
    if not trainer.is_world_process_zero():
        return {}

    metrics = {
        "train_loss_final": recorder.last_loss(),
        "train_loss_mean": result.training_loss,
        "loss_history": recorder.history,
        "train_rows": len(rows),
        # TRL silently drops pairs whose prompt alone fills max_length.
        "train_rows_used": len(trainer.train_dataset),
        "steps": result.global_step,
        "device": device,
        "versions": library_versions(),
        "seconds": round(time.monotonic() - started, 3),
        "config": asdict(config),
    }
    (scratch_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    # Last, so that `output_dir` existing means the run finished.
    scratch_dir.rename(output_dir)
    return metrics


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return device


def load_preference_rows(path: Path) -> list[dict[str, Any]]:
    """Read the JSONL, keeping only prompt/chosen/rejected with plain {role, content} messages.

    Extra columns are dropped here rather than left to TRL: a stray `images` or `tools` column
    would switch TRL onto another code path, and ragged metadata can break Arrow's schema.
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
            rows.append({column: _plain_messages(record[column]) for column in PREFERENCE_COLUMNS})
    if not rows:
        raise ValueError(f"{path} holds no preference rows")
    return rows


def _plain_messages(value: Any) -> Any:
    if isinstance(value, list):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    return value  # TRL's standard (plain-text) format passes through untouched


def trl_config(config: DPORecipeConfig, device: str, output_dir: Path) -> DPOConfig:
    on_cuda = device == "cuda"
    return DPOConfig(
        output_dir=str(output_dir),
        beta=config.beta,
        loss_type=[config.loss_type],
        learning_rate=config.learning_rate,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        max_length=config.max_length,
        seed=config.seed,
        use_cpu=not on_cuda,
        # TRL turns bf16 on by default, even on CPU where it is slow and lossy.
        bf16=on_cuda and torch.cuda.is_bf16_supported(),
        # The new name of `gradient_checkpointing`, which TRL sets to True by default.
        activation_checkpointing=config.gradient_checkpointing,
        logging_steps=1,
        save_strategy="no",  # the recipe saves once, atomically, at the end
        report_to="none",
        disable_tqdm=True,
    )


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
        # The end-of-training summary is logged without a per-step "loss".
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        entry = {"step": state.global_step, **_numbers(logs)}
        self.history.append(entry)
        if self.progress is not None:
            self.progress({"total": state.max_steps, **entry})

    def last_loss(self) -> float | None:
        return self.history[-1].get("loss") if self.history else None


def _numbers(logs: dict[str, Any]) -> dict[str, float | None]:
    # A diverged run logs NaN/inf; None keeps metrics.json and progress lines valid JSON.
    return {
        key: float(value) if math.isfinite(value) else None
        for key, value in logs.items()
        if isinstance(value, int | float)
    }


def library_versions() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
    }


def jsonl_progress_writer(path: Path) -> ProgressFn:
    """Append each progress event as one JSON line, flushed so a watcher sees it at once."""

    def write(event: dict[str, Any]) -> None:
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(event) + "\n")
            out.flush()

    return write


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="DPO on an exported preference dataset.")
    parser.add_argument("--config", type=Path, required=True, help="JSON file of DPORecipeConfig.")
    parser.add_argument("--progress-file", type=Path, help="Append JSON progress lines here.")
    args = parser.parse_args(argv)
    config = DPORecipeConfig.from_dict(json.loads(args.config.read_text()))
    progress = jsonl_progress_writer(args.progress_file) if args.progress_file else None
    metrics = run_dpo(config, progress)
    json.dump(metrics, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
