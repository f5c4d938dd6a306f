import random

import pytest

from annotation.leaderboard import (
    Outcome,
    bootstrap_intervals,
    bradley_terry,
    head_to_head,
    wilson_interval,
)


def simulate(strengths: dict[int, float], n: int, seed: int = 0) -> list[Outcome]:
    rng = random.Random(seed)
    ids = sorted(strengths)
    out = []
    for _ in range(n):
        a, b = rng.sample(ids, 2)
        p = strengths[a] / (strengths[a] + strengths[b])
        out.append(Outcome(a=a, b=b, score=1.0 if rng.random() < p else 0.0))
    return out


def test_bradley_terry_recovers_the_order_and_scale():
    outcomes = simulate({1: 1.0, 2: 2.0, 3: 4.0}, 3000)
    scores = bradley_terry(outcomes)
    assert scores[3] > scores[2] > scores[1]
    assert sum(scores.values()) == pytest.approx(0.0, abs=1e-6)
    # p3/p1 = 4 -> 400*log10(4) = 240.8 apart
    assert scores[3] - scores[1] == pytest.approx(240.8, abs=30)


def test_intervals_contain_the_estimate_and_separate_clear_winners():
    outcomes = simulate({1: 1.0, 2: 4.0}, 400, seed=2)
    scores = bradley_terry(outcomes)
    intervals = bootstrap_intervals(outcomes, rounds=100)
    for version, (low, high) in intervals.items():
        assert low <= scores[version] <= high
    assert intervals[2][0] > intervals[1][1]


def test_a_version_that_never_won_stays_finite_and_ties_split():
    outcomes = [Outcome(1, 2, 1.0)] * 5 + [Outcome(1, 2, 0.5)]
    scores = bradley_terry(outcomes)
    assert scores[1] > scores[2] and all(abs(v) < 2000 for v in scores.values())
    [row] = head_to_head(outcomes)
    assert (row["a_wins"], row["b_wins"], row["ties"]) == (5, 0, 1)
    assert row["a_win_rate"] == pytest.approx(5.5 / 6)


def test_wilson_interval():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.404, abs=0.01) and high == pytest.approx(0.596, abs=0.01)
    assert wilson_interval(0, 0) is None
