"""Annotation-quality metrics over pairwise Likert judgments (book ch. 11, §11.3 on biases).

Pure functions over plain records: the DB layer builds ``PairJudgment`` rows and calls
``project_report`` / ``annotator_reports``. Every metric returns ``None`` where it is undefined
(no data, a zero denominator, a degenerate agreement table), so the reports never carry NaN or
inf and serialise with ``json.dumps(..., allow_nan=False)``.

Preferences are signed in canonical orientation (``first_id`` is the lower completion id): the
sign says which completion won, the magnitude how strongly; 0 is a tie.
"""

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import krippendorff
import numpy as np

MS_PER_HOUR = 3_600_000

# Categories of the binarised choice used by Fleiss' and Cohen's kappa.
FIRST, SECOND, TIE = 0, 1, 2


@dataclass(frozen=True)
class PairJudgment:
    task_id: int
    annotator_id: int
    first_id: int  # the lower completion id of the pair (canonical orientation)
    second_id: int
    preference: int  # +s: first_id preferred with strength s, -s: second_id preferred, 0: tie
    shown_first_id: int  # the completion displayed in position A
    first_len: int  # characters
    second_len: int
    created_at: datetime  # timezone-aware
    time_spent_ms: int
    gold_preference: int | None = None  # expected sign (+1 / -1 / 0); None = not a gold item
    reask_of_task_id: int | None = None  # swapped-order re-ask of that task, same annotator

    def __post_init__(self) -> None:
        if self.first_id >= self.second_id:
            raise ValueError("first_id must be the lower completion id of the pair")
        if self.shown_first_id not in (self.first_id, self.second_id):
            raise ValueError("shown_first_id must be one of the pair")
        if self.gold_preference not in (None, -1, 0, 1):
            raise ValueError("gold_preference must be -1, 0, 1 or None")
        if self.time_spent_ms < 0 or self.first_len < 0 or self.second_len < 0:
            raise ValueError("lengths and time_spent_ms cannot be negative")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")

    @property
    def sign(self) -> int:
        return (self.preference > 0) - (self.preference < 0)

    @property
    def winner_id(self) -> int | None:
        if self.sign == 0:
            return None
        return self.first_id if self.sign > 0 else self.second_id

    @property
    def category(self) -> int:
        return {1: FIRST, -1: SECOND, 0: TIE}[self.sign]


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _index_by_task_and_annotator(
    judgments: Iterable[PairJudgment],
) -> dict[tuple[int, int], PairJudgment]:
    """Key judgments by (task, annotator); the DB allows one assignment per task and annotator."""
    index: dict[tuple[int, int], PairJudgment] = {}
    for j in judgments:
        key = (j.task_id, j.annotator_id)
        if key in index:
            raise ValueError(f"annotator {j.annotator_id} judged task {j.task_id} twice")
        index[key] = j
    return index


# --- Single-annotator rates -------------------------------------------------------------------


def throughput_per_hour(judgments: Sequence[PairJudgment]) -> float | None:
    """Judgments per hour of active time (sum of ``time_spent_ms``).

    Active time rather than the wall-clock spread from first to last judgment: the spread counts
    breaks, nights and other projects, so it measures attendance, not annotation speed.
    """
    active_ms = sum(j.time_spent_ms for j in judgments)
    if not judgments or active_ms == 0:
        return None
    return len(judgments) * MS_PER_HOUR / active_ms


def mean_time_ms(judgments: Sequence[PairJudgment]) -> float | None:
    if not judgments:
        return None
    return sum(j.time_spent_ms for j in judgments) / len(judgments)


def gold_accuracy(judgments: Sequence[PairJudgment]) -> float | None:
    """Share of gold items whose preference sign matches the expected one."""
    gold = [j for j in judgments if j.gold_preference is not None]
    return _share(sum(j.sign == j.gold_preference for j in gold), len(gold))


def reask_pairs(judgments: Sequence[PairJudgment]) -> list[tuple[PairJudgment, PairJudgment]]:
    """(original, re-ask) pairs by the same annotator whose original is among ``judgments``."""
    index = _index_by_task_and_annotator(judgments)
    pairs = []
    for reask in judgments:
        if reask.reask_of_task_id is None:
            continue
        original = index.get((reask.reask_of_task_id, reask.annotator_id))
        if original is None:
            continue  # the original fell outside the caller's selection
        if (original.first_id, original.second_id) != (reask.first_id, reask.second_id):
            raise ValueError(f"task {reask.task_id} re-asks a different pair than its original")
        pairs.append((original, reask))
    return pairs


def self_consistency(judgments: Sequence[PairJudgment]) -> float | None:
    """Share of swapped-order re-asks whose preference sign matches the original's."""
    pairs = reask_pairs(judgments)
    return _share(sum(a.sign == b.sign for a, b in pairs), len(pairs))


def position_bias(judgments: Sequence[PairJudgment]) -> float | None:
    """Share of non-tie judgments won by the completion shown in position A (0.5 = unbiased)."""
    decided = [j for j in judgments if j.winner_id is not None]
    return _share(sum(j.winner_id == j.shown_first_id for j in decided), len(decided))


def length_bias(judgments: Sequence[PairJudgment]) -> float | None:
    """Share of non-tie judgments between unequal lengths won by the longer one (§11.3)."""
    decided = [j for j in judgments if j.winner_id is not None and j.first_len != j.second_len]
    longer_won = sum((j.first_len > j.second_len) == (j.sign > 0) for j in decided)
    return _share(longer_won, len(decided))


def tie_rate(judgments: Sequence[PairJudgment]) -> float | None:
    return _share(sum(j.sign == 0 for j in judgments), len(judgments))


# --- Agreement across annotators ------------------------------------------------------------


def shared_tasks(judgments: Sequence[PairJudgment]) -> dict[int, list[PairJudgment]]:
    """Tasks judged by at least two annotators, each with its judgments oldest first."""
    by_task: dict[int, list[PairJudgment]] = defaultdict(list)
    for j in _index_by_task_and_annotator(judgments).values():
        by_task[j.task_id].append(j)
    return {
        task_id: sorted(rows, key=lambda j: (j.created_at, j.annotator_id))
        for task_id, rows in sorted(by_task.items())
        if len(rows) >= 2
    }


def krippendorff_alpha(judgments: Sequence[PairJudgment]) -> float | None:
    """Krippendorff's alpha at the ordinal level on the signed preference.

    Alpha takes any number of ratings per task, so every rating on a shared task counts.
    """
    tasks = shared_tasks(judgments)
    values = sorted({j.preference for rows in tasks.values() for j in rows})
    # One observed value means no expected disagreement: alpha is 0/0.
    if len(tasks) < 2 or len(values) < 2:
        return None
    column = {value: i for i, value in enumerate(values)}
    counts = np.zeros((len(tasks), len(values)), dtype=int)  # (tasks, values)
    for row, task_rows in enumerate(tasks.values()):
        for j in task_rows:
            counts[row, column[j.preference]] += 1
    alpha = krippendorff.alpha(
        value_counts=counts, value_domain=values, level_of_measurement="ordinal"
    )
    return float(alpha) if math.isfinite(alpha) else None


def fleiss_kappa(judgments: Sequence[PairJudgment]) -> float | None:
    """Fleiss' kappa on the binarised choice (first / second / tie).

    Fleiss' kappa needs the same number of raters on every task (statsmodels asserts it), so
    each shared task contributes its oldest m judgments, m being the fewest any shared task has.
    """
    # Imported here: statsmodels brings scipy and pandas, a third of a web process's startup
    # and of the objects every full garbage collection walks, for a report opened rarely.
    from statsmodels.stats import inter_rater

    tasks = shared_tasks(judgments)
    if len(tasks) < 2:
        return None
    m = min(len(rows) for rows in tasks.values())
    categories = np.array([[j.category for j in rows[:m]] for rows in tasks.values()])  # (tasks, m)
    table, _ = inter_rater.aggregate_raters(categories, n_cat=3)  # (tasks, 3) counts
    if np.count_nonzero(table.sum(axis=0)) < 2:
        return None  # one category everywhere: chance agreement is 1 and kappa is 0/0
    kappa = inter_rater.fleiss_kappa(table, method="fleiss")
    return float(kappa) if math.isfinite(kappa) else None


def cohen_kappa(judgments: Sequence[PairJudgment]) -> float | None:
    """Cohen's kappa on the binarised choice, defined only when exactly two annotators share
    tasks (then both rated every shared task)."""
    tasks = shared_tasks(judgments)
    annotators = {j.annotator_id for rows in tasks.values() for j in rows}
    if len(tasks) < 2 or len(annotators) != 2:
        return None
    low, high = sorted(annotators)
    pairs = []
    for rows in tasks.values():
        by_annotator = {j.annotator_id: j.category for j in rows}
        pairs.append((by_annotator[low], by_annotator[high]))
    n = len(pairs)
    agreed = sum(a == b for a, b in pairs)
    rater_a, rater_b = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(rater_a[c] * rater_b[c] for c in rater_a)  # expected agreements times n
    if chance == n * n:
        return None  # both used one and the same category: chance agreement is 1
    return (agreed * n - chance) / (n * n - chance)


def agreement_with_others(judgments: Sequence[PairJudgment]) -> dict[int, float | None]:
    """Per annotator, the share of shared tasks where their sign matches the strict majority
    sign of the other annotators; tasks where the others have no strict majority are skipped."""
    hits: Counter[int] = Counter()
    compared: Counter[int] = Counter()
    for rows in shared_tasks(judgments).values():
        signs = Counter(j.sign for j in rows)
        for j in rows:
            others = signs - Counter([j.sign])
            sign, votes = others.most_common(1)[0]
            if votes * 2 > len(rows) - 1:
                compared[j.annotator_id] += 1
                hits[j.annotator_id] += sign == j.sign
    annotators = {j.annotator_id for j in judgments}
    return {a: _share(hits[a], compared[a]) for a in sorted(annotators)}


# --- Reports --------------------------------------------------------------------------------


def _json_number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 4)


def _rates(judgments: Sequence[PairJudgment]) -> dict[str, Any]:
    return {
        "n_judgments": len(judgments),
        "n_gold": sum(j.gold_preference is not None for j in judgments),
        "n_reask_pairs": len(reask_pairs(judgments)),
        "judgments_per_hour": _json_number(throughput_per_hour(judgments)),
        "gold_accuracy": _json_number(gold_accuracy(judgments)),
        "self_consistency": _json_number(self_consistency(judgments)),
        "position_a_rate": _json_number(position_bias(judgments)),
        "longer_wins_rate": _json_number(length_bias(judgments)),
        "tie_rate": _json_number(tie_rate(judgments)),
        "mean_time_ms": _json_number(mean_time_ms(judgments)),
    }


def project_report(judgments: Sequence[PairJudgment]) -> dict[str, Any]:
    """JSON-ready quality figures for one project's judgments."""
    return {
        **_rates(judgments),
        "n_shared_tasks": len(shared_tasks(judgments)),
        "krippendorff_alpha": _json_number(krippendorff_alpha(judgments)),
        "fleiss_kappa": _json_number(fleiss_kappa(judgments)),
        "cohen_kappa": _json_number(cohen_kappa(judgments)),
    }


def annotator_reports(judgments: Sequence[PairJudgment]) -> list[dict[str, Any]]:
    """JSON-ready quality figures per annotator, ordered by annotator id.

    ``n_shared_tasks`` counts the shared tasks the annotator took part in; tasks where the
    others had no strict majority do not enter ``agreement_with_others``.
    """
    by_annotator: dict[int, list[PairJudgment]] = defaultdict(list)
    for j in judgments:
        by_annotator[j.annotator_id].append(j)
    agreement = agreement_with_others(judgments)
    shared_counts = Counter(
        j.annotator_id for rows in shared_tasks(judgments).values() for j in rows
    )
    return [
        {
            "annotator_id": annotator_id,
            **_rates(rows),
            "n_shared_tasks": shared_counts[annotator_id],
            "agreement_with_others": _json_number(agreement[annotator_id]),
        }
        for annotator_id, rows in sorted(by_annotator.items())
    ]
