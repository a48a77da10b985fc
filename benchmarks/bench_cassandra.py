"""Cassandra decoder throughput: a synthesized capture of 200,000+ transactions over many
connections (v4: QUERY with rows results, EXECUTE of prepared statements, BATCH; a quarter of
the connections LZ4- or Snappy-compressed, and a v5 share in segments), decoded with
protocols.decoder.Decoder through feed_many. Packetbeat's defaults: request and response maps
with their headers are sent.
Run: python benchmarks/bench_cassandra.py"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synth import Conversation, decode_timed, interleave
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config
from tests.protocols import cassandra_wire as w

CONNECTIONS = 400
PER_CONN = 510  # 204,000 transactions
COLS = [("id", w.INT), ("name", w.TEXT), ("email", w.TEXT), ("tags", w.t(0x22, w.TEXT))]


def conversation(c: int) -> list[tuple[int, bytes]]:
    kind = c % 8
    algo = {1: "lz4", 2: "snappy"}.get(kind, "")
    v5 = kind == 3
    version = 5 if v5 else 4
    out: list[tuple[int, bytes]] = []
    opts = {"CQL_VERSION": "3.0.0", **({"COMPRESSION": algo} if algo else {})}
    out.append((0, w.startup(opts, 0, version)))
    out.append((1, w.ready(0, version)))

    def comp(f: bytes) -> bytes:
        if v5:
            return w.segments(f)
        return w.compress_frame(f, algo) if algo else f

    pid = bytes([c % 256]) * 16
    for i in range(PER_CONN):
        s = 1 + i % 2000
        k = i % 10
        if k < 5:
            req = w.query(f"SELECT id, name, email, tags FROM shop.users WHERE id = {i}", s, version)
            resp = w.rows(COLS, 1 + i % 4, stream=s, version=version, ks="shop", table="users")
        elif k < 9:
            req = w.frame(
                0x0A, w.short_bytes(pid) + w.short(1) + w.short(1) + w.bytes_(b"\0\0\0\x07"), s, version
            )
            resp = w.void(s, version)
        else:
            body = (
                b"\x00"
                + w.short(3)
                + b"".join(
                    b"\x01" + w.short_bytes(pid) + w.short(1) + w.bytes_(str(j).encode()) for j in range(3)
                )
                + w.short(1)
            )
            req = w.frame(0x0D, body, s, version)
            resp = w.void(s, version)
        out.append((0, comp(req)))
        out.append((1, comp(resp)))
    return out


def frames() -> list[tuple[int, bytes]]:
    convs = []
    for c in range(CONNECTIONS):
        conv = Conversation(
            (f"10.1.{c // 250}.{c % 250 + 1}", 20000 + c),
            ("10.9.0.1", 9042),
            ts=1_700_000_000_000_000_000 + c * 1000,
        )
        conv.handshake()
        for direction, data in conversation(c):
            conv.send(direction, data, ack=False)
        conv.close()
        convs.append(conv.frames)
    return list(interleave(convs))


def main() -> None:
    t0 = time.perf_counter()
    pkts = frames()
    print(f"synthesized {len(pkts):,} packets in {time.perf_counter() - t0:.1f}s")
    dec = Decoder(build_plugins({"cassandra": default_config("cassandra")}))
    items = [(ts, 1, frame, len(frame)) for ts, frame in pkts]
    cpu0 = time.process_time()
    n, _first, dt = decode_timed(dec, items)
    cpu = time.process_time() - cpu0
    assert n == CONNECTIONS * (PER_CONN + 1), (n, dec.stats)
    assert not [k for k in dec.stats if k.startswith("cassandra.")], dec.stats
    print(f"cassandra: {n:,} transactions, {len(pkts):,} packets in {dt:.2f}s")
    print(f"cassandra: {n / dt:,.0f} transactions/s, {len(pkts) / dt:,.0f} packets/s")
    print(f"cassandra: {n / cpu:,.0f} transactions per CPU second (a loaded machine slows the wall clock)")


if __name__ == "__main__":
    main()
