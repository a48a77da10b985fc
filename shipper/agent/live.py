"""Live capture: ``wirebeat run`` without ``-I``.

One capture thread per configured interface reads the ring (AF_PACKET) or libpcap in
batches and feeds its own decoder; when the link is idle it calls ``decoder.tick`` with
the wall clock, so transactions expire on live capture time. The main thread waits for
SIGINT/SIGTERM, watches the drop counters and logs when anything is dropped. The queue
never blocks a capture thread: when it is full the event is dropped and counted
(``pipeline.queue.dropped_full``) and a warning says how many.

Start-up order: capture sockets are opened (and filters attached) first, as root; then
``packetbeat.run_as`` drops privileges; only then are the output, the data files and the
packets touched.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import Any, Protocol

from capture import CaptureError
from capture.bpf import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, FilterError, compile_filter
from capture.devices import resolve_device
from protocols.decoder import Decoder
from protocols.registry import Registry, build_plugins
from shipper.agent.beat import Beat, Dumper
from shipper.agent.config import ConfigError
from shipper.agent.settings import InterfaceSettings, Settings
from shipper.agent.version import VERSION

log = logging.getLogger("sniffer")

Packet = tuple[int, int, bytes, int]
IDLE_POLL = 0.2  # seconds a capture thread waits for packets before ticking the decoder
DRAIN_LIMIT = 2.0  # seconds spent reading what the kernel still holds at shutdown
# Longer than the ring's block timeout (50 ms for af_packet, 200 ms for pcap), so the last
# partly filled block is handed over before the drain decides the ring is empty.
DRAIN_POLL = 0.3


class Source(Protocol):
    kind: str
    device: str
    linktype: int

    def read_batch(self, timeout: float) -> list[Packet]: ...

    def stats(self) -> dict[str, int]: ...

    def close(self) -> None: ...


# -- configuration ---------------------------------------------------------------------------


def capture_filter(settings: Settings, iface: InterfaceSettings) -> str:
    """``bpf_filter`` if set, else Packetbeat's generated filter (none when flows are on)."""
    if iface.bpf_filter:
        return iface.bpf_filter
    flows = settings.packetbeat.flows
    if flows is not None and flows.enabled:
        return ""
    plugins = build_plugins(settings.packetbeat.protocols)
    return Registry(plugins).bpf_filter(iface.with_vlans)


def capture_type(iface: InterfaceSettings) -> str:
    return "af_packet" if iface.type == "af_packet" else "pcap"


def check_interfaces(settings: Settings) -> None:
    """``wirebeat test config``: devices exist, filters compile, ``run_as`` names a user."""
    for i, iface in enumerate(settings.packetbeat.interfaces):
        path = f"packetbeat.interfaces.{i}"
        device = _resolve(iface, path)
        expr = capture_filter(settings, iface)
        linktype = LINKTYPE_LINUX_SLL if device == "any" else LINKTYPE_ETHERNET
        try:
            compile_filter(expr, linktype, iface.snaplen)
        except FilterError as exc:
            key = "bpf_filter" if iface.bpf_filter else "bpf_filter (generated from the protocols)"
            raise ConfigError(f"{path}.{key}", str(exc)) from None
        except CaptureError as exc:
            raise ConfigError(path, str(exc)) from None
        if iface.fanout_group is not None and not 0 <= iface.fanout_group <= 0xFFFF:
            raise ConfigError(f"{path}.fanout_group", "must be between 0 and 65535")
        if iface.snaplen <= 0:
            raise ConfigError(f"{path}.snaplen", "must be positive")
    user = settings.packetbeat.run_as
    if user:
        import pwd

        try:
            pwd.getpwnam(user)
        except KeyError:
            raise ConfigError("packetbeat.run_as", f"no such user {user!r}") from None


def _resolve(iface: InterfaceSettings, path: str) -> str:
    try:
        return resolve_device(iface.device)
    except ValueError as exc:
        raise ConfigError(f"{path}.device", str(exc)) from None


def open_source(settings: Settings, iface: InterfaceSettings, device: str) -> Source:
    expr = capture_filter(settings, iface)
    # The interface's ignore_outgoing drops packets the host sends (PACKET_OUTGOING) before
    # they are decoded. packetbeat.ignore_outgoing stays an event-level rule (the publisher
    # drops egress transactions): dropping packets for it would cut the responses of this
    # host's own servers out of their ingress transactions.
    ignore_out = iface.ignore_outgoing
    if capture_type(iface) == "af_packet":
        from capture.afpacket import AfPacketSource

        src: Source = AfPacketSource(
            device,
            snaplen=iface.snaplen,
            buffer_size_mb=iface.buffer_size_mb,
            promisc=iface.auto_promisc_mode,
            bpf_filter=expr,
            fanout_group=iface.fanout_group,
            ignore_outgoing=ignore_out,
        )
        for w in getattr(src, "warnings", []):
            log.warning("%s", w)
    else:
        from capture.afpacket import ARPHRD_LOOPBACK, interface_type
        from capture.bpf import outgoing_prefix
        from capture.libpcap import PcapSource

        # libpcap skips the outgoing copy of loopback packets only after copying them out
        # of the ring; dropping them in the kernel filter halves the ring traffic on lo.
        # (Not for "any": libpcap rewrites cooked-mode programs and would break the prefix.)
        prefix = None
        if device != "any" and (ignore_out or interface_type(device) == ARPHRD_LOOPBACK):
            prefix = outgoing_prefix()
        # Packetbeat always opens pcap promiscuous (auto_promisc_mode is af_packet only).
        src = PcapSource(
            device,
            snaplen=iface.snaplen,
            buffer_size_mb=iface.buffer_size_mb,
            promisc=device != "any",
            bpf_filter=expr,
            direction_in=ignore_out,
            prefix=prefix,
        )
    log.info(
        "capturing on %s with %s (linktype %d), filter %r", device, capture_type(iface), src.linktype, expr
    )
    return src


# -- privileges ------------------------------------------------------------------------------


def drop_privileges(user: str) -> None:
    """setgroups → setgid → setuid; after this the process has no capabilities left."""
    import pwd

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError("packetbeat.run_as", f"no such user {user!r}") from None
    if os.getuid() == pw.pw_uid:
        return
    if os.geteuid() != 0:
        raise ConfigError("packetbeat.run_as", f"switching to user {user!r} needs root")
    os.setgroups(os.getgrouplist(user, pw.pw_gid))
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    if os.geteuid() == 0 or os.getuid() == 0:  # pragma: no cover - the kernel refused
        raise ConfigError("packetbeat.run_as", f"could not drop root privileges to {user!r}")
    log.info("dropped privileges to user %s (uid %d, gid %d)", user, pw.pw_uid, pw.pw_gid)


def _preload(beat: Beat) -> None:
    """Import, while still root, what the pipeline imports lazily: after the switch the
    interpreter's own files may not be readable (e.g. a Python installed under /root)."""
    import asyncio  # noqa: F401
    import concurrent.futures.thread  # noqa: F401
    import http.server  # noqa: F401

    from shipper.agent.settings import output_module

    output_module(beat.settings.output_name())
    beat.new_decoder()  # imports the protocol modules
    beat.build_processing()  # imports what the configured processors need (quickjs, dnspython …)
    if beat.settings.packetbeat.procs.enabled:
        import shipper.agent.procs  # noqa: F401


# -- the capture threads ---------------------------------------------------------------------


class Capture:
    """One interface: its source, decoder, optional dump file and thread."""

    def __init__(self, beat: Beat, source: Source, dumper: Dumper | None) -> None:
        self.beat = beat
        self.source = source
        self.decoder: Decoder = beat.new_decoder()
        self.dumper = dumper
        self.stop = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"capture-{source.device}", daemon=True)
        self.final_stats: dict[str, int] = {}

    def stats(self) -> dict[str, int]:
        return self.final_stats if self.final_stats else self.source.stats()

    def _run(self) -> None:
        pipeline = self.beat.pipeline
        assert pipeline is not None
        publish = pipeline.publish_all
        try:
            self._loop(publish)
            # Stop: read what the kernel already holds, then publish what can complete.
            deadline = time.monotonic() + DRAIN_LIMIT
            while time.monotonic() < deadline:
                batch = self.source.read_batch(DRAIN_POLL)
                if not batch:
                    break
                self._feed(batch, publish)
            for events in self.decoder.flush_batches():
                publish(events)
        except CaptureError as exc:
            self.error = str(exc)
            log.error("capture on %s failed: %s", self.source.device, exc)
            self.beat.stop_event.set()
        except Exception as exc:  # never die silently: stop the beat and say why
            self.error = f"capture on {self.source.device} failed: {exc!r}"
            log.exception("capture on %s failed", self.source.device)
            self.beat.stop_event.set()
        finally:
            self.final_stats = self.source.stats()
            self.source.close()
            if self.dumper is not None:
                self.dumper.close()

    def _loop(self, publish: Any) -> None:
        read = self.source.read_batch
        decoder = self.decoder
        stop = self.stop
        time_ns = time.time_ns
        while not stop.is_set():
            batch = read(IDLE_POLL)
            if batch:
                self._feed(batch, publish)
            else:
                # Idle link: let expiry run on live capture time (the wall clock).
                evs = decoder.tick(time_ns())
                if evs:
                    publish(evs)

    def _feed(self, batch: list[Packet], publish: Any) -> None:
        if self.dumper is not None:
            for _ in self.dumper.wrap(batch):
                pass
        evs = self.decoder.feed_many(batch)
        if evs:
            publish(evs)


# -- run -------------------------------------------------------------------------------------


def _exit(message: str) -> int:
    print(f"Exiting: {message}", file=sys.stderr)
    return 1


def run_live(beat: Beat, args: argparse.Namespace) -> int:
    settings = beat.settings
    try:
        check_interfaces(settings)
    except ConfigError as exc:
        return _exit(str(exc))
    workers = beat.worker_count()
    if workers > 1:
        from shipper.agent.fanout import fanout_possible, run_live_workers

        why = fanout_possible(beat, args)
        if why is None:
            return run_live_workers(beat, args, workers)
        say = log.warning if settings.packetbeat.workers > 1 else log.info
        say("%s: capturing in one process", why)
    ifaces = settings.packetbeat.interfaces
    multi = len(ifaces) > 1
    sources: list[Source] = []
    try:
        for i, iface in enumerate(ifaces):
            device = _resolve(iface, f"packetbeat.interfaces.{i}")
            sources.append(open_source(settings, iface, device))
        if settings.packetbeat.run_as:
            _preload(beat)
            drop_privileges(settings.packetbeat.run_as)
    except (CaptureError, ConfigError, OSError) as exc:
        for s in sources:
            s.close()
        return _exit(str(exc))

    pipeline = beat.start_pipeline(live=True)
    captures = []
    for src in sources:
        dumper = None
        if args.dump:
            dumper = Dumper(f"{args.dump}-{src.device}" if multi else args.dump)
        cap = Capture(beat, src, dumper)
        beat.monitor.add(f"capture.{src.device}", cap.stats)
        captures.append(cap)
    beat.monitor.clients = len(captures)
    http = _start_http(beat, captures)
    beat.install_signals()
    beat.tune_gc()
    beat.monitor.start()
    for cap in captures:
        cap.thread.start()
    log.info("wirebeat %s is capturing on %s", VERSION, ", ".join(c.source.device for c in captures))

    watch = DropWatch(beat, captures)
    period = min(5.0, max(0.5, min(float(i.metrics_interval) for i in ifaces)))
    while not beat.stop_event.wait(period):
        watch.check()
        if not any(c.thread.is_alive() for c in captures):
            break

    for cap in captures:
        cap.stop.set()
    for cap in captures:
        cap.thread.join(timeout=DRAIN_LIMIT + 10)
    watch.check()
    drained = pipeline.close(beat._shutdown_timeout())
    beat.stop_reporting(http)
    errors = [c.error for c in captures if c.error]
    if errors:
        return _exit(errors[0])
    if pipeline.fatal or pipeline.closed_by_peer:
        return beat.exit_code(pipeline, drained, None)
    if not drained:
        log.warning("shutdown: not every event was acknowledged within the shutdown timeout")
    return 0


class DropWatch:
    """Says so, every few seconds, when the kernel, the queue or the decoder dropped."""

    def __init__(self, beat: Beat, captures: list[Capture]) -> None:
        self.beat = beat
        self.captures = captures
        self.last: dict[str, int] = {}

    def _delta(self, key: str, value: int) -> int:
        d = value - self.last.get(key, 0)
        self.last[key] = value
        return d

    def check(self) -> None:
        for cap in self.captures:
            st = cap.stats()
            d = self._delta(f"{cap.source.device}.kernel", st.get("kernel.dropped", 0))
            if d > 0:
                log.warning("kernel dropped %d packets on %s (capture buffer full)", d, cap.source.device)
        d = self._delta("queue", self.beat.stats.get("queue.dropped_full", 0))
        if d > 0:
            log.warning(
                "queue full: dropped %d events (live capture never blocks; raise queue.mem.events "
                "or speed up the output)",
                d,
            )


def _start_http(beat: Beat, captures: list[Capture]) -> Any:
    if not beat.settings.http.enabled:
        return None
    from shipper.agent.httpstats import start_stats_server

    def inputs() -> list[dict[str, Any]]:
        out = []
        for c in captures:
            st = c.stats()
            out.append(
                {
                    "id": c.source.device,
                    "device": c.source.device,
                    "input": c.source.kind,
                    "linktype": c.source.linktype,
                    "received_events_total": st.get("packets", 0),
                    "received_bytes_total": st.get("bytes", 0),
                    "kernel_received": st.get("kernel.received", 0),
                    "kernel_dropped": st.get("kernel.dropped", 0),
                }
            )
        return out

    return start_stats_server(beat, inputs)
