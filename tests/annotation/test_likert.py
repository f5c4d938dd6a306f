import pytest

from annotation.likert import FIVE_POINT, preference_from_choice


@pytest.mark.parametrize(
    ("choice", "chosen", "rejected", "strength"),
    [(1, 10, 20, 2), (2, 10, 20, 1), (3, None, None, 0), (4, 20, 10, 1), (5, 20, 10, 2)],
)
def test_choice_maps_to_canonical_preference(choice, chosen, rejected, strength):
    pref = preference_from_choice(choice, [10, 20])
    assert (pref.chosen_id, pref.rejected_id, pref.strength) == (chosen, rejected, strength)


def test_display_order_is_undone():
    # "A is better" with B's completion shown first must prefer the completion shown first.
    assert preference_from_choice(2, [20, 10]).chosen_id == 20
    assert preference_from_choice(4, [20, 10]).chosen_id == 10


def test_tie_is_a_tie():
    assert preference_from_choice(3, [1, 2]).is_tie


@pytest.mark.parametrize("choice", [0, 6, -1])
def test_out_of_scale_choice_is_refused(choice):
    with pytest.raises(ValueError, match="choice must be one of"):
        preference_from_choice(choice, [1, 2])


def test_scale_has_five_labelled_points():
    assert [p.value for p in FIVE_POINT] == [1, 2, 3, 4, 5]
    assert (FIVE_POINT[2].label, FIVE_POINT[2].winner, FIVE_POINT[2].strength) == ("Tie", None, 0)
