import pytest
from django.core.exceptions import ValidationError

from fake_model_server import Reply
from models_serving import selectors, services
from models_serving.client import ModelVersionDisabled, SamplingParams
from models_serving.models import ModelEndpoint, ModelVersion

pytestmark = pytest.mark.django_db


def endpoint(base_url: str = "http://127.0.0.1:9/v1", **fields) -> ModelEndpoint:
    return services.model_endpoint_create(
        name=fields.pop("name", "e1"), base_url=base_url, **fields
    )


# --- health -------------------------------------------------------------------------------


def test_healthy_endpoint_lists_models(model_server):
    model_server.then(
        Reply(body={"object": "list", "data": [{"id": "a"}, {"id": "b"}]}), Reply(body=b"")
    )
    checked = services.endpoint_check_health(
        endpoint=endpoint(model_server.base_url, api_key="sk-k")
    )
    assert (checked.last_health_ok, checked.last_health_detail) == (True, "OK: 2 models listed")
    assert checked.last_health_at is not None
    assert [r["path"] for r in model_server.requests] == ["/v1/models", "/health"]
    assert {r["authorization"] for r in model_server.requests} == {"Bearer sk-k"}
    checked.refresh_from_db()
    assert checked.last_health_ok is True


@pytest.mark.parametrize(
    ("reply", "detail"),
    [
        (Reply(status=503, body=b"<h1>upstream says <script>x()</script></h1>"), "HTTP 503"),
        (Reply(status=302, headers={"Location": "http://169.254.169.254/"}), "HTTP 302"),
        (Reply(status=200, body=b"<html>not json</html>"), "not an OpenAI-compatible model list"),
        (Reply(status=200, body={"data": "nope"}), "not an OpenAI-compatible model list"),
        (Reply(status=200, body=b"x" * (2 << 20)), "too large"),
        (Reply(hang_up=True), "connection broke"),
    ],
)
def test_unhealthy_endpoint_is_described_in_our_words(model_server, reply, detail):
    model_server.then(reply)
    checked = services.endpoint_check_health(endpoint=endpoint(model_server.base_url))
    assert checked.last_health_ok is False
    assert detail in checked.last_health_detail
    assert "script" not in checked.last_health_detail and "<" not in checked.last_health_detail
    assert len(model_server.requests) == 1  # no redirect followed


def test_refused_connection_is_reported(closed_port_url):
    checked = services.endpoint_check_health(endpoint=endpoint(closed_port_url))
    assert (checked.last_health_ok, checked.last_health_detail) == (False, "connection refused")


def test_silent_server_times_out(model_server, monkeypatch):
    import httpx

    monkeypatch.setattr(services, "HEALTH_TIMEOUT", httpx.Timeout(0.2, connect=0.2))
    model_server.then(Reply(delay=1.0, body={"data": []}))
    checked = services.endpoint_check_health(endpoint=endpoint(model_server.base_url))
    assert (checked.last_health_ok, checked.last_health_detail) == (False, "no answer within 0.2 s")


def test_unknown_host_is_reported():
    checked = services.endpoint_check_health(endpoint=endpoint("http://no-such-host.invalid/v1"))
    assert checked.last_health_ok is False
    assert checked.last_health_detail in {"host not found", "could not connect"}


# --- create / update ----------------------------------------------------------------------


def test_services_validate_like_the_api():
    with pytest.raises(ValidationError) as caught:
        endpoint("ftp://x/v1")
    assert "base_url" in caught.value.message_dict
    with pytest.raises(ValidationError):
        endpoint(max_concurrency=0)


def test_version_fields_that_completions_depend_on_cannot_change():
    version = services.model_version_create(endpoint=endpoint(), model_name="m", label="M")
    with pytest.raises(TypeError):
        services.model_version_update(version=version, model_name="other")
    services.model_version_update(version=version, label="Renamed", enabled=False)
    version.refresh_from_db()
    assert (version.label, version.enabled, version.model_name) == ("Renamed", False, "m")


# --- server_config_for --------------------------------------------------------------------


def test_server_config_comes_from_the_version_and_its_endpoint(settings):
    settings.MODEL_CONNECT_TIMEOUT, settings.MODEL_READ_TIMEOUT = 2.0, 30.0
    e = endpoint(
        "http://vllm:8000/v1",
        api_key="sk-x",
        supports_n=True,
        supports_logprobs=True,
        max_concurrency=16,
        default_sampling_params={"temperature": 0.6, "max_tokens": 256},
    )
    version = services.model_version_create(
        endpoint=e, model_name="lora-3", label="DPO round 3", kind=ModelVersion.Kind.LORA
    )
    cfg = selectors.server_config_for(version)
    assert (cfg.base_url, cfg.model, cfg.api_key) == ("http://vllm:8000/v1", "lora-3", "sk-x")
    assert (cfg.supports_n, cfg.supports_logprobs, cfg.max_concurrency) == (True, True, 16)
    assert (cfg.connect_timeout, cfg.read_timeout) == (2.0, 30.0)
    assert cfg.default_sampling == SamplingParams(temperature=0.6, top_p=1.0, max_tokens=256)
    assert (cfg.endpoint_id, cfg.version_id) == (e.pk, version.pk)


def test_server_config_refuses_disabled_versions_and_endpoints():
    e = endpoint()
    version = services.model_version_create(endpoint=e, model_name="m", label="M")
    assert selectors.server_config_for(version).api_key == "EMPTY"
    services.model_endpoint_update(endpoint=e, enabled=False)
    with pytest.raises(ModelVersionDisabled):
        selectors.server_config_for(version)
    services.model_endpoint_update(endpoint=e, enabled=True)
    services.model_version_update(version=version, enabled=False)
    with pytest.raises(ModelVersionDisabled):
        selectors.server_config_for(version)
