"""Capture file readers: pcap (µs, ns, both byte orders), pcapng, truncation, streaming."""

from __future__ import annotations

import struct
import subprocess
import tracemalloc
from pathlib import Path

import pytest

from capture import CaptureError, CaptureFile, PcapWriter
from tests.helpers import SHARED_PCAPS, need, need_tool, shared_pcap

# The shared captures, or one placeholder that fails (under CI) when they are missing.
ALL_SHARED = sorted(SHARED_PCAPS.glob("*.pcap")) or [SHARED_PCAPS / "missing.pcap"]


def tshark_frames(path: Path) -> list[tuple[int, int]]:
    """(epoch ns, captured length) per frame, as tshark reads the file."""
    exe = need_tool("tshark")
    out = subprocess.run(
        [exe, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.cap_len"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        ts, caplen = line.split("\t")
        sec, _, frac = ts.partition(".")
        rows.append((int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9]), int(caplen)))
    return rows


@pytest.mark.parametrize("path", ALL_SHARED, ids=lambda p: p.name)
def test_shared_captures_match_tshark(path: Path) -> None:
    if not path.exists():
        need(f"shared captures in {SHARED_PCAPS}")
    ours = [(ts, len(frame)) for ts, _lt, frame, _wl in CaptureFile(str(path))]
    assert ours == tshark_frames(path)


def test_pcapng_from_editcap_matches_pcap(tmp_path: Path) -> None:
    editcap = need_tool("editcap")
    src = shared_pcap("http_minitwit")
    ng = tmp_path / "minitwit.pcapng"
    subprocess.run([editcap, "-F", "pcapng", str(src), str(ng)], check=True)
    with CaptureFile(str(ng)) as reader:
        assert reader.format == "pcapng"
        got = list(reader)
    want = list(CaptureFile(str(src)))
    assert got == want


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _idb(linktype: int, tsresol: int | None = None) -> bytes:
    opts = b""
    if tsresol is not None:
        opts = struct.pack("<HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack("<HH", 0, 0)
    return _block(1, struct.pack("<HHI", linktype, 0, 65535) + opts)


def _epb(iface: int, ts_units: int, data: bytes) -> bytes:
    head = struct.pack("<IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), len(data) + 4)
    return _block(6, head + data)


def test_pcapng_several_interfaces_and_resolutions(tmp_path: Path) -> None:
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    data = (
        shb
        + _idb(1)  # Ethernet, default microseconds
        + _idb(113, tsresol=9)  # Linux SLL, nanoseconds
        + _idb(0, tsresol=0x80 | 10)  # Null, 2^-10 s
        + _epb(0, 1_700_000_000_123_456, b"eth-frame")
        + _epb(1, 1_700_000_000_123_456_789, b"sll-frame")
        + _epb(2, 1024 * 5 + 512, b"null")
        + _block(5, b"\0" * 12)  # interface statistics: skipped
        + _epb(7, 1, b"no such interface")
    )
    path = tmp_path / "multi.pcapng"
    path.write_bytes(data)
    reader = CaptureFile(str(path))
    got = list(reader)
    assert got == [
        (1_700_000_000_123_456_000, 1, b"eth-frame", 13),
        (1_700_000_000_123_456_789, 113, b"sll-frame", 13),
        (5 * 1_000_000_000 + 500_000_000, 0, b"null", 8),
    ]
    assert reader.linktypes == [1, 113, 0]
    assert reader.stats.skipped_blocks == 1
    assert reader.stats.malformed_blocks == 1  # the packet of an undefined interface


def test_pcapng_big_endian_section(tmp_path: Path) -> None:
    def blk(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack(">II", btype, n) + body + struct.pack(">I", n)

    shb = blk(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = blk(1, struct.pack(">HHI", 101, 0, 65535))
    epb = blk(6, struct.pack(">IIIII", 0, 0, 2_000_000, 3, 3) + b"abc")
    path = tmp_path / "be.pcapng"
    path.write_bytes(shb + idb + epb)
    assert list(CaptureFile(str(path))) == [(2_000_000_000, 101, b"abc", 3)]


@pytest.mark.parametrize("nanosecond", [False, True])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcap_resolutions_and_byte_orders(tmp_path: Path, nanosecond: bool, endian: str) -> None:
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    frac = 123_456_789 if nanosecond else 123_456
    data = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    data += struct.pack(endian + "IIII", 1_700_000_000, frac, 4, 60) + b"abcd"
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    ts, lt, frame, wire = next(iter(CaptureFile(str(path))))
    expect_ns = 1_700_000_000 * 10**9 + (frac if nanosecond else frac * 1000)
    assert (ts, lt, frame, wire) == (expect_ns, 1, b"abcd", 60)


def test_writer_roundtrip_keeps_nanoseconds(tmp_path: Path) -> None:
    path = tmp_path / "w.pcap"
    pkts = [(1_700_000_000_000_000_001 + i * 7, bytes([i]) * (i + 1)) for i in range(50)]
    with PcapWriter(str(path), 1) as w:
        w.write_all(pkts)
    assert [(ts, fr) for ts, _lt, fr, _wl in CaptureFile(str(path))] == pkts


@pytest.mark.parametrize("name", ["http_minitwit", "wsgi_loopback", "mysql_long_result"])
def test_truncated_files_end_cleanly(tmp_path: Path, name: str) -> None:
    src = shared_pcap(name).read_bytes()
    full = list(CaptureFile(str(shared_pcap(name))))
    for cut in sorted({25, 40, len(src) // 3, len(src) // 2, len(src) - 1}):
        path = tmp_path / f"cut{cut}.pcap"
        path.write_bytes(src[:cut])
        reader = CaptureFile(str(path))
        got = list(reader)
        assert got == full[: len(got)]
        assert len(got) < len(full)
        assert reader.error is not None and reader.stats.truncated == 1


def test_corrupt_record_length_is_reported_not_raised(tmp_path: Path) -> None:
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    data += struct.pack("<IIII", 1, 0, 3, 3) + b"abc"
    data += struct.pack("<IIII", 2, 0, 0x7FFFFFFF, 10) + b"garbage"
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(data)
    reader = CaptureFile(str(path))
    assert [f for _, _, f, _ in reader] == [b"abc"]
    assert reader.error and "corrupt" in reader.error


@pytest.mark.parametrize("content", [b"", b"\x00\x01", b"hello world, not a capture file at all"])
def test_not_a_capture_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match="not a pcap or pcapng file"):
        CaptureFile(str(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot open capture file"):
        CaptureFile(str(tmp_path / "nope.pcap"))


def test_reading_is_streamed_not_loaded(tmp_path: Path) -> None:
    """A 64 MB file is read with a few MB of memory."""
    path = tmp_path / "big.pcap"
    frame = b"\xab" * 1500
    with PcapWriter(str(path), 1) as w:
        for i in range(45_000):
            w.write(1_700_000_000_000_000_000 + i, frame)
    assert path.stat().st_size > 60_000_000
    tracemalloc.start()
    n = 0
    for _ts, _lt, fr, _wl in CaptureFile(str(path)):
        n += len(fr)
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 45_000 * 1500
    assert peak < 8 * 1024 * 1024
