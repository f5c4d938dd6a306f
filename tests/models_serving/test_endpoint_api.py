"""The model endpoint and version API through HTTP, for each role."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation.models import Role
from factories import ProjectFactory, UserFactory, member
from fake_model_server import Reply
from models_serving.models import ModelEndpoint, ModelVersion

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/model-endpoints/"
VERSIONS = "/api/v1/model-versions/"
SECRET = "sk-very-secret-key"


def client_for(role: Role | None = None, *, superuser: bool = False) -> APIClient:
    client = APIClient()
    if superuser:
        user = get_user_model().objects.create_superuser("root", password="pw-for-tests")
    elif role is None:
        user = UserFactory()  # signed in, member of nothing
    else:
        user = member(ProjectFactory(), role)
    client.force_authenticate(user)
    return client


@pytest.fixture
def admin() -> APIClient:
    return client_for(Role.ADMIN)


@pytest.fixture
def endpoint() -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="vllm-main", base_url="http://127.0.0.1:9/v1", api_key=SECRET, kind="vllm"
    )


def test_admin_registers_an_endpoint_and_the_key_never_comes_back(admin):
    body = {
        "name": "vllm-a",
        "base_url": "http://vllm:8000/v1",
        "api_key": SECRET,
        "kind": "vllm",
        "supports_n": True,
        "supports_logprobs": True,
        "supports_lora": True,
        "max_concurrency": 8,
        "default_sampling_params": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 256},
    }
    created = admin.post(ENDPOINTS, body, format="json")
    assert created.status_code == 201, created.content
    assert SECRET not in created.content.decode()
    assert "api_key" not in created.json() and created.json()["has_api_key"] is True
    row = ModelEndpoint.objects.get(name="vllm-a")
    assert (row.api_key, row.max_concurrency, row.supports_lora) == (SECRET, 8, True)
    for url in (ENDPOINTS, f"{ENDPOINTS}{row.pk}/"):
        assert SECRET not in admin.get(url).content.decode()


def test_patch_keeps_the_key_unless_sent_and_clears_it_with_empty(admin, endpoint):
    url = f"{ENDPOINTS}{endpoint.pk}/"
    assert admin.patch(url, {"enabled": False}, format="json").json()["has_api_key"] is True
    endpoint.refresh_from_db()
    assert (endpoint.api_key, endpoint.enabled) == (SECRET, False)
    assert admin.patch(url, {"api_key": ""}, format="json").json()["has_api_key"] is False
    endpoint.refresh_from_db()
    assert endpoint.api_key == ""


def test_researcher_reads_endpoints_without_the_key_but_cannot_change_them(endpoint):
    researcher = client_for(Role.RESEARCHER)
    listed = researcher.get(ENDPOINTS)
    assert listed.status_code == 200 and [e["name"] for e in listed.json()] == ["vllm-main"]
    assert SECRET not in listed.content.decode()
    assert researcher.get(f"{ENDPOINTS}{endpoint.pk}/").status_code == 200
    patched = researcher.patch(f"{ENDPOINTS}{endpoint.pk}/", {"base_url": "http://evil/v1"})
    assert patched.status_code == 403
    assert researcher.post(ENDPOINTS, {"name": "x", "base_url": "http://x/v1"}).status_code == 403
    assert researcher.post(f"{ENDPOINTS}{endpoint.pk}/health/").status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.base_url == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize("who", ["annotator", "no role", "anonymous"])
def test_annotators_and_strangers_get_nothing(endpoint, who):
    client = {
        "annotator": lambda: client_for(Role.ANNOTATOR),
        "no role": lambda: client_for(None),
        "anonymous": APIClient,
    }[who]()
    version = ModelVersion.objects.create(endpoint=endpoint, model_name="m", label="M")
    for url in (ENDPOINTS, f"{ENDPOINTS}{endpoint.pk}/", VERSIONS, f"{VERSIONS}{version.pk}/"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert SECRET not in response.content.decode()


def test_superuser_without_memberships_is_an_admin():
    root = client_for(superuser=True)
    body = {"name": "root-made", "base_url": "https://models.example.com/v1"}
    assert root.post(ENDPOINTS, body, format="json").status_code == 201


def test_health_check_records_our_words_only(admin, model_server):
    model_server.then(Reply(status=500, body=b"<script>steal()</script>"))
    endpoint = ModelEndpoint.objects.create(name="flaky", base_url=model_server.base_url)
    response = admin.post(f"{ENDPOINTS}{endpoint.pk}/health/")
    assert response.status_code == 200
    assert (response.json()["last_health_ok"], response.json()["last_health_detail"]) == (
        False,
        "HTTP 500",
    )
    assert "steal" not in response.content.decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"base_url": "ftp://models.example.com/v1"}, "base_url"),
        ({"base_url": "javascript:alert(1)"}, "base_url"),
        ({"base_url": "http://"}, "base_url"),
        ({"base_url": "http://user:pw@vllm/v1"}, "base_url"),
        ({"base_url": "http://vllm\x00/v1"}, "base_url"),
        ({"base_url": "http://v/" + "a" * 600}, "base_url"),
        ({"name": "bad\x00name"}, "name"),
        ({"name": ""}, "name"),
        ({"api_key": "k\x00"}, "api_key"),
        ({"kind": "tgi"}, "kind"),
        ({"max_concurrency": -1}, "max_concurrency"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 10**12}, "max_concurrency"),
        ({"max_concurrency": "many"}, "max_concurrency"),
        ({"default_sampling_params": {"temperature": 9}}, "default_sampling_params"),
        ({"default_sampling_params": {"seed": 1}}, "default_sampling_params"),
        ({"default_sampling_params": {"top_p": "\x00"}}, "default_sampling_params"),
        ({"default_sampling_params": [1, 2]}, "default_sampling_params"),
        ({"supports_n": "perhaps"}, "supports_n"),
    ],
)
def test_bad_endpoint_input_is_a_400_naming_the_field(admin, endpoint, body, field):
    full = {"name": "new-one", "base_url": "http://vllm:8000/v1", **body}
    created = admin.post(ENDPOINTS, full, format="json")
    assert created.status_code == 400, created.content
    assert field in created.json()["errors"] and field in created.json()["detail"]
    patched = admin.patch(f"{ENDPOINTS}{endpoint.pk}/", body, format="json")
    assert patched.status_code == 400 and field in patched.json()["errors"]
    assert ModelEndpoint.objects.count() == 1


def test_duplicate_endpoint_name_is_a_400(admin, endpoint):
    response = admin.post(ENDPOINTS, {"name": "vllm-main", "base_url": "http://x/v1"})
    assert response.status_code == 400 and "name" in response.json()["errors"]


def test_unknown_ids_are_404(admin):
    for url in (f"{ENDPOINTS}999999/", f"{VERSIONS}999999/", f"{ENDPOINTS}{2**70}/"):
        assert admin.get(url).status_code == 404, url
    assert admin.post(f"{ENDPOINTS}999999/health/").status_code == 404


# --- versions -----------------------------------------------------------------------------


def test_admin_registers_a_version_and_researchers_list_it(admin, endpoint):
    body = {
        "endpoint": endpoint.pk,
        "model_name": "/var/checkpoints/job-7",
        "kind": "checkpoint",
        "label": "DPO job 7",
        "notes": "beta 0.1",
    }
    created = admin.post(VERSIONS, body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["endpoint_name"] == "vllm-main" and created.json()["enabled"] is True
    listed = client_for(Role.RESEARCHER).get(VERSIONS)
    assert listed.status_code == 200
    assert [v["label"] for v in listed.json()] == ["DPO job 7"]
    version_id = created.json()["id"]
    assert client_for(Role.RESEARCHER).get(f"{VERSIONS}{version_id}/").status_code == 200


def test_researchers_cannot_register_or_change_versions(endpoint):
    researcher = client_for(Role.RESEARCHER)
    body = {"endpoint": endpoint.pk, "model_name": "m", "label": "M"}
    assert researcher.post(VERSIONS, body, format="json").status_code == 403
    version = ModelVersion.objects.create(endpoint=endpoint, model_name="m", label="M")
    assert researcher.patch(f"{VERSIONS}{version.pk}/", {"enabled": False}).status_code == 403


def test_version_patch_changes_label_and_enabled_but_refuses_what_it_requests(admin, endpoint):
    version = ModelVersion.objects.create(endpoint=endpoint, model_name="m", label="M")
    url = f"{VERSIONS}{version.pk}/"
    ok = admin.patch(url, {"label": "Base", "enabled": False}, format="json")
    assert ok.status_code == 200 and (ok.json()["label"], ok.json()["enabled"]) == ("Base", False)
    refused = admin.patch(url, {"model_name": "other", "label": "x"}, format="json")
    assert refused.status_code == 400 and "model_name" in refused.json()["errors"]
    version.refresh_from_db()
    assert (version.model_name, version.label) == ("m", "Base")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endpoint": 999999}, "endpoint"),
        ({"endpoint": 2**70}, "endpoint"),
        ({"endpoint": "one"}, "endpoint"),
        ({"model_name": ""}, "model_name"),
        ({"model_name": "m\x00"}, "model_name"),
        ({"model_name": "two\nlines"}, "model_name"),
        ({"label": "l\x00"}, "label"),
        ({"notes": "n\x00"}, "notes"),
        ({"kind": "merged"}, "kind"),
    ],
)
def test_bad_version_input_is_a_400_naming_the_field(admin, endpoint, body, field):
    full = {"endpoint": endpoint.pk, "model_name": "m", "label": "M", **body}
    response = admin.post(VERSIONS, full, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not ModelVersion.objects.exists()


def test_same_model_twice_on_one_endpoint_is_a_400(admin, endpoint):
    body = {"endpoint": endpoint.pk, "model_name": "m", "label": "M"}
    assert admin.post(VERSIONS, body, format="json").status_code == 201
    again = admin.post(VERSIONS, body, format="json")
    assert again.status_code == 400
    assert again.json()["errors"] == {"model_name": ["is already registered on this endpoint"]}
