"""Wiring: settings → decoder, envelope, queue, output, pipeline; the packet loops."""

from __future__ import annotations

import contextlib
import datetime
import gc
import io
import itertools
import logging
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from capture import CaptureFile, PcapWriter
from capture.devices import local_addresses
from protocols.decoder import Decoder, DecoderLimits
from protocols.registry import build_plugins
from protocols.stats import Counters
from protocols.tcp import TcpLimits
from shipper.agent import walk
from shipper.agent.hostinfo import agent_id
from shipper.agent.monitor import Monitor
from shipper.agent.progress import Publish, ReplayReport
from shipper.agent.settings import Settings, output_module
from shipper.agent.version import VERSION
from shipper.outputs.base import Output, OutputContext
from shipper.pipeline.envelope import Envelope
from shipper.pipeline.processors import Context, Processing
from shipper.pipeline.publisher import REPLAY_COALESCE, Coalesced, Pipeline
from shipper.pipeline.queue import MemQueue, Queue, StopEvent

log = logging.getLogger("beat")

NS = 1_000_000_000


class Beat:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stats = Counters()
        self.decoder_stats = Counters()
        self.stop_event = StopEvent()
        self.monitor = Monitor(settings.logging.metrics.period if settings.logging.metrics.enabled else 0)
        self.output: Output | None = None
        self.queue: Queue | None = None
        self.pipeline: Pipeline | None = None
        self._envelope: Envelope | None = None

    # -- construction ------------------------------------------------------------------

    def decoder_limits(self) -> DecoderLimits:
        t = self.settings.packetbeat.tcp
        f = self.settings.packetbeat.ip_fragments
        return DecoderLimits(
            tcp=TcpLimits(
                max_connections=t.max_connections,
                reorder_window=t.reorder_window,
                reorder_timeout_ns=int(t.reorder_timeout * NS),
                reorder_buffer=t.reorder_buffer,
                reorder_buffer_total=t.reorder_buffer_total,
            ),
            fragment_max_pending=f.max_datagrams,
            fragment_max_bytes=f.max_bytes,
            fragment_timeout_ns=int(f.timeout * NS),
        )

    def new_decoder(self, stats: Counters | None = None) -> Decoder:
        stats = self.decoder_stats if stats is None else stats
        plugins = build_plugins(self.settings.packetbeat.protocols, stats)
        if not plugins:
            log.warning("no protocol is enabled: nothing will be decoded")
        flows = self.settings.packetbeat.flows
        flow_config = flows.flow_config() if flows is not None and flows.enabled else None
        return Decoder(plugins, self.decoder_limits(), stats, flows=flow_config)

    def worker_count(self) -> int:
        """``packetbeat.workers`` (0: one per CPU)."""
        from shipper.agent.workers import worker_count

        return worker_count(self.settings.packetbeat.workers)

    def output_context(self) -> OutputContext:
        s = self.settings
        return OutputContext(
            beat_name=s.beat_name,
            version=VERSION,
            stats=self.stats,
            data_path=s.data_path,
            index="packetbeat",
        )

    def build_output(self) -> Output:
        s = self.settings
        name = s.output_name()
        mod = output_module(name)
        cfg = s.output_config() or mod.CONFIG()
        out: Output = mod.create(cfg, self.output_context())
        return out

    def build_queue(self) -> Queue:
        s = self.settings
        if s.queue.disk is not None:
            from shipper.pipeline.diskqueue import DiskQueue  # type: ignore[import-not-found,unused-ignore]

            q: Queue = DiskQueue(s.queue.disk, s.data_path, self.stats)
            return q
        mem = s.queue.mem
        if mem is None:
            return MemQueue(stats=self.stats)
        return MemQueue(mem.events, mem.flush_min_events, mem.flush_timeout, self.stats)

    def dry_build(self) -> None:
        """Construct what a run constructs (decoder with its limits, queue, output client)
        without side effects, so `test config` fails where `run` would (ConfigError)."""
        self.new_decoder()
        self.build_processing()
        if self.settings.queue.disk is None:
            self.build_queue()
        name = self.settings.output_name()
        if name not in ("file", "console", "discard"):  # those open files or stdout
            out = self.build_output()
            close = getattr(out, "close", None)
            if close is not None:
                import asyncio

                asyncio.run(close())

    def index_name(self) -> str:
        cfg = self.settings.output_config()
        index = getattr(cfg, "index", "") if cfg is not None else ""
        return index or "packetbeat"

    def envelope(self) -> Envelope:
        """The run's envelope, built once (worker processes share it: one ephemeral id)."""
        if self._envelope is None:
            self._envelope = self.build_envelope()
        return self._envelope

    def ignores_outgoing(self) -> bool:
        s = self.settings
        return s.packetbeat.ignore_outgoing or any(i.ignore_outgoing for i in s.packetbeat.interfaces)

    def build_envelope(self) -> Envelope:
        s = self.settings
        ifaces = s.packetbeat.interfaces
        internal = [n for i in ifaces for n in i.internal_networks]
        per_proto: dict[str, dict[str, Any]] = {}
        for name, cfg in s.packetbeat.protocols.items():
            if cfg.index or cfg.fields or cfg.tags:
                per_proto[name] = {
                    "index": cfg.index,
                    "fields": cfg.fields,
                    "fields_under_root": cfg.fields_under_root,
                    "tags": cfg.tags,
                }
        flows = s.packetbeat.flows
        if flows is not None and flows.enabled:
            # Flow events (type: flow) get the flows section's index, fields and tags (its
            # processors are compiled by build_processing, for the same event type).
            per_proto["flow"] = {
                "index": flows.index,
                "fields": flows.fields,
                "fields_under_root": flows.fields_under_root,
                "tags": flows.tags,
            }
        return Envelope(
            beat_name=s.beat_name,
            index=self.index_name(),
            precision=s.timestamp.precision,
            local_ips=local_addresses(),
            internal_networks=internal,
            agent_id=agent_id(s.data_path),
            ephemeral_id=str(uuid.uuid4()),
            # Like libbeat: host.name only; the rest comes from add_host_metadata.
            host={"name": s.beat_name},
            fields=s.fields,
            fields_under_root=s.fields_under_root,
            tags=s.tags,
            per_protocol=per_proto,
            processing=self.build_processing(),
            ignore_outgoing=s.packetbeat.ignore_outgoing,
        )

    def build_processing(self) -> Processing | None:
        """Compile the processors of every level once (validated already at load)."""
        s = self.settings
        per_type: dict[str, tuple[str, Any]] = {}
        for name, cfg in s.packetbeat.protocols.items():
            if cfg.enabled and cfg.processors:
                per_type[name] = (f"packetbeat.protocols.{name}.processors", cfg.processors)
        flows = s.packetbeat.flows
        if flows is not None and flows.processors:
            per_type["flow"] = ("packetbeat.flows.processors", flows.processors)
        ctx = Context(
            beat_name=s.beat_name,
            stats=self.stats,
            warn=lambda _msg: None,  # said once already, when the config was loaded
            config_dir=s.path.config or ".",
        )
        return Processing.build(s.processors, per_type, ctx)

    def auto_setup(self) -> None:
        """Like libbeat with the Elasticsearch output: load the index template and ILM policy
        (``setup.template.enabled``, default on) and dashboards (``setup.dashboards.enabled``)
        before publishing. A failure is logged and publishing goes on."""
        s = self.settings
        if s.output_name() != "elasticsearch":
            return
        from shipper.setup import run as setup_run

        steps = []
        if s.setup.template.enabled or s.setup.ilm.enabled:
            steps.append(
                (
                    "index template/ILM policy",
                    lambda: setup_run.setup_index_management(
                        s, template=s.setup.template.enabled, ilm=s.setup.ilm.enabled
                    ),
                )
            )
        if s.setup.dashboards.enabled:
            steps.append(("Kibana dashboards", lambda: setup_run.setup_dashboards(s)))
        for what, step in steps:
            said = io.StringIO()
            try:
                with contextlib.redirect_stdout(said):
                    step()
            except Exception as exc:
                log.warning("%s not loaded: %s", what, exc)
            for line in said.getvalue().splitlines():
                log.info("setup: %s", line)

    def start_pipeline(self, live: bool) -> Pipeline:
        s = self.settings
        self.auto_setup()
        self.output = self.build_output()
        self.queue = self.build_queue()
        # Stopping (a signal): a put waiting for room gives up when the shutdown timeout
        # has passed, counting what it drops.
        self.queue.abort = self.stop_event
        self.queue.abort_grace = self._shutdown_timeout()
        ignore = self.ignores_outgoing()
        self.pipeline = Pipeline(
            self.output,
            self.queue,
            self.envelope(),
            self.stats,
            live=live,
            ignore_outgoing=ignore,
            backoff=self.output.backoff,
            on_fatal=self.stop_event.set,
            enrich=self.process_watcher(live),
        )
        self.pipeline.start()
        self.monitor.add("", lambda: dict(self.decoder_stats))
        self.monitor.add("pipeline", lambda: dict(self.stats))
        mem = s.queue.mem
        self.monitor.configure(
            name=s.beat_name,
            version=VERSION,
            ephemeral_id=str(self.pipeline.envelope.agent.get("ephemeral_id", "")),
            output_type=s.output_name(),
            queue_max=mem.events if mem is not None else (3200 if s.queue.disk is None else 0),
        )
        return self.pipeline

    def process_watcher(self, live: bool) -> Any:
        """``packetbeat.procs``: the enrichment hook for live capture (None otherwise)."""
        procs = self.settings.packetbeat.procs
        if not procs.enabled:
            return None
        if not live:
            log.info("process watcher disabled when file input is used (packetbeat.procs)")
            return None
        from shipper.agent.procs import ProcessWatcher

        log.info("process watcher enabled (packetbeat.procs)")
        watcher = ProcessWatcher(procs, local_addresses())
        self.monitor.add("procs", lambda: {"lookups": watcher.lookups, "scans": watcher.scans})
        return watcher.enrich

    @staticmethod
    def tune_gc() -> None:
        """The packet path allocates many short-lived dicts and no reference cycles, so the
        default gen-0 threshold (700) makes the cyclic collector re-scan in-flight events and
        connection state over and over. Freeze what setup allocated and collect rarely."""
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)

    def install_signals(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            log.info("received signal %d, stopping", signum)
            self.stop_event.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)
            signal.signal(signal.SIGTERM, handler)

    # -- capture file replay (-I) --------------------------------------------------------

    def run_file(
        self, path: str, *, topspeed: bool, loops: int = 1, one_at_a_time: bool = False, dump_prefix: str = ""
    ) -> int:
        """Replay a capture file. Capture timestamps are always kept (Packetbeat overwrites
        them with the wall clock unless ``-t``); without ``-t`` packets are paced at the
        capture's own rate."""
        workers = self.worker_count()
        if workers > 1:
            from shipper.agent.workers import run_file_workers

            return run_file_workers(
                self,
                workers,
                path,
                topspeed=topspeed,
                loops=loops,
                one_at_a_time=one_at_a_time,
                dump_prefix=dump_prefix,
            )
        CaptureFile(path).close()  # fail early: CaptureError says what is wrong with the file
        pipeline = self.start_pipeline(live=False)
        self.install_signals()
        self.tune_gc()
        self.monitor.start()
        report = self.replay_report(loops, progress=not one_at_a_time)
        publish = report.counting(pipeline.publish_all)
        http = self.start_http()
        report.start()
        dumper = Dumper(dump_prefix) if dump_prefix else None
        reader: CaptureFile | None = None
        n = 0
        internal: BaseException | None = None
        try:
            while not self.stop_event.is_set() and (loops == 0 or n < loops):
                n += 1
                decoder = self.new_decoder()
                reader = CaptureFile(path)
                self.monitor.add("pcap", reader.stats.as_dict)
                report.reader(reader.stats, reader.size, decoder.unclaimed)
                packets: Iterable[tuple[int, int, bytes, int]] = reader
                if one_at_a_time:
                    packets = _one_at_a_time(packets)
                if dumper is not None:
                    packets = dumper.wrap(packets)
                mapped = walk.walkable(reader) if topspeed and packets is reader else None
                walked = walk.chunks(mapped, decoder, self.stop_event, 256) if mapped is not None else None
                chunks: Iterator[list[Any]]
                if walked is not None:
                    chunks = walked
                else:
                    # Paced (no -t): a chunk goes as soon as the next packet is not due yet, so
                    # events never wait for 256 packets (nor -O for 256 presses of Enter).
                    chunks = chunked(packets, topspeed, self.stop_event, 1 if one_at_a_time else 256)
                coalesce = REPLAY_COALESCE if topspeed and not one_at_a_time else 1
                feed = walk.feeder(decoder) if walked is not None else None
                try:
                    self._loop(decoder, chunks, pipeline, publish, coalesce, feed)
                finally:
                    if walked is not None:
                        walked.close()
                    if mapped is not None:
                        mapped.close()  # (also when the walk never started)
                    reader.close()
                if pipeline.failed.is_set():
                    break
                for events in decoder.flush_batches():
                    publish(events)
                if reader.error:
                    self.stats.incr("pcap.damaged_files")
                    log.warning("capture file problem: %s%s", reader.error, _more_problems(reader))
        except Exception as exc:
            # A bug in the packet loop. Stop reading, but ship what was already published
            # (bounded by the shutdown timeout), then say what happened in one line.
            internal = exc
            self.stats.incr("beat.internal_errors")
            log.error(
                "internal error in the packet loop: %s",
                describe_error(exc),
                exc_info=exc if log.isEnabledFor(logging.DEBUG) else None,
            )
            self.stop_event.set()
        finally:
            if dumper is not None:
                dumper.close()
        report.stop()
        drained = self._drain(pipeline)
        self.stop_reporting(http)
        return report.finish(self.exit_code(pipeline, drained, internal))

    def stop_reporting(self, http: Any) -> None:
        """The end of a run: the last metrics line ("Total metrics"), the stats endpoint closed."""
        self.monitor.stop()
        self.monitor.log_now(final=True)
        if http is not None:
            http.stop()

    def start_http(self) -> Any:
        """``http.enabled``: the stats endpoint, for replays as for live capture."""
        if not self.settings.http.enabled:
            return None
        from shipper.agent.httpstats import start_stats_server

        return start_stats_server(self, list)

    def replay_report(self, loops: int, progress: bool = True) -> ReplayReport:
        """Progress line (on a terminal; not with ``-O``, which prompts there), summary and
        hints of a replay (docs/replay.md)."""
        enabled = frozenset(n for n, c in self.settings.packetbeat.protocols.items() if c.enabled)
        return ReplayReport(
            self.stats, loops=loops, enabled_protocols=enabled, interactive=None if progress else False
        )

    def exit_code(self, pipeline: Pipeline, drained: bool, internal: BaseException | None) -> int:
        """The process's exit status once the pipeline is closed, with at most one
        ``Exiting:`` line on stderr."""
        if internal is not None:
            print(f"Exiting: internal error: {describe_error(internal)}{_trace_hint()}", file=sys.stderr)
            if _tracebacks():
                traceback.print_exception(internal, file=sys.stderr)
            return 1
        if pipeline.closed_by_peer:
            return EXIT_SIGPIPE
        if pipeline.fatal:
            exc = pipeline.fatal_exc
            print(f"Exiting: {pipeline.fatal}{_trace_hint() if exc else ''}", file=sys.stderr)
            if _tracebacks() and exc is not None:
                traceback.print_exception(exc, file=sys.stderr)
            return 1
        return 0 if drained or self.stop_event.is_set() else 1

    def _drain(self, pipeline: Pipeline) -> bool:
        """Wait until the output has acknowledged everything. A signal (or an internal
        error), before or during the wait, bounds it by the shutdown timeout; an output
        that has failed ends it."""
        pipeline.queue.close()  # nothing more is coming: partial batches go out at once
        while not self.stop_event.is_set() and not pipeline.failed.is_set():
            if pipeline.queue.wait_empty(0.2):
                break
        stop = self.stop_event
        return pipeline.close(stop.left(self._shutdown_timeout()) if stop.is_set() else 0.0)

    def _shutdown_timeout(self) -> float:
        return max(self.settings.packetbeat.shutdown_timeout, 5.0)

    def _loop(
        self,
        decoder: Decoder,
        chunks: Iterable[list[Any]],
        pipeline: Pipeline,
        publish: Publish | None = None,
        coalesce: int = 1,
        feed: Callable[[list[Any]], list[dict[str, Any]]] | None = None,
    ) -> None:
        """``feed``: the decoder's method for the chunks (``feed_many``)."""
        feed = feed or decoder.feed_many
        stop = self.stop_event
        # Chunks keep events flowing to the queue promptly and the stop flag checked (a
        # signal, or the pipeline stopping on its own, sets it). At top speed the events
        # of several chunks go to the queue together (``coalesce``): each hand-over wakes
        # the output's thread, and with ``flush.timeout: 0s`` a wake per chunk cost a
        # fifth of the replay's CPU in thread switches.
        out = Coalesced(publish or pipeline.publish_all, coalesce)
        try:
            for chunk in chunks:
                if stop.is_set():
                    break
                evs = feed(chunk)
                if evs:
                    out.add(evs)
        finally:
            out.flush()  # also when decoding fails: what was decoded before is published


#: Exit status when stdout's reader went away: what a shell reports for a process killed
#: by SIGPIPE (128 + 13), as ``yes | head -1`` does.
EXIT_SIGPIPE = 128 + signal.SIGPIPE


def _more_problems(reader: CaptureFile) -> str:
    """The first problem is in ``reader.error``; the counts of all of them (pcap.* metrics)."""
    st = reader.stats
    if st.problems() <= 1:
        return ""
    counts = {k: v for k, v in st.as_dict().items() if v and k in _PROBLEM_COUNTERS}
    return " (in all: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"


_PROBLEM_COUNTERS = ("truncated", "corrupt", "malformed_blocks", "bad_timestamps")


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _tracebacks() -> bool:
    from shipper.agent.logs import tracebacks_enabled

    return tracebacks_enabled()


def _trace_hint() -> str:
    return "" if _tracebacks() else " (run with -d '*' for the traceback)"


def chunked(
    packets: Iterable[tuple[int, int, bytes, int]], topspeed: bool, stop: threading.Event, size: int
) -> Iterator[list[tuple[int, int, bytes, int]]]:
    """Batches of packets; without ``-t`` paced at the capture's own rate, a batch going out
    whenever the next packet is not due yet (events never wait for a full batch)."""
    it = iter(packets)
    if topspeed:
        while not stop.is_set():
            chunk = list(itertools.islice(it, size))
            if not chunk:
                return
            yield chunk
        return
    first_ts = None
    start = 0.0
    buf: list[tuple[int, int, bytes, int]] = []
    for pkt in it:
        ts = pkt[0]
        if first_ts is None:
            first_ts, start = ts, time.monotonic()
        else:
            delay = start + (ts - first_ts) / NS - time.monotonic()
            if delay > 0:
                if buf:
                    yield buf
                    buf = []
                if stop.wait(delay):
                    return
        buf.append(pkt)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _one_at_a_time(packets: Iterable[tuple[int, int, bytes, int]]) -> Iterable[tuple[int, int, bytes, int]]:
    for pkt in packets:
        print("Press enter to read packet", file=sys.stderr)
        sys.stdin.readline()
        yield pkt


class Dumper:
    """``-dump prefix``: write what is read to ``prefix-YYYYMMDDhhmmss.pcap``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.writer: PcapWriter | None = None

    def wrap(self, packets: Iterable[tuple[int, int, bytes, int]]) -> Iterable[tuple[int, int, bytes, int]]:
        for pkt in packets:
            w = self.writer
            if w is None:
                stamp = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
                w = self.writer = PcapWriter(f"{self.prefix}-{stamp}.pcap", pkt[1])
            if pkt[1] == w.linktype:
                w.write(pkt[0], pkt[2], pkt[3])
            yield pkt

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
