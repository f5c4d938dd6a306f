"""The export formats' pure rules: binarisation, aggregation, margins, ratings, KTO labels."""

import random

import pytest

from annotation.export_rows import Record, Rules, aggregate, binarise_ratings, preference_of, rows


def rec(judgment_id=1, task_id=1, annotator="a1", **fields) -> Record:
    base = {
        "judgment_id": judgment_id,
        "task_id": task_id,
        "kind": "pairwise",
        "annotator": annotator,
        "created_at": "2026-11-25T00:00:00Z",
        "guidelines_version": 1,
        "round_id": None,
        "prompt_id": 7,
        "prompt": [{"role": "user", "content": "Q?"}],
        "conversation_id": None,
        "contents": {10: "ten", 20: "twenty", 30: "thirty"},
        "provenance": {10: {"model_version_id": 1}, 20: {"model_version_id": 2}, 30: {}},
        "shown_order": [20, 10],
    }
    return Record(**{**base, **fields})


def pair(judgment_id, chosen, strength, task_id=1, annotator="a1", **extra) -> Record:
    other = {10: 20, 20: 10}
    return rec(
        judgment_id,
        task_id,
        annotator,
        chosen_id=chosen,
        rejected_id=other.get(chosen),
        strength=strength,
        **extra,
    )


def test_trl_preference_rows_are_canonical_with_margin_and_provenance():
    [row] = rows("trl-preference", [pair(1, chosen=20, strength=2)])
    assert row["chosen"] == [{"role": "assistant", "content": "twenty"}]
    assert row["rejected"] == [{"role": "assistant", "content": "ten"}]
    assert (row["margin"], row["tie"], row["chosen_model_version_id"]) == (2.0, False, 2)
    assert row["prompt"] == [{"role": "user", "content": "Q?"}]


def test_ties_and_both_bad_are_dropped_by_default_and_kept_on_request():
    tie = pair(1, chosen=None, strength=0, task_id=1)
    bad = pair(2, chosen=None, strength=0, task_id=2, both_bad=True)
    assert list(rows("trl-preference", [tie, bad])) == []
    kept = list(rows("trl-preference", [tie, bad], Rules(ties="keep", both_bad="keep")))
    assert [(r["tie"], r["both_bad"], r["margin"]) for r in kept] == [
        (True, False, 0.0),
        (True, True, 0.0),
    ]


def test_min_strength_filters_weak_preferences():
    weak, strong = pair(1, 20, 1, task_id=1), pair(2, 10, 2, task_id=2)
    assert [
        r["task_id"] for r in rows("trl-preference", [weak, strong], Rules(min_strength=2))
    ] == [2]


def test_aggregation_majority_and_mean():
    a = preference_of(pair(1, chosen=10, strength=2, annotator="x"))  # +2 for 10 (first)
    b = preference_of(pair(2, chosen=10, strength=1, annotator="y"))  # +1
    c = preference_of(pair(3, chosen=20, strength=2, annotator="z"))  # -2
    assert a is not None and b is not None and c is not None
    [majority] = aggregate([a, b, c], "majority")
    assert (majority.sign, majority.strength, majority.judgment_ids) == (1, 1.5, [1, 2, 3])
    [averaged] = aggregate([a, b, c], "mean")
    assert averaged.sign == 1 and averaged.strength == pytest.approx(1 / 3)
    [split] = aggregate([a, c], "majority")
    assert (split.sign, split.strength) == (0, 0.0)  # a split vote is a tie
    assert len(aggregate([a, b, c], "all")) == 3


def test_mean_aggregation_interpolates_the_margin_through_the_rows():
    group = [pair(1, 10, 2, annotator="x"), pair(2, 10, 1, annotator="y")]
    [row] = rows(
        "trl-preference", group, Rules(aggregate="mean", margin_by_strength={1: 0.5, 2: 1.0})
    )
    assert row["strength"] == 1.5 and row["margin"] == pytest.approx(0.75)
    assert row["annotators"] == ["x", "y"]


def test_ratings_binarise_best_against_a_random_lower_one():
    rng = random.Random(0)
    picks = {binarise_ratings({1: 5, 2: 3, 3: 2, 4: 5}, rng) for _ in range(50)}
    assert {p[0] for p in picks} == {1}  # lowest id among the best
    assert {p[1] for p in picks} == {2, 3}
    assert binarise_ratings({1: 4, 2: 4}, rng) is None


def test_ratings_pairs_and_unpaired_labels_from_ratings_and_thumbs():
    rated = rec(
        1,
        kind="rating",
        shown_order=[10, 20, 30],
        ratings={"10": {"overall": 5}, "20": {"overall": 3}, "30": {"overall": 1}},
    )
    [pair_row] = rows("ratings-pairs", [rated], Rules(seed=1))
    assert pair_row["chosen"][0]["content"] == "ten" and pair_row["margin"] in (2.0, 4.0)
    thumbs = rec(2, task_id=2, kind="thumbs", shown_order=[30], thumbs_up=False)
    labels = [(r["completion_id"], r["label"]) for r in rows("trl-unpaired", [rated, thumbs])]
    assert labels == [(10, True), (30, False), (30, False)]  # the 3 is neither


def test_sft_prefers_rewrites_then_chosen_replies():
    rewritten = pair(1, 10, 2, task_id=1, rewrite="better", rewrite_of_id=10)
    chosen = pair(2, 20, 1, task_id=2)
    out = list(rows("sft", [rewritten, chosen]))
    assert [(r["source"], r["messages"][-1]["content"]) for r in out] == [
        ("rewrite", "better"),
        ("chosen", "twenty"),
    ]


def test_rankings_and_raw_keep_everything():
    ranked = rec(1, kind="ranking", shown_order=[30, 10, 20], ranking=[20, 30, 10])
    [row] = rows("rankings", [ranked])
    assert [m[0]["content"] for m in row["completions"]] == ["twenty", "thirty", "ten"]
    [raw] = rows("raw", [ranked])
    assert raw["candidates"][0] == {"completion_id": 30, "content": "thirty"}
    assert raw["ranking"] == [20, 30, 10]


def test_final_turn_only_keeps_each_conversations_longest_prefix():
    first = pair(1, 10, 1, task_id=1, conversation_id=5)
    longer = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"}]
    second = pair(2, 20, 1, task_id=2, conversation_id=5, prompt=longer + longer[:1])
    out = list(rows("trl-preference", [first, second], Rules(final_turn_only=True)))
    assert [r["task_id"] for r in out] == [2]


def test_unknown_format_or_aggregation_is_refused():
    with pytest.raises(ValueError, match="unknown format"):
        list(rows("csv", []))
    with pytest.raises(ValueError, match="aggregate"):
        list(rows("raw", [], Rules(aggregate="median")))
