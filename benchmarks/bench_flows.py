"""Flows benchmark: replay packets/s with ``packetbeat.flows`` on vs off, through the CLI.

Generates (once, cached in benchmarks/out/) a mixed capture of at least 200,000 packets:
HTTP keep-alive connections on port 80 (decoded), TCP on a port no protocol claims, UDP
request/reply datagrams from random client ports (a new flow each, like DNS; no UDP protocol
enabled) and ICMP echo pairs (decoded by the icmp plugin), spread over ``--seconds`` of
capture time so periodic reports and timeouts run. Then runs ``python -m shipper -I capture
-t`` with ``output.discard`` (or ``file``) several times, interleaved: flows off, flows on with
only final reports (``period: -1s``) and flows on with Packetbeat's shipped settings
(``timeout: 30s, period: 10s``). Reports packets/s (wall clock) and packets per CPU-second
of the process (steadier on a busy machine), and each flows-on figure as a share of flows-off.

    python benchmarks/bench_flows.py [--packets 250000] [--seconds 180] [--runs 3] [--output discard|file]
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.clirun import run_replay
from benchmarks.synth import Conversation, ip_frame, udp_datagram
from capture import CaptureFile, PcapWriter

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parent.parent


def _icmp(typ: int, ident: int, seq: int, payload: bytes) -> bytes:
    return struct.pack("!BBHHH", typ, 0, 0, ident, seq) + payload


def generate(path: Path, packets: int, seconds: int, seed: int = 7) -> dict[str, int]:
    """Write the capture; returns packets per kind."""
    rnd = random.Random(seed)
    ts = 1_700_000_000_000_000_000
    step = seconds * 1_000_000_000 // packets
    counts = {"http": 0, "tcp_other": 0, "udp": 0, "icmp": 0}
    convs: list[tuple[Conversation, int, str]] = []
    port = 20000

    def new_conv(kind: str) -> tuple[Conversation, int, str]:
        nonlocal port
        port = port + 1 if port < 60000 else 20000
        server = ("10.200.0.1", 80) if kind == "http" else ("10.200.0.2", 9000)
        conv = Conversation(
            (f"10.{1 + port % 200}.{(port // 200) % 250}.{1 + port % 250}", port),
            server,
            ts=ts,
            isn_c=rnd.randrange(1 << 32),
            isn_s=rnd.randrange(1 << 32),
            step_ns=step,
        )
        conv.handshake()
        return conv, rnd.randint(2, 12), kind

    with PcapWriter(str(path), 1) as w:

        def write(kind: str, frames: list[tuple[int, bytes]]) -> None:
            nonlocal ts
            for t, frame in frames:
                w.write(t, frame)
            counts[kind] += len(frames)
            if frames:
                ts = max(ts, frames[-1][0]) + step

        convs = [new_conv("http" if i % 4 else "tcp_other") for i in range(400)]
        for conv, _, kind in convs:
            write(kind, conv.frames)
            conv.frames.clear()
        i = 0
        while sum(counts.values()) < packets:
            i += 1
            r = rnd.random()
            if r < 0.70:
                k = rnd.randrange(len(convs))
                conv, left, kind = convs[k]
                conv.ts = ts
                if kind == "http":
                    conv.send(0, b"GET /item/%d HTTP/1.1\r\nHost: shop\r\n\r\n" % i)
                    body = b"x" * rnd.randint(100, 3000)
                    conv.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                else:
                    conv.send(0, b"q" * rnd.randint(10, 200))
                    conv.send(1, b"r" * rnd.randint(10, 2000))
                left -= 1
                if left == 0:
                    conv.close()
                    write(kind, conv.frames)
                    convs[k] = new_conv(kind)
                    conv = convs[k][0]
                    conv.ts = ts
                else:
                    convs[k] = (conv, left, kind)
                write(kind, conv.frames)
                conv.frames.clear()
            elif r < 0.85:
                c = f"10.50.{i % 50}.{1 + i % 200}"
                sport = 30000 + i % 5000
                q = ip_frame(c, "10.200.0.53", 17, udp_datagram(sport, 5353, b"u" * rnd.randint(20, 80)))
                a = ip_frame("10.200.0.53", c, 17, udp_datagram(5353, sport, b"v" * rnd.randint(40, 400)))
                write("udp", [(ts, q), (ts + step // 2, a)])
            else:
                c = f"10.60.{i % 20}.{1 + i % 100}"
                ident, seq = i % 300, i & 0xFFFF
                req = ip_frame(c, "10.200.0.9", 1, _icmp(8, ident, seq, b"p" * 56))
                rep = ip_frame("10.200.0.9", c, 1, _icmp(0, ident, seq, b"p" * 56))
                frames = [(ts, req)] if i % 17 == 0 else [(ts, req), (ts + step // 2, rep)]
                write("icmp", frames)
        for conv, _, kind in convs:
            conv.ts = ts
            conv.close()
            write(kind, conv.frames)
    return counts


CONFIGS = {
    "off": "",
    "final only": "packetbeat.flows: {timeout: 30s, period: -1s}\n",
    "shipped": "packetbeat.flows: {timeout: 30s, period: 10s}\n",
}


def run(pcap: Path, flows: str, output: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = (
            "output.discard.enabled: true\n"
            if output == "discard"
            else f"output.file: {{path: {tmp}/out, filename: wb}}\n"
        )
        r = run_replay(
            pcap,
            "packetbeat.protocols:\n  - type: http\n    ports: [80]\n  - type: icmp\n" + CONFIGS[flows] + out,
        )
    r["flows"] = r["metrics"].get("flows.created", 0)
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=250_000)
    ap.add_argument("--seconds", type=int, default=180, help="capture time the traffic spans")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--output", choices=("discard", "file"), default="discard")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    pcap = OUT / f"flows-mix-{args.packets}-{args.seconds}s.pcap"
    if not pcap.exists():
        t0 = time.perf_counter()
        counts = generate(pcap, args.packets, args.seconds)
        print(f"generated {pcap.name} in {time.perf_counter() - t0:.1f}s: {counts}")
    packets = sum(1 for _ in CaptureFile(str(pcap)))
    print(f"capture: {packets} packets over {args.seconds}s of capture time")
    best: dict[str, dict[str, float]] = {}
    for i in range(args.runs):
        for name in CONFIGS:
            r = run(pcap, name, args.output)
            print(
                f"run {i + 1} flows {name:10s}: {r['wall']:6.2f}s wall {r['cpu']:6.2f}s CPU, "
                f"{packets / r['wall']:8,.0f} packets/s, {packets / r['cpu']:8,.0f} per CPU-s, "
                f"{r['events']} events, {r['flows']} flows"
            )
            for key in ("wall", "cpu"):
                b = best.setdefault(name, {})
                b[key] = min(b.get(key, r[key]), r[key])
            best[name]["events"] = r["events"]
    off = best["off"]
    for name, b in best.items():
        share = (
            ""
            if name == "off"
            else (f"; {off['wall'] / b['wall']:.0%} of flows-off (wall), {off['cpu'] / b['cpu']:.0%} (CPU)")
        )
        print(
            f"best flows {name:10s}: {packets / b['wall']:8,.0f} packets/s, "
            f"{packets / b['cpu']:8,.0f} per CPU-s, {b['events']:.0f} events{share}"
        )


if __name__ == "__main__":
    main()
