"""Export snapshots end to end: formats that load with `datasets`, options, API, downloads."""

import json
import zipfile

import datasets
import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework.test import APIClient

from annotation import exports, services
from annotation.models import ExportSnapshot, Role
from factories import ProjectFactory, member, multi_task, pair_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def exports_dir(settings, tmp_path):
    settings.EXPORTS_DIR = tmp_path / "exports"


def judge(project, annotator, answers: list[dict]) -> None:
    for n, answer in enumerate(answers):
        assignment = services.assignment_claim_next(annotator=annotator, project=project)
        services.judgment_submit(
            assignment=assignment, idempotency_key=f"snap-{annotator.pk}-{n:04d}", **answer
        )


@pytest.fixture
def judged():
    project = ProjectFactory(slug="snap", overlap=1, rating_aspects=["helpfulness"])
    for _ in range(3):
        pair_task(project)
    multi_task(project, "rating", ["r1", "r2", "r3"])
    multi_task(project, "ranking", ["k1", "k2", "k3"])
    multi_task(project, "thumbs", ["t1"])
    annotator = member(project)
    judge(
        project,
        annotator,
        [{"choice": 1}, {"choice": 3}, {"choice": 4}]
        + [
            {"ratings": {"A": {"overall": 5}, "B": {"overall": 2}, "C": {"overall": 3}}},
            {"ranking": ["C", "A", "B"]},
            {"thumbs": "down"},
        ],
    )
    return project


def run(project, **options) -> ExportSnapshot:
    snapshot = exports.export_create(project=project, options=options)
    result = exports.export_run(snapshot_id=snapshot.pk)
    assert result is not None and result.status == "succeeded", result and result.error
    return result


@pytest.mark.parametrize(
    ("fmt", "expected_rows", "columns"),
    [
        ("trl-preference", 2, {"prompt", "chosen", "rejected", "margin"}),
        ("trl-unpaired", 3, {"prompt", "completion", "label"}),
        ("ratings", 1, {"prompt", "completions"}),
        ("ratings-pairs", 1, {"prompt", "chosen", "rejected", "margin"}),
        ("rankings", 1, {"prompt", "completions", "completion_ids"}),
        ("sft", 2, {"messages"}),
        ("raw", 6, {"judgment_id", "candidates", "shown_order", "annotator"}),
    ],
)
def test_every_format_loads_with_datasets(judged, fmt, expected_rows, columns):
    snapshot = run(judged, format=fmt)
    path = exports.export_path(snapshot)
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    assert loaded.num_rows == snapshot.row_count == expected_rows
    assert set(loaded.column_names) >= columns
    assert len(snapshot.content_sha256) == 64 and "rows: " in snapshot.card


def test_parquet_and_hf_folder_and_identical_content_hash(judged):
    jsonl = run(judged, format="trl-preference")
    parquet = run(judged, format="trl-preference", file_format="parquet")
    hf = run(judged, format="trl-preference", file_format="hf")
    assert jsonl.content_sha256 == parquet.content_sha256 == hf.content_sha256
    table = datasets.load_dataset(
        "parquet", data_files=str(exports.export_path(parquet)), split="train"
    )
    assert table.num_rows == 2
    folder = exports.export_path(hf).with_suffix("")
    with zipfile.ZipFile(exports.export_path(hf)) as archive:
        archive.extractall(folder.with_name("unzipped"))
    assert datasets.load_from_disk(str(folder.with_name("unzipped"))).num_rows == 2


def test_trained_by_trl_reward_collator_shape(judged):
    """The preference rows are what TRL's RewardTrainer takes: conversational + margin."""
    snapshot = run(judged, format="trl-preference", rules={"ties": "drop"})
    rows = [json.loads(x) for x in exports.export_path(snapshot).read_text().splitlines()]
    for row in rows:
        assert row["prompt"][-1]["role"] == "user"
        assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
        assert isinstance(row["margin"], float) and row["margin"] > 0


def test_tokenizer_validation_reports_prefix_bos_and_length(judged, tiny_models):
    snapshot = run(
        judged,
        format="trl-preference",
        validate_tokenizer=str(settings.TINY_POLICY_DIR),
        max_length=8,
    )
    report = snapshot.validation
    assert report["rows_checked"] == 2
    assert report["prompt_not_a_prefix"] == 0
    assert report["rows_over_max_length"] == 2  # every row is longer than 8 tokens
    assert "Tokenizer check" in snapshot.card


def test_filters_and_redelivery(judged):
    annotator_id = judged.tasks.first().judgments.first().annotator_id
    assert run(judged, format="raw", filters={"annotators": [annotator_id + 999]}).row_count == 0
    assert run(judged, format="raw", filters={"since": "2999-01-01"}).row_count == 0
    snapshot = run(judged, format="raw")
    assert exports.export_run(snapshot_id=snapshot.pk) is None  # redelivered: nothing happens


def test_bad_options_name_the_field(judged):
    from annotation.answers import InvalidInput

    for options, field in [
        ({"format": "csv"}, "format"),
        ({"file_format": "xlsx"}, "file_format"),
        ({"rules": {"aggregate": "median"}}, "aggregate"),
        ({"filters": {"since": "yesterday"}}, "since"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            exports.export_create(project=judged, options=options)
        assert refused.value.field == field


def test_api_admin_exports_researcher_downloads_annotator_cannot(
    judged, django_capture_on_commit_callbacks, monkeypatch
):
    from annotation import tasks

    # The worker's part, run in-process: the Celery integration is tested with a real worker.
    monkeypatch.setattr(tasks.run_export, "delay", lambda pk: exports.export_run(snapshot_id=pk))
    admin = member(judged, Role.ADMIN)
    researcher = member(judged, Role.RESEARCHER)
    annotator = member(judged)
    url = "/api/v1/projects/snap/exports/"

    def client(user):
        c = APIClient()
        c.force_authenticate(user)
        return c

    assert client(researcher).post(url, {}, format="json").status_code == 404
    bad = client(admin).post(url, {"format": "csv"}, format="json")
    assert bad.status_code == 400 and "format" in bad.json()["errors"]
    with django_capture_on_commit_callbacks(execute=True):
        created = client(admin).post(
            url, {"format": "sft", "rules": {"min_strength": 1}}, format="json"
        )
    assert created.status_code == 202, created.content
    snapshot_id = created.json()["id"]
    shown = client(researcher).get(f"{url}{snapshot_id}/").json()
    assert shown["status"] == "succeeded" and shown["row_count"] == 2  # built on commit
    download = client(researcher).get(f"{url}{snapshot_id}/download/")
    assert download.status_code == 200
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["messages"]
    for path in (url, f"{url}{snapshot_id}/", f"{url}{snapshot_id}/download/"):
        assert client(annotator).get(path).status_code == 404


def test_download_of_an_unfinished_export_is_refused(judged):
    snapshot = exports.export_create(project=judged, options={"format": "raw"})
    admin = member(judged, Role.ADMIN)
    c = APIClient()
    c.force_authenticate(admin)
    response = c.get(f"/api/v1/projects/snap/exports/{snapshot.pk}/download/")
    assert response.status_code == 409


def test_command_covers_formats_and_options(judged, tmp_path):
    out = tmp_path / "ratings.parquet"
    call_command(
        "export_dataset",
        project="snap",
        format="ratings-pairs",
        file_format="parquet",
        min_strength=2,
        seed=3,
        out=str(out),
    )
    assert datasets.load_dataset("parquet", data_files=str(out), split="train").num_rows == 1
