"""queue.mem and queue.disk: bounded, at-least-once, drops counted; the disk queue
survives restarts."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from protocols.stats import Counters
from shipper.agent.settings import DiskQueueSettings
from shipper.pipeline.diskqueue import DiskQueue, DiskQueueError
from shipper.pipeline.queue import MemQueue, Queue, QueueClosed, StopEvent


def ev(i: int, pad: int = 0) -> dict[str, Any]:
    return {"id": i, "pad": "x" * pad}


def disk(tmp: Path, stats: Counters | None = None, **kw: Any) -> DiskQueue:
    kw.setdefault("max_size", 1 << 20)
    return DiskQueue(DiskQueueSettings(path=str(tmp), **kw), tmp, stats if stats is not None else Counters())


def drain(q: Queue) -> list[int]:
    ids: list[int] = []
    while True:
        b = q.get(1000, 0.05)
        if not b:
            return ids
        ids += [e.event["id"] for e in b]
        q.ack(b)


@pytest.fixture(params=["mem", "disk"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    stats = Counters()
    if request.param == "mem":
        yield MemQueue(100, 0, 0.05, stats)
    else:
        q = disk(tmp_path, stats, max_size=100 * 40, segment_size=0)
        yield q
        q.release()


def test_nack_goes_back_to_the_front_and_entries_leave_only_when_acked(queue: Queue) -> None:
    for i in range(10):
        assert queue.put(ev(i))
    b = queue.get(4, 0.1)
    assert [e.event["id"] for e in b] == [0, 1, 2, 3]
    assert queue.pending() == 10
    queue.ack(b[:2])
    queue.nack(b[2:])
    assert queue.pending() == 8
    assert drain(queue) == list(range(2, 10))
    assert queue.pending() == 0
    assert queue.wait_empty(0.1)


def test_full_queue_drops_and_counts_without_blocking(queue: Queue) -> None:
    n = 0
    while queue.put(ev(n), block=False):
        n += 1
        assert n < 10_000
    stats = queue.stats  # type: ignore[attr-defined]
    assert stats["queue.dropped_full"] == 1
    assert stats["queue.published"] == n
    assert not queue.put(ev(n), block=False)
    assert stats["queue.dropped_full"] == 2


def test_full_queue_blocks_until_acknowledged(queue: Queue) -> None:
    n = 0
    while queue.put(ev(n), block=False):
        n += 1
    done = threading.Event()

    def producer() -> None:
        queue.put(ev(n))
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    assert not done.wait(0.3)  # blocked: nothing is dropped
    got = drain(queue)
    assert done.wait(5)
    t.join()
    got += drain(queue)
    assert got == list(range(n + 1))


@pytest.mark.parametrize("many", [False, True], ids=["put", "put_many"])
def test_stopping_put_waits_for_the_draining_output_then_gives_up_after_the_grace(
    queue: Queue, many: bool
) -> None:
    """A stop (SIGINT, SIGTERM) does not throw away events the output is still taking: a put
    waiting for room goes on while the queue drains, and gives up (counted) only once the
    shutdown timeout since the stop has passed."""
    n = 0
    while queue.put(ev(n), block=False):
        n += 1
    stop = StopEvent()
    queue.abort, queue.abort_grace = stop, 5.0
    stats = queue.stats  # type: ignore[attr-defined]

    def put(events: list[dict[str, Any]]) -> int:
        if many:
            return queue.put_many(events)
        return sum(queue.put(e) for e in events)

    results: list[int] = []
    t = threading.Thread(target=lambda: results.append(put([ev(n), ev(n + 1)])))
    stop.set()
    t.start()
    time.sleep(0.3)
    got = drain(queue)  # the output takes events after the stop: the put goes on
    t.join(5)
    assert results == [2]
    got += drain(queue)
    assert got == list(range(n + 2))
    assert stats.get("queue.dropped_stopping", 0) == 0

    while queue.put(ev(0), block=False):
        pass
    stop = queue.abort = StopEvent()
    queue.abort_grace = 1.5
    stop.set()
    time.sleep(1.2)
    t0 = time.monotonic()
    assert put([ev(1), ev(2), ev(3)]) == 0  # nothing drains: the grace runs out
    # 1.5 s from the stop (0.3 s from here), not 1.5 s from the put
    assert time.monotonic() - t0 < 1.3
    assert stats["queue.dropped_stopping"] == 3


def test_stop_event_counts_the_shutdown_timeout_from_the_first_stop() -> None:
    stop = StopEvent()
    assert stop.left(5.0) == 5.0
    stop.set()
    first = stop.at
    time.sleep(0.05)
    stop.set()
    assert stop.at == first
    assert 4.8 < stop.left(5.0) < 5.0
    assert stop.left(0.01) == 0.0


def test_closed_queue_refuses_events(queue: Queue) -> None:
    queue.close()
    with pytest.raises(QueueClosed):
        queue.put(ev(1))


def test_memqueue_full_with_batches_in_flight_does_not_wait_for_flush_timeout() -> None:
    # max 100, flush.min_events 80: with 60 in flight only 40 can ever be queued, so a
    # consumer must not sit out the 5 s flush.timeout waiting for 80.
    q = MemQueue(100, 80, 5.0)
    for i in range(100):
        q.put(ev(i))
    first = q.get(60)
    assert len(first) == 60
    t = time.monotonic()
    second = q.get(60)
    assert len(second) == 40
    assert time.monotonic() - t < 1.0
    q.ack(first + second)


def test_memqueue_flush_min_events_waits_for_a_full_batch() -> None:
    q = MemQueue(1000, 50, 0.3)
    for i in range(10):
        q.put(ev(i))
    t = time.monotonic()
    assert len(q.get(100)) == 10
    assert time.monotonic() - t >= 0.25


def test_memqueue_flush_timeout_zero_waits_on_an_empty_queue() -> None:
    """``flush.timeout: 0s``: what is queued goes at once, but an empty queue is waited on
    (returning at once made the output's consumer spin, a CPU core busy for nothing), and
    the first event put ends the wait."""
    from shipper.pipeline import queue as qmod

    q = MemQueue(1000, 500, 0.0)
    for i in range(3):
        q.put(ev(i))
    t = time.monotonic()
    assert [e.event["id"] for e in q.get(100)] == [0, 1, 2]  # no wait for min_events
    assert time.monotonic() - t < qmod.IDLE_WAIT / 2
    t = time.monotonic()
    assert q.get(100) == []  # nothing came: one idle wait, then empty
    assert time.monotonic() - t >= qmod.IDLE_WAIT * 0.9
    threading.Timer(0.2, lambda: q.put(ev(9))).start()
    t = time.monotonic()
    got = q.get(100)
    assert [e.event["id"] for e in got] == [9]
    assert 0.15 <= time.monotonic() - t < qmod.IDLE_WAIT * 0.9


# -- disk only -------------------------------------------------------------------------------


def test_disk_queue_survives_a_restart(tmp_path: Path) -> None:
    q = disk(tmp_path)
    for i in range(1000):
        q.put(ev(i, 50))
    b = q.get(300, 0.1)
    q.ack(b[:100])  # 100 acknowledged; 200 in flight when the process "dies"
    q.release()
    stats = Counters()
    q2 = disk(tmp_path, stats)
    assert q2.pending() == 900
    assert stats["queue.disk.restored"] == 900
    assert drain(q2) == list(range(100, 1000))
    q2.release()
    q3 = disk(tmp_path)
    assert q3.pending() == 0
    q3.release()


def test_out_of_order_acks_move_the_frontier_only_over_a_contiguous_prefix(tmp_path: Path) -> None:
    q = disk(tmp_path)
    for i in range(30):
        q.put(ev(i))
    _a, b, c = q.get(10, 0.1), q.get(10, 0.1), q.get(10, 0.1)
    q.ack(b)
    q.ack(c)
    assert q.pending() == 10
    q.release()
    q2 = disk(tmp_path)
    # b and c were acknowledged but lie beyond the frontier: resent (at-least-once).
    assert drain(q2) == list(range(30))
    q2.release()


def test_acknowledged_segments_are_deleted_and_space_is_reused(tmp_path: Path) -> None:
    q = disk(tmp_path, max_size=200_000, segment_size=64 * 1024)
    for i in range(2000):
        assert q.put(ev(i, 300))  # ~660 KB through a 200 KB queue
        if i % 100 == 99:
            drain(q)
    drain(q)
    segs = [p for p in tmp_path.iterdir() if p.suffix == ".seg"]
    assert sum(p.stat().st_size for p in segs) == 0
    q.release()


def test_torn_record_is_cut_off_and_counted(tmp_path: Path) -> None:
    q = disk(tmp_path)
    for i in range(10):
        q.put(ev(i))
    q.release()
    seg = max(p for p in tmp_path.iterdir() if p.suffix == ".seg")
    data = seg.read_bytes()
    seg.write_bytes(data[:-5])  # the last record was half written
    stats = Counters()
    q2 = disk(tmp_path, stats)
    assert stats["queue.disk.corrupt_bytes"] > 0
    assert drain(q2) == list(range(9))
    q2.release()


def test_too_large_event_is_dropped_and_counted(tmp_path: Path) -> None:
    stats = Counters()
    q = disk(tmp_path, stats, max_size=100_000)
    assert not q.put(ev(1, 200_000))
    assert stats["queue.dropped_too_large"] == 1
    q.release()


def test_one_process_per_queue_directory(tmp_path: Path) -> None:
    q = disk(tmp_path)
    with pytest.raises(DiskQueueError, match="in use"):
        disk(tmp_path)
    q.release()
    disk(tmp_path).release()


def test_default_directory_is_under_path_data(tmp_path: Path) -> None:
    q = DiskQueue(DiskQueueSettings(max_size=1 << 20), tmp_path)
    q.put(ev(1))
    assert (tmp_path / "diskqueue").is_dir()
    assert any(p.suffix == ".seg" for p in (tmp_path / "diskqueue").iterdir())
    q.release()
    assert os.path.exists(tmp_path / "diskqueue" / "lock")
