import random
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services
from annotation.models import Assignment, Role, Task
from factories import ProjectFactory, member, pair_task

pytestmark = pytest.mark.django_db


def test_claim_gives_a_task_with_randomised_two_candidate_order():
    project = ProjectFactory()
    task = pair_task(project)
    annotator = member(project)
    assignment = services.assignment_claim_next(annotator=annotator, rng=random.Random(1))
    assert assignment is not None and assignment.task == task
    assert sorted(assignment.shown_order) == sorted(task.completions.values_list("id", flat=True))
    assert Task.objects.get(pk=task.pk).slots_taken == 1


def test_pending_assignment_is_resumed_not_hoarded():
    project = ProjectFactory()
    pair_task(project)
    pair_task(project)
    annotator = member(project)
    first = services.assignment_claim_next(annotator=annotator)
    again = services.assignment_claim_next(annotator=annotator)
    assert first == again
    assert Assignment.objects.filter(annotator=annotator).count() == 1


def test_overlap_two_gives_two_distinct_annotators_and_no_third():
    project = ProjectFactory()
    task = pair_task(project, overlap=2)
    a, b, c = member(project), member(project), member(project)
    got = [services.assignment_claim_next(annotator=u) for u in (a, b, c)]
    assert got[0].task == got[1].task == task
    assert got[2] is None
    assert {x.annotator for x in got[:2]} == {a, b}


def test_same_annotator_never_gets_a_task_twice():
    project = ProjectFactory()
    pair_task(project, overlap=3)
    annotator = member(project)
    assignment = services.assignment_claim_next(annotator=annotator)
    services.judgment_submit(assignment=assignment, choice=1, idempotency_key="key-00000001")
    assert services.assignment_claim_next(annotator=annotator) is None


def test_expired_lease_returns_the_task_to_the_pool():
    project = ProjectFactory()
    task = pair_task(project)
    slow, other = member(project), member(project)
    assignment = services.assignment_claim_next(annotator=slow)
    assert services.assignment_claim_next(annotator=other) is None
    Assignment.objects.filter(pk=assignment.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    taken_over = services.assignment_claim_next(annotator=other)
    assert taken_over is not None and taken_over.task == task
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.EXPIRED


def test_late_submit_after_expiry_is_refused():
    project = ProjectFactory()
    pair_task(project)
    annotator = member(project)
    assignment = services.assignment_claim_next(annotator=annotator)
    Assignment.objects.filter(pk=assignment.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assignment.refresh_from_db()
    with pytest.raises(services.JudgmentConflict, match="ran out"):
        services.judgment_submit(assignment=assignment, choice=2, idempotency_key="late-0000001")


def test_annotators_only_get_tasks_of_their_projects():
    mine, theirs = ProjectFactory(), ProjectFactory()
    pair_task(theirs)
    annotator = member(mine)
    assert services.assignment_claim_next(annotator=annotator) is None


def test_repeat_submit_with_same_key_stores_one_judgment():
    project = ProjectFactory()
    pair_task(project)
    annotator = member(project, Role.ANNOTATOR)
    assignment = services.assignment_claim_next(annotator=annotator)
    first = services.judgment_submit(
        assignment=assignment, choice=5, idempotency_key="dup-00000001"
    )
    second = services.judgment_submit(
        assignment=assignment, choice=5, idempotency_key="dup-00000001"
    )
    assert first.created and not second.created
    assert first.judgment.pk == second.judgment.pk
    assert first.judgment.chosen_id == assignment.shown_order[1]
    assert first.judgment.strength == 2
