"""Publisher → queue → output worker.

The packet loop (any thread) calls ``Pipeline.publish``; the output runs in its own
thread with an asyncio loop, with ``output.concurrency`` consumers pulling batches.
At-least-once: entries are acknowledged only after the output says so; the rest go back
to the front of the queue and are retried after a back-off.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from typing import Any

import orjson

from protocols.stats import Counters
from shipper.backoff import Backoff
from shipper.envelope import Envelope
from shipper.outputs.base import EncodedEvent, Output, OutputError
from shipper.queue import Queue, QueueClosed

log = logging.getLogger("publisher")
publish_log = logging.getLogger("publish")


class Pipeline:
    def __init__(
        self,
        output: Output,
        queue: Queue,
        envelope: Envelope,
        stats: Counters,
        *,
        live: bool = False,
        ignore_outgoing: bool = False,
        backoff: Backoff | None = None,
    ) -> None:
        self.output = output
        self.queue = queue
        self.envelope = envelope
        self.stats = stats
        self.live = live
        self.ignore_outgoing = ignore_outgoing
        self.backoff = backoff or Backoff(1.0, 60.0)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._debug = publish_log.isEnabledFor(logging.DEBUG)
        self.fatal: str | None = None

    # -- producer side -----------------------------------------------------------------

    def publish(self, evt: dict[str, Any]) -> bool:
        """Envelope and enqueue one protocol event; False if it was dropped (and counted)."""
        stats = self.stats
        ts = evt.get("@timestamp")
        if not ts or not isinstance(evt.get("type"), str):
            stats.incr("publisher.dropped_invalid")
            return False
        self.envelope.apply(evt)
        if self.ignore_outgoing and evt.get("network", {}).get("direction") == "egress":
            stats.incr("publisher.dropped_outgoing")
            return False
        if self._debug:
            publish_log.debug("Publish event: %s", orjson.dumps(evt, option=orjson.OPT_SORT_KEYS).decode())
        try:
            ok = self.queue.put(EncodedEvent.from_event(evt), block=not self.live)
        except QueueClosed:
            stats.incr("publisher.dropped_closed")
            return False
        if ok:
            stats.incr("publisher.published")
        return ok

    def publish_all(self, events: list[dict[str, Any]]) -> int:
        """Envelope and enqueue a list of protocol events with one queue operation."""
        stats = self.stats
        ready = []
        apply = self.envelope.apply
        for evt in events:
            ts = evt.get("@timestamp")
            if not ts or not isinstance(evt.get("type"), str):
                stats.incr("publisher.dropped_invalid")
                continue
            apply(evt)
            if self.ignore_outgoing and evt["network"].get("direction") == "egress":
                stats.incr("publisher.dropped_outgoing")
                continue
            if self._debug:
                publish_log.debug(
                    "Publish event: %s", orjson.dumps(evt, option=orjson.OPT_SORT_KEYS).decode()
                )
            ready.append(EncodedEvent.from_event(evt))
        if not ready:
            return 0
        try:
            n = self.queue.put_many(ready, block=not self.live)
        except QueueClosed:
            stats.incr("publisher.dropped_closed", len(ready))
            return 0
        stats.incr("publisher.published", n)
        return n

    # -- consumer side -----------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="output", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._main_task = loop.create_task(self._main())
        try:
            loop.run_until_complete(self._main_task)
        except asyncio.CancelledError:
            pass  # close() timed out waiting for a stuck output
        except Exception as exc:  # the output crashed: say so, don't hang the producer
            self.fatal = f"output {self.output.name} failed: {exc!r}"
            log.error("%s", self.fatal)
            self.queue.close()
        finally:
            try:
                loop.run_until_complete(self.output.close())
            except Exception as exc:
                log.warning("closing output %s: %r", self.output.name, exc)
            loop.close()
            self._done.set()

    async def _main(self) -> None:
        n = max(1, self.output.concurrency)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=n, thread_name_prefix="queue-get")
        try:
            await asyncio.gather(*(self._consume(i, pool) for i in range(n)))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    async def _consume(self, idx: int, pool: concurrent.futures.Executor) -> None:
        loop = asyncio.get_running_loop()
        out = self.output
        q = self.queue
        size = out.batch_size or 2048
        while not self._stop.is_set():
            entries = await loop.run_in_executor(pool, q.get, size, 0.5 if q.closed else None)
            if not entries:
                if q.closed and q.pending() == 0:
                    return
                if q.closed:
                    await asyncio.sleep(0.02)
                continue
            events = [e.event for e in entries]
            err: BaseException | None = None
            try:
                acked = await out.publish(events)
            except OutputError as exc:
                acked, err = 0, exc
                if not exc.retriable:
                    self.stats.incr("output.fatal_errors")
            except Exception as exc:
                acked, err = 0, exc
            acked = max(0, min(acked, len(entries)))
            q.ack(entries[:acked])
            self.stats.incr("output.acked", acked)
            rest = entries[acked:]
            if not rest:
                self.backoff.reset()
                continue
            self.stats.incr("output.failed_batches")
            if err is not None:
                log.warning("failed to publish %d events to %s: %s", len(rest), out.describe(), err)
            retry = []
            give_up = []
            for e in rest:
                e.attempts += 1
                if out.max_retries >= 0 and e.attempts > out.max_retries:
                    give_up.append(e)
                else:
                    retry.append(e)
            if give_up:
                log.error("dropping %d events after %d retries", len(give_up), out.max_retries)
                q.drop(give_up, "max_retries")
            q.nack(retry)
            if acked == 0:
                delay = self.backoff.next()
                await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        end = time.monotonic() + delay
        while not self._stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.1))

    # -- shutdown ----------------------------------------------------------------------

    def close(self, timeout: float | None) -> bool:
        """Stop accepting events and drain. ``timeout`` None waits until everything is acked.

        Returns True if everything was acknowledged.
        """
        self.queue.close()
        drained = self.queue.wait_empty(timeout)
        self._stop.set()
        if not drained:
            self._abandon_in_flight()
        if self._thread is not None:
            self._thread.join(timeout=10)
        left = self.queue.pending()
        if left:
            self.stats.incr("publisher.unacked_at_shutdown", left)
            log.warning("%d events were not acknowledged before shutdown", left)
        return drained and not left

    def _abandon_in_flight(self) -> None:
        """The drain timed out: cancel a publish that may never return (its events stay
        unacknowledged and are counted), so shutdown honours the timeout."""
        loop, task = self._loop, self._main_task
        if loop is None or task is None:
            return
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:  # the loop has already finished
            pass
