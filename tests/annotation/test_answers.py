"""Pure rules that turn a submitted answer into judgment fields."""

import pytest

from annotation.answers import Answer, InvalidInput, Rules, judgment_fields
from annotation.likert import FIVE_POINT

SHOWN = [30, 10, 20]  # completion ids as displayed: A=30, B=10, C=20


def rules(interface: str, **kw) -> Rules:
    return Rules(
        interface=interface,
        scale=FIVE_POINT,
        allow_both_bad=kw.get("allow_both_bad", True),
        aspects=kw.get("aspects", []),
    )


def test_ranking_maps_labels_to_completion_ids_best_first():
    fields = judgment_fields(Answer(ranking=["C", "A", "B"]), SHOWN, rules("ranking"))
    assert fields["ranking"] == [20, 30, 10]
    assert (fields["chosen_id"], fields["rejected_id"], fields["kind"]) == (20, 10, "ranking")


@pytest.mark.parametrize("ranking", [["A", "B"], ["A", "A", "B"], ["A", "B", "C", "D"], []])
def test_ranking_must_be_a_permutation(ranking):
    with pytest.raises(InvalidInput) as err:
        judgment_fields(Answer(ranking=ranking), SHOWN, rules("ranking"))
    assert err.value.field == "ranking"


def test_ratings_need_overall_for_each_candidate_and_known_aspects():
    answer = Answer(ratings={"A": {"overall": 5, "helpfulness": 4}, "B": {"overall": 1}})
    fields = judgment_fields(answer, SHOWN[:2], rules("rating", aspects=["helpfulness"]))
    assert fields["ratings"] == {"30": {"overall": 5, "helpfulness": 4}, "10": {"overall": 1}}
    for bad in (
        {"A": {"overall": 5}},
        {"A": {"overall": 6}, "B": {"overall": 1}},
        {"A": {"overall": 5, "verbosity": 3}, "B": {"overall": 1}},
        {"A": {"helpfulness": 4}, "B": {"overall": 1}},
        {"A": {"overall": True}, "B": {"overall": 1}},
    ):
        with pytest.raises(InvalidInput) as err:
            judgment_fields(
                Answer(ratings=bad), SHOWN[:2], rules("rating", aspects=["helpfulness"])
            )
        assert err.value.field == "ratings"


def test_thumbs_on_a_single_completion():
    assert judgment_fields(Answer(thumbs="down"), [7], rules("thumbs"))["thumbs_up"] is False
    with pytest.raises(InvalidInput, match="up"):
        judgment_fields(Answer(thumbs="sideways"), [7], rules("thumbs"))


def test_answers_for_another_interface_are_refused_not_ignored():
    with pytest.raises(InvalidInput) as err:
        judgment_fields(Answer(choice=1, ranking=["A", "B"]), SHOWN[:2], rules("pairwise"))
    assert err.value.field == "ranking"
    with pytest.raises(InvalidInput) as err:
        judgment_fields(Answer(choice=2), [7], rules("thumbs"))
    assert err.value.field == "choice"


def test_rewrite_is_attached_to_the_labelled_candidate():
    answer = Answer(choice=1, rewrite={"label": "B", "content": "A better reply."})
    fields = judgment_fields(answer, SHOWN[:2], rules("pairwise"))
    assert (fields["rewrite_of_id"], fields["rewrite"]) == (10, "A better reply.")
    with pytest.raises(InvalidInput) as err:
        judgment_fields(
            Answer(choice=1, rewrite={"label": "C", "content": "x"}), SHOWN[:2], rules("pairwise")
        )
    assert err.value.field == "rewrite"
