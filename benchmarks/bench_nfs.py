"""NFS decoder throughput: a synthesized capture of 200,000+ packets over many TCP
connections — an NFSv3 mix (GETATTR, LOOKUP hits and misses, ACCESS, READ of 4-32 KiB,
WRITE of 8 KiB, CREATE, REMOVE, READDIRPLUS) and NFSv4.1 COMPOUNDs (SEQUENCE+PUTFH+GETATTR,
SEQUENCE+PUTFH+OPEN+GETFH+GETATTR, SEQUENCE+PUTFH+READ, SEQUENCE+PUTFH+WRITE, CLOSE) with
AUTH_SYS credentials — plus NFSv3 over UDP, decoded with protocols.decoder.Decoder through
feed_many.
Run: python benchmarks/bench_nfs.py"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synth import Conversation, decode_timed, interleave, ip_frame, udp_datagram
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config
from tests.protocols.nfs_wire import (
    auth_sys,
    call,
    compound,
    compound_reply,
    op_getattr,
    op_getfh,
    op_plain,
    op_putfh,
    op_read,
    op_sequence,
    op_write,
    record,
    reply,
    u32,
)

CONNECTIONS = 300
PER_CONN = 400  # 120,000 TCP transactions
UDP_TRANSACTIONS = 20_000
FH = b"\x01" * 36


def v3(xid: int, i: int, cred: bytes) -> tuple[bytes, bytes]:
    k = i % 8
    attrs = b"\0" * 84
    if k == 0:
        return call(xid, 1, u32(36) + FH, cred=cred), reply(xid, u32(0) + attrs)
    if k == 1:
        name = f"file{i % 97}.txt".encode()
        status = 2 if i % 5 == 0 else 0
        return call(
            xid, 3, u32(36) + FH + u32(len(name)) + name + b"\0" * (-len(name) % 4), cred=cred
        ), reply(xid, u32(status) + (u32(36) + FH + u32(1) + attrs if status == 0 else u32(0)))
    if k == 2:
        return call(xid, 4, u32(36) + FH + u32(0x3F), cred=cred), reply(
            xid, u32(0) + u32(1) + attrs + u32(0x1F)
        )
    if k == 3:
        n = 4096 << (i % 4)
        data = b"r" * n
        return call(xid, 6, u32(36) + FH + b"\0" * 8 + u32(n), cred=cred), reply(
            xid, u32(0) + u32(1) + attrs + u32(n) + u32(0) + u32(n) + data
        )
    if k == 4:
        data = b"w" * 8192
        return call(
            xid, 7, u32(36) + FH + b"\0" * 8 + u32(8192) + u32(0) + u32(8192) + data, cred=cred
        ), reply(xid, u32(0) + b"\0" * 60 + u32(8192) + u32(0) + b"\0" * 8)
    if k == 5:
        return call(xid, 8, u32(36) + FH + u32(8) + b"new.file" + u32(0) + b"\0" * 32, cred=cred), reply(
            xid, u32(0) + u32(1) + u32(36) + FH + u32(1) + attrs
        )
    if k == 6:
        return call(xid, 12, u32(36) + FH + u32(8) + b"old.file", cred=cred), reply(xid, u32(0) + b"\0" * 8)
    return call(xid, 17, u32(36) + FH + b"\0" * 16 + u32(4096) + u32(32768), cred=cred), reply(
        xid, u32(0) + u32(1) + attrs + b"\0" * 8 + b"\x01" * 1200
    )


def v4(xid: int, i: int, cred: bytes) -> tuple[bytes, bytes]:
    k = i % 5
    seq, fh = op_sequence(i % 16, i), op_putfh(FH)
    if k == 0:
        ops = [seq, fh, op_getattr()]
        res = b"\0" * 120
    elif k == 1:
        ops = [seq, fh, op_plain("OPEN", b"\0" * 64), op_getfh(), op_getattr()]
        res = b"\0" * 240
    elif k == 2:
        ops = [seq, fh, op_read(0, 16384)]
        res = b"\0" * 64 + b"r" * 16384
    elif k == 3:
        ops = [seq, fh, op_write(b"w" * 4096)]
        res = b"\0" * 64
    else:
        ops = [seq, fh, op_plain("CLOSE", b"\0" * 20)]
        res = b"\0" * 64
    return call(xid, 1, compound(ops, "", 1), vers=4, cred=cred), reply(
        xid, compound_reply(0, [(53, 0), (22, 0)]) + res
    )


def frames() -> list[tuple[int, bytes]]:
    convs = []
    xid = 1
    for c in range(CONNECTIONS):
        cred = auth_sys(1000 + c % 50, 100, (100, 4, 24), f"client{c % 40}.example")
        conv = Conversation(
            (f"10.2.{c // 250}.{c % 250 + 1}", 700 + c),
            ("10.9.0.1", 2049),
            ts=1_700_000_000_000_000_000 + c * 1000,
        )
        conv.handshake()
        make = v3 if c % 2 == 0 else v4
        for i in range(PER_CONN):
            q, r = make(xid, i, cred)
            conv.send(0, record(q), ack=False)
            conv.send(1, record(r), ack=i % 4 == 3)
            xid += 1
        conv.close()
        convs.append(conv.frames)
    udp = []
    ts = 1_700_000_000_000_000_000
    cred = auth_sys(0, 0, (), "udp-client")
    for i in range(UDP_TRANSACTIONS):
        q, r = v3(xid, i if i % 8 != 3 else 0, cred)  # no 32 KiB datagrams
        cl = (f"10.3.0.{i % 200 + 1}", 800 + i % 100)
        udp.append((ts, ip_frame(cl[0], "10.9.0.1", 17, udp_datagram(cl[1], 2049, q))))
        udp.append((ts + 30_000, ip_frame("10.9.0.1", cl[0], 17, udp_datagram(2049, cl[1], r))))
        ts += 60_000
        xid += 1
    convs.append(udp)
    return list(interleave(convs))


def main() -> None:
    t0 = time.perf_counter()
    pkts = frames()
    print(f"synthesized {len(pkts):,} packets in {time.perf_counter() - t0:.1f}s")
    dec = Decoder(build_plugins({"nfs": default_config("nfs")}))
    n, first, dt = decode_timed(dec, [(ts, 1, frame, len(frame)) for ts, frame in pkts])
    expected = CONNECTIONS * PER_CONN + UDP_TRANSACTIONS
    assert n == expected, (n, expected, dec.stats)
    assert all(e["status"] == "OK" for e in first), first
    print(f"nfs: {n:,} transactions, {len(pkts):,} packets in {dt:.2f}s")
    print(f"nfs: {n / dt:,.0f} transactions/s, {len(pkts) / dt:,.0f} packets/s")


if __name__ == "__main__":
    main()
