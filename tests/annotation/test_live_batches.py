"""Unit tests: deltas waiting in a live turn's queue go out merged, in one batch."""

import asyncio

from annotation.live_turns import _FINISHED, TurnRun, _Batch, _Stop


def delta(label: str, text: str):
    return ("delta", {"label": label, "text": text})


def done(label: str):
    return ("done", {"label": label, "finish_reason": "stop", "incomplete": False})


def test_each_labels_consecutive_deltas_merge_and_done_stays_after_its_text():
    batch = _Batch()
    for event in [
        delta("A", "Hel"),
        delta("B", "Bon"),
        delta("A", "lo"),
        done("A"),
        delta("B", "jour"),
    ]:
        batch.add(event)
    assert batch.events() == [delta("A", "Hello"), delta("B", "Bon"), done("A"), delta("B", "jour")]


def test_merging_never_changes_the_text_a_client_reassembles():
    events = [delta("AB"[i % 3 % 2], f"t{i} ") for i in range(50)]
    batch = _Batch()
    for event in events:
        batch.add(event)
    assert len(batch.events()) == 2
    for label in "AB":
        want = "".join(e[1]["text"] for e in events if e[1]["label"] == label)
        got = "".join(e[1]["text"] for e in batch.events() if e[1]["label"] == label)
        assert got == want


def run_with(items: list) -> tuple[list[list], str, list]:
    async def go():
        run = TurnRun()
        run._running = 2
        for item in items:
            run.queue.put_nowait(item)
        batches = []
        while batch := await run.next_batch():
            batches.append(batch)
        return batches, run.reason, [run.queue.get_nowait() for _ in range(run.queue.qsize())]

    return asyncio.run(go())


def test_a_burst_is_one_batch_and_the_turn_ends_after_both_candidates():
    items = [delta("A", "a"), delta("B", "b"), delta("A", "c"), done("A"), _FINISHED]
    items += [delta("B", "d"), done("B"), _FINISHED]
    batches, reason, left = run_with(items)
    assert batches == [[delta("A", "ac"), delta("B", "b"), done("A"), delta("B", "d"), done("B")]]
    assert reason == "finished" and left == []


def test_what_follows_a_stop_stays_queued_for_the_halt():
    items = [delta("A", "a"), _Stop("judged"), delta("B", "late")]
    batches, reason, left = run_with(items)
    assert batches == [[delta("A", "a")]]
    assert reason == "judged" and left == [delta("B", "late")]
