"""`trl-preference` rows built by Postgres, for exports at the speed of the database.

With the default rules (one row per judgment, ties and both-bad left out) a preference row
needs no grouping, so Postgres builds each row's JSON itself and a server-side cursor
streams the text: Python only writes lines (bench/export.py: 1M rows within about twice
the time of a bare `COPY`). The rows carry the same fields and values as
``export_rows.rows("trl-preference", ...)`` (tests/annotation/test_export_sql.py checks that,
row by row), in judgment order, which lets the first rows leave before the last are read.
Other backends and other rules use the general path.
"""

from collections.abc import Iterator

from django.conf import settings
from django.db import connection

from .export_rows import Rules
from .models import Completion, Judgment, Prompt, Task

FETCH = 5000


def eligible(fmt: str, rules: Rules) -> bool:
    return (
        connection.vendor == "postgresql"
        and fmt == "trl-preference"
        and rules.aggregate == "all"
        and rules.ties == "drop"
        and rules.both_bad == "drop"
        and not rules.final_turn_only
    )


def trl_preference_lines(project_id: int, filters, rules: Rules) -> Iterator[str]:
    """JSON text per row, judgment order, read in keyset pages of FETCH judgments.

    Pages (``j.id > last ORDER BY j.id LIMIT n``) walk the primary key with index lookups,
    so the first rows leave at once and nothing is sorted or held beyond one page.
    ``filters`` is ``exports.Filters``; its conditions mirror ``exports.export_judgments``.
    """
    margins = " ".join(
        f"WHEN {int(k)} THEN {float(v)!r}::numeric"
        for k, v in sorted(rules.margin_by_strength.items())
    )
    where, params = _conditions(project_id, filters)
    sql = f"""
        SELECT j.id, json_build_object(
            'prompt', p.messages,
            'prompt_id', p.id,
            'task_id', j.task_id,
            'chosen', json_build_array(json_build_object('role', 'assistant',
                                                         'content', c.content)),
            'rejected', json_build_array(json_build_object('role', 'assistant',
                                                           'content', r.content)),
            'margin', round((CASE j.strength {margins} ELSE j.strength END)::numeric, 6),
            'strength', round(j.strength::numeric, 1),
            'tie', false,
            'both_bad', false,
            'chosen_id', j.chosen_id,
            'rejected_id', j.rejected_id,
            'judgment_id', j.id,
            'judgment_ids', json_build_array(j.id),
            'annotator', a.pseudonym,
            'annotators', json_build_array(a.pseudonym),
            'chosen_model_version_id', c.model_version_id,
            'rejected_model_version_id', r.model_version_id
        )::text
        FROM {Judgment._meta.db_table} j
        JOIN {Task._meta.db_table} t ON t.id = j.task_id
        JOIN {Prompt._meta.db_table} p ON p.id = t.prompt_id
        JOIN {Completion._meta.db_table} c ON c.id = j.chosen_id
        JOIN {Completion._meta.db_table} r ON r.id = j.rejected_id
        CROSS JOIN LATERAL (
            SELECT 'annotator-' || left(encode(sha256(convert_to(
                %s || ':annotator:' || j.annotator_id, 'UTF8')), 'hex'), 10) AS pseudonym
        ) a
        WHERE j.kind = 'pairwise' AND NOT j.both_bad AND j.strength > 0 AND j.strength >= %s
          AND {where} AND j.id > %s
        ORDER BY j.id LIMIT {FETCH}
    """
    last = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, [settings.SECRET_KEY, rules.min_strength, *params, last])
            page = cursor.fetchall()
            for _, line in page:
                yield line
            if len(page) < FETCH:
                return
            last = page[-1][0]


def _conditions(project_id: int, filters) -> tuple[str, list]:
    """``exports.export_judgments`` as SQL: never gold items or re-asks; the filters."""
    clauses = ["t.project_id = %s", "NOT t.is_gold", "t.reask_of_id IS NULL"]
    params: list = [project_id]
    if filters.rounds:
        clauses.append("t.round_id = ANY(%s)")
        params.append(list(filters.rounds))
    if filters.since:
        clauses.append("j.created_at >= %s")
        params.append(_moment(filters.since))
    if filters.until:
        clauses.append("j.created_at < %s")
        params.append(_moment(filters.until))
    if filters.guideline_versions:
        clauses.append("j.guidelines_version = ANY(%s)")
        params.append(list(filters.guideline_versions))
    if filters.annotators:
        clauses.append("j.annotator_id = ANY(%s)")
        params.append(list(filters.annotators))
    if filters.model_versions:
        clauses.append("c.model_version_id = ANY(%s) AND r.model_version_id = ANY(%s)")
        params += [list(filters.model_versions)] * 2
    return " AND ".join(clauses), params


def _moment(text: str):
    from .exports import _moment as parse

    return parse(text)
