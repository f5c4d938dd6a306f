"""Win rates between model versions: a Bradley–Terry fit with bootstrap intervals.

The same model the Arena leaderboard uses: P(a beats b) = p_a / (p_a + p_b). Fitted with
Hunter's MM iterations (no optimiser dependency); a tie counts half a win to each side.
Scores are reported on the Elo-like scale 400·log10(p), centred on 0 (mean version), and
the intervals are percentiles over resampled judgments.
"""

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One pairwise verdict between two versions: 1.0 a won, 0.0 b won, 0.5 tie."""

    a: int
    b: int
    score: float


def bradley_terry(outcomes: Sequence[Outcome], iterations: int = 200) -> dict[int, float]:
    """Strengths on the 400·log10 scale, mean 0; versions never compared are left out."""
    wins: dict[int, float] = defaultdict(float)
    games: dict[tuple[int, int], float] = defaultdict(float)
    players: set[int] = set()
    for o in outcomes:
        if o.a == o.b:
            continue
        players |= {o.a, o.b}
        wins[o.a] += o.score
        wins[o.b] += 1.0 - o.score
        games[(o.a, o.b)] += 1.0
        games[(o.b, o.a)] += 1.0
    if len(players) < 2:
        return dict.fromkeys(players, 0.0)
    # A tiny pseudo-count keeps a version that never won (or never lost) finite.
    strength = dict.fromkeys(players, 1.0)
    for _ in range(iterations):
        updated = {}
        for i in players:
            denominator = sum(
                games[(i, j)] / (strength[i] + strength[j])
                for j in players
                if j != i and games[(i, j)]
            )
            updated[i] = (wins[i] + 0.01) / (denominator + 0.02 / strength[i])
        norm = math.exp(sum(math.log(v) for v in updated.values()) / len(updated))
        strength = {i: v / norm for i, v in updated.items()}
    return {i: 400 * math.log10(v) for i, v in strength.items()}


def bootstrap_intervals(
    outcomes: Sequence[Outcome], rounds: int = 200, seed: int = 0, level: float = 0.95
) -> dict[int, tuple[float, float]]:
    """Percentile interval of each version's score over judgments resampled with replacement."""
    if not outcomes:
        return {}
    rng = random.Random(seed)
    samples: dict[int, list[float]] = defaultdict(list)
    for _ in range(rounds):
        drawn = [outcomes[rng.randrange(len(outcomes))] for _ in outcomes]
        for version, score in bradley_terry(drawn, iterations=60).items():
            samples[version].append(score)
    tail = (1 - level) / 2
    out = {}
    for version, values in samples.items():
        values.sort()
        low = values[int(tail * (len(values) - 1))]
        high = values[int((1 - tail) * (len(values) - 1))]
        out[version] = (low, high)
    return out


def wilson_interval(wins: float, n: float, z: float = 1.96) -> tuple[float, float] | None:
    """95% interval of a win rate (ties counted as half wins)."""
    if n <= 0:
        return None
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - spread), min(1.0, centre + spread)


def head_to_head(outcomes: Sequence[Outcome]) -> list[dict]:
    """Per version pair: wins, ties and the win rate of the lower id with its interval."""
    table: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for o in outcomes:
        if o.a == o.b:
            continue
        key, score = ((o.a, o.b), o.score) if o.a < o.b else ((o.b, o.a), 1.0 - o.score)
        row = table[key]
        row[0 if score == 1.0 else 1 if score == 0.0 else 2] += 1
    rows = []
    for (a, b), (a_wins, b_wins, ties) in sorted(table.items()):
        n = a_wins + b_wins + ties
        interval = wilson_interval(a_wins + ties / 2, n)
        rows.append(
            {
                "a": a,
                "b": b,
                "a_wins": int(a_wins),
                "b_wins": int(b_wins),
                "ties": int(ties),
                "a_win_rate": (a_wins + ties / 2) / n,
                "ci_low": interval[0] if interval else None,
                "ci_high": interval[1] if interval else None,
            }
        )
    return rows
