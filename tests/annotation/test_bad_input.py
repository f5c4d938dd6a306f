"""Hostile or broken input gets a 400 naming the problem, never a 500."""

import pytest
from rest_framework.test import APIClient

from annotation.models import Judgment, Role
from factories import ProjectFactory, member, pair_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def annotator_client():
    project = ProjectFactory(slug="bad")
    pair_task(project)
    client = APIClient()
    client.force_authenticate(member(project))
    assignment = client.get("/api/v1/assignments/next/").json()["assignment"]
    return client, f"/api/v1/assignments/{assignment['id']}/judgment/"


def test_nul_byte_in_comment_is_refused(annotator_client):
    client, url = annotator_client
    body = {"choice": 1, "idempotency_key": "nul-key-01", "comment": "fine\x00evil"}
    response = client.post(url, body, format="json")
    assert response.status_code == 400 and "comment" in response.json()["errors"]
    assert not Judgment.objects.exists()


def test_oversize_body_is_a_400_in_json(annotator_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    client, url = annotator_client
    body = {"choice": 1, "idempotency_key": "big-key-01", "comment": "x" * 20_000}
    response = client.post(url, body, format="json")
    assert response.status_code == 400
    assert "too large" in response.json()["detail"]


def test_wrong_types_are_400(annotator_client):
    client, url = annotator_client
    for body in ([1, 2], "text", {"choice": [1], "idempotency_key": "type-key-1"}):
        response = client.post(url, body, format="json")
        assert response.status_code == 400, body


def test_unknown_ids_are_404_not_500():
    project = ProjectFactory()
    client = APIClient()
    client.force_authenticate(member(project, Role.RESEARCHER))
    assert client.get("/api/v1/training-jobs/999999/").status_code == 404
    assert client.get("/api/v1/projects/no-such-project/").status_code == 404
    response = client.post(
        "/api/v1/assignments/99999999999999999999/judgment/", {"choice": 1}, format="json"
    )
    assert response.status_code in (400, 404)


def test_nul_byte_in_custom_scale_label_is_refused():
    project = ProjectFactory(slug="nul-scale")
    client = APIClient()
    client.force_authenticate(member(project, Role.RESEARCHER))
    scale = [
        {"value": 1, "label": "A\x00", "winner": "A", "strength": 1},
        {"value": 2, "label": "B", "winner": "B", "strength": 1},
    ]
    response = client.patch(
        "/api/v1/projects/nul-scale/",
        {"scale_kind": "custom", "custom_scale": scale},
        format="json",
    )
    assert response.status_code == 400 and "custom_scale" in response.json()["errors"]


def test_login_is_throttled(settings):
    member(ProjectFactory(), username="victim")
    client = APIClient()
    statuses = [
        client.post(
            "/api/v1/auth/login/", {"username": "victim", "password": f"guess{i}"}, format="json"
        ).status_code
        for i in range(12)
    ]
    assert statuses[:5] == [400] * 5
    assert statuses[-1] == 429
