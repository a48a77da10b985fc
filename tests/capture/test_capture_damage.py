"""Damaged capture files through the command line (issue 11, points 1, 3 and 8).

A pcapng copy of a real capture (written to tmp_path, never into the repository) is cut or
damaged; ``wirebeat -I file -t`` must publish the events before the damage, report the
damage once with its byte offset (a log line and the ``pcap.*`` counters) and exit 0, as
tcpdump and tshark do on a cut file.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile, PcapWriter
from tests.capture import pcapng_blocks as ng
from tests.helpers import shared_pcap
from tests.shipper.shiprun import Run, wirebeat

NS = 1_000_000_000


def packets(name: str) -> list[tuple[int, int, bytes, int]]:
    return list(CaptureFile(str(shared_pcap(name))))


def block_offsets(data: bytes) -> list[int]:
    """Byte offset of every block of a little-endian pcapng file."""
    out, pos = [], 0
    while pos < len(data):
        out.append(pos)
        pos += struct.unpack_from("<I", data, pos + 4)[0]
    return out


def run(path: Path, tmp: Path) -> Run:
    r = wirebeat("-e", "-I", path, "-t", tmp=tmp)
    assert r.rc == 0, r
    assert "Traceback" not in r.stderr, r
    return r


def metrics(r: Run) -> dict[str, Any]:
    final = [rec for rec in r.logs if rec["message"] == "Total metrics"]
    assert len(final) == 1, r
    return final[0]["monitoring"]["metrics"]


def problems(r: Run) -> list[str]:
    return [m for m in r.messages("warning") if m.startswith("capture file problem")]


def summary(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["type"], e["@timestamp"], e["event"]["start"], e.get("status")) for e in events]


def reference(pkts: list[tuple[int, int, bytes, int]], tmp: Path) -> list[tuple[Any, ...]]:
    """The events of an undamaged pcap file holding ``pkts``."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "reference.pcap"
    with PcapWriter(str(path), pkts[0][1]) as w:
        for ts, _lt, frame, wl in pkts:
            w.write(ts, frame, wl)
    return summary(run(path, tmp / "ref").events)


@pytest.fixture(scope="module")
def minitwit() -> tuple[list[tuple[int, int, bytes, int]], bytes]:
    pkts = packets("http_minitwit")
    return pkts, ng.pcapng(pkts)


def test_pcapng_cut_inside_a_block_and_inside_a_block_header(
    tmp_path: Path, minitwit: tuple[list[tuple[int, int, bytes, int]], bytes]
) -> None:
    pkts, data = minitwit
    offs = block_offsets(data)  # SHB, IDB, then one EPB per packet
    k = 70  # the cut falls in the 70th packet: some transactions are complete before it
    cases = {
        "mid-block": (offs[2 + k] + 40, offs[2 + k], "file ends inside a block"),
        "mid-header": (offs[2 + k] + 5, offs[2 + k], "file ends inside a block header"),
    }
    for name, (cut, at, why) in cases.items():
        path = tmp_path / f"{name}.pcapng"
        path.write_bytes(data[:cut])
        r = run(path, tmp_path / name)
        assert summary(r.events) == reference(pkts[:k], tmp_path / f"{name}-ref")
        assert len(r.events) >= 3
        [line] = problems(r)
        assert why in line and f"at byte {at}" in line, line
        m = metrics(r)
        assert m["pcap.truncated"] == 1 and m["pcap.packets"] == k
        assert m["pipeline.pcap.damaged_files"] == 1


def test_pcapng_blocks_shorter_than_their_fixed_fields(
    tmp_path: Path, minitwit: tuple[list[tuple[int, int, bytes, int]], bytes]
) -> None:
    """Framing intact, content too short (a 12-byte EPB, SPB, obsolete PB, ISB): each is
    skipped and counted, the first reported with its offset, the rest of the file read.
    Before: ``struct.error`` out of the reader, every event lost, exit 1."""
    pkts, data = minitwit
    offs = block_offsets(data)
    at = offs[2 + 50]
    short = b"".join(ng.block(t, b"") for t in (ng.EPB, ng.SPB, ng.PB, ng.ISB))
    path = tmp_path / "short.pcapng"
    path.write_bytes(data[:at] + short + data[at:])
    r = run(path, tmp_path / "run")
    assert summary(r.events) == reference(pkts, tmp_path / "ref")
    [line] = problems(r)
    assert f"at byte {at}" in line and "shorter than its fields" in line and "malformed_blocks 4" in line, (
        line
    )
    m = metrics(r)
    assert m["pcap.malformed_blocks"] == 4 and m["pcap.packets"] == len(pkts)


def test_pcapng_block_lengths_that_disagree_end_the_file_cleanly(
    tmp_path: Path, minitwit: tuple[list[tuple[int, int, bytes, int]], bytes]
) -> None:
    pkts, data = minitwit
    offs = block_offsets(data)
    k = 80
    at = offs[2 + k]
    broken = bytearray(data)
    end = offs[3 + k]
    broken[end - 4 : end] = struct.pack("<I", 0xDEAD)  # the trailing copy of the length
    path = tmp_path / "disagree.pcapng"
    path.write_bytes(bytes(broken))
    r = run(path, tmp_path / "run")
    assert summary(r.events) == reference(pkts[:k], tmp_path / "ref")
    [line] = problems(r)
    assert "block lengths disagree" in line and f"at byte {at}" in line, line
    assert metrics(r)["pcap.corrupt"] == 1


def test_simple_packet_blocks_take_the_previous_time_and_are_published(
    tmp_path: Path, minitwit: tuple[list[tuple[int, int, bytes, int]], bytes]
) -> None:
    """Point 8: an SPB has no time of its own; it gets the previous packet's (before: 0)."""
    pkts, _ = minitwit
    lt = pkts[0][1]
    out = bytearray(ng.shb() + ng.idb(lt, tsresol=9))
    want = []
    last = 0
    for i, (ts, _lt, frame, wl) in enumerate(pkts):
        if i % 2 == 0:
            out += ng.epb(0, ts, frame, wl)
            last = ts
        else:
            out += ng.spb(frame, wl)
        want.append((last, lt, frame, wl))
    path = tmp_path / "spb.pcapng"
    path.write_bytes(bytes(out))
    reader = CaptureFile(str(path))
    assert list(reader) == want
    assert reader.error is None and reader.stats.untimed_packets == 0
    r = run(path, tmp_path / "run")
    assert summary(r.events) == reference(want, tmp_path / "ref")
    assert len(r.events) == 6 and not r.events[0]["@timestamp"].startswith("1970")
    assert not problems(r)


def test_simple_packet_blocks_before_any_time_are_published_and_counted(tmp_path: Path) -> None:
    pkts = packets("http_minitwit")
    path = tmp_path / "spb-only.pcapng"
    path.write_bytes(ng.pcapng(pkts, kind="spb"))
    r = run(path, tmp_path / "run")
    assert len(r.events) == 6
    m = metrics(r)
    assert m["pcap.untimed_packets"] == len(pkts) and m["pcap.packets"] == len(pkts)


def test_out_of_range_times_are_dropped_and_counted_never_a_crash(tmp_path: Path) -> None:
    """Point 3: if_tsresol 2^-63, 10^-30, 10^-127, 2^-127, 10^0; if_tsoffset of ±2^63-1 s,
    a negative one; raw times of 2^64-1. Packets whose time falls outside 1970..2262 are
    dropped and counted; the others (even at the edges of that range) go through the
    decoders, the envelope and the output."""
    good = packets("http_minitwit")
    edge = packets("http_post")
    t0 = edge[0][0]
    # The http_post conversation, shifted so that it ends a little before 2262-04-11.
    late_off = ((1 << 63) - 1 - edge[-1][0]) // NS - 1
    ifaces = [
        ng.idb(good[0][1], tsresol=9),  # 0: the reference conversation
        ng.idb(1, tsresol=9, tsoffset=late_off),  # 1: 2262
        ng.idb(1, tsresol=0x80 | 63),  # 2: 2^-63 s
        ng.idb(1, tsresol=30),  # 3: 10^-30 s
        ng.idb(1, tsresol=127),  # 4: 10^-127 s
        ng.idb(1, tsresol=0xFF),  # 5: 2^-127 s
        ng.idb(1, tsresol=0),  # 6: seconds
        ng.idb(1, tsoffset=(1 << 63) - 1),  # 7: far future
        ng.idb(1, tsoffset=-(1 << 63)),  # 8: far past
        ng.idb(1, tsresol=9, tsoffset=-t0 // NS - 10),  # 9: before 1970
    ]
    out = bytearray(ng.shb() + b"".join(ifaces))
    for ts, _lt, frame, wl in good:
        out += ng.epb(0, ts, frame, wl)
    for ts, _lt, frame, wl in edge:
        out += ng.epb(1, ts, frame, wl)
    bad = 0
    for iface, raw in [(2, (1 << 64) - 1), (3, (1 << 64) - 1), (4, 1 << 63), (5, 12345), (6, 1 << 40)]:
        out += ng.epb(iface, raw, b"\x00" * 60)
    bad += 1  # 2^40 s is past 2262
    for iface in (7, 8, 9):
        for ts, _lt, frame, wl in edge:
            out += ng.epb(iface, ts, frame, wl)
            bad += 1
    path = tmp_path / "times.pcapng"
    path.write_bytes(bytes(out))
    r = run(path, tmp_path / "run")
    m = metrics(r)
    assert m["pcap.bad_timestamps"] == bad
    assert m["pcap.packets"] == len(good) + len(edge) + 4
    [line] = problems(r)
    assert "outside 1970..2262" in line and f"bad_timestamps {bad}" in line, line
    years = sorted({e["@timestamp"][:4] for e in r.events})
    assert years == ["2013", "2262"], years
    assert len(r.events) == 6 + 1
    assert not [k for k in m if k.endswith(("handler_errors", "event_errors", "internal_errors", "rejected"))]
