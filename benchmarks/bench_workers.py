"""Wall time of ``-I`` replay with 1 worker vs N workers (``packetbeat.workers``).

Synthesizes an HTTP keep-alive capture (``--connections`` connections, ``--requests``
requests each, interleaved), then replays it with ``wirebeat run -I FILE -t`` for each worker
count, to ``output.file`` and to ``output.discard``, ``--runs`` times each, alternating, and
prints the median wall time, CPU seconds (parent + workers) and events written.

    python benchmarks/bench_workers.py [--connections 2000] [--requests 40] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.synth import exchange, interleave  # noqa: E402
from capture import PcapWriter  # noqa: E402

REQ = (
    b"GET /api/items/%d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\n"
    b"Accept: application/json\r\n\r\n"
)
BODY = b'{"id": %d, "name": "item", "tags": ["a", "b", "c"], "price": 12.5}'
RESP = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nServer: bench\r\n\r\n"

CONFIG = """packetbeat.protocols:
  - type: http
    ports: [80]
packetbeat.workers: {workers}
logging.level: info
logging.to_stderr: true
logging.metrics.enabled: false
"""


def synthesize(path: Path, connections: int, requests: int) -> int:
    convs = []
    base = 1_700_000_000_000_000_000
    for c in range(connections):
        msgs = []
        for r in range(requests):
            body = BODY % (c * requests + r)
            msgs.append((0, REQ % r))
            msgs.append((1, (RESP % len(body)) + body))
        client = (f"10.{1 + c // 60000}.{(c // 250) % 240}.{1 + c % 250}", 20000 + c % 40000)
        convs.append(exchange(client, ("10.0.0.1", 80), msgs, ts=base + c * 1_000_000, step_ns=200_000))
    w = PcapWriter(str(path), 1)
    n = 0
    for ts, frame in interleave(convs):
        w.write(ts, frame, len(frame))
        n += 1
    w.close()
    return n


def run_once(pcap: Path, workers: int, output: str, tmp: Path) -> tuple[float, float, int, str]:
    cfg = tmp / f"w{workers}.yml"
    text = CONFIG.format(workers=workers)
    out_dir = tmp / f"out-{workers}-{output}"
    if output == "file":
        text += f"output.file:\n  path: {out_dir}\n  filename: ev\n  rotate_every_kb: 10240000\n"
    else:
        text += "output.discard: {}\n"
    cfg.write_text(text)
    for p in out_dir.glob("*") if out_dir.exists() else []:
        p.unlink()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from shipper.agent.cli import main; main()",
            "run",
            "-c",
            str(cfg),
            "-I",
            str(pcap),
            "-t",
            "--path.data",
            str(tmp / "data"),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    split = re.findall(r"CPU seconds: parent ([0-9.]+), workers ([0-9. ]+)", run.stderr)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    events = 0
    if output == "file":
        for p in out_dir.glob("ev*"):
            with open(p, "rb") as fh:
                events += sum(1 for _ in fh)
    how = f"parent {split[-1][0]} / workers {split[-1][1].strip()}" if split else ""
    return wall, cpu, events, how


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--outputs", default="file,discard")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pcap", help="use this capture instead of synthesizing one")
    args = ap.parse_args()
    # wirebeat starts from bytecode, as an installed package does (with
    # PYTHONDONTWRITEBYTECODE set, every run would compile its modules again).
    for pkg in ("capture", "protocols", "shipper"):
        compileall.compile_dir(str(ROOT / pkg), quiet=1)
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as d:
        tmp = Path(d)
        if args.pcap:
            pcap = Path(args.pcap)
            print(f"capture {pcap}")
        else:
            pcap = tmp / "http-keepalive.pcap"
            n = synthesize(pcap, args.connections, args.requests)
            print(
                f"synthesized {n} packets ({args.connections} keep-alive connections x {args.requests} requests)"
            )
        print(f"CPUs available: {len(os.sched_getaffinity(0))}")
        counts = [int(w) for w in args.workers.split(",")]
        for output in args.outputs.split(","):
            res: dict[int, list[tuple[float, float, int, str]]] = {w: [] for w in counts}
            for _ in range(args.runs):
                for w in counts:
                    res[w].append(run_once(pcap, w, output, tmp))
            base = statistics.median(r[0] for r in res[counts[0]])
            print(f"\noutput.{output}")
            head = f"{'workers':>8} {'wall s (median)':>16} {'all runs':>24} {'CPU s':>8} {'events':>8}"
            print(f"{head} {'vs ' + str(counts[0]):>8}  CPU seconds, last run")
            for w in counts:
                walls = [r[0] for r in res[w]]
                med = statistics.median(walls)
                cpu = statistics.median(r[1] for r in res[w])
                ev = res[w][-1][2]
                runs = " ".join(f"{x:.2f}" for x in walls)
                line = f"{w:>8} {med:>16.2f} {runs:>24} {cpu:>8.2f} {ev if output == 'file' else '-':>8}"
                print(f"{line} {med / base:>8.2f}  {res[w][-1][3]}")
        print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
