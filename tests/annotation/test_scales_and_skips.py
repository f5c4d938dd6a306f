import pytest
from rest_framework.test import APIClient

from annotation import services
from annotation.likert import EIGHT_POINT, parse_custom_scale, preference_from_choice
from annotation.models import Assignment, GuidelinesVersion, Judgment, Role, Task
from factories import ProjectFactory, member, pair_task

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _claim(client) -> dict:
    return client.get("/api/v1/assignments/next/").json()["assignment"]


def test_eight_point_scale_has_no_tie_and_maps_strength():
    assert all(p.winner for p in EIGHT_POINT)
    assert preference_from_choice(1, [7, 9], EIGHT_POINT).strength == 4
    assert preference_from_choice(5, [7, 9], EIGHT_POINT).chosen_id == 9


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([{"value": 1, "label": "A", "winner": "A", "strength": 1}], "between 2 and 11"),
        (
            [
                {"value": 1, "label": "A", "winner": "A", "strength": 1},
                {"value": 1, "label": "B", "winner": "B", "strength": 1},
            ],
            "unique",
        ),
        (
            [
                {"value": 1, "label": "A", "winner": "A", "strength": 0},
                {"value": 2, "label": "B", "winner": "B", "strength": 1},
            ],
            "strength",
        ),
        (
            [
                {"value": 1, "label": "A", "winner": "A", "strength": 1},
                {"value": 2, "label": "A2", "winner": "A", "strength": 2},
            ],
            "one point for A and one for B",
        ),
        ([{"value": 1}, {"value": 2}], "exactly value, label, winner and strength"),
    ],
)
def test_custom_scale_validation_names_the_problem(points, message):
    with pytest.raises(ValueError, match=message):
        parse_custom_scale(points)


def test_project_on_eight_point_scale_refuses_five_point_tie_value():
    project = ProjectFactory(scale_kind="eight_point")
    pair_task(project)
    client = client_for(member(project))
    assignment = _claim(client)
    assert len(assignment["scale"]) == 8
    url = f"/api/v1/assignments/{assignment['id']}/judgment/"
    bad = client.post(url, {"choice": 9, "idempotency_key": "eight-key-1"}, format="json")
    assert bad.status_code == 400 and "choice" in bad.json()["errors"]
    good = client.post(url, {"choice": 8, "idempotency_key": "eight-key-1"}, format="json")
    assert good.status_code == 201
    judgment = Judgment.objects.get()
    assert (judgment.strength, judgment.scale_kind) == (4, "eight_point")


def test_both_bad_is_stored_without_a_preference_and_can_be_turned_off():
    project = ProjectFactory()
    pair_task(project)
    pair_task(project)
    client = client_for(member(project))
    first = _claim(client)
    url = f"/api/v1/assignments/{first['id']}/judgment/"
    body = {"both_bad": True, "idempotency_key": "both-bad-1", "flags": ["nonsense"]}
    assert client.post(url, body, format="json").status_code == 201
    judgment = Judgment.objects.get()
    assert judgment.both_bad and judgment.chosen_id is None and judgment.flags == ["nonsense"]

    project.allow_both_bad = False
    project.save()
    second = _claim(client)
    url = f"/api/v1/assignments/{second['id']}/judgment/"
    refused = client.post(url, {"both_bad": True, "idempotency_key": "both-bad-2"}, format="json")
    assert refused.status_code == 400 and "both_bad" in refused.json()["errors"]


def test_unknown_flag_is_a_400():
    project = ProjectFactory()
    pair_task(project)
    client = client_for(member(project))
    assignment = _claim(client)
    response = client.post(
        f"/api/v1/assignments/{assignment['id']}/judgment/",
        {"choice": 1, "idempotency_key": "flag-key-1", "flags": ["spicy"]},
        format="json",
    )
    assert response.status_code == 400 and "flags" in response.json()["errors"]


def test_submit_and_next_is_one_round_trip_and_idempotent():
    project = ProjectFactory()
    for _ in range(3):
        pair_task(project)
    client = client_for(member(project))
    first = _claim(client)
    url = f"/api/v1/assignments/{first['id']}/submit-and-next/"
    body = {"choice": 4, "idempotency_key": "san-key-0001"}
    response = client.post(url, body, format="json")
    assert response.status_code == 201
    following = response.json()["next"]
    assert following["id"] != first["id"]
    repeat = client.post(url, body, format="json")
    assert repeat.status_code == 200
    assert repeat.json()["next"]["id"] == following["id"]  # resumes, does not claim another
    assert Judgment.objects.count() == 1
    assert Assignment.objects.filter(status="pending").count() == 1


def test_skip_releases_the_slot_and_is_never_offered_again():
    project = ProjectFactory()
    task = pair_task(project)
    skipper, other = member(project), member(project)
    client = client_for(skipper)
    assignment = _claim(client)
    response = client.post(
        f"/api/v1/assignments/{assignment['id']}/skip/", {"reason": "unreadable"}, format="json"
    )
    assert response.status_code == 200 and response.json() == {"assignment": None}
    skipped = Assignment.objects.get(pk=assignment["id"])
    assert (skipped.status, skipped.skip_reason) == ("skipped", "unreadable")
    assert Task.objects.get(pk=task.pk).slots_taken == 0
    assert _claim(client) is None
    assert _claim(client_for(other))["id"] != assignment["id"]


def test_skip_without_reason_is_a_400():
    project = ProjectFactory()
    pair_task(project)
    client = client_for(member(project))
    assignment = _claim(client)
    response = client.post(f"/api/v1/assignments/{assignment['id']}/skip/", {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["errors"]


def test_max_pending_lets_a_prefetching_client_hold_two():
    project = ProjectFactory(max_pending=2)
    for _ in range(3):
        pair_task(project)
    annotator = member(project)
    first = services.assignment_claim_next(annotator=annotator)
    second = services.assignment_claim_next(annotator=annotator)
    third = services.assignment_claim_next(annotator=annotator)
    assert first != second and third == first


def test_new_guidelines_become_a_new_version_recorded_on_judgments():
    project = services.project_create(slug="gl", name="GL", guidelines="v1 text")
    pair_task(project)
    researcher = member(project, Role.RESEARCHER)
    response = client_for(researcher).patch(
        "/api/v1/projects/gl/", {"guidelines": "v2 text", "overlap": 2}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["guidelines_version"] == 2
    assert list(
        GuidelinesVersion.objects.filter(project=project).values_list("version", "text")
    ) == [
        (1, "v1 text"),
        (2, "v2 text"),
    ]
    annotator = member(project)
    assignment = services.assignment_claim_next(annotator=annotator)
    result = services.judgment_submit(assignment=assignment, choice=1, idempotency_key="gl-key-01")
    assert result.judgment.guidelines_version == 2


def test_guidelines_versions_are_listed_newest_first_with_their_author():
    project = services.project_create(slug="gl-list", name="GL", guidelines="first words")
    researcher = member(project, Role.RESEARCHER, username="rita")
    client = client_for(researcher)
    for _ in range(2):  # the same text twice is one new version
        body = {"guidelines": "second words"}
        assert client.patch("/api/v1/projects/gl-list/", body, format="json").status_code == 200

    versions = client.get("/api/v1/projects/gl-list/guidelines/").json()
    assert [(v["version"], v["text"], v["created_by"]) for v in versions] == [
        (2, "second words", "rita"),
        (1, "first words", None),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"overlap": 0}, "overlap"),
        ({"scale_kind": "nine_point"}, "scale_kind"),
        ({"scale_kind": "custom", "custom_scale": [{"value": 1}]}, "custom_scale"),
        ({"gold_rate": 2}, "gold_rate"),
        ({"lease_seconds": 1}, "lease_seconds"),
    ],
)
def test_bad_project_settings_are_400_naming_the_field(body, field):
    project = ProjectFactory(slug="bad-settings")
    researcher = member(project, Role.RESEARCHER)
    response = client_for(researcher).patch("/api/v1/projects/bad-settings/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
