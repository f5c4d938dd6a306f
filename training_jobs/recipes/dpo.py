"""DPO on an exported preference dataset with TRL's ``DPOTrainer``.

Self-contained (no Django) so the same file runs in a Celery-spawned child process, under
``torchrun`` or under ``accelerate launch``::

    python -m training_jobs.recipes.dpo --config config.json [--progress-file progress.jsonl]

``config.json`` holds the fields of ``DPORecipeConfig``. The recipe trains into
``<output_dir>.tmp`` and renames it to ``output_dir`` only once the checkpoint (model, tokenizer)
and ``metrics.json`` are fully written, so an ``output_dir`` that exists is always complete and a
``.tmp`` sibling marks a run that died.

Multi-turn data: a row's ``prompt`` may hold earlier user *and* assistant turns; TRL renders them
with the chat template as context and masks them out of the loss, so only the final (chosen or
rejected) assistant turn is trained. Unrolling a conversation into one example per assistant turn
needs a judged pair for every turn, which Arbiter's export does not carry (a task's earlier
assistant turns are fixed context, not candidates), so there is no unroll switch here: an exporter
with per-turn pairs writes one row per judged turn, earlier turns as its prompt, and this recipe
trains those rows as they are.
"""

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import peft
from accelerate.utils import is_peft_model
from datasets import Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from trl import DPOConfig, DPOTrainer

from .common import (
    DistributedConfig,
    ProgressFn,
    ProgressRecorder,
    config_from_dict,
    exit_now,
    file_sha256,
    finish_run_dir,
    library_versions,
    load_preference_rows,
    recipe_main,
    resolve_device,
    split_by_prompt,
    start_run_dir,
    use_bf16,
)

# The losses this recipe is tested with. `robust` is the label-smoothed (noisy-label) DPO.
LOSS_TYPES = ("sigmoid", "ipo", "robust", "hinge")
# Under the scratch dir while training, removed before the checkpoint is finished.
SHARED_DATA_DIR = "shared-datasets"


@dataclass
class DPORecipeConfig(DistributedConfig):
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
    data_snapshot_id: str | None = field(
        default=None,
        metadata={"help": "Id of the exported snapshot; copied into metrics.json for provenance."},
    )
    beta: float = field(
        default=0.1,
        metadata={
            "help": "Strength of the KL penalty towards the reference (τ of IPO for loss 'ipo')."
        },
    )
    loss_type: str = field(
        default="sigmoid",
        metadata={
            "help": "sigmoid (DPO), ipo (squared loss on length-normalised log-ratios), robust "
            "(DPO unbiased for labels flipped with probability `label_smoothing`) or hinge."
        },
    )
    label_smoothing: float = field(
        default=0.0,
        metadata={
            "help": "Assumed share of flipped preference labels, in [0, 0.5); only the robust loss "
            "uses it (since TRL 0.29 the sigmoid loss ignores it, so it is refused there)."
        },
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
            "help": "Max tokens of prompt+completion; longer pairs are cut at the end "
            "(`rows_truncated`) and pairs whose prompt alone fills it are dropped "
            "(`rows_dropped_for_length`)."
        },
    )
    eval_fraction: float = field(
        default=0.0,
        metadata={
            "help": "Share of distinct prompts held out, with all their pairs, for the held-out "
            "implicit-reward accuracy and margin. 0 trains on everything."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed for the split, data order and init."})
    precompute_ref_log_probs: bool = field(
        default=True,
        metadata={
            "help": "Score the data with the reference once before training, so the reference "
            "model is not held in memory next to the policy (about half the peak memory)."
        },
    )
    ref_logps_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Keep precomputed reference log-probs here, keyed by data snapshot, reference "
            "checkpoint, max_length and precision, so a re-run or a β sweep reuses them. None "
            "keeps them for this run only."
        },
    )
    lora_r: int = field(
        default=0,
        metadata={
            "help": "0 trains every weight; >0 trains LoRA adapters of this rank instead (for "
            "big models) and merges them into the saved checkpoint."
        },
    )
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (α / r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: str = field(
        default="all-linear",
        metadata={"help": "Modules that get adapters: 'all-linear' or a comma-separated list."},
    )
    device: str = field(
        default="auto",
        metadata={"help": "auto (CUDA when available), cpu or cuda. bf16 is used on CUDA."},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for memory on big models."}
    )

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, not {self.loss_type!r}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError("label_smoothing must be in [0, 0.5)")
        if self.label_smoothing and self.loss_type != "robust":
            raise ValueError("label_smoothing only acts with loss_type='robust' in TRL >= 0.29")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DPORecipeConfig":
        return config_from_dict(cls, data)


class RefLogpsCache:
    """Reference log-probs kept on disk across runs (book §8.3: compute them once).

    One JSON file per key — data snapshot, reference checkpoint, and the settings that change
    the numbers — mapping a digest of each row's token ids to its (chosen, rejected) log-probs.
    Rows are looked up by digest, so another held-out split of the same snapshot still hits.
    """

    def __init__(self, directory: Path, key: dict[str, Any]) -> None:
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        self.path = directory / f"ref-logps-{name}.json"
        self.key = key

    def lookup(self, digests: list[str]) -> tuple[list[float], list[float]] | None:
        rows = self._read()
        if not all(digest in rows for digest in digests):
            return None
        return [rows[d][0] for d in digests], [rows[d][1] for d in digests]

    def store(self, digests: list[str], chosen: list[float], rejected: list[float]) -> None:
        rows = self._read()
        rows.update({d: [c, r] for d, c, r in zip(digests, chosen, rejected, strict=True)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Another job may write the same key at the same time: write aside, then swap in whole.
        scratch = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        scratch.write_text(json.dumps({"key": self.key, "rows": rows}))
        scratch.replace(self.path)

    def _read(self) -> dict[str, list[float]]:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text())["rows"]


def row_digest(prompt_ids: list[int], chosen_ids: list[int], rejected_ids: list[int]) -> str:
    return hashlib.sha256(json.dumps([prompt_ids, chosen_ids, rejected_ids]).encode()).hexdigest()


def checkpoint_fingerprint(model_path: str) -> str:
    """A content hash of a checkpoint dir, so a retrained checkpoint at the same path misses."""
    path = Path(model_path)
    if not path.is_dir():
        return model_path  # a hub id: offline, its name is all there is
    digest = hashlib.sha256()
    # Top-level files only: the weights, config and tokenizer live there, while subfolders such as
    # Trainer's checkpoint-*/ hold optimizer state that does not change the model.
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(f"{file.relative_to(path)}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


class ArbiterDPOTrainer(DPOTrainer):
    """DPOTrainer that counts what TRL drops or truncates and reuses cached reference log-probs."""

    def __init__(self, *args: Any, ref_logps_cache: RefLogpsCache | None, **kwargs: Any) -> None:
        # Set before TRL's __init__, which prepares the data and precomputes reference log-probs.
        self.ref_logps_cache = ref_logps_cache
        self.ref_logps_cache_hits: list[bool] = []
        self.dropped_for_length: dict[str, int] = {}
        self.truncated: dict[str, int] = {}
        super().__init__(*args, **kwargs)

    def _prepare_dataset(  # type: ignore[override]  # map-style datasets only
        self,
        dataset: Dataset,
        processing_class: PreTrainedTokenizerBase,
        args: DPOConfig,
        dataset_name: str,
    ) -> Dataset:
        prepared = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        # TRL drops rows whose prompt alone reaches max_length and its collator silently cuts
        # the rest at max_length; count both.
        self.dropped_for_length[dataset_name] = len(dataset) - len(prepared)
        self.truncated[dataset_name] = count_truncated(prepared, args.max_length)
        return prepared

    def _precompute_ref_logps(self, dataset: Dataset, name: str, batch_size: int) -> Dataset:
        if self.accelerator.num_processes > 1:
            dataset = self._on_shared_disk(dataset, name)
        if self.ref_logps_cache is None:
            return super()._precompute_ref_logps(dataset, name, batch_size)
        digests = [
            row_digest(row["prompt_ids"], row["chosen_ids"], row["rejected_ids"])
            for row in dataset.select_columns(["prompt_ids", "chosen_ids", "rejected_ids"])
        ]
        cached = self.ref_logps_cache.lookup(digests)
        self.ref_logps_cache_hits.append(cached is not None)
        if cached is not None:
            chosen, rejected = cached
            dataset = dataset.add_column("ref_chosen_logps", chosen)
            return dataset.add_column("ref_rejected_logps", rejected)
        dataset = super()._precompute_ref_logps(dataset, name, batch_size)
        if self.accelerator.is_main_process:
            self.ref_logps_cache.store(
                digests, list(dataset["ref_chosen_logps"]), list(dataset["ref_rejected_logps"])
            )
        return dataset

    def _on_shared_disk(self, dataset: Dataset, name: str) -> Dataset:
        """The dataset backed by a file in a directory every rank sees.

        TRL's rank 0 writes the reference log-probs next to the dataset's cache files and the
        other ranks read them from there; an in-memory dataset has none, so each rank would look
        in a temporary directory of its own and fail to find rank 0's file.
        """
        # trl_config always sets output_dir; TrainingArguments types it str | None.
        shared = Path(self.args.output_dir) / SHARED_DATA_DIR  # type: ignore[arg-type]
        shared.mkdir(parents=True, exist_ok=True)
        rank = self.accelerator.process_index
        return dataset.flatten_indices(cache_file_name=str(shared / f"{name}-rank{rank}.arrow"))

    def ref_logps_cache_status(self) -> str:
        if self.ref_logps_cache is None or not self.ref_logps_cache_hits:
            return "off"
        return "hit" if all(self.ref_logps_cache_hits) else "miss"


def count_truncated(dataset: Dataset, max_length: int | None) -> int:
    """Rows whose prompt plus longer completion exceeds max_length (the collator cuts them)."""
    if max_length is None:
        return 0
    columns = dataset.select_columns(["prompt_ids", "chosen_ids", "rejected_ids"])
    return sum(
        len(row["prompt_ids"]) + max(len(row["chosen_ids"]), len(row["rejected_ids"])) > max_length
        for row in columns
    )


def run_dpo(config: DPORecipeConfig, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Train, write checkpoint + metrics.json into ``config.output_dir`` and return the metrics."""
    started = time.monotonic()
    output_dir = Path(config.output_dir)
    scratch_dir = start_run_dir(output_dir)
    device = resolve_device(config.device)
    data_path = Path(config.data_path)
    data_sha256 = file_sha256(data_path)
    rows = load_preference_rows(data_path)
    train_rows, eval_rows = split_by_prompt(
        rows, eval_fraction=config.eval_fraction, seed=config.seed
    )
    recorder = ProgressRecorder(progress)
    trainer = ArbiterDPOTrainer(
        model=config.model_path,
        args=trl_config(config, device, scratch_dir),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=AutoTokenizer.from_pretrained(config.model_path),
        callbacks=[recorder],
        peft_config=lora_config(config),
        ref_logps_cache=ref_logps_cache(config, device, data_sha256),
    )
    # the map-style Dataset given above, as prepared by the trainer
    if len(cast(Dataset, trainer.train_dataset)) == 0:
        raise ValueError(f"every training prompt fills max_length={config.max_length}")
    lora = lora_summary(trainer)
    result = trainer.train()
    evaluation = evaluate(trainer) if eval_rows else {}
    save_policy(trainer, scratch_dir)
    if not trainer.is_world_process_zero():
        return {}
    shutil.rmtree(scratch_dir / SHARED_DATA_DIR, ignore_errors=True)

    metrics = {
        "train_loss_final": recorder.last_loss(),
        "train_loss_mean": result.training_loss,
        "loss_history": recorder.history,
        "data_rows": len(rows),
        "train_rows": len(train_rows),
        "train_rows_used": len(cast(Dataset, trainer.train_dataset)),
        "eval_rows": len(eval_rows),
        "eval_rows_used": len(eval_rows) - trainer.dropped_for_length.get("eval", 0),
        "rows_dropped_for_length": sum(trainer.dropped_for_length.values()),
        "rows_truncated": sum(trainer.truncated.values()),
        **held_out_metrics(evaluation),
        "steps": result.global_step,
        "train_seconds": result.metrics.get("train_runtime"),
        "train_samples_per_s": result.metrics.get("train_samples_per_second"),
        "processes": trainer.accelerator.num_processes,
        "ref_logps_cache": trainer.ref_logps_cache_status(),
        "lora": lora,
        "device": device,
        "precision": "bf16" if use_bf16(device) else "fp32",
        "versions": library_versions(),
        "data_snapshot_id": config.data_snapshot_id,
        "data_sha256": data_sha256,
        "seconds": round(time.monotonic() - started, 3),
        "process_cpu_s": round(time.process_time(), 3),  # imports included
        "config": asdict(config),
    }
    finish_run_dir(scratch_dir, output_dir, metrics)
    return metrics


def trl_config(config: DPORecipeConfig, device: str, output_dir: Path) -> DPOConfig:
    return DPOConfig(
        output_dir=str(output_dir),
        beta=config.beta,
        loss_type=[config.loss_type],
        label_smoothing=config.label_smoothing,
        learning_rate=config.learning_rate,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
        max_length=config.max_length,
        precompute_ref_log_probs=config.precompute_ref_log_probs,
        seed=config.seed,
        use_cpu=device == "cpu",
        # TRL turns bf16 on by default, even on CPU where it is slow and lossy.
        bf16=use_bf16(device),
        # The new name of `gradient_checkpointing`, which TRL sets to True by default.
        activation_checkpointing=config.gradient_checkpointing,
        # Otherwise evaluation runs a second forward per batch to hand logits to compute_metrics.
        prediction_loss_only=True,
        logging_steps=1,
        save_strategy="no",  # the recipe saves once, atomically, at the end
        report_to="none",
        disable_tqdm=True,
        **config.trainer_kwargs(),
    )


def lora_config(config: DPORecipeConfig) -> peft.LoraConfig | None:
    if config.lora_r <= 0:
        return None
    targets = config.lora_target_modules
    return peft.LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets if targets == "all-linear" else targets.split(","),
        task_type="CAUSAL_LM",
    )


def ref_logps_cache(config: DPORecipeConfig, device: str, data_sha256: str) -> RefLogpsCache | None:
    if config.ref_logps_cache_dir is None or not config.precompute_ref_log_probs:
        return None
    key = {
        "data_sha256": data_sha256,
        "reference": checkpoint_fingerprint(config.model_path),
        "max_length": config.max_length,
        "precision": "bf16" if use_bf16(device) else "fp32",
        "trl": library_versions()["trl"],
    }
    return RefLogpsCache(Path(config.ref_logps_cache_dir), key)


def lora_summary(trainer: DPOTrainer) -> dict[str, Any] | None:
    if not is_peft_model(trainer.model):
        return None
    model = cast("peft.PeftModel", trainer.model)  # is_peft_model said so
    trainable, total = model.get_nb_trainable_parameters()
    lora = cast("peft.LoraConfig", model.peft_config["default"])  # what lora_config builds
    return {
        "r": lora.r,
        "alpha": lora.lora_alpha,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "peft": peft.__version__,
    }


def evaluate(trainer: DPOTrainer) -> dict[str, float]:
    if not trainer.eval_dataset:  # every held-out prompt filled max_length
        return {}
    return trainer.evaluate()


def held_out_metrics(evaluation: dict[str, float]) -> dict[str, float | None]:
    # TRL's figures are means over eval batches; β·log-ratio is DPO's implicit reward.
    return {
        "eval_loss": evaluation.get("eval_loss"),
        "eval_reward_accuracy": evaluation.get("eval_rewards/accuracies"),
        "eval_reward_margin": evaluation.get("eval_rewards/margins"),
        "eval_reward_chosen": evaluation.get("eval_rewards/chosen"),
        "eval_reward_rejected": evaluation.get("eval_rewards/rejected"),
    }


def save_policy(trainer: DPOTrainer, scratch_dir: Path) -> None:
    # Trainer turns the KV cache off for training and would save it off; servers want it on.
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not is_peft_model(model):
        model.config.use_cache = True
        # Every rank calls save_model: sharded (FSDP/ZeRO-3) weights are gathered there.
        trainer.save_model(str(scratch_dir))
        return
    # Servers load plain checkpoints, so the adapters are merged into the base weights. Merging
    # needs whole weights on one rank: LoRA under ZeRO-3/FSDP is not supported here.
    if trainer.is_world_process_zero():
        merged = model.merge_and_unload()
        merged.config.use_cache = True
        merged.save_pretrained(scratch_dir)
        # processing_class is the tokenizer run_dpo passes; the stubs allow None.
        trainer.processing_class.save_pretrained(scratch_dir)  # type: ignore[union-attr]


def main(argv: Sequence[str] | None = None) -> int:
    return recipe_main("DPO on an exported preference dataset.", DPORecipeConfig, run_dpo, argv)


if __name__ == "__main__":
    exit_now(main())  # an exception still exits the usual way, with its traceback
