"""What processors cost: ``wirebeat -I big.pcap -t`` (discarding output) without processors,
then with a typical chain of five, on the HTTP capture of ``bench_pipeline.py``.

The chain (global processors, every event goes through all five):

    - drop_event.when.network.destination.ip: [loopback, 192.168.0.0/16]   # matches none
    - drop_fields: {fields: [http.request.headers, user_agent, event.duration], ignore_missing: true}
    - rename: {fields: [{from: url.query, to: url.params}], ignore_missing: true}
    - add_tags: {tags: [shop, eu]}
    - add_fields: {target: site, fields: {dc: eu-1, rack: r7}}

Runs alternate (without, with, without, …) so that load from elsewhere hits both alike;
the best run of each is compared. ``--host`` adds a run with Packetbeat's stock
``add_host_metadata`` (every event gets ~15 more fields, so it also costs in the encoder).

    python benchmarks/bench_processors.py [--packets 400000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_pipeline import OUT, generate
from benchmarks.clirun import run_replay

BASE = """
packetbeat.protocols:
  - type: http
    ports: [80]
    send_all_headers: true
output.discard.enabled: true
logging.metrics.enabled: false
"""

CHAIN = """
processors:
  - drop_event.when.network.destination.ip: [loopback, 192.168.0.0/16]
  - drop_fields: {fields: [http.request.headers, user_agent, event.duration], ignore_missing: true}
  - rename: {fields: [{from: url.query, to: url.params}], ignore_missing: true}
  - add_tags: {tags: [shop, eu]}
  - add_fields: {target: site, fields: {dc: eu-1, rack: r7}}
"""

HOST = """
processors:
  - add_host_metadata: {when.not.contains.tags: forwarded}
"""


def run(pcap: Path, extra_cfg: str) -> dict[str, float]:
    return run_replay(pcap, BASE + extra_cfg)


def micro(pcap: Path, rounds: int = 5) -> tuple[float, float]:
    """In-process, CPU time per event of envelope + processors + JSON encoding, without
    and with the chain (best of ``rounds``): the chain's own cost, free of start-up and of
    the machine's other load as far as possible."""
    import copy
    import gc

    import yaml

    from capture import CaptureFile
    from protocols.decoder import Decoder
    from protocols.registry import build_plugins, default_config
    from protocols.stats import Counters
    from shipper.outputs.base import EncodedEvent
    from shipper.pipeline.envelope import Envelope
    from shipper.pipeline.processors import Context, Processing

    stats = Counters()
    cfg = default_config("http", ports=[80], send_all_headers=True)
    dec = Decoder(build_plugins({"http": cfg}, stats), stats=stats)
    events = []
    for pkt in CaptureFile(str(pcap)):
        events += dec.feed(*pkt[:3])
        if len(events) >= 20000:
            break
    chain = Processing.build(yaml.safe_load(CHAIN)["processors"], {}, Context())
    envs = {
        "without": Envelope(beat_name="b", agent_id="a", ephemeral_id="e"),
        "with": Envelope(beat_name="b", agent_id="a", ephemeral_id="e", processing=chain),
    }
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    best = {"without": 1e9, "with": 1e9}
    for _ in range(rounds):
        for name, env in envs.items():
            batch = copy.deepcopy(events)
            t0 = time.process_time()
            for e in batch:
                EncodedEvent.from_event(env.apply(e))
            best[name] = min(best[name], (time.process_time() - t0) / len(batch) * 1e6)
    return best["without"], best["with"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=400_000)
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--host", action="store_true", help="also run with add_host_metadata")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    pcap = OUT / f"http-{args.packets}-{args.connections}.pcap"
    if not pcap.exists():
        n, txns = generate(pcap, args.packets, args.connections)
        print(f"generated {pcap.name}: {n} packets, {txns} transactions")
    variants = {"without processors": "", "5-processor chain": CHAIN}
    if args.host:
        variants["add_host_metadata"] = HOST
    best: dict[str, dict[str, float]] = {}
    for i in range(args.runs):
        for name, extra in variants.items():
            r = run(pcap, extra)
            print(
                f"run {i + 1} {name:>18}: {r['wall']:.2f}s wall, {r['cpu']:.2f}s CPU, "
                f"{r['events'] / r['cpu']:,.0f} events per CPU-second ({r['events']} events)"
            )
            if name not in best or r["cpu"] < best[name]["cpu"]:
                best[name] = r
    plain, chained = micro(pcap)
    print(
        f"in-process, per event (envelope + processors + encoding): {plain:.1f} µs without, "
        f"{chained:.1f} µs with the chain: the chain costs {chained - plain:.1f} µs per event"
    )
    base = best["without processors"]
    for name, r in best.items():
        ratio = base["cpu"] / r["cpu"]
        print(
            f"best {name:>18}: {r['events'] / r['cpu']:,.0f} events/CPU-s, "
            f"{r['events'] / r['wall']:,.0f} events/s wall; {ratio:.1%} of the throughput without processors"
        )


if __name__ == "__main__":
    main()
