"""Hypothesis properties for the capture file readers (pcap and pcapng, every pcapng block
type: SHB, IDB, EPB, SPB, PB, NRB, ISB, DSB, custom and unknown ones, both byte orders,
several sections, every ``if_tsresol``/``if_tsoffset``):

* valid files read back exactly what was written (times through an independent model);
* valid files cut at every offset: a prefix of the packets, no exception, and the cut
  reported (``error`` and a counter) unless it falls on a record boundary;
* random bytes and mutated files: no exception escapes the reader, every yielded time is
  in 1970..2262, and a reader that stops before the end of the file says why;
* the work is linear: Python lines run stay within a constant per 12 bytes of file.
"""

from __future__ import annotations

import random
import struct
import tempfile
import threading
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture import CaptureError, CaptureFile, pcapfile
from capture.pcapfile import MAX_TS_NS
from shipper.agent import walk
from tests.capture import pcapng_blocks as ng
from tests.helpers import need
from tests.protocols.test_decoder_properties import EXAMPLES
from tests.protocols.workmeter import metered

FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Packet = tuple[int, int, bytes, int]


def read(data: bytes, how: str = "iterate") -> tuple[list[Packet], CaptureFile | None]:
    """Read ``data`` as a capture file: (packets, reader), or ([], None) when the file is
    refused up front (CaptureError: not a capture, header cut). ``how``: ``iterate``;
    ``records``, the frames cut from the buffers ``records()`` yields; ``mapped``, the loop
    ``PcapMap``'s docstring prescribes over ``mapped()`` (classic pcap only)."""
    with tempfile.NamedTemporaryFile(suffix=".cap") as f:
        f.write(data)
        f.flush()
        try:
            reader = CaptureFile(f.name)
        except CaptureError:
            return [], None
        if how == "records":
            return [(ts, lt, bytes(buf[a:b]), wl) for ts, lt, buf, a, b, wl in reader.records()], reader
        if how == "mapped":
            return _walk(reader), reader
        if how == "chunks":
            return _chunks(reader), reader
        return list(reader), reader


def _chunks(reader: CaptureFile) -> list[Packet]:
    """A single process's replay through the C walker, 3 packets a chunk, keeping pure ACKs
    (as with flows on: the decoder stand-in has a flow table)."""
    if walk.ext is None:
        need("the C extension shipper.agent._walk")
    m = walk.walkable(reader)
    assert m is not None
    decoder: Any = SimpleNamespace(flows=object(), next_tick=1 << 62)
    pkts = [p for chunk in walk.chunks(m, decoder, threading.Event(), 3) for p in chunk]
    reader.close()
    return pkts


def _walk(reader: CaptureFile) -> list[Packet]:
    m = reader.mapped()
    assert m is not None
    pkts: list[Packet] = []
    pos, end = 24, m.end
    while pos + 16 <= end:
        sec, frac, incl, wire = m.header(m.buf, pos)
        nxt = pos + 16 + incl
        if incl > pcapfile.MAX_RECORD or nxt > end:
            break
        pkts.append((sec * 10**9 + frac * m.ts_mult, m.linktype, m.buf[pos + 16 : nxt], wire))
        pos = nxt
    m.finish(pos, len(pkts))
    reader.close()
    return pkts


def check_invariants(data: bytes, pkts: list[Packet], reader: CaptureFile | None) -> None:
    if reader is None:
        return
    for ts, _lt, frame, _wl in pkts:
        assert 0 <= ts <= MAX_TS_NS
        assert isinstance(frame, bytes)
    st_ = reader.stats
    assert st_.packets == len(pkts)
    if st_.bytes_read < len(data):
        assert reader.error is not None and (st_.truncated or st_.corrupt), (st_.as_dict(), reader.error)
    if st_.problems():
        assert reader.error is not None and "at byte" in reader.error


# -- classic pcap -------------------------------------------------------------------------


def pcap_file(endian: str, nano: bool, records: list[tuple[int, int, bytes, int]]) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = bytearray(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1))
    for sec, frac, data, wl in records:
        out += struct.pack(endian + "IIII", sec, frac, len(data), wl) + data
    return bytes(out)


pcap_records = st.lists(
    st.tuples(
        st.integers(0, 2**32 - 1),
        st.integers(0, 999_999_999),
        st.binary(max_size=80),
        st.integers(0, 2**32 - 1),
    ),
    max_size=12,
)


@FUZZ
@given(endian=st.sampled_from("<>"), nano=st.booleans(), records=pcap_records)
def test_pcap_reads_back_and_every_cut_is_a_prefix(
    endian: str, nano: bool, records: list[tuple[int, int, bytes, int]]
) -> None:
    if not nano:
        records = [(s, f % 1_000_000, d, w) for s, f, d, w in records]
    data = pcap_file(endian, nano, records)
    want = [(s * 10**9 + f * (1 if nano else 1000), 1, d, w) for s, f, d, w in records]
    pkts, reader = read(data)
    assert pkts == want and reader is not None and reader.error is None
    bounds = {24}
    pos = 24
    for _s, _f, d, _w in records:
        pos += 16 + len(d)
        bounds.add(pos)
    for cut in range(24, len(data)):
        pkts, reader = read(data[:cut])
        assert reader is not None
        assert pkts == want[: len(pkts)]
        assert (reader.error is None) == (cut in bounds), (cut, reader.error)
        if cut not in bounds:
            assert (
                reader.stats.truncated == 1
                and f"at byte {max(b for b in bounds if b <= cut)}" in reader.error
            )
        check_invariants(data[:cut], pkts, reader)


@FUZZ
@given(body=st.binary(max_size=600), endian=st.sampled_from("<>"), nano=st.booleans())
def test_pcap_random_bytes_after_a_valid_header(body: bytes, endian: str, nano: bool) -> None:
    data = pcap_file(endian, nano, []) + body
    pkts, reader = read(data)
    check_invariants(data, pkts, reader)


# -- pcapng: a model of valid files ---------------------------------------------------------


def ts_model(raw: int, tsresol: int | None, tsoffset: int | None) -> int | None:
    """Nanoseconds of a raw timestamp, computed with exact fractions (None: out of range)."""
    res = 6 if tsresol is None else tsresol
    unit = Fraction(1, 2 ** (res & 0x7F)) if res & 0x80 else Fraction(1, 10 ** (res & 0x7F))
    ns = int(raw * unit * 10**9) + (tsoffset or 0) * 10**9  # int() floors non-negative values
    return ns if 0 <= ns <= MAX_TS_NS else None


RESOLUTIONS = st.one_of(
    st.none(), st.integers(0, 12), st.sampled_from([30, 63, 127, 0x80 | 10, 0x80 | 63, 0xFF])
)
OFFSETS = st.one_of(st.none(), st.integers(-(2**40), 2**40), st.sampled_from([-(2**63), 2**63 - 1]))
RAW = st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 2**52))


@st.composite
def pcapng_files(draw: Any) -> tuple[bytes, list[Packet], list[int], int]:
    """(file, expected packets, block boundaries, blocks a reader must count as skipped)."""
    out = bytearray()
    bounds: list[int] = []
    want: list[Packet] = []
    skipped = 0
    last_ts = -1
    for _section in range(draw(st.integers(1, 3))):
        e = draw(st.sampled_from("<>"))
        blocks = [
            ng.shb(e, ng.option(1, b"comment", e) + ng.end_of_options(e) if draw(st.booleans()) else b"")
        ]
        ifaces: list[tuple[int, int | None, int | None, int]] = []
        for _ in range(draw(st.integers(0, 10))):
            kind = draw(
                st.sampled_from(["idb", "epb", "spb", "pb", "nrb", "isb", "dsb", "custom", "unknown"])
            )
            if kind == "idb" or (kind in ("epb", "spb", "pb", "isb") and not ifaces):
                lt = draw(st.sampled_from([1, 101, 113, 228, 276]))
                res, off = draw(RESOLUTIONS), draw(OFFSETS)
                snap = draw(st.sampled_from([0, 40, 65535]))
                ifaces.append((lt, res, off, snap))
                blocks.append(ng.idb(lt, res, off, snap, e))
                if kind == "idb":
                    continue
            if kind in ("epb", "pb"):
                i = draw(st.integers(0, len(ifaces) - 1))
                lt, res, off, _snap = ifaces[i]
                raw, frame = draw(RAW), draw(st.binary(max_size=60))
                wl = len(frame) + draw(st.integers(0, 100))
                blocks.append((ng.epb if kind == "epb" else ng.pb)(i, raw, frame, wl, e))
                ts = ts_model(raw, res, off)
                if ts is not None:
                    want.append((ts, lt, frame, wl))
                    last_ts = ts
            elif kind == "spb":
                lt, _res, _off, snap = ifaces[0]
                frame = draw(st.binary(max_size=60))
                blocks.append(ng.spb(frame, None, e))
                want.append((max(last_ts, 0), lt, frame[:snap] if snap else frame, len(frame)))
            elif kind == "isb":
                i = draw(st.integers(0, len(ifaces) - 1))
                raw = draw(RAW)
                blocks.append(ng.block(ng.ISB, struct.pack(e + "III", i, raw >> 32, raw & 0xFFFFFFFF), e))
                ts = ts_model(raw, ifaces[i][1], ifaces[i][2])
                if ts is not None:
                    last_ts = ts
                skipped += 1
            else:
                blocks.append(
                    {
                        "nrb": ng.nrb,
                        "dsb": ng.dsb,
                        "custom": lambda e: ng.custom(draw(st.booleans()), e),
                        "unknown": lambda e: ng.block(0x7777, b"?" * 5, e),
                    }[kind](e)
                )
                skipped += 1
        for b in blocks:
            out += b
            bounds.append(len(out))
    return bytes(out), want, bounds, skipped


@FUZZ
@given(f=pcapng_files())
def test_pcapng_every_block_type_reads_back(f: tuple[bytes, list[Packet], list[int], int]) -> None:
    data, want, _bounds, skipped = f
    pkts, reader = read(data)
    assert reader is not None
    assert pkts == want
    st_ = reader.stats
    assert st_.skipped_blocks == skipped
    assert st_.truncated == st_.corrupt == st_.malformed_blocks == 0
    check_invariants(data, pkts, reader)


@settings(max_examples=max(20, EXAMPLES // 3), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=pcapng_files())
def test_pcapng_cut_at_every_offset(f: tuple[bytes, list[Packet], list[int], int]) -> None:
    data, want, bounds, _skipped = f
    for cut in range(4, len(data)):
        pkts, reader = read(data[:cut])
        assert reader is not None
        assert pkts == want[: len(pkts)]
        st_ = reader.stats
        if cut in bounds:
            assert st_.truncated == st_.corrupt == st_.malformed_blocks == 0, (cut, reader.error)
        else:
            assert st_.truncated == 1 or st_.corrupt == 1, (cut, st_.as_dict())
            start = max([b for b in bounds if b <= cut], default=0)
            if not st_.bad_timestamps:  # else the first problem reported is a time
                assert f"at byte {start}" in (reader.error or ""), (cut, start, reader.error)
        check_invariants(data[:cut], pkts, reader)


def mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 6)):
        i = rnd.randrange(len(b) + 1)
        r = rnd.random()
        if r < 0.4 and b:
            b[min(i, len(b) - 1)] = rnd.randrange(256)
        elif r < 0.55 and len(b) >= 4:  # a length field or any word: an interesting value
            j = rnd.randrange(0, len(b) - 3)
            b[j : j + 4] = rnd.choice([0, 1, 11, 12, 13, 16, 28, 0x7FFFFFFF, 0xFFFFFFFF]).to_bytes(
                4, "little"
            )
        elif r < 0.75:
            b[i:i] = rnd.randbytes(rnd.randint(1, 16))
        else:
            del b[i : i + rnd.randint(1, 16)]
    return bytes(b)


@FUZZ
@given(f=pcapng_files(), seed=st.integers(0, 2**32 - 1))
def test_pcapng_mutated_files_never_raise(f: tuple[bytes, list[Packet], list[int], int], seed: int) -> None:
    data = mutate(f[0], random.Random(seed))
    pkts, reader = read(data)
    check_invariants(data, pkts, reader)


@FUZZ
@given(body=st.binary(max_size=600), endian=st.sampled_from("<>"))
def test_pcapng_random_bytes_after_a_section_header(body: bytes, endian: str) -> None:
    data = ng.shb(endian) + body
    pkts, reader = read(data)
    check_invariants(data, pkts, reader)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_reading_work_is_linear_in_the_file(fmt: str) -> None:
    """Structural: Python lines run per 12 bytes of input stay bounded, for valid and
    mutated files of growing size (no clock)."""
    rnd = random.Random(5)

    def make(n: int) -> bytes:
        frames = [(10**18 + i, 1, rnd.randbytes(rnd.randint(0, 40)), 60) for i in range(n)]
        if fmt == "pcap":
            return pcap_file("<", True, [(t // 10**9, t % 10**9, d, w) for t, _, d, w in frames])
        blocks = bytearray(ng.shb() + ng.idb(1, tsresol=9))
        for t, _, d, w in frames:
            blocks += rnd.choice([ng.epb(0, t, d, w), ng.spb(d, w), ng.pb(0, t, d, w), ng.nrb(), ng.isb()])
        return bytes(blocks)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f"
        for n in (100, 2000):
            for data in (make(n), mutate(make(n), rnd)):
                path.write_bytes(data)
                with metered([pcapfile]) as meter:
                    try:
                        list(CaptureFile(str(path)))
                    except CaptureError:
                        pass
                assert meter.lines <= 40 * (len(data) // 12 + 10), (n, meter.lines, len(data))


# -- records(): the frames by reference, for readers that keep few of them (workers) ---------


def same_as_iteration(data: bytes, how: str = "records") -> None:
    """Reading ``how`` (``read``) yields what iteration yields and counts alike."""
    pkts, r1 = read(data)
    recs, r2 = read(data, how)
    assert recs == pkts
    if r1 is None or r2 is None:
        assert r1 is r2
        return
    assert r2.stats.as_dict() == r1.stats.as_dict()
    # The first problem is described alike (each reader names its own temporary file).
    assert (r2.error or "").replace(r2.path, "") == (r1.error or "").replace(r1.path, "")


@FUZZ
@given(endian=st.sampled_from("<>"), nano=st.booleans(), records=pcap_records, cut=st.integers(0, 10_000))
def test_pcap_records_by_reference_match_iteration(
    endian: str, nano: bool, records: list[tuple[int, int, bytes, int]], cut: int
) -> None:
    data = pcap_file(endian, nano, records)
    same_as_iteration(data)
    same_as_iteration(data[: 24 + cut % max(1, len(data) - 23)])


@FUZZ
@given(f=pcapng_files(), seed=st.integers(0, 2**32 - 1))
def test_pcapng_records_by_reference_match_iteration(
    f: tuple[bytes, list[Packet], list[int], int], seed: int
) -> None:
    same_as_iteration(f[0])
    same_as_iteration(mutate(f[0], random.Random(seed)))


# -- mapped(): a reader's own loop over a classic pcap file in memory (workers) -------------


@pytest.mark.parametrize("how", ["mapped", "chunks"])
@FUZZ
@given(
    endian=st.sampled_from("<>"),
    nano=st.booleans(),
    records=pcap_records,
    cut=st.integers(0, 10_000),
    seed=st.integers(0, 2**32 - 1),
)
def test_pcap_mapped_walk_matches_iteration(
    how: str, endian: str, nano: bool, records: list[tuple[int, int, bytes, int]], cut: int, seed: int
) -> None:
    """Walking a mapped file (the Python loop ``PcapMap`` prescribes, or the C walker's
    chunks for a single process) yields what iterating it yields, and counts and describes
    what it meets alike: whole files, files cut anywhere, mutated files (lying lengths)."""
    data = pcap_file(endian, nano, records)
    same_as_iteration(data, how)
    same_as_iteration(data[: 24 + cut % max(1, len(data) - 23)], how)
    same_as_iteration(data[:24] + mutate(data[24:], random.Random(seed)), how)


def test_mapped_is_for_classic_pcap_only(tmp_path: Path) -> None:
    """pcapng files (and pipes) are not mapped: their readers use ``records()``."""
    f = tmp_path / "x.pcapng"
    f.write_bytes(ng.shb() + ng.idb(1) + ng.epb(0, 1, b"frame", 5))
    assert CaptureFile(str(f)).mapped() is None


def _mapped_rss_kb(path: Path) -> int:
    """Resident kilobytes of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[:1].isdigit() or line[:1] in "abcdef":
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_a_mapped_walk_hands_back_what_it_read(tmp_path: Path) -> None:
    """A worker walks a capture once: the pages behind it must not stay resident (a
    600 MB capture would otherwise count 600 MB in every worker's RSS)."""
    recs = [(1_700_000_000 + i, 0, bytes([i % 251]) * 1500, 1500) for i in range(16_000)]  # ~24 MB
    p = tmp_path / "big.pcap"
    p.write_bytes(pcap_file("<", False, recs))
    reader = CaptureFile(str(p))
    m = reader.mapped()
    assert m is not None
    pos, n, peak = 24, 0, 0
    while pos + 16 <= m.end:
        incl = m.header(m.buf, pos)[2]
        assert m.buf[pos + 16] == n % 251  # (reads the page)
        pos += 16 + incl
        n += 1
        if n % 2048 == 0:
            m.progress(pos, n)
            peak = max(peak, _mapped_rss_kb(p))
    assert n == len(recs)
    assert 0 < peak < 12 * 1024, peak  # never more than a few MB of the 24 resident
    m.finish(pos, n)
    assert reader.stats.packets == n and reader.error is None


def test_records_across_chunk_boundaries(tmp_path: Path) -> None:
    """Records that straddle the reader's chunks come out whole, by reference too."""
    rnd = random.Random(7)
    recs = [(1_700_000_000 + i, i % 1_000_000, rnd.randbytes(rnd.randint(0, 3000)), 3000) for i in range(900)]
    data = pcap_file("<", False, recs)
    p = tmp_path / "big.pcap"
    p.write_bytes(data)
    old = pcapfile.CHUNK
    pcapfile.CHUNK = 4096
    try:
        frames = [bytes(buf[a:b]) for _ts, _lt, buf, a, b, _wl in CaptureFile(str(p)).records()]
    finally:
        pcapfile.CHUNK = old
    assert frames == [d for _s, _f, d, _w in recs]
