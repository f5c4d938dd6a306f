"""Reading a recipe's progress file, log and data file (no database, no child process)."""

import hashlib
import json

from training_jobs import progress as p
from training_jobs.recipes.reward import NO_STRENGTH, likert_strength


def _line(**event) -> bytes:
    return (json.dumps(event) + "\n").encode()


def test_a_half_written_last_line_waits_for_the_next_read(tmp_path):
    path = tmp_path / "progress.jsonl"
    first = _line(total=4, step=1, loss=0.7)
    path.write_bytes(first + b'{"total": 4, "st')
    events, offset = p.progress_read(path, 0)
    assert events == [{"total": 4, "step": 1, "loss": 0.7}]
    assert offset == len(first)

    with path.open("ab") as out:
        out.write(b'ep": 2, "loss": 0.5}\n')
    events, offset = p.progress_read(path, offset)
    assert events == [{"total": 4, "step": 2, "loss": 0.5}]
    assert p.progress_read(path, offset) == ([], offset)


def test_no_file_yet_is_no_progress(tmp_path):
    assert p.progress_read(tmp_path / "missing.jsonl", 0) == ([], 0)


def test_garbled_and_non_object_lines_are_skipped():
    data = b'not json\n[1, 2]\n\n{"step": 3, "loss": 0.2}\n'
    assert p.progress_parse(data) == [{"step": 3, "loss": 0.2}]


def test_fold_keeps_step_total_and_the_numbers_each_step_logged():
    start = p.Progress(step=0, total=0, history=[])
    events = [
        {"total": 10, "step": 1, "loss": 0.69, "learning_rate": 1e-3, "note": "text"},
        {"total": 10, "step": 2, "loss": None, "grad_norm": float("nan")},  # diverged
        {"total": 10, "step": 3, "loss": 0.5, "rewards/accuracies": 1.0},
    ]
    folded = p.progress_fold(start, events)
    assert (folded.step, folded.total) == (3, 10)
    assert folded.history == [
        {"step": 1, "loss": 0.69, "learning_rate": 1e-3},
        {"step": 3, "loss": 0.5, "rewards/accuracies": 1.0},
    ]


def test_a_bad_step_keeps_the_last_good_one():
    folded = p.progress_fold(p.Progress(5, 10, []), [{"step": "six", "total": -1}])
    assert (folded.step, folded.total, folded.history) == (5, 10, [])


def test_a_long_history_is_thinned_evenly():
    folded = p.progress_fold(p.Progress(0, 0, []), [])
    for n in range(1, 5001):  # a poll at a time, as the worker folds them
        folded = p.progress_fold(folded, [{"step": n, "total": 5000, "loss": 1 / n}])
    steps = [point["step"] for point in folded.history]
    assert p.HISTORY_CAP // 2 <= len(steps) <= p.HISTORY_CAP
    gaps = {later - earlier for earlier, later in zip(steps, steps[1:], strict=False)}
    assert gaps == {folded.stride}
    assert steps[-1] > 5000 - folded.stride and folded.step == 5000


def test_log_tail_is_the_last_bytes_as_text(tmp_path):
    log = tmp_path / "train.log"
    log.write_bytes(b"x" * 10_000 + "\né-the end\n".encode())
    tail = p.log_tail(log)
    assert len(tail.encode()) <= p.LOG_TAIL_BYTES + 3 and tail.endswith("é-the end\n")
    assert p.last_line(tail) == "é-the end"
    assert p.log_tail(tmp_path / "none.log") == ""


def test_snapshot_names_the_exact_file_and_its_judgments(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [
        {"prompt": "a", "judgment_id": 7, "judgment_ids": [7]},
        {"prompt": "b", "judgment_id": 3, "judgment_ids": [3, 12]},  # aggregated pair
        {"prompt": "c", "judgment_id": 7, "judgment_ids": [7]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    snapshot = p.snapshot_describe(path)
    assert snapshot.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (snapshot.rows, snapshot.judgment_count, snapshot.judgment_max_id) == (3, 3, 12)


def test_an_empty_snapshot(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("")
    snapshot = p.snapshot_describe(path)
    assert (snapshot.rows, snapshot.judgment_count, snapshot.judgment_max_id) == (0, 0, None)


def test_exported_strengths_count_as_likert_points():
    # The export writes strength as a number such as 2.0 (Postgres numeric); it is point 2.
    assert likert_strength(2.0) == 2 and likert_strength(3) == 3
    assert likert_strength(2.5) == NO_STRENGTH  # a mean of annotators has no point
    assert likert_strength(None) == likert_strength(True) == NO_STRENGTH
