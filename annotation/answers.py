"""Turning what an annotator submitted (on labels A, B, … as shown) into judgment fields.

Pure: knows the task's interface, the display order and the project's scale/rubric, and
never touches the database, so each rule is unit-tested on its own.
"""

from dataclasses import dataclass, field

from .likert import ScalePoint, preference_from_choice

LABELS = "ABCDEFGH"
LABEL_CHOICES = [(label, label) for label in LABELS]
FLAGS = ("unsafe", "nonsense", "off_topic", "private_info", "other")
MAX_REWRITE_CHARS = 100_000


class InvalidInput(ValueError):
    """Input that depends on the task or project to check; names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Answer:
    choice: int | None = None
    both_bad: bool = False
    ranking: list[str] | None = None
    ratings: dict[str, dict[str, int]] | None = None
    thumbs: str | None = None
    rewrite: dict[str, str] | None = None
    flags: list[str] = field(default_factory=list)
    comment: str = ""
    time_spent_ms: int = 0


@dataclass(frozen=True)
class Rules:
    interface: str
    scale: list[ScalePoint]
    allow_both_bad: bool
    aspects: list[str]


def judgment_fields(answer: Answer, shown_order: list[int], rules: Rules) -> dict:
    """Validated, canonical judgment columns; raises InvalidInput naming the field."""
    ids_by_label = {LABELS[i]: cid for i, cid in enumerate(shown_order)}
    _refuse_foreign_fields(answer, rules.interface)
    fields = {
        "kind": rules.interface,
        "flags": sorted(set(answer.flags)),
        "comment": answer.comment,
        "time_spent_ms": answer.time_spent_ms,
        "strength": 0,
        **_rewrite_fields(answer.rewrite, ids_by_label),
    }
    builders = {
        "pairwise": _pairwise_fields,
        "ranking": _ranking_fields,
        "rating": _rating_fields,
        "thumbs": _thumbs_fields,
    }
    fields.update(builders[rules.interface](answer, shown_order, ids_by_label, rules))
    return fields


# Which answer fields each interface accepts; anything else is refused, not ignored.
_ACCEPTS = {
    "pairwise": {"choice", "both_bad"},
    "ranking": {"ranking"},
    "rating": {"ratings"},
    "thumbs": {"thumbs"},
}
_ALL_SPECIFIC = {"choice", "both_bad", "ranking", "ratings", "thumbs"}


def _refuse_foreign_fields(answer: Answer, interface: str) -> None:
    for name in sorted(_ALL_SPECIFIC - _ACCEPTS[interface]):
        value = getattr(answer, name)
        if value not in (None, False):
            raise InvalidInput(name, f"this task asks for a {interface} judgment, not {name}")


def _pairwise_fields(answer: Answer, shown: list[int], _ids: dict, rules: Rules) -> dict:
    if answer.both_bad:
        if not rules.allow_both_bad:
            raise InvalidInput("both_bad", "this project does not offer 'both bad'")
        if answer.choice is not None:
            raise InvalidInput("choice", "leave choice empty when both responses are bad")
        return {"both_bad": True, "choice": None}
    values = [p.value for p in rules.scale]
    if answer.choice not in values:
        raise InvalidInput("choice", f"choice must be one of {values}")
    preference = preference_from_choice(answer.choice, shown, rules.scale)
    return {
        "choice": answer.choice,
        "chosen_id": preference.chosen_id,
        "rejected_id": preference.rejected_id,
        "strength": preference.strength,
    }


def _ranking_fields(answer: Answer, _shown: list[int], ids: dict, _rules: Rules) -> dict:
    ranking = answer.ranking or []
    if sorted(ranking) != sorted(ids):
        raise InvalidInput("ranking", f"rank every candidate exactly once: {sorted(ids)}")
    ordered = [ids[label] for label in ranking]
    # Best and worst also fill the pairwise columns so pair-based tools can use rankings.
    return {"ranking": ordered, "chosen_id": ordered[0], "rejected_id": ordered[-1]}


def _rating_fields(answer: Answer, _shown: list[int], ids: dict, rules: Rules) -> dict:
    ratings = answer.ratings or {}
    if set(ratings) != set(ids):
        raise InvalidInput("ratings", f"rate every candidate: {sorted(ids)}")
    allowed = {"overall", *rules.aspects}
    stored = {}
    for label, scores in ratings.items():
        if "overall" not in scores:
            raise InvalidInput("ratings", f"{label}: an overall rating is required")
        for name, score in scores.items():
            if name not in allowed:
                raise InvalidInput("ratings", f"{label}: unknown aspect {name!r}")
            if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
                raise InvalidInput("ratings", f"{label}.{name}: ratings are whole numbers 1-5")
        stored[str(ids[label])] = dict(scores)
    return {"ratings": stored}


def _thumbs_fields(answer: Answer, _shown: list[int], _ids: dict, _rules: Rules) -> dict:
    if answer.thumbs not in ("up", "down"):
        raise InvalidInput("thumbs", "thumbs must be 'up' or 'down'")
    return {"thumbs_up": answer.thumbs == "up"}


def _rewrite_fields(rewrite: dict[str, str] | None, ids: dict) -> dict:
    if not rewrite:
        return {}
    label, content = rewrite.get("label"), rewrite.get("content", "")
    if label not in ids:
        raise InvalidInput("rewrite", f"rewrite.label must be one of {sorted(ids)}")
    if not isinstance(content, str) or not content.strip() or len(content) > MAX_REWRITE_CHARS:
        raise InvalidInput("rewrite", "rewrite.content must be 1-100000 characters")
    return {"rewrite_of_id": ids[label], "rewrite": content}
