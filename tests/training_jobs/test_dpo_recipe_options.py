"""DPO recipe options: loss types, held-out split, length report, LoRA, reference log-prob cache."""

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM
from trl import DPOTrainer

from models_serving.tiny_models import build_tiny_policy
from training_jobs.recipes.dpo import (
    DPORecipeConfig,
    RefLogpsCache,
    checkpoint_fingerprint,
    row_digest,
    run_dpo,
)

TINY_LR = 5e-4


def message(role: str, content: str) -> list[dict]:
    return [{"role": role, "content": content}]


def preference_row(i: int) -> dict:
    prompt = message("user", f"What is {i} plus {i}?")
    if i % 3 == 0:  # multi-turn: earlier turns are context, only the final reply is trained
        prompt += message("assistant", "Let me think.") + message("user", "Go on.")
    return {
        "prompt": prompt,
        "chosen": message("assistant", f"It is {2 * i}."),
        "rejected": message("assistant", "I would rather not say, sorry."),
    }


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_policy(tmp_path_factory.mktemp("models") / "policy")


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    rows = [preference_row(i) for i in range(10)]
    # One prompt alone fills max_length (TRL drops it), one reply runs past it (TRL cuts it).
    rows.append({**preference_row(10), "prompt": message("user", " ".join(["why"] * 80))})
    rows.append({**preference_row(11), "rejected": message("assistant", " ".join(["no"] * 80))})
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def ref_forwards(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts reference-model batches scored while precomputing log-probs."""
    calls: list[int] = []
    original = DPOTrainer.compute_ref_log_probs

    def counting(self, model, inputs):
        calls.append(len(inputs["input_ids"]))
        return original(self, model, inputs)

    monkeypatch.setattr(DPOTrainer, "compute_ref_log_probs", counting)
    return calls


def config(data_path: Path, policy_dir: Path, output_dir: Path, **overrides) -> DPORecipeConfig:
    return DPORecipeConfig(
        data_path=str(data_path),
        model_path=str(policy_dir),
        output_dir=str(output_dir),
        learning_rate=TINY_LR,
        max_steps=3,
        per_device_train_batch_size=2,
        max_length=48,
        device="cpu",
        **overrides,
    )


def changed_parameters(trained_dir: Path, start_dir: Path) -> list[str]:
    trained = AutoModelForCausalLM.from_pretrained(trained_dir)
    start = AutoModelForCausalLM.from_pretrained(start_dir)
    return [
        name
        for (name, after), (_, before) in zip(
            trained.named_parameters(), start.named_parameters(), strict=True
        )
        if not torch.equal(after, before)
    ]


@pytest.mark.slow
def test_reference_log_probs_are_cached_across_runs_and_betas(
    data_path: Path, policy_dir: Path, tmp_path: Path, ref_forwards: list[int]
) -> None:
    cache_dir = tmp_path / "ref-cache"
    first = run_dpo(
        config(
            data_path,
            policy_dir,
            tmp_path / "run1",
            eval_fraction=0.25,
            ref_logps_cache_dir=str(cache_dir),
            data_snapshot_id="snap-1",
        )
    )
    scored_first = sum(ref_forwards)
    ref_forwards.clear()

    # A β sweep point with another loss: same data, same reference, nothing to recompute.
    second = run_dpo(
        config(
            data_path,
            policy_dir,
            tmp_path / "run2",
            eval_fraction=0.25,
            ref_logps_cache_dir=str(cache_dir),
            beta=0.5,
            loss_type="ipo",
        )
    )

    assert first["ref_logps_cache"] == "miss" and second["ref_logps_cache"] == "hit"
    assert scored_first == 2 * (first["train_rows_used"] + first["eval_rows_used"])
    assert ref_forwards == []
    assert len(list(cache_dir.glob("ref-logps-*.json"))) == 1
    for metrics in (first, second):
        assert math.isfinite(metrics["train_loss_final"])
        assert metrics["data_rows"] == 12
        assert metrics["train_rows"] + metrics["eval_rows"] == 12
        assert metrics["rows_dropped_for_length"] == 1 and metrics["rows_truncated"] == 1
        assert 0.0 <= metrics["eval_reward_accuracy"] <= 1.0
        assert math.isfinite(metrics["eval_reward_margin"])
    assert first["data_snapshot_id"] == "snap-1" and first["data_sha256"] == second["data_sha256"]
    assert second["config"]["loss_type"] == "ipo"
    assert changed_parameters(tmp_path / "run2", policy_dir)


@pytest.mark.slow
def test_robust_loss_with_lora_saves_a_merged_plain_checkpoint(
    data_path: Path, policy_dir: Path, tmp_path: Path
) -> None:
    output_dir = tmp_path / "run"

    metrics = run_dpo(
        config(
            data_path,
            policy_dir,
            output_dir,
            loss_type="robust",
            label_smoothing=0.1,
            lora_r=4,
            precompute_ref_log_probs=False,
        )
    )

    assert math.isfinite(metrics["train_loss_final"]) and metrics["steps"] == 3
    assert metrics["ref_logps_cache"] == "off"
    lora = metrics["lora"]
    assert lora["r"] == 4 and 0 < lora["trainable_parameters"] < lora["total_parameters"] / 10
    # The adapters are merged: the checkpoint is a plain model with only attention/MLP changed.
    changed = changed_parameters(output_dir, policy_dir)
    assert changed and not any("embed" in name or "norm" in name for name in changed)
    assert not list(output_dir.glob("adapter_*"))


def test_label_smoothing_is_refused_where_trl_would_ignore_it() -> None:
    base = {"data_path": "d", "model_path": "m", "output_dir": "o"}
    with pytest.raises(ValueError, match="only acts with loss_type='robust'"):
        DPORecipeConfig.from_dict({**base, "label_smoothing": 0.1})
    with pytest.raises(ValueError, match="loss_type must be one of"):
        DPORecipeConfig.from_dict({**base, "loss_type": "cdpo"})
    assert DPORecipeConfig.from_dict({**base, "loss_type": "ipo"}).loss_type == "ipo"


def test_ref_logps_cache_finds_rows_by_token_ids(tmp_path: Path) -> None:
    cache = RefLogpsCache(tmp_path, {"data_sha256": "abc", "reference": "ref"})
    rows = [row_digest([1, 2], [3], [4]), row_digest([1, 2], [5], [6])]
    assert cache.lookup(rows) is None

    cache.store(rows, [-1.5, -2.5], [-3.5, -4.5])

    assert cache.lookup(rows[::-1]) == ([-2.5, -1.5], [-4.5, -3.5])
    assert cache.lookup([row_digest([9], [9], [9])]) is None
    other_reference = RefLogpsCache(tmp_path, {"data_sha256": "abc", "reference": "other"})
    assert other_reference.lookup(rows) is None


def test_checkpoint_fingerprint_follows_content(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for directory in (first, second):
        directory.mkdir()
        (directory / "config.json").write_text("{}")
        (directory / "model.safetensors").write_bytes(b"weights")
    assert checkpoint_fingerprint(str(first)) == checkpoint_fingerprint(str(second))

    (second / "model.safetensors").write_bytes(b"retrained")

    assert checkpoint_fingerprint(str(first)) != checkpoint_fingerprint(str(second))
