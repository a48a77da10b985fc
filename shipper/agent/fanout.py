"""Live capture on several cores: one AF_PACKET socket per worker process and interface,
joined in a ``PACKET_FANOUT`` group (hash mode, with defragmentation).

The kernel's fanout hash is ``__skb_get_hash_symmetric`` over the flow's addresses and
ports (fragments are reassembled first with ``PACKET_FANOUT_FLAG_DEFRAG``), so both
directions of a connection, and every fragment of a datagram, reach the same worker.
Each worker reads its own ring, decodes, envelopes and encodes (like one capture thread
of the single-process path) and sends the encoded events to the parent, which publishes
them. There is no global order to restore in live capture: each connection lives in one
worker, in capture order.

Where overload goes (see docs/live-capture.md): the parent publishes *blocking*. When the
output falls behind, the queue fills, the parent stops reading the workers' pipes, the
workers stop reading their rings, and the kernel rings (``buffer_size_mb`` each) absorb
the burst; what they cannot hold the kernel drops and counts
(``capture.<dev>.kernel.dropped``). Decoded transactions are never thrown away at a full
queue in this mode (``queue.dropped_full`` stays 0), because that is the most expensive
place to lose data: the packets were paid for, and the loss hides in the transactions.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, BinaryIO

import attrs

from capture import CaptureError
from shipper.agent.config import ConfigError
from shipper.agent.version import VERSION
from shipper.agent.workers import (
    TEST_EXIT_ENV,
    WorkerPool,
    _Deltas,
    _preparer,
    _worker_setup,
    add_deltas,
    log_cpu,
    recv_msg,
    send_msg,
    unpack_event,
)

if TYPE_CHECKING:
    from shipper.agent.beat import Beat
    from shipper.agent.live import Source

log = logging.getLogger("sniffer")


def fanout_possible(beat: Beat, args: argparse.Namespace) -> str | None:
    """Why live capture cannot use worker processes (None: it can)."""
    from shipper.agent.live import capture_type

    if getattr(args, "dump", ""):
        return "-dump writes what one process reads"
    for iface in beat.settings.packetbeat.interfaces:
        if capture_type(iface) != "af_packet":
            return "worker processes need type: af_packet (PACKET_FANOUT) on every interface"
    return None


def _forget(src: Source) -> None:
    """Drop this process's handle on a source another process reads (no statistics read:
    that would reset the kernel's counters under the reader)."""
    mm = getattr(src, "mm", None)
    if mm is not None:
        with contextlib.suppress(BufferError, ValueError):
            mm.close()
    sock = getattr(src, "sock", None)
    if sock is not None:
        sock.close()


# -- the worker side ---------------------------------------------------------------------------


def live_worker(beat: Beat, idx: int, sources: list[Source], rin: BinaryIO, wout: BinaryIO) -> int:
    from shipper.agent.live import DRAIN_LIMIT, DRAIN_POLL, IDLE_POLL

    pstats, dstats = _worker_setup(beat)
    deltas = _Deltas(dstats, pstats)
    prepare = _preparer(beat, pstats, live=True, renumber=False)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []
    die = os.environ.get(TEST_EXIT_ENV) == str(idx)

    def send(items: list[tuple[Any, ...]], src: Source) -> None:
        with lock:
            send_msg(wout, ("L", items, deltas.take(), src.device, src.stats()))

    def run(src: Source) -> None:
        decoder = beat.new_decoder()
        read = src.read_batch
        time_ns = time.time_ns
        try:
            while not stop.is_set():
                batch = read(IDLE_POLL)
                evs = decoder.feed_many(batch) if batch else decoder.tick(time_ns())
                items = [r for r in map(prepare, evs) if r is not None]
                if items or batch:
                    send(items, src)
                    if die and batch:
                        os._exit(3)
            deadline = time.monotonic() + DRAIN_LIMIT
            while time.monotonic() < deadline:
                batch = read(DRAIN_POLL)
                if not batch:
                    break
                send([r for r in map(prepare, decoder.feed_many(batch)) if r is not None], src)
            send([r for r in map(prepare, decoder.flush()) if r is not None], src)
        except (BrokenPipeError, ValueError):
            stop.set()  # the parent is gone
        except CaptureError as exc:
            errors.append(f"capture on {src.device} failed: {exc}")
            stop.set()
        except Exception as exc:
            from shipper.agent.beat import describe_error

            errors.append(f"capture on {src.device} failed: {describe_error(exc)}")
            stop.set()

    beat.tune_gc()
    threads = [
        threading.Thread(target=run, args=(s,), name=f"capture-{s.device}", daemon=True) for s in sources
    ]
    for t in threads:
        t.start()
    try:
        while not stop.is_set():
            ready, _, _ = select.select([rin], [], [], 0.5)
            if ready:
                msg = recv_msg(rin)
                if msg is None or msg[0] == "S":
                    break
            if not any(t.is_alive() for t in threads):
                break
        stop.set()
        for t in threads:
            t.join()
        with lock:
            if errors:
                send_msg(wout, ("E", errors[0]))
                return 1
            stats = {s.device: s.stats() for s in sources}
            send_msg(wout, ("D", deltas.take(), stats))
        return 0
    except BrokenPipeError:
        return 0
    finally:
        for s in sources:
            s.close()


# -- the parent side ---------------------------------------------------------------------------


class FanoutCapture:
    """One interface as the live loop sees it (stats, device), read by all workers."""

    def __init__(self, device: str, kind: str, linktype: int, n: int) -> None:
        self.device = device
        self.kind = kind
        self.linktype = linktype
        self.source = self
        self.per_worker: list[dict[str, int]] = [{} for _ in range(n)]
        self.error: str | None = None

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for st in self.per_worker:
            for k, v in st.items():
                out[k] = out.get(k, 0) + v
        return out


def run_live_workers(beat: Beat, args: argparse.Namespace, n: int) -> int:
    from shipper.agent.live import (
        DRAIN_LIMIT,
        DropWatch,
        _exit,
        _preload,
        _resolve,
        _start_http,
        drop_privileges,
        open_source,
    )

    settings = beat.settings
    ifaces = settings.packetbeat.interfaces
    per_worker: list[list[Source]] = [[] for _ in range(n)]
    captures: list[FanoutCapture] = []
    try:
        for j, iface in enumerate(ifaces):
            device = _resolve(iface, f"packetbeat.interfaces.{j}")
            group = iface.fanout_group
            if group is None:
                group = (os.getpid() * 16 + j) & 0xFFFF
            fan = attrs.evolve(iface, fanout_group=group)
            for w in range(n):
                per_worker[w].append(open_source(settings, fan, device))
            first = per_worker[0][-1]
            captures.append(FanoutCapture(first.device, first.kind, first.linktype, n))
        if settings.packetbeat.run_as:
            _preload(beat)
            drop_privileges(settings.packetbeat.run_as)
    except (CaptureError, ConfigError, OSError) as exc:
        for srcs in per_worker:
            for s in srcs:
                s.close()
        return _exit(str(exc))

    pool = WorkerPool(n, lambda i, rin, wout: live_worker(beat, i, per_worker[i], rin, wout))
    by_device = {c.device: c for c in captures}
    lock = threading.Lock()
    pipeline_box: list[Any] = []

    def handle(i: int, msg: tuple[Any, ...]) -> bool:
        """Runs in worker ``i``'s reply thread: publish (blocking), count."""
        if msg[0] == "L":
            _, items, deltas, device, st = msg
            with lock:
                add_deltas((beat.decoder_stats, beat.stats), deltas)
                cap = by_device.get(device)
                if cap is not None:
                    cap.per_worker[i] = st
            if items:
                pipeline = pipeline_box[0]
                prepare = pipeline._prepare
                ready = []
                heads: dict[int, bytes] = {}
                for it in items:
                    if len(it) == 2:
                        ready.append(unpack_event(it[0], it[1], heads))
                    else:
                        r = prepare(it[0])
                        if r is not None:
                            ready.append(r)
                pipeline.publish_encoded(ready, block=True)
            return True
        if msg[0] == "D":
            _, deltas, stats = msg
            with lock:
                add_deltas((beat.decoder_stats, beat.stats), deltas)
                for device, st in stats.items():
                    cap = by_device.get(device)
                    if cap is not None:
                        cap.per_worker[i] = st
        return False

    pool.handler = handle
    pool.start()
    for srcs in per_worker:
        for s in srcs:
            _forget(s)
    log.info("capturing with %d worker processes (packetbeat.workers, PACKET_FANOUT)", n)
    pipeline = beat.start_pipeline(live=True)
    pipeline_box.append(pipeline)
    for cap in captures:
        beat.monitor.add(f"capture.{cap.device}", cap.stats)
    http = _start_http(beat, captures)  # type: ignore[arg-type]
    beat.install_signals()
    beat.tune_gc()
    beat.monitor.start()
    log.info("wirebeat %s is capturing on %s", VERSION, ", ".join(c.device for c in captures))
    watch = DropWatch(beat, captures)  # type: ignore[arg-type]
    period = min(5.0, max(0.5, min(float(i.metrics_interval) for i in ifaces)))
    while not beat.stop_event.wait(min(period, 0.5)):
        if pool.failure is not None:
            break
        watch.check()
    died = pool.failure
    if died is None:
        for i in range(n):
            with contextlib.suppress(Exception):
                pool.send(i, ("S",))
        deadline = time.monotonic() + DRAIN_LIMIT + beat._shutdown_timeout() + 5
        while not all(pool.finished) and pool.failure is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not all(pool.finished) and pool.failure is None:
            # The output does not take events: stop waiting for it so the workers can end.
            pipeline.queue.close()
            end = time.monotonic() + 5
            while not all(pool.finished) and pool.failure is None and time.monotonic() < end:
                time.sleep(0.05)
        died = pool.failure
    if died is not None:
        beat.stats.incr("workers.failed")
        log.error("%s", died)
        pool.kill()
    else:
        pool.stop()
        log_cpu(pool)
    watch.check()
    drained = pipeline.close(beat._shutdown_timeout())
    beat.stop_reporting(http)
    if died is not None:
        print(f"Exiting: {died}", file=sys.stderr)
        return 1
    if pipeline.fatal or pipeline.closed_by_peer:
        return beat.exit_code(pipeline, drained, None)
    if not drained:
        log.warning("shutdown: not every event was acknowledged within the shutdown timeout")
    return 0
