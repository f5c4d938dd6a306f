"""Which kind of task an annotator gets next: a regular one, a gold item, or a re-ask.

Pure and seeded, so the mix is unit-tested and reproducible. Gold items (known answer)
measure accuracy; swapped-order re-asks of the annotator's own earlier pairs measure
self-consistency and position bias.
"""

import random
from typing import Literal

Source = Literal["regular", "gold", "reask"]


def draw_source(
    rng: random.Random,
    *,
    gold_rate: float,
    reask_rate: float,
    gold_available: bool,
    reask_available: bool,
) -> Source:
    """One draw; a source with nothing available falls through to regular work."""
    roll = rng.random()
    if roll < gold_rate and gold_available:
        return "gold"
    if gold_rate <= roll < gold_rate + reask_rate and reask_available:
        return "reask"
    return "regular"


def swapped(shown_order: list[int]) -> list[int]:
    """The re-ask shows the same candidates in reverse, so a position-biased answer flips."""
    return list(reversed(shown_order))
