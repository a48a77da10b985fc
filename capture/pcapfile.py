"""Streaming readers for pcap (µs and ns) and pcapng capture files.

Both yield the capture seam: ``(ts_ns, linktype, frame, wire_len)``. Files are read in
fixed-size chunks, never whole. A truncated or corrupt tail ends the iteration; the reader
records why in ``error`` and counts it in ``stats`` instead of raising.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from capture.errors import CaptureError

Packet = tuple[int, int, bytes, int]

CHUNK = 1 << 20
# A record larger than this is corruption, not a frame (the largest sane snaplen is 256 KiB).
MAX_RECORD = 1 << 20

PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # little endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D


class ReaderStats:
    """``bytes_read``: the file's bytes consumed so far, headers included (the file's size
    once a clean file is read to its end)."""

    __slots__ = ("bytes_read", "packets", "skipped_blocks", "truncated")

    def __init__(self) -> None:
        self.packets = 0
        self.bytes_read = 0
        self.truncated = 0
        self.skipped_blocks = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


class _Chunked:
    """A forward-only byte window over a file: keeps at most one chunk plus a partial record."""

    __slots__ = ("buf", "eof", "fh", "pos")

    def __init__(self, fh: BinaryIO, initial: bytes = b"") -> None:
        self.fh = fh
        self.buf = initial
        self.pos = 0
        self.eof = False

    def ensure(self, n: int) -> bool:
        """Make at least ``n`` bytes available from ``pos``; False at end of file."""
        while len(self.buf) - self.pos < n:
            if self.eof:
                return False
            data = self.fh.read(max(CHUNK, n))
            if not data:
                self.eof = True
                return False
            self.buf = self.buf[self.pos :] + data
            self.pos = 0
        return True


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise CaptureError(f"cannot open capture file {path}: {exc.strerror}") from exc


def sniff_format(head: bytes) -> str:
    if head[:4] in PCAP_MAGIC:
        return "pcap"
    if len(head) >= 4 and struct.unpack("<I", head[:4])[0] == PCAPNG_SHB:
        return "pcapng"
    return "unknown"


class CaptureFile:
    """Iterate the packets of a pcap or pcapng file, whichever it is."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stats = ReaderStats()
        self.error: str | None = None
        self.linktypes: list[int] = []
        self._fh = _open(path)
        head = self._fh.read(4)
        try:
            self.size = os.fstat(self._fh.fileno()).st_size
        except (OSError, ValueError):
            self.size = 0
        self.format = sniff_format(head)
        if self.format == "unknown":
            self._fh.close()
            raise CaptureError(f"{path}: not a pcap or pcapng file (magic {head.hex() or 'empty'})")
        self._head = head

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Packet]:
        try:
            if self.format == "pcap":
                yield from self._read_pcap()
            else:
                yield from self._read_pcapng()
        finally:
            self.close()

    def _truncated(self, why: str) -> None:
        self.stats.truncated += 1
        self.error = f"{self.path}: {why}"

    # -- classic pcap -------------------------------------------------------------------

    def _read_pcap(self) -> Iterator[Packet]:
        rd = _Chunked(self._fh, self._head)
        if not rd.ensure(24):
            raise CaptureError(f"{self.path}: pcap file header is truncated")
        endian, ts_mult = PCAP_MAGIC[rd.buf[:4]]
        _maj, _min, _zone, _sig, _snap, network = struct.unpack_from(endian + "HHiIII", rd.buf, 4)
        linktype = network & 0x03FFFFFF
        self.linktypes = [linktype]
        rd.pos = 24
        self.stats.bytes_read = 24
        rec = struct.Struct(endian + "IIII")
        unpack = rec.unpack_from
        stats = self.stats
        sec_ns = 1_000_000_000
        fh = rd.fh
        buf = rd.buf
        pos = rd.pos
        while True:
            end = len(buf)
            # Inner loop over whole records already in the buffer.
            while pos + 16 <= end:
                ts_sec, ts_frac, incl, orig = unpack(buf, pos)
                if incl > MAX_RECORD:
                    self._truncated(f"corrupt record header at byte {_offset(fh, end, pos)} (length {incl})")
                    return
                nxt = pos + 16 + incl
                if nxt > end:
                    break
                stats.packets += 1
                stats.bytes_read += nxt - pos
                yield ts_sec * sec_ns + ts_frac * ts_mult, linktype, buf[pos + 16 : nxt], orig
                pos = nxt
            # The record that straddles the chunk end is completed with an exact read, so
            # the next chunk is used as read (no copying of whole chunks).
            tail = buf[pos:]
            if len(tail) < 16:
                more = fh.read(16 - len(tail))
                tail += more
                if len(tail) < 16:
                    if tail:
                        self._truncated("file ends inside a record header")
                    return
            ts_sec, ts_frac, incl, orig = unpack(tail, 0)
            if incl > MAX_RECORD:
                self._truncated(f"corrupt record header (length {incl})")
                return
            need = 16 + incl - len(tail)
            if need > 0:
                tail += fh.read(need)
                if len(tail) < 16 + incl:
                    self._truncated("file ends inside a packet record")
                    return
            stats.packets += 1
            stats.bytes_read += 16 + incl
            yield ts_sec * sec_ns + ts_frac * ts_mult, linktype, tail[16 : 16 + incl], orig
            buf = fh.read(CHUNK)
            pos = 0
            if not buf:
                return

    # -- pcapng -------------------------------------------------------------------------

    def _read_pcapng(self) -> Iterator[Packet]:
        rd = _Chunked(self._fh, self._head)
        endian = "<"
        # per-interface (linktype, ts numerator ns, ts divisor, ts offset seconds)
        ifaces: list[tuple[int, int, int, int]] = []
        stats = self.stats
        while True:
            if not rd.ensure(12):
                if len(rd.buf) - rd.pos:
                    self._truncated("file ends inside a block header")
                return
            buf, pos = rd.buf, rd.pos
            btype_le = struct.unpack_from("<I", buf, pos)[0]
            if btype_le == PCAPNG_SHB:
                bom = struct.unpack_from("<I", buf, pos + 8)[0]
                if bom == PCAPNG_BOM:
                    endian = "<"
                elif bom == 0x4D3C2B1A:
                    endian = ">"
                else:
                    self._truncated("bad section header byte-order magic")
                    return
                ifaces = []
            btype, blen = struct.unpack_from(endian + "II", buf, pos)
            if blen < 12 or blen % 4 or blen > MAX_RECORD + 64:
                self._truncated(f"corrupt block length {blen}")
                return
            if not rd.ensure(blen):
                self._truncated("file ends inside a block")
                return
            buf, pos = rd.buf, rd.pos
            body = pos + 8
            stats.bytes_read += blen
            if btype == 6:  # enhanced packet block
                iface, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(endian + "IIIII", buf, body)
                if iface >= len(ifaces) or 28 + caplen > blen:
                    stats.skipped_blocks += 1
                else:
                    lt, mul, div, off = ifaces[iface]
                    ts = ((ts_hi << 32) | ts_lo) * mul // div + off
                    stats.packets += 1
                    yield ts, lt, buf[body + 20 : body + 20 + caplen], wirelen
            elif btype == 3:  # simple packet block: interface 0, no timestamp
                (wirelen,) = struct.unpack_from(endian + "I", buf, body)
                if not ifaces:
                    stats.skipped_blocks += 1
                else:
                    caplen = min(wirelen, blen - 16)
                    stats.packets += 1
                    yield 0, ifaces[0][0], buf[body + 4 : body + 4 + caplen], wirelen
            elif btype == 2:  # obsolete packet block
                iface, _drops, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(
                    endian + "HHIIII", buf, body
                )
                if iface >= len(ifaces) or 28 + caplen > blen:
                    stats.skipped_blocks += 1
                else:
                    lt, mul, div, off = ifaces[iface]
                    stats.packets += 1
                    ts = ((ts_hi << 32) | ts_lo) * mul // div + off
                    yield ts, lt, buf[body + 20 : body + 20 + caplen], wirelen
            elif btype == 1:  # interface description block
                linktype, _res, _snap = struct.unpack_from(endian + "HHI", buf, body)
                mul, div, off = _idb_time_options(buf, body + 8, pos + blen - 4, endian)
                ifaces.append((linktype, mul, div, off))
                if linktype not in self.linktypes:
                    self.linktypes.append(linktype)
            elif btype != PCAPNG_SHB:
                stats.skipped_blocks += 1
            rd.pos = pos + blen


def _idb_time_options(buf: bytes, start: int, end: int, endian: str) -> tuple[int, int, int]:
    """Return (multiplier, divisor, offset_ns) turning raw timestamps into nanoseconds."""
    mul, div, off = 1000, 1, 0  # default resolution: microseconds
    pos = start
    while pos + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", buf, pos)
        if code == 0:
            break
        val = buf[pos + 4 : pos + 4 + length]
        if code == 9 and length >= 1:  # if_tsresol
            res = val[0]
            if res & 0x80:
                mul, div = 1_000_000_000, 1 << (res & 0x7F)
            else:
                exp = res & 0x7F
                if exp <= 9:
                    mul, div = 10 ** (9 - exp), 1
                else:
                    mul, div = 1, 10 ** (exp - 9)
        elif code == 14 and length == 8:  # if_tsoffset, seconds
            off = struct.unpack(endian + "q", val)[0] * 1_000_000_000
        pos += 4 + ((length + 3) & ~3)
    return mul, div, off


def _offset(fh: BinaryIO, buf_len: int, pos: int) -> int:
    """Best-effort file offset of ``pos`` in the current buffer (for error messages)."""
    try:
        return fh.tell() - (buf_len - pos)
    except (OSError, ValueError):
        return -1


def read_packets(path: str) -> Iterator[Packet]:
    """Convenience: iterate the packets of a capture file."""
    return iter(CaptureFile(path))
