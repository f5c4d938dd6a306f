from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from models_serving.tiny_models import (
    build_atomically,
    build_tiny_policy,
    build_tiny_reward,
    model_dir_is_current,
)


class Command(BaseCommand):
    help = "Build the tiny offline policy and reward models (seconds, no download)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Rebuild models that exist.")
        parser.add_argument(
            "--policy-dir", type=Path, default=None, help="Default: TINY_POLICY_DIR."
        )
        parser.add_argument(
            "--reward-dir", type=Path, default=None, help="Default: TINY_REWARD_DIR."
        )

    def handle(
        self,
        *args: object,
        force: bool = False,
        policy_dir: Path | None = None,
        reward_dir: Path | None = None,
        **options: object,
    ) -> None:
        self._ensure("policy", build_tiny_policy, policy_dir or settings.TINY_POLICY_DIR, force)
        self._ensure("reward", build_tiny_reward, reward_dir or settings.TINY_REWARD_DIR, force)

    def _ensure(self, name: str, build: Callable[[Path], Path], target: Path, force: bool) -> None:
        # A model an older build produced (see BUILD_VERSIONS) is rebuilt like a missing one.
        if model_dir_is_current(target, name) and not force:
            self.stdout.write(f"tiny {name} model exists at {target}")
            return
        build_atomically(build, Path(target))
        self.stdout.write(self.style.SUCCESS(f"built tiny {name} model at {target}"))
