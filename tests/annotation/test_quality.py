import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotation import quality
from annotation.quality import PairJudgment

T0 = datetime(2025, 1, 1, tzinfo=UTC)

RATE_KEYS = [
    "gold_accuracy",
    "self_consistency",
    "position_a_rate",
    "longer_wins_rate",
    "tie_rate",
]


def judgment(
    preference: int,
    *,
    task_id: int = 1,
    annotator_id: int = 1,
    pair: tuple[int, int] = (10, 20),
    shown_first_id: int | None = None,
    lengths: tuple[int, int] = (100, 100),
    minute: int = 0,
    time_spent_ms: int = 60_000,
    gold_preference: int | None = None,
    reask_of_task_id: int | None = None,
) -> PairJudgment:
    return PairJudgment(
        task_id=task_id,
        annotator_id=annotator_id,
        first_id=pair[0],
        second_id=pair[1],
        preference=preference,
        shown_first_id=pair[0] if shown_first_id is None else shown_first_id,
        first_len=lengths[0],
        second_len=lengths[1],
        created_at=T0 + timedelta(minutes=minute),
        time_spent_ms=time_spent_ms,
        gold_preference=gold_preference,
        reask_of_task_id=reask_of_task_id,
    )


def ratings(table: dict[int, list[int]]) -> list[PairJudgment]:
    """{task_id: [preference of annotator 1, of annotator 2, ...]} as judgments, oldest first."""
    return [
        judgment(pref, task_id=task_id, annotator_id=a, minute=a)
        for task_id, prefs in table.items()
        for a, pref in enumerate(prefs, start=1)
    ]


# --- Single-annotator rates -------------------------------------------------------------------


def test_throughput_counts_active_time_not_wall_clock():
    # Three judgments of one minute each, spread over two days: 60 per active hour.
    rows = [judgment(1, task_id=t, minute=t * 1440, time_spent_ms=60_000) for t in range(3)]
    assert quality.throughput_per_hour(rows) == pytest.approx(60.0)
    assert quality.mean_time_ms(rows) == 60_000


def test_throughput_is_undefined_without_time():
    assert quality.throughput_per_hour([]) is None
    assert quality.throughput_per_hour([judgment(1, time_spent_ms=0)]) is None


def test_gold_accuracy_compares_signs_including_ties():
    rows = [
        judgment(2, task_id=1, gold_preference=1),  # right, strength is ignored
        judgment(-1, task_id=2, gold_preference=1),  # wrong
        judgment(0, task_id=3, gold_preference=0),  # right tie
        judgment(-2, task_id=4),  # not gold
    ]
    assert quality.gold_accuracy(rows) == pytest.approx(2 / 3)
    assert quality.gold_accuracy(rows[3:]) is None


def test_self_consistency_pairs_swapped_reasks_by_the_same_annotator():
    rows = [
        judgment(2, task_id=1, shown_first_id=10),
        judgment(1, task_id=101, shown_first_id=20, reask_of_task_id=1),  # same sign
        judgment(-1, task_id=2, shown_first_id=10),
        judgment(0, task_id=102, shown_first_id=20, reask_of_task_id=2),  # flipped to a tie
        judgment(1, task_id=103, reask_of_task_id=3),  # original outside the selection
        judgment(1, task_id=1, annotator_id=2),  # another annotator's judgment of task 1
    ]
    assert quality.reask_pairs(rows) == [(rows[0], rows[1]), (rows[2], rows[3])]
    assert quality.self_consistency(rows) == 0.5
    assert quality.self_consistency(rows[:1]) is None


def test_reask_of_a_different_pair_is_refused():
    rows = [judgment(1, task_id=1), judgment(1, task_id=2, pair=(10, 30), reask_of_task_id=1)]
    with pytest.raises(ValueError, match="different pair"):
        quality.self_consistency(rows)


def test_always_picking_position_a_gives_position_rate_one():
    rows = [
        judgment(1, task_id=1, shown_first_id=10),
        judgment(-2, task_id=2, shown_first_id=20),
        judgment(0, task_id=3, shown_first_id=20),  # ties do not count
    ]
    assert quality.position_bias(rows) == 1.0
    flipped = [
        judgment(-1, task_id=1, shown_first_id=10),
        judgment(1, task_id=2, shown_first_id=20),
    ]
    assert quality.position_bias(flipped) == 0.0


def test_always_picking_the_longer_gives_longer_wins_rate_one():
    rows = [
        judgment(1, task_id=1, lengths=(500, 100)),
        judgment(-1, task_id=2, lengths=(100, 500)),
        judgment(-1, task_id=3, lengths=(300, 300)),  # equal lengths do not count
        judgment(0, task_id=4, lengths=(100, 500)),  # ties do not count
    ]
    assert quality.length_bias(rows) == 1.0
    assert quality.length_bias([judgment(1, lengths=(100, 500))]) == 0.0
    assert quality.length_bias(rows[2:]) is None


def test_all_ties_leave_the_bias_rates_undefined():
    rows = [judgment(0, task_id=t, lengths=(t, 50)) for t in range(1, 5)]
    assert quality.tie_rate(rows) == 1.0
    assert quality.position_bias(rows) is None
    assert quality.length_bias(rows) is None


# --- Agreement ------------------------------------------------------------------------------


def test_perfect_agreement_gives_alpha_and_kappas_of_one():
    rows = ratings({1: [2, 2], 2: [-1, -1], 3: [0, 0]})
    assert quality.krippendorff_alpha(rows) == pytest.approx(1.0)
    assert quality.fleiss_kappa(rows) == pytest.approx(1.0)
    assert quality.cohen_kappa(rows) == pytest.approx(1.0)


def test_alpha_is_ordinal_on_the_signed_preference():
    # Values -2 (x2), 1 (x3), 2 (x1); only task 3 disagrees, by one step.
    # Ordinal distances: d(1,2)=((3+1)/2)^2=4, d(-2,1)=(5/2)^2, d(-2,2)=(6-3/2)^2.
    # Observed 2*4 = 8; expected 2*(6/5*6.25 + 2/5*20.25 + 3/5*4) = 36; alpha = 1 - 8/36.
    # (The interval level would give 0.9438 and the nominal level 0.5455.)
    rows = ratings({1: [-2, -2], 2: [1, 1], 3: [1, 2]})
    assert quality.krippendorff_alpha(rows) == pytest.approx(7 / 9)


def test_fleiss_kappa_hand_computed_with_three_raters():
    # Category counts per task (first, second, tie): [3,0,0] [0,3,0] [2,1,0] [1,1,1].
    # P_i = 1, 1, 1/3, 0 -> mean 7/12; p_j = 6/12, 5/12, 1/12 -> P_e = 62/144;
    # kappa = (7/12 - 31/72) / (1 - 31/72) = 11/41.
    rows = ratings({1: [1, 2, 1], 2: [-1, -2, -1], 3: [1, 2, -1], 4: [1, -1, 0]})
    assert quality.fleiss_kappa(rows) == pytest.approx(11 / 41)


def test_cohen_kappa_textbook_example():
    # The classic 50-item example: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> kappa 0.4.
    cells = [(1, 1)] * 20 + [(1, -1)] * 5 + [(-1, 1)] * 10 + [(-1, -1)] * 15
    rows = ratings({task_id: list(cell) for task_id, cell in enumerate(cells, start=1)})
    assert quality.cohen_kappa(rows) == pytest.approx(0.4)


def test_systematic_disagreement_gives_kappa_minus_one():
    rows = ratings({1: [1, -1], 2: [-1, 1]})
    assert quality.fleiss_kappa(rows) == pytest.approx(-1.0)
    assert quality.cohen_kappa(rows) == pytest.approx(-1.0)


def test_fleiss_uses_the_oldest_ratings_when_rater_counts_differ():
    # Task 1's third, newest rating disagrees; Fleiss sees two raters per task, alpha sees all.
    rows = ratings({1: [1, 1, -1], 2: [-1, -1]})
    assert quality.fleiss_kappa(rows) == pytest.approx(1.0)
    assert quality.krippendorff_alpha(rows) < 1.0


def test_one_category_everywhere_leaves_kappa_undefined():
    same_sign = ratings({1: [1, 2], 2: [2, 1], 3: [1, 1]})
    assert quality.fleiss_kappa(same_sign) is None
    assert quality.cohen_kappa(same_sign) is None
    assert quality.krippendorff_alpha(same_sign) is not None  # strengths still differ

    all_same = ratings({1: [1, 1], 2: [1, 1]})
    assert quality.krippendorff_alpha(all_same) is None


def test_agreement_needs_two_shared_tasks():
    one_shared = ratings({1: [1, -1], 2: [1]})
    assert len(quality.shared_tasks(one_shared)) == 1
    assert quality.krippendorff_alpha(one_shared) is None
    assert quality.fleiss_kappa(one_shared) is None
    assert quality.cohen_kappa(one_shared) is None


def test_cohen_kappa_needs_exactly_two_annotators():
    rows = ratings({1: [1, 1, 1], 2: [-1, -1, -1]})
    assert quality.fleiss_kappa(rows) == pytest.approx(1.0)
    assert quality.cohen_kappa(rows) is None


def test_agreement_with_others_uses_the_strict_majority_of_the_others():
    # Task 1: a=+, b=+, c=-: a's and b's others split (no majority); c's others say +.
    # Task 2: all agree. Annotator 4 shares nothing.
    rows = ratings({1: [1, 2, -1], 2: [0, 0, 0]}) + [judgment(1, task_id=9, annotator_id=4)]
    assert quality.agreement_with_others(rows) == {1: 1.0, 2: 1.0, 3: 0.5, 4: None}


def test_same_annotator_twice_on_a_task_is_refused():
    with pytest.raises(ValueError, match="twice"):
        quality.shared_tasks([judgment(1), judgment(-1)])


@pytest.mark.parametrize(
    "changes",
    [
        {"first_id": 20, "second_id": 10},
        {"shown_first_id": 30},
        {"gold_preference": 2},
        {"time_spent_ms": -1},
        {"created_at": datetime(2025, 1, 1)},
    ],
)
def test_invalid_records_are_refused(changes):
    with pytest.raises(ValueError):
        dataclasses.replace(judgment(1), **changes)


# --- Reports --------------------------------------------------------------------------------


def test_empty_reports():
    report = quality.project_report([])
    assert report["n_judgments"] == report["n_shared_tasks"] == 0
    assert all(report[key] is None for key in report if not key.startswith("n_")), report
    assert quality.annotator_reports([]) == []


def test_project_report_with_one_annotator():
    rows = [
        judgment(1, task_id=1, shown_first_id=10, lengths=(200, 100), gold_preference=1),
        judgment(-1, task_id=2, shown_first_id=10, lengths=(200, 100), time_spent_ms=30_000),
        judgment(0, task_id=3),
    ]
    assert quality.project_report(rows) == {
        "n_judgments": 3,
        "n_gold": 1,
        "n_reask_pairs": 0,
        "n_shared_tasks": 0,
        "judgments_per_hour": 72.0,  # 3 judgments in 150 active seconds
        "gold_accuracy": 1.0,
        "self_consistency": None,
        "position_a_rate": 0.5,
        "longer_wins_rate": 0.5,
        "tie_rate": 0.3333,
        "krippendorff_alpha": None,
        "fleiss_kappa": None,
        "cohen_kappa": None,
        "mean_time_ms": 50000.0,
    }


def test_annotator_reports_are_per_annotator_and_ordered():
    rows = ratings({1: [1, 1], 2: [-1, 1]}) + [
        judgment(1, task_id=3, annotator_id=2, shown_first_id=20, reask_of_task_id=2)
    ]
    reports = quality.annotator_reports(rows)
    assert [r["annotator_id"] for r in reports] == [1, 2]
    first, second = reports
    assert first["n_judgments"] == 2 and second["n_judgments"] == 3
    assert first["n_shared_tasks"] == second["n_shared_tasks"] == 2
    assert first["agreement_with_others"] == second["agreement_with_others"] == 0.5
    assert (first["n_reask_pairs"], second["n_reask_pairs"]) == (0, 1)
    assert second["self_consistency"] == 1.0
    assert "krippendorff_alpha" not in first


# --- Property: reports are always valid JSON with bounded figures ---------------------------


@st.composite
def judgment_sets(draw: st.DrawFn) -> list[PairJudgment]:
    max_strength = draw(st.sampled_from([2, 4]))
    rows: list[PairJudgment] = []
    n_tasks = draw(st.integers(0, 6))
    for task_id in range(1, n_tasks + 1):
        pair = (2 * task_id, 2 * task_id + 1)
        lengths = (draw(st.integers(0, 50)), draw(st.integers(0, 50)))
        gold = draw(st.sampled_from([None, -1, 0, 1]))
        for annotator_id in sorted(draw(st.sets(st.integers(1, 4), max_size=4))):
            fields = {
                "annotator_id": annotator_id,
                "pair": pair,
                "lengths": lengths,
                "minute": draw(st.integers(0, 10_000)),
                "time_spent_ms": draw(st.integers(0, 600_000)),
            }
            shown = draw(st.sampled_from(pair))
            pref = draw(st.integers(-max_strength, max_strength))
            rows.append(
                judgment(
                    pref, task_id=task_id, shown_first_id=shown, gold_preference=gold, **fields
                )
            )
            if draw(st.booleans()):
                swapped = pair[0] + pair[1] - shown
                rows.append(
                    judgment(
                        draw(st.integers(-max_strength, max_strength)),
                        task_id=1000 * annotator_id + task_id,
                        shown_first_id=swapped,
                        reask_of_task_id=task_id,
                        **fields,
                    )
                )
    return rows


def _assert_bounded(report: dict) -> None:
    json.dumps(report, allow_nan=False)
    for key in RATE_KEYS + ["agreement_with_others"]:
        if report.get(key) is not None:
            assert 0.0 <= report[key] <= 1.0, (key, report)
    for key in ["krippendorff_alpha", "fleiss_kappa", "cohen_kappa"]:
        if report.get(key) is not None:
            assert -1.0 <= report[key] <= 1.0, (key, report)
    for key in ["judgments_per_hour", "mean_time_ms"]:
        assert report[key] is None or report[key] >= 0


@settings(max_examples=300, deadline=None)
@given(judgment_sets())
def test_reports_are_json_and_bounded_for_any_valid_input(rows):
    _assert_bounded(quality.project_report(rows))
    for report in quality.annotator_reports(rows):
        _assert_bounded(report)
