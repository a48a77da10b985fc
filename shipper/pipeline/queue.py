"""The bounded queue between the publisher and the outputs.

An event leaves the queue only when the output acknowledges it: ``get`` hands out a
batch (still counted against the capacity), ``ack`` releases it, ``nack`` puts the
unacknowledged rest back at the *front*. A capture-file replay blocks when the queue is
full (nothing dropped); live capture drops and counts instead.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from protocols.stats import Counters

#: With ``flush.timeout: 0s``, how long ``get`` waits on an empty queue before it returns
#: nothing (its caller then checks whether to stop, and asks again).
IDLE_WAIT = 1.0


class Entry:
    """One queued event; ``attempts`` counts failed sends for ``max_retries``."""

    __slots__ = ("attempts", "event", "key")

    def __init__(self, event: Mapping[str, Any], key: Any = None) -> None:
        self.event = event
        self.attempts = 0
        self.key = key


class QueueClosed(Exception):
    pass


class StopEvent(threading.Event):
    """The agent's stop flag (SIGINT, SIGTERM, an internal error), remembering when it was
    first set: the shutdown timeout counts from there."""

    at: float | None = None

    def set(self) -> None:
        if self.at is None:
            self.at = time.monotonic()
        super().set()

    def left(self, grace: float) -> float:
        """Seconds of ``grace`` left since the stop (all of it before one)."""
        if self.at is None:
            return grace
        return max(0.0, grace - (time.monotonic() - self.at))


class Queue:
    """Interface shared by the memory and disk queues.

    ``abort``: once it is set (the agent is stopping), a put waiting for room goes on
    waiting while the output drains, but gives up ``abort_grace`` seconds (the shutdown
    timeout) after the stop; what it could not enqueue is counted in
    ``queue.dropped_stopping`` (a drop for good). Without it a replay stopped while its
    output was unreachable waited for room forever."""

    abort: StopEvent | None = None
    abort_grace: float = 0.0

    def _abandoned(self) -> bool:
        """Called while a put waits for room: has the stopping agent's grace run out?"""
        a = self.abort
        return a is not None and a.is_set() and a.left(self.abort_grace) <= 0.0

    def _room_wait(self, step: float) -> float:
        """How long a put waiting for room sleeps before it looks again: ``step``, or less
        when a stopping agent's grace ends sooner."""
        a = self.abort
        if a is None or not a.is_set():
            return step
        return max(0.01, min(step, a.left(self.abort_grace)))

    def put(self, event: Mapping[str, Any], block: bool = True, timeout: float | None = None) -> bool:
        raise NotImplementedError

    def put_many(self, events: Sequence[Mapping[str, Any]], block: bool = True) -> int:
        """Enqueue several events; returns how many were accepted (the rest were dropped)."""
        n = 0
        for e in events:
            if self.put(e, block):
                n += 1
        return n

    def get(self, max_events: int, timeout: float | None = None) -> list[Entry]:
        raise NotImplementedError

    def ack(self, entries: list[Entry]) -> None:
        raise NotImplementedError

    def nack(self, entries: list[Entry]) -> None:
        raise NotImplementedError

    def drop(self, entries: list[Entry], reason: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        raise NotImplementedError

    def pending(self) -> int:
        """Events not yet acknowledged (queued + in flight)."""
        raise NotImplementedError

    def wait_empty(self, timeout: float | None = None) -> bool:
        raise NotImplementedError


class MemQueue(Queue):
    def __init__(
        self,
        max_events: int = 3200,
        flush_min_events: int = 1600,
        flush_timeout: float = 10.0,
        stats: Counters | None = None,
    ) -> None:
        self.max_events = max(1, max_events)
        self.flush_min = max(0, min(flush_min_events, self.max_events))
        self.flush_timeout = flush_timeout
        self.stats = stats if stats is not None else Counters()
        self._items: deque[Entry] = deque()
        self._inflight = 0
        self._closed = False
        self._getters = 0  # consumers waiting in get(): notify only when someone listens
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._not_empty = threading.Condition(self._lock)
        self._empty = threading.Condition(self._lock)
        #: How many queued events a waiting ``get`` needs before it is worth waking up.
        self._want = 1

    def put(self, event: Mapping[str, Any], block: bool = True, timeout: float | None = None) -> bool:
        with self._lock:
            if self._closed:
                raise QueueClosed("queue is closed")
            if len(self._items) + self._inflight >= self.max_events:
                if not block:
                    self.stats.incr("queue.dropped_full")
                    return False
                deadline = None if timeout is None else time.monotonic() + timeout
                while len(self._items) + self._inflight >= self.max_events and not self._closed:
                    if self._abandoned():
                        self.stats.incr("queue.dropped_stopping")
                        return False
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        self.stats.incr("queue.dropped_full")
                        return False
                    self._not_full.wait(self._room_wait(1.0 if remaining is None else min(remaining, 1.0)))
                if self._closed:
                    raise QueueClosed("queue is closed")
            self._items.append(Entry(event))
            self.stats.incr("queue.published")
            if self._wakes_getter():
                self._not_empty.notify()
            return True

    def put_many(self, events: Sequence[Mapping[str, Any]], block: bool = True) -> int:
        with self._lock:
            if self._closed:
                raise QueueClosed("queue is closed")
            items = self._items
            n = 0
            for event in events:
                if len(items) + self._inflight >= self.max_events:
                    if not block:
                        self.stats.incr("queue.dropped_full", len(events) - n)
                        break
                    while len(items) + self._inflight >= self.max_events and not self._closed:
                        if self._abandoned():
                            break
                        if self._getters:
                            self._not_empty.notify()
                        self._not_full.wait(self._room_wait(1.0))
                    if self._closed:
                        raise QueueClosed("queue is closed")
                    if len(items) + self._inflight >= self.max_events:  # stopping
                        self.stats.incr("queue.dropped_stopping", len(events) - n)
                        break
                items.append(Entry(event))
                n += 1
            self.stats.incr("queue.published", n)
            if self._wakes_getter():
                self._not_empty.notify()
            return n

    def _wakes_getter(self) -> bool:
        """Is a waiting consumer's batch ready (or the queue full)? Only then wake it."""
        n = len(self._items)
        return bool(self._getters) and (n >= self._want or n + self._inflight >= self.max_events)

    def get(self, max_events: int, timeout: float | None = None) -> list[Entry]:
        """Wait for ``flush.min_events`` (or ``flush.timeout``, or close); take up to ``max_events``."""
        with self._lock:
            wait = self.flush_timeout if timeout is None else timeout
            # flush.timeout 0s: a batch goes as soon as there is one event, but an empty
            # queue is still waited on (returning at once made the consumer spin).
            eager = wait <= 0
            deadline = time.monotonic() + (IDLE_WAIT if eager else wait)
            while not self._closed:
                # Enough for a batch: flush.min_events, but never more than the batch size,
                # nor more than can ever be queued while other batches are in flight (else a
                # full queue would stall every consumer for flush.timeout).
                want = 1 if eager else max(1, self.flush_min)
                if max_events > 0:
                    want = min(want, max_events)
                want = max(1, min(want, self.max_events - self._inflight))
                if len(self._items) >= want:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._want = want
                self._getters += 1
                try:
                    self._not_empty.wait(remaining)
                finally:
                    self._getters -= 1
            if not self._items:
                return []
            n = min(len(self._items), max_events if max_events > 0 else len(self._items))
            batch = [self._items.popleft() for _ in range(n)]
            self._inflight += n
            return batch

    def ack(self, entries: list[Entry]) -> None:
        if not entries:
            return
        with self._lock:
            self._inflight -= len(entries)
            self.stats.incr("queue.acked", len(entries))
            self._not_full.notify_all()
            if not self._items and not self._inflight:
                self._empty.notify_all()

    def drop(self, entries: list[Entry], reason: str) -> None:
        """Give up on entries (``max_retries`` exhausted): counted, never silent."""
        if not entries:
            return
        with self._lock:
            self._inflight -= len(entries)
            self.stats.incr(f"queue.dropped_{reason}", len(entries))
            self._not_full.notify_all()
            if not self._items and not self._inflight:
                self._empty.notify_all()

    def nack(self, entries: list[Entry]) -> None:
        if not entries:
            return
        with self._lock:
            self._inflight -= len(entries)
            self._items.extendleft(reversed(entries))
            self.stats.incr("queue.retried", len(entries))
            self._not_empty.notify()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def pending(self) -> int:
        with self._lock:
            return len(self._items) + self._inflight

    def wait_empty(self, timeout: float | None = None) -> bool:
        with self._lock:
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._items or self._inflight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._empty.wait(remaining if remaining is not None else 1.0)
            return True
