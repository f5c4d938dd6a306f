"""Dataset exports that stock tools load as they are."""

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from . import selectors
from .models import Judgment, Project

EXPORT_FORMATS = ("trl-preference",)


def annotator_pseudonym(user_id: int) -> str:
    # Stable per deployment, but not reversible to a user id without the secret key.
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:annotator:{user_id}".encode()).hexdigest()
    return f"annotator-{digest[:10]}"


def trl_preference_row(judgment: Judgment) -> dict:
    """TRL's conversational preference format plus provenance columns."""
    assert judgment.chosen is not None and judgment.rejected is not None
    return {
        "prompt": judgment.task.prompt.messages,
        "chosen": [{"role": "assistant", "content": judgment.chosen.content}],
        "rejected": [{"role": "assistant", "content": judgment.rejected.content}],
        "judgment_id": judgment.pk,
        "strength": judgment.strength,
        "annotator": annotator_pseudonym(judgment.annotator_id),
    }


def trl_preference_rows(project: Project) -> Iterator[dict]:
    # Ties carry no preference direction, so they are left out of pairwise training data.
    judgments = selectors.judgments_for_export(project).filter(strength__gt=0)
    for judgment in judgments.iterator(chunk_size=500):
        yield trl_preference_row(judgment)


def export_write_jsonl(*, project: Project, fmt: str, out: Path) -> int:
    """Write the export atomically; returns the number of rows."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    rows = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for row in trl_preference_rows(project):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows += 1
    tmp.replace(out)
    return rows
