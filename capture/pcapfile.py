"""Streaming readers for pcap (µs and ns) and pcapng capture files.

Both yield the capture seam: ``(ts_ns, linktype, frame, wire_len)``. Files are read in
fixed-size chunks, never whole. A truncated or corrupt tail ends the iteration; the reader
records why (with the byte offset) in ``error`` and counts it in ``stats`` instead of
raising. Packet times are kept within 1970..2262 (int64 nanoseconds): a packet outside
is dropped and counted.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable, Generator, Iterator
from typing import Any, BinaryIO

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
MAX_BLOCK = MAX_RECORD + 64
#: Smallest length of each block type: 12 bytes of framing plus its fixed fields
#: (draft-ietf-opsawg-pcapng §4.1-4.6); other types need only the framing.
_MIN_BLOCK = {PCAPNG_SHB: 28, 1: 20, 2: 32, 3: 16, 5: 24, 6: 32}
#: Latest time a packet may carry: int64 nanoseconds (2262-04-11), what libpcap, Go and
#: most tools hold. Earlier than 1970 is refused too (only a pcapng if_tsoffset gets there).
MAX_TS_NS = (1 << 63) - 1


class ReaderStats:
    """What a reader met. ``packets`` were yielded; every other non-zero field is a loss
    or an oddity, counted (and the first one described in ``CaptureFile.error``)."""

    __slots__ = (
        "bad_timestamps",
        "bytes_read",
        "corrupt",
        "malformed_blocks",
        "packets",
        "skipped_blocks",
        "truncated",
        "untimed_packets",
    )

    def __init__(self) -> None:
        self.packets = 0
        self.bytes_read = 0
        #: The file ends inside a record or block (0 or 1: reading stops there).
        self.truncated = 0
        #: The framing is broken (impossible length, lengths that disagree): reading stops.
        self.corrupt = 0
        #: Blocks whose framing holds but whose content does not (shorter than the fixed
        #: fields of their type, data past the block's end, an undefined interface): skipped.
        self.malformed_blocks = 0
        #: Packets whose time is outside 1970..2262 (what int64 nanoseconds hold): dropped.
        self.bad_timestamps = 0
        #: Blocks that carry no packet (statistics, name resolution, custom, unknown types).
        self.skipped_blocks = 0
        #: Simple Packet Blocks read before any time was known: published with time 0.
        self.untimed_packets = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}

    def problems(self) -> int:
        return self.truncated + self.corrupt + self.malformed_blocks + self.bad_timestamps


class _Chunked:
    """A forward-only byte window over a file: keeps at most one chunk plus a partial record."""

    __slots__ = ("base", "buf", "eof", "fh", "pos")

    def __init__(self, fh: BinaryIO, initial: bytes = b"") -> None:
        self.fh = fh
        self.buf = initial
        self.pos = 0
        self.base = 0  # file offset of buf[0]
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
            self.base += self.pos
            self.pos = 0
        return True


#: Bytes a mapped walk reads before it hands pages back (``PcapMap.progress``).
_RELEASE_EVERY = 4 << 20


class PcapMap:
    """A classic pcap file mapped in memory, for a reader that looks at every record and
    keeps few (worker processes): its own loop over ``buf`` costs less than a generator
    step per record. The records start at offset 24; the loop stops at ``end``, at a
    record header whose captured length exceeds ``MAX_RECORD`` or at a record that does
    not fit, then calls ``finish``, which counts and describes what stopped it exactly as
    iterating the file would.

        pos, end = 24, m.end
        while pos + 16 <= end:
            sec, frac, incl, wire = m.header(m.buf, pos)
            nxt = pos + 16 + incl
            if incl > MAX_RECORD or nxt > end:
                break
            ...  # the frame is buf[pos + 16 : nxt], its time sec * 10**9 + frac * ts_mult
            pos = nxt
        m.finish(pos, records)
    """

    __slots__ = ("_closers", "buf", "end", "endian", "header", "linktype", "reader", "released", "ts_mult")

    def __init__(self, reader: CaptureFile, buf: mmap.mmap, endian: str, ts_mult: int, linktype: int) -> None:
        self.reader = reader
        self.buf = buf
        self.end = len(buf)
        self.endian = endian
        self.ts_mult = ts_mult
        self.linktype = linktype
        self.header = struct.Struct(endian + "IIII").unpack_from
        #: Bytes before this offset were handed back (``progress``).
        self.released = 0
        self._closers: list[Callable[[], object]] = []

    def progress(self, pos: int, records: int) -> bool:
        """Counters for a loop at ``pos`` after ``records`` whole records. The pages before
        ``pos`` are handed back: a file read once must not stay in the process's resident
        memory (a worker walking a 600 MB capture would hold all of it).

        True if the file is now shorter than ``end`` (another process truncated it): ``end``
        is lowered to its size, and the loop must stop there — touching a page of the
        mapping past the end of the file kills the process (SIGBUS). Iteration would meet
        the same end; ``finish`` describes it alike. The loops call this every few thousand
        records; a truncation between two calls can still reach a page past the end."""
        stats = self.reader.stats
        stats.packets = records
        stats.bytes_read = pos
        upto = pos - pos % mmap.PAGESIZE
        if upto - self.released >= _RELEASE_EVERY and hasattr(self.buf, "madvise"):
            self.buf.madvise(mmap.MADV_DONTNEED, self.released, upto - self.released)
            self.released = upto
        try:
            size = os.fstat(self.reader._fh.fileno()).st_size
        except (OSError, ValueError):
            return False
        if size >= self.end:
            return False
        self.end = max(size, pos)
        return True

    def on_close(self, release: Callable[[], object]) -> None:
        """Call ``release`` before unmapping (a view of ``buf`` held elsewhere must be let go
        first: a mapping with views cannot be closed)."""
        self._closers.append(release)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()
        self.buf.close()

    def finish(self, pos: int, records: int) -> None:
        """The loop stopped at ``pos`` after ``records`` records: count and describe why
        if it is not the end of the file; unmap."""
        self.progress(pos, records)
        left = self.end - pos
        if left:
            r = self.reader
            if left < 16:
                r._cut_header(pos, left)
            else:
                incl = self.header(self.buf, pos)[2]
                if incl > MAX_RECORD:
                    r._corrupt(pos, incl)
                else:
                    r._cut_record(pos, left - 16, incl)
        self.close()


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
    """Iterate the packets of a pcap or pcapng file, whichever it is.

    Damage never raises: the packets before it are yielded, the first problem is described
    in ``error`` (with its byte offset) and every one is counted in ``stats``. A broken
    framing (or the end of the file inside a record) ends the iteration; a block whose
    framing holds but whose content does not is skipped and reading goes on.
    """

    def __init__(self, path: str, fileobj: BinaryIO | None = None) -> None:
        """``fileobj``: read this open binary file instead (``path`` then only names it)."""
        self.path = path
        self.stats = ReaderStats()
        self.error: str | None = None
        self.linktypes: list[int] = []
        self._fh = fileobj if fileobj is not None else _open(path)
        head = self._fh.read(4)
        try:
            self.size = os.fstat(self._fh.fileno()).st_size
        except (OSError, ValueError):
            self.size = 0
        self.format = sniff_format(head)
        if self.format == "unknown":
            self._fh.close()
            raise CaptureError(f"{path}: not a pcap or pcapng file (magic {head.hex() or 'empty'})")
        if self.format == "pcap":
            head += self._fh.read(20)
            if len(head) < 24:
                self._fh.close()
                raise CaptureError(f"{path}: pcap file header is truncated ({len(head)} of 24 bytes)")
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

    def records(self) -> Generator[tuple[int, int, bytes, int, int, int], None, None]:
        """The packets without copying their frames: ``(ts_ns, linktype, buffer, start,
        end, wire_len)``, the frame being ``buffer[start:end]`` (for a reader that looks at
        every packet and keeps few of them: worker processes). Same counting as iteration."""
        try:
            if self.format == "pcap":
                yield from self._read_pcap(raw=True)
            else:
                for ts, lt, frame, wire in self._read_pcapng():
                    yield ts, lt, frame, 0, len(frame), wire
        finally:
            self.close()

    def mapped(self) -> PcapMap | None:
        """The file in memory for a reader's own loop over its records (classic pcap in a
        regular file; None otherwise: use ``records()``)."""
        if self.format != "pcap":
            return None
        try:
            mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # not a regular file, or empty
            return None
        endian, ts_mult, linktype = self._pcap_header()
        return PcapMap(self, mm, endian, ts_mult, linktype)

    def _pcap_header(self) -> tuple[str, int, int]:
        """A classic pcap file's byte order, time unit (ns) and link type (``linktypes``)."""
        endian, ts_mult = PCAP_MAGIC[self._head[:4]]
        network = struct.unpack_from(endian + "I", self._head, 20)[0]
        self.linktypes = [network & 0x03FFFFFF]
        return endian, ts_mult, self.linktypes[0]

    # The three ways a classic pcap file's records end early (one wording for every reader).

    def _cut_header(self, at: int, got: int) -> None:
        self._problem("truncated", at, f"file ends inside a record header ({got} of 16 bytes)")

    def _corrupt(self, at: int, incl: int) -> None:
        self._problem("corrupt", at, f"corrupt record header (captured length {incl})")

    def _cut_record(self, at: int, got: int, incl: int) -> None:
        self._problem("truncated", at, f"file ends inside a packet record ({got} of {incl} bytes)")

    def _problem(self, counter: str, offset: int, why: str) -> None:
        """Count one problem; the first one is kept in ``error``."""
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        if self.error is None:
            self.error = f"{self.path}: {why} at byte {offset}"

    # -- classic pcap -------------------------------------------------------------------

    def _read_pcap(self, raw: bool = False) -> Iterator[Any]:
        rd = _Chunked(self._fh, self._head)
        rd.ensure(24)
        endian, ts_mult, linktype = self._pcap_header()
        rec = struct.Struct(endian + "IIII")
        unpack = rec.unpack_from
        stats = self.stats
        sec_ns = 1_000_000_000
        fh = rd.fh
        buf = rd.buf
        pos = 24
        base = 0  # file offset of buf[0]
        # pcap times are unsigned 32-bit seconds (and fractions): always within 1970..2106.
        while True:
            end = len(buf)
            # Inner loop over whole records already in the buffer.
            while pos + 16 <= end:
                ts_sec, ts_frac, incl, orig = unpack(buf, pos)
                if incl > MAX_RECORD:
                    stats.bytes_read = base + pos
                    self._corrupt(base + pos, incl)
                    return
                nxt = pos + 16 + incl
                if nxt > end:
                    break
                stats.packets += 1
                stats.bytes_read += nxt - pos
                if raw:
                    yield ts_sec * sec_ns + ts_frac * ts_mult, linktype, buf, pos + 16, nxt, orig
                else:
                    yield ts_sec * sec_ns + ts_frac * ts_mult, linktype, buf[pos + 16 : nxt], orig
                pos = nxt
            # The record that straddles the chunk end is completed with an exact read, so
            # the next chunk is used as read (no copying of whole chunks).
            at = base + pos
            stats.bytes_read = at
            tail = buf[pos:]
            if len(tail) < 16:
                more = fh.read(16 - len(tail))
                tail += more
                if len(tail) < 16:
                    if tail:
                        self._cut_header(at, len(tail))
                    return
            ts_sec, ts_frac, incl, orig = unpack(tail, 0)
            if incl > MAX_RECORD:
                self._corrupt(at, incl)
                return
            need = 16 + incl - len(tail)
            if need > 0:
                tail += fh.read(need)
                if len(tail) < 16 + incl:
                    self._cut_record(at, len(tail) - 16, incl)
                    return
            stats.packets += 1
            stats.bytes_read += 16 + incl
            if raw:
                yield ts_sec * sec_ns + ts_frac * ts_mult, linktype, tail, 16, 16 + incl, orig
            else:
                yield ts_sec * sec_ns + ts_frac * ts_mult, linktype, tail[16 : 16 + incl], orig
            base = at + 16 + incl
            stats.bytes_read = base
            buf = fh.read(CHUNK)
            pos = 0
            if not buf:
                return

    # -- pcapng -------------------------------------------------------------------------

    def _read_pcapng(self) -> Iterator[Packet]:
        rd = _Chunked(self._fh, self._head)
        endian = "<"
        # Per interface: (linktype, ts numerator, ts divisor, ts offset ns, snaplen), or
        # None for a malformed description (its packets are counted, not guessed at).
        ifaces: list[tuple[int, int, int, int, int] | None] = []
        stats = self.stats
        problem = self._problem
        last_ts = -1  # time of the latest timestamped block: Simple Packet Blocks take it
        while True:
            stats.bytes_read = at = rd.base + rd.pos
            if not rd.ensure(12):
                left = len(rd.buf) - rd.pos
                if left:
                    problem("truncated", at, f"file ends inside a block header ({left} of 12 bytes)")
                return
            buf, pos = rd.buf, rd.pos
            if struct.unpack_from("<I", buf, pos)[0] == PCAPNG_SHB:
                bom = struct.unpack_from("<I", buf, pos + 8)[0]
                if bom == PCAPNG_BOM:
                    endian = "<"
                elif bom == 0x4D3C2B1A:
                    endian = ">"
                else:
                    problem("corrupt", at, f"bad section header byte-order magic {bom:#010x}")
                    return
                ifaces = []
            btype, blen = struct.unpack_from(endian + "II", buf, pos)
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                problem("corrupt", at, f"corrupt block length {blen} (block type {btype:#x})")
                return
            if not rd.ensure(blen):
                have = len(rd.buf) - rd.pos
                problem(
                    "truncated", at, f"file ends inside a block (type {btype:#x}, {have} of {blen} bytes)"
                )
                return
            buf, pos = rd.buf, rd.pos
            trailer = struct.unpack_from(endian + "I", buf, pos + blen - 4)[0]
            if trailer != blen:
                problem(
                    "corrupt", at, f"block lengths disagree ({blen} and {trailer}, block type {btype:#x})"
                )
                return
            rd.pos = pos + blen
            if blen < _MIN_BLOCK.get(btype, 12):
                if btype == PCAPNG_SHB:
                    problem("corrupt", at, f"section header block of {blen} bytes")
                    return
                if btype == 1:
                    ifaces.append(None)  # keep the numbering of the interfaces after it
                problem(
                    "malformed_blocks",
                    at,
                    f"block type {btype:#x} of {blen} bytes is shorter than its fields",
                )
                continue
            body = pos + 8
            if btype == 6 or btype == 2:  # enhanced packet block, obsolete packet block
                if btype == 6:
                    iface, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(endian + "IIIII", buf, body)
                else:
                    iface, _drops, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(
                        endian + "HHIIII", buf, body
                    )
                info = ifaces[iface] if iface < len(ifaces) else None
                if info is None:
                    problem("malformed_blocks", at, f"packet of undefined interface {iface}")
                elif 32 + caplen > blen:
                    problem("malformed_blocks", at, f"captured length {caplen} runs past the block's end")
                else:
                    lt, mul, div, off, _snap = info
                    ts = ((ts_hi << 32) | ts_lo) * mul // div + off
                    if not 0 <= ts <= MAX_TS_NS:
                        problem("bad_timestamps", at, f"packet time {ts} ns outside 1970..2262; dropped")
                    else:
                        last_ts = ts
                        stats.packets += 1
                        yield ts, lt, buf[body + 20 : body + 20 + caplen], wirelen
            elif btype == 3:  # simple packet block: interface 0, no timestamp of its own
                (wirelen,) = struct.unpack_from(endian + "I", buf, body)
                info = ifaces[0] if ifaces else None
                if info is None:
                    problem("malformed_blocks", at, "simple packet block without interface 0")
                else:
                    caplen = min(wirelen, blen - 16)
                    if info[4]:
                        caplen = min(caplen, info[4])
                    if last_ts < 0:
                        stats.untimed_packets += 1
                    stats.packets += 1
                    yield max(last_ts, 0), info[0], buf[body + 4 : body + 4 + caplen], wirelen
            elif btype == 1:  # interface description block
                linktype, _res, snaplen = struct.unpack_from(endian + "HHI", buf, body)
                times = _idb_time_options(buf, body + 8, pos + blen - 4, endian)
                if times is None:
                    ifaces.append(None)
                    problem("malformed_blocks", at, "interface description with malformed options")
                else:
                    ifaces.append((linktype, *times, snaplen))
                    if linktype not in self.linktypes:
                        self.linktypes.append(linktype)
            elif btype == 5:  # interface statistics: a known time, no packet
                iface, ts_hi, ts_lo = struct.unpack_from(endian + "III", buf, body)
                info = ifaces[iface] if iface < len(ifaces) else None
                if info is not None:
                    ts = ((ts_hi << 32) | ts_lo) * info[1] // info[2] + info[3]
                    if 0 <= ts <= MAX_TS_NS:
                        last_ts = ts
                stats.skipped_blocks += 1
            elif btype != PCAPNG_SHB:
                stats.skipped_blocks += 1


def _idb_time_options(buf: bytes, start: int, end: int, endian: str) -> tuple[int, int, int] | None:
    """Return (multiplier, divisor, offset_ns) turning raw timestamps into nanoseconds, or
    None when an option runs past the block."""
    mul, div, off = 1000, 1, 0  # default resolution: microseconds
    pos = start
    while pos + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", buf, pos)
        if code == 0:
            break
        if pos + 4 + length > end:
            return None
        val = buf[pos + 4 : pos + 4 + length]
        if code == 9 and length >= 1:  # if_tsresol: 10^-n, or 2^-n with the top bit set
            res = val[0]
            exp = res & 0x7F
            if res & 0x80:
                mul, div = 1_000_000_000, 1 << exp
            elif exp <= 9:
                mul, div = 10 ** (9 - exp), 1
            else:
                mul, div = 1, 10 ** (exp - 9)
        elif code == 14 and length == 8:  # if_tsoffset, seconds
            off = struct.unpack(endian + "q", val)[0] * 1_000_000_000
        pos += 4 + ((length + 3) & ~3)
    return mul, div, off


def read_packets(path: str) -> Iterator[Packet]:
    """Convenience: iterate the packets of a capture file."""
    return iter(CaptureFile(path))
