import json
from pathlib import Path

import pytest
from django.core.management import call_command

from models_serving.tiny_models import BUILD_MARKER, model_dir_is_complete, model_dir_is_current


@pytest.fixture
def model_dirs(settings, tmp_path: Path) -> tuple[Path, Path]:
    settings.TINY_POLICY_DIR = tmp_path / "models" / "tiny-policy"
    settings.TINY_REWARD_DIR = tmp_path / "models" / "tiny-reward"
    return settings.TINY_POLICY_DIR, settings.TINY_REWARD_DIR


def test_builds_into_the_settings_dirs_then_skips(
    model_dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("build_tiny_models")
    assert all(model_dir_is_complete(model_dir) for model_dir in model_dirs)
    weights = model_dirs[0] / "model.safetensors"
    built_at = weights.stat().st_mtime_ns

    call_command("build_tiny_models")

    assert capsys.readouterr().out.count("exists") == 2
    assert weights.stat().st_mtime_ns == built_at


def test_force_rebuilds(model_dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    call_command("build_tiny_models")
    capsys.readouterr()

    call_command("build_tiny_models", "--force")

    assert capsys.readouterr().out.count("built") == 2
    # Only the finished models are left: no scratch or old dirs next to them.
    assert sorted(p.name for p in model_dirs[0].parent.iterdir()) == ["tiny-policy", "tiny-reward"]


def test_rebuilds_a_half_written_model(model_dirs: tuple[Path, Path]) -> None:
    policy_dir, _ = model_dirs
    policy_dir.mkdir(parents=True)
    (policy_dir / "config.json").write_text("{}")  # weights never written

    call_command("build_tiny_models")

    assert model_dir_is_complete(policy_dir)


def test_rebuilds_a_model_an_older_build_made(
    model_dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("build_tiny_models")
    policy_dir, reward_dir = model_dirs
    (policy_dir / BUILD_MARKER).unlink()  # as built before markers existed (uncalibrated)
    marker = json.loads((reward_dir / BUILD_MARKER).read_text())
    (reward_dir / BUILD_MARKER).write_text(json.dumps({**marker, "version": 0}))
    capsys.readouterr()

    call_command("build_tiny_models")

    assert capsys.readouterr().out.count("built") == 2
    assert model_dir_is_current(policy_dir, "policy")
    assert model_dir_is_current(reward_dir, "reward")
