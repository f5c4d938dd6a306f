import os
import sys
from pathlib import Path

import pytest
from django.conf import settings

sys.path.insert(0, str(Path(__file__).parent))

from ensure_services import ensure_services  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_sessionstart(session: pytest.Session) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(
            "Tests run on real Postgres and Redis: set DATABASE_URL (e.g. "
            "postgres://postgres@127.0.0.1:5432/arbiter) and REDIS_URL, or run `make test`."
        )
    # Password hashing dominates fixture time; the hasher itself is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    problems = ensure_services()
    if problems:
        raise pytest.UsageError("\n".join(problems))


@pytest.fixture(scope="session")
def tiny_models(django_db_blocker) -> dict[str, Path]:
    """The real tiny models `make run` builds, built once here if missing."""
    from django.core.management import call_command

    call_command("build_tiny_models")
    return {"policy": settings.TINY_POLICY_DIR, "reward": settings.TINY_REWARD_DIR}


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache; one test's logins must not throttle the next."""
    from django.core.cache import cache

    cache.clear()
    yield
