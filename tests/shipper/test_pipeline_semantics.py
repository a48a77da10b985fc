"""Queue and pipeline semantics against fake outputs: replay blocks (nothing dropped), live
capture drops and counts, nacked events go back to the front in order, retries deliver
everything exactly once, ``max_retries`` drops are counted, ``close()`` drains."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from typing import Any

import pytest

from protocols.stats import Counters
from shipper.outputs.backoff import Backoff
from shipper.outputs.base import ConnectError, Output, OutputError
from shipper.pipeline.envelope import Envelope
from shipper.pipeline.publisher import Pipeline
from shipper.pipeline.queue import MemQueue, QueueClosed

T0 = 1_700_000_000_000_000_000


def proto_event(i: int) -> dict[str, Any]:
    """A minimal protocol event as a decoder hands it over (capture time in ns)."""
    return {
        "@timestamp": T0 + i * 1_000_000,
        "type": "http",
        "status": "OK",
        "seq": i,
        "event": {"start": T0 + i * 1_000_000, "end": T0 + i * 1_000_000 + 500},
        "network": {"transport": "tcp", "protocol": "http"},
        "source": {"ip": "127.0.0.1", "port": 40000 + i, "bytes": 10},
        "destination": {"ip": "127.0.0.1", "port": 8080, "bytes": 20},
    }


def envelope() -> Envelope:
    return Envelope(beat_name="test", local_ips=["127.0.0.1"])


def fast_backoff() -> Backoff:
    return Backoff(0.001, 0.005, jitter=False)


class RecordingOutput(Output):
    """Acknowledges everything; remembers every event it was given."""

    name = "fake"

    def __init__(self, batch_size: int = 16) -> None:
        self.batch_size = batch_size
        self.received: list[int] = []
        self.calls = 0
        self.closed = False

    async def publish(self, events: list[dict[str, Any]]) -> int:
        self.calls += 1
        self.received += [e["seq"] for e in events]
        return len(events)

    async def close(self) -> None:
        self.closed = True


class GatedOutput(RecordingOutput):
    """Blocks every publish until ``gate`` is set (a stalled Logstash)."""

    def __init__(self, batch_size: int = 16) -> None:
        super().__init__(batch_size)
        self.gate = threading.Event()
        self.entered = threading.Event()

    async def publish(self, events: list[dict[str, Any]]) -> int:
        self.entered.set()
        while not self.gate.is_set():
            await asyncio.sleep(0.005)
        return await super().publish(events)


class FlakyOutput(RecordingOutput):
    """Fails the first ``failures`` calls (raising, or acking only part of the batch)."""

    def __init__(self, failures: int, partial: bool = False, batch_size: int = 7) -> None:
        super().__init__(batch_size)
        self.failures = failures
        self.partial = partial
        self.attempted: list[list[int]] = []

    async def publish(self, events: list[dict[str, Any]]) -> int:
        self.attempted.append([e["seq"] for e in events])
        if self.failures > 0:
            self.failures -= 1
            if self.partial and len(events) > 1:
                # The first half arrived, the connection broke before the rest.
                half = len(events) // 2
                self.received += [e["seq"] for e in events[:half]]
                return half
            raise OutputError("connection reset by peer", retriable=True)
        return await super().publish(events)


class AlwaysFailing(RecordingOutput):
    def __init__(self, max_retries: int) -> None:
        super().__init__(batch_size=5)
        self.max_retries = max_retries
        self.attempts = 0

    async def publish(self, events: list[dict[str, Any]]) -> int:
        self.attempts += 1
        raise OutputError("503 service unavailable")


def seqs(entries: list[Any]) -> list[int]:
    return [e.event["seq"] for e in entries]


# -- MemQueue ------------------------------------------------------------------------------


def test_queue_blocking_put_waits_for_room_and_drops_nothing() -> None:
    stats = Counters()
    q = MemQueue(max_events=3, flush_min_events=0, flush_timeout=0.01, stats=stats)
    for i in range(3):
        assert q.put({"seq": i})
    done = threading.Event()

    def producer() -> None:
        q.put({"seq": 3})  # blocks: the queue is full
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    assert not done.wait(0.2), "a blocking put returned while the queue was full"
    batch = q.get(2, 0.1)
    assert seqs(batch) == [0, 1]
    # Handed out but not acknowledged: still counted against the capacity.
    assert not done.wait(0.1)
    q.ack(batch)
    assert done.wait(2), "the producer was not woken when room was made"
    t.join()
    rest = q.get(10, 0.1)
    assert seqs(rest) == [2, 3]
    q.ack(rest)
    assert stats.get("queue.dropped_full", 0) == 0
    assert stats["queue.published"] == 4
    assert stats["queue.acked"] == 4
    assert q.pending() == 0


def test_queue_non_blocking_put_drops_when_full_and_counts() -> None:
    stats = Counters()
    q = MemQueue(max_events=4, flush_min_events=0, stats=stats)
    accepted = [q.put({"seq": i}, block=False) for i in range(10)]
    assert accepted == [True] * 4 + [False] * 6
    assert stats["queue.dropped_full"] == 6
    assert q.pending() == 4
    assert seqs(q.get(10, 0.1)) == [0, 1, 2, 3]


def test_queue_nack_puts_the_rest_back_at_the_front_in_order() -> None:
    stats = Counters()
    q = MemQueue(max_events=100, flush_min_events=0, stats=stats)
    for i in range(10):
        q.put({"seq": i})
    first = q.get(4, 0.1)
    assert seqs(first) == [0, 1, 2, 3]
    q.ack(first[:1])
    q.nack(first[1:])
    assert q.pending() == 9
    # Two more failures in a row keep the order too.
    again = q.get(5, 0.1)
    assert seqs(again) == [1, 2, 3, 4, 5]
    q.nack(again[2:])
    q.ack(again[:2])
    out: list[int] = []
    while q.pending():
        b = q.get(3, 0.1)
        out += seqs(b)
        q.ack(b)
    assert out == [3, 4, 5, 6, 7, 8, 9]
    assert stats["queue.retried"] == 3 + 3
    assert stats["queue.acked"] == 10


def test_queue_get_waits_for_flush_min_events_or_flush_timeout() -> None:
    q = MemQueue(max_events=100, flush_min_events=5, flush_timeout=0.3)
    q.put({"seq": 0})
    t0 = time.monotonic()
    batch = q.get(10)
    waited = time.monotonic() - t0
    assert seqs(batch) == [0]
    assert waited >= 0.25, "get() did not wait for flush.timeout with fewer than flush.min_events"
    q.ack(batch)
    for i in range(1, 6):
        q.put({"seq": i})
    t0 = time.monotonic()
    assert seqs(q.get(10)) == [1, 2, 3, 4, 5]
    assert time.monotonic() - t0 < 0.2, "get() waited although flush.min_events were queued"


def test_queue_close_rejects_new_events_but_hands_out_the_queued_ones() -> None:
    q = MemQueue(max_events=10, flush_min_events=0)
    q.put({"seq": 0})
    q.close()
    with pytest.raises(QueueClosed):
        q.put({"seq": 1})
    b = q.get(10, 0.1)
    assert seqs(b) == [0]
    q.ack(b)
    assert q.wait_empty(1)


# -- Pipeline ------------------------------------------------------------------------------


def test_replay_blocks_when_the_queue_is_full_and_delivers_everything_in_order() -> None:
    stats = Counters()
    out = GatedOutput(batch_size=4)
    q = MemQueue(max_events=8, flush_min_events=0, flush_timeout=0.01, stats=stats)
    p = Pipeline(out, q, envelope(), stats, live=False, backoff=fast_backoff())
    p.start()
    published = []

    def producer() -> None:
        for i in range(50):
            published.append(p.publish(proto_event(i)))

    t = threading.Thread(target=producer)
    t.start()
    assert out.entered.wait(2)
    time.sleep(0.2)
    # The output is stalled: the producer is parked on the full queue, nothing was dropped.
    assert t.is_alive()
    assert len(published) <= 8 + 1
    assert q.pending() <= 8
    assert stats.get("queue.dropped_full", 0) == 0
    out.gate.set()
    t.join(10)
    assert not t.is_alive()
    assert p.close(10)
    assert published == [True] * 50
    assert out.received == list(range(50))
    assert stats.get("queue.dropped_full", 0) == 0
    assert stats["publisher.published"] == 50
    assert stats["output.acked"] == 50


def test_live_mode_drops_when_full_and_counts_the_drops() -> None:
    stats = Counters()
    out = GatedOutput(batch_size=4)
    q = MemQueue(max_events=4, flush_min_events=0, flush_timeout=0.01, stats=stats)
    p = Pipeline(out, q, envelope(), stats, live=True, backoff=fast_backoff())
    p.start()
    t0 = time.monotonic()
    results = [p.publish(proto_event(i)) for i in range(20)]
    assert time.monotonic() - t0 < 1.0, "live publishing must never block on a full queue"
    assert results.count(True) == 4
    assert results[:4] == [True] * 4
    assert stats["queue.dropped_full"] == 16
    assert stats["publisher.published"] == 4
    out.gate.set()
    assert p.close(10)
    assert out.received == [0, 1, 2, 3]


def test_ignore_outgoing_drops_egress_events_and_counts_them() -> None:
    stats = Counters()
    out = RecordingOutput()
    q = MemQueue(max_events=10, flush_min_events=0, flush_timeout=0.01, stats=stats)
    env = Envelope(beat_name="test", local_ips=["192.0.2.10"])
    p = Pipeline(out, q, env, stats, ignore_outgoing=True, backoff=fast_backoff())
    p.start()
    outgoing = proto_event(0)
    outgoing["source"]["ip"], outgoing["destination"]["ip"] = "192.0.2.10", "198.51.100.7"
    incoming = proto_event(1)
    incoming["source"]["ip"], incoming["destination"]["ip"] = "198.51.100.7", "192.0.2.10"
    assert not p.publish(outgoing)
    assert p.publish(incoming)
    assert p.close(5)
    assert out.received == [1]
    assert stats["publisher.dropped_outgoing"] == 1


def test_invalid_events_are_dropped_and_counted() -> None:
    stats = Counters()
    out = RecordingOutput()
    p = Pipeline(out, MemQueue(10, 0, 0.01, stats), envelope(), stats, backoff=fast_backoff())
    p.start()
    no_ts = proto_event(0)
    del no_ts["@timestamp"]
    bad_type = proto_event(1)
    bad_type["type"] = 7
    assert not p.publish(no_ts)
    assert not p.publish(bad_type)
    assert p.publish(proto_event(2))
    assert p.close(5)
    assert out.received == [2]
    assert stats["publisher.dropped_invalid"] == 2


@pytest.mark.parametrize("partial", [False, True], ids=["errors", "partial-acks"])
def test_output_failing_n_times_then_succeeding_delivers_everything_exactly_once(partial: bool) -> None:
    stats = Counters()
    out = FlakyOutput(failures=4, partial=partial, batch_size=7)
    q = MemQueue(max_events=64, flush_min_events=0, flush_timeout=0.01, stats=stats)
    p = Pipeline(out, q, envelope(), stats, backoff=fast_backoff())
    p.start()
    for i in range(40):
        assert p.publish(proto_event(i))
    assert p.close(10)
    assert sorted(out.received) == list(range(40)), "lost or duplicated events"
    assert out.received == list(range(40)), "retried events were not resent first"
    # The failed batches really were retried (not skipped).
    assert len(out.attempted) > 40 // 7
    assert stats["output.acked"] == 40
    assert stats["queue.acked"] == 40
    assert stats["output.failed_batches"] == 4
    assert stats.get("queue.dropped_max_retries", 0) == 0
    assert out.closed


def test_max_retries_drops_are_counted_and_do_not_block_shutdown() -> None:
    stats = Counters()
    out = AlwaysFailing(max_retries=2)
    q = MemQueue(max_events=64, flush_min_events=0, flush_timeout=0.01, stats=stats)
    p = Pipeline(out, q, envelope(), stats, backoff=fast_backoff())
    p.start()
    for i in range(10):
        p.publish(proto_event(i))
    t0 = time.monotonic()
    p.close(10)
    assert time.monotonic() - t0 < 5
    assert stats["queue.dropped_max_retries"] == 10
    assert stats.get("output.acked", 0) == 0
    assert q.pending() == 0
    # Every batch was tried 1 + max_retries times before being dropped.
    assert out.attempts == 3 * (10 // 5)


def test_close_drains_everything_queued_before_returning() -> None:
    stats = Counters()

    class Slow(RecordingOutput):
        async def publish(self, events: list[dict[str, Any]]) -> int:
            await asyncio.sleep(0.01)
            return await super().publish(events)

    out = Slow(batch_size=10)
    q = MemQueue(max_events=1000, flush_min_events=500, flush_timeout=30, stats=stats)
    p = Pipeline(out, q, envelope(), stats, backoff=fast_backoff())
    p.start()
    for i in range(300):
        p.publish(proto_event(i))
    # Fewer than flush.min_events queued and a long flush.timeout: close() must not wait for it.
    t0 = time.monotonic()
    assert p.close(None) is True
    assert time.monotonic() - t0 < 10
    assert out.received == list(range(300))
    assert out.closed
    assert not p.publish(proto_event(300))
    assert stats["publisher.dropped_closed"] == 1


def test_close_with_a_stuck_output_gives_up_after_the_timeout_and_counts_the_rest() -> None:
    stats = Counters()
    out = GatedOutput(batch_size=5)
    q = MemQueue(max_events=100, flush_min_events=0, flush_timeout=0.01, stats=stats)
    p = Pipeline(out, q, envelope(), stats, backoff=fast_backoff())
    p.start()
    for i in range(12):
        p.publish(proto_event(i))
    assert out.entered.wait(2)
    t0 = time.monotonic()
    assert p.close(0.3) is False
    # The shutdown timeout is honoured: the stuck publish is abandoned, not waited for.
    assert time.monotonic() - t0 < 3
    assert stats["publisher.unacked_at_shutdown"] == 12
    assert out.closed
    assert out.received == []


def test_published_events_carry_the_envelope() -> None:
    stats = Counters()
    out = RecordingOutput()
    got: list[dict[str, Any]] = []

    class Keep(RecordingOutput):
        async def publish(self, events: list[dict[str, Any]]) -> int:
            got.extend(events)
            return len(events)

    p = Pipeline(Keep(), MemQueue(10, 0, 0.01, stats), envelope(), stats, backoff=fast_backoff())
    p.start()
    p.publish(proto_event(0))
    assert p.close(5)
    assert out.received == []
    (e,) = got
    assert e["@timestamp"] == "2023-11-14T22:13:20.000Z"
    assert e["@metadata"]["beat"] == "packetbeat"
    assert e["network"]["community_id"].startswith("1:")
    assert e["event"]["duration"] == 500


# -- the delivery contract: connection failures cost no retries ---------------------------------


class UnreachableFor(RecordingOutput):
    """The receiver cannot be reached for the first ``n`` attempts (down, or late)."""

    def __init__(self, n: int, max_retries: int) -> None:
        super().__init__(batch_size=5)
        self.n = n
        self.max_retries = max_retries

    async def publish(self, events: list[dict[str, Any]]) -> int:
        if self.n > 0:
            self.n -= 1
            raise ConnectError("dial 127.0.0.1:5044: connection refused")
        return await super().publish(events)


def test_connection_failures_cancel_the_batch_without_spending_its_retries() -> None:
    # A receiver down for 25 attempts with max_retries 1: libbeat cancels the batch while
    # it reconnects (client_worker.go) — nothing is dropped, however long it takes.
    stats = Counters()
    out = UnreachableFor(25, max_retries=1)
    q = MemQueue(max_events=64, flush_min_events=0, flush_timeout=0.01, stats=stats)
    p = Pipeline(out, q, envelope(), stats, backoff=fast_backoff())
    p.start()
    for i in range(20):
        assert p.publish(proto_event(i))
    assert p.close(10)
    assert out.received == list(range(20))
    assert stats["output.cancelled_batches"] == 25
    assert stats.get("output.failed_batches", 0) == 0
    assert not [k for k in stats if k.startswith("queue.dropped")]


def test_a_failure_in_flight_is_charged_and_the_acked_prefix_kept() -> None:
    # The connection broke after 2 of 5 events were acknowledged and 3 were written.
    class BreaksOnce(RecordingOutput):
        def __init__(self) -> None:
            super().__init__(batch_size=5)
            self.max_retries = 0
            self.broke = False

        async def publish(self, events: list[dict[str, Any]]) -> int:
            if not self.broke:
                self.broke = True
                self.received += [e["seq"] for e in events[:2]]
                raise OutputError("connection reset", acked=2, unacked=3)
            return await super().publish(events)

    stats = Counters()
    out = BreaksOnce()
    p = Pipeline(out, MemQueue(64, 5, 1, stats), envelope(), stats, backoff=fast_backoff())
    p.start()
    for i in range(5):
        p.publish(proto_event(i))
    p.close(10)
    # max_retries 0: the three unacknowledged events are dropped after their one attempt.
    assert out.received == [0, 1]
    assert stats["queue.dropped_max_retries"] == 3
    assert stats["output.unacked"] == 3
    assert stats["output.acked"] == 2


def test_an_unexpected_exception_in_an_output_stops_the_pipeline_cleanly() -> None:
    class Buggy(RecordingOutput):
        async def publish(self, events: list[dict[str, Any]]) -> int:
            if self.calls == 2:
                raise ZeroDivisionError("division by zero")
            return await super().publish(events)

    stats = Counters()
    told = threading.Event()
    out = Buggy(batch_size=4)
    q = MemQueue(64, 4, 0.05, stats)
    p = Pipeline(out, q, envelope(), stats, backoff=fast_backoff(), on_fatal=told.set)
    p.start()
    for i in range(12):
        p.publish(proto_event(i))
    assert told.wait(5)
    assert p.fatal == "output fake failed with an internal error: ZeroDivisionError: division by zero"
    t0 = time.monotonic()
    assert p.close(30) is False  # nobody drains a failed pipeline: no waiting for the timeout
    assert time.monotonic() - t0 < 5
    assert out.received == list(range(8))  # the two batches before the bug stay delivered
    assert stats["publisher.unacked_at_shutdown"] == 4
    with pytest.raises(QueueClosed):
        q.put(proto_event(12))


def test_one_bad_event_is_dropped_and_counted_never_the_run() -> None:
    stats = Counters()
    got: list[Any] = []

    class Keep(RecordingOutput):
        async def publish(self, events: list[Any]) -> int:
            got.extend(events)
            return len(events)

    p = Pipeline(Keep(), MemQueue(100, 0, 0.01, stats), envelope(), stats, backoff=fast_backoff())
    p.start()
    bad: list[Any] = []
    for mutate in (
        lambda e: e.update({"@timestamp": 10**30}),  # beyond year 9999
        lambda e: e.update({"@timestamp": -(10**20)}),  # before year 1
        lambda e: e["event"].update({"start": 2**200}),
        lambda e: e.update({"big": 2**70}),  # no 64-bit JSON form
        lambda e: e.update({"obj": object()}),
        lambda e: e.update({"deep": functools.reduce(lambda a, _: [a], range(300), [])}),
        lambda e: e.update({"network": "tcp"}),
        lambda e: e.update({"source": ["10.0.0.1"]}),
    ):
        e = proto_event(len(bad))
        mutate(e)
        bad.append(e)
    odd = proto_event(100)
    odd.update({"path": "/caf\udce9", "ratio": float("nan"), "keys": {1: "one"}})
    events = [proto_event(50), *bad, odd, "not an event", proto_event(51)]
    assert p.publish_all(events) == 3  # type: ignore[arg-type]
    assert p.close(5)
    assert [e["seq"] for e in got] == [50, 100, 51]
    repaired = got[1]
    # Invalid UTF-8 carried as a lone surrogate becomes U+FFFD (what Go's encoder writes).
    assert repaired["path"] == "/caf\ufffd"
    assert repaired["ratio"] is None and repaired["keys"] == {"1": "one"}
    assert stats["publisher.dropped_bad_timestamp"] == 3
    assert stats["publisher.dropped_unencodable"] == 3
    assert stats["publisher.dropped_invalid"] == 3
    assert stats["publisher.published"] == 3


def test_coalesced_hands_over_in_batches_and_the_rest_on_flush() -> None:
    from shipper.pipeline.publisher import Coalesced

    got: list[list[int]] = []
    c = Coalesced(got.append, 4)
    c.add([1, 2])
    c.add([3])
    assert got == []
    c.add([4, 5])
    assert got == [[1, 2, 3, 4, 5]]
    c.add([6])
    c.flush()
    c.flush()  # nothing left: no empty hand-over
    assert got == [[1, 2, 3, 4, 5], [6]]
    one = Coalesced(got.append, 1)
    one.add([7])
    assert got[-1] == [7]
