"""Worker processes: one capture decoded on every core (``packetbeat.workers``).

Replay (``-I``): each packet belongs to the worker its connection hashes to (a symmetric
hash of the IP pair and the port pair, so both directions meet in one worker; fragments
follow their datagram's first fragment). At top speed (``-t``) every worker reads the
whole file itself (record framing only; frames not its own are never copied), numbers the
packets, hashes each and decodes its own: nothing but events crosses the pipes, and the
parent only merges and publishes. Paced (without ``-t``), one packet at a time (``-O``)
or with ``-dump``, the parent reads the capture and sends each worker its packets in large
batches over pipes (``marshal``, not one pickle per packet). Each worker runs a decoder,
the envelope and the JSON encoder and sends back encoded events tagged with the position
of the packet that completed them, per batch of positions; the parent merges each batch
by position and publishes it. Every worker's clock is the one a single decoder would have:
a decoder fed the whole capture runs expiry (``tick``) at certain packets; an empty
decoder that sees every packet's time (the parent's, or each self-reading worker's own)
computes exactly those instants, so connections, reassembly and flows expire where they
expire in one process. At the end of input the final flow reports get one time for all
workers (the one a single table would use).

Metrics: each reply carries the worker's counter deltas; the parent adds them to its own
counters, so monitoring and the end-of-run totals are the sums.

A worker that dies (or fails) ends the run: the parent says which one and how, in one
line, and exits non-zero; nothing waits for a reply that cannot come.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import pickle
import resource
import select
import signal
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import TYPE_CHECKING, Any, BinaryIO

from capture.pcapfile import MAX_RECORD, PcapMap, ReaderStats
from protocols.flows.report import flow_id_conn, flow_id_with_conn
from protocols.stats import Counters
from protocols.unclaimed import PortTally
from shipper.agent import walk
from shipper.outputs.base import EncodedEvent, metadata_head
from shipper.pipeline.publisher import REPLAY_COALESCE, Coalesced

if TYPE_CHECKING:
    from protocols.decoder import Decoder
    from shipper.agent.beat import Beat
    from shipper.agent.progress import ReplayReport
    from shipper.pipeline.publisher import Pipeline

log = logging.getLogger("workers")

NS = 1_000_000_000
Packet = tuple[int, int, bytes, int]

#: Packets per batch sent to the workers (replay at top speed).
BATCH = 2048
#: Batches in flight before the parent waits for the oldest one's results.
WINDOW = 6
#: Replies the parent holds per worker before that worker's writes wait (workers that
#: read the file themselves are bounded by this).
INBOX = 8
#: Test hook: ``WIREBEAT_TEST_WORKER_EXIT=<index>`` makes that worker ``os._exit(3)``
#: after its first batch (tests of the failure path).
TEST_EXIT_ENV = "WIREBEAT_TEST_WORKER_EXIT"

_HDR = struct.Struct("<BI")
_MARSHAL, _PICKLE = 0, 1


def worker_count(configured: int) -> int:
    """``packetbeat.workers``: 0 means one per CPU this process may run on."""
    if configured > 0:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# -- the connection hash -----------------------------------------------------------------------

_LT_ETHERNET, _LT_NULL, _LT_LOOP, _LT_SLL, _LT_SLL2 = 1, 0, 108, 113, 276
_LT_RAW = frozenset({101, 12, 14})
_LT_IPV4, _LT_IPV6 = 228, 229
_VLAN = frozenset({0x8100, 0x88A8, 0x9100})
_V6_EXT = frozenset({0, 43, 60, 135, 139, 140, 253, 254})
_MAX_FRAGMENTS = 4096


class ConnectionHash:
    """Frame → worker index: a symmetric hash of (IP pair, port pair) for TCP/UDP/SCTP,
    of the IP pair for other IP protocols, worker 0 for frames that are not IP.

    IP fragments: the first fragment carries the ports, so it is hashed like an unfragmented
    packet and its datagram id remembered; later fragments of that datagram go where it
    went. A fragment seen before its first fragment is hashed on the IP pair alone
    (counted in ``orphan_fragments``): the worker then cannot reassemble that datagram, as
    a single decoder could (captures with fragments out of order are rare)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.fragments: dict[tuple[bytes, bytes, int, int], int] = {}
        self.orphan_fragments = 0

    def __call__(self, lt: int, b: bytes) -> int:
        try:
            return self._hash(lt, b) % self.n
        except (IndexError, struct.error):
            return 0

    def _hash(self, lt: int, b: bytes) -> int:
        if lt == _LT_ETHERNET:
            off, et = 14, (b[12] << 8) | b[13]
        elif lt == _LT_SLL:
            off, et = 16, (b[14] << 8) | b[15]
        elif lt == _LT_SLL2:
            off, et = 20, (b[0] << 8) | b[1]
        elif lt == _LT_NULL or lt == _LT_LOOP:
            fam = b[0] | b[3]  # 2 (IPv4) in either byte order; IPv6 families are 24, 28, 30
            return self._ip(b, 4, 4 if fam == 2 else 6)
        elif lt in _LT_RAW:
            return self._ip(b, 0, b[0] >> 4)
        elif lt == _LT_IPV4:
            return self._ip(b, 0, 4)
        elif lt == _LT_IPV6:
            return self._ip(b, 0, 6)
        else:
            return 0
        tags = 0
        while et in _VLAN and tags < 4:
            et = (b[off + 2] << 8) | b[off + 3]
            off += 4
            tags += 1
        if et == 0x0800:
            return self._ip(b, off, 4)
        if et == 0x86DD:
            return self._ip(b, off, 6)
        return 0

    def _ip(self, b: bytes, off: int, version: int) -> int:
        if version == 4:
            ihl = (b[off] & 0xF) << 2
            proto = b[off + 9]
            src, dst = b[off + 12 : off + 16], b[off + 16 : off + 20]
            frag = ((b[off + 6] << 8) | b[off + 7]) & 0x3FFF
            start = off + ihl
            if frag:
                fkey = (src, dst, proto, (b[off + 4] << 8) | b[off + 5])
                return self._fragment(fkey, frag & 0x1FFF == 0, bool(frag & 0x2000), b, start, proto)
        elif version == 6:
            proto = b[off + 6]
            src, dst = b[off + 8 : off + 24], b[off + 24 : off + 40]
            start = off + 40
            hops = 0
            while (proto in _V6_EXT or proto == 44 or proto == 51) and hops < 8:
                hops += 1
                nxt = b[start]
                if proto == 44:
                    fo = (b[start + 2] << 8) | b[start + 3]
                    ident = struct.unpack_from(">I", b, start + 4)[0]
                    start += 8
                    if fo & 0xFFF9:  # an offset or more fragments: a fragment
                        fkey = (src, dst, nxt, ident)
                        return self._fragment(fkey, fo & 0xFFF8 == 0, bool(fo & 1), b, start, nxt)
                elif proto == 51:
                    start += (b[start + 1] + 2) << 2
                else:
                    start += (b[start + 1] + 1) << 3
                proto = nxt
        else:
            return 0
        return _sym(src, dst, _ports(b, start, proto))

    def _fragment(
        self, fkey: tuple[bytes, bytes, int, int], first: bool, more: bool, b: bytes, start: int, proto: int
    ) -> int:
        frags = self.fragments
        if first:
            h = _sym(fkey[0], fkey[1], _ports(b, start, proto))
            if more:
                if len(frags) >= _MAX_FRAGMENTS:
                    frags.pop(next(iter(frags)))
                frags[fkey] = h
            return h
        h2 = frags.get(fkey) if more else frags.pop(fkey, None)
        if h2 is None:
            self.orphan_fragments += 1
            return _sym(fkey[0], fkey[1], b"")
        return h2


def _ports(b: bytes, start: int, proto: int) -> bytes:
    if proto == 6 or proto == 17 or proto == 132:
        p = b[start : start + 4]
        if len(p) == 4:
            return p
    return b""


def _sym(src: bytes, dst: bytes, ports: bytes) -> int:
    a = int.from_bytes(src, "big") ^ int.from_bytes(dst, "big")
    p = ((ports[0] << 8 | ports[1]) ^ (ports[2] << 8 | ports[3])) if ports else 0
    return _mix(a, p)


def _mix(addrs: int, ports: int) -> int:
    """Symmetric by construction (each argument is the XOR of the two sides), mixed so the
    low bits that pick the worker depend on every bit."""
    h = (addrs * _K1 + ports * _K2) & _M64
    return h ^ (h >> 31) ^ (h >> 47)


_K1, _K2, _M64 = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0xFFFFFFFFFFFFFFFF


#: Ethernet + IPv4 in one unpack: ethertype, version/IHL, flags/fragment offset, protocol,
#: source, destination, the two ports.
_ETH_IP4 = struct.Struct(">12xHB5xHxB2xIIHH")
#: A little-endian pcap record header and the same fields, read little-endian too, with
#: the IP total length and the TCP data offset and flags (a pure ACK is not decoded).
_LE_REC_ETH_IP4 = struct.Struct("<IIII12xHBxH2xHxB2xIIHH8xBB")
#: Connections whose worker a mapped walk keeps (``_read_pass``); cleared when full.
_MAX_HASHES = 1 << 16
#: Packets the C walker returns at most per call.
_OWN_BATCH = 256


def _swap32(v: int) -> int:
    return int.from_bytes(v.to_bytes(4, "little"), "big")


def _swap16(v: int) -> int:
    return ((v & 0xFF) << 8) | (v >> 8)


# -- messages ----------------------------------------------------------------------------------


def send_msg(fh: BinaryIO, msg: tuple[Any, ...]) -> None:
    try:
        data = marshal.dumps(msg)
        codec = _MARSHAL
    except ValueError:  # an object marshal cannot write (events in dict mode)
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        codec = _PICKLE
    fh.write(_HDR.pack(codec, len(data)))
    fh.write(data)
    fh.flush()


def recv_msg(fh: BinaryIO) -> tuple[Any, ...] | None:
    """The next message, or None at end of file (the other side is gone)."""
    head = fh.read(_HDR.size)
    if len(head) < _HDR.size:
        return None
    codec, n = _HDR.unpack(head)
    data = fh.read(n)
    if len(data) < n:
        return None
    msg: tuple[Any, ...] = marshal.loads(data) if codec == _MARSHAL else pickle.loads(data)
    return msg


def pack_event(ready: Any) -> tuple[Any, ...]:
    """An event the worker's publisher prepared (an ``EncodedEvent``) → what crosses the pipe."""
    return (ready.data, ready.meta)


def unpack_event(data: bytes, meta: dict[str, Any], heads: dict[int, bytes] | None = None) -> Any:
    """The inverse of :func:`pack_event`, in the parent. ``heads``: the encoded
    ``@metadata`` heads of the metadata objects of one message, by ``id`` (the worker's
    events share a few, and marshal keeps them shared), so each is encoded once."""
    if heads is None or not meta:
        return EncodedEvent(data, meta)
    head = heads.get(id(meta))
    if head is None:
        head = heads[id(meta)] = metadata_head(meta)
    return EncodedEvent(data, meta, head)


class _Deltas:
    """Counter changes since the last report (what a worker sends with each reply)."""

    def __init__(self, *counters: Counters) -> None:
        self.counters = counters
        self.last: list[dict[str, int]] = [{} for _ in counters]

    def take(self) -> list[dict[str, int]]:
        out = []
        for c, last in zip(self.counters, self.last, strict=True):
            d = {}
            for k, v in list(c.items()):
                if last.get(k) != v:
                    d[k] = v - last.get(k, 0)
                    last[k] = v
            out.append(d)
        return out


def add_deltas(targets: Iterable[Counters], deltas: Iterable[dict[str, int]]) -> None:
    for c, d in zip(targets, deltas, strict=False):
        for k, v in d.items():
            c.incr(k, v)


# -- the pool ----------------------------------------------------------------------------------


class WorkerDied(Exception):
    """A worker ended without being asked to, or reported an internal error."""


class WorkerPool:
    """``n`` forked worker processes, each with a pipe in and a pipe out, and one thread per
    worker in the parent that reads its replies (so the parent never blocks writing to a
    worker that is blocked writing to the parent)."""

    def __init__(self, n: int, target: Callable[[int, BinaryIO, BinaryIO], int]) -> None:
        self.n = n
        self.target = target
        self.pids: list[int] = []
        self.out: list[BinaryIO] = []
        self.inbox: list[deque[tuple[Any, ...]]] = [deque() for _ in range(n)]
        self.cond = threading.Condition()
        self.failure: str | None = None
        self.finished = [False] * n
        self.exit_status: list[int | None] = [None] * n
        #: CPU seconds (user + system) of each worker that has ended.
        self.cpu: list[float] = [0.0] * n
        self._threads: list[threading.Thread] = []
        #: Set when the workers are being stopped or killed: replies no longer wait for room.
        self.closing = False
        #: Called in the reply thread with (worker, message) before a message is queued;
        #: True means it was handled (live capture publishes from there).
        self.handler: Callable[[int, tuple[Any, ...]], bool] | None = None

    def start(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        child_ends: list[tuple[int, int]] = []
        ins: list[int] = []
        for i in range(self.n):
            down_r, down_w = os.pipe()
            up_r, up_w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker
                code = 1
                try:
                    os.close(down_w)
                    os.close(up_r)
                    for a, b in child_ends:  # the parent's ends of the earlier workers' pipes
                        os.close(a)
                        os.close(b)
                    rin = open(down_r, "rb", buffering=1 << 20)  # noqa: SIM115
                    wout = open(up_w, "wb", buffering=1 << 20)  # noqa: SIM115
                    code = self.target(i, rin, wout)
                    with contextlib.suppress(OSError):
                        wout.flush()
                except BaseException:  # a worker never returns into the parent's code
                    with contextlib.suppress(Exception):
                        logging.getLogger("workers").exception("worker %d failed", i)
                    code = 1
                finally:
                    os._exit(code)
            os.close(down_r)
            os.close(up_w)
            self.pids.append(pid)
            self.out.append(open(down_w, "wb", buffering=1 << 20))  # noqa: SIM115
            ins.append(up_r)
            child_ends.append((down_w, up_r))
        for i, fd in enumerate(ins):
            t = threading.Thread(target=self._receive, args=(i, fd), name=f"worker-{i}-replies", daemon=True)
            t.start()
            self._threads.append(t)

    def _receive(self, i: int, fd: int) -> None:
        with open(fd, "rb", buffering=1 << 20) as fh:
            while True:
                try:
                    msg = recv_msg(fh)
                except Exception as exc:  # a garbled message: the worker is broken
                    self._fail(f"worker {i} sent an unreadable reply: {exc!r}")
                    return
                if msg is None:
                    if not self.finished[i]:
                        self._fail(f"worker {i} (pid {self.pids[i]}) {self._status(i)}")
                    return
                if msg[0] == "E":
                    self._fail(f"worker {i} (pid {self.pids[i]}) failed: {msg[1]}")
                    return
                if self.handler is not None:
                    try:
                        if self.handler(i, msg):
                            continue
                    except Exception as exc:  # a bug in the parent's handling: end the run, say so
                        from shipper.agent.beat import describe_error

                        self._fail(f"internal error with the events of worker {i}: {describe_error(exc)}")
                        return
                with self.cond:
                    if msg[0] == "D":
                        self.finished[i] = True
                    # Replies wait here, and the worker on its full pipe, while the parent
                    # is this far behind (workers reading the file themselves run ahead).
                    while len(self.inbox[i]) >= INBOX and self.failure is None and not self.closing:
                        self.cond.wait(0.5)
                    self.inbox[i].append(msg)
                    self.cond.notify_all()

    def _status(self, i: int) -> str:
        try:
            _pid, status = os.waitpid(self.pids[i], 0)
        except ChildProcessError:
            return "died"
        self.exit_status[i] = status
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            return f"died: killed by signal {name}"
        return f"died: exit code {os.WEXITSTATUS(status)}"

    def _fail(self, message: str) -> None:
        with self.cond:
            if self.failure is None:
                self.failure = message
            self.cond.notify_all()

    def send(self, i: int, msg: tuple[Any, ...]) -> None:
        if self.failure is not None:
            raise WorkerDied(self.failure)
        try:
            send_msg(self.out[i], msg)
        except (BrokenPipeError, ValueError, OSError):
            self._wait_failure(i)

    def _wait_failure(self, i: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.failure is not None, timeout=5.0)
        raise WorkerDied(self.failure or f"worker {i} (pid {self.pids[i]}) stopped reading")

    def take(self, i: int) -> tuple[Any, ...]:
        """The next reply of worker ``i`` (waits); WorkerDied if any worker failed."""
        with self.cond:
            while not self.inbox[i]:
                if self.failure is not None:
                    raise WorkerDied(self.failure)
                self.cond.wait(0.5)
            if self.failure is not None:
                raise WorkerDied(self.failure)
            msg = self.inbox[i].popleft()
            self.cond.notify_all()
            return msg

    def ready(self, i: int) -> bool:
        return bool(self.inbox[i])

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every worker to finish (``X``); wait for them; kill what does not end."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        for i in range(self.n):
            if not self.finished[i]:
                with contextlib.suppress(WorkerDied):
                    self.send(i, ("X",))
            with contextlib.suppress(OSError, ValueError):
                self.out[i].close()
        self._reap(timeout)

    def kill(self) -> None:
        """A failure: end the workers that are still running (ours, by pid), close the pipes."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        for fh in self.out:
            with contextlib.suppress(OSError, ValueError):
                fh.close()
        for i, pid in enumerate(self.pids):
            if self.exit_status[i] is None:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        self._reap(5.0)

    def _reap(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for i, pid in enumerate(self.pids):
            while self.exit_status[i] is None:
                try:
                    done, status, usage = os.wait4(pid, os.WNOHANG)
                except ChildProcessError:
                    self.exit_status[i] = 0
                    break
                if done:
                    self.exit_status[i] = status
                    self.cpu[i] = usage.ru_utime + usage.ru_stime
                    break
                if time.monotonic() > deadline:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                    deadline = time.monotonic() + 5.0
                time.sleep(0.01)
        for t in self._threads:
            t.join(timeout=1.0)


# -- the worker side ---------------------------------------------------------------------------


def _worker_setup(beat: Beat) -> tuple[Counters, Counters]:
    # The parent handles ^C and SIGTERM sent to the whole process group and tells the
    # workers to finish; a worker whose parent is gone sees the end of its pipe and ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    beat.monitor.period = 0
    beat.stats = Counters()
    beat.decoder_stats = Counters()
    return beat.stats, beat.decoder_stats


def encodes_in_workers(beat: Beat, live: bool) -> bool:
    """Workers envelope and encode the events unless something must see every event in
    the parent: processors (some keep state across events), ``packetbeat.procs`` (one
    process table), or debug logging of each published event."""
    from shipper.pipeline.publisher import publish_log

    if beat.envelope().processing is not None:
        return False
    if live and beat.settings.packetbeat.procs.enabled:
        return False
    return not publish_log.isEnabledFor(logging.DEBUG)


def _preparer(
    beat: Beat, stats: Counters, live: bool, renumber: bool
) -> Callable[[dict[str, Any]], tuple[Any, ...] | None]:
    """What a worker does with each protocol event: the publisher's own ``_prepare``
    (envelope + JSON), or nothing (the parent prepares it: ``(event,)``). With
    ``renumber``, a flow report whose ``flow.id`` carries a connection number (which only
    the parent can make global) is sent with that id, ``(data, meta, id)``: the parent
    puts the global number into the encoded event (nothing in the envelope reads
    ``flow.id``: workers encode only when no processors run)."""
    if not encodes_in_workers(beat, live):
        return lambda evt: (evt,)
    from shipper.pipeline.publisher import Pipeline

    p = Pipeline(
        None,  # type: ignore[arg-type]  # only the producer side is used
        None,  # type: ignore[arg-type]
        beat.envelope(),
        stats,
        live=live,
        ignore_outgoing=beat.ignores_outgoing(),
    )
    prepare = p._prepare
    #: flow.id → whether it carries a connection number (a flow is reported every period
    #: under one id).
    carries: dict[str, bool] = {}

    def run(evt: dict[str, Any]) -> tuple[Any, ...] | None:
        fid = None
        if renumber and evt.get("type") == "flow":
            flow = evt.get("flow")
            fid = flow.get("id") if isinstance(flow, dict) else None
            if isinstance(fid, str):
                has = carries.get(fid)
                if has is None:
                    if len(carries) >= 65536:
                        carries.clear()
                    has = carries[fid] = flow_id_conn(fid) is not None
                if not has:
                    fid = None
            else:
                fid = None
        ready = prepare(evt)
        if ready is None:
            return None
        return pack_event(ready) if fid is None else (*pack_event(ready), fid)

    return run


def _collect(
    evs: Iterable[dict[str, Any]],
    key: int,
    prepare: Callable[[dict[str, Any]], tuple[Any, ...] | None],
    types: dict[str, int],
    out: list[tuple[Any, ...]],
) -> None:
    """Events a worker produced, counted by type and prepared for the parent, tagged ``key``
    (twice the position of the packet that completed them, plus one; a tick's: times two)."""
    for e in evs:
        t = e.get("type", "?")
        types[t] = types.get(t, 0) + 1
        r = prepare(e)
        if r is not None:
            out.append((key, *r))


def replay_worker(beat: Beat, idx: int, n: int, rin: BinaryIO, wout: BinaryIO) -> int:
    pstats, dstats = _worker_setup(beat)
    deltas = _Deltas(dstats, pstats)
    die_after_first = os.environ.get(TEST_EXIT_ENV) == str(idx)
    created: list[int] = []

    def new_decoder() -> Decoder:
        d = beat.new_decoder()
        d.hold_clock()
        if d.flows is not None:
            d.flows.new_conns = created
        return d

    decoder = new_decoder()
    prepare = _preparer(beat, pstats, live=False, renumber=decoder.flows is not None)
    #: Reading the file itself (``P``): the empty decoder that says when to tick, and the
    #: hash every worker computes alike (fragments follow their first fragment).
    clock = beat.new_decoder(Counters())
    chash = ConnectionHash(n)
    beat.tune_gc()
    try:
        while True:
            msg = recv_msg(rin)
            if msg is None:
                return 0  # the parent is gone
            kind = msg[0]
            if kind == "P":
                if not _read_pass(
                    msg, idx, n, decoder, clock, chash, created, prepare, deltas, rin, wout, die_after_first
                ):
                    return 0
            elif kind == "B":
                out: list[tuple[Any, ...]] = []
                conns: list[tuple[int, int]] = []
                types: dict[str, int] = {}
                feed = decoder.feed_many
                tick = decoder.tick
                for item in msg[2]:
                    pos, ts, lt = item[0], item[1], item[2]
                    if lt < 0:
                        evs = tick(ts)
                        key = 2 * pos
                    else:
                        evs = feed((item[1:],))
                        key = 2 * pos + 1
                        if created:
                            conns.extend((pos, c) for c in created)
                            created.clear()
                    if evs:
                        _collect(evs, key, prepare, types, out)
                send_msg(wout, ("R", msg[1], out, deltas.take(), conns, types, None))
                if die_after_first:
                    os._exit(3)
            elif kind == "Q":
                send_msg(wout, ("A", decoder.flows_final_at()))
            elif kind == "F":
                out = []
                types = {}
                _collect(decoder.flush(msg[2]), 0, prepare, types, out)
                tally = decoder.unclaimed
                if msg[3]:
                    decoder = new_decoder()
                    clock = beat.new_decoder(Counters())
                send_msg(wout, ("R", msg[1], out, deltas.take(), [], types, tally))
            elif kind == "X":
                send_msg(wout, ("D", deltas.take()))
                return 0
    except BrokenPipeError:
        return 0
    except Exception as exc:
        from shipper.agent.beat import describe_error

        with contextlib.suppress(Exception):
            send_msg(wout, ("E", describe_error(exc)))
        return 1


def _read_pass(
    msg: tuple[Any, ...],
    idx: int,
    n: int,
    decoder: Decoder,
    clock: Decoder,
    chash: ConnectionHash,
    created: list[int],
    prepare: Callable[[dict[str, Any]], tuple[Any, ...] | None],
    deltas: _Deltas,
    rin: BinaryIO,
    wout: BinaryIO,
    die_after_first: bool,
) -> bool:
    """One pass over the capture file, read by this worker itself (``("P", path, first
    batch, first position)``): every worker reads every record, numbers it, ticks where the
    parent's clock would and hashes it as the parent would, and decodes only its own. It
    replies per ``BATCH`` positions (``R``, as for a ``B`` batch; worker 0 adds its reader's
    counters), then ``("Z", next batch, next position, first problem, more problems, reader
    counters)``. An ``S`` from the parent (stop) ends the pass at the next batch boundary.
    False: the parent is gone."""
    from capture import CaptureFile
    from shipper.agent.beat import _more_problems

    _, path, k, pos = msg
    reader = CaptureFile(path)
    stats = reader.stats
    tick = decoder.tick
    clock_tick = clock.tick
    next_tick = clock.next_tick
    fast = _ETH_IP4.unpack_from
    rfd = rin.fileno()
    out: list[tuple[Any, ...]] = []
    conns: list[tuple[int, int]] = []
    types: dict[str, int] = {}
    end = pos + BATCH

    def reply(last: bool = False) -> bool:
        """Send the batch; False when the parent asked to stop (or is gone)."""
        nonlocal out, conns, types, k
        rs = stats.as_dict() if idx == 0 else None
        send_msg(wout, ("R", k, out, deltas.take(), conns, types, None, rs))
        k += 1
        out, conns, types = [], [], {}
        if die_after_first:
            os._exit(3)
        if not last and select.select([rfd], [], [], 0)[0]:
            m = recv_msg(rin)
            if m is None or m[0] == "S":
                return False
        return True

    it = reader.records()
    take = decoder.take

    def settle(last: int) -> None:
        """Tag what the packet at position ``last`` completed."""
        evs = take()
        if created:
            conns.extend((last, c) for c in created)
            created.clear()
        if evs:
            _collect(evs, 2 * last + 1, prepare, types, out)

    def own() -> Iterator[tuple[int, int, bytes, int]]:
        """This worker's packets, for one ``feed_many`` call; before the next record is
        read, what the last packet yielded completed is taken (``settle``)."""
        nonlocal pos, end, next_tick
        last = -1  # position of the last packet yielded, until settled
        for ts, lt, buf, start, stop, wire in it:
            if last >= 0:
                settle(last)
                last = -1
            if ts >= next_tick:
                clock_tick(ts)
                next_tick = clock.next_tick
                evs = tick(ts)
                if evs:
                    _collect(evs, 2 * pos, prepare, types, out)
            frame = None
            if lt == 1 and stop - start >= 38:
                et, vihl, frag, proto, sa, da, sp, dp = fast(buf, start)
                if et == 0x0800 and vihl == 0x45 and not frag & 0x3FFF and (proto == 6 or proto == 17):
                    # Untagged IPv4 without options, not a fragment, TCP or UDP: the value
                    # ConnectionHash gives, inlined.
                    h = ((sa ^ da) * _K1 + (sp ^ dp) * _K2) & _M64
                    w = (h ^ (h >> 31) ^ (h >> 47)) % n
                else:
                    frame = buf[start:stop]
                    w = chash(lt, frame)
            else:
                frame = buf[start:stop]
                w = chash(lt, frame)
            pos += 1
            if w == idx:
                last = pos - 1
                yield (ts, lt, buf[start:stop] if frame is None else frame, wire)
            if pos == end:
                if last >= 0:
                    settle(last)
                    last = -1
                end += BATCH
                if not reply():
                    return
        if last >= 0:
            settle(last)

    # The common capture (classic pcap, little-endian, Ethernet) is walked in memory, its
    # record header and the frame's addresses and ports read in one unpack.
    mapped = reader.mapped()
    if mapped is not None and not (mapped.linktype == 1 and mapped.endian == "<"):
        mapped.close()
        mapped = None

    parsed = walk.ext is not None and decoder.flows is None

    def own_mapped(m: PcapMap) -> Iterator[tuple[Any, ...]]:
        """``own`` over a mapped file. The frame's fields are read little-endian with the
        record header: the hash of a connection (which needs them big-endian) is computed
        once and kept by the XOR of its fields as read."""
        nonlocal pos, end, next_tick
        buf, fend, header, mult = m.buf, m.end, m.header, m.ts_mult
        fused = _LE_REC_ETH_IP4.unpack_from
        # A pure ACK (TCP, no payload, no SYN, FIN or RST, not cut short) changes nothing
        # but the flow table (``Decoder.feed_many`` skips it likewise).
        skip_acks = decoder.flows is None
        hashes: dict[int, int] = {}
        off = 24
        first = pos  # records walked: pos - first
        last = -1
        # The next tick's second: most records are earlier, and need no time in nanoseconds
        # (unless the fraction is out of range, and so may carry into seconds).
        tick_sec = next_tick // 1_000_000_000
        frac_max = 1_000_000_000 // mult
        et = vihl = total = frag = proto = sa = da = sp = dp = doff = flags = 0
        own_c = walker = None
        if walk.ext is not None:
            # With flows off, TCP segments come parsed (for Decoder.feed_parsed, below).
            walker = walk.ext.Walker(buf, n, idx, skip_acks, mult, False, 1, parsed)
            m.on_close(walker.release)
            own_c = walker.own
        while off + 16 <= fend:
            if own_c is not None:
                # The records up to the next one this loop must look at (a tick due, a
                # frame to hash in Python, the end of the batch or of the file) walked in C:
                # this worker's packets come back with their positions. The record it
                # stops at is looked at below as if it had not run.
                off, k, rels, pkts = own_c(off, end - pos - 1, _OWN_BATCH, next_tick)
                for rel, pkt in zip(rels, pkts, strict=True):
                    if last >= 0:
                        settle(last)
                    last = pos + rel
                    yield pkt
                pos += k
                if off + 16 > fend:
                    break
            if off + 64 <= fend:
                sec, frac, incl, wire, et, vihl, total, frag, proto, sa, da, sp, dp, doff, flags = fused(
                    buf, off
                )
            else:
                sec, frac, incl, wire = header(buf, off)
                et = 0
            nxt = off + 16 + incl
            if incl > MAX_RECORD or nxt > fend:
                break
            if last >= 0:
                settle(last)
                last = -1
            if sec >= tick_sec or frac >= frac_max:
                ts = sec * 1_000_000_000 + frac * mult
                if ts >= next_tick:
                    clock_tick(ts)
                    next_tick = clock.next_tick
                    tick_sec = next_tick // 1_000_000_000
                    evs = tick(ts)
                    if evs:
                        _collect(evs, 2 * pos, prepare, types, out)
            frame = None
            # (0x0008: IPv4 read little-endian; 0xFF3F: offset and MF bits, likewise)
            if et == 0x0008 and incl >= 38 and vihl == 0x45 and not frag & 0xFF3F and proto in (6, 17):
                key = (sa ^ da) << 16 | (sp ^ dp)
                w = hashes.get(key)
                if w is None:
                    if len(hashes) >= _MAX_HASHES:
                        hashes.clear()
                    w = hashes[key] = _mix(_swap32(sa ^ da), _swap16(sp ^ dp)) % n
            else:
                frame = buf[off + 16 : nxt]
                w = chash(1, frame)
            pos += 1
            if w == idx:
                if (
                    skip_acks
                    and frame is None
                    and proto == 6
                    and not flags & 0x07
                    and incl >= 54
                    and doff >= 0x50
                    and ((total & 0xFF) << 8 | total >> 8) == 20 + ((doff >> 4) << 2) <= incl - 14
                ):
                    pass  # a pure ACK
                else:
                    last = pos - 1
                    ts = sec * 1_000_000_000 + frac * mult
                    yield (ts, 1, buf[off + 16 : nxt] if frame is None else frame, wire)
            off = nxt
            if pos == end:
                if last >= 0:
                    settle(last)
                    last = -1
                end += BATCH
                if m.progress(off, pos - first):  # truncated under the mapping
                    fend = m.end
                    if walker is not None:
                        walker.shrink(fend)
                if not reply():
                    return  # (stopped: the reader counts what was walked)
        if last >= 0:
            settle(last)
        m.finish(off, pos - first)  # why the walk ended, if before the end of the file

    try:
        # One decoder call for the whole pass (a call per packet costs more than the
        # decoding of a pure ACK); frames are not copied unless they are this worker's.
        if mapped is None:
            decoder.feed_many(own())
        elif parsed:
            decoder.feed_parsed(own_mapped(mapped))
        else:
            decoder.feed_many(own_mapped(mapped))
    finally:
        if mapped is not None:
            mapped.close()
        it.close()
        reader.close()
    if pos != end - BATCH:  # the last, partial batch
        reply(last=True)
    more = _more_problems(reader) if reader.error else ""
    send_msg(wout, ("Z", k, pos, reader.error, more, stats.as_dict()))
    return True


# -- the parent side: replay -------------------------------------------------------------------


class Replay:
    """Dispatch a capture's packets to the workers, merge their events in order, publish."""

    def __init__(
        self,
        beat: Beat,
        pool: WorkerPool,
        pipeline: Pipeline,
        encoded: bool,
        report: ReplayReport | None = None,
    ) -> None:
        self.beat = beat
        #: The replay's progress and summary: events by type, and the workers' unclaimed
        #: ports of the current pass (merged into ``tally`` at each pass's flush).
        self.report = report
        self.tally = PortTally()
        self.pool = pool
        self.pipeline = pipeline
        self.encoded = encoded
        self.hash = ConnectionHash(pool.n)
        self.clock = beat.new_decoder(Counters())
        self.renumber = self.clock.flows is not None
        #: Per worker: its connection numbers → the ones one flow table would have given.
        self.conn_ids: list[dict[int, int]] = [{} for _ in range(pool.n)]
        #: Per worker: encoded ``flow.id`` members already renumbered (``_renumber_encoded``).
        self.fid_cache: list[dict[str, tuple[int, tuple[bytes, bytes]]]] = [{} for _ in range(pool.n)]
        self.next_conn = 1
        flows = beat.settings.packetbeat.flows
        self.max_conn_ids = 4 * (flows.flow_config().max_flows if flows is not None and flows.enabled else 1)
        self.pos = 0
        self.next_batch = 0
        self.inflight: deque[int] = deque()
        #: The parent's copy of worker 0's reader counters (a pass the workers read).
        self.reader_stats: ReaderStats | None = None
        #: Merged events on their way to the queue (several batches' at once at top speed).
        self.out = Coalesced(pipeline.publish_encoded, 1)

    def run(self, chunks: Iterable[list[Packet]], window: int) -> None:
        pool, n = self.pool, self.pool.n
        self.out.size = REPLAY_COALESCE if window else 1  # window 0: paced
        clock, hash_ = self.clock, self.hash
        stop = self.beat.stop_event
        failed = self.pipeline.failed
        for chunk in chunks:
            subs: list[list[tuple[Any, ...]]] = [[] for _ in range(n)]
            pos = self.pos
            for pkt in chunk:
                ts = pkt[0]
                if ts >= clock.next_tick:
                    clock.tick(ts)
                    tick = (pos, ts, -1, b"", 0)
                    for s in subs:
                        s.append(tick)
                # (only paced, -O and -dump replays come here: not the top-speed path)
                subs[hash_(pkt[1], pkt[2])].append((pos, *pkt))
                pos += 1
            self.pos = pos
            k = self.next_batch
            self.next_batch += 1
            for i in range(n):
                pool.send(i, ("B", k, subs[i]))
            self.inflight.append(k)
            while self.inflight and (len(self.inflight) > window or all(pool.ready(i) for i in range(n))):
                self.merge_one()
            if stop.is_set() or failed.is_set():
                break
        while self.inflight:
            self.merge_one()
        self.out.flush()

    def read_pass(self, path: str, stats: ReaderStats) -> tuple[str | None, str]:
        """One pass over ``path`` with every worker reading the file itself (``P``): the
        parent only merges and publishes. ``stats`` follows worker 0's reader. Returns the
        reader's first problem (or None) and the count of the others."""
        pool, n = self.pool, self.pool.n
        self.out.size = REPLAY_COALESCE
        for i in range(n):
            pool.send(i, ("P", path, self.next_batch, self.pos))
        ended: list[tuple[Any, ...] | None] = [None] * n
        stop = self.beat.stop_event
        failed = self.pipeline.failed
        stopping = False
        self.reader_stats = stats
        k = self.next_batch
        while not all(ended):
            if not stopping and (stop.is_set() or failed.is_set()):
                stopping = True
                for i in range(n):
                    if ended[i] is None:
                        pool.send(i, ("S",))
            self._merge(k, ended)
            k += 1
        self.out.flush()
        ends = [e for e in ended if e is not None]
        self.next_batch = max(e[1] for e in ends)
        self.pos = max(e[2] for e in ends)
        first = ends[0]
        self._reader_counts(first[5])
        return first[3], first[4]

    def _reader_counts(self, counts: dict[str, int] | None) -> None:
        stats = self.reader_stats
        if counts is not None and stats is not None:
            for name, v in counts.items():
                setattr(stats, name, v)

    def merge_one(self) -> None:
        self._merge(self.inflight.popleft(), None)

    def _merge(self, k: int, ended: list[tuple[Any, ...] | None] | None) -> None:
        """Batch ``k`` of every worker, merged by position and published. ``ended`` (a
        pass the workers read themselves): a worker whose pass ended contributes nothing;
        its end message (``Z``) is kept there."""
        lists = []
        who: list[int] = []
        beat = self.beat
        created: list[tuple[int, int, int]] = []
        for i in range(self.pool.n):
            if ended is not None:
                if ended[i] is not None:
                    continue
                msg = self.pool.take(i)
                if msg[0] == "Z":
                    ended[i] = msg
                    continue
                if i == 0:
                    self._reader_counts(msg[7])
            else:
                msg = self.pool.take(i)
            if msg[0] != "R" or msg[1] != k:
                raise WorkerDied(f"worker {i} answered {msg[0]!r} {msg[1]!r} instead of batch {k}")
            lists.append(msg[2])
            who.append(i)
            add_deltas((beat.decoder_stats, beat.stats), msg[3])
            if msg[4]:
                created.extend((pos, i, c) for pos, c in msg[4])
            if self.report is not None and msg[5]:
                self.report.by_type.update(msg[5])
            if msg[6] is not None:
                self.tally.merge(msg[6])
        if created:
            self._number(created)
        if self.renumber:
            for i, lst in zip(who, lists, strict=True):
                self._renumber_list(i, lst)
        items = [it for lst in lists for it in lst]
        if not items:
            return
        if len(lists) > 1:
            items.sort(key=itemgetter(0))  # stable: ties keep worker order, then each worker's
        prepare = self.pipeline._prepare
        ready = []
        heads: dict[int, bytes] = {}
        for it in items:
            if len(it) == 3:  # encoded by the worker
                ready.append(unpack_event(it[1], it[2], heads))
                continue
            r = prepare(it[1])
            if r is not None:
                ready.append(r)
        self.out.add(ready)

    def _renumber_list(self, worker: int, lst: list[tuple[Any, ...]]) -> None:
        """A worker's flow reports get the global connection numbers in their ``flow.id``,
        before the merge (the numbers are per worker; the order across workers does not
        matter here). An encoded report ``(key, data, meta, id)`` becomes ``(key, data,
        meta)``; an event not yet prepared ``(key, event)`` is changed in place."""
        for j, it in enumerate(lst):
            n = len(it)
            if n == 4:
                data = it[1]
                ids = self._renumber_encoded(worker, it[3])
                if ids is not None:
                    if data.find(ids[0]) < 0:  # (the encoder writes it as it is: never seen)
                        self.beat.stats.incr("workers.flow_ids_unmapped")
                    else:
                        data = data.replace(ids[0], ids[1], 1)
                lst[j] = (it[0], data, it[2])
            elif n == 2:
                evt = it[1]
                if evt.get("type") == "flow":
                    flow = evt.get("flow")
                    if isinstance(flow, dict) and isinstance(flow.get("id"), str):
                        fid = self._renumber(worker, flow["id"])
                        if fid is not None:
                            flow["id"] = fid

    def _number(self, created: list[tuple[int, int, int]]) -> None:
        """New connections, in capture order, get the numbers one flow table gives them."""
        created.sort()
        for _pos, i, local in created:
            m = self.conn_ids[i]
            m[local] = self.next_conn
            self.next_conn += 1
            if len(m) > self.max_conn_ids:
                m.pop(next(iter(m)))

    def _renumber_encoded(self, worker: int, fid: str) -> tuple[bytes, bytes] | None:
        """``_renumber`` for an encoded report: its ``"id":"…"`` member as the worker
        wrote it and as it must be (None: left as it is). A flow is reported again every
        period with the same id, so the answer is kept (with the worker's connection
        number, whose place in the least-recently-used order is still renewed)."""
        cache = self.fid_cache[worker]
        hit = cache.get(fid)
        if hit is not None:
            if self._global(worker, hit[0]) is None:
                del cache[fid]
                return None
            return hit[1]
        local = flow_id_conn(fid)
        g = None if local is None else self._global(worker, local)
        if local is None or g is None:
            return None
        ids = (b'"id":"' + fid.encode() + b'"', b'"id":"' + flow_id_with_conn(fid, g).encode() + b'"')
        if len(cache) >= self.max_conn_ids:
            cache.clear()
        cache[fid] = (local, ids)
        return ids

    def _renumber(self, worker: int, fid: str) -> str | None:
        """A worker's ``flow.id`` with the global connection number (None: it carries
        none, or the number was forgotten, which is counted)."""
        local = flow_id_conn(fid)
        if local is None:
            return None
        g = self._global(worker, local)
        return None if g is None else flow_id_with_conn(fid, g)

    def _global(self, worker: int, local: int) -> int | None:
        """The global number of a worker's connection number, renewed as recently used
        (None: forgotten after more than 4 × max_flows newer connections; counted)."""
        m = self.conn_ids[worker]
        g = m.pop(local, None)
        if g is None:
            self.beat.stats.incr("workers.flow_ids_unmapped")
            return None
        m[local] = g  # least recently used goes first
        return g

    def flush(self, renew: bool) -> None:
        """End of input: every worker flushes; final flow reports share one time."""
        pool = self.pool
        for i in range(pool.n):
            pool.send(i, ("Q",))
        ats = []
        for i in range(pool.n):
            msg = pool.take(i)
            if msg[0] != "A":
                raise WorkerDied(f"worker {i} answered {msg[0]!r} instead of its flow time")
            if msg[1] is not None:
                ats.append(msg[1])
        at = max(ats) if ats else None
        k = self.next_batch
        self.next_batch += 1
        for i in range(pool.n):
            pool.send(i, ("F", k, at, renew))
        self.inflight.append(k)
        self.merge_one()
        self.out.flush()
        if renew:
            self.clock = self.beat.new_decoder(Counters())
            self.conn_ids = [{} for _ in range(pool.n)]
            self.fid_cache = [{} for _ in range(pool.n)]
            self.next_conn = 1

    def finish(self) -> None:
        pool = self.pool
        for i in range(pool.n):
            pool.send(i, ("X",))
        for i in range(pool.n):
            msg = pool.take(i)
            if msg[0] == "D":
                add_deltas((self.beat.decoder_stats, self.beat.stats), msg[1])
        if self.hash.orphan_fragments:
            self.beat.stats.incr("workers.orphan_fragments", self.hash.orphan_fragments)


def log_cpu(pool: WorkerPool) -> None:
    me = resource.getrusage(resource.RUSAGE_SELF)
    log.info(
        "CPU seconds: parent %.2f, workers %s",
        me.ru_utime + me.ru_stime,
        " ".join(f"{c:.2f}" for c in pool.cpu),
    )


def run_file_workers(
    beat: Beat,
    n: int,
    path: str,
    *,
    topspeed: bool,
    loops: int = 1,
    one_at_a_time: bool = False,
    dump_prefix: str = "",
) -> int:
    """``run_file`` with ``n`` worker processes (see the module docstring)."""
    from capture import CaptureFile
    from shipper.agent.beat import Dumper, _more_problems, _one_at_a_time, chunked, describe_error

    CaptureFile(path).close()  # fail early: CaptureError says what is wrong with the file
    beat.install_signals()  # at once: starting the workers takes a moment
    encoded = encodes_in_workers(beat, live=False)
    pool = WorkerPool(n, lambda i, rin, wout: replay_worker(beat, i, n, rin, wout))
    pool.start()  # before any thread of ours exists: fork copies only the calling thread
    log.info("decoding with %d worker processes (packetbeat.workers)", n)
    try:
        pipeline = beat.start_pipeline(live=False)
    except BaseException:
        pool.kill()
        raise
    beat.tune_gc()
    beat.monitor.start()
    report = beat.replay_report(loops, progress=not one_at_a_time)
    http = beat.start_http()
    report.start()
    dumper = Dumper(dump_prefix) if dump_prefix else None
    replay = Replay(beat, pool, pipeline, encoded, report)
    self_read = topspeed and not one_at_a_time and dumper is None
    died: str | None = None
    internal: BaseException | None = None
    done = 0
    try:
        while not beat.stop_event.is_set() and (loops == 0 or done < loops):
            done += 1
            replay.tally = PortTally()
            if self_read:
                # At top speed every worker reads the file itself: the parent only merges.
                stats = ReaderStats()
                beat.monitor.add("pcap", stats.as_dict)
                report.reader(stats, os.stat(path).st_size, replay.tally)
                error, more_problems = replay.read_pass(path, stats)
            else:
                reader = CaptureFile(path)
                beat.monitor.add("pcap", reader.stats.as_dict)
                report.reader(reader.stats, reader.size, replay.tally)
                packets: Iterable[Packet] = reader
                size = BATCH
                if one_at_a_time:
                    packets = _one_at_a_time(packets)
                    size = 1
                if dumper is not None:
                    packets = dumper.wrap(packets)
                replay.run(chunked(packets, topspeed, beat.stop_event, size), WINDOW if topspeed else 0)
                error = reader.error
                more_problems = _more_problems(reader) if error else ""
            if pipeline.failed.is_set():
                break
            more = not beat.stop_event.is_set() and (loops == 0 or done < loops)
            replay.flush(renew=more)
            if error:
                beat.stats.incr("pcap.damaged_files")
                log.warning("capture file problem: %s%s", error, more_problems)
        replay.finish()
        pool.stop()
        log_cpu(pool)
    except WorkerDied as exc:
        died = str(exc)
        beat.stats.incr("workers.failed")
        log.error("%s", died)
        beat.stop_event.set()
        pool.kill()
    except Exception as exc:
        internal = exc
        beat.stats.incr("beat.internal_errors")
        log.error("internal error in the packet loop: %s", describe_error(exc))
        beat.stop_event.set()
        pool.kill()
    finally:
        with contextlib.suppress(Exception):  # merged before a failure: published all the same
            replay.out.flush()
        if dumper is not None:
            dumper.close()
    report.stop()
    drained = beat._drain(pipeline)
    beat.stop_reporting(http)
    if died is not None:
        print(f"Exiting: {died}", file=sys.stderr)
        return 1
    return report.finish(beat.exit_code(pipeline, drained, internal))
