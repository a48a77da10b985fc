"""Instructions per event of a replay, counted by callgrind: a figure that does not move with
the machine's load (timings on a shared VM spread by 20 % and more), for comparing two
versions of the code or finding where an event's instructions go.

    python3 benchmarks/bench_instructions.py                       # HTTP keep-alive
    python3 benchmarks/bench_instructions.py --captures http-keepalive,mixed+flows --top 25

Uses ``sidebyside.py``'s quick captures (about 100,000 packets) and configuration
(``output.file``), one process (``--workers 1``), and runs wirebeat twice under
``valgrind --tool=callgrind``: on the capture, and on the capture's first packet (start-up
and shutdown, subtracted). Prints the instructions per event and, with ``--top``, the
compiled functions (and the C walker) with the most inclusive instructions per event.
Needs valgrind (``apt-get install valgrind``); callgrind runs about 40 times slower than
the program, so one capture takes a minute or two.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sidebyside import CAPTURES, capture, config  # noqa: E402
from capture import CaptureFile  # noqa: E402
from capture.pcapwriter import PcapWriter  # noqa: E402
from protocols import compiled  # noqa: E402
from scripts.pbcompare import run_config  # noqa: E402

#: An inclusive-cost line of callgrind_annotate naming a compiled function or the walker.
_LINE = re.compile(r"^\s*([\d,]+) \([ \d.]+%\)\s+(?:build/__native_\w+\.c|shipper/agent/_walk\.c):(\w+) \[")


def _count(pcap: Path, cfg: dict[str, object], work: Path) -> tuple[int, int, Path]:
    """(instructions, events written, callgrind file) of one replay of ``pcap``."""
    run = run_config(cfg, work, "wirebeat")
    run["logging.metrics.enabled"] = False
    cfg_path = work / "packetbeat.yml"
    cfg_path.write_text(yaml.safe_dump(run, sort_keys=False))
    out = work / "callgrind.out"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "shipper",
        "-c",
        str(cfg_path),
        "-I",
        str(pcap),
        "-t",
        "--workers",
        "1",
    ]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench_instructions: wirebeat failed on {pcap.name}:\n{r.stderr[-1500:]}")
    m = re.search(r"Collected : (\d+)", r.stderr)
    if m is None:
        raise SystemExit(f"bench_instructions: no instruction count from callgrind:\n{r.stderr[-800:]}")
    events = sum(f.read_bytes().count(b"\n") for f in (work / "out").glob("*.ndjson"))
    return int(m.group(1)), events, out


def _first_packet(pcap: Path, dest: Path) -> None:
    for ts, linktype, frame, wire in CaptureFile(str(pcap)):
        with PcapWriter(str(dest), linktype) as w:
            w.write(ts, frame, wire)
        return


def _top(profile: Path, events: int, n: int) -> list[tuple[str, float]]:
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", str(profile)], capture_output=True, text=True
    ).stdout
    seen: dict[str, int] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group(2) not in seen:
            seen[m.group(2)] = int(m.group(1).replace(",", ""))
    ranked = sorted(seen.items(), key=lambda kv: -kv[1])[:n]
    return [(name, cost / events) for name, cost in ranked]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captures", default="http-keepalive", help="comma-separated: " + ", ".join(CAPTURES))
    ap.add_argument("--top", type=int, default=0, help="also list this many compiled functions")
    args = ap.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        print("bench_instructions: needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    print(f"wirebeat: {compiled.status()}")
    for name in (n.strip() for n in args.captures.split(",") if n.strip()):
        if name not in CAPTURES:
            ap.error(f"unknown capture {name!r}")
        pcap, packets = capture(name, True)
        cfg = config(name, pcap)
        with tempfile.TemporaryDirectory(prefix="wb-instr-") as tmp:
            work = Path(tmp)
            one = work / "first.pcap"
            _first_packet(pcap, one)
            (work / "base").mkdir()
            base, _, _ = _count(one, cfg, work / "base")
            (work / "full").mkdir()
            total, events, profile = _count(pcap, cfg, work / "full")
            per = (total - base) / max(1, events)
            print(
                f"{name}: {packets:,} packets, {events:,} events: {total / 1e9:.3f} G instructions "
                f"({base / 1e9:.3f} G start-up and shutdown), {per / 1e3:,.1f} k per event"
            )
            for fn, cost in _top(profile, events, args.top):
                print(f"  {cost / 1e3:8.1f} k/event  {fn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
