import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import Assignment, Judgment
from factories import ProjectFactory, member, pair_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory()


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_next_returns_blind_pair_and_scale(project):
    pair_task(project, texts=("alpha reply", "beta reply"))
    annotator = member(project)
    response = client_for(annotator).get("/api/v1/assignments/next/")
    assert response.status_code == 200
    body = response.json()["assignment"]
    assert [c["label"] for c in body["candidates"]] == ["A", "B"]
    assert {c["content"] for c in body["candidates"]} == {"alpha reply", "beta reply"}
    assert [p["value"] for p in body["scale"]] == [1, 2, 3, 4, 5]
    # Blind: the model identity never reaches the annotator.
    assert "secret-model" not in json.dumps(response.json())


def test_next_is_null_when_queue_is_empty(project):
    annotator = member(project)
    assert client_for(annotator).get("/api/v1/assignments/next/").json() == {"assignment": None}


def test_submit_then_double_submit_stores_one_judgment(project):
    pair_task(project)
    annotator = member(project)
    client = client_for(annotator)
    assignment_id = client.get("/api/v1/assignments/next/").json()["assignment"]["id"]
    body = {"choice": 2, "idempotency_key": "4f1c2a9e-double", "time_spent_ms": 1234}
    first = client.post(f"/api/v1/assignments/{assignment_id}/judgment/", body, format="json")
    second = client.post(f"/api/v1/assignments/{assignment_id}/judgment/", body, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Judgment.objects.count() == 1
    judgment = Judgment.objects.get()
    assert judgment.time_spent_ms == 1234 and judgment.guidelines_version == 1


def test_second_key_on_judged_assignment_is_a_conflict(project):
    pair_task(project)
    annotator = member(project)
    client = client_for(annotator)
    assignment_id = client.get("/api/v1/assignments/next/").json()["assignment"]["id"]
    url = f"/api/v1/assignments/{assignment_id}/judgment/"
    client.post(url, {"choice": 1, "idempotency_key": "first-key-1"}, format="json")
    again = client.post(url, {"choice": 5, "idempotency_key": "other-key-2"}, format="json")
    assert again.status_code == 409
    assert "already been judged" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"choice": 9, "idempotency_key": "valid-key-1"}, "choice"),
        ({"choice": "x", "idempotency_key": "valid-key-1"}, "choice"),
        ({"idempotency_key": "valid-key-1"}, "choice"),
        ({"choice": 1, "idempotency_key": "bad key!"}, "idempotency_key"),
        ({"choice": 1}, "idempotency_key"),
        ({"choice": 1, "idempotency_key": "valid-key-1", "time_spent_ms": -5}, "time_spent_ms"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(project, body, field):
    pair_task(project)
    annotator = member(project)
    client = client_for(annotator)
    assignment_id = client.get("/api/v1/assignments/next/").json()["assignment"]["id"]
    response = client.post(f"/api/v1/assignments/{assignment_id}/judgment/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert field in response.json()["detail"]


def test_malformed_json_is_a_400(project):
    annotator = member(project)
    response = client_for(annotator).post(
        "/api/v1/assignments/1/judgment/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_someone_elses_assignment_looks_missing(project):
    pair_task(project)
    owner, intruder = member(project), member(project)
    assignment_id = client_for(owner).get("/api/v1/assignments/next/").json()["assignment"]["id"]
    response = client_for(intruder).post(
        f"/api/v1/assignments/{assignment_id}/judgment/",
        {"choice": 1, "idempotency_key": "intruder-1"},
        format="json",
    )
    assert response.status_code == 404
    assert not Judgment.objects.exists()


def test_expired_assignment_is_a_409(project):
    pair_task(project)
    annotator = member(project)
    client = client_for(annotator)
    assignment_id = client.get("/api/v1/assignments/next/").json()["assignment"]["id"]
    Assignment.objects.filter(pk=assignment_id).update(expires_at=timezone.now() - timedelta(1))
    response = client.post(
        f"/api/v1/assignments/{assignment_id}/judgment/",
        {"choice": 1, "idempotency_key": "late-key-1"},
        format="json",
    )
    assert response.status_code == 409


def test_session_login_me_and_logout(project):
    member(project, username="ann")
    client = APIClient(enforce_csrf_checks=True)
    client.get("/api/v1/auth/csrf/")
    token = client.cookies["csrftoken"].value
    bad = client.post(
        "/api/v1/auth/login/",
        {"username": "ann", "password": "nope"},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert bad.status_code == 400 and "password" in bad.json()["errors"]
    good = client.post(
        "/api/v1/auth/login/",
        {"username": "ann", "password": "pw-for-tests"},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert good.status_code == 200 and good.json()["role"] == "annotator"
    token = client.cookies["csrftoken"].value
    assert client.get("/api/v1/auth/me/").json()["username"] == "ann"
    assert client.post("/api/v1/auth/logout/", HTTP_X_CSRFTOKEN=token).status_code == 204
    assert client.get("/api/v1/auth/me/").status_code == 403


def test_session_write_without_csrf_token_is_refused(project):
    member(project, username="ann2")
    client = APIClient(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/auth/login/", {"username": "ann2", "password": "pw-for-tests"}, format="json"
    )
    assert response.status_code == 403


def test_token_auth_for_scripts(project):
    from rest_framework.authtoken.models import Token

    user = member(project)
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/v1/auth/me/").status_code == 200


@pytest.mark.parametrize("interface", ["pairwise", "rating"])
def test_fast_representations_equal_the_documented_serializers(interface):
    """The hot views build their JSON directly; it must be what the schema's serializers give."""
    from annotation import selectors, services
    from annotation.serializers import (
        AssignmentSerializer,
        JudgmentSerializer,
        assignment_data,
        judgment_data,
    )
    from factories import multi_task

    project = ProjectFactory(
        rating_aspects=["helpfulness"], guidelines="Be <b>fair</b>", scale_kind="eight_point"
    )
    if interface == "pairwise":
        pair_task(project, texts=("one", "two"))
        answer = {"choice": 2}
    else:
        multi_task(project, "rating", ["one", "two", "three"])
        answer = {"ratings": {x: {"overall": 3, "helpfulness": 4} for x in "ABC"}}
    annotator = member(project)
    assignment = services.assignment_claim_next(annotator=annotator)
    display = selectors.assignment_display(assignment)
    assert assignment_data(display) == AssignmentSerializer(display).data
    result = services.judgment_submit(assignment=assignment, idempotency_key="k1", **answer)
    assert judgment_data(result.judgment) == JudgmentSerializer(result.judgment).data
    stored = Judgment.objects.get(pk=result.judgment.pk)
    assert judgment_data(stored) == judgment_data(result.judgment)
