"""Thrift decoder throughput: a synthesized capture of 200,000+ calls over many
connections (strict binary over socket and framed, and compact), decoded with
protocols.decoder.Decoder. Run: python benchmarks/bench_thrift.py"""

from __future__ import annotations

import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synth import Conversation, decode_timed, interleave
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

CONNECTIONS = 400
PER_CONN = 520  # 208,000 transactions


def binary(name: bytes, mtype: int, body: bytes) -> bytes:
    return (
        struct.pack(">IiI", 0x80010000 | mtype, len(name), 0)[:4]
        + struct.pack(">i", len(name))
        + name
        + b"\0\0\0\0"
        + body
    )


def compact(name: bytes, mtype: int, body: bytes) -> bytes:
    return bytes([0x82, (mtype << 5) | 1, 0, len(name)]) + name + body


def framed(msg: bytes) -> bytes:
    return struct.pack(">i", len(msg)) + msg


# add(1: i32, 2: i32) -> i32, and getUser(1: string) -> struct {1: i64, 2: string, 3: list<string>}
B_ADD = b"\x08\x00\x01\x00\x00\x00\x07\x08\x00\x02\x00\x00\x00\x05\x00"
B_ADD_R = b"\x08\x00\x00\x00\x00\x00\x0c\x00"
B_GET = b"\x0b\x00\x01\x00\x00\x00\x05alice\x00"
B_GET_R = (
    b"\x0c\x00\x00"
    b"\x0a\x00\x01" + struct.pack(">q", 42) + b"\x0b\x00\x02\x00\x00\x00\x05Alice"
    b"\x0f\x00\x03\x0b\x00\x00\x00\x03"
    + b"".join(struct.pack(">i", 4) + b"tag%d" % i for i in range(3))
    + b"\x00\x00"
)
C_ADD = b"\x15\x0e\x15\x0a\x00"
C_ADD_R = b"\x05\x18\x00"
C_GET = b"\x18\x05alice\x00"
C_GET_R = b"\x0c\x16\x54\x18\x05Alice\x19\x38\x04tag0\x04tag1\x04tag2\x00\x00"


def frames() -> list[tuple[int, bytes]]:
    convs = []
    for c in range(CONNECTIONS):
        kind = c % 3
        conv = Conversation(
            (f"10.1.{c // 250}.{c % 250 + 1}", 20000 + c),
            ("10.9.0.1", 9090),
            ts=1_700_000_000_000_000_000 + c * 1000,
        )
        conv.handshake()
        for i in range(PER_CONN):
            if kind == 2:
                req = compact(b"add", 1, C_ADD) if i % 2 else compact(b"getUser", 1, C_GET)
                rep = compact(b"add", 2, C_ADD_R) if i % 2 else compact(b"getUser", 2, C_GET_R)
            else:
                req = binary(b"add", 1, B_ADD) if i % 2 else binary(b"getUser", 1, B_GET)
                rep = binary(b"add", 2, B_ADD_R) if i % 2 else binary(b"getUser", 2, B_GET_R)
                if kind == 1:
                    req, rep = framed(req), framed(rep)
            conv.send(0, req, ack=False).send(1, rep, ack=False)
        conv.close()
        convs.append(conv.frames)
    return list(interleave(convs))


def main() -> None:
    t0 = time.perf_counter()
    pkts = frames()
    print(f"synthesized {len(pkts):,} packets in {time.perf_counter() - t0:.1f}s")
    dec = Decoder(build_plugins({"thrift": default_config("thrift")}))
    n, events, dt = decode_timed(dec, [(ts, 1, frame, len(frame)) for ts, frame in pkts], keep=4)
    assert n == CONNECTIONS * PER_CONN, (n, dec.stats)
    assert events[0]["thrift"]["return_value"] == '(1: 42, 2: "Alice", 3: ["tag0", "tag1", "tag2"])', events[
        0
    ]
    print(f"thrift: {n:,} transactions, {len(pkts):,} packets in {dt:.2f}s")
    print(f"thrift: {n / dt:,.0f} transactions/s, {len(pkts) / dt:,.0f} packets/s")


if __name__ == "__main__":
    main()
