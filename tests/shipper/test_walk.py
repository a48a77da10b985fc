"""The optional C record walker (``shipper/agent/_walk.c``).

For a worker it must pass over exactly the records the Python walk would only count and
return exactly the packets it would decode, with their positions; for a single process it
must return every packet but the pure ACKs ``feed_many`` would only count; and it must stay
inside the buffer whatever the buffer holds. The references below are those rules written
out in Python; ``test_workers.py`` replays every capture with and without the extension (one
process and two workers) and requires the same events.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture.pcapfile import MAX_RECORD
from shipper.agent import walk
from shipper.agent.workers import _LE_REC_ETH_IP4, _mix, _swap16, _swap32
from tests.helpers import need

NEVER = 1 << 62


def _walk_module() -> Any:
    if walk.ext is None:
        need("the C extension shipper.agent._walk (pip install -e . builds it; needs a C compiler)")
    return walk.ext


def reference(
    buf: bytes, off: int, limit: int, most: int, next_tick: int, n: int, idx: int, skip_acks: bool, mult: int
) -> tuple[int, int, list[int], list[tuple[int, int, bytes, int]]]:
    """What the Python walk does with the records before the first it must look at itself
    (a tick due, a frame it hashes in Python, a broken record, the end): this worker's
    packets and their positions, pure ACKs left out when asked."""
    fend = len(buf)
    walked = 0
    positions: list[int] = []
    packets: list[tuple[int, int, bytes, int]] = []
    while walked < limit and len(packets) < most and off + 64 <= fend:
        sec, frac, incl, wire, et, vihl, total, frag, proto, sa, da, sp, dp, doff, flags = (
            _LE_REC_ETH_IP4.unpack_from(buf, off)
        )
        if incl > MAX_RECORD or off + 16 + incl > fend:
            break
        ts = sec * 1_000_000_000 + frac * mult
        if ts >= next_tick:
            break
        if not (et == 0x0008 and incl >= 38 and vihl == 0x45 and not frag & 0xFF3F and proto in (6, 17)):
            break
        if _mix(_swap32(sa ^ da), _swap16(sp ^ dp)) % n == idx:
            pure_ack = (
                skip_acks
                and proto == 6
                and not flags & 0x07
                and incl >= 54
                and doff >= 0x50
                and _swap16(total) == 20 + ((doff >> 4) << 2) <= incl - 14
            )
            if not pure_ack:
                positions.append(walked)
                packets.append((ts, 1, buf[off + 16 : off + 16 + incl], wire))
        off += 16 + incl
        walked += 1
    return off, walked, positions, packets


def _after(data: bytes, off: int) -> int | None:
    """Past the record at ``off``, where a walk stopped (None: it cannot go on from there)."""
    if off + 16 > len(data):
        return None
    incl = struct.unpack_from("<I", data, off + 8)[0]
    if incl > MAX_RECORD or off + 16 + incl > len(data):
        return None
    return off + 16 + incl


def test_extension_is_built() -> None:
    """Under CI the extension must be there: otherwise only the Python path is tested."""
    mod = _walk_module()
    for _ in range(3):
        for a, p in ((0, 0), (0xFFFFFFFF, 0xFFFF), (0x0A000001 ^ 0x0A000002, 80 ^ 40000)):
            assert mod.mix(a, p) == _mix(a, p)


@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF))
def test_hash_is_the_python_hash(addrs: int, ports: int) -> None:
    assert _walk_module().mix(addrs, ports) == _mix(addrs, ports)


# -- captures --------------------------------------------------------------------------------

_ADDRS = [0x0A000001, 0x0A000002, 0x0A000103, 0xC0A80001]
_PORTS = [80, 53, 40000, 40001, 5432]


_FAULTS = ["none"] * 8 + ["garbage", "ethertype", "options", "fragment", "icmp", "cut", "total", "incl"]


@st.composite
def record(draw: st.DrawFn, endian: str = "<", cooked: bool = False) -> bytes:
    """One pcap record: mostly Ethernet/IPv4 TCP or UDP between a few endpoints (pure ACKs
    among them); some with one fault: garbage, another ethertype, IP options, a fragment,
    ICMP, cut short, a lying IP or record length."""
    fault = draw(st.sampled_from(_FAULTS))
    sec = draw(st.sampled_from([0, 1, 2, 3, 1_700_000_000, 0xFFFFFFFF]))
    frac = draw(st.one_of(st.integers(0, 999_999), st.integers(0, 0xFFFFFFFF)))
    if fault == "garbage":
        frame = draw(st.binary(max_size=90))
    else:
        proto = 1 if fault == "icmp" else draw(st.sampled_from([6, 6, 6, 17]))
        payload = draw(st.sampled_from([b"", b"", b"x" * 10, b"y"]))
        doff = draw(st.sampled_from([0x50, 0x50, 0x50, 0x60, 0x40, 0xF0]))
        flags = draw(st.sampled_from([0x10, 0x10, 0x10, 0x18, 0x02, 0x11, 0x04, 0x12]))
        sport, dport = draw(st.sampled_from(_PORTS)), draw(st.sampled_from(_PORTS))
        l4 = struct.pack(">HHIIBBHHH", sport, dport, 1, 2, doff, flags, 1000, 0, 0)
        l4 += b"\x00" * max(0, ((doff >> 4) << 2) - 20) + payload
        total = 20 + len(l4)
        if fault == "total":
            total += draw(st.sampled_from([1, -1, 40, -20]))
        frag = draw(st.sampled_from([0x4000, 0x2000, 0x0001, 0x1FFF])) if fault == "fragment" else 0
        vihl = draw(st.sampled_from([0x46, 0x65, 0x44])) if fault == "options" else 0x45
        src, dst = draw(st.sampled_from(_ADDRS)), draw(st.sampled_from(_ADDRS))
        ip = struct.pack(">BBHHHBBHII", vihl, 0, total & 0xFFFF, 0, frag, 64, proto, 0, src, dst)
        et = (
            draw(st.sampled_from([b"\x86\xdd", b"\x81\x00", b"\x00\x08"]))
            if fault == "ethertype"
            else b"\x08\x00"
        )
        frame = (b"\x00" * 14 if cooked else b"\x02" * 12) + et + ip + l4
        if fault == "cut":
            frame = frame[: draw(st.sampled_from([37, 38, 53, 54]))]
    incl = len(frame)
    if fault == "incl":
        incl += draw(st.sampled_from([5, -1, MAX_RECORD, MAX_RECORD + 1]))
    return struct.pack(endian + "IIII", sec, frac, incl & 0xFFFFFFFF, len(frame)) + frame


@st.composite
def capture(draw: st.DrawFn, endian: str = "<", cooked: bool = False) -> bytes:
    """Records, a few bytes changed, sometimes cut anywhere."""
    records = draw(st.lists(record(endian, cooked), min_size=1, max_size=30))
    data = bytearray(b"\x00" * 24 + b"".join(records))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(24, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.integers(0, 3)) == 0:
        return bytes(data[: draw(st.integers(24, len(data)))])
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    capture(),
    st.integers(1, 4),
    st.data(),
    st.booleans(),
    st.sampled_from([1, 1000]),
    st.sampled_from([0, 1_000_000_000, 2_500_000_000, 1_700_000_000_000_000_000, NEVER, 1 << 70]),
    st.integers(0, 30),
)
def test_walks_as_the_python_walk(
    data: bytes, n: int, choose: st.DataObject, skip_acks: bool, mult: int, next_tick: int, limit: int
) -> None:
    """From the first record to the end, stopping where either stops and stepping over the
    record there: both stop at the same records, with the same packets and positions."""
    idx = choose.draw(st.integers(0, n - 1))
    most = choose.draw(st.integers(0, 5))
    walker = _walk_module().Walker(data, n, idx, skip_acks, mult)
    off = 24
    while True:
        got = walker.own(off, limit, most, next_tick)
        assert got == reference(data, off, limit, most, next_tick, n, idx, skip_acks, mult)
        nxt = _after(data, got[0])
        if nxt is None:
            break
        off = nxt
    walker.release()


def chunk_reference(
    buf: bytes,
    off: int,
    limit: int,
    most: int,
    next_tick: int,
    skip_acks: bool,
    mult: int,
    endian: str = "<",
    linktype: int = 1,
) -> tuple[int, int, list[tuple[int, int, bytes, int]]]:
    """What ``Decoder.feed_many`` must be given: every whole record, but a pure ACK (its
    inline path's test, written out, for Ethernet and Linux cooked frames) before
    ``next_tick`` when ACKs are skipped."""
    l2 = {1: 14, 113: 16}.get(linktype, 0)
    fend = len(buf)
    walked = 0
    out: list[tuple[int, int, bytes, int]] = []
    while walked < limit and len(out) < most and off + 16 <= fend:
        sec, frac, incl, wire = struct.unpack_from(endian + "IIII", buf, off)
        if incl > MAX_RECORD or off + 16 + incl > fend:
            break
        ts = sec * 1_000_000_000 + frac * mult
        frame = buf[off + 16 : off + 16 + incl]
        pure_ack = False
        if skip_acks and l2 and ts < next_tick and incl >= l2 + 40 and frame[l2 - 2 : l2] == b"\x08\x00":
            vihl, total, frag, proto = struct.unpack_from(">BxHxxHxB", frame, l2)
            doff, flags = frame[l2 + 32], frame[l2 + 33]
            hl = 20 + ((doff >> 4) << 2)
            pure_ack = (
                vihl == 0x45
                and proto == 6
                and not frag & 0x3FFF
                and not flags & 0x07
                and doff >= 0x50
                and total == hl <= incl - l2
            )
        if not pure_ack:
            out.append((ts, linktype, frame, wire))
        off += 16 + incl
        walked += 1
    return off, walked, out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.sampled_from([("<", 1), (">", 1), ("<", 113), (">", 113), ("<", 101), ("<", 0)]),
    st.booleans(),
    st.sampled_from([1, 1000]),
    st.sampled_from([0, 1_000_000_000, 2_500_000_000, 1_700_000_000_000_000_000, NEVER, 1 << 70]),
    st.integers(0, 7),
    st.integers(0, 9),
)
def test_chunks_leave_out_only_pure_acks_before_the_tick(
    choose: st.DataObject,
    form: tuple[str, int],
    skip_acks: bool,
    mult: int,
    next_tick: int,
    most: int,
    limit: int,
) -> None:
    """A single process's chunks, in either byte order, Ethernet, Linux cooked or another
    link type: all records to the first broken one, less the pure ACKs ``feed_many`` would
    only count (when asked, and only before the next tick)."""
    endian, linktype = form
    data = choose.draw(capture(endian, cooked=linktype == 113))
    walker = _walk_module().Walker(data, 1, 0, skip_acks, mult, endian == ">", linktype)
    off = 24
    for _ in range(len(data)):
        got = walker.chunk(off, limit, most, next_tick)
        assert got == chunk_reference(data, off, limit, most, next_tick, skip_acks, mult, endian, linktype)
        if got[0] == off:
            break
        off = got[0]
    walker.release()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(-5, 400), st.integers(-3, 50), st.integers(-(1 << 70), 1 << 70))
def test_any_bytes_any_arguments(data: bytes, off: int, limit: int, next_tick: int) -> None:
    """Garbage in, an answer or a ValueError out; never a read outside the buffer."""
    walker = _walk_module().Walker(data, 3, 1, True, 1000)
    if off < 0:
        with pytest.raises(ValueError):
            walker.own(off, limit, 2, next_tick)
        return
    got = walker.own(off, limit, 2, next_tick)
    assert got == reference(data, off, limit, 2, next_tick, 3, 1, True, 1000)
    one = _walk_module().Walker(data, 1, 0, True, 1000)
    assert one.chunk(off, limit, 3, next_tick) == chunk_reference(data, off, limit, 3, next_tick, True, 1000)


def test_bad_arguments() -> None:
    mod = _walk_module()
    for n, idx in ((0, 0), (2, 2)):
        with pytest.raises(ValueError):
            mod.Walker(b"", n, idx, True, 1)
    with pytest.raises(ValueError):
        mod.Walker(b"", 1, 0, True, 0)
    with pytest.raises(TypeError):
        mod.Walker("text", 1, 0, True, 1)
    with pytest.raises(ValueError):
        mod.Walker(b"x" * 100, 1, 0, True, 1, True).own(24, 1, 1, 0)  # big-endian
    with pytest.raises(ValueError):
        mod.Walker(b"x" * 100, 1, 0, True, 1, False, 113).own(24, 1, 1, 0)
    w = mod.Walker(b"x" * 100, 1, 0, True, 1)
    with pytest.raises(TypeError):
        w.own(24, 1, 1)
    with pytest.raises(TypeError):
        w.chunk(24, 1, 1)
    w.release()
    with pytest.raises(ValueError):
        w.own(24, 1, 1, 0)
    with pytest.raises(ValueError):
        w.chunk(24, 1, 1, 0)


def test_a_mapping_closes_after_the_walker_lets_go(tmp_path: Path) -> None:
    """A walker holds a view of the mapped file; PcapMap.close releases it first."""
    from capture import CaptureFile

    path = tmp_path / "c.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"\x00" * 100)
    m = CaptureFile(str(path)).mapped()
    assert m is not None
    walker = _walk_module().Walker(m.buf, 2, 0, True, m.ts_mult)
    with pytest.raises(BufferError):
        m.buf.close()
    m.on_close(walker.release)
    m.close()
    assert m.buf.closed
    assert isinstance(m.buf, mmap.mmap)


def _pcap(records: int, size: int = 200) -> bytes:
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    frame = b"\x02" * 12 + b"\x86\xdd" + b"\x00" * (size - 14)
    return head + b"".join(struct.pack("<IIII", 1, i, size, size) + frame for i in range(records))


def test_a_file_truncated_under_the_mapping_ends_the_walk_there(tmp_path: Path) -> None:
    """Another process truncating the capture during a replay: the walk notices at its next
    check and stops at the new end (a page past it would kill the process with SIGBUS),
    and the cut is described as iteration describes a file that ends there."""
    from capture import CaptureFile

    path = tmp_path / "c.pcap"
    data = _pcap(20_000)  # 4.3 MB: several walk calls
    path.write_bytes(data)
    _walk_module()
    reader = CaptureFile(str(path))
    m = walk.walkable(reader)
    assert m is not None
    decoder: Any = SimpleNamespace(flows=object(), next_tick=NEVER)
    chunks = walk.chunks(m, decoder, threading.Event(), 256)
    got = [p for _ in range(10) for p in next(chunks)]
    cut = 24 + 216 * 12_000 + 100  # inside record 12,000
    os.truncate(path, cut)
    got += [p for c in chunks for p in c]
    assert m.buf.closed
    assert len(got) == 12_000
    assert [p[2] for p in got] == [data[24 + 216 * i + 16 : 24 + 216 * (i + 1)] for i in range(12_000)]
    assert reader.stats.packets == 12_000
    assert reader.stats.truncated == 1
    assert reader.error is not None and "file ends inside a packet record (84 of 200 bytes)" in reader.error
    reader.close()


class RecordingTracker:
    """Stands for the decoder's TCP tracker: records the arguments of ``process`` and
    passes everything else to the tracker (a compiled tracker's methods cannot be
    replaced on the instance)."""

    def __init__(self, tracker: Any, calls: list[tuple[Any, ...]]) -> None:
        self._tracker = tracker
        self.process = lambda *a: calls.append(a)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tracker, name)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.sampled_from([("<", 1), (">", 1), ("<", 113), (">", 113), ("<", 101)]),
    st.sampled_from([0, 1_700_000_000_000_000_000, NEVER]),
    st.integers(1, 7),
)
def test_parsed_segments_are_what_feed_many_hands_the_tcp_tracker(
    choose: st.DataObject, form: tuple[str, int], next_tick: int, most: int
) -> None:
    """With flows off the single process's chunks carry TCP segments parsed in C: the TCP
    tracker is called with exactly the arguments ``feed_many`` gives it for the whole
    packets, and every other packet reaches the decoder whole (the same counters)."""
    from protocols.decoder import Decoder
    from tests.helpers import make_decoder

    endian, linktype = form
    data = choose.draw(capture(endian, cooked=linktype == 113))
    walker = _walk_module().Walker(data, 1, 0, True, 1000, endian == ">", linktype, True)

    def recorder(dec: Decoder) -> list[tuple[Any, ...]]:
        calls: list[tuple[Any, ...]] = []
        dec.tcp = RecordingTracker(dec.tcp, calls)  # type: ignore[assignment]
        dec._next_tick = next_tick  # as if the clock stood there: ACKs before it may go
        dec._tick = lambda ts, full=False: None  # type: ignore[method-assign]
        return calls

    whole, parsed = make_decoder({"http": {"ports": [80]}}), make_decoder({"http": {"ports": [80]}})
    calls_whole, calls_parsed = recorder(whole), recorder(parsed)
    off = 24
    while True:
        off2, _walked, chunk = walker.chunk(off, 1 << 30, most, next_tick)
        parsed.feed_parsed(chunk)
        if off2 == off or not chunk:
            break
        off = off2
    packets = chunk_reference(data, 24, 1 << 30, 1 << 30, next_tick, False, 1000, endian, linktype)[2]
    whole.feed_many(packets)
    walker.release()
    assert calls_parsed == calls_whole
    assert parsed.stats == whole.stats


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(capture(), st.integers(1, 3), st.data(), st.sampled_from([0, 1_700_000_000_000_000_000, NEVER]))
def test_a_workers_parsed_segments_are_what_feed_many_hands_the_tcp_tracker(
    data: bytes, n: int, choose: st.DataObject, next_tick: int
) -> None:
    """A worker's walk with flows off: the same positions as without parsing, and the TCP
    tracker called with exactly the arguments ``feed_many`` gives it for the whole packets."""
    from protocols.decoder import Decoder
    from tests.helpers import make_decoder

    idx = choose.draw(st.integers(0, n - 1))
    mod = _walk_module()
    plain = mod.Walker(data, n, idx, True, 1000)
    parsing = mod.Walker(data, n, idx, True, 1000, False, 1, True)

    def recorder(dec: Decoder) -> list[tuple[Any, ...]]:
        calls: list[tuple[Any, ...]] = []
        dec.tcp = RecordingTracker(dec.tcp, calls)  # type: ignore[assignment]
        dec._next_tick = NEVER
        return calls

    whole, parsed = make_decoder({"http": {"ports": [80]}}), make_decoder({"http": {"ports": [80]}})
    calls_whole, calls_parsed = recorder(whole), recorder(parsed)
    off = 24
    while True:
        a = plain.own(off, 1 << 30, 1 << 30, next_tick)
        b = parsing.own(off, 1 << 30, 1 << 30, next_tick)
        assert a[:3] == b[:3]
        whole.feed_many(a[3])
        parsed.feed_parsed(b[3])
        nxt = _after(data, a[0])
        if nxt is None:
            break
        off = nxt
    plain.release()
    parsing.release()
    assert calls_parsed == calls_whole
    assert parsed.stats == whole.stats
