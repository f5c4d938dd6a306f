"""Postgres-built trl-preference rows equal the general path's, row by row."""

import json

import pytest

from annotation import export_sql, exports, services
from annotation.export_rows import Rules, rows
from annotation.models import Completion
from factories import ProjectFactory, member, multi_task, pair_task
from models_serving.models import ModelEndpoint, ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = ProjectFactory(slug="fast", overlap=2)
    endpoint = ModelEndpoint.objects.create(name="e", base_url="http://127.0.0.1:9/v1")
    versions = [
        ModelVersion.objects.create(endpoint=endpoint, model_name=f"m{i}", label=f"v{i}")
        for i in range(2)
    ]
    for n in range(6):
        task = pair_task(project, overlap=2, texts=(f"reply 'one' \\ {n}\n", f'reply "two" {n} ü'))
        for i, c in enumerate(task.completions.order_by("pk")):
            Completion.objects.filter(pk=c.pk).update(model_version=versions[(i + n) % 2])
    multi_task(project, "ranking", ["r1", "r2", "r3"], overlap=2)
    choices = [1, 2, 3, 4, 5, None]
    for annotator in (member(project), member(project)):
        for n, choice in enumerate(choices + [None]):
            assignment = services.assignment_claim_next(annotator=annotator, project=project)
            if assignment is None:
                break
            if assignment.task.interface == "ranking":
                answer = {"ranking": ["C", "A", "B"]}
            elif choice is None:
                answer = {"both_bad": True}
            else:
                answer = {"choice": choice}
            services.judgment_submit(
                assignment=assignment, idempotency_key=f"fast-{annotator.pk}-{n:03d}", **answer
            )
    return project


def general(project, rules: Rules, filters: exports.Filters) -> list[dict]:
    found = rows("trl-preference", exports.export_records(project, filters), rules)
    return sorted(found, key=lambda row: row["judgment_id"])  # the SQL path: judgment order


def fast(project, rules: Rules, filters: exports.Filters) -> list[dict]:
    lines = export_sql.trl_preference_lines(project.pk, filters, rules)
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(
    "rules",
    [Rules(), Rules(min_strength=2), Rules(margin_by_strength={1: 0.25, 2: 1.5})],
)
def test_sql_rows_equal_the_general_rows(project, rules):
    assert export_sql.eligible("trl-preference", rules)
    expected = general(project, rules, exports.Filters())
    got = fast(project, rules, exports.Filters())
    assert len(expected) >= 4
    assert got == expected


def test_filters_match_the_general_path(project, monkeypatch):
    version = ModelVersion.objects.order_by("pk").first()
    someone = project.tasks.first().judgments.first().annotator_id
    monkeypatch.setattr(export_sql, "FETCH", 2)  # several keyset pages
    for filters in [
        exports.Filters(model_versions=[version.pk]),
        exports.Filters(annotators=[someone]),
        exports.Filters(guideline_versions=[1]),
        exports.Filters(since="2000-01-01", until="2999-01-01"),
        exports.Filters(since="2999-01-01"),
        exports.Filters(rounds=[12345]),
    ]:
        assert fast(project, Rules(), filters) == general(project, Rules(), filters), filters


def test_rules_that_need_grouping_use_the_general_path():
    assert not export_sql.eligible("trl-preference", Rules(aggregate="majority"))
    assert not export_sql.eligible("trl-preference", Rules(ties="keep"))
    assert not export_sql.eligible("sft", Rules())
