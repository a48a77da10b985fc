"""Building DNS messages byte by byte (for unit tests, fuzz seeds and synthetic captures).

Names are written uncompressed unless a compression pointer is asked for; every count
can be forced to lie.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

from benchmarks.synth import Conversation, Frame, ip_frame, udp_datagram

QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010

A, NS, CNAME, SOA, PTR, HINFO, MX, TXT, AAAA, SRV, OPT = 1, 2, 5, 6, 12, 13, 15, 16, 28, 33, 41
DS, RRSIG, NSEC, DNSKEY, NSEC3, NSEC3PARAM, HTTPS, CAA, AXFR, IXFR = 43, 46, 47, 48, 50, 51, 65, 257, 252, 251


def name(text: str | Sequence[bytes], pointer: int | None = None) -> bytes:
    """``www.example.com`` (or a list of raw labels), optionally ending in a pointer."""
    labels = [x.encode() for x in text.split(".") if x] if isinstance(text, str) else list(text)
    out = b"".join(bytes([len(x)]) + x for x in labels)
    if pointer is not None:
        return out + struct.pack(">H", 0xC000 | pointer)
    return out + b"\x00"


def question(qname: str | bytes, qtype: int = A, qclass: int = 1) -> bytes:
    n = qname if isinstance(qname, bytes) else name(qname)
    return n + struct.pack(">HH", qtype, qclass)


def rr(owner: str | bytes, rtype: int, rdata: bytes, ttl: int = 300, rclass: int = 1) -> bytes:
    n = owner if isinstance(owner, bytes) else name(owner)
    return n + struct.pack(">HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def opt(
    udp: int = 4096,
    ext_rcode: int = 0,
    version: int = 0,
    do: bool = False,
    options: Sequence[tuple[int, bytes]] = (),
) -> bytes:
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    data = b"".join(struct.pack(">HH", c, len(v)) + v for c, v in options)
    return b"\x00" + struct.pack(">HHIH", OPT, udp, ttl, len(data)) + data


def message(
    ident: int,
    flags: int = RD,
    questions: Sequence[bytes] = (),
    answers: Sequence[bytes] = (),
    authorities: Sequence[bytes] = (),
    additionals: Sequence[bytes] = (),
    counts: tuple[int, int, int, int] | None = None,
    opcode: int = 0,
    rcode: int = 0,
) -> bytes:
    qd, an, ns, ar = counts or (len(questions), len(answers), len(authorities), len(additionals))
    bits = flags | (opcode << 11) | rcode
    return (
        struct.pack(">HHHHHH", ident, bits, qd, an, ns, ar)
        + b"".join(questions)
        + b"".join(answers)
        + b"".join(authorities)
        + b"".join(additionals)
    )


def query(ident: int, qname: str, qtype: int = A, flags: int = RD, edns: bytes | None = None) -> bytes:
    return message(ident, flags, [question(qname, qtype)], additionals=[edns] if edns else [])


def a(ip: str) -> bytes:
    return bytes(int(x) for x in ip.split("."))


def txt(*strings: bytes) -> bytes:
    return b"".join(bytes([len(s)]) + s for s in strings)


def soa(
    mname: str,
    rname: str,
    serial: int,
    refresh: int = 60,
    retry: int = 600,
    expire: int = 86400,
    minimum: int = 3600,
) -> bytes:
    return name(mname) + name(rname) + struct.pack(">IIIII", serial, refresh, retry, expire, minimum)


# -- captures ------------------------------------------------------------------------------


class Capture:
    """Frames of UDP exchanges and TCP connections on a timeline, written as a pcap."""

    def __init__(self, start: int = 1_700_000_000_000_000_000) -> None:
        self.ts = start
        self.frames: list[Frame] = []

    def udp(
        self, src: tuple[str, int], dst: tuple[str, int], payload: bytes, gap_ns: int = 1_000_000
    ) -> None:
        self.frames.append((self.ts, ip_frame(src[0], dst[0], 17, udp_datagram(src[1], dst[1], payload))))
        self.ts += gap_ns

    def exchange(
        self,
        client: tuple[str, int],
        server: tuple[str, int],
        req: bytes,
        resp: bytes | None,
        pause_ns: int = 1_000_000_000,
    ) -> None:
        self.udp(client, server, req)
        if resp is not None:
            self.udp(server, client, resp)
        self.ts += pause_ns

    def tcp(self, client: tuple[str, int], server: tuple[str, int], mss: int = 1448) -> Conversation:
        conv = Conversation(client, server, ts=self.ts, mss=mss, step_ns=100_000)
        return conv.handshake()

    def add(self, conv: Conversation, pause_ns: int = 1_000_000_000) -> None:
        self.frames.extend(conv.frames)
        self.ts = conv.ts + pause_ns

    def write(self, path: Path) -> Path:
        with open(path, "wb") as fh:
            fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for ts, frame in sorted(self.frames, key=lambda f: f[0]):
                sec, ns = divmod(ts, 1_000_000_000)
                fh.write(struct.pack("<IIII", sec, ns // 1000, len(frame), len(frame)) + frame)
        return path


def framed(msg: bytes) -> bytes:
    """A message with its TCP length prefix (RFC 1035 §4.2.2)."""
    return struct.pack(">H", len(msg)) + msg
