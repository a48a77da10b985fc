"""Shared driver for the database decoder benchmarks: synthesize a capture of many
concurrent connections, decode it with ``protocols.decoder.Decoder``, report rates."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.synth import Conversation, decode_timed, interleave
from capture import CaptureFile, PcapWriter
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

OUT = Path(__file__).resolve().parent / "out"
LINKTYPE_ETHERNET = 1
#: Connections that are open at the same time in the synthesized capture.
CONCURRENT = 100

#: Fills one connection with ``n`` transactions (after its handshake); returns how many it made.
Workload = Callable[[Conversation, int, int], int]


def synthesize(
    path: Path,
    port: int,
    transactions: int,
    per_conn: int,
    workload: Workload,
    prologue: Callable[[Conversation], None] | None = None,
) -> tuple[int, int]:
    """Write the capture; returns (transactions, packets)."""
    made = 0
    packets = 0
    conn_no = 0
    ts = 1_700_000_000_000_000_000
    with PcapWriter(str(path), LINKTYPE_ETHERNET) as out:
        while made < transactions:
            batch = []
            for _ in range(CONCURRENT):
                if made >= transactions:
                    break
                a, b = divmod(conn_no, 250)
                client = (f"10.{1 + a // 250}.{a % 250}.{b + 1}", 20000 + conn_no % 40000)
                conv = Conversation(client, ("10.0.0.2", port), ts=ts + conn_no * 7_919, step_ns=20_000)
                conv.handshake()
                if prologue is not None:
                    prologue(conv)
                made += workload(conv, min(per_conn, transactions - made), conn_no)
                conv.close()
                batch.append(conv.frames)
                conn_no += 1
            for t, frame in interleave(batch):
                out.write(t, frame)
                packets += 1
            ts += 3_600 * 1_000_000_000  # the next batch starts later: old connections are closed
    return made, packets


def run(
    proto: str, port: int, workload: Workload, prologue: Callable[[Conversation], None] | None = None
) -> None:
    ap = argparse.ArgumentParser(description=f"{proto} decoder benchmark")
    ap.add_argument("--transactions", type=int, default=200_000)
    ap.add_argument("--per-connection", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep the generated capture")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / f"bench_{proto}.pcap"
    t0 = time.perf_counter()
    txns, packets = synthesize(path, port, args.transactions, args.per_connection, workload, prologue)
    t1 = time.perf_counter()
    print(
        f"synthesized {txns} transactions, {packets} packets "
        f"({os.path.getsize(path) / 1e6:.1f} MB) in {t1 - t0:.1f}s"
    )
    frames = list(CaptureFile(str(path)))
    dec = Decoder(build_plugins({proto: default_config(proto, ports=[port])}))
    events, _first, dt = decode_timed(dec, frames)
    print(f"decoded {events} events from {len(frames)} packets in {dt:.2f}s")
    print(f"{proto}: {events / dt:,.0f} transactions/s, {len(frames) / dt:,.0f} packets/s")
    errors = {k: v for k, v in dec.stats.items() if "error" in k or "unmatched" in k}
    if errors:
        print(f"counters: {errors}")
    if events != txns:
        raise SystemExit(f"expected {txns} transactions, decoded {events}")
    if not args.keep:
        path.unlink()
