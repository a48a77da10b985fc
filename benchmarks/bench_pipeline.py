"""End-to-end replay benchmark: ``wirebeat -I big.pcap -t`` with a discarding output.

Generates (once, cached in benchmarks/out/) an HTTP capture of about 1,000,000 packets over
many concurrent keep-alive connections, then runs wirebeat on it as a subprocess and
reports packets/s, events/s and peak memory (max RSS).

    python benchmarks/bench_pipeline.py [--packets 1000000] [--connections 2000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.clirun import run_replay
from benchmarks.synth import Conversation
from capture import PcapWriter

OUT = Path(__file__).resolve().parent / "out"


PATHS = ["/", "/api/items", "/static/app.js", "/img/logo.png", "/search", "/cart/checkout"]


def request(rnd: random.Random, i: int) -> bytes:
    path = rnd.choice(PATHS)
    query = f"?q=item{i % 100}&page={i % 7}" if path in ("/search", "/api/items") else ""
    return (
        f"GET {path}{query} HTTP/1.1\r\nHost: shop.example.com\r\n"
        f"User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench/1.0\r\nAccept: */*\r\n"
        f"Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"
    ).encode()


def response(rnd: random.Random, i: int) -> bytes:
    r = rnd.random()
    size = (
        rnd.randint(100, 500) if r < 0.3 else rnd.randint(1000, 4000) if r < 0.8 else rnd.randint(8000, 32000)
    )
    status = b"404 Not Found" if i % 23 == 0 else b"200 OK"
    return (
        b"HTTP/1.1 " + status + b"\r\nServer: nginx\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Cache-Control: max-age=60\r\nContent-Length: " + str(size).encode() + b"\r\n\r\n" + b"x" * size
    )


def generate(path: Path, packets: int, connections: int, seed: int = 1) -> tuple[int, int]:
    """Write the capture: ``connections`` concurrent keep-alive connections, each serving
    1-10 requests before closing and being replaced. Returns (packets, transactions)."""
    rnd = random.Random(seed)
    ts = 1_700_000_000_000_000_000
    written = txns = 0
    port = 20000

    def new_conv() -> tuple[Conversation, int]:
        nonlocal port, ts
        port = port + 1 if port < 60000 else 20000
        c = port
        conv = Conversation(
            (f"10.{1 + c % 200}.{(c // 200) % 250}.{1 + c % 250}", c),
            ("10.200.0.1", 80),
            ts=ts,
            isn_c=rnd.randrange(1 << 32),
            isn_s=rnd.randrange(1 << 32),
            step_ns=20_000,
        )
        conv.handshake()
        return conv, rnd.randint(1, 10)

    def flush(conv: Conversation) -> None:
        nonlocal written, ts
        for t, frame in conv.frames:
            w.write(t, frame)
        written += len(conv.frames)
        conv.frames.clear()
        ts = conv.ts + 5_000

    with PcapWriter(str(path), 1) as w:
        active = [new_conv() for _ in range(connections)]
        for conv, _ in active:
            flush(conv)
        i = 0
        while written < packets:
            k = rnd.randrange(len(active))
            conv, left = active[k]
            conv.ts = ts
            conv.send(0, request(rnd, i))
            conv.send(1, response(rnd, i), ack_every=2)
            txns += 1
            i += 1
            left -= 1
            if left == 0:
                conv.close()
                flush(conv)
                active[k] = new_conv()
                conv = active[k][0]
                conv.ts = ts
            else:
                active[k] = (conv, left)
            flush(conv)
        for conv, _ in active:
            conv.ts = ts
            conv.close()
            flush(conv)
    return written, txns


def run(pcap: Path, extra: list[str]) -> dict[str, float]:
    return run_replay(
        pcap, "packetbeat.protocols:\n  - type: http\n    ports: [80]\noutput.discard.enabled: true\n", extra
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    pcap = OUT / f"http-{args.packets}-{args.connections}.pcap"
    if not pcap.exists():
        t0 = time.perf_counter()
        n, txns = generate(pcap, args.packets, args.connections)
        print(f"generated {pcap.name}: {n} packets, {txns} transactions in {time.perf_counter() - t0:.1f}s")
    packets = sum(1 for _ in __import__("capture").CaptureFile(str(pcap)))
    print(f"capture: {packets} packets, {os.path.getsize(pcap) / 1e6:.0f} MB")
    best = None
    for i in range(args.runs):
        r = run(pcap, [])
        print(
            f"run {i + 1}: {r['wall']:.2f}s wall ({r['cpu']:.2f}s CPU), "
            f"{packets / r['wall']:,.0f} packets/s, "
            f"{r['events'] / r['wall']:,.0f} events/s, {r['events']} events, peak RSS {r['maxrss_mb']:.0f} MB"
        )
        if best is None or r["wall"] < best["wall"]:
            best = r
    assert best is not None
    print(
        f"best: {packets / best['wall']:,.0f} packets/s, {best['events'] / best['wall']:,.0f} events/s, "
        f"peak RSS {best['maxrss_mb']:.0f} MB; per CPU-second: {packets / best['cpu']:,.0f} packets"
    )


if __name__ == "__main__":
    main()
