import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation import services
from annotation.models import Prompt, Role
from factories import ProjectFactory, member, pair_task

pytestmark = pytest.mark.django_db


def researcher_client(project) -> APIClient:
    client = APIClient()
    client.force_authenticate(member(project, Role.RESEARCHER))
    return client


def _upload(client, slug, name, content: bytes):
    return client.post(
        f"/api/v1/projects/{slug}/prompts/import/",
        {"file": SimpleUploadedFile(name, content)},
        format="multipart",
    )


def test_jsonl_import_stores_valid_lines_and_reports_the_rest():
    project = ProjectFactory(slug="imp")
    client = researcher_client(project)
    content = (
        b'{"prompt": "What is 2+2?", "id": "q1"}\n'
        b'{"messages": [{"role": "user", "content": "Hi"},'
        b' {"role": "assistant", "content": "Hello"},'
        b' {"role": "user", "content": "<b>bold</b> and javascript:alert(1)"}]}\n'
        b"{not json\n"
        b'{"prompt": "What is 2+2?"}\n'
        b'{"prompt": "bad\\u0000nul"}\n'
    )
    response = _upload(client, "imp", "prompts.jsonl", content)
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["created"] == 2
    assert report["duplicates"] == [4]
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(3, "line"), (5, "prompt")]
    stored = Prompt.objects.filter(project=project).order_by("id")
    assert stored[0].external_id == "q1"
    assert stored[1].messages[-1]["content"] == "<b>bold</b> and javascript:alert(1)"  # verbatim


def test_reimport_is_deduplicated_against_the_database():
    project = ProjectFactory(slug="imp2")
    client = researcher_client(project)
    csv = b'prompt,system,id\n"Tell me a joke",Be funny,j1\n"Explain DNS",,\n'
    first = _upload(client, "imp2", "p.csv", csv).json()
    second = _upload(client, "imp2", "p.csv", csv).json()
    assert (first["created"], second["created"]) == (2, 0)
    assert second["duplicates"] == [2, 3]
    assert Prompt.objects.filter(project=project).count() == 2
    assert Prompt.objects.get(external_id="j1").messages[0] == {
        "role": "system",
        "content": "Be funny",
    }


def test_unsupported_file_type_is_a_400_naming_file():
    project = ProjectFactory(slug="imp3")
    response = _upload(researcher_client(project), "imp3", "prompts.txt", b"hello")
    assert response.status_code == 400 and "file" in response.json()["errors"]


def test_missing_file_is_a_400():
    project = ProjectFactory(slug="imp4")
    response = researcher_client(project).post(
        "/api/v1/projects/imp4/prompts/import/", {}, format="multipart"
    )
    assert response.status_code == 400 and "file" in response.json()["errors"]


def test_quality_report_reflects_position_bias_and_agreement():
    project = ProjectFactory(slug="qual", overlap=1)
    tasks = [
        pair_task(project, overlap=2, texts=("short", "a much longer reply")) for _ in range(4)
    ]
    a, b = member(project, username="alice"), member(project, username="bob")
    for annotator in (a, b):
        for n in range(len(tasks)):
            assignment = services.assignment_claim_next(annotator=annotator, project=project)
            services.judgment_submit(
                assignment=assignment,
                choice=1,  # always "A is much better": pure position bias
                idempotency_key=f"q-{annotator.pk}-{n:04d}",
                time_spent_ms=30_000,
            )
    response = researcher_client(project).get("/api/v1/projects/qual/quality/")
    assert response.status_code == 200
    body = response.json()
    assert body["project"]["n_judgments"] == 8
    assert body["project"]["position_a_rate"] == 1.0
    assert body["project"]["judgments_per_hour"] == 120.0
    assert {row["annotator"] for row in body["annotators"]} == {"alice", "bob"}
    assert all(row["position_a_rate"] == 1.0 for row in body["annotators"])
