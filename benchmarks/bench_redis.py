"""Redis decoder throughput: a synthesized capture of 200,000+ transactions over many
connections, decoded with protocols.decoder.Decoder. Run: python benchmarks/bench_redis.py"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synth import Conversation, decode_timed, interleave
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

CONNECTIONS = 400
PER_CONN = 520  # 208,000 transactions


def cmd(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def frames() -> list[tuple[int, bytes]]:
    convs = []
    for c in range(CONNECTIONS):
        conv = Conversation(
            (f"10.1.{c // 250}.{c % 250 + 1}", 20000 + c),
            ("10.9.0.1", 6379),
            ts=1_700_000_000_000_000_000 + c * 1000,
        )
        conv.handshake()
        for i in range(PER_CONN):
            key = b"user:%d:%d" % (c, i)
            k = i % 4
            if k == 0:
                conv.send(0, cmd(b"SET", key, b"some value %d" % i), ack=False).send(1, b"+OK\r\n", ack=False)
            elif k == 1:
                conv.send(0, cmd(b"GET", key), ack=False).send(
                    1, b"$14\r\nsome value %03d\r\n" % (i % 1000), ack=False
                )
            elif k == 2:
                conv.send(0, cmd(b"LRANGE", key, b"0", b"4"), ack=False)
                conv.send(1, b"*5\r\n" + b"".join(b"$2\r\nv%d\r\n" % j for j in range(5)), ack=False)
            else:
                conv.send(0, cmd(b"INCR", key), ack=False).send(1, b":%d\r\n" % i, ack=False)
        conv.close()
        convs.append(conv.frames)
    return list(interleave(convs))


def main() -> None:
    t0 = time.perf_counter()
    pkts = frames()
    print(f"synthesized {len(pkts):,} packets in {time.perf_counter() - t0:.1f}s")
    dec = Decoder(build_plugins({"redis": default_config("redis")}))
    n, _first, dt = decode_timed(dec, [(ts, 1, frame, len(frame)) for ts, frame in pkts])
    assert n == CONNECTIONS * PER_CONN, (n, dec.stats)
    print(f"redis: {n:,} transactions, {len(pkts):,} packets in {dt:.2f}s")
    print(f"redis: {n / dt:,.0f} transactions/s, {len(pkts) / dt:,.0f} packets/s")


if __name__ == "__main__":
    main()
