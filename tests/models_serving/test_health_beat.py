"""The beat's health round: every enabled endpoint's /health and /v1/models, recorded."""

import pytest
from django.conf import settings

from config.celery import app as celery_app
from fake_model_server import Reply
from fake_vllm_server import FakeVLLM
from models_serving import services, tasks
from models_serving.models import ModelEndpoint

pytestmark = pytest.mark.django_db


def test_beat_runs_the_health_round_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["check-model-endpoints"]
    assert entry["task"] == "models_serving.tasks.check_endpoints"
    assert entry["schedule"] <= 60
    celery_app.loader.import_default_modules()
    assert entry["task"] in celery_app.tasks


def test_each_enabled_endpoint_is_checked_and_the_result_kept(closed_port_url):
    with FakeVLLM() as vllm:
        up = services.model_endpoint_create(name="up", base_url=vllm.base_url, kind="vllm")
        down = services.model_endpoint_create(name="down", base_url=closed_port_url, kind="vllm")
        off = services.model_endpoint_create(
            name="off", base_url=vllm.base_url, kind="vllm", enabled=False
        )
        assert tasks.check_endpoints() == {"up": True, "down": False}
    up, down, off = (ModelEndpoint.objects.get(pk=e.pk) for e in (up, down, off))
    assert (up.last_health_ok, up.last_health_detail) == (True, "OK: 1 model listed")
    assert (down.last_health_ok, down.last_health_detail) == (False, "connection refused")
    assert up.last_health_at and down.last_health_at
    assert (off.last_health_ok, off.last_health_at) == (None, None)  # switched off: left alone


def test_a_model_list_without_health_is_unhealthy_for_vllm(model_server):
    model_server.then(Reply(body={"object": "list", "data": [{"id": "m"}]}), Reply(status=503))
    services.model_endpoint_create(name="vllm", base_url=model_server.base_url, kind="vllm")
    assert tasks.check_endpoints() == {"vllm": False}
    checked = ModelEndpoint.objects.get(name="vllm")
    assert checked.last_health_detail == "/health answered HTTP 503"


def test_a_hosted_openai_style_api_is_not_asked_for_health(model_server):
    model_server.then(Reply(body={"object": "list", "data": [{"id": "m"}]}))
    services.model_endpoint_create(
        name="hosted", base_url=model_server.base_url, kind="openai-compatible"
    )
    assert tasks.check_endpoints() == {"hosted": True}
    assert [r["path"] for r in model_server.requests] == ["/v1/models"]
