"""Synthesize TCP/UDP conversations as Ethernet frames (for benchmarks and tests).

``Conversation`` produces a full TCP connection: handshake, the given messages in either
direction (each split into MSS-sized segments and acknowledged), and teardown.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

ETH_IPV4 = b"\x08\x00"
ETH_IPV6 = b"\x86\xdd"
MAC_C = b"\x02\x00\x00\x00\x00\x01"
MAC_S = b"\x02\x00\x00\x00\x00\x02"

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

Frame = tuple[int, bytes]  # (ts_ns, ethernet frame)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ip_frame(src: str, dst: str, proto: int, l4: bytes, ident: int = 0) -> bytes:
    if ":" in src:
        s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
        hdr = struct.pack("!IHBB", 6 << 28, len(l4), proto, 64) + s + d
        return MAC_S + MAC_C + ETH_IPV6 + hdr + l4
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident & 0xFFFF, 0x4000, 64, proto, 0, s, d)
    hdr = hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
    return MAC_S + MAC_C + ETH_IPV4 + hdr + l4


def tcp_segment(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(
            "!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0
        )
        + payload
    )


def udp_datagram(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


class Conversation:
    """One TCP connection between a client and a server, as frames."""

    def __init__(
        self,
        client: tuple[str, int],
        server: tuple[str, int],
        ts: int = 1_700_000_000_000_000_000,
        mss: int = 1448,
        isn_c: int = 1000,
        isn_s: int = 5000,
        step_ns: int = 50_000,
    ) -> None:
        self.c, self.s = client, server
        self.ts = ts
        self.mss = mss
        self.seq = [isn_c, isn_s]  # next sequence number per side (0 client, 1 server)
        self.step = step_ns
        self.frames: list[Frame] = []

    def _emit(self, side: int, flags: int, payload: bytes = b"") -> None:
        src, dst = (self.c, self.s) if side == 0 else (self.s, self.c)
        seg = tcp_segment(src[1], dst[1], self.seq[side], self.seq[1 - side], flags, payload)
        self.frames.append((self.ts, ip_frame(src[0], dst[0], 6, seg)))
        self.ts += self.step

    def handshake(self) -> Conversation:
        self._emit(0, SYN)
        self.seq[0] += 1
        self.seq[1] += 0
        src, dst = self.s, self.c
        seg = tcp_segment(src[1], dst[1], self.seq[1], self.seq[0], SYN | ACK)
        self.frames.append((self.ts, ip_frame(src[0], dst[0], 6, seg)))
        self.ts += self.step
        self.seq[1] += 1
        self._emit(0, ACK)
        return self

    def send(self, side: int, data: bytes, ack: bool = True, ack_every: int = 0) -> Conversation:
        """``side`` 0 = client, 1 = server; split into segments, then a pure ACK back
        (and, with ``ack_every``, one after every that many segments, like delayed ACKs)."""
        for n, i in enumerate(range(0, len(data), self.mss), 1):
            chunk = data[i : i + self.mss]
            self._emit(side, ACK | PSH, chunk)
            self.seq[side] += len(chunk)
            if ack_every and n % ack_every == 0 and i + self.mss < len(data):
                self._emit(1 - side, ACK)
        if ack:
            self._emit(1 - side, ACK)
        return self

    def close(self) -> Conversation:
        self._emit(0, FIN | ACK)
        self.seq[0] += 1
        self._emit(1, FIN | ACK)
        self.seq[1] += 1
        self._emit(0, ACK)
        return self

    def reset(self, side: int = 0) -> Conversation:
        self._emit(side, RST | ACK)
        return self


def exchange(
    client: tuple[str, int],
    server: tuple[str, int],
    messages: list[tuple[int, bytes]],
    ts: int = 1_700_000_000_000_000_000,
    close: bool = True,
    **kw: int,
) -> list[Frame]:
    """A whole connection carrying ``messages`` [(side, bytes), ...]."""
    conv = Conversation(client, server, ts=ts, **kw).handshake()
    for side, data in messages:
        conv.send(side, data)
    if close:
        conv.close()
    return conv.frames


def interleave(conversations: list[list[Frame]]) -> Iterator[Frame]:
    """Merge several conversations' frames by timestamp (stable)."""
    import heapq

    yield from heapq.merge(*conversations, key=lambda f: f[0])


def decode_timed(
    decoder: Any, packets: list[tuple[int, int, bytes, int]], keep: int = 8, chunk: int = 256
) -> tuple[int, list[dict[str, Any]], float]:
    """Decode ``packets`` the way wirebeat's loops do (``feed_many`` in chunks), then flush.

    Returns (events, the first ``keep`` events, seconds).
    """
    import time

    count = 0
    first: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for i in range(0, len(packets), chunk):
        out = decoder.feed_many(packets[i : i + chunk])
        count += len(out)
        if len(first) < keep:
            first += out[: keep - len(first)]
    out = decoder.flush()
    count += len(out)
    if len(first) < keep:
        first += out[: keep - len(first)]
    return count, first, time.perf_counter() - t0
