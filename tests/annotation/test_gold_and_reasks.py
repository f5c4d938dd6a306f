import random

import pytest
from rest_framework.test import APIClient

from annotation import services
from annotation.assignment_policy import draw_source, swapped
from annotation.models import Assignment, Judgment, Role, Task
from factories import ProjectFactory, member, pair_task

pytestmark = pytest.mark.django_db


def test_draw_source_respects_rates_and_availability():
    rng = random.Random(7)
    draws = [
        draw_source(rng, gold_rate=0.2, reask_rate=0.1, gold_available=True, reask_available=True)
        for _ in range(5000)
    ]
    assert 0.17 < draws.count("gold") / 5000 < 0.23
    assert 0.07 < draws.count("reask") / 5000 < 0.13
    assert (
        draw_source(rng, gold_rate=1.0, reask_rate=0, gold_available=False, reask_available=True)
        == "regular"
    )
    assert swapped([4, 9]) == [9, 4]


def test_gold_items_are_served_to_every_annotator_and_scored():
    project = ProjectFactory(slug="gold", gold_rate=0.5)
    gold = pair_task(project, texts=("right answer", "wrong answer"))
    for _ in range(6):
        pair_task(project, overlap=3)  # regular work for everyone, gold interleaved into it
    right = gold.completions.get(content="right answer").pk
    researcher = APIClient()
    researcher.force_authenticate(member(project, Role.RESEARCHER))
    marked = researcher.post(
        f"/api/v1/projects/gold/tasks/{gold.pk}/gold/", {"chosen": right}, format="json"
    )
    assert marked.status_code == 200 and marked.json()["gold_answer"] == {"chosen": right}

    annotators = [member(project, username=f"g{i}") for i in range(3)]
    rng = random.Random(3)
    for annotator in annotators:
        for n in range(7):
            assignment = services.assignment_claim_next(annotator=annotator, rng=rng)
            if assignment is None:
                break
            good_first = assignment.shown_order[0] == right
            choice = 1 if good_first else 5  # always picks the right answer when it is shown
            services.judgment_submit(
                assignment=assignment, choice=choice, idempotency_key=f"gk-{annotator.pk}-{n}"
            )
    gold_judgments = Judgment.objects.filter(task=gold)
    assert gold_judgments.count() == 3  # shared: every annotator saw it, no slot limit
    report = researcher.get("/api/v1/projects/gold/quality/").json()
    assert report["project"]["n_gold"] == 3
    assert report["project"]["gold_accuracy"] == 1.0


def test_reask_shows_the_same_pair_swapped_to_the_same_annotator_and_stays_out_of_exports(tmp_path):
    from django.core.management import call_command

    project = ProjectFactory(slug="reask", reask_rate=0.5)
    pair_task(project)
    pair_task(project)
    annotator = member(project)
    first = services.assignment_claim_next(annotator=annotator, project=project)
    services.judgment_submit(assignment=first, choice=2, idempotency_key="reask-0001")
    rng = random.Random(0)
    while True:  # draw until the policy picks a re-ask (rate 0.5)
        nxt = services.assignment_claim_next(annotator=annotator, project=project, rng=rng)
        if nxt.task.reask_of_id is not None:
            break
        Assignment.objects.filter(pk=nxt.pk).delete()
        Task.objects.filter(pk=nxt.task_id).update(slots_taken=0)
    assert nxt.task.reask_of_id == first.task_id
    assert nxt.shown_order == list(reversed(first.shown_order))
    assert nxt.task.reserved_for_id == annotator.pk
    # Consistent answer on the swapped pair: "B is better" now means the same completion.
    services.judgment_submit(assignment=nxt, choice=4, idempotency_key="reask-0002")
    other = member(project)
    assert services.assignment_claim_next(annotator=other, project=project).task.reask_of_id is None

    out = tmp_path / "r.jsonl"
    call_command("export_dataset", project="reask", out=str(out))
    assert len(out.read_text().splitlines()) == 1  # the re-ask is not training data

    researcher = APIClient()
    researcher.force_authenticate(member(project, Role.RESEARCHER))
    report = researcher.get("/api/v1/projects/reask/quality/").json()["project"]
    assert report["n_reask_pairs"] == 1 and report["self_consistency"] == 1.0


def test_gold_mark_rejects_a_completion_of_another_task():
    project = ProjectFactory(slug="gold2")
    task, other = pair_task(project), pair_task(project)
    foreign = other.completions.first().pk
    researcher = APIClient()
    researcher.force_authenticate(member(project, Role.RESEARCHER))
    response = researcher.post(
        f"/api/v1/projects/gold2/tasks/{task.pk}/gold/", {"chosen": foreign}, format="json"
    )
    assert response.status_code == 400 and "chosen" in response.json()["errors"]
