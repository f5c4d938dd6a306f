"""Every endpoint × every role: who gets in, who is refused."""

import pytest
from factories import ProjectFactory, member, pair_task
from rest_framework.test import APIClient

from annotation.models import Role
from training_jobs.models import TrainingJob

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "annotator", "researcher", "admin", "outsider"]


@pytest.fixture
def world(django_capture_on_commit_callbacks):
    project = ProjectFactory(slug="authz")
    pair_task(project)
    users = {
        "annotator": member(project, Role.ANNOTATOR),
        "researcher": member(project, Role.RESEARCHER),
        "admin": member(project, Role.ADMIN),
        "outsider": member(ProjectFactory(), Role.RESEARCHER),  # researcher elsewhere
    }
    job = TrainingJob.objects.create(project=project, config={})
    return {"project": project, "users": users, "job": job}


def _client(world, role) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(world["users"][role])
    return client


# (method, path, body, expected status per role)
MATRIX = [
    ("get", "/api/auth/csrf/", None, dict.fromkeys(ROLES, 204)),
    ("get", "/api/auth/me/", None, {**dict.fromkeys(ROLES, 200), "anonymous": 403}),
    ("post", "/api/auth/logout/", None, dict.fromkeys(ROLES, 204)),
    ("get", "/api/schema/", None, {**dict.fromkeys(ROLES, 200), "anonymous": 403}),
    ("get", "/api/assignments/next/", None, {**dict.fromkeys(ROLES, 200), "anonymous": 403}),
    (
        "post",
        "/api/assignments/{assignment}/judgment/",
        {"choice": 1, "idempotency_key": "matrix-key-1"},
        # Only the annotator who holds the assignment can judge it; others see a 404.
        {"anonymous": 403, "annotator": 201, "researcher": 404, "admin": 404, "outsider": 404},
    ),
    ("get", "/api/training-jobs/", None, {**dict.fromkeys(ROLES, 200), "anonymous": 403}),
    (
        "post",
        "/api/training-jobs/",
        {"project": "authz", "config": {"max_steps": 1}},
        {"anonymous": 403, "annotator": 404, "researcher": 201, "admin": 201, "outsider": 404},
    ),
    (
        "get",
        "/api/training-jobs/{job}/",
        None,
        {"anonymous": 403, "annotator": 404, "researcher": 200, "admin": 200, "outsider": 404},
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), MATRIX, ids=[m[1] + " " + m[0] for m in MATRIX]
)
def test_role_endpoint_matrix(
    world, role, method, path, body, expected, django_capture_on_commit_callbacks
):
    # The annotator's assignment exists whoever calls, so "someone else's" is really tested.
    holder = _client(world, "annotator")
    assignment = holder.get("/api/assignments/next/").json()["assignment"]
    url = path.format(assignment=assignment["id"], job=world["job"].pk)
    with django_capture_on_commit_callbacks(execute=False):
        response = getattr(_client(world, role), method)(url, body, format="json")
    assert response.status_code == expected[role], response.content


def test_training_job_list_is_scoped_to_callers_projects(world):
    other = ProjectFactory()
    TrainingJob.objects.create(project=other, config={})
    ids = {j["id"] for j in _client(world, "researcher").get("/api/training-jobs/").json()}
    assert ids == {world["job"].pk}
    assert _client(world, "annotator").get("/api/training-jobs/").json() == []
