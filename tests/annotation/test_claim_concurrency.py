"""Many annotators claiming from one project at once, on real Postgres."""

import threading
from collections import Counter

import pytest
from django.db import connection

from annotation import services
from annotation.models import Judgment
from factories import ProjectFactory, member, pair_task

pytestmark = pytest.mark.django_db(transaction=True)


def _annotate_until_empty(annotator, project, errors: list) -> None:
    try:
        n = 0
        while assignment := services.assignment_claim_next(annotator=annotator, project=project):
            key = f"conc-{annotator.pk}-{n:05d}"
            services.judgment_submit(assignment=assignment, choice=1 + n % 5, idempotency_key=key)
            n += 1
    except Exception as exc:  # surfaced by the test below
        errors.append(exc)
    finally:
        connection.close()


def test_concurrent_claims_never_exceed_overlap_nor_repeat_an_annotator():
    project = ProjectFactory(overlap=1)
    tasks = [pair_task(project, overlap=3) for _ in range(30)]
    annotators = [member(project) for _ in range(12)]
    errors: list = []
    threads = [
        threading.Thread(target=_annotate_until_empty, args=(a, project, errors))
        for a in annotators
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert not errors, errors
    per_task = Counter(Judgment.objects.values_list("task_id", flat=True))
    assert per_task == {t.pk: 3 for t in tasks}  # exactly k each: none lost, none beyond k
    pairs = Counter(Judgment.objects.values_list("task_id", "annotator_id"))
    assert max(pairs.values()) == 1
