"""The task queue as a state machine: random claims, submits, skips and expiries.

After every step the database must match a small model of the queue, and the queue's own
promises must hold: slot counts, overlap, one assignment per (task, annotator), max_pending,
and that a skipped or expired task never comes back to the same annotator. At the end of
every example all annotators work until the queue is empty, and each task must then hold
exactly min(overlap, annotators who did not skip or let it expire) judgments.
"""

import contextlib
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from annotation import selectors, services
from annotation.models import Assignment, Judgment, Task
from factories import ProjectFactory, member, pair_task

pytestmark = pytest.mark.django_db

PENDING = Assignment.Status.PENDING
SUBMITTED = Assignment.Status.SUBMITTED
SKIPPED = Assignment.Status.SKIPPED
EXPIRED = Assignment.Status.EXPIRED
# Scale values of the default five-point scale; None stands for "both bad".
ANSWERS = st.sampled_from([1, 2, 3, 4, 5, None])

MACHINE_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    database=None,  # keep .hypothesis/ out of the tree; failures print their steps
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@dataclass
class Lease:
    """The model of one Assignment row."""

    task_id: int
    annotator: int  # index into machine.users
    status: str = PENDING
    dead: bool = False  # expires_at is in the past but no sweep has marked it expired yet
    key: str | None = None
    judgment_id: int | None = None


def _past() -> datetime:
    return timezone.now() - timedelta(seconds=1)


class QueueMachine(RuleBasedStateMachine):
    TASKS = 5
    OVERLAP = 2
    ANNOTATORS = 4
    MAX_PENDING = 1
    # Includes submitting to a skipped assignment (must be refused; a bug found here).
    SUBMIT_TO_SKIPPED = True

    @initialize()
    def create_project(self) -> None:
        # Each example runs in its own savepoint, rolled back in teardown.
        self._savepoint = transaction.atomic()
        self._savepoint.__enter__()
        self.project = ProjectFactory(overlap=self.OVERLAP, max_pending=self.MAX_PENDING)
        self.task_ids = [
            pair_task(self.project, overlap=self.OVERLAP).pk for _ in range(self.TASKS)
        ]
        self.users = [member(self.project) for _ in range(self.ANNOTATORS)]
        self.leases: dict[int, Lease] = {}
        self.keys_issued = [0] * self.ANNOTATORS
        self.rng = random.Random(0)
        self._consistent = True

    # --- model helpers ---------------------------------------------------------------

    def _ids(self, *statuses: str, dead: bool | None = None) -> list[int]:
        return sorted(
            lid
            for lid, lease in self.leases.items()
            if lease.status in statuses and (dead is None or lease.dead == dead)
        )

    def _slots(self, task_id: int) -> int:
        return sum(
            1
            for x in self.leases.values()
            if x.task_id == task_id and x.status in (PENDING, SUBMITTED)
        )

    def _touched(self, annotator: int) -> set[int]:
        return {x.task_id for x in self.leases.values() if x.annotator == annotator}

    def _live(self, annotator: int) -> list[int]:
        return [
            lid for lid in self._ids(PENDING, dead=False) if self.leases[lid].annotator == annotator
        ]

    def _claimable(self, annotator: int) -> list[int]:
        touched = self._touched(annotator)
        return [t for t in self.task_ids if self._slots(t) < self.OVERLAP and t not in touched]

    def _sweep_model(self) -> int:
        dead = self._ids(PENDING, dead=True)
        for lid in dead:
            self.leases[lid].status = EXPIRED
        return len(dead)

    def _new_key(self, annotator: int) -> str:
        # Per-annotator counters: different annotators reuse the same keys on purpose.
        self.keys_issued[annotator] += 1
        return f"key-{self.keys_issued[annotator]:08d}"

    def _judgment_count(self) -> int:
        return Judgment.objects.filter(task__project=self.project).count()

    def _fresh(self, lid: int) -> Assignment:
        return Assignment.objects.select_related("task__project").get(pk=lid)

    def _pick(self, data: st.DataObject, ids: list[int]) -> int:
        return data.draw(st.sampled_from(ids), label="assignment")

    # --- actions shared by rules and the final drain --------------------------------

    def _claim(self, a: int) -> Assignment | None:
        live, stale = self._live(a), self._ids(PENDING, dead=True)
        gave_back = {
            x.task_id for x in self.leases.values() if x.annotator == a and x.status != PENDING
        }
        got = services.assignment_claim_next(
            annotator=self.users[a], project=self.project, rng=self.rng
        )
        assert got is None or got.task_id not in gave_back, (
            "task offered to the same annotator again"
        )
        # Whether a claim first returns stale leases to the pool is the service's choice; if it
        # does, it returns all of them.
        swept = set(
            Assignment.objects.filter(pk__in=stale, status=EXPIRED).values_list("pk", flat=True)
        )
        assert swept in (set(), set(stale)), (swept, stale)
        for lid in swept:
            self.leases[lid].status = EXPIRED
        if len(live) >= self.MAX_PENDING:
            assert got is not None and got.pk == live[0], "at max_pending the oldest lease resumes"
            return got
        free = self._claimable(a)
        if got is not None and got.pk not in self.leases:
            assert free and got.task_id == free[0], ("not the oldest free task", got.task_id, free)
            assert got.annotator_id == self.users[a].pk
            assert got.status == PENDING and got.expires_at > timezone.now()
            self.leases[got.pk] = Lease(task_id=got.task_id, annotator=a)
            return got
        # Nothing new: only when nothing is free even after the stale leases went back.
        assert not free and not self._ids(PENDING, dead=True), (free, got)
        assert (got.pk if got else None) == (live[0] if live else None)
        return got

    def _submit_live(self, lid: int, answer: int | None) -> None:
        lease = self.leases[lid]
        key = self._new_key(lease.annotator)
        result = services.judgment_submit(
            assignment=self._fresh(lid), choice=answer, both_bad=answer is None, idempotency_key=key
        )
        assert result.created
        assert result.judgment.assignment_id == lid and result.judgment.idempotency_key == key
        lease.status, lease.key, lease.judgment_id = SUBMITTED, key, result.judgment.pk

    def _refused(self, lid: int, key: str, answer: int | None = 3) -> None:
        """A submit that must raise JudgmentConflict and change nothing."""
        before = self._judgment_count()
        try:
            result = services.judgment_submit(
                assignment=self._fresh(lid),
                choice=answer,
                both_bad=answer is None,
                idempotency_key=key,
            )
        except services.JudgmentConflict:
            pass
        else:
            raise AssertionError(f"{self.leases[lid]} accepted a judgment: {result}")
        assert self._judgment_count() == before

    # --- rules -----------------------------------------------------------------------

    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        self._consistent = False
        self._claim(data.draw(st.integers(0, self.ANNOTATORS - 1), label="annotator"))

    @precondition(lambda self: self._ids(PENDING))
    @rule(data=st.data(), answer=ANSWERS)
    def submit(self, data: st.DataObject, answer: int | None) -> None:
        self._consistent = False
        lid = self._pick(data, self._ids(PENDING))
        if self.leases[lid].dead:
            # Late submit: refused even though nobody has taken the slot over yet.
            self._refused(lid, self._new_key(self.leases[lid].annotator), answer)
        else:
            self._submit_live(lid, answer)

    @precondition(lambda self: self._ids(SUBMITTED))
    @rule(data=st.data(), answer=ANSWERS, after_expiry=st.booleans())
    def resubmit_same_key(
        self, data: st.DataObject, answer: int | None, after_expiry: bool
    ) -> None:
        """A retried request (even with another body, even after the lease ran out)."""
        self._consistent = False
        lid = self._pick(data, self._ids(SUBMITTED))
        lease = self.leases[lid]
        if after_expiry:
            Assignment.objects.filter(pk=lid).update(expires_at=_past())
        before = self._judgment_count()
        result = services.judgment_submit(
            assignment=self._fresh(lid),
            choice=answer,
            both_bad=answer is None,
            idempotency_key=lease.key,
        )
        assert not result.created and result.judgment.pk == lease.judgment_id
        assert self._judgment_count() == before

    @precondition(
        lambda self: any(
            self.leases[lid].annotator == self.leases[other].annotator
            for lid in self._ids(PENDING)
            for other in self._ids(SUBMITTED)
        )
    )
    @rule(data=st.data())
    def reuse_key_of_another_assignment(self, data: st.DataObject) -> None:
        self._consistent = False
        lid = self._pick(
            data,
            [
                lid
                for lid in self._ids(PENDING)
                if any(
                    self.leases[o].annotator == self.leases[lid].annotator
                    for o in self._ids(SUBMITTED)
                )
            ],
        )
        a = self.leases[lid].annotator
        other = self._pick(data, [o for o in self._ids(SUBMITTED) if self.leases[o].annotator == a])
        self._refused(lid, self.leases[other].key)

    def _closed_to_submits(self) -> list[int]:
        if self.SUBMIT_TO_SKIPPED:
            return self._ids(SUBMITTED, EXPIRED, SKIPPED)
        return self._ids(SUBMITTED, EXPIRED)

    @precondition(lambda self: self._closed_to_submits())
    @rule(data=st.data())
    def submit_to_closed_assignment(self, data: st.DataObject) -> None:
        """A new key on a judged, expired (or skipped) assignment is refused."""
        self._consistent = False
        lid = self._pick(data, self._closed_to_submits())
        self._refused(lid, self._new_key(self.leases[lid].annotator))

    @precondition(lambda self: self._ids(PENDING))
    @rule(data=st.data())
    def skip(self, data: st.DataObject) -> None:
        self._consistent = False
        lid = self._pick(data, self._ids(PENDING))
        services.assignment_skip(assignment=self._fresh(lid), reason="cannot judge this")
        self.leases[lid].status = SKIPPED

    @precondition(lambda self: self._ids(SUBMITTED, EXPIRED, SKIPPED))
    @rule(data=st.data())
    def skip_closed_assignment(self, data: st.DataObject) -> None:
        self._consistent = False
        lid = self._pick(data, self._ids(SUBMITTED, EXPIRED, SKIPPED))
        with pytest.raises(services.JudgmentConflict):
            services.assignment_skip(assignment=self._fresh(lid), reason="too late")

    @precondition(lambda self: self._ids(PENDING, dead=False))
    @rule(data=st.data())
    def let_lease_run_out(self, data: st.DataObject) -> None:
        self._consistent = False
        lid = self._pick(data, self._ids(PENDING, dead=False))
        Assignment.objects.filter(pk=lid).update(expires_at=_past())
        self.leases[lid].dead = True

    # Without the precondition, examples whose swarm-chosen rules leave out `claim` would
    # spend every step sweeping an empty queue.
    @precondition(lambda self: self._ids(PENDING, dead=True))
    @rule()
    def sweep(self) -> None:
        self._consistent = False
        expected = self._sweep_model()
        assert services.assignments_expire_stale() == expected

    @precondition(
        lambda self: any(self._reassign_targets(lid) for lid in self._ids(PENDING, dead=False))
    )
    @rule(data=st.data())
    def reassign(self, data: st.DataObject) -> None:
        """A lease runs out and its task goes to an annotator who never had it."""
        self._consistent = False
        lid = self._pick(
            data, [x for x in self._ids(PENDING, dead=False) if self._reassign_targets(x)]
        )
        b = data.draw(st.sampled_from(self._reassign_targets(lid)), label="other annotator")
        task_id = self.leases[lid].task_id
        Assignment.objects.filter(pk=lid).update(expires_at=_past())
        self.leases[lid].dead = True
        assert services.assignments_expire_stale() == self._sweep_model()
        assert task_id in selectors.task_claimable_ids(self.users[b], project=self.project)
        self._claim(b)

    def _reassign_targets(self, lid: int) -> list[int]:
        task_id = self.leases[lid].task_id
        return [
            b
            for b in range(self.ANNOTATORS)
            if task_id not in self._touched(b) and len(self._live(b)) < self.MAX_PENDING
        ]

    # --- invariants --------------------------------------------------------------------

    @invariant()
    def database_matches_model(self) -> None:
        now = timezone.now()
        tasks = Task.objects.filter(project=self.project).values_list(
            "pk", "slots_taken", "overlap"
        )
        rows = list(
            Assignment.objects.filter(task__project=self.project).values_list(
                "pk", "task_id", "annotator_id", "status", "expires_at"
            )
        )
        judgments = list(
            Judgment.objects.filter(task__project=self.project).values_list(
                "pk", "assignment_id", "task_id", "annotator_id", "idempotency_key"
            )
        )
        live = Counter(task for _, task, _, status, _ in rows if status in (PENDING, SUBMITTED))
        judged = Counter(task for _, _, task, _, _ in judgments)
        for task_id, slots_taken, overlap in tasks:
            assert judged[task_id] <= overlap, (task_id, judged[task_id])
            assert slots_taken == live[task_id] == self._slots(task_id), (task_id, slots_taken)
        assert len({(t, a) for _, t, a, _, _ in rows}) == len(rows), "duplicate assignment"
        assert len({(t, a) for _, _, t, a, _ in judgments}) == len(judgments), "duplicate judgment"
        holding = Counter(a for _, _, a, status, exp in rows if status == PENDING and exp > now)
        assert max(holding.values(), default=0) <= self.MAX_PENDING, holding

        assert {
            pk: (t, a, status, status == PENDING and exp <= now) for pk, t, a, status, exp in rows
        } == {
            lid: (x.task_id, self.users[x.annotator].pk, x.status, x.status == PENDING and x.dead)
            for lid, x in self.leases.items()
        }
        assert {lid: (pk, key) for pk, lid, _, _, key in judgments} == {
            lid: (x.judgment_id, x.key) for lid, x in self.leases.items() if x.status == SUBMITTED
        }
        # A skipped, expired or judged task is never claimable again by the same annotator.
        for a, user in enumerate(self.users):
            assert selectors.task_claimable_ids(user, project=self.project) == self._claimable(a)
        self._consistent = True

    # --- end of an example -----------------------------------------------------------

    def teardown(self) -> None:
        try:
            # After a failed step the state is unknown; that failure is the report.
            if getattr(self, "_consistent", False):
                self._drain_and_check()
        finally:
            if hasattr(self, "_savepoint"):
                transaction.set_rollback(True)
                self._savepoint.__exit__(None, None, None)

    def _drain_and_check(self) -> None:
        """Everyone finishes what they hold, then works until the queue has nothing left."""
        for lid in self._ids(PENDING, dead=False):
            self._submit_live(lid, 3)
        for a in range(self.ANNOTATORS):
            for _ in range(self.TASKS + 1):
                got = self._claim(a)
                if got is None:
                    break
                self._submit_live(got.pk, 1)
            else:
                pytest.fail(f"annotator {a} was offered more tasks than exist")
        self.database_matches_model()
        assert not self._ids(PENDING)
        for task_id in self.task_ids:
            gave_back = {
                x.annotator
                for x in self.leases.values()
                if x.task_id == task_id and x.status in (SKIPPED, EXPIRED)
            }
            expected = min(self.OVERLAP, self.ANNOTATORS - len(gave_back))
            judged = Judgment.objects.filter(task_id=task_id).count()
            assert judged == expected, (task_id, judged, gave_back)


class PrefetchingQueueMachine(QueueMachine):
    """Clients that prefetch: two leases at a time, more tasks, three annotators."""

    TASKS = 6
    ANNOTATORS = 3
    MAX_PENDING = 2


@pytest.mark.parametrize("machine", [QueueMachine, PrefetchingQueueMachine])
def test_queue_state_machine(machine: type[QueueMachine]) -> None:
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)


def test_submit_after_skip_is_refused_and_keeps_overlap():
    project = ProjectFactory(overlap=1)
    task = pair_task(project, overlap=1)
    skipper, other = member(project), member(project)
    skipped = services.assignment_claim_next(annotator=skipper, project=project)
    services.assignment_skip(assignment=skipped, reason="cannot judge this")
    taken_over = services.assignment_claim_next(annotator=other, project=project)
    services.judgment_submit(assignment=taken_over, choice=1, idempotency_key="key-00000001")

    with contextlib.suppress(services.JudgmentConflict):
        services.judgment_submit(
            assignment=Assignment.objects.get(pk=skipped.pk),
            choice=5,
            idempotency_key="key-00000002",
        )
    assert Assignment.objects.get(pk=skipped.pk).status == SKIPPED
    assert Judgment.objects.filter(task=task).count() == 1  # overlap is 1
