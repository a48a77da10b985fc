"""wirebeat with its compiled hot path against its pure-Python source, on the same capture.

    python3 benchmarks/bench_compiled.py                       # HTTP keep-alive, 1 core, 5 runs each
    python3 benchmarks/bench_compiled.py --captures http-keepalive,dns --runs 3 --cores all

The captures, the configuration and the measurement are ``sidebyside.py``'s (one
``packetbeat.yml``, ``output.file``, *time* to the last event written); the two variants
alternate, "pure" with ``WIREBEAT_PURE_PYTHON=1`` (``protocols/compiled.py``). The compiled
modules must be built (``pip install -e .`` or ``python3 setup.py build_ext --inplace``): the
script stops otherwise. Prints one Markdown row per capture: medians and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sidebyside import CAPTURES, capture, run_tool  # noqa: E402
from protocols import compiled  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captures", default="http-keepalive", help="comma-separated: " + ", ".join(CAPTURES))
    ap.add_argument("--runs", type=int, default=5, help="runs per variant; the median is reported")
    ap.add_argument("--cores", choices=["1", "all"], default="1")
    ap.add_argument("--quick", action="store_true", help="small captures")
    args = ap.parse_args()
    if compiled.REASON is not None:
        print(f"bench_compiled: nothing to compare: {compiled.status()}", file=sys.stderr)
        return 2
    if args.cores == "1" and shutil.which("taskset") is None:
        ap.error("taskset (util-linux) is needed for the 1-core runs")
    wirebeat = [sys.executable, "-m", "shipper", "-e", "-t"]
    variants = {
        "compiled": lambda c, f: [*wirebeat, "-c", str(c), "-I", str(f)],
        "pure": lambda c, f: ["env", f"{compiled.PURE_PYTHON_ENV}=1", *wirebeat, "-c", str(c), "-I", str(f)],
    }
    print("| capture | cores | compiled s | pure s | compiled / pure | events (compiled = pure) |")
    print("|---|---|---:|---:|---:|---|")
    for name in (n.strip() for n in args.captures.split(",") if n.strip()):
        if name not in CAPTURES:
            ap.error(f"unknown capture {name!r}")
        pcap, _packets = capture(name, args.quick)
        times: dict[str, list[float]] = {v: [] for v in variants}
        events: dict[str, set[float]] = {v: set() for v in variants}
        for i in range(args.runs):
            for v in variants if i % 2 == 0 else reversed(variants):
                r = run_tool(v, variants[v], name, pcap, args.cores == "1")
                times[v].append(r["time"])
                events[v].add(r["events"])
                print(f"{name} {v} run {i + 1}: {r['time']:.2f}s, {r['events']:.0f} events", file=sys.stderr)
        c, p = statistics.median(times["compiled"]), statistics.median(times["pure"])
        same = "yes" if events["compiled"] == events["pure"] and len(events["pure"]) == 1 else "NO"
        print(f"| {name} | {args.cores} | {c:.2f} | {p:.2f} | **{c / p:.2f}** | {same} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
