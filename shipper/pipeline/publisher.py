"""Publisher → queue → output worker.

The packet loop (any thread) calls ``Pipeline.publish``; the output runs in its own
thread with an asyncio loop, with ``output.concurrency`` consumers pulling batches.

At-least-once, with libbeat's retry rules (see :class:`shipper.outputs.base.Output`):
entries are acknowledged only after the output says so; the rest go back to the front of
the queue. A batch the output could not even send (:class:`ConnectError`: the receiver
is down or late) is cancelled without charging a retry, as libbeat's
``netClientWorker`` cancels batches while it reconnects; a batch that failed in flight
or was refused is charged one retry and dropped (counted) after ``max_retries``.

One bad event never stops the run: an event the envelope or the JSON encoder cannot
handle is dropped and counted (``publisher.dropped_<reason>``). An output that fails in
a way nobody foresaw (an exception that is not an :class:`OutputError`) stops the
pipeline: ``fatal`` says why, the queue is closed, ``on_fatal`` tells the packet loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from protocols.stats import Counters
from shipper.outputs.backoff import Backoff
from shipper.outputs.base import (
    ConnectError,
    EncodedEvent,
    EventEncodingError,
    Output,
    OutputClosed,
    OutputError,
    dumps_event,
)
from shipper.pipeline.envelope import Envelope, EventFiltered, EventRejected
from shipper.pipeline.queue import Entry, Queue, QueueClosed

#: Events a replay at top speed hands to the queue at once (``Beat._loop``, the worker
#: processes' merge): each hand-over wakes the output's thread, and with
#: ``flush.timeout: 0s`` one wake per few dozen events cost a fifth of the CPU.
REPLAY_COALESCE = 512


class Coalesced:
    """``publish`` called with ``size`` events or more at a time (``add``), and with what is
    left when ``flush`` is called. ``size`` 1: every ``add`` publishes at once."""

    __slots__ = ("pending", "publish", "size")

    def __init__(self, publish: Callable[[list[Any]], Any], size: int) -> None:
        self.publish = publish
        self.size = size
        self.pending: list[Any] = []

    def add(self, events: list[Any]) -> None:
        self.pending += events
        if len(self.pending) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            self.publish(batch)


log = logging.getLogger("publisher")
publish_log = logging.getLogger("publish")

#: Dropped events of one reason logged individually before the counters take over.
LOGGED_DROPS = 5


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
        on_fatal: Callable[[], None] | None = None,
        enrich: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.output = output
        self.queue = queue
        self.envelope = envelope
        self.stats = stats
        self.live = live
        self.ignore_outgoing = ignore_outgoing
        if ignore_outgoing:
            envelope.ignore_outgoing = True  # applied by the envelope, before any processor
        self.backoff = backoff or Backoff(1.0, 60.0)
        self.on_fatal = on_fatal
        #: Runs on each protocol event before the envelope (packetbeat.procs).
        self.enrich = enrich
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._debug = publish_log.isEnabledFor(logging.DEBUG)
        self._pipeline_debug = log.isEnabledFor(logging.DEBUG)
        self._drop_logged: dict[str, int] = {}
        #: Encoded ``@metadata`` of the envelope's shared objects, filled as they appear.
        self._heads: dict[int, bytes] = {}
        self._shared_meta = envelope.shared_metadata
        #: Why the pipeline stopped on its own (the output failed); None while it works.
        self.fatal: str | None = None
        #: The exception behind ``fatal`` (for a traceback under ``-d '*'``).
        self.fatal_exc: BaseException | None = None
        #: The output's destination went away (stdout closed): stop quietly.
        self.closed_by_peer = False
        #: Set when the pipeline stops on its own (``fatal`` or ``closed_by_peer``).
        self.failed = threading.Event()

    # -- producer side -----------------------------------------------------------------

    def _prepare(self, evt: Any) -> EncodedEvent | None:
        """Envelope and encode one protocol event; None if it was dropped (and counted).

        Nothing an event carries can raise out of here: the run never ends over one event.
        """
        try:
            if (
                not isinstance(evt, dict)
                or evt.get("@timestamp") is None
                or not isinstance(evt.get("type"), str)
            ):
                self.stats.incr("publisher.dropped_invalid")
                return None
            if self.enrich is not None:
                self.enrich(evt)
            evt = self.envelope.apply(evt)
            if self._debug:
                publish_log.debug("Publish event: %s", dumps_event(evt).decode())
            return EncodedEvent.from_event(evt, self._heads, self._shared_meta)
        except EventFiltered as exc:  # on purpose (ignore_outgoing, a processor): counted only
            self.stats.incr(f"publisher.{exc.reason}")
        except EventRejected as exc:
            self._dropped(exc.reason, exc, evt)
        except EventEncodingError as exc:
            self._dropped("unencodable", exc, evt)
        except Exception as exc:  # a bug in the envelope for this one event: count it, go on
            self._dropped("failed", exc, evt)
        return None

    def _dropped(self, reason: str, exc: BaseException, evt: Any) -> None:
        self.stats.incr(f"publisher.dropped_{reason}")
        n = self._drop_logged.get(reason, 0)
        if n < LOGGED_DROPS:
            self._drop_logged[reason] = n + 1
            kind = evt.get("type") if isinstance(evt, dict) else None
            more = " (further drops are only counted)" if n + 1 == LOGGED_DROPS else ""
            log.warning(
                "dropping a %s event (publisher.dropped_%s): %s%s", kind or "protocol", reason, exc, more
            )

    def publish(self, evt: dict[str, Any]) -> bool:
        """Envelope and enqueue one protocol event; False if it was dropped (and counted)."""
        ready = self._prepare(evt)
        if ready is None:
            return False
        try:
            ok = self.queue.put(ready, block=not self.live)
        except QueueClosed:
            self.stats.incr("publisher.dropped_closed")
            return False
        if ok:
            self.stats.incr("publisher.published")
        return ok

    def publish_all(self, events: list[dict[str, Any]]) -> int:
        """Envelope and enqueue a list of protocol events with one queue operation."""
        prepare = self._prepare
        ready = [e for e in map(prepare, events) if e is not None]
        if not ready:
            return 0
        try:
            n = self.queue.put_many(ready, block=not self.live)
        except QueueClosed:
            self.stats.incr("publisher.dropped_closed", len(ready))
            return 0
        self.stats.incr("publisher.published", n)
        return n

    def publish_encoded(self, ready: list[EncodedEvent], block: bool | None = None) -> int:
        """Enqueue events already enveloped and encoded elsewhere (a worker process ran
        ``_prepare`` on them) with one queue operation; ``block`` overrides the live rule."""
        if not ready:
            return 0
        try:
            n = self.queue.put_many(ready, block=not self.live if block is None else block)
        except QueueClosed:
            self.stats.incr("publisher.dropped_closed", len(ready))
            return 0
        self.stats.incr("publisher.published", n)
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
        except Exception as exc:  # the consumer machinery itself broke: say so, don't hang
            self._fail(f"internal error in the output worker: {_describe(exc)}", exc)
        finally:
            try:
                loop.run_until_complete(asyncio.wait_for(self.output.close(), 10))
            except Exception as exc:
                log.warning("closing output %s: %s", self.output.name, _describe(exc))
            loop.close()
            self._done.set()

    def _fail(self, message: str | None, exc: BaseException | None) -> None:
        """Stop on our own: the queue refuses new events and the packet loop is told."""
        if self.failed.is_set():
            return
        if message is None:
            self.closed_by_peer = True
        else:
            self.fatal, self.fatal_exc = message, exc
            log.error("%s", message, exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
        self._stop.set()
        self.failed.set()
        self.queue.close()
        if self.on_fatal is not None:
            self.on_fatal()

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
        stats = self.stats
        size = out.batch_size or 2048
        # Each consumer backs off on its own, like each libbeat client (outputs/backoff.go):
        # sharing one policy would double the delay per failure with two consumers.
        backoff = self.backoff if idx == 0 else self.backoff.clone()
        while not self._stop.is_set():
            try:
                entries = await loop.run_in_executor(pool, q.get, size, 0.5 if q.closed else None)
            except RuntimeError:  # the executor is gone: the process is shutting down
                return
            if not entries:
                if q.closed and q.pending() == 0:
                    return
                if q.closed:
                    await asyncio.sleep(0.02)
                continue
            events = [e.event for e in entries]
            err: BaseException | None = None
            stats.incr("output.batches")
            stats.incr("output.events", len(events))
            try:
                acked = await out.publish(events)
            except ConnectError as exc:
                # Nothing was sent: the receiver is down, late or unreachable. libbeat
                # cancels the batch without touching its retry budget
                # (publisher/pipeline/client_worker.go: batch.Cancelled() while not
                # connected; ttl_batch.go: Cancelled → retry(decreaseTTL=false)).
                q.nack(entries)
                stats.incr("output.cancelled_batches")
                stats.incr("output.cancelled_events", len(entries))
                delay = backoff.next()
                log.warning(
                    "cannot reach %s: %s (retrying in %.1fs; %d events waiting, no retry charged)",
                    out.describe(),
                    exc,
                    delay,
                    q.pending(),
                )
                await self._sleep(delay)
                continue
            except OutputClosed as exc:
                q.nack(entries)
                log.info("output %s closed: %s", out.name, exc)
                self._fail(None, exc)
                return
            except OutputError as exc:
                acked, err = exc.acked, exc
                if exc.unacked:
                    stats.incr("output.unacked", exc.unacked)
                if not exc.retriable:
                    stats.incr("output.fatal_errors")
            except OSError as exc:  # a network error the output did not wrap: in flight, charged
                acked, err = 0, exc
            except Exception as exc:
                # Not a failure any output foresees: a bug. Retrying would repeat it (or
                # spin), so stop and say so; what was acknowledged stays acknowledged.
                q.nack(entries)
                self._fail(f"output {out.name} failed with an internal error: {_describe(exc)}", exc)
                return
            if not isinstance(acked, int) or isinstance(acked, bool):
                q.nack(entries)
                self._fail(f"output {out.name} returned {acked!r} instead of a count", None)
                return
            acked = max(0, min(acked, len(entries)))
            q.ack(entries[:acked])
            stats.incr("output.acked", acked)
            if self._pipeline_debug:  # -d publisher
                log.debug("%s: %d of a batch of %d events acknowledged", out.name, acked, len(entries))
            rest = entries[acked:]
            if not rest:
                backoff.reset()
                continue
            # The receiver had the batch and did not take all of it (an in-flight
            # connection loss, 429/5xx answers): libbeat's batch.RetryEvents, which
            # charges one retry (ttl_batch.go reduceTTL; consumer.go drops at ttl 0).
            stats.incr("output.failed_batches")
            stats.incr("output.failed_events", len(rest))
            if err is not None:
                log.warning("failed to publish %d events to %s: %s", len(rest), out.describe(), err)
            self._charge(rest)
            if acked == 0:
                await self._sleep(backoff.next())
            else:
                backoff.reset()

    def _charge(self, rest: list[Entry]) -> None:
        out, q = self.output, self.queue
        retry = []
        give_up = []
        for e in rest:
            e.attempts += 1
            if out.max_retries >= 0 and e.attempts > out.max_retries:
                give_up.append(e)
            else:
                retry.append(e)
        if give_up:
            log.error(
                "dropping %d events after %d failed attempts (max_retries %d; queue.dropped_max_retries)",
                len(give_up),
                out.max_retries + 1,
                out.max_retries,
            )
            q.drop(give_up, "max_retries")
        q.nack(retry)

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
        # Once the pipeline has stopped on its own nobody will drain the queue: don't wait.
        drained = self.queue.wait_empty(0.0 if self.failed.is_set() else timeout)
        self._stop.set()
        if not drained:
            self._abandon_in_flight()
        if self._thread is not None:
            self._thread.join(timeout=10)
        left = self.queue.pending()
        if left:
            self.stats.incr("publisher.unacked_at_shutdown", left)
            if not self.closed_by_peer:
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


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
