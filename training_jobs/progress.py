"""Reading what a recipe child process reports: progress lines, its log and the data it used.

Pure file handling, no database: services.py folds the results into the job row.
"""

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_TAIL_BYTES = 4096
HISTORY_CAP = 500


def progress_read(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The complete JSON lines after byte ``offset`` and the offset to read from next time.

    The child appends while we read, so a last line without its newline is left for the next
    read rather than parsed half-written.
    """
    if not path.exists():
        return [], offset
    with path.open("rb") as progress:
        progress.seek(offset)
        chunk = progress.read()
    complete = chunk.rfind(b"\n") + 1
    return progress_parse(chunk[:complete]), offset + complete


def progress_parse(data: bytes) -> list[dict[str, Any]]:
    events = []
    for line in data.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a garbled line costs one point of the chart, not the run
        if isinstance(event, dict):
            events.append(event)
    return events


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    history: list[dict[str, float]]
    stride: int = 1  # history keeps the steps that are multiples of this


def progress_fold(previous: Progress, events: list[dict[str, Any]]) -> Progress:
    """The job's progress after ``events``: last step/total, history of the logged numbers.

    History keeps every finite number a step logged (loss, learning rate, reward accuracy…).
    Past HISTORY_CAP points the stride doubles and the points off it go, so a long run keeps
    its whole curve at an even, coarser grain and the row stays small.
    """
    step, total, stride = previous.step, previous.total, previous.stride
    history = list(previous.history)
    for event in events:
        step = _whole(event.get("step"), step)
        total = _whole(event.get("total"), total)
        numbers = {
            key: value
            for key, value in event.items()
            if key not in ("step", "total") and _finite(value)
        }
        if numbers and step % stride == 0:
            history.append({"step": step, **numbers})
        if len(history) > HISTORY_CAP:
            stride *= 2
            history = [point for point in history if point["step"] % stride == 0]
    return Progress(step=step, total=total, history=history, stride=stride)


def _whole(value: Any, default: int) -> int:
    return int(value) if _finite(value) and value >= 0 else default


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def log_tail(path: Path, size: int = LOG_TAIL_BYTES) -> str:
    """The last ``size`` bytes of a log as text (a character cut in two becomes U+FFFD)."""
    if not path.exists():
        return ""
    with path.open("rb") as log:
        log.seek(max(0, path.stat().st_size - size))
        return log.read().decode("utf-8", errors="replace")


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


@dataclass(frozen=True)
class DataSnapshot:
    """What a training file holds: its content hash and the judgments behind its rows."""

    sha256: str
    rows: int
    judgment_count: int
    judgment_max_id: int | None


def snapshot_describe(path: Path) -> DataSnapshot:
    """Hash an exported preference file and collect the judgment ids its rows cite."""
    digest = hashlib.sha256()
    rows = 0
    judgments: set[int] = set()
    with path.open("rb") as data:
        for line in data:
            digest.update(line)
            if not line.strip():
                continue
            rows += 1
            row = json.loads(line)
            judgments.update(row.get("judgment_ids") or [row["judgment_id"]])
    return DataSnapshot(
        sha256=digest.hexdigest(),
        rows=rows,
        judgment_count=len(judgments),
        judgment_max_id=max(judgments) if judgments else None,
    )
