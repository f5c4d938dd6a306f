"""Dataset rows from judgments: pure functions over plain records, one per export format.

Formats (each loads with `datasets` and trains with stock TRL trainers unchanged):

- ``trl-preference``: conversational ``prompt`` / ``chosen`` / ``rejected`` message lists and
  ``margin`` (the Likert strength through ``margin_by_strength``) for RewardTrainer.
- ``trl-unpaired``: KTO's ``prompt`` / ``completion`` / ``label`` from thumbs and ratings
  (rating >= 4 desirable, <= 2 undesirable, 3 left out).
- ``ratings``: one row per rated task with each completion's ratings and aspects.
- ``ratings-pairs``: ratings binarised UltraFeedback-style: the best-rated completion
  against a random lower-rated one (a seeded choice, so exports are reproducible).
- ``rankings``: one row per ranking judgment with the completions best first.
- ``sft``: the chosen reply of each preference, or the annotator's rewrite where there is
  one (rejection-sampling style supervised data).
- ``raw``: one row per judgment with every provenance field.

Binarisation rules are explicit options (``Rules``) with documented defaults. Gold items
and re-asks measure annotators and never reach an export (the selector leaves them out).
"""

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from statistics import mean

FORMATS = (
    "trl-preference",
    "trl-unpaired",
    "ratings",
    "ratings-pairs",
    "rankings",
    "sft",
    "raw",
)
AGGREGATIONS = ("all", "majority", "mean")


@dataclass(frozen=True)
class Rules:
    """How judgments become rows. Defaults: what reward-model training usually wants."""

    ties: str = "drop"  # "drop" | "keep" (kept ties get margin 0 and tie=True)
    both_bad: str = "drop"  # "drop" | "keep" (as a tie-like row with both_bad=True)
    min_strength: int = 1  # pairs weaker than this are left out (0 keeps ties if ties=keep)
    aggregate: str = "all"  # several annotators on one task: each row / majority / mean
    margin_by_strength: dict[int, float] = field(
        default_factory=lambda: {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0}
    )
    final_turn_only: bool = False  # multi-turn sessions: only each conversation's last turn
    seed: int = 0  # for ratings-pairs' random lower-rated pick


@dataclass(frozen=True)
class Record:
    """One judgment with what every format needs (built by selectors.export_records)."""

    judgment_id: int
    task_id: int
    kind: str  # pairwise | ranking | rating | thumbs
    annotator: str  # pseudonym
    created_at: str
    guidelines_version: int
    round_id: int | None
    prompt_id: int
    prompt: list[dict]
    conversation_id: int | None
    contents: dict[int, str]  # completion id -> text
    provenance: dict[int, dict]  # completion id -> {model_version_id, model_name, round_id, ...}
    shown_order: list[int]
    choice: int | None = None
    strength: int = 0
    chosen_id: int | None = None
    rejected_id: int | None = None
    both_bad: bool = False
    ranking: list[int] | None = None
    ratings: dict[str, dict[str, int]] | None = None  # completion id (str) -> {overall, aspect}
    thumbs_up: bool | None = None
    rewrite_of_id: int | None = None
    rewrite: str = ""
    flags: list[str] = field(default_factory=list)
    comment: str = ""
    time_spent_ms: int = 0


def rows(fmt: str, records: Iterable[Record], rules: Rules = Rules()) -> Iterator[dict]:
    """Rows of ``fmt``; ``records`` must come grouped by task (for aggregation)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if rules.aggregate not in AGGREGATIONS:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATIONS)}")
    if rules.final_turn_only:
        records = _final_turns(records)
    builder = _BUILDERS[fmt]
    return builder(records, rules)


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _base(record: Record) -> dict:
    return {"prompt": record.prompt, "prompt_id": record.prompt_id, "task_id": record.task_id}


# --- pairwise preferences ------------------------------------------------------------------


@dataclass(frozen=True)
class Preference:
    """A direction between two completions: first preferred when ``sign`` > 0."""

    first: int
    second: int
    sign: int  # +1 first preferred, -1 second, 0 tie or both bad
    strength: float
    both_bad: bool
    judgment_ids: list[int]
    annotators: list[str]


def preference_of(record: Record) -> Preference | None:
    """A pairwise judgment in canonical orientation (lower completion id first)."""
    if record.kind != "pairwise" or len(record.shown_order) != 2:
        return None
    first, second = sorted(record.shown_order)
    sign = 0 if record.chosen_id is None else (1 if record.chosen_id == first else -1)
    return Preference(
        first=first,
        second=second,
        sign=sign,
        strength=float(record.strength),
        both_bad=record.both_bad,
        judgment_ids=[record.judgment_id],
        annotators=[record.annotator],
    )


def aggregate(preferences: list[Preference], how: str) -> list[Preference]:
    """Several annotators' verdicts on one pair: keep all, majority vote, or mean strength.

    ``majority`` keeps the direction most annotators chose (a split vote becomes a tie)
    with the mean strength of that side; ``mean`` averages signed strengths, so a 2 and a
    -1 give +0.5. Both-bad verdicts count as ties.
    """
    if how == "all" or len(preferences) <= 1:
        return preferences
    first, second = preferences[0].first, preferences[0].second
    ids = [j for p in preferences for j in p.judgment_ids]
    who = [a for p in preferences for a in p.annotators]
    signed = [p.sign * p.strength for p in preferences]
    if how == "mean":
        value = mean(signed)
        sign = (value > 0) - (value < 0)
        return [Preference(first, second, sign, abs(value), False, ids, who)]
    votes = sum(p.sign for p in preferences)
    sign = (votes > 0) - (votes < 0)
    side = [p.strength for p in preferences if p.sign == sign and sign != 0]
    return [Preference(first, second, sign, mean(side) if side else 0.0, False, ids, who)]


def _preferences(records: Iterable[Record], rules: Rules) -> Iterator[tuple[Record, Preference]]:
    for group in _by_task(records):
        prefs = [p for p in (preference_of(r) for r in group) if p is not None]
        if not prefs:
            continue
        for pref in aggregate(prefs, rules.aggregate):
            if pref.both_bad and rules.both_bad == "drop":
                continue
            if pref.sign == 0 and not pref.both_bad and rules.ties == "drop":
                continue
            if pref.sign != 0 and pref.strength < rules.min_strength:
                continue
            yield group[0], pref


def _margin(strength: float, rules: Rules) -> float:
    table = rules.margin_by_strength
    if float(strength).is_integer() and int(strength) in table:
        return float(table[int(strength)])
    # A mean strength between two points: interpolate between their margins.
    low, high = int(strength), int(strength) + 1
    lo, hi = table.get(low, float(low)), table.get(high, float(high))
    return lo + (hi - lo) * (strength - low)


def _trl_preference(records: Iterable[Record], rules: Rules) -> Iterator[dict]:
    for record, pref in _preferences(records, rules):
        chosen, rejected = (
            (pref.first, pref.second) if pref.sign >= 0 else (pref.second, pref.first)
        )
        yield {
            **_base(record),
            "chosen": _assistant(record.contents[chosen]),
            "rejected": _assistant(record.contents[rejected]),
            "margin": _margin(pref.strength, rules) if pref.sign else 0.0,
            "strength": pref.strength,
            "tie": pref.sign == 0,
            "both_bad": pref.both_bad,
            "chosen_id": chosen,
            "rejected_id": rejected,
            "judgment_id": pref.judgment_ids[0],  # the first; all of them in judgment_ids
            "judgment_ids": pref.judgment_ids,
            "annotator": pref.annotators[0] if len(pref.annotators) == 1 else None,
            "annotators": pref.annotators,
            "chosen_model_version_id": record.provenance[chosen].get("model_version_id"),
            "rejected_model_version_id": record.provenance[rejected].get("model_version_id"),
        }


def _sft(records: Iterable[Record], rules: Rules) -> Iterator[dict]:
    """The preferred reply, or the annotator's rewrite, as a supervised example."""
    for group in _by_task(records):
        rewrites = [r for r in group if r.rewrite]
        for record in rewrites:
            yield {
                **_base(record),
                "messages": record.prompt + _assistant(record.rewrite),
                "source": "rewrite",
                "completion_id": record.rewrite_of_id,
                "judgment_ids": [record.judgment_id],
            }
        if rewrites:
            continue
        for record, pref in _preferences(group, replace(rules, ties="drop", both_bad="drop")):
            if pref.both_bad or pref.sign == 0:
                continue
            chosen = pref.first if pref.sign > 0 else pref.second
            yield {
                **_base(record),
                "messages": record.prompt + _assistant(record.contents[chosen]),
                "source": "chosen",
                "completion_id": chosen,
                "judgment_ids": pref.judgment_ids,
            }


# --- ratings, rankings, thumbs -------------------------------------------------------------


def _ratings(records: Iterable[Record], rules: Rules) -> Iterator[dict]:
    for record in records:
        if record.kind != "rating" or not record.ratings:
            continue
        yield {
            **_base(record),
            "completions": [
                {
                    "completion_id": int(cid),
                    "content": record.contents[int(cid)],
                    "ratings": scores,
                    "model_version_id": record.provenance[int(cid)].get("model_version_id"),
                }
                for cid, scores in sorted(record.ratings.items(), key=lambda kv: int(kv[0]))
            ],
            "judgment_id": record.judgment_id,
            "annotator": record.annotator,
        }


def binarise_ratings(ratings: dict[int, int], rng: random.Random) -> tuple[int, int, float] | None:
    """UltraFeedback's rule: the best-rated against a random strictly lower-rated one.

    Returns (chosen id, rejected id, rating gap), or None when all ratings are equal. Ties
    for best go to the lowest completion id, so the choice depends only on ``rng``.
    """
    best = max(ratings.values())
    chosen = min(cid for cid, score in ratings.items() if score == best)
    lower = sorted(cid for cid, score in ratings.items() if score < best)
    if not lower:
        return None
    rejected = rng.choice(lower)
    return chosen, rejected, float(best - ratings[rejected])


def _ratings_pairs(records: Iterable[Record], rules: Rules) -> Iterator[dict]:
    rng = random.Random(rules.seed)
    for record in records:
        if record.kind != "rating" or not record.ratings:
            continue
        overall = {int(cid): scores["overall"] for cid, scores in record.ratings.items()}
        picked = binarise_ratings(overall, rng)
        if picked is None or picked[2] < rules.min_strength:
            continue
        chosen, rejected, gap = picked
        yield {
            **_base(record),
            "chosen": _assistant(record.contents[chosen]),
            "rejected": _assistant(record.contents[rejected]),
            "margin": gap,
            "chosen_rating": overall[chosen],
            "rejected_rating": overall[rejected],
            "judgment_ids": [record.judgment_id],
        }


def _rankings(records: Iterable[Record], rules: Rules) -> Iterator[dict]:
    for record in records:
        if record.kind != "ranking" or not record.ranking:
            continue
        yield {
            **_base(record),
            "completions": [_assistant(record.contents[cid]) for cid in record.ranking],
            "completion_ids": record.ranking,
            "judgment_id": record.judgment_id,
            "annotator": record.annotator,
        }


def _trl_unpaired(records: Iterable[Record], rules: Rules) -> Iterator[dict]:
    for record in records:
        labelled: list[tuple[int, bool]] = []
        if record.kind == "thumbs" and record.thumbs_up is not None:
            labelled = [(record.shown_order[0], record.thumbs_up)]
        elif record.kind == "rating" and record.ratings:
            for key, scores in sorted(record.ratings.items(), key=lambda kv: int(kv[0])):
                if scores["overall"] != 3:
                    labelled.append((int(key), scores["overall"] >= 4))
        for cid, label in labelled:
            yield {
                **_base(record),
                "completion": _assistant(record.contents[cid]),
                "label": label,
                "completion_id": cid,
                "judgment_id": record.judgment_id,
            }


def _raw(records: Iterable[Record], rules: Rules) -> Iterator[dict]:
    for r in records:
        yield {
            "judgment_id": r.judgment_id,
            "task_id": r.task_id,
            "kind": r.kind,
            "annotator": r.annotator,
            "created_at": r.created_at,
            "guidelines_version": r.guidelines_version,
            "round_id": r.round_id,
            "prompt_id": r.prompt_id,
            "prompt": r.prompt,
            "conversation_id": r.conversation_id,
            "candidates": [
                {"completion_id": cid, "content": r.contents[cid], **r.provenance[cid]}
                for cid in r.shown_order
            ],
            "shown_order": r.shown_order,
            "choice": r.choice,
            "strength": r.strength,
            "chosen_id": r.chosen_id,
            "rejected_id": r.rejected_id,
            "both_bad": r.both_bad,
            "ranking": r.ranking,
            "ratings": r.ratings,
            "thumbs_up": r.thumbs_up,
            "rewrite_of_id": r.rewrite_of_id,
            "rewrite": r.rewrite,
            "flags": r.flags,
            "comment": r.comment,
            "time_spent_ms": r.time_spent_ms,
        }


_BUILDERS = {
    "trl-preference": _trl_preference,
    "trl-unpaired": _trl_unpaired,
    "ratings": _ratings,
    "ratings-pairs": _ratings_pairs,
    "rankings": _rankings,
    "sft": _sft,
    "raw": _raw,
}


# --- grouping --------------------------------------------------------------------------------


def _by_task(records: Iterable[Record]) -> Iterator[list[Record]]:
    """Consecutive records of one task (the selector orders by task): constant memory."""
    group: list[Record] = []
    for record in records:
        if group and record.task_id != group[0].task_id:
            yield group
            group = []
        group.append(record)
    if group:
        yield group


def _final_turns(records: Iterable[Record]) -> Iterator[Record]:
    """Only each conversation's last judged turn; single-turn records pass through.

    Holds one record per conversation until the end (the latest turn seen so far).
    """
    held: dict[int, Record] = {}
    for record in records:
        if record.conversation_id is None:
            yield record
            continue
        current = held.get(record.conversation_id)
        if current is None or len(record.prompt) > len(current.prompt):
            held[record.conversation_id] = record
    yield from held.values()
