"""Lumberjack throughput: wirebeat's output.logstash vs go-lumber's own Go client.

Both send the same Packetbeat HTTP events (decoded from a synthetic capture, enveloped,
unique per event) to the same go-lumber receiver (tests/receiver, counting only), with
the same window (bulk_max_size 2048), pipelining 2 and compression level, and report
events/s and the ratio. Also the whole wirebeat pipeline (publish → memory queue →
output) for the same events.

    python benchmarks/bench_lumberjack.py [--events 200000] [--levels 0 3] [--repeat 3]

Needs go (to build tests/receiver and benchmarks/lj-sender into benchmarks/out/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.synth import Conversation  # noqa: E402
from protocols.decoder import Decoder  # noqa: E402
from protocols.registry import build_plugins, default_config  # noqa: E402
from protocols.stats import Counters  # noqa: E402
from shipper.outputs.base import OutputContext, encode_event  # noqa: E402
from shipper.outputs.logstash import LogstashConfig, LogstashOutput  # noqa: E402
from shipper.pipeline.envelope import Envelope  # noqa: E402
from shipper.pipeline.publisher import Pipeline  # noqa: E402
from shipper.pipeline.queue import MemQueue  # noqa: E402

OUT = ROOT / "benchmarks" / "out"


def go() -> str:
    exe = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.path.exists(exe):
        sys.exit("go is needed to build the receiver and the Go sender")
    return exe


def build(src: Path, dest: Path) -> Path:
    if not dest.exists() or dest.stat().st_mtime < (src / "main.go").stat().st_mtime:
        subprocess.run([go(), "build", "-o", str(dest), "."], cwd=src, check=True)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_events(n: int) -> list[dict[str, Any]]:
    """n distinct Packetbeat HTTP events, as the pipeline would ship them."""
    dec = Decoder(build_plugins({"http": default_config("http", ports=[80])}))
    env = Envelope(beat_name="bench", agent_id="0d9f6a2e-bench", ephemeral_id="6c3c1c1e-bench")
    events: list[dict[str, Any]] = []
    ts = 1_700_000_000_000_000_000
    i = 0
    while i < n:
        conv = Conversation(("10.1.0.1", 20000 + i // 100 % 40000), ("10.2.0.2", 80), ts=ts).handshake()
        for _ in range(min(100, n - i)):
            body = json.dumps({"item": i, "name": f"product {i}", "price": i % 997}).encode()
            req = f"GET /api/items/{i}?ref=bench HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: b/1\r\n\r\n"
            conv.send(0, req.encode())
            conv.send(
                1,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nServer: nginx\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body,
            )
            i += 1
        conv.close()
        for t, frame in conv.frames:
            for e in dec.feed(t, 1, frame):
                events.append(env.apply(e))
        ts = conv.ts + 1_000_000
    events += [env.apply(e) for e in dec.flush()]
    return events[:n]


class Receiver:
    def __init__(self, binary: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(binary), "-listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().startswith("listening")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        return int(out.split("received ")[1].split()[0])


def python_output(addr: str, events: list[dict[str, Any]], total: int, level: int) -> float:
    """The output alone: two publish calls in flight (pipelining 2), windows of 2048."""
    cfg = LogstashConfig(hosts=[addr], compression_level=level)
    out = LogstashOutput(cfg, OutputContext("bench", "1", Counters(), OUT))
    batches = [events[i : i + 2048] for i in range(0, len(events), 2048)]

    async def run() -> float:
        await out.connect()
        sent = 0
        idx = 0

        async def worker() -> None:
            nonlocal sent, idx
            while sent < total:
                b = batches[idx % len(batches)][: total - sent]
                idx += 1
                sent += len(b)
                assert await out.publish(b) == len(b)

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(out.concurrency)))
        took = time.perf_counter() - t
        await out.close()
        return took

    return total / asyncio.run(run())


def python_pipeline(addr: str, events: list[dict[str, Any]], total: int, level: int) -> float:
    """publish() → memory queue → output, as the packet loop uses it (events pre-enveloped)."""
    stats = Counters()
    out = LogstashOutput(
        LogstashConfig(hosts=[addr], compression_level=level), OutputContext("b", "1", stats, OUT)
    )
    q = MemQueue(8192, 2048, 0.1, stats)
    p = Pipeline(out, q, Envelope(beat_name="bench"), stats)
    p.start()
    put = q.put
    t = time.perf_counter()
    n = 0
    while n < total:
        for e in events[: total - n]:
            put(e)
        n += min(len(events), total - n)
    assert p.close(120)
    return total / (time.perf_counter() - t)


def go_client(sender: Path, addr: str, path: Path, total: int, level: int, raw: bool = False) -> float:
    r = subprocess.run(
        [str(sender), "-addr", addr, "-events", str(path), "-count", str(total), "-compress", str(level)]
        + (["-raw"] if raw else []),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(r.stdout)["eps"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--distinct", type=int, default=20_000)
    ap.add_argument("--levels", type=int, nargs="*", default=[0, 3])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    receiver = build(ROOT / "tests" / "receiver", ROOT / "tests" / "receiver" / "lj-receiver")
    sender = build(ROOT / "benchmarks" / "lj-sender", OUT / "lj-sender")
    events = make_events(args.distinct)
    size = sum(len(encode_event(e)) for e in events) / len(events)
    path = OUT / "events.ndjson"
    path.write_bytes(b"".join(encode_event(e) + b"\n" for e in events))
    print(f"{len(events)} distinct HTTP events, {size:.0f} bytes of JSON each; {args.events} sent per run")
    head = ("level", "wirebeat output", "wirebeat pipeline", "go-lumber client", "go raw JSON", "ratio")
    print("{:>5} {:>16} {:>18} {:>17} {:>14} {:>6}".format(*head))
    results = {}
    kinds = ("py", "pipe", "go", "goraw")
    for level in args.levels:
        best = dict.fromkeys(kinds, 0.0)
        for _ in range(args.repeat):
            for kind in kinds:
                rcv = Receiver(receiver)
                addr = f"127.0.0.1:{rcv.port}"
                if kind == "py":
                    eps = python_output(addr, events, args.events, level)
                elif kind == "pipe":
                    eps = python_pipeline(addr, [dict(e) for e in events], args.events, level)
                else:
                    eps = go_client(sender, addr, path, args.events, level, raw=kind == "goraw")
                got = rcv.stop()
                assert got == args.events, f"{kind}: receiver got {got} of {args.events}"
                best[kind] = max(best[kind], eps)
        ratio = best["py"] / best["go"]
        results[level] = {**best, "ratio": ratio}
        print(
            f"{level:>5} {best['py']:>14,.0f}/s {best['pipe']:>16,.0f}/s {best['go']:>15,.0f}/s "
            f"{best['goraw']:>12,.0f}/s {ratio:>6.2f}"
        )
    (OUT / "bench_lumberjack.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
