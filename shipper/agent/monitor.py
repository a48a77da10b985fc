"""Metrics in libbeat's names and layout: the periodic "Non-zero metrics in the last 30s"
log line, the final "Total metrics" line and the HTTP ``/stats`` document share one flat
view (``metrics()``), nested like libbeat's JSON (docs/monitoring.md).

* ``beat.*``, ``libbeat.*``, ``system.*`` — what libbeat reports, computed here from the
  process (``/proc``, ``getrusage``) and from wirebeat's pipeline counters;
* Packetbeat's own counters at the top (``tcp.*``, ``http.unmatched_requests`` …), the
  capture's (``pcap.*`` for ``-I``, ``capture.<device>.*`` live), and wirebeat's detailed
  pipeline counters under ``pipeline.*``.

As in libbeat's log reporter, counters are logged as deltas when they changed, gauges
(``GAUGES``) and the constant strings as they are.
"""

from __future__ import annotations

import gc
import logging
import os
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("monitoring")

Source = Callable[[], dict[str, int]]
Value = int | float | str

#: libbeat's gauges (libbeat/monitoring/report/log: the values are logged, not deltas).
GAUGES = frozenset(
    {
        "libbeat.output.events.active",
        "libbeat.pipeline.events.active",
        "libbeat.pipeline.clients",
        "libbeat.pipeline.queue.max_events",
        "libbeat.pipeline.queue.max_bytes",
        "libbeat.pipeline.queue.filled.events",
        "libbeat.pipeline.queue.filled.bytes",
        "libbeat.pipeline.queue.filled.pct",
        "libbeat.config.module.running",
        "beat.memstats.memory_total",
        "beat.memstats.memory_alloc",
        "beat.memstats.memory_sys",
        "beat.memstats.rss",
        "beat.memstats.rss_max",
        "beat.memstats.gc_next",
        "beat.info.uptime.ms",
        "beat.cpu.user.ticks",
        "beat.cpu.system.ticks",
        "beat.cpu.total.value",
        "beat.cpu.total.ticks",
        "beat.cpu.user.time.ms",
        "beat.cpu.system.time.ms",
        "beat.cpu.total.time.ms",
        "beat.handles.open",
        "beat.handles.limit.hard",
        "beat.handles.limit.soft",
        "beat.runtime.goroutines",
        "system.cpu.cores",
        "system.load.1",
        "system.load.5",
        "system.load.15",
        "system.load.norm.1",
        "system.load.norm.5",
        "system.load.norm.15",
    }
)
#: Strings libbeat logs every period (the others only when they change).
STRING_CONSTANTS = frozenset({"beat.info.ephemeral_id", "beat.info.version", "beat.info.name"})

#: Events refused by the queue itself (full with live capture, too large, a disk write error,
#: full while the agent stops).
_QUEUE_REFUSED = (
    "queue.dropped_full",
    "queue.dropped_too_large",
    "queue.dropped_write_error",
    "queue.dropped_stopping",
)
_FILTERED = ("publisher.filtered", "publisher.dropped_outgoing")


class Monitor:
    """Collects counters from several sources; logs libbeat's line every period."""

    def __init__(self, period: float = 30.0) -> None:
        self.period = period
        self.sources: dict[str, Source] = {}
        self._last: dict[str, Value] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = process_started()
        self.name = ""
        self.version = ""
        self.ephemeral_id = ""
        self.output_type = ""
        self.queue_max = 0
        self.clients = 1

    def configure(
        self,
        *,
        name: str,
        version: str,
        ephemeral_id: str,
        output_type: str,
        queue_max: int,
        clients: int = 1,
    ) -> None:
        self.name, self.version, self.ephemeral_id = name, version, ephemeral_id
        self.output_type, self.queue_max, self.clients = output_type, queue_max, clients

    def add(self, name: str, source: Source) -> None:
        self.sources[name] = source

    def snapshot(self) -> dict[str, int]:
        """wirebeat's own counters, flat (``pipeline.queue.acked``, ``pcap.packets`` …)."""
        out: dict[str, int] = {}
        for prefix, src in list(self.sources.items()):
            try:
                values = src()
            except Exception as exc:  # a broken source must not stop the others
                log.debug("metrics source %s failed: %r", prefix, exc)
                continue
            for k, v in values.items():
                out[f"{prefix}.{k}" if prefix else k] = v
        return out

    def metrics(self) -> dict[str, Value]:
        """Everything, flat, in libbeat's names (see the module docstring)."""
        snap = self.snapshot()
        out: dict[str, Value] = dict(snap)
        out.update(process_metrics(self.started))
        out["beat.info.name"] = self.name
        out["beat.info.version"] = self.version
        out["beat.info.ephemeral_id"] = self.ephemeral_id
        pipeline = {k[9:]: v for k, v in snap.items() if k.startswith("pipeline.")}
        out.update(libbeat_metrics(pipeline, self.output_type, self.queue_max, self.clients))
        return out

    def deltas(self) -> dict[str, Value]:
        """libbeat's delta snapshot: counters that changed (by how much), gauges and the
        constant strings as they are, other strings when they changed."""
        cur = self.metrics()
        last = self._last
        d: dict[str, Value] = {}
        for k, v in cur.items():
            if isinstance(v, str):
                if k in STRING_CONSTANTS or last.get(k) != v:
                    d[k] = v
            elif k in GAUGES or isinstance(v, float):
                d[k] = v
            else:
                prev = last.get(k, 0)
                if isinstance(prev, int) and v != prev:
                    d[k] = v - prev
        self._last = cur
        return d

    def log_now(self, final: bool = False) -> None:
        if final:
            total = self.metrics()
            self._last = total
            log.info("Total metrics", extra={"fields": {"monitoring": {"metrics": nest(total)}}})
            log.info("Uptime: %s", _uptime(time.monotonic() - self.started))
            return
        d = self.deltas()
        if d:
            log.info(
                "Non-zero metrics in the last %ds",
                int(self.period),
                extra={"fields": {"monitoring": {"metrics": nest(d)}}},
            )

    def start(self) -> None:
        if self.period <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.log_now()

    def stop(self) -> None:
        self._stop.set()


def libbeat_metrics(m: dict[str, int], output_type: str, queue_max: int, clients: int) -> dict[str, Value]:
    """``libbeat.*`` from wirebeat's pipeline counters (without their ``pipeline.`` prefix)."""
    g = m.get
    published = g("publisher.published", 0)
    filtered = sum(g(k, 0) for k in _FILTERED)
    failed = sum(v for k, v in m.items() if k.startswith("publisher.dropped_") and k not in _FILTERED)
    refused = sum(g(k, 0) for k in _QUEUE_REFUSED)
    acked = g("queue.acked", 0)
    gave_up = g("queue.dropped_max_retries", 0)
    in_queue = max(0, g("queue.published", 0) - acked - gave_up)
    out_total = g("output.events", 0)
    out_acked = g("output.acked", 0)
    out_failed = g("output.failed_events", 0) + g("output.cancelled_events", 0)
    out_dropped = (
        gave_up
        + g("output.dropped_unencodable", 0)
        + g("output.elasticsearch.events.not_indexable", 0)
        + sum(v for k, v in m.items() if k.startswith("output.kafka.events.dropped_"))
    )
    write_errors = sum(
        g(k, 0)
        for k in (
            "output.connect_errors",
            "output.connections_lost",
            "output.elasticsearch.connection_errors",
            "output.redis.connect_errors",
            "output.kafka.connect_errors",
        )
    )
    read_errors = g("output.timeouts", 0) + g("output.protocol_errors", 0)
    return {
        "libbeat.pipeline.clients": clients,
        "libbeat.pipeline.events.published": published,
        "libbeat.pipeline.events.filtered": filtered,
        "libbeat.pipeline.events.failed": failed,
        "libbeat.pipeline.events.dropped": refused,
        "libbeat.pipeline.events.retry": g("queue.retried", 0),
        "libbeat.pipeline.events.active": in_queue,
        "libbeat.pipeline.events.total": published + filtered + failed + refused,
        "libbeat.pipeline.queue.acked": acked,
        "libbeat.pipeline.queue.max_events": queue_max,
        "libbeat.pipeline.queue.max_bytes": 0,
        "libbeat.pipeline.queue.added.events": g("queue.published", 0),
        "libbeat.pipeline.queue.added.bytes": 0,
        "libbeat.pipeline.queue.consumed.events": out_total,
        "libbeat.pipeline.queue.consumed.bytes": 0,
        "libbeat.pipeline.queue.removed.events": acked + gave_up,
        "libbeat.pipeline.queue.removed.bytes": 0,
        "libbeat.pipeline.queue.filled.events": in_queue,
        "libbeat.pipeline.queue.filled.bytes": 0,
        "libbeat.pipeline.queue.filled.pct": in_queue / queue_max if queue_max else 0.0,
        "libbeat.output.type": output_type,
        "libbeat.output.events.batches": g("output.batches", 0),
        "libbeat.output.events.total": out_total,
        "libbeat.output.events.acked": out_acked,
        "libbeat.output.events.failed": out_failed,
        "libbeat.output.events.dropped": out_dropped,
        "libbeat.output.events.duplicates": g("output.elasticsearch.events.duplicates", 0),
        "libbeat.output.events.toomany": g("output.elasticsearch.bulk_status_429", 0),
        "libbeat.output.events.dead_letter": 0,
        # Every attempt counts in total, and ends acknowledged or failed (a batch given up
        # after max_retries failed on its last attempt too).
        "libbeat.output.events.active": max(0, out_total - out_acked - out_failed),
        "libbeat.output.batches.split": 0,
        "libbeat.output.read.bytes": g("output.read_bytes", 0),
        "libbeat.output.read.errors": read_errors,
        "libbeat.output.write.bytes": g("output.write_bytes", 0),
        "libbeat.output.write.errors": write_errors,
        "libbeat.config.module.running": 0,
        "libbeat.config.module.starts": 0,
        "libbeat.config.module.stops": 0,
        "libbeat.config.reloads": 0,
        "libbeat.config.scans": 0,
    }


def process_metrics(started: float) -> dict[str, Value]:
    """``beat.*`` and ``system.*`` for this process, from getrusage and /proc."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    user_ms, sys_ms = int(ru.ru_utime * 1000), int(ru.ru_stime * 1000)
    status = _proc_status()
    rss = status.get("VmRSS", 0)
    try:
        handles = len(os.listdir("/proc/self/fd"))
    except OSError:
        handles = 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cores = os.cpu_count() or 1
    count0 = gc.get_count()[0]
    threshold0 = gc.get_threshold()[0]
    out: dict[str, Value] = {
        "beat.cpu.user.ticks": user_ms,
        "beat.cpu.user.time.ms": user_ms,
        "beat.cpu.system.ticks": sys_ms,
        "beat.cpu.system.time.ms": sys_ms,
        "beat.cpu.total.ticks": user_ms + sys_ms,
        "beat.cpu.total.time.ms": user_ms + sys_ms,
        "beat.cpu.total.value": user_ms + sys_ms,
        "beat.handles.open": handles,
        "beat.handles.limit.soft": soft if soft >= 0 else 0,
        "beat.handles.limit.hard": hard if hard >= 0 else 0,
        "beat.info.uptime.ms": int((time.monotonic() - started) * 1000),
        # Python has no Go memstats: the heap in use is the anonymous resident memory, what
        # was reserved the data segment (VmData) and address space (VmSize); gc_next counts
        # allocations left before the next generation-0 collection.
        "beat.memstats.memory_alloc": status.get("RssAnon", rss),
        "beat.memstats.memory_total": status.get("VmData", 0),
        "beat.memstats.memory_sys": status.get("VmSize", 0),
        "beat.memstats.rss": rss,
        # Peak resident size: read after the current one, and never below it.
        "beat.memstats.rss_max": max(status.get("VmHWM", 0), rss),
        "beat.memstats.gc_next": max(0, threshold0 - count0),
        "beat.runtime.goroutines": threading.active_count(),
        "system.cpu.cores": cores,
    }
    try:
        loads = os.getloadavg()
    except OSError:
        loads = None
    if loads is not None:
        for name, v in zip(("1", "5", "15"), loads, strict=True):
            out[f"system.load.{name}"] = round(v, 4)
            out[f"system.load.norm.{name}"] = round(v / cores, 4)
    return out


def process_started() -> float:
    """When this process started, on the ``time.monotonic()`` clock (uptime counts from
    there, as libbeat's does, not from when the agent was built)."""
    now = time.monotonic()
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return now
    return now - max(0.0, age)


def peak_rss() -> int:
    """This process's peak resident size in bytes: ``VmHWM``, the peak of the running
    image. Linux carries ``ru_maxrss`` over ``execve``, so a process started by a large one
    (a test runner, an orchestrator) would report its parent's peak; ``_proc_status`` falls
    back to it only where /proc cannot be read."""
    return _proc_status().get("VmHWM", 0)


def _proc_status() -> dict[str, int]:
    """The ``kB`` lines of /proc/self/status, in bytes."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
                    out[key] = int(parts[0]) * 1024
    except OSError:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out["VmHWM"] = ru.ru_maxrss * 1024
    return out


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "a.c": 2}`` → ``{"a": {"b": 1, "c": 2}}``; a leaf that is also a prefix
    becomes ``value`` inside it."""
    out: dict[str, Any] = {}
    for key in sorted(flat):
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {} if child is None else {"value": child}
            node = child
        leaf = parts[-1]
        if isinstance(node.get(leaf), dict):
            node[leaf]["value"] = flat[key]
        else:
            node[leaf] = flat[key]
    return out


def flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested keys joined with dots (libbeat's own ``value`` leaves, e.g.
    ``beat.cpu.total.value``, stay as they are)."""
    out: dict[str, Any] = {}
    for k, v in nested.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def _uptime(seconds: float) -> str:
    return f"{seconds:.9f}s" if seconds < 60 else f"{int(seconds // 60)}m{seconds % 60:.9f}s"
