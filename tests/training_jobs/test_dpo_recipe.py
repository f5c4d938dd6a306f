import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from models_serving.tiny_models import build_tiny_policy
from training_jobs.recipes.dpo import DPORecipeConfig, load_preference_rows, run_dpo

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
ROWS = 8
# Big enough for a handful of CPU steps to visibly move the tiny policy.
TINY_LR = 5e-4


def preference_row(i: int) -> dict:
    return {
        "prompt": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": f"What is {i} plus {i}?"},
        ],
        "chosen": [{"role": "assistant", "content": f"It is {2 * i}."}],
        "rejected": [{"role": "assistant", "content": "I would rather not say, sorry."}],
        # Export metadata the recipe must drop; `images` would send TRL down its vision path.
        "metadata": {"task_id": i, "annotators": ["a", "b"]},
        "images": None,
    }


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_policy(tmp_path_factory.mktemp("models") / "policy")


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(preference_row(i)) + "\n" for i in range(ROWS)))
    return path


def recipe_config(data_path: Path, policy_dir: Path, output_dir: Path, **overrides) -> dict:
    return {
        "data_path": str(data_path),
        "model_path": str(policy_dir),
        "output_dir": str(output_dir),
        "learning_rate": TINY_LR,
        "max_steps": 3,
        "per_device_train_batch_size": 2,
        "max_length": 128,
        "device": "cpu",
        **overrides,
    }


def test_run_dpo_trains_saves_and_reports(
    data_path: Path, policy_dir: Path, tmp_path: Path
) -> None:
    output_dir = tmp_path / "run"
    events: list[dict] = []
    config = DPORecipeConfig(**recipe_config(data_path, policy_dir, output_dir))

    metrics = run_dpo(config, progress=events.append)

    saved = json.loads((output_dir / "metrics.json").read_text())
    assert saved == metrics
    assert math.isfinite(saved["train_loss_final"]) and math.isfinite(saved["train_loss_mean"])
    assert saved["steps"] == 3 and saved["train_rows"] == ROWS == saved["train_rows_used"]
    assert [entry["step"] for entry in saved["loss_history"]] == [1, 2, 3]
    assert saved["device"] == "cpu"
    assert set(saved["versions"]) == {"torch", "transformers", "trl"}
    assert [(e["step"], e["total"]) for e in events] == [(1, 3), (2, 3), (3, 3)]
    assert all(math.isfinite(e["loss"]) for e in events)
    assert not output_dir.with_name("run.tmp").exists()

    trained = AutoModelForCausalLM.from_pretrained(output_dir)
    start = AutoModelForCausalLM.from_pretrained(policy_dir)
    AutoTokenizer.from_pretrained(output_dir)
    changed = [
        name
        for (name, after), (_, before) in zip(
            trained.named_parameters(), start.named_parameters(), strict=True
        )
        if not torch.equal(after, before)
    ]
    assert changed, "DPO left every parameter untouched"


def test_cli_appends_progress_lines(data_path: Path, policy_dir: Path, tmp_path: Path) -> None:
    output_dir = tmp_path / "run"
    config_path = tmp_path / "config.json"
    progress_path = tmp_path / "progress.jsonl"
    config_path.write_text(
        json.dumps(recipe_config(data_path, policy_dir, output_dir, max_steps=2))
    )

    # How the Celery task runs it: a child process, with no Django anywhere.
    completed = subprocess.run(
        [sys.executable, "-m", "training_jobs.recipes.dpo", "--config", str(config_path)]
        + ["--progress-file", str(progress_path)],
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "DJANGO_SETTINGS_MODULE": ""},
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [json.loads(line) for line in progress_path.read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert all(line["total"] == 2 and math.isfinite(line["loss"]) for line in lines)
    assert json.loads(completed.stdout.strip().splitlines()[-1])["steps"] == 2
    assert (output_dir / "metrics.json").exists()


def test_refuses_to_overwrite_a_finished_run(
    data_path: Path, policy_dir: Path, tmp_path: Path
) -> None:
    output_dir = tmp_path / "run"
    output_dir.mkdir()
    with pytest.raises(FileExistsError):
        run_dpo(DPORecipeConfig(**recipe_config(data_path, policy_dir, output_dir)))


def test_load_preference_rows_keeps_only_role_and_content(tmp_path: Path) -> None:
    row = preference_row(1)
    row["chosen"][0]["name"] = "bot"
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(row) + "\n\n")

    [loaded] = load_preference_rows(path)

    assert set(loaded) == {"prompt", "chosen", "rejected"}
    assert loaded["chosen"] == [{"role": "assistant", "content": "It is 2."}]


def test_load_preference_rows_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(preference_row(0)) + "\n" + json.dumps({"prompt": []}) + "\n")
    with pytest.raises(ValueError, match=r"prefs.jsonl:2: missing \['chosen', 'rejected'\]"):
        load_preference_rows(path)


def test_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="lr"):
        DPORecipeConfig.from_dict({"data_path": "d", "model_path": "m", "output_dir": "o", "lr": 1})


def test_recipe_imports_no_django() -> None:
    # The recipe must run on a bare training node under torchrun, where Django is not set up.
    code = "import sys, training_jobs.recipes.dpo; sys.exit('django' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, timeout=120)
    assert completed.returncode == 0
