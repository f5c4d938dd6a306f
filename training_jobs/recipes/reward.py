"""Bradley–Terry reward model on an exported preference dataset, with TRL's ``RewardTrainer``.

Self-contained (no Django), like the DPO recipe::

    python -m training_jobs.recipes.reward --config config.json [--progress-file progress.jsonl]

``config.json`` holds the fields of ``RewardRecipeConfig``. The data is the same JSONL as DPO's:
TRL's conversational ``prompt``/``chosen``/``rejected`` plus an optional Likert ``strength``.

Why Bradley–Terry over pairs rather than a K-wise Plackett–Luce loss: Arbiter's judgments are
mostly pairwise Likert verdicts (K = 2, where Plackett–Luce *is* Bradley–Terry), a ranking of K
candidates expands into its C(K,2) pairs without losing order information, pairs carry a per-pair
margin from the Likert strength (a full ranking has no place for one), and pairs keep TRL's tested
trainer and collator. What Plackett–Luce would add — a prompt with many candidates not dominating
the loss — is handled by weighting each pair by 1/(pairs of its prompt), as InstructGPT did.
"""

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from trl import RewardConfig, RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

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
    prompt_key,
    recipe_main,
    resolve_device,
    split_by_prompt,
    start_run_dir,
    use_bf16,
)

MARGIN_MODES = ("off", "strength")
NO_STRENGTH = -1  # rows exported without a Likert strength (e.g. pairs from a ranking)
# Llama 2's "small" margins (significantly / better / slightly / negligibly better) laid on
# Arbiter's eight-point scale, whose strengths run 4 (far better) down to 1 (slightly better).
LLAMA2_MARGINS = {"1": 0.0, "2": 1 / 3, "3": 2 / 3, "4": 1.0}


@dataclass
class RewardRecipeConfig(DistributedConfig):
    data_path: str = field(
        metadata={
            "help": "JSONL in TRL's conversational preference format (`prompt` messages, "
            "one-message `chosen`/`rejected` lists) with an optional integer `strength`. Other "
            "columns are dropped."
        }
    )
    model_path: str = field(
        metadata={
            "help": "Starting checkpoint (local dir). Loaded as AutoModelForSequenceClassification "
            "with one label: an encoder or a causal LM gets a fresh scalar head."
        }
    )
    output_dir: str = field(metadata={"help": "Where the final checkpoint and metrics.json go."})
    data_snapshot_id: str | None = field(
        default=None,
        metadata={"help": "Id of the exported snapshot; copied into metrics.json for provenance."},
    )
    num_train_epochs: float = field(
        default=1.0,
        metadata={"help": "Passes over the data. One is the norm: reward models overfit fast."},
    )
    learning_rate: float = field(
        default=1e-5,
        metadata={"help": "AdamW learning rate; the tiny CPU model needs ~1e-4 to move quickly."},
    )
    per_device_train_batch_size: int = field(
        default=8, metadata={"help": "Preference pairs per device per step."}
    )
    max_length: int = field(
        default=512,
        metadata={
            "help": "Max tokens of prompt+completion. TRL drops (does not truncate) pairs whose "
            "chosen or rejected side is longer; metrics.json counts them in "
            "`rows_dropped_for_length`. At most the backbone's positions (512 for MiniLM)."
        },
    )
    eval_fraction: float = field(
        default=0.1,
        metadata={
            "help": "Share of distinct prompts held out, with all their pairs, for held-out "
            "accuracy. 0 disables evaluation."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed for the split, data order and init."})
    margin: str = field(
        default="off",
        metadata={
            "help": "off: plain Bradley–Terry loss. strength: Llama 2 style margin, "
            "-log σ(r_c - r_r - m(strength)), with m from `margin_by_strength`."
        },
    )
    margin_by_strength: dict[str, float] = field(
        default_factory=lambda: dict(LLAMA2_MARGINS),
        metadata={
            "help": "Margin per Likert strength (keys are strengths as strings). The default suits "
            "the eight-point scale (strengths 1-4); for the five-point scale (1 better, 2 much "
            "better) something like {'1': 0.33, '2': 1.0}. A strength missing here is an error."
        },
    )
    balance_prompts: bool = field(
        default=True,
        metadata={
            "help": "Weight each pair by 1/(pairs of its prompt), rescaled to mean 1, so a ranking "
            "of K candidates (C(K,2) pairs) or a pair judged by many annotators counts once."
        },
    )
    center_rewards_coefficient: float | None = field(
        default=None,
        metadata={
            "help": "If set (0.01 is typical), adds coef * mean((r_c + r_r)^2) so rewards stay "
            "centred on zero and are comparable across checkpoints."
        },
    )
    device: str = field(
        default="auto",
        metadata={"help": "auto (CUDA when available), cpu or cuda. bf16 is used on CUDA."},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for memory on big models."}
    )

    def __post_init__(self) -> None:
        if self.margin not in MARGIN_MODES:
            raise ValueError(f"margin must be one of {MARGIN_MODES}, not {self.margin!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RewardRecipeConfig":
        return config_from_dict(cls, data)


def prompt_balance_weights(keys: Sequence[str]) -> list[float]:
    """Per-pair loss weights that give every prompt the same total weight (book §5.4.2).

    A prompt with n pairs gets 1/n per pair, times (pairs / prompts) so the weights average 1 and
    the learning rate means the same with or without balancing.
    """
    if not keys:
        return []
    pairs_per_prompt = Counter(keys)
    scale = len(keys) / len(pairs_per_prompt)
    return [scale / pairs_per_prompt[key] for key in keys]


def strength_margin(strength: int, margin_by_strength: dict[str, float]) -> float:
    if strength == NO_STRENGTH:
        raise ValueError("margin='strength' needs a `strength` on every row")
    try:
        return float(margin_by_strength[str(strength)])
    except KeyError:
        known = sorted(margin_by_strength)
        raise ValueError(
            f"no margin for strength {strength}; margin_by_strength has {known}"
        ) from None


def likert_strength(value: Any) -> int:
    """A row's strength as a whole Likert point, or NO_STRENGTH.

    Arbiter's export writes strengths as numbers (2.0), which count; a fractional mean of
    several annotators has no point of the scale and counts as missing.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NO_STRENGTH
    return int(value) if float(value).is_integer() and value >= 0 else NO_STRENGTH


def training_rows(rows: list[dict[str, Any]], config: RewardRecipeConfig) -> list[dict[str, Any]]:
    """Rows as the trainer sees them: a prompt key to balance on, strength, optional margin."""
    prepared = []
    for row in rows:
        strength = likert_strength(row.get("strength"))
        item = {
            "prompt": row["prompt"],
            "chosen": row["chosen"],
            "rejected": row["rejected"],
            "prompt_key": prompt_key(row["prompt"]),
            "strength": strength,
        }
        if config.margin == "strength":
            item["margin"] = strength_margin(strength, config.margin_by_strength)
        prepared.append(item)
    return prepared


def held_out_summary(pairs: list[tuple[float, float, int]]) -> dict[str, Any]:
    """Strict accuracy (a tie counts wrong), mean margin and accuracy per strength bucket."""
    if not pairs:
        return {"eval_accuracy": None, "eval_margin_mean": None, "eval_accuracy_by_strength": {}}
    buckets: dict[str, list[bool]] = defaultdict(list)
    for chosen, rejected, strength in pairs:
        name = "unknown" if strength == NO_STRENGTH else str(strength)
        buckets[name].append(chosen > rejected)
    correct = [chosen > rejected for chosen, rejected, _ in pairs]
    return {
        "eval_accuracy": sum(correct) / len(correct),
        "eval_margin_mean": sum(chosen - rejected for chosen, rejected, _ in pairs) / len(pairs),
        "eval_accuracy_by_strength": {
            name: {"accuracy": sum(hits) / len(hits), "pairs": len(hits)}
            for name, hits in sorted(buckets.items())
        },
    }


@dataclass
class WeightedPreferenceCollator(DataCollatorForPreference):
    """TRL's pair collator, also passing each pair's loss weight and Likert strength through."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        batch["weight"] = torch.tensor([e["weight"] for e in examples], dtype=torch.float)  # (B,)
        batch["strength"] = torch.tensor([e["strength"] for e in examples])  # (B,)
        return batch


class BalancedRewardTrainer(RewardTrainer):
    """RewardTrainer with per-pair loss weights, length-drop counts and held-out reward capture.

    TRL 1.16's loss is a plain mean over the batch and its collator keeps only the ids and
    `margin`, so per-prompt weights need a subclass. Sampling pairs with probability 1/n instead
    would need no subclass but throws data away and adds variance; the weighted mean keeps every
    pair. The override reuses TRL's forward and logging and only replaces the loss.
    """

    def __init__(self, *args: Any, balance_prompts: bool, **kwargs: Any) -> None:
        # Set before TRL's __init__, which prepares the datasets through `_prepare_dataset`.
        self.balance_prompts = balance_prompts
        self.rows_dropped_for_length: dict[str, int] = {}
        self.eval_pairs: list[tuple[float, float, int]] = []
        super().__init__(*args, **kwargs)

    def _prepare_dataset(  # type: ignore[override]  # map-style datasets only
        self,
        dataset: Dataset,
        processing_class: PreTrainedTokenizerBase,
        args: RewardConfig,
        dataset_name: str,
    ) -> Dataset:
        prepared = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        # TRL silently filters pairs longer than max_length here; count them.
        self.rows_dropped_for_length[dataset_name] = len(dataset) - len(prepared)
        keys = prepared["prompt_key"]
        # Weights on the pairs that survived the filter, so each prompt still sums to the same.
        weights = prompt_balance_weights(keys) if self.balance_prompts else [1.0] * len(keys)
        return prepared.add_column("weight", weights)

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            self._signature_columns = [  # type: ignore[assignment]  # Trainer declares it None
                "chosen_ids",
                "rejected_ids",
                "margin",
                "weight",
                "strength",
            ]

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        weight = inputs.pop("weight")  # (B,)
        strength = inputs.pop("strength")  # (B,)
        _, outputs = super().compute_loss(model, inputs, return_outputs=True)
        rewards_chosen, rewards_rejected = outputs.logits.squeeze(-1).chunk(2)  # (B,), (B,)
        margin = inputs.get("margin", 0.0)  # (B,) or a scalar
        per_pair = -F.logsigmoid(rewards_chosen - rewards_rejected - margin)  # (B,)
        loss = (weight * per_pair).mean()
        # self.args is our RewardConfig; the stubs know it only as TrainingArguments.
        if self.args.center_rewards_coefficient is not None:  # type: ignore[attr-defined]
            centring = torch.mean((rewards_chosen + rewards_rejected) ** 2)
            loss = loss + self.args.center_rewards_coefficient * centring  # type: ignore[attr-defined]
        if not model.training:
            self._capture_eval_pairs(rewards_chosen, rewards_rejected, strength)
        return (loss, outputs) if return_outputs else loss

    def _capture_eval_pairs(
        self, chosen: torch.Tensor, rejected: torch.Tensor, strength: torch.Tensor
    ) -> None:
        # gather_for_metrics drops the samples a distributed sampler repeats to even out ranks.
        chosen, rejected, strength = self.accelerator.gather_for_metrics(
            (chosen.detach().float(), rejected.detach().float(), strength)
        )
        pairs = zip(chosen.tolist(), rejected.tolist(), strength.tolist(), strict=True)
        self.eval_pairs.extend(pairs)


def run_reward(config: RewardRecipeConfig, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Train, write checkpoint + metrics.json into ``config.output_dir`` and return the metrics."""
    started = time.monotonic()
    output_dir = Path(config.output_dir)
    scratch_dir = start_run_dir(output_dir)
    device = resolve_device(config.device)
    data_path = Path(config.data_path)
    rows = load_preference_rows(data_path, extra_columns=("strength",))
    train_rows, eval_rows = split_by_prompt(
        rows, eval_fraction=config.eval_fraction, seed=config.seed
    )
    tokenizer = AutoTokenizer.from_pretrained(config.model_path)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token  # as RewardTrainer would
    recorder = ProgressRecorder(progress)
    trainer = BalancedRewardTrainer(
        model=config.model_path,
        args=trl_config(config, device, scratch_dir),
        train_dataset=Dataset.from_list(training_rows(train_rows, config)),
        eval_dataset=Dataset.from_list(training_rows(eval_rows, config)) if eval_rows else None,
        processing_class=tokenizer,
        data_collator=WeightedPreferenceCollator(pad_token_id=tokenizer.pad_token_id),
        callbacks=[recorder],
        balance_prompts=config.balance_prompts,
    )
    # the map-style Dataset given above, as prepared by the trainer
    if len(cast(Dataset, trainer.train_dataset)) == 0:
        raise ValueError(f"every training pair is longer than max_length={config.max_length}")
    result = trainer.train()
    eval_loss = _evaluate(trainer) if eval_rows else None
    # Every rank calls save_model: sharded (FSDP/ZeRO-3) weights are gathered there.
    trainer.save_model(str(scratch_dir))
    if not trainer.is_world_process_zero():
        return {}

    dropped = trainer.rows_dropped_for_length
    metrics = {
        "train_loss_final": recorder.last_loss(),
        "train_loss_mean": result.training_loss,
        "loss_history": recorder.history,
        "steps": result.global_step,
        "train_seconds": result.metrics.get("train_runtime"),
        "train_samples_per_s": result.metrics.get("train_samples_per_second"),
        "processes": trainer.accelerator.num_processes,
        "data_rows": len(rows),
        "train_rows": len(train_rows),
        "train_rows_used": len(cast(Dataset, trainer.train_dataset)),
        "train_prompts": len({prompt_key(row["prompt"]) for row in train_rows}),
        "eval_rows": len(eval_rows),
        "eval_rows_used": len(eval_rows) - dropped.get("eval", 0),
        "rows_dropped_for_length": sum(dropped.values()),
        "eval_loss": eval_loss,
        **held_out_summary(trainer.eval_pairs),
        "device": device,
        "precision": "bf16" if use_bf16(device) else "fp32",
        "versions": library_versions(),
        "data_snapshot_id": config.data_snapshot_id,
        "data_sha256": file_sha256(data_path),
        "seconds": round(time.monotonic() - started, 3),
        "process_cpu_s": round(time.process_time(), 3),  # imports included
        "config": asdict(config),
    }
    finish_run_dir(scratch_dir, output_dir, metrics)
    return metrics


def _evaluate(trainer: BalancedRewardTrainer) -> float | None:
    if not trainer.eval_dataset:  # every held-out pair was too long
        return None
    trainer.eval_pairs.clear()
    return trainer.evaluate().get("eval_loss")


def trl_config(config: RewardRecipeConfig, device: str, output_dir: Path) -> RewardConfig:
    return RewardConfig(
        output_dir=str(output_dir),
        num_train_epochs=config.num_train_epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
        max_length=config.max_length,
        center_rewards_coefficient=config.center_rewards_coefficient,
        seed=config.seed,
        use_cpu=device == "cpu",
        # TRL turns bf16 on by default, even on CPU where it is slow and lossy.
        bf16=use_bf16(device),
        activation_checkpointing=config.gradient_checkpointing,
        prediction_loss_only=True,  # held-out rewards are captured in compute_loss instead
        logging_steps=1,
        save_strategy="no",  # the recipe saves once, atomically, at the end
        report_to="none",
        disable_tqdm=True,
        **config.trainer_kwargs(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    description = "Bradley–Terry reward model on preference pairs."
    return recipe_main(description, RewardRecipeConfig, run_reward, argv)


if __name__ == "__main__":
    exit_now(main())  # an exception still exits the usual way, with its traceback
