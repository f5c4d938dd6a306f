import json

import pytest
from rest_framework.test import APIClient

from annotation.models import Judgment
from factories import ProjectFactory, member, multi_task

pytestmark = pytest.mark.django_db


def _claim(project):
    client = APIClient()
    client.force_authenticate(member(project))
    assignment = client.get("/api/v1/assignments/next/").json()["assignment"]
    return client, assignment, f"/api/v1/assignments/{assignment['id']}/judgment/"


def test_ranking_task_round_trip():
    project = ProjectFactory()
    multi_task(project, "ranking", ["first text", "second text", "third text"])
    client, assignment, url = _claim(project)
    assert assignment["interface"] == "ranking" and len(assignment["candidates"]) == 3
    by_label = {c["label"]: c["content"] for c in assignment["candidates"]}
    response = client.post(
        url, {"ranking": ["C", "A", "B"], "idempotency_key": "rank-key-1"}, format="json"
    )
    assert response.status_code == 201, response.content
    judgment = Judgment.objects.get()
    contents = [judgment.task.completions.get(pk=cid).content for cid in judgment.ranking]
    assert contents == [by_label["C"], by_label["A"], by_label["B"]]


def test_rating_task_shows_rubric_and_stores_aspects():
    project = ProjectFactory(rating_aspects=["correctness"])
    multi_task(project, "rating", ["only answer"])
    client, assignment, url = _claim(project)
    assert assignment["rating_rubric"]["5"].startswith("Excellent")
    assert assignment["rating_aspects"] == ["correctness"]
    body = {"ratings": {"A": {"overall": 4, "correctness": 5}}, "idempotency_key": "rate-key-1"}
    assert client.post(url, body, format="json").status_code == 201
    stored = Judgment.objects.get().ratings
    assert list(stored.values()) == [{"overall": 4, "correctness": 5}]


def test_thumbs_with_rewrite_and_comment():
    project = ProjectFactory()
    multi_task(project, "thumbs", ["meh answer"])
    client, assignment, url = _claim(project)
    body = {
        "thumbs": "down",
        "rewrite": {"label": "A", "content": "A much better answer."},
        "comment": "too vague",
        "idempotency_key": "thumb-key-1",
    }
    assert client.post(url, body, format="json").status_code == 201
    judgment = Judgment.objects.get()
    assert judgment.thumbs_up is False and judgment.rewrite == "A much better answer."
    assert judgment.rewrite_of.content == "meh answer"


def test_pairwise_answer_on_a_ranking_task_is_a_400():
    project = ProjectFactory()
    multi_task(project, "ranking", ["a", "b", "c"])
    client, _, url = _claim(project)
    response = client.post(url, {"choice": 1, "idempotency_key": "wrong-kind"}, format="json")
    assert response.status_code == 400 and "choice" in response.json()["errors"]
    assert not Judgment.objects.exists()


def test_non_pairwise_judgments_stay_out_of_the_preference_export(tmp_path):
    from django.core.management import call_command

    project = ProjectFactory(slug="kinds-export")
    multi_task(project, "ranking", ["a", "b", "c"])
    client, _, url = _claim(project)
    client.post(url, {"ranking": ["A", "B", "C"], "idempotency_key": "rank-exp-1"}, format="json")
    out = tmp_path / "x.jsonl"
    call_command("export_dataset", project="kinds-export", out=str(out))
    assert out.read_text() == ""
    assert json.loads(json.dumps(Judgment.objects.get().ranking))
