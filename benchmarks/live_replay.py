"""Live capture side by side: the HTTP keep-alive capture replayed onto ``lo`` by
``tcpreplay`` at fixed rates, wirebeat and the real Packetbeat each capturing alone.

    python3 benchmarks/live_replay.py                       # 300,000 packets at 30k, 60k, 100k pps
    python3 benchmarks/live_replay.py --quick               # 100,000 packets
    python3 benchmarks/live_replay.py --rates 30000,120000 --runs 2 --wirebeat-args='-E packetbeat.workers=2'

Each tool captures on ``lo`` with ``af_packet`` and a 64 MB ring (``buffer_size_mb: 64``,
filter ``tcp port 80``), writes ``output.file`` (``queue.mem.flush.timeout: 0s``), and is
stopped with SIGINT once its output has not grown for two seconds after the replay; then
its events are counted. The capture holds one event per HTTP transaction, so the table
says how many of them each tool delivered at each rate (``all`` = every transaction).

On ``lo`` a packet socket sees every replayed packet twice (sent and received): wirebeat
skips the sent copy as libpcap does; Packetbeat's ``af_packet`` reader processes both
(its ``/inputs/`` ``socket_packets`` is twice the capture), which is part of what is measured.

Needs root (or CAP_NET_RAW and CAP_NET_ADMIN), ``tcpreplay`` (``apt-get install tcpreplay``)
and Packetbeat 9.3.0 (``scripts/build-packetbeat``). Other traffic on ``lo`` to or from
port 80 during a run would be counted too.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from benchmarks.sidebyside import capture  # noqa: E402
from scripts.pbcompare import PACKETBEAT_VERSION, CompareError, find_packetbeat  # noqa: E402


def tool_config(work: Path, name: str) -> dict[str, Any]:
    return {
        "packetbeat.interfaces": {
            "device": "lo",
            "type": "af_packet",
            "buffer_size_mb": 64,
            "bpf_filter": "tcp port 80",
        },
        "packetbeat.protocols": [{"type": "http", "ports": [80]}],
        "output.file": {
            "path": str(work / "out"),
            "filename": name,
            "rotate_every_kb": 1024 * 1024,
            "number_of_files": 1024,
        },
        "queue.mem.flush.timeout": "0s",
        "packetbeat.shutdown_timeout": "2s",
        "path.data": str(work / "data"),
        "path.logs": str(work / "logs"),
        "logging.level": "warning",
        "logging.metrics.enabled": False,
    }


def count_events(work: Path) -> int:
    n = 0
    for f in (work / "out").glob("*.ndjson"):
        with f.open("rb") as fh:
            n += sum(buf.count(b"\n") for buf in iter(lambda fh=fh: fh.read(1 << 20), b""))
    return n


def one_run(tool: str, cmd: list[str], pcap: Path, rate: int, settle: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"live-{tool}-") as tmp:
        work = Path(tmp)
        cfg = work / "packetbeat.yml"
        cfg.write_text(yaml.safe_dump(tool_config(work, tool), sort_keys=False))
        err = (work / "stderr").open("w+b")
        proc = subprocess.Popen([*cmd, "-c", str(cfg)], stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        try:
            time.sleep(settle)  # the capture socket is open and the ring mapped
            if proc.poll() is not None:
                err.seek(0)
                raise SystemExit(f"{tool} exited at start: {err.read().decode('utf-8', 'replace')[-1500:]}")
            replay = subprocess.run(
                ["tcpreplay", "--intf1=lo", f"--pps={rate}", "--preload-pcap", str(pcap)],
                capture_output=True,
                text=True,
            )
            if replay.returncode != 0:
                raise SystemExit(f"tcpreplay failed: {replay.stderr.strip()[-800:]}")
            # Wait until the output stops growing (the tool has caught up), at most 60 s.
            last, still, deadline = -1, 0.0, time.monotonic() + 60
            while time.monotonic() < deadline and still < 2.0:
                time.sleep(0.5)
                n = count_events(work)
                still = still + 0.5 if n == last else 0.0
                last = n
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        err.seek(0)
        log = err.read().decode("utf-8", "replace")
        drops = [line for line in log.splitlines() if "drop" in line.lower()][-2:]
        return {"events": count_events(work), "log": drops, "replay": _replay_rate(replay.stdout)}


def _replay_rate(stdout: str) -> str:
    for line in stdout.splitlines():
        if "Rated:" in line:
            return line.split("Rated:", 1)[1].strip()
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100,000 packets instead of 300,000")
    ap.add_argument("--packets", type=int, default=0, help="capture size in packets")
    ap.add_argument("--rates", default="30000,60000,100000", help="packets/s, comma-separated")
    ap.add_argument("--runs", type=int, default=1, help="runs per tool and rate (the median is reported)")
    ap.add_argument("--settle", type=float, default=4.0, help="seconds between a tool's start and the replay")
    ap.add_argument("--wirebeat-args", default="", help="extra arguments for wirebeat (shell-quoted)")
    args = ap.parse_args()
    if shutil.which("tcpreplay") is None:
        print("live_replay: tcpreplay is not installed (apt-get install tcpreplay)", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("live_replay: capturing on lo needs root", file=sys.stderr)
        return 2
    try:
        pb = find_packetbeat()
    except CompareError as exc:
        print(f"live_replay: cannot get Packetbeat {PACKETBEAT_VERSION}: {exc}", file=sys.stderr)
        return 2
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    pcap, packets = capture(
        "http-keepalive", args.quick, args.packets or (100_000 if args.quick else 300_000)
    )
    with tempfile.TemporaryDirectory() as tmp:
        # The transactions in the capture: what a tool reading the file delivers.
        cfg = Path(tmp) / "wb.yml"
        cfg.write_text(
            "packetbeat.protocols: [{type: http, ports: [80]}]\noutput.file: {path: "
            + str(Path(tmp) / "out")
            + ", filename: all}\nlogging.metrics.enabled: false\npath.data: "
            + str(Path(tmp) / "data")
            + "\n"
        )
        subprocess.run(
            [sys.executable, "-m", "shipper", "-c", str(cfg), "-I", str(pcap), "-t"], cwd=ROOT, check=True
        )
        total = count_events(Path(tmp))
    tools = {
        "wirebeat": [sys.executable, "-m", "shipper", "-e", *shlex.split(args.wirebeat_args)],
        "Packetbeat": [str(pb), "-e", "--strict.perms=false"],
    }
    rows = []
    for rate in rates:
        got: dict[str, list[int]] = {t: [] for t in tools}
        for i in range(args.runs):
            for tool in tools if i % 2 == 0 else reversed(list(tools)):
                r = one_run(tool, tools[tool], pcap, rate, args.settle)
                got[tool].append(r["events"])
                print(
                    f"{rate} pps {tool}: {r['events']} events (tcpreplay: {r['replay']}) {' | '.join(r['log'])}",
                    file=sys.stderr,
                    flush=True,
                )
        rows.append((rate, got))
    print()
    print(
        f"Live capture on lo (af_packet, 64 MB ring): {packets:,}-packet HTTP keep-alive capture, "
        f"{total:,} transactions; Packetbeat {PACKETBEAT_VERSION}; {os.cpu_count()} cores"
        f"{'; wirebeat ' + args.wirebeat_args if args.wirebeat_args else ''}"
    )
    print()
    print("| rate (packets/s) | wirebeat events | Packetbeat events |")
    print("|---:|---:|---:|")
    for rate, got in rows:

        def cell(v: list[int]) -> str:
            m = int(statistics.median(v))
            span = f" ({min(v):,}–{max(v):,})" if len(v) > 1 and min(v) != max(v) else ""
            return f"{m:,}{' (all)' if m == total else ''}{span}"

        print(f"| {rate:,} | {cell(got['wirebeat'])} | {cell(got['Packetbeat'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
