"""Where an event's time goes, stage by stage, in one process on one thread:

    read    the capture into memory (not counted below)
    decode  frames → TCP → HTTP parser → transactions → protocol event dicts (``feed_many``)
    publish envelope (``@timestamp``, derived fields, agent/host/ecs, @metadata) and the one
            JSON encoding per event (``Pipeline._prepare``)
    output  ``output.file``'s ``publish`` on batches of 2048: lines written to a file

Uses the HTTP keep-alive capture of ``bench_pipeline.py`` (generated once, cached) and
the agent's own construction code (``Beat``), so what is timed is what ``-I`` runs,
minus the queue hand-off and the output thread. Times are CPU seconds of this process
(the machine may be shared).

    python benchmarks/bench_event_path.py [--packets 200000] [--connections 400] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_pipeline import OUT, generate
from capture import CaptureFile

CONFIG = """
packetbeat.protocols:
  - type: http
    ports: [80]
output.file:
  path: {tmp}/out
  filename: events
  rotate_every_kb: 10000000
logging.metrics.enabled: false
path.data: {tmp}/data
"""


def one_run(pcap: Path, packets: list[tuple[int, int, bytes, int]]) -> dict[str, float]:
    from shipper.agent.beat import Beat
    from shipper.agent.settings import load_settings
    from shipper.pipeline.publisher import Pipeline
    from shipper.pipeline.queue import MemQueue

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "wirebeat.yml"
        cfg.write_text(CONFIG.format(tmp=tmp))
        settings, _ = load_settings(str(cfg), required=True)
        beat = Beat(settings)
        decoder = beat.new_decoder()
        output = beat.build_output()
        pipeline = Pipeline(output, MemQueue(stats=beat.stats), beat.build_envelope(), beat.stats)
        # As Beat.run does before the packet loop.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)

        # Interleaved as in the packet loop (chunks of 256 packets, each chunk's events
        # published at once, batches of 2048 written), so each stage finds its data warm.
        clock = time.process_time
        prepare = pipeline._prepare
        t_decode = t_publish = t_output = 0.0
        n = 0
        batch: list[Any] = []
        loop = asyncio.new_event_loop()
        for i in range(0, len(packets) + 256, 256):
            t0 = clock()
            events = decoder.feed_many(packets[i : i + 256]) if i < len(packets) else decoder.flush()
            t1 = clock()
            batch += [e for e in map(prepare, events) if e is not None]
            t2 = clock()
            t_decode += t1 - t0
            t_publish += t2 - t1
            if len(batch) >= 2048 or i >= len(packets):
                n += len(batch)
                loop.run_until_complete(output.publish(batch))
                batch = []
                t_output += clock() - t2
        loop.run_until_complete(output.close())
        loop.close()
        size = sum(p.stat().st_size for p in (Path(tmp) / "out").iterdir())
    return {
        "events": n,
        "decode": t_decode,
        "publish": t_publish,
        "output": t_output,
        "bytes_per_event": size / max(1, n),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--connections", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    pcap = OUT / f"http-{args.packets}-{args.connections}.pcap"
    if not pcap.exists():
        generate(pcap, args.packets, args.connections)
    packets = list(CaptureFile(str(pcap)))
    runs = [one_run(pcap, copy.copy(packets)) for _ in range(args.runs)]
    n = runs[0]["events"]
    print(
        f"{len(packets):,} packets, {n:,} events, {runs[0]['bytes_per_event']:.0f} bytes/event (median of {len(runs)})"
    )
    total = 0.0
    for stage in ("decode", "publish", "output"):
        t = statistics.median(r[stage] for r in runs)
        total += t
        print(f"  {stage:8s} {t:6.2f} s  {t / n * 1e6:6.1f} µs/event")
    print(
        f"  {'total':8s} {total:6.2f} s  {total / n * 1e6:6.1f} µs/event  → {n / total:,.0f} events/s on one core"
    )
    ev = sum(statistics.median(r[s] for r in runs) for s in ("publish", "output"))
    print(f"  event path alone (publish + output): {n / ev:,.0f} events/s")


if __name__ == "__main__":
    main()
