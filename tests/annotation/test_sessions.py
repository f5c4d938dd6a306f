"""A live multi-turn session through the API: write, get candidates, judge, continue."""

import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from annotation.models import Conversation, Message, Prompt, Role
from factories import MembershipFactory, ProjectFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    project = ProjectFactory(slug="live")
    annotator, researcher = member(project), member(project, Role.RESEARCHER)
    owner, feeder = APIClient(), APIClient()
    owner.force_authenticate(annotator)
    feeder.force_authenticate(researcher)
    return project, owner, feeder


def _candidates(*texts):
    return {
        "candidates": [
            {"content": t, "model_name": f"secret-model-{i}", "sampling_params": {"temperature": 1}}
            for i, t in enumerate(texts)
        ]
    }


def _judge(owner, session, choice):
    assignment = session["turn"]["assignment"]
    return owner.post(
        f"/api/v1/assignments/{assignment['id']}/judgment/",
        {"choice": choice, "idempotency_key": f"live-{assignment['id']:06d}"},
        format="json",
    )


def test_two_turns_continue_from_the_chosen_reply_and_export_with_full_prefix(setup, tmp_path):
    project, owner, feeder = setup
    session = owner.post(
        "/api/v1/projects/live/sessions/", {"system": "Be brief."}, format="json"
    ).json()
    sid = session["id"]
    session = owner.post(f"/api/v1/sessions/{sid}/turns/", {"content": "Hi"}, format="json").json()
    assert session["turn"]["state"] == "awaiting_candidates"
    assert (
        owner.post(f"/api/v1/sessions/{sid}/turns/", {"content": "x"}, format="json").status_code
        == 409
    )

    turn = session["turn"]["id"]
    attach = feeder.post(
        f"/api/v1/sessions/{sid}/turns/{turn}/candidates/",
        _candidates("Hello!", "Hey."),
        format="json",
    )
    assert attach.status_code == 201
    session = owner.get(f"/api/v1/sessions/{sid}/").json()
    assert session["turn"]["state"] == "judging"
    assert "secret-model" not in json.dumps(session)  # blind
    shown = [c["content"] for c in session["turn"]["assignment"]["candidates"]]
    # The live turn is judged in its session, not handed out by the shared queue.
    assert owner.get("/api/v1/assignments/next/").json() == {"assignment": None}

    assert _judge(owner, session, 5).status_code == 201  # B is much better
    session = owner.get(f"/api/v1/sessions/{sid}/").json()
    assert [m["role"] for m in session["messages"]] == ["system", "user", "assistant"]
    assert session["messages"][-1]["content"] == shown[1]

    session = owner.post(
        f"/api/v1/sessions/{sid}/turns/", {"content": "Tell me more"}, format="json"
    ).json()
    second = Prompt.objects.get(pk=session["turn"]["id"])
    assert [m["content"] for m in second.messages] == ["Be brief.", "Hi", shown[1], "Tell me more"]
    feeder.post(
        f"/api/v1/sessions/{sid}/turns/{second.pk}/candidates/",
        _candidates("More A", "More B", "More C"),
        format="json",
    )
    session = owner.get(f"/api/v1/sessions/{sid}/").json()
    assert len(session["turn"]["assignment"]["candidates"]) == 3

    out = tmp_path / "live.jsonl"
    call_command("export_dataset", project="live", out=str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["prompt"][-1] == {"role": "user", "content": "Hi"}
    assert rows[0]["chosen"][0]["content"] == shown[1]


def test_tie_continues_from_the_reply_shown_first(setup):
    _, owner, feeder = setup
    sid = owner.post("/api/v1/projects/live/sessions/", {}, format="json").json()["id"]
    turn = owner.post(f"/api/v1/sessions/{sid}/turns/", {"content": "Hi"}, format="json").json()
    feeder.post(
        f"/api/v1/sessions/{sid}/turns/{turn['turn']['id']}/candidates/",
        _candidates("one", "two"),
        format="json",
    )
    session = owner.get(f"/api/v1/sessions/{sid}/").json()
    first_shown = session["turn"]["assignment"]["candidates"][0]["content"]
    assert _judge(owner, session, 3).status_code == 201
    head = Message.objects.filter(conversation_id=sid).order_by("-id").first()
    assert (head.role, head.content) == ("assistant", first_shown)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_candidates("same", "same"), "candidates"),
        (_candidates("only one"), "candidates"),
        ({"candidates": [{"content": "a"}, {"content": "b"}]}, "candidates"),
    ],
)
def test_bad_candidates_are_400(setup, body, field):
    _, owner, feeder = setup
    sid = owner.post("/api/v1/projects/live/sessions/", {}, format="json").json()["id"]
    turn = owner.post(f"/api/v1/sessions/{sid}/turns/", {"content": "Hi"}, format="json").json()
    response = feeder.post(
        f"/api/v1/sessions/{sid}/turns/{turn['turn']['id']}/candidates/", body, format="json"
    )
    assert response.status_code == 400 and field in response.json()["errors"]


def test_blank_message_is_400_and_ended_session_is_409(setup):
    _, owner, _ = setup
    sid = owner.post("/api/v1/projects/live/sessions/", {}, format="json").json()["id"]
    blank = owner.post(f"/api/v1/sessions/{sid}/turns/", {"content": "   "}, format="json")
    assert blank.status_code == 400 and "content" in blank.json()["errors"]
    assert owner.post(f"/api/v1/sessions/{sid}/end/").json()["status"] == "ended"
    late = owner.post(f"/api/v1/sessions/{sid}/turns/", {"content": "hi"}, format="json")
    assert late.status_code == 409


def test_other_annotators_cannot_see_or_drive_a_session(setup):
    project, owner, _ = setup
    sid = owner.post("/api/v1/projects/live/sessions/", {}, format="json").json()["id"]
    other = APIClient()
    other.force_authenticate(member(project))
    assert other.get(f"/api/v1/sessions/{sid}/").status_code == 404
    assert (
        other.post(f"/api/v1/sessions/{sid}/turns/", {"content": "hi"}, format="json").status_code
        == 404
    )


def test_session_list_shows_only_the_callers_sessions_open_first(setup):
    project, owner, _ = setup
    url = "/api/v1/projects/live/sessions/"
    ended = owner.post(url, {}, format="json").json()["id"]
    owner.post(
        f"/api/v1/sessions/{ended}/turns/", {"content": "First  question\nhere"}, format="json"
    )
    owner.post(f"/api/v1/sessions/{ended}/end/")
    fresh = owner.post(url, {"system": "Be brief."}, format="json").json()["id"]
    long = owner.post(url, {}, format="json").json()["id"]
    owner.post(f"/api/v1/sessions/{long}/turns/", {"content": "x" * 500}, format="json")
    other = APIClient()
    other.force_authenticate(member(project))
    other.post(url, {}, format="json")
    elsewhere = ProjectFactory(slug="elsewhere")
    annotator = Conversation.objects.get(pk=fresh).owner
    MembershipFactory(project=elsewhere, user=annotator, role=Role.ANNOTATOR)
    assert owner.post("/api/v1/projects/elsewhere/sessions/", {}, format="json").status_code == 201

    listed = owner.get(url)

    assert listed.status_code == 200
    rows = listed.json()
    assert [r["id"] for r in rows] == [long, fresh, ended]
    assert [r["status"] for r in rows] == ["open", "open", "ended"]
    assert [r["turns"] for r in rows] == [1, 0, 1]
    assert rows[2]["title"] == "First question here"
    assert rows[1]["title"] == ""
    assert len(rows[0]["title"]) == 80 and rows[0]["title"].endswith("…")
    assert set(rows[0]) == {"id", "status", "created_at", "turns", "title"}
    assert other.get(url).json()[0]["id"] not in {long, fresh, ended}
    assert len(other.get(url).json()) == 1
