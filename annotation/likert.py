"""Pairwise Likert scales and their binarisation (book §11.2.2, Table 3).

Pure functions: a choice is made on the *displayed* order (A = first shown), and is
turned into a canonical (chosen, rejected, strength) triple over completion ids so the
display randomisation never leaks into training data.
"""

from dataclasses import dataclass

FIVE_POINT_SCALE: list[tuple[int, str]] = [
    (1, "A is much better"),
    (2, "A is better"),
    (3, "Tie"),
    (4, "B is better"),
    (5, "B is much better"),
]

# choice -> (index of the preferred candidate in display order, strength); strength 0 is a tie.
_FIVE_POINT_MEANING: dict[int, tuple[int | None, int]] = {
    1: (0, 2),
    2: (0, 1),
    3: (None, 0),
    4: (1, 1),
    5: (1, 2),
}


@dataclass(frozen=True)
class Preference:
    chosen_id: int | None
    rejected_id: int | None
    strength: int  # 0 = tie, 1 = slightly better, 2 = much better

    @property
    def is_tie(self) -> bool:
        return self.strength == 0


def preference_from_choice(choice: int, shown_order: list[int]) -> Preference:
    """Map a 5-point choice made on ``shown_order`` (two completion ids) to a preference."""
    if choice not in _FIVE_POINT_MEANING:
        raise ValueError(f"choice must be one of {sorted(_FIVE_POINT_MEANING)}, got {choice!r}")
    if len(shown_order) != 2:
        raise ValueError("a pairwise choice needs exactly two shown candidates")
    winner, strength = _FIVE_POINT_MEANING[choice]
    if winner is None:
        return Preference(chosen_id=None, rejected_id=None, strength=0)
    return Preference(
        chosen_id=shown_order[winner], rejected_id=shown_order[1 - winner], strength=strength
    )
