"""Every endpoint × every role: who gets in, who is refused."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation import exports, sessions
from annotation.models import Role, Round
from factories import ProjectFactory, member, pair_task
from models_serving.models import ModelEndpoint, ModelVersion
from training_jobs import triggers
from training_jobs.models import TrainingJob

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "annotator", "researcher", "admin", "outsider"]


@pytest.fixture
def world(django_capture_on_commit_callbacks):
    project = ProjectFactory(slug="authz")
    task = pair_task(project)
    users = {
        "annotator": member(project, Role.ANNOTATOR),
        "researcher": member(project, Role.RESEARCHER),
        "admin": member(project, Role.ADMIN),
        "outsider": member(ProjectFactory(), Role.RESEARCHER),  # researcher elsewhere
    }
    job = TrainingJob.objects.create(project=project, config={})
    fresh = sessions.session_start(project=project, owner=users["annotator"])
    waiting = sessions.session_start(project=project, owner=users["annotator"])
    turn = sessions.session_add_user_turn(conversation=waiting, content="Hello?")
    # Port 9 refuses at once, so the admin's health check is quick and touches nothing real.
    endpoint = ModelEndpoint.objects.create(name="authz", base_url="http://127.0.0.1:9/v1")
    version = ModelVersion.objects.create(endpoint=endpoint, model_name="m", label="M")
    snapshot = exports.export_create(project=project, options={"format": "raw"})
    draft = Round.objects.create(project=project, name="draft")
    draft.model_versions.set([version])
    trigger = triggers.trigger_create(project=project, created_by=None)
    return {
        "project": project,
        "users": users,
        "job": job,
        "ids": {
            "job": job.pk,
            "session": fresh.pk,
            "waiting": waiting.pk,
            "turn": turn.pk,
            "task": task.pk,
            "endpoint": endpoint.pk,
            "version": version.pk,
            "round": draft.pk,
            "export": snapshot.pk,
            "trigger": trigger.pk,
        },
    }


def _client(world, role) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(world["users"][role])
    return client


READERS = {"anonymous": 403, "annotator": 403, "researcher": 200, "admin": 200, "outsider": 200}
PROJECT_RESEARCHERS = {
    "anonymous": 403,
    "annotator": 404,
    "researcher": 200,
    "admin": 200,
    "outsider": 404,
}
ADMIN_ONLY = {"anonymous": 403, "annotator": 403, "researcher": 403, "admin": 200, "outsider": 403}

# (method, path, body, expected status per role); "{name}" in a path or a top-level body
# string is replaced by the id of that object in the world.
MATRIX = [
    ("get", "/api/v1/auth/csrf/", None, dict.fromkeys(ROLES, 204)),
    ("get", "/api/v1/auth/me/", None, {**dict.fromkeys(ROLES, 200), "anonymous": 403}),
    (
        "post",
        "/api/v1/auth/login/",
        {"username": "nobody", "password": "wrong-password"},
        dict.fromkeys(ROLES, 400),
    ),
    ("get", "/api/docs/", None, {**dict.fromkeys(ROLES, 200), "anonymous": 403}),
    ("post", "/api/v1/auth/logout/", None, dict.fromkeys(ROLES, 204)),
    ("get", "/api/schema/", None, {**dict.fromkeys(ROLES, 200), "anonymous": 403}),
    ("get", "/api/v1/assignments/next/", None, {**dict.fromkeys(ROLES, 200), "anonymous": 403}),
    (
        "post",
        "/api/v1/assignments/{assignment}/judgment/",
        {"choice": 1, "idempotency_key": "matrix-key-1"},
        # Only the annotator who holds the assignment can judge it; others see a 404.
        {"anonymous": 403, "annotator": 201, "researcher": 404, "admin": 404, "outsider": 404},
    ),
    (
        "post",
        "/api/v1/assignments/{assignment}/submit-and-next/",
        {"choice": 2, "idempotency_key": "matrix-key-2"},
        {"anonymous": 403, "annotator": 201, "researcher": 404, "admin": 404, "outsider": 404},
    ),
    (
        "post",
        "/api/v1/assignments/{assignment}/skip/",
        {"reason": "I cannot read this language"},
        {"anonymous": 403, "annotator": 200, "researcher": 404, "admin": 404, "outsider": 404},
    ),
    ("get", "/api/v1/projects/", None, {**dict.fromkeys(ROLES, 200), "anonymous": 403}),
    (
        "get",
        "/api/v1/projects/authz/",
        None,
        {"anonymous": 403, "annotator": 404, "researcher": 200, "admin": 200, "outsider": 404},
    ),
    (
        "patch",
        "/api/v1/projects/authz/",
        {"overlap": 2},
        {"anonymous": 403, "annotator": 404, "researcher": 200, "admin": 200, "outsider": 404},
    ),
    ("get", "/api/v1/projects/authz/guidelines/", None, PROJECT_RESEARCHERS),
    (
        "post",
        "/api/v1/projects/authz/prompts/import/",
        "UPLOAD",
        {"anonymous": 403, "annotator": 404, "researcher": 200, "admin": 200, "outsider": 404},
    ),
    (
        "get",
        "/api/v1/projects/authz/tasks/",
        None,
        {"anonymous": 403, "annotator": 404, "researcher": 200, "admin": 200, "outsider": 404},
    ),
    (
        "post",
        "/api/v1/projects/authz/tasks/{task}/gold/",
        {"chosen": None},
        {"anonymous": 403, "annotator": 404, "researcher": 200, "admin": 200, "outsider": 404},
    ),
    (
        "get",
        "/api/v1/projects/authz/members/",
        None,
        {"anonymous": 403, "annotator": 404, "researcher": 200, "admin": 200, "outsider": 404},
    ),
    (
        "post",
        "/api/v1/projects/authz/members/",
        {"username": "newcomer", "role": "annotator"},
        # Only admins manage members.
        {"anonymous": 403, "annotator": 404, "researcher": 404, "admin": 201, "outsider": 404},
    ),
    (
        "post",
        "/api/v1/auth/invite/accept/",
        {"uid": "MQ", "token": "bad-token", "password": "a-long-enough-password"},
        dict.fromkeys(ROLES, 400),
    ),
    (
        "get",
        "/api/v1/projects/authz/quality/",
        None,
        {"anonymous": 403, "annotator": 404, "researcher": 200, "admin": 200, "outsider": 404},
    ),
    (
        # Lists only the caller's own sessions; every member may have some.
        "get",
        "/api/v1/projects/authz/sessions/",
        None,
        {"anonymous": 403, "annotator": 200, "researcher": 200, "admin": 200, "outsider": 404},
    ),
    (
        "post",
        "/api/v1/projects/authz/sessions/",
        {"system": "Be brief."},
        {"anonymous": 403, "annotator": 201, "researcher": 201, "admin": 201, "outsider": 404},
    ),
    (
        "get",
        "/api/v1/sessions/{session}/",
        None,
        # Only the session's owner (the annotator) sees it.
        {"anonymous": 403, "annotator": 200, "researcher": 404, "admin": 404, "outsider": 404},
    ),
    (
        "post",
        "/api/v1/sessions/{session}/turns/",
        {"content": "Hi there"},
        {"anonymous": 403, "annotator": 201, "researcher": 404, "admin": 404, "outsider": 404},
    ),
    (
        "post",
        "/api/v1/sessions/{waiting}/turns/{turn}/candidates/",
        {
            "candidates": [
                {"content": "one", "model_name": "m1"},
                {"content": "two", "model_name": "m2"},
            ]
        },
        {"anonymous": 403, "annotator": 404, "researcher": 201, "admin": 201, "outsider": 404},
    ),
    (
        "post",
        "/api/v1/sessions/{session}/end/",
        None,
        {"anonymous": 403, "annotator": 200, "researcher": 404, "admin": 404, "outsider": 404},
    ),
    (
        # A plain async view (server-sent events): only the owner streams; nothing is read
        # from the stream here, so no model is asked (tests/annotation/test_live_stream.py).
        "post",
        "/api/v1/sessions/{waiting}/stream/",
        {"regenerate": False},
        {"anonymous": 403, "annotator": 200, "researcher": 404, "admin": 404, "outsider": 404},
    ),
    ("get", "/api/v1/training-jobs/", None, {**dict.fromkeys(ROLES, 200), "anonymous": 403}),
    (
        "post",
        "/api/v1/training-jobs/",
        {"project": "authz", "config": {"max_steps": 1}},
        {"anonymous": 403, "annotator": 404, "researcher": 201, "admin": 201, "outsider": 404},
    ),
    (
        "get",
        "/api/v1/training-jobs/{job}/",
        None,
        {"anonymous": 403, "annotator": 404, "researcher": 200, "admin": 200, "outsider": 404},
    ),
    # The world's job is queued, so the project's researchers and admins may cancel it.
    ("post", "/api/v1/training-jobs/{job}/cancel/", None, PROJECT_RESEARCHERS),
    # Training triggers are project work: the project's researchers and admins only.
    ("get", "/api/v1/projects/authz/training-triggers/", None, PROJECT_RESEARCHERS),
    (
        "post",
        "/api/v1/projects/authz/training-triggers/",
        {"cron": "0 3 * * *", "min_new_judgments": 10},
        {**PROJECT_RESEARCHERS, "researcher": 201, "admin": 201},
    ),
    ("get", "/api/v1/training-triggers/{trigger}/", None, PROJECT_RESEARCHERS),
    ("patch", "/api/v1/training-triggers/{trigger}/", {"enabled": False}, PROJECT_RESEARCHERS),
    (
        "delete",
        "/api/v1/training-triggers/{trigger}/",
        None,
        {**PROJECT_RESEARCHERS, "researcher": 204, "admin": 204},
    ),
    ("post", "/api/v1/training-triggers/{trigger}/run-now/", None, PROJECT_RESEARCHERS),
    # Model endpoints and versions belong to no project: the highest role held anywhere
    # decides, so a researcher elsewhere (outsider) reads them too. Admins change them.
    ("get", "/api/v1/model-endpoints/", None, READERS),
    (
        "post",
        "/api/v1/model-endpoints/",
        {"name": "matrix-endpoint", "base_url": "http://127.0.0.1:9/v1"},
        {**ADMIN_ONLY, "admin": 201},
    ),
    ("get", "/api/v1/model-endpoints/{endpoint}/", None, READERS),
    ("patch", "/api/v1/model-endpoints/{endpoint}/", {"enabled": False}, ADMIN_ONLY),
    ("post", "/api/v1/model-endpoints/{endpoint}/health/", None, ADMIN_ONLY),
    ("get", "/api/v1/model-versions/", None, READERS),
    (
        "post",
        "/api/v1/model-versions/",
        {"endpoint": "{endpoint}", "model_name": "matrix-model", "label": "Matrix"},
        {**ADMIN_ONLY, "admin": 201},
    ),
    ("get", "/api/v1/model-versions/{version}/", None, READERS),
    ("patch", "/api/v1/model-versions/{version}/", {"label": "Renamed"}, ADMIN_ONLY),
    # Rounds are project work: the project's researchers and admins only.
    ("get", "/api/v1/projects/authz/rounds/", None, PROJECT_RESEARCHERS),
    (
        "post",
        "/api/v1/projects/authz/rounds/",
        {"name": "matrix round", "model_version_ids": ["{version}"], "prompt_count": 1},
        {**PROJECT_RESEARCHERS, "researcher": 201, "admin": 201},
    ),
    ("get", "/api/v1/projects/authz/rounds/{round}/", None, PROJECT_RESEARCHERS),
    (
        "post",
        "/api/v1/projects/authz/rounds/{round}/start/",
        None,
        {**PROJECT_RESEARCHERS, "researcher": 202, "admin": 202},
    ),
    (
        "post",
        "/api/v1/projects/authz/rounds/{round}/close/",
        None,
        # The world's round is a draft: researchers get in and are told it cannot close.
        {**PROJECT_RESEARCHERS, "researcher": 400, "admin": 400},
    ),
    ("get", "/api/v1/projects/authz/rounds/{round}/report/", None, PROJECT_RESEARCHERS),
    # Exports: admins create; the project's researchers read and download (409: not built).
    ("get", "/api/v1/projects/authz/exports/", None, PROJECT_RESEARCHERS),
    (
        "post",
        "/api/v1/projects/authz/exports/",
        {"format": "trl-preference"},
        {**PROJECT_RESEARCHERS, "researcher": 404, "admin": 202},
    ),
    ("get", "/api/v1/projects/authz/exports/{export}/", None, PROJECT_RESEARCHERS),
    (
        "get",
        "/api/v1/projects/authz/exports/{export}/download/",
        None,
        {**PROJECT_RESEARCHERS, "researcher": 409, "admin": 409},
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
    assignment = holder.get("/api/v1/assignments/next/").json()["assignment"]
    url = path.format(assignment=assignment["id"], **world["ids"])
    kwargs = {"format": "json"}
    if isinstance(body, dict):
        body = {k: _filled(v, world["ids"]) for k, v in body.items()}
    if body == "UPLOAD":
        body = {"file": SimpleUploadedFile("p.jsonl", b'{"prompt": "hello"}\n')}
        kwargs = {"format": "multipart"}
    with django_capture_on_commit_callbacks(execute=False):
        response = getattr(_client(world, role), method)(url, body, **kwargs)
    assert response.status_code == expected[role], response.content


def _filled(value, ids: dict):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_filled(item, ids) for item in value]
    return value


def test_training_job_list_is_scoped_to_callers_projects(world):
    other = ProjectFactory()
    TrainingJob.objects.create(project=other, config={})
    ids = {j["id"] for j in _client(world, "researcher").get("/api/v1/training-jobs/").json()}
    assert ids == {world["job"].pk}
    assert _client(world, "annotator").get("/api/v1/training-jobs/").json() == []


def _api_routes() -> set[tuple[str, str]]:
    """(route, method) for every API view the URLconf serves."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found = set()

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                view_class = getattr(p.callback, "view_class", None)
                if route.startswith("api/") and view_class is not None:
                    for method in ("get", "post", "put", "patch", "delete"):
                        if hasattr(view_class, method):
                            found.add((route, method))

    walk(get_resolver().url_patterns, "")
    return found


def test_matrix_covers_every_api_route():
    from django.urls import resolve

    covered = {
        (
            resolve(
                path.format(
                    assignment=1,
                    job=1,
                    session=1,
                    waiting=1,
                    turn=1,
                    task=1,
                    endpoint=1,
                    version=1,
                    round=1,
                    export=1,
                    trigger=1,
                )
            ).route,
            method,
        )
        for method, path, _, _ in MATRIX
    }
    routes = _api_routes()
    assert len(routes) >= 15, "route discovery found too little to be trusted"
    missing = routes - covered
    assert not missing, f"routes missing from the authz matrix: {sorted(missing)}"


def test_matrix_covers_plain_api_views_too():
    """Views without a DRF view_class (the async stream) escape _api_routes; check them here."""
    from django.urls import URLPattern, URLResolver, get_resolver, resolve

    plain = set()

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and not hasattr(p.callback, "view_class"):
                route = prefix + str(p.pattern)
                if route.startswith("api/"):
                    plain.add(route)

    walk(get_resolver().url_patterns, "")
    assert "api/v1/sessions/<int:session_id>/stream/" in plain
    covered = {resolve(path.format_map(_AnyId())).route for _, path, _, _ in MATRIX}
    assert plain <= covered, f"plain API views missing from the matrix: {sorted(plain - covered)}"


class _AnyId(dict):
    def __missing__(self, key: str) -> str:
        return "1"


def test_cross_project_patch_leaves_the_row_unchanged(world):
    before = world["project"].overlap
    response = _client(world, "outsider").patch(
        "/api/v1/projects/authz/", {"overlap": 7, "name": "pwned"}, format="json"
    )
    assert response.status_code == 404
    world["project"].refresh_from_db()
    assert (world["project"].overlap, world["project"].name) == (before, world["project"].name)
    assert world["project"].name != "pwned"
