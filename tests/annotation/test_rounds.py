"""Collection rounds: bulk generation through a real model server, idempotent and reported."""

import random
import socket
from collections.abc import Iterator

import pytest
from django.conf import settings

from annotation import rounds
from annotation.answers import InvalidInput
from annotation.models import Completion, Project, Round, RoundPrompt, Task
from factories import ProjectFactory, PromptFactory
from models_serving.local_server import local_model_server, served_model_name
from models_serving.models import ModelEndpoint, ModelVersion

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local_model(tiny_models) -> Iterator[str]:
    """The embedded `transformers serve` on the tiny policy: the protocol vLLM speaks."""
    with local_model_server(settings.TINY_POLICY_DIR, _free_port()) as base_url:
        yield base_url


def version_at(base_url: str, name: str = "tiny") -> ModelVersion:
    endpoint = ModelEndpoint.objects.create(
        name=f"endpoint-{name}", base_url=base_url, kind="transformers-serve", max_concurrency=4
    )
    return ModelVersion.objects.create(
        endpoint=endpoint, model_name=served_model_name(settings.TINY_POLICY_DIR), label=name
    )


def project_with_prompts(n: int) -> Project:
    project = ProjectFactory()
    for _ in range(n):
        PromptFactory(project=project)
    return project


def test_round_generates_pairs_with_provenance_once(local_model):
    project = project_with_prompts(4)
    version = version_at(local_model)
    round_ = rounds.round_create(
        project=project,
        name="week 1",
        model_versions=[version],
        prompt_count=3,
        sampling_params={"max_tokens": 12, "temperature": 1.0},
        rng=random.Random(1),
    )
    assert round_.generation_total == 3

    first = rounds.round_generate(round_id=round_.pk)

    assert (first.done, first.failed, first.pending) == (3, 0, 0)
    round_.refresh_from_db()
    assert (round_.generation_done, round_.generation_failed) == (3, 0)
    assert round_.status == Round.Status.DRAFT  # only round_start moves it to generating
    completions = Completion.objects.filter(round=round_)
    assert completions.count() == 6
    for c in completions:
        assert c.model_version_id == version.pk and c.endpoint_id == version.endpoint_id
        assert c.seed is not None and c.latency_ms is not None and c.completion_tokens
        assert c.sampling_params["max_tokens"] == 12
    tasks = Task.objects.filter(round=round_)
    assert 1 <= tasks.count() <= 3  # identical pairs (possible on a tiny model) are not tasks
    for task in tasks:
        texts = [c.completion.content for c in task.candidates.all()]
        assert len(texts) == 2 and texts[0] != texts[1]

    # A redelivered task: nothing new is generated, stored or counted.
    again = rounds.round_generate(round_id=round_.pk)
    assert (again.done, again.failed, again.pending) == (0, 0, 0)
    assert Completion.objects.filter(round=round_).count() == 6
    assert Task.objects.filter(round=round_).count() == tasks.count()
    round_.refresh_from_db()
    assert round_.generation_done == 3


def test_unreachable_server_is_retried_then_reported_per_prompt():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    project = project_with_prompts(2)
    round_ = rounds.round_create(
        project=project, name="r", model_versions=[version_at(dead_url)], prompt_count=2
    )
    Round.objects.filter(pk=round_.pk).update(status=Round.Status.GENERATING)
    passes = [rounds.round_generate(round_id=round_.pk) for _ in range(rounds.MAX_ATTEMPTS)]
    assert [p.pending for p in passes] == [2] * (rounds.MAX_ATTEMPTS - 1) + [0]
    assert passes[-1].failed == 2
    round_.refresh_from_db()
    assert (round_.generation_done, round_.generation_failed) == (0, 2)
    assert round_.status == Round.Status.COLLECTING
    errors = set(RoundPrompt.objects.filter(round=round_).values_list("error", flat=True))
    assert len(errors) == 1 and "unreachable" in errors.pop()
    assert not Completion.objects.filter(round=round_).exists()


def test_a_version_still_loading_is_waited_for_not_failed(
    local_model, django_capture_on_commit_callbacks, monkeypatch
):
    from annotation import tasks
    from models_serving import services as serving

    project = project_with_prompts(2)
    version = version_at(local_model)
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.PENDING)
    round_ = rounds.round_create(
        project=project,
        name="waits",
        model_versions=[version],
        prompt_count=2,
        sampling_params={"max_tokens": 8},
    )
    Round.objects.filter(pk=round_.pk).update(status=Round.Status.GENERATING)

    for _ in range(rounds.MAX_ATTEMPTS + 1):  # more passes than a failing prompt gets
        result = rounds.round_generate(round_id=round_.pk)
        assert (result.done, result.failed, result.pending, result.waiting) == (0, 0, 2, True)
    assert set(RoundPrompt.objects.filter(round=round_).values_list("attempts", flat=True)) == {0}
    assert not Completion.objects.filter(round=round_).exists()

    queued: list[int] = []
    monkeypatch.setattr(tasks.generate_round, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        serving._set_status(version, ModelVersion.Status.READY, "listed", only_if_pending=True)
    assert queued == [round_.pk]  # the version_ready signal resumed the waiting round

    result = rounds.round_generate(round_id=round_.pk)
    assert (result.done, result.failed, result.pending, result.waiting) == (2, 0, 0, False)
    round_.refresh_from_db()
    assert round_.status == Round.Status.COLLECTING


def test_rounds_do_not_repeat_prompts_unless_asked(local_model):
    project = project_with_prompts(3)
    version = version_at(local_model)
    first = rounds.round_create(project=project, name="a", model_versions=[version], prompt_count=2)
    with pytest.raises(InvalidInput, match="1 to 1"):
        rounds.round_create(project=project, name="b", model_versions=[version], prompt_count=2)
    used = list(first.round_prompts.values_list("prompt_id", flat=True))
    with pytest.raises(InvalidInput) as refused:
        rounds.round_create(project=project, name="c", model_versions=[version], prompt_ids=used)
    assert refused.value.field == "prompt_ids"
    again = rounds.round_create(
        project=project, name="d", model_versions=[version], prompt_ids=used, allow_repeat=True
    )
    assert sorted(again.round_prompts.values_list("prompt_id", flat=True)) == sorted(used)
    with pytest.raises(InvalidInput) as no_versions:
        rounds.round_create(project=project, name="e", model_versions=[], prompt_count=1)
    assert no_versions.value.field == "model_versions"


def test_buffer_keeps_ready_tasks_generated_ahead(local_model):
    project = project_with_prompts(5)
    project.buffer_size = 3
    project.buffer_model_version = version_at(local_model)
    project.save()

    generated = rounds.buffer_top_up(project=project)

    assert generated == 3
    assert Completion.objects.filter(prompt__project=project, round=None).count() == 6
    ready = Task.objects.filter(project=project).count()
    assert 1 <= ready <= 3
    if ready == 3:
        assert rounds.buffer_top_up(project=project) == 0  # full: nothing more is generated


def test_round_api_create_start_and_progress(django_capture_on_commit_callbacks, monkeypatch):
    from rest_framework.test import APIClient

    from annotation import tasks
    from annotation.models import Role
    from factories import member

    project = project_with_prompts(3)
    version = version_at("http://127.0.0.1:9/v1")
    researcher, annotator = member(project, Role.RESEARCHER), member(project)
    client = APIClient()
    client.force_authenticate(researcher)
    url = f"/api/v1/projects/{project.slug}/rounds/"

    bad = client.post(url, {"name": "w1", "model_version_ids": [version.pk]}, format="json")
    assert bad.status_code == 400 and "prompt_count" in bad.json()["errors"]
    bad = client.post(
        url, {"name": "w1", "model_version_ids": [999], "prompt_count": 1}, format="json"
    )
    assert bad.status_code == 400 and "model_version_ids" in bad.json()["errors"]
    bad = client.post(
        url,
        {
            "name": "w1",
            "model_version_ids": [version.pk],
            "prompt_count": 1,
            "sampling_params": {"temperature": 9},
        },
        format="json",
    )
    assert bad.status_code == 400 and "sampling_params" in bad.json()["errors"]

    created = client.post(
        url,
        {
            "name": "w1",
            "model_version_ids": [version.pk],
            "prompt_count": 2,
            "sampling_params": {"max_tokens": 8},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["status"], body["generation_total"], body["model_version_ids"]) == (
        "draft",
        2,
        [version.pk],
    )
    queued = []
    monkeypatch.setattr(tasks.generate_round, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"{url}{body['id']}/start/")
    assert started.status_code == 202 and started.json()["status"] == "generating"
    assert queued == [body["id"]]
    again = client.post(f"{url}{body['id']}/start/")
    assert again.status_code == 400

    shown = client.get(f"{url}{body['id']}/").json()
    assert {k: shown[k] for k in ("generation_done", "generation_failed", "tasks")} == {
        "generation_done": 0,
        "generation_failed": 0,
        "tasks": 0,
    }
    blind = APIClient()
    blind.force_authenticate(annotator)
    assert blind.get(url).status_code == 404
    assert blind.get(f"{url}{body['id']}/").status_code == 404


def _collecting_round(project, version, **lifecycle) -> Round:
    round_ = rounds.round_create(
        project=project, name="loop", model_versions=[version], prompt_count=1, **lifecycle
    )
    Round.objects.filter(pk=round_.pk).update(status=Round.Status.COLLECTING)
    round_.refresh_from_db()
    return round_


def test_rounds_close_at_target_deadline_or_by_hand_and_announce_it(
    django_capture_on_commit_callbacks,
):
    from datetime import timedelta

    from django.utils import timezone

    from annotation import services
    from annotation.signals import round_closed
    from factories import member

    project = project_with_prompts(6)
    version = version_at("http://127.0.0.1:9/v1")
    by_target = _collecting_round(project, version, target_judgments=1)
    by_deadline = _collecting_round(project, version, deadline=timezone.now() - timedelta(1))
    open_one = _collecting_round(project, version, target_judgments=5)
    heard = []

    def listener(sender, round_id, **kwargs):
        heard.append(round_id)

    round_closed.connect(listener)
    try:
        prompt = by_target.round_prompts.get().prompt
        c1 = Completion.objects.create(
            prompt=prompt, round=by_target, candidate_index=0, content="x", model_name="m"
        )
        c2 = Completion.objects.create(
            prompt=prompt, round=by_target, candidate_index=1, content="y", model_name="m"
        )
        services.task_create(prompt=prompt, completions=[c1, c2], round=by_target)
        annotator = member(project)
        assignment = services.assignment_claim_next(annotator=annotator, project=project)
        services.judgment_submit(assignment=assignment, choice=1, idempotency_key="loop-0001")
        with django_capture_on_commit_callbacks(execute=True):
            closed = rounds.rounds_close_due()
        assert sorted(closed) == sorted([by_target.pk, by_deadline.pk])
        assert sorted(heard) == sorted(closed)
        reasons = dict(Round.objects.filter(pk__in=closed).values_list("pk", "close_reason"))
        assert reasons == {by_target.pk: "target", by_deadline.pk: "deadline"}
        assert rounds.rounds_close_due() == []  # closed once
        with django_capture_on_commit_callbacks(execute=True):
            assert rounds.round_close(round=open_one, reason="by hand")
        assert not rounds.round_close(round=open_one, reason="by hand")
        assert heard[-1] == open_one.pk and len(heard) == 3
    finally:
        round_closed.disconnect(listener)


def test_round_continue_samples_the_new_version_once(
    django_capture_on_commit_callbacks, monkeypatch
):
    from annotation import tasks

    project = project_with_prompts(4)
    old, new = (
        version_at("http://127.0.0.1:9/v1", "old"),
        version_at("http://127.0.0.1:9/v1", "new"),
    )
    first = _collecting_round(project, old, pairing="versus_previous", target_judgments=3)
    queued = []
    monkeypatch.setattr(tasks.generate_round, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        following = rounds.round_continue(round=first, version=new)
    assert following is not None and following.previous_id == first.pk
    assert following.status == Round.Status.GENERATING and queued == [following.pk]
    assert sorted(following.model_versions.values_list("label", flat=True)) == ["new", "old"]
    assert following.target_judgments == 3 and following.pairing == "versus_previous"
    used = set(first.round_prompts.values_list("prompt_id", flat=True))
    assert not used & set(following.round_prompts.values_list("prompt_id", flat=True))
    assert rounds.round_continue(round=first, version=new) is None  # only once


def test_round_report_fits_versions_from_judgments():
    from rest_framework.test import APIClient

    from annotation import services
    from annotation.models import Role
    from factories import member

    project = project_with_prompts(8)
    strong, weak = (
        version_at("http://127.0.0.1:9/v1", "strong"),
        version_at("http://127.0.0.1:9/v1", "weak"),
    )
    round_ = _collecting_round(project, strong)
    annotator = member(project)
    for n, prompt in enumerate(project.prompts.all()):
        pair = [
            Completion.objects.create(
                prompt=prompt,
                round=round_,
                candidate_index=i,
                content=f"{label} {n}",
                model_name="m",
                model_version=version,
            )
            for i, (label, version) in enumerate([("good", strong), ("bad", weak)])
        ]
        services.task_create(prompt=prompt, completions=pair, round=round_)
    for n in range(8):
        assignment = services.assignment_claim_next(annotator=annotator, project=project)
        good = assignment.task.completions.get(content__startswith="good").pk
        choice = 1 if assignment.shown_order[0] == good else 5
        if n == 7:
            choice = 6 - choice  # one upset
        services.judgment_submit(
            assignment=assignment, choice=choice, idempotency_key=f"rep-{n:04d}", time_spent_ms=9000
        )
    researcher = member(project, Role.RESEARCHER)
    client = APIClient()
    client.force_authenticate(researcher)
    report = client.get(f"/api/v1/projects/{project.slug}/rounds/{round_.pk}/report/").json()
    assert report["judgments"] == 8 and report["annotator_hours"] == pytest.approx(0.02)
    assert [v["label"] for v in report["versions"]] == ["strong", "weak"]
    top = report["versions"][0]
    assert top["ci_low"] <= top["score"] <= top["ci_high"]
    [row] = report["head_to_head"]
    assert row["a_wins"] + row["b_wins"] == 8 and row["ties"] == 0
