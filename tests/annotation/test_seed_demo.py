"""`make run` seeds the demo through the real local model server; a second run changes nothing."""

import socket
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from annotation.models import Completion, Membership, Project, Prompt, Task

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _counts() -> dict[str, int]:
    return {
        "users": get_user_model().objects.count(),
        "projects": Project.objects.count(),
        "memberships": Membership.objects.count(),
        "prompts": Prompt.objects.count(),
        "completions": Completion.objects.count(),
        "tasks": Task.objects.count(),
    }


def test_seed_generates_pairs_once_and_is_idempotent(settings, tiny_models):
    port = _free_port()
    settings.LOCAL_MODEL_PORT = port
    settings.MODEL_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.MODEL_SERVER_EMBEDDED = True

    first_out = StringIO()
    call_command("seed_demo", stdout=first_out)
    first = _counts()
    assert first == {
        "users": 4,
        "projects": 1,
        "memberships": 4,
        "prompts": 20,
        "completions": 40,
        "tasks": 20,
    }
    assert "starting the local model server" in first_out.getvalue()
    assert "annotator1 / " in first_out.getvalue()
    completion = Completion.objects.first()
    assert completion.model_name and completion.latency_ms is not None
    assert completion.sampling_params["max_tokens"] == 48

    second_out = StringIO()
    call_command("seed_demo", stdout=second_out)
    assert _counts() == first
    assert "starting the local model server" not in second_out.getvalue()
