"""What a replay (``-I``) tells the person who started it.

* On a terminal, a progress line on stderr, redrawn at most ``REFRESH`` times a second by a
  thread that only reads counters the packet loop keeps anyway (the capture reader's
  packets and bytes, the pipeline's published and dropped events).
* Always, at the end, one summary line (packets, transactions by protocol, events
  published and failed, duration, rate, memory peak) and a hint for each port that carried
  much traffic no protocol claims.
* ``EXIT_DROPPED`` when events were dropped for good.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from operator import itemgetter
from typing import Any, TextIO

from protocols.unclaimed import PortTally
from shipper.agent.monitor import peak_rss

#: Exit status of a replay that finished but lost events for good (docs/replay.md).
EXIT_DROPPED = 3

#: Progress redraws per second, at most.
REFRESH = 4

#: A port gets a hint when it carried at least this many packets and this share of the file.
HINT_MIN_PACKETS = 10
HINT_MIN_SHARE = 0.05
MAX_HINTS = 3

#: Counters (pipeline and output stats) whose events are lost for good. Filtered events
#: (processors, ignore_outgoing) are not: they are dropped on purpose.
_DROP_PREFIXES = ("publisher.dropped_", "queue.dropped_", "output.dropped_", "output.kafka.events.dropped_")
_DROP_KEYS = ("output.elasticsearch.events.not_indexable", "publisher.unacked_at_shutdown")
#: Dropped on purpose (a processor's drop_event, ignore_outgoing): libbeat's "filtered".
FILTERED_KEYS = ("publisher.filtered", "publisher.dropped_outgoing")
_NOT_DROPS = frozenset(FILTERED_KEYS)

log = logging.getLogger("beat")

_type_of = itemgetter("type")

Publish = Callable[[list[dict[str, Any]]], Any]


def dropped_for_good(stats: dict[str, int]) -> int:
    n = sum(v for k, v in stats.items() if k.startswith(_DROP_PREFIXES) and k not in _NOT_DROPS)
    return n + sum(stats.get(k, 0) for k in _DROP_KEYS)


class _Reader:
    """What the progress thread reads from the current capture reader."""

    __slots__ = ("size", "stats")

    def __init__(self, stats: Any, size: int) -> None:
        self.stats = stats
        self.size = size


class ReplayReport:
    """One per ``run_file``. The replay loop calls ``reader()`` for each pass over the file,
    publishes through ``counting(publish)``, and ``finish()`` at the end."""

    def __init__(
        self,
        stats: dict[str, int],
        *,
        loops: int = 1,
        interactive: bool | None = None,
        stream: TextIO | None = None,
        enabled_protocols: frozenset[str] = frozenset(),
    ) -> None:
        self.stats = stats
        self.loops = loops
        self.stream = stream if stream is not None else sys.stderr
        if interactive is None:
            interactive = _isatty(self.stream) and os.environ.get("TERM") != "dumb"
        self.interactive = interactive
        self.enabled_protocols = enabled_protocols
        self.by_type: collections.Counter[str] = collections.Counter()
        self.unclaimed = PortTally()
        self.started = time.monotonic()
        self.ended = 0.0
        self._pass = 0
        self._done_packets = 0  # packets and bytes of the passes already finished
        self._done_bytes = 0
        self._current: _Reader | None = None
        self._pending_tally: PortTally | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False  # a progress line is on screen (log records clear it first)
        self._wrapped: list[tuple[logging.StreamHandler[Any], Any]] = []

    # -- hooks for the replay loop -------------------------------------------------------

    def reader(self, stats: Any, size: int, unclaimed: PortTally | None = None) -> None:
        """A new pass over the file starts (``stats``: the reader's ``ReaderStats``)."""
        with self._lock:
            self._end_pass()
            self._pass += 1
            self._current = _Reader(stats, size)
            self._pending_tally = unclaimed

    def counting(self, publish: Publish) -> Publish:
        """``publish`` that also counts events by ``type`` (one C-level pass per batch)."""
        update = self.by_type.update

        def publish_counted(events: list[dict[str, Any]]) -> Any:
            try:
                update(map(_type_of, events))
            except (KeyError, TypeError):  # the publisher counts and drops malformed events
                update(e.get("type", "?") for e in events if isinstance(e, dict))
            return publish(events)

        return publish_counted

    def _end_pass(self) -> None:
        cur = self._current
        if cur is not None:
            self._done_packets += cur.stats.packets
            self._done_bytes += cur.stats.bytes_read
            self._current = None
        tally = self._pending_tally
        if tally is not None:
            self.unclaimed.merge(tally)
            self._pending_tally = None

    # -- the progress line -----------------------------------------------------------------

    def start(self) -> None:
        self.started = time.monotonic()
        if not self.interactive:
            return
        self._wrap_log_streams()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0 / REFRESH):
            self._draw(self.progress_line())

    def _draw(self, line: str) -> None:
        locks = [h for h, _ in self._wrapped]
        for h in locks:
            h.acquire()
        try:
            if self._stop.is_set():
                return
            self.stream.write("\r" + line + "\x1b[K")
            self.stream.flush()
            self._shown = True
        except (OSError, ValueError):
            self._stop.set()
        finally:
            for h in reversed(locks):
                h.release()

    def _clear(self) -> None:
        if self._shown:
            self._shown = False
            try:
                self.stream.write("\r\x1b[K")
            except (OSError, ValueError):
                pass

    def _wrap_log_streams(self) -> None:
        """Log records written to the same terminal first wipe the progress line (under
        the handler's lock, which the drawing thread also takes)."""
        for h in logging.getLogger().handlers:
            if isinstance(h, logging.StreamHandler) and h.stream is self.stream:
                self._wrapped.append((h, h.stream))
                h.stream = _Clearing(h.stream, self)

    def _unwrap_log_streams(self) -> None:
        for h, stream in self._wrapped:
            h.acquire()
            try:
                h.stream = stream
            finally:
                h.release()
        self._wrapped = []

    def totals(self) -> tuple[int, int]:
        """Packets and bytes read so far, every pass included."""
        with self._lock:
            cur = self._current
            pk, by = self._done_packets, self._done_bytes
            if cur is not None:
                pk += cur.stats.packets
                by += cur.stats.bytes_read
        return pk, by

    def progress_line(self) -> str:
        now = time.monotonic()
        elapsed = max(now - self.started, 1e-6)
        packets, nbytes = self.totals()
        cur = self._current
        parts = [f"{packets:,} packets", _size(nbytes)]
        if cur is not None and cur.size:
            done = min(cur.stats.bytes_read, cur.size)
            pct = 100.0 * done / cur.size
            if self.loops != 1:
                of = f"/{self.loops}" if self.loops else ""
                parts.append(f"pass {self._pass}{of} {pct:.0f}%")
            else:
                parts.append(f"{pct:.0f}%")
        published = self.stats.get("publisher.published", 0)
        parts.append(f"{packets / elapsed:,.0f} pkt/s")
        parts.append(f"{published / elapsed:,.0f} ev/s")
        if cur is not None and cur.size and self.loops:
            remaining = (self.loops - self._pass) * cur.size + cur.size - min(cur.stats.bytes_read, cur.size)
            rate = nbytes / elapsed
            if rate > 0 and nbytes:
                parts.append(f"ETA {_duration(remaining / rate)}")
        parts.append(f"drops {dropped_for_good(self.stats):,}")
        return "  ".join(parts)

    # -- the end ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the progress line (before the pipeline drains: its waits log)."""
        with self._lock:
            self._end_pass()
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=2)
            self._thread = None
        self._stop.set()
        for h, _ in self._wrapped:
            h.acquire()
        try:
            self._clear()
        finally:
            for h, _ in reversed(self._wrapped):
                h.release()
        self._unwrap_log_streams()

    def summary_line(self) -> str:
        end = self.ended or time.monotonic()
        elapsed = max(end - self.started, 1e-6)
        packets, nbytes = self.totals()
        txns = {t: n for t, n in self.by_type.items() if t != "flow"}
        flows = self.by_type.get("flow", 0)
        total_txn = sum(txns.values())
        detail = ", ".join(f"{t} {n:,}" for t, n in sorted(txns.items(), key=lambda kv: (-kv[1], kv[0])))
        txn_part = f"{total_txn:,} transactions" + (f" ({detail})" if detail else "")
        if flows:
            txn_part += f", {flows:,} flow reports"
        published = self.stats.get("publisher.published", 0)
        acked = self.stats.get("queue.acked", 0)
        failed = dropped_for_good(self.stats)
        filtered = sum(self.stats.get(k, 0) for k in FILTERED_KEYS)
        events = f"{published:,} events published ({acked:,} acked), {failed:,} failed"
        if filtered:
            events += f", {filtered:,} filtered"
        return (
            f"wirebeat: replayed {packets:,} packets ({_size(nbytes)}) in {_duration(elapsed)}"
            f" ({packets / elapsed:,.0f} packets/s): {txn_part}; {events}; memory peak {_size(peak_rss())}"
        )

    def hints(self, total_packets: int | None = None) -> list[str]:
        if total_packets is None:
            total_packets = self.totals()[0]
        floor = max(HINT_MIN_PACKETS, HINT_MIN_SHARE * total_packets)
        big = sorted(
            ((n, k) for k, n in self.unclaimed.counts.items() if n >= floor), key=lambda x: (-x[0], x[1])
        )
        out = []
        for n, (transport, port) in big[:MAX_HINTS]:
            key = (transport, port)
            guess = guess_protocol(
                transport,
                port,
                self.unclaimed.to_server.get(key, b""),
                self.unclaimed.from_server.get(key, b""),
            )
            line = f"wirebeat: {n:,} packets to {transport.upper()} {port} — not configured"
            if guess is None:
                line += f"; add port {port} to the ports of the protocol it carries?"
            elif guess in self.enabled_protocols:
                line += f"; add it to {guess} ports?"
            else:
                line += f"; enable {guess} with ports [{port}]?"
            out.append(line)
        return out

    def finish(self, code: int) -> int:
        """Say the summary and the hints; return the exit status (``code``, or
        ``EXIT_DROPPED`` for a replay that ended well but lost events for good).

        On stderr as plain lines, or as log records when the logs go there (``-e``), so
        that stream stays one JSON document a line. A run that ends in an error says only
        its ``Exiting:`` line there (the summary still goes to the log)."""
        self.stop()
        self.ended = time.monotonic()
        failed = dropped_for_good(self.stats)
        status = EXIT_DROPPED if code == 0 and failed else code
        summary, hints = self.summary_line(), self.hints()
        if status == EXIT_DROPPED:
            hints.append(f"wirebeat: {failed:,} events were dropped for good (exit status {EXIT_DROPPED})")
        fields = {"replay": self.summary_fields()}
        handlers = logging.getLogger().handlers
        to_stderr = any(isinstance(h, logging.StreamHandler) and h.stream is self.stream for h in handlers)
        if not to_stderr and status in (0, EXIT_DROPPED):
            try:
                self.stream.write("".join(line + "\n" for line in [summary, *hints]))
                self.stream.flush()
            except (OSError, ValueError):
                pass
        log.info("%s", summary, extra={"fields": fields})
        for h in hints:
            log.warning("%s", h)
        return status

    def summary_fields(self) -> dict[str, Any]:
        end = self.ended or time.monotonic()
        packets, nbytes = self.totals()
        return {
            "packets": packets,
            "bytes": nbytes,
            "transactions": {t: n for t, n in sorted(self.by_type.items()) if t != "flow"},
            "flows": self.by_type.get("flow", 0),
            "events": {
                "published": self.stats.get("publisher.published", 0),
                "acked": self.stats.get("queue.acked", 0),
                "failed": dropped_for_good(self.stats),
                "filtered": sum(self.stats.get(k, 0) for k in FILTERED_KEYS),
            },
            "duration_ms": int((end - self.started) * 1000),
            "memory_peak_bytes": peak_rss(),
        }


class _Clearing:
    """A log stream that wipes the progress line before a record is written."""

    def __init__(self, stream: Any, report: ReplayReport) -> None:
        self._stream = stream
        self._report = report

    def write(self, s: str) -> int:
        self._report._clear()
        n: int = self._stream.write(s)
        return n

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


# -- which protocol would claim the port -------------------------------------------------------

_HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"TRACE ")


def guess_protocol(transport: str, port: int, to_server: bytes, from_server: bytes) -> str | None:
    """The protocol the first bytes each way look like, else the one whose default ports
    include ``port``, else None."""
    req, resp = to_server, from_server
    if transport == "tcp":
        if req.startswith(_HTTP_METHODS) or resp.startswith(b"HTTP/1."):
            return "http"
        if len(req) >= 8:
            n = int.from_bytes(req[:4], "big")
            code = int.from_bytes(req[4:8], "big")
            # StartupMessage (protocol 3.0) or SSLRequest / GSSENCRequest (PostgreSQL docs,
            # "Message Formats").
            if 8 <= n <= 10_000 and code in (0x00030000, 80877103, 80877104):
                return "pgsql"
        if len(resp) >= 5 and resp[3] == 0 and resp[4] == 10 and int.from_bytes(resp[:3], "little") + 4 >= 5:
            return "mysql"  # server greeting: sequence 0, protocol version 10
        if (req[:1] == b"*" and b"\r\n$" in req[:32]) or resp[:3] in (b"+OK", b"+PO"):
            return "redis"
        if (
            len(req) >= 16
            and int.from_bytes(req[12:16], "little") in (2004, 2013, 2012, 1)
            and (int.from_bytes(req[:4], "little") >= 16)
        ):
            return "mongodb"
        if req.startswith(b"AMQP"):
            return "amqp"
        if req[:1] in (b"\x80",) and resp[:1] == b"\x81":
            return "memcache"
        if req.startswith((b"get ", b"gets ", b"set ", b"add ", b"delete ", b"version")):
            return "memcache"
        if len(req) >= 5 and req[0] in (3, 4, 5) and req[4] in (1, 5):
            return "cassandra"  # STARTUP or OPTIONS, the first request of a session
        if req[:1] == b"\x16" and req[1:2] == b"\x03":
            return "tls"
        if req[:2] == b"\x80\x01" or req[4:6] == b"\x80\x01":
            return "thrift"
    if req.startswith((b"INVITE sip:", b"REGISTER sip:", b"OPTIONS sip:")) or resp.startswith(b"SIP/2.0"):
        return "sip"
    return _default_port_owner(transport, port)


def _default_port_owner(transport: str, port: int) -> str | None:
    from protocols.registry import available, plugin_class

    for name in available():
        try:
            cls = plugin_class(name)
        except Exception:  # a protocol module that cannot load says nothing here
            continue
        if port in getattr(cls, "default_ports", ()) and _speaks(cls, transport):
            return name
    return None


def _speaks(cls: Any, transport: str) -> bool:
    transports = getattr(cls, "transports", None)
    if transports is None:
        return True
    return transport in transports
