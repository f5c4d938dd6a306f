"""The annotator loop's statements (claim, submit, show) written as plain SQL.

Why not the ORM here: `next` + `submit` is what every annotator does hundreds of times an
hour, and building these queries through the ORM cost several times more server CPU than
Postgres spends running them (bench/annotation_load.py, bench/RESULTS.md). Everything else
in Arbiter uses the ORM; the policy decisions stay in services.py.

The statements run on Postgres (production) and SQLite (the embedded default): values go
through Django's field adapters, and row locks are added only where the backend has them.
Call the writing functions inside ``transaction.atomic``.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import cast

from django.db import connection

from .models import (
    ROLE_RANK,
    Assignment,
    Completion,
    Judgment,
    Membership,
    Project,
    Prompt,
    Role,
    Task,
    TaskCandidate,
)

ASSIGNMENT = Assignment._meta.db_table
COMPLETION = Completion._meta.db_table
JUDGMENT = Judgment._meta.db_table
MEMBERSHIP = Membership._meta.db_table
PROJECT = Project._meta.db_table
PROMPT = Prompt._meta.db_table
TASK = Task._meta.db_table
CANDIDATE = TaskCandidate._meta.db_table

# Roles that may annotate (every role ranks at least annotator); inlined, they are constants.
_ANNOTATING_ROLES = ", ".join(
    f"'{role.value}'" for role in ROLE_RANK if ROLE_RANK[role] >= ROLE_RANK[Role.ANNOTATOR]
)


def _timestamp(value: datetime) -> object:
    return connection.ops.adapt_datetimefield_value(value)


def _json(value: str | None) -> object:
    # Django reads JSON columns as text on both backends and decodes them in the field.
    return None if value is None else json.loads(value)


def _lock(of: str) -> str:
    if not connection.features.has_select_for_update:
        return ""  # SQLite: a write transaction already excludes every other writer
    lock = " FOR UPDATE"
    if connection.features.has_select_for_update_of:
        lock += f" OF {of}"
    if connection.features.has_select_for_update_skip_locked:
        lock += " SKIP LOCKED"
    return lock


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _changed(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _member_filter(
    annotator_id: int, is_superuser: bool, column: str = "t.project_id"
) -> tuple[str, list]:
    """Only projects where the annotator may annotate (superusers: all)."""
    if is_superuser:
        return "", []
    return (
        f" AND {column} IN (SELECT m.project_id FROM {MEMBERSHIP} m"
        f" WHERE m.user_id = %s AND m.role IN ({_ANNOTATING_ROLES}))",
        [annotator_id],
    )


@dataclass(frozen=True)
class Lease:
    assignment_id: int
    max_pending: int


@dataclass(frozen=True)
class QualityMix:
    project_id: int
    gold_rate: float
    reask_rate: float


@dataclass(frozen=True)
class ClaimContext:
    """What deciding the next task needs: open leases and the gold/re-ask mix, in one read."""

    leases: list[Lease]  # the annotator's live queue leases, oldest first
    mix: QualityMix | None  # the project (given, or their first) that interleaves gold/re-asks


def claim_context(
    *, annotator_id: int, is_superuser: bool, project_id: int | None, now: datetime
) -> ClaimContext:
    """The annotator's pending queue leases and the quality mix, as one statement.

    One row per lease (one row of NULLs without any), each carrying the mix's columns.
    Live-session turns are not queue work, so their leases are left out.
    """
    leases = (
        f"SELECT a.id, a.claimed_at, p.max_pending FROM {ASSIGNMENT} a"
        f" JOIN {TASK} t ON t.id = a.task_id JOIN {PROJECT} p ON p.id = t.project_id"
        " WHERE a.annotator_id = %s AND a.status = 'pending' AND a.expires_at > %s"
        " AND t.kind = 'pairwise'"
    )
    params: list = [annotator_id, _timestamp(now)]
    if project_id is not None:
        leases += " AND t.project_id = %s"
        params.append(project_id)
    leases += " ORDER BY a.claimed_at LIMIT 50"
    members, member_params = _member_filter(annotator_id, is_superuser, column="p.id")
    mix = (
        f"SELECT p.id, p.gold_rate, p.reask_rate FROM {PROJECT} p"
        " WHERE (p.gold_rate > 0 OR p.reask_rate > 0)" + members
    )
    params += member_params
    if project_id is not None:
        mix += " AND p.id = %s"
        params.append(project_id)
    mix += " ORDER BY p.id LIMIT 1"
    sql = (
        "SELECT l.id, l.max_pending, m.id, m.gold_rate, m.reask_rate"
        f" FROM (SELECT 1 AS one) driver LEFT JOIN ({leases}) l ON 1 = 1"
        f" LEFT JOIN ({mix}) m ON 1 = 1 ORDER BY l.claimed_at, l.id"
    )
    rows = _rows(sql, params)
    found = [Lease(row[0], row[1]) for row in rows if row[0] is not None]
    first = rows[0]
    return ClaimContext(
        leases=found,
        mix=None if first[2] is None else QualityMix(first[2], first[3], first[4]),
    )


def annotating_project_ids(*, annotator_id: int, is_superuser: bool) -> list[int]:
    members, params = _member_filter(annotator_id, is_superuser, column="p.id")
    sql = f"SELECT p.id FROM {PROJECT} p WHERE 1 = 1" + members + " ORDER BY p.id"
    return [row[0] for row in _rows(sql, params)]


@dataclass(frozen=True)
class Claimed:
    """A task whose slot this claimer took (in the caller's transaction), and its candidates."""

    task_id: int
    lease_seconds: int
    candidate_ids: list[int]  # in the task's order


TAKEN_BY_ANOTHER = "taken by another"  # found a free task, but its last slot went first


def claim_slot(*, annotator_id: int, is_superuser: bool, project_id: int) -> Claimed | str | None:
    """Take a slot of the oldest task this annotator never had and nobody else holds.

    None: nothing to claim. TAKEN_BY_ANOTHER: a concurrent claimer took the task's last slot
    first (try again). On Postgres the lock, the slot and the candidates are one statement;
    elsewhere three (SQLite's write transaction already excludes every other writer).
    """
    if connection.vendor != "postgresql":
        return _claim_slot_in_steps(annotator_id, is_superuser, project_id)
    picked, params = _claimable_sql(annotator_id, is_superuser, project_id)
    sql = (
        f"WITH picked AS ({picked}),"
        f" taken AS (UPDATE {TASK} t SET slots_taken = t.slots_taken + 1 FROM picked"
        " WHERE t.id = picked.id AND t.slots_taken < t.overlap RETURNING t.id)"
        " SELECT picked.id, picked.lease_seconds, taken.id, c.completion_id FROM picked"
        f" LEFT JOIN taken ON taken.id = picked.id LEFT JOIN {CANDIDATE} c"
        " ON c.task_id = taken.id ORDER BY c.position"
    )
    rows = _rows(sql, params)
    if not rows:
        return None
    task_id, lease_seconds, taken, _ = rows[0]
    if taken is None:
        return TAKEN_BY_ANOTHER
    return Claimed(task_id, lease_seconds, [row[3] for row in rows])


def _claimable_sql(annotator_id: int, is_superuser: bool, project_id: int) -> tuple[str, list]:
    """Lock the oldest task with a free slot this annotator never had and nobody else holds.

    SKIP LOCKED lets concurrent claimers pass over each other's rows instead of queueing on
    the first free task; the slot is still taken with a conditional UPDATE.
    """
    members, params = _member_filter(annotator_id, is_superuser)
    sql = (
        f"SELECT t.id, p.lease_seconds FROM {TASK} t JOIN {PROJECT} p ON p.id = t.project_id"
        " WHERE t.kind = 'pairwise' AND t.slots_taken < t.overlap AND NOT t.is_gold"
        " AND t.reserved_for_id IS NULL AND t.project_id = %s" + members
    )
    params.insert(0, project_id)  # one project at a time: its claimable-task index gives id order
    # "LIMIT 1 OFFSET 0" keeps Postgres from turning NOT EXISTS into an anti-join that reads
    # all of the annotator's past assignments on every claim; as a per-row subplan it is one
    # probe of the (task, annotator) unique index for each task the scan looks at.
    sql += (
        f" AND NOT EXISTS (SELECT 1 FROM {ASSIGNMENT} a"
        " WHERE a.task_id = t.id AND a.annotator_id = %s LIMIT 1 OFFSET 0)"
        " ORDER BY t.id LIMIT 1" + _lock("t")
    )
    params.append(annotator_id)
    return sql, params


def _claim_slot_in_steps(
    annotator_id: int, is_superuser: bool, project_id: int
) -> Claimed | str | None:
    rows = _rows(*_claimable_sql(annotator_id, is_superuser, project_id))
    if not rows:
        return None
    task_id, lease_seconds = rows[0]
    sql = f"UPDATE {TASK} SET slots_taken = slots_taken + 1 WHERE id = %s AND slots_taken < overlap"
    if _changed(sql, [task_id]) != 1:
        return TAKEN_BY_ANOTHER
    return Claimed(task_id, lease_seconds, candidate_ids(task_id=task_id))


def candidate_ids(*, task_id: int) -> list[int]:
    sql = f"SELECT completion_id FROM {CANDIDATE} WHERE task_id = %s ORDER BY position"
    return [row[0] for row in _rows(sql, [task_id])]


def slot_return(*, task_id: int) -> None:
    sql = f"UPDATE {TASK} SET slots_taken = slots_taken - 1 WHERE id = %s AND slots_taken > 0"
    _changed(sql, [task_id])


def assignment_insert(
    *,
    task_id: int,
    annotator_id: int,
    shown_order: list[int],
    claimed_at: datetime,
    expires_at: datetime,
) -> Assignment | None:
    """The new lease; None if the annotator already has an assignment of this task."""
    sql = (
        f"INSERT INTO {ASSIGNMENT}"
        " (task_id, annotator_id, status, shown_order, claimed_at, expires_at, skip_reason)"
        " VALUES (%s, %s, 'pending', %s, %s, %s, '')"
        " ON CONFLICT (task_id, annotator_id) DO NOTHING RETURNING id"
    )
    params = [
        task_id,
        annotator_id,
        Assignment._meta.get_field("shown_order").get_db_prep_save(shown_order, connection),
        _timestamp(claimed_at),
        _timestamp(expires_at),
    ]
    inserted = _rows(sql, params)
    if not inserted:
        return None
    return _loaded(
        Assignment(
            id=inserted[0][0],
            task_id=task_id,
            annotator_id=annotator_id,
            status=Assignment.Status.PENDING,
            shown_order=shown_order,
            claimed_at=claimed_at,
            expires_at=expires_at,
        )
    )


@dataclass(frozen=True)
class SubmitTarget:
    """A locked assignment of the caller, with what validating an answer to it needs."""

    assignment_id: int
    status: str
    lapsed: bool  # pending, but its lease ran out
    shown_order: list[int]
    task_id: int
    task_kind: str
    interface: str
    project_id: int
    scale_kind: str
    custom_scale: list
    allow_both_bad: bool
    rating_aspects: list[str]
    guidelines_version: int


def submit_target_lock(
    *, assignment_id: int, annotator_id: int, now: datetime
) -> SubmitTarget | None:
    """Lock the caller's assignment row (not the shared task/project rows); None if not theirs."""
    lock = _lock("a").replace(" SKIP LOCKED", "")  # a double submit must wait, not skip
    sql = (
        "SELECT a.id, a.status, a.status = 'pending' AND a.expires_at <= %s, a.shown_order,"
        " t.id, t.kind, t.interface, p.id, p.scale_kind, p.custom_scale, p.allow_both_bad,"
        " p.rating_aspects, p.guidelines_version"
        f" FROM {ASSIGNMENT} a JOIN {TASK} t ON t.id = a.task_id"
        f" JOIN {PROJECT} p ON p.id = t.project_id"
        " WHERE a.id = %s AND a.annotator_id = %s" + lock
    )
    rows = _rows(sql, [_timestamp(now), assignment_id, annotator_id])
    if not rows:
        return None
    row = list(rows[0])
    for index in (3, 9, 11):
        row[index] = _json(row[index])
    row[2] = bool(row[2])
    row[10] = bool(row[10])
    return SubmitTarget(*row)


@cache
def _judgment_fields() -> list:
    return [f for f in Judgment._meta.concrete_fields if not f.primary_key]


def judgment_insert(values: dict) -> Judgment | None:
    """Insert a judgment and mark its assignment submitted, unless the annotator already
    used its idempotency key (then None, and the assignment is left as it is).

    ``values`` maps field attnames (``task_id``, ``chosen_id``, ...) to Python values;
    missing ones take the model's defaults. On Postgres both writes are one statement.
    """
    fields = _judgment_fields()
    row = {f.attname: values[f.attname] if f.attname in values else f.get_default() for f in fields}
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    insert = (
        f"INSERT INTO {JUDGMENT} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
        " ON CONFLICT (annotator_id, idempotency_key) DO NOTHING RETURNING id"
    )
    params = [f.get_db_prep_save(row[f.attname], connection) for f in fields]
    submitted = f"UPDATE {ASSIGNMENT} SET status = 'submitted' WHERE id = %s"
    if connection.vendor == "postgresql":
        sql = (
            f"WITH j AS ({insert}), closed AS ({submitted} AND EXISTS (SELECT 1 FROM j))"
            " SELECT id FROM j"
        )
        inserted = _rows(sql, [*params, row["assignment_id"]])
    else:
        inserted = _rows(insert, params)
        if inserted:
            _changed(submitted, [row["assignment_id"]])
    if not inserted:
        return None
    return _loaded(Judgment(id=inserted[0][0], **row))


@dataclass(frozen=True)
class TaskView:
    interface: str
    prompt: list[dict]
    project: Project  # only the fields an annotator's view shows
    contents: dict[int, str]


def task_view(*, task_id: int) -> TaskView:
    """The prompt, the candidates' texts and the project settings an annotator needs.

    One row per candidate, the task's columns repeated: one round trip instead of two.
    """
    sql = (
        "SELECT c.id, c.content, t.interface, pr.messages, p.id, p.slug, p.name, p.guidelines,"
        " p.scale_kind, p.custom_scale, p.allow_both_bad, p.rating_rubric, p.rating_aspects,"
        " p.guidelines_version"
        f" FROM {TASK} t JOIN {PROMPT} pr ON pr.id = t.prompt_id"
        f" JOIN {PROJECT} p ON p.id = t.project_id"
        f" JOIN {CANDIDATE} tc ON tc.task_id = t.id"
        f" JOIN {COMPLETION} c ON c.id = tc.completion_id WHERE t.id = %s"
    )
    rows = _rows(sql, [task_id])
    (_, _, interface, messages, *settings) = rows[0]
    names = (
        "id slug name guidelines scale_kind custom_scale allow_both_bad rating_rubric"
        " rating_aspects guidelines_version"
    ).split()
    project = dict(zip(names, settings, strict=True))
    for name in ("custom_scale", "rating_rubric", "rating_aspects"):
        project[name] = _json(project[name])
    project["allow_both_bad"] = bool(project["allow_both_bad"])
    return TaskView(
        interface=interface,
        prompt=cast(list[dict], _json(messages)),
        project=_loaded(Project(**project)),
        contents={row[0]: row[1] for row in rows},
    )


def _loaded(instance):
    """Mark an instance built from a row we just read or wrote as saved."""
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance
