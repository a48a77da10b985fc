"""However the bytes are cut into TCP segments, the HTTP events are the same.

Each capture is rewritten with every TCP payload cut into random pieces (down to single
bytes for header-sized segments), each piece its own packet with the sequence number and
timestamp it had inside the original: request lines, header ends, chunk-size lines and
CRLFs get split everywhere. Like h11's tests feeding bytes in random chunks, but through
the whole decoder (TCP reassembly included).
"""

from __future__ import annotations

import itertools
import random
import struct
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile, PcapWriter
from tests.helpers import decode_file, shared_pcap
from tests.integration.http_workload import LiveCapture, live_http_capture  # noqa: F401 (fixture)
from tests.protocols.test_http_pcaps import CAPTURES
from tests.protocols.test_http_reorder import assert_same_events, duplicate_jitter

_LINK_HEADER = {0: 4, 1: 14, 113: 16}  # Null/loopback, Ethernet, Linux cooked
_VLAN = (0x8100, 0x88A8)


def _ip_offset(linktype: int, frame: bytes) -> int:
    off = _LINK_HEADER[linktype]
    if linktype == 1:
        while struct.unpack_from(">H", frame, off - 2)[0] in _VLAN:
            off += 4
    return off


def _csum(hdr: bytes) -> int:
    s = sum(struct.unpack(f">{len(hdr) // 2}H", hdr))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def split_frame(linktype: int, frame: bytes, cuts: list[int]) -> list[bytes]:
    """The frame as several frames, its TCP payload cut at ``cuts`` (offsets into it)."""
    ip = _ip_offset(linktype, frame)
    if frame[ip] >> 4 == 4:
        ihl = (frame[ip] & 0x0F) * 4
        end = ip + struct.unpack_from(">H", frame, ip + 2)[0]
        proto = frame[ip + 9]
    else:
        ihl = 40
        end = ip + 40 + struct.unpack_from(">H", frame, ip + 4)[0]
        proto = frame[ip + 6]
    if proto != 6:
        return [frame]
    tcp = ip + ihl
    doff = (frame[tcp + 12] >> 4) * 4
    payload = frame[tcp + doff : end]
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(payload)), len(payload)]
    if len(bounds) == 2:
        return [frame]
    seq = struct.unpack_from(">I", frame, tcp + 4)[0]
    flags = frame[tcp + 13]
    out = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        last = i == len(bounds) - 2
        th = bytearray(frame[tcp : tcp + doff])
        struct.pack_into(">I", th, 4, (seq + a) & 0xFFFFFFFF)
        th[13] = flags if last else flags & ~0x01  # the FIN stays on the last piece
        ih = bytearray(frame[ip:tcp])
        if ih[0] >> 4 == 4:
            struct.pack_into(">HH", ih, 2, ihl + doff + b - a, 0)
            struct.pack_into(">H", ih, 10, 0)
            struct.pack_into(">H", ih, 10, _csum(bytes(ih)))
        else:
            struct.pack_into(">H", ih, 4, len(ih) - 40 + doff + b - a)
        out.append(frame[:ip] + bytes(ih) + bytes(th) + payload[a:b])
    return out


def resegment(src: Path, dst: Path, seed: int) -> int:
    """Rewrite ``src`` with its TCP payloads cut at random; returns the packets written."""
    rng = random.Random(seed)
    packets = list(CaptureFile(str(src)))
    written = 0
    with PcapWriter(str(dst), packets[0][1]) as w:
        for ts, lt, frame, _wl in packets:
            n = len(frame)
            # Small segments (headers, short bodies) down to single bytes; big ones in KiB.
            step = (1, 40) if n < 3000 else (1000, 20000)
            cuts: list[int] = []
            pos = 0
            while pos < n:
                pos += rng.randint(*step)
                cuts.append(pos)
            for piece in split_frame(lt, frame, cuts):
                w.write(ts, piece)
                written += 1
    return written


@pytest.mark.parametrize("name", [*sorted(CAPTURES), "gap_in_stream"])
def test_shared_capture_cut_into_random_segments(tmp_path: Path, name: str) -> None:
    pcap = shared_pcap(name)
    proto: dict[str, Any] = {"http": {"ports": CAPTURES.get(name, [8000]), "include_body_for": ["text/"]}}
    original = decode_file(pcap, proto)
    packets = sum(1 for _ in CaptureFile(str(pcap)))
    for seed in range(4):
        out = tmp_path / f"{name}-{seed}.pcap"
        assert resegment(pcap, out, seed) > packets
        assert_same_events(decode_file(out, proto), original, duplicate_jitter(pcap))


def test_live_capture_cut_into_random_segments(tmp_path: Path, live_http_capture: LiveCapture) -> None:  # noqa: F811
    cap = live_http_capture
    proto: dict[str, Any] = {"http": {"ports": [cap.port], "include_body_for": ["text/plain"]}}
    original = decode_file(cap.pcap, proto)
    assert len(original) == len(cap.log)
    out = tmp_path / "live-cut.pcap"
    assert resegment(cap.pcap, out, 1) > 5 * sum(1 for _ in CaptureFile(str(cap.pcap)))
    assert_same_events(decode_file(out, proto), original)
