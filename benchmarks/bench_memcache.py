"""memcache decoder throughput: a synthesized capture of 200,000+ transactions (text and
binary protocol over TCP on many connections, plus text and binary requests over UDP with
memcached's frame header), decoded with protocols.decoder.Decoder.
Run: python benchmarks/bench_memcache.py"""

from __future__ import annotations

import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synth import Conversation, decode_timed, interleave, ip_frame, udp_datagram
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

CONNECTIONS = 300
PER_CONN = 600  # 180,000 TCP transactions
UDP_EXCHANGES = 24_000
TS0 = 1_700_000_000_000_000_000


def binmsg(
    op: int, key: bytes = b"", extras: bytes = b"", value: bytes = b"", opaque: int = 0, request: bool = True
) -> bytes:
    body = extras + key + value
    return (
        struct.pack(
            ">BBHBBHIIQ", 0x80 if request else 0x81, op, len(key), len(extras), 0, 0, len(body), opaque, 0
        )
        + body
    )


def text_conversation(c: int) -> Conversation:
    conv = Conversation((f"10.1.{c // 250}.{c % 250 + 1}", 20000 + c), ("10.9.0.1", 11211), ts=TS0 + c * 1000)
    conv.handshake()
    for i in range(PER_CONN):
        key = b"user:%d:%d" % (c, i)
        k = i % 4
        if k == 0:
            conv.send(0, b"set %s 0 0 16\r\nsome value %05d\r\n" % (key, i), ack=False).send(
                1, b"STORED\r\n", ack=False
            )
        elif k == 1:
            conv.send(0, b"get %s\r\n" % key, ack=False)
            conv.send(1, b"VALUE %s 0 16\r\nsome value %05d\r\nEND\r\n" % (key, i), ack=False)
        elif k == 2:
            conv.send(0, b"get %s:a %s:b\r\n" % (key, key), ack=False).send(1, b"END\r\n", ack=False)
        else:
            conv.send(0, b"incr %s 1\r\n" % key, ack=False).send(1, b"%d\r\n" % i, ack=False)
    return conv.close()


def binary_conversation(c: int) -> Conversation:
    conv = Conversation((f"10.2.{c // 250}.{c % 250 + 1}", 30000 + c), ("10.9.0.1", 11211), ts=TS0 + c * 1000)
    conv.handshake()
    for i in range(PER_CONN):
        key = b"user:%d:%d" % (c, i)
        k = i % 4
        if k == 0:
            conv.send(0, binmsg(0x01, key, b"\0" * 8, b"some value %05d" % i, i), ack=False)
            conv.send(1, binmsg(0x01, opaque=i, request=False), ack=False)
        elif k == 1:
            conv.send(0, binmsg(0x00, key, opaque=i), ack=False)
            conv.send(
                1,
                binmsg(0x00, extras=b"\0" * 4, value=b"some value %05d" % i, opaque=i, request=False),
                ack=False,
            )
        elif k == 2:
            # a quiet get that misses, ended by a noop: two transactions
            conv.send(0, binmsg(0x0D, key, opaque=i) + binmsg(0x0A, opaque=i + 1), ack=False)
            conv.send(1, binmsg(0x0A, opaque=i + 1, request=False), ack=False)
        else:
            conv.send(0, binmsg(0x05, key, struct.pack(">QQI", 1, 0, 0), opaque=i), ack=False)
            conv.send(1, binmsg(0x05, value=struct.pack(">Q", i), opaque=i, request=False), ack=False)
    return conv.close()


def udp_frames() -> list[tuple[int, bytes]]:
    frames = []
    ts = TS0
    for n in range(UDP_EXCHANGES):
        rid = n & 0xFFFF
        client = (f"10.3.{n % 200}.{n % 250 + 1}", 40000 + n % 1000)
        key = b"u:%d" % n
        if n % 2:
            req = b"get %s\r\n" % key
            rep = b"VALUE %s 0 16\r\nsome value %05d\r\nEND\r\n" % (key, n % 100000)
        else:
            req = binmsg(0x00, key, opaque=n)
            rep = binmsg(
                0x00, extras=b"\0" * 4, value=b"some value %05d" % (n % 100000), opaque=n, request=False
            )
        head = struct.pack(">HHHH", rid, 0, 1, 0)
        frames.append((ts, ip_frame(client[0], "10.9.0.2", 17, udp_datagram(client[1], 11211, head + req))))
        frames.append(
            (ts + 20_000, ip_frame("10.9.0.2", client[0], 17, udp_datagram(11211, client[1], head + rep)))
        )
        ts += 50_000
    return frames


def frames() -> list[tuple[int, bytes]]:
    convs = [text_conversation(c).frames for c in range(CONNECTIONS // 2)]
    convs += [binary_conversation(c).frames for c in range(CONNECTIONS // 2)]
    convs.append(udp_frames())
    return list(interleave(convs))


def main() -> None:
    t0 = time.perf_counter()
    pkts = frames()
    print(f"synthesized {len(pkts):,} packets in {time.perf_counter() - t0:.1f}s")
    expected = CONNECTIONS // 2 * PER_CONN + CONNECTIONS // 2 * (PER_CONN + PER_CONN // 4) + UDP_EXCHANGES
    dec = Decoder(build_plugins({"memcache": default_config("memcache")}))
    n, _first, dt = decode_timed(dec, [(ts, 1, frame, len(frame)) for ts, frame in pkts])
    assert n == expected, (n, expected, dec.stats)
    print(f"memcache: {n:,} transactions, {len(pkts):,} packets in {dt:.2f}s")
    print(f"memcache: {n / dt:,.0f} transactions/s, {len(pkts) / dt:,.0f} packets/s")


if __name__ == "__main__":
    main()
