import json

import pytest
from django.core.management import call_command

from annotation import services
from annotation.exports import annotator_pseudonym
from factories import ProjectFactory, member, pair_task

pytestmark = pytest.mark.django_db


def _judge(project, annotator, choices):
    for n, choice in enumerate(choices):
        assignment = services.assignment_claim_next(annotator=annotator, project=project)
        services.judgment_submit(
            assignment=assignment, choice=choice, idempotency_key=f"exp-key-{n:04d}"
        )


def test_export_writes_trl_conversational_rows_without_ties(tmp_path):
    project = ProjectFactory(slug="exp")
    for _ in range(3):
        pair_task(project)
    annotator = member(project)
    _judge(project, annotator, [1, 3, 4])
    out = tmp_path / "prefs.jsonl"
    call_command("export_dataset", project="exp", format="trl-preference", out=str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2  # the tie is left out
    for row in rows:
        assert row["prompt"][0]["role"] == "user"
        assert [m["role"] for m in row["chosen"]] == ["assistant"]
        assert [m["role"] for m in row["rejected"]] == ["assistant"]
        assert row["chosen"][0]["content"] != row["rejected"][0]["content"]
        assert row["annotator"] == annotator_pseudonym(annotator.pk)
    assert sorted(r["strength"] for r in rows) == [1, 2]


def test_export_chosen_follows_the_judgment_not_the_display(tmp_path):
    project = ProjectFactory(slug="exp2")
    pair_task(project, texts=("good answer", "bad answer"))
    annotator = member(project)
    assignment = services.assignment_claim_next(annotator=annotator)
    good_id = project.tasks.get().completions.get(content="good answer").pk
    choice = 1 if assignment.shown_order[0] == good_id else 5
    services.judgment_submit(assignment=assignment, choice=choice, idempotency_key="exp2-key-1")
    out = tmp_path / "p.jsonl"
    call_command("export_dataset", project="exp2", out=str(out))
    row = json.loads(out.read_text())
    assert row["chosen"][0]["content"] == "good answer"
    assert row["rejected"][0]["content"] == "bad answer"


def test_export_loads_with_datasets(tmp_path):
    import datasets

    project = ProjectFactory(slug="exp3")
    for _ in range(2):
        pair_task(project)
    _judge(project, member(project), [2, 5])
    out = tmp_path / "p.jsonl"
    call_command("export_dataset", project="exp3", out=str(out))
    loaded = datasets.load_dataset("json", data_files=str(out), split="train")
    assert loaded.num_rows == 2
    assert set(loaded.column_names) >= {"prompt", "chosen", "rejected", "judgment_id", "strength"}


def test_unknown_project_is_a_clear_error(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no project"):
        call_command("export_dataset", project="missing", out=str(tmp_path / "x.jsonl"))
