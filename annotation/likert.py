"""Pairwise Likert scales and their binarisation (book §11.2.2, Tables 3 and 4).

Pure functions: a choice is made on the *displayed* order (A = first shown), and is
turned into a canonical (chosen, rejected, strength) triple over completion ids so the
display randomisation never leaks into training data.
"""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ScalePoint:
    value: int
    label: str
    winner: str | None  # "A", "B", or None for a tie
    strength: int  # 0 for a tie; larger is a stronger preference

    def as_dict(self) -> dict:
        return asdict(self)


FIVE_POINT = [
    ScalePoint(1, "A is much better", "A", 2),
    ScalePoint(2, "A is better", "A", 1),
    ScalePoint(3, "Tie", None, 0),
    ScalePoint(4, "B is better", "B", 1),
    ScalePoint(5, "B is much better", "B", 2),
]
# An even scale has no tie: annotators must lean one way (as in early RLHF work).
EIGHT_POINT = [
    ScalePoint(1, "A is far better", "A", 4),
    ScalePoint(2, "A is much better", "A", 3),
    ScalePoint(3, "A is better", "A", 2),
    ScalePoint(4, "A is slightly better", "A", 1),
    ScalePoint(5, "B is slightly better", "B", 1),
    ScalePoint(6, "B is better", "B", 2),
    ScalePoint(7, "B is much better", "B", 3),
    ScalePoint(8, "B is far better", "B", 4),
]
BUILTIN_SCALES = {"five_point": FIVE_POINT, "eight_point": EIGHT_POINT}


@dataclass(frozen=True)
class Preference:
    chosen_id: int | None
    rejected_id: int | None
    strength: int  # 0 = tie

    @property
    def is_tie(self) -> bool:
        return self.strength == 0


def scale_points(kind: str, custom: list[dict] | None = None) -> list[ScalePoint]:
    if kind == "custom":
        return parse_custom_scale(custom or [])
    if kind not in BUILTIN_SCALES:
        raise ValueError(f"unknown scale {kind!r}")
    return BUILTIN_SCALES[kind]


def parse_custom_scale(points: list[dict]) -> list[ScalePoint]:
    """Validate a researcher-defined ordered scale; raises ValueError naming the problem."""
    if not isinstance(points, list) or not 2 <= len(points) <= 11:
        raise ValueError("a custom scale needs between 2 and 11 points")
    parsed = []
    for i, raw in enumerate(points):
        if not isinstance(raw, dict) or set(raw) != {"value", "label", "winner", "strength"}:
            raise ValueError(f"point {i} needs exactly value, label, winner and strength")
        point = ScalePoint(raw["value"], raw["label"], raw["winner"], raw["strength"])
        _check_point(i, point)
        parsed.append(point)
    if len({p.value for p in parsed}) != len(parsed):
        raise ValueError("scale values must be unique")
    if not {"A", "B"} <= {p.winner for p in parsed}:
        raise ValueError("a scale needs at least one point for A and one for B")
    return parsed


def _check_point(i: int, p: ScalePoint) -> None:
    if not isinstance(p.value, int) or isinstance(p.value, bool) or not 0 <= p.value <= 99:
        raise ValueError(f"point {i}: value must be an integer from 0 to 99")
    if not isinstance(p.label, str) or not 0 < len(p.label.strip()) <= 80 or "\x00" in p.label:
        raise ValueError(f"point {i}: label must be 1-80 characters of text")
    if p.winner not in ("A", "B", None):
        raise ValueError(f"point {i}: winner must be 'A', 'B' or null")
    if not isinstance(p.strength, int) or isinstance(p.strength, bool):
        raise ValueError(f"point {i}: strength must be an integer")
    if (p.winner is None) != (p.strength == 0) or not 0 <= p.strength <= 10:
        raise ValueError(f"point {i}: a tie has strength 0, a preference strength 1-10")


def preference_from_choice(
    choice: int, shown_order: list[int], points: list[ScalePoint] = FIVE_POINT
) -> Preference:
    """Map a choice made on ``shown_order`` (two completion ids) to a canonical preference."""
    by_value = {p.value: p for p in points}
    if choice not in by_value:
        raise ValueError(f"choice must be one of {sorted(by_value)}, got {choice!r}")
    if len(shown_order) != 2:
        raise ValueError("a pairwise choice needs exactly two shown candidates")
    point = by_value[choice]
    if point.winner is None:
        return Preference(chosen_id=None, rejected_id=None, strength=0)
    winner = 0 if point.winner == "A" else 1
    return Preference(shown_order[winner], shown_order[1 - winner], point.strength)
