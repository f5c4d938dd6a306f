import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from trl import RewardConfig

from models_serving.tiny_models import build_tiny_reward
from training_jobs.recipes.common import prompt_key, split_by_prompt
from training_jobs.recipes.reward import (
    NO_STRENGTH,
    BalancedRewardTrainer,
    RewardRecipeConfig,
    WeightedPreferenceCollator,
    held_out_summary,
    prompt_balance_weights,
    run_reward,
    strength_margin,
    training_rows,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER = "banana"
# High for a reward model, but lets the tiny CPU run learn the planted preference in seconds.
TINY_LR = 1e-4


def message(role: str, content: str) -> list[dict]:
    return [{"role": role, "content": content}]


def planted_row(i: int, *, strength: int = 1) -> dict:
    """The chosen reply always carries the marker word, the rejected one never does."""
    return {
        "prompt": message("user", f"Tell me about item {i}."),
        "chosen": message("assistant", f"Item {i} is a {MARKER} and it is fine."),
        "rejected": message("assistant", f"Item {i} is a thing and it is fine."),
        "strength": strength,
        "judgment_id": i,  # export metadata the recipe must ignore
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_reward(tmp_path_factory.mktemp("models") / "reward")


def recipe_config(data_path: Path, model_dir: Path, output_dir: Path, **overrides) -> dict:
    return {
        "data_path": str(data_path),
        "model_path": str(model_dir),
        "output_dir": str(output_dir),
        "learning_rate": TINY_LR,
        "per_device_train_batch_size": 4,
        "max_length": 64,
        "device": "cpu",
        **overrides,
    }


# --- pure policy functions ---------------------------------------------------------------


def test_prompt_balance_weights_give_every_prompt_the_same_total() -> None:
    # A ranking of K=4 candidates gives C(4,2)=6 pairs for prompt "a"; "b" and "c" have one each.
    keys = ["a"] * 6 + ["b", "c"]

    weights = prompt_balance_weights(keys)

    per_prompt = {
        key: sum(w for k, w in zip(keys, weights, strict=True) if k == key) for key in "abc"
    }
    assert per_prompt["a"] == pytest.approx(per_prompt["b"]) == pytest.approx(per_prompt["c"])
    assert weights[0] == pytest.approx(weights[5]) == pytest.approx(weights[6] / 6)
    assert sum(weights) / len(weights) == pytest.approx(1.0)


def test_prompt_balance_weights_leave_distinct_prompts_alone() -> None:
    assert prompt_balance_weights(["a", "b", "c"]) == [1.0, 1.0, 1.0]
    assert prompt_balance_weights([]) == []


def test_split_by_prompt_keeps_each_prompt_on_one_side() -> None:
    rows = [planted_row(i % 10) for i in range(30)]  # every prompt judged three times

    train, held_out = split_by_prompt(rows, eval_fraction=0.2, seed=3)

    train_keys = {prompt_key(row["prompt"]) for row in train}
    held_keys = {prompt_key(row["prompt"]) for row in held_out}
    assert len(held_keys) == 2 and len(train_keys) == 8
    assert not train_keys & held_keys
    assert len(train) + len(held_out) == 30
    assert split_by_prompt(rows, eval_fraction=0.2, seed=3) == (train, held_out)


def test_split_by_prompt_without_eval_keeps_everything() -> None:
    rows = [planted_row(i) for i in range(3)]
    assert split_by_prompt(rows, eval_fraction=0.0, seed=0) == (rows, [])
    with pytest.raises(ValueError, match="eval_fraction"):
        split_by_prompt(rows, eval_fraction=1.0, seed=0)


def test_strength_margin_follows_the_mapping() -> None:
    mapping = {"1": 0.0, "2": 1.0}
    assert strength_margin(2, mapping) == 1.0
    with pytest.raises(ValueError, match="no margin for strength 3"):
        strength_margin(3, mapping)
    with pytest.raises(ValueError, match="needs a `strength`"):
        strength_margin(NO_STRENGTH, mapping)


def test_training_rows_add_a_margin_column_only_when_asked(tmp_path: Path) -> None:
    rows = [planted_row(0, strength=2), {**planted_row(1), "strength": None}]
    plain = RewardRecipeConfig(data_path="d", model_path="m", output_dir="o")
    with_margin = RewardRecipeConfig(
        data_path="d", model_path="m", output_dir="o", margin="strength"
    )

    assert [row["strength"] for row in training_rows(rows, plain)] == [2, NO_STRENGTH]
    assert "margin" not in training_rows(rows, plain)[0]
    assert training_rows(rows[:1], with_margin)[0]["margin"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="needs a `strength`"):
        training_rows(rows, with_margin)


def test_held_out_summary_counts_ties_as_wrong_and_buckets_by_strength() -> None:
    pairs = [(1.0, 0.0, 1), (0.5, 0.5, 1), (2.0, 1.0, 2), (0.0, 1.0, NO_STRENGTH)]

    summary = held_out_summary(pairs)

    assert summary["eval_accuracy"] == 0.5
    assert summary["eval_margin_mean"] == pytest.approx((1 + 0 + 1 - 1) / 4)
    assert summary["eval_accuracy_by_strength"] == {
        "1": {"accuracy": 0.5, "pairs": 2},
        "2": {"accuracy": 1.0, "pairs": 1},
        "unknown": {"accuracy": 0.0, "pairs": 1},
    }
    assert held_out_summary([])["eval_accuracy"] is None


def test_config_rejects_unknown_fields_and_margin_modes() -> None:
    base = {"data_path": "d", "model_path": "m", "output_dir": "o"}
    with pytest.raises(ValueError, match="epochs"):
        RewardRecipeConfig.from_dict({**base, "epochs": 1})
    with pytest.raises(ValueError, match="margin must be one of"):
        RewardRecipeConfig.from_dict({**base, "margin": "likert"})


# --- training on the tiny MiniLM reward model --------------------------------------------


@pytest.mark.slow
def test_reward_model_learns_a_planted_preference(reward_dir: Path, tmp_path: Path) -> None:
    rows = [planted_row(i, strength=1 + i % 2) for i in range(32)]
    data_path = write_jsonl(tmp_path / "prefs.jsonl", rows)
    output_dir = tmp_path / "run"
    events: list[dict] = []
    config = RewardRecipeConfig(
        **recipe_config(data_path, reward_dir, output_dir, num_train_epochs=2, eval_fraction=0.25)
    )

    metrics = run_reward(config, progress=events.append)

    assert json.loads((output_dir / "metrics.json").read_text()) == metrics
    assert metrics["train_rows"] == 24 and metrics["eval_rows"] == 8
    assert metrics["rows_dropped_for_length"] == 0
    # An untrained head separates the pairs by ~0.01; a learned one by far more.
    assert metrics["eval_accuracy"] == 1.0
    assert metrics["eval_margin_mean"] > 0.5
    assert set(metrics["eval_accuracy_by_strength"]) == {"1", "2"}
    assert metrics["train_loss_final"] < metrics["loss_history"][0]["loss"]
    assert metrics["steps"] == 12 and [e["step"] for e in events] == list(range(1, 13))
    assert all(e["total"] == 12 for e in events)
    assert metrics["device"] == "cpu" and metrics["precision"] == "fp32"
    assert set(metrics["versions"]) == {"torch", "transformers", "trl"}
    assert len(metrics["data_sha256"]) == 64

    trained = AutoModelForSequenceClassification.from_pretrained(output_dir).eval()
    start = AutoModelForSequenceClassification.from_pretrained(reward_dir)
    assert any(
        not torch.equal(after, before)
        for after, before in zip(trained.parameters(), start.parameters(), strict=True)
    )
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    fresh = planted_row(999)
    scores = [
        trained(
            **tokenizer.apply_chat_template(
                fresh["prompt"] + fresh[side], return_dict=True, return_tensors="pt"
            )
        ).logits.item()
        for side in ("chosen", "rejected")
    ]
    assert scores[0] > scores[1]


@pytest.mark.slow
def test_pairs_longer_than_max_length_are_counted_not_lost(
    reward_dir: Path, tmp_path: Path
) -> None:
    long_reply = message("assistant", " ".join(["word"] * 100))
    rows = [planted_row(i) for i in range(6)] + [
        {**planted_row(i), "rejected": long_reply} for i in range(6, 9)
    ]
    data_path = write_jsonl(tmp_path / "prefs.jsonl", rows)
    config = RewardRecipeConfig(
        **recipe_config(data_path, reward_dir, tmp_path / "run", eval_fraction=0.0)
    )

    metrics = run_reward(config)

    assert metrics["train_rows"] == 9
    assert metrics["rows_dropped_for_length"] == 3
    assert metrics["train_rows_used"] == 6
    assert metrics["eval_accuracy"] is None


@pytest.mark.slow
def test_loss_applies_pair_weights_and_strength_margins(reward_dir: Path, tmp_path: Path) -> None:
    # Prompt 0 is judged three times, prompt 1 once: balancing gives 2/3 vs 2.
    rows = [planted_row(0, strength=2)] * 3 + [planted_row(1, strength=1)]
    config = RewardRecipeConfig(
        **recipe_config(tmp_path / "unused", reward_dir, tmp_path / "run"), margin="strength"
    )
    tokenizer = AutoTokenizer.from_pretrained(reward_dir)
    trainer = BalancedRewardTrainer(
        model=str(reward_dir),
        args=RewardConfig(
            output_dir=str(tmp_path / "out"),
            use_cpu=True,
            bf16=False,
            activation_checkpointing=False,
            report_to="none",
        ),
        train_dataset=Dataset.from_list(training_rows(rows, config)),
        processing_class=tokenizer,
        data_collator=WeightedPreferenceCollator(pad_token_id=tokenizer.pad_token_id),
        balance_prompts=True,
    )
    assert trainer.train_dataset["weight"] == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0])
    assert trainer.train_dataset["margin"] == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])

    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[3]])
    batch["weight"] = torch.tensor([3.0, 0.0])
    model = trainer.model.eval()
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, dict(batch), return_outputs=True)

    chosen, rejected = outputs.logits.squeeze(-1).chunk(2)
    # Only the first pair counts (weight 3 over a batch of 2), margin 1/3 from strength 2.
    expected = 3.0 * -F.logsigmoid(chosen[0] - rejected[0] - 1 / 3) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert math.isfinite(loss.item())


@pytest.mark.slow
def test_cli_appends_progress_lines_without_django(reward_dir: Path, tmp_path: Path) -> None:
    data_path = write_jsonl(tmp_path / "prefs.jsonl", [planted_row(i) for i in range(8)])
    output_dir = tmp_path / "run"
    config_path = tmp_path / "config.json"
    progress_path = tmp_path / "progress.jsonl"
    config_path.write_text(
        json.dumps(recipe_config(data_path, reward_dir, output_dir, data_snapshot_id="snap-7"))
    )
    # Recipes run on bare training nodes: a Django that refuses to import proves none is needed.
    no_django = tmp_path / "no_django" / "django"
    no_django.mkdir(parents=True)
    (no_django / "__init__.py").write_text("raise ImportError('recipes must not import Django')")

    # How the Celery task runs a recipe: a child process.
    completed = subprocess.run(
        [sys.executable, "-m", "training_jobs.recipes.reward", "--config", str(config_path)]
        + ["--progress-file", str(progress_path)],
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(no_django.parent)},
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [json.loads(line) for line in progress_path.read_text().splitlines()]
    assert [(line["step"], line["total"]) for line in lines] == [(1, 2), (2, 2)]
    printed = json.loads(completed.stdout.strip().splitlines()[-1])
    assert printed["data_snapshot_id"] == "snap-7"
    assert json.loads((output_dir / "metrics.json").read_text()) == printed
