"""wirebeat and the real Packetbeat side by side, on the same captures, with the same config.

    python3 benchmarks/sidebyside.py            # every capture, 1 core and all cores, 3 runs each
    python3 benchmarks/sidebyside.py --quick    # small captures (a minute or two)
    python3 benchmarks/sidebyside.py --captures http-keepalive,dns --cores 1 --runs 5
    python3 benchmarks/sidebyside.py --wirebeat-args='-E packetbeat.workers=2'

Packetbeat is the pinned 9.3.0 that ``scripts/build-packetbeat`` builds from Elastic's Go
modules (cached in ``~/.cache/wirebeat/packetbeat-9.3.0``; ``WIREBEAT_PACKETBEAT`` names
another binary). Without a Go toolchain the script says so and stops.

The captures are generated once by the repository's synthesizers and cached in
``~/.cache/wirebeat/sidebyside/``: HTTP over keep-alive connections (``bench_pipeline``),
HTTP with one request per connection, MySQL and PostgreSQL (``dbwire`` workloads of
``bench_mysql``/``bench_pgsql``), Redis, DNS over UDP (``bench_dns``) and a mixed capture
(HTTP, other TCP, UDP, ICMP; ``bench_flows``) decoded with flows on: with Packetbeat's shipped
flow settings (``mixed+flows``), and with final reports only (``mixed+final-flows``, where
both tools write one report per flow; see ``FLOWS_OF``).

Both tools read the capture with ``-I FILE -t`` (as fast as they can) and write
``output.file``, with one ``packetbeat.yml`` (``scripts/pbcompare.run_config``:
``queue.mem.flush.timeout: 0s``, a ``packetbeat.shutdown_timeout`` of 3 s, enough for
Packetbeat's publisher to drain). Packetbeat sleeps that timeout unconditionally before it
exits, and once more at start-up (its configuration check builds a processor and stops it,
and stopping sleeps the timeout), so *time* is measured from the start to the last write of
the output file, for both tools, less Packetbeat's start-up sleep; *CPU* (user + sys) and
*peak RSS* come from ``wait4`` on the tool's process, started by a fresh launcher
(``benchmarks/measure.py``: Linux would pass this script's own peak on to a process it starts
directly); a multi-process wirebeat reports its largest process and the CPU of every process
it waited for. "1 core" pins each tool with
``taskset -c 0``; "all cores" leaves it free. Each figure is the median of ``--runs`` runs,
the tools alternating. The table is Markdown.
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from benchmarks import bench_mysql, bench_pgsql, measure  # noqa: E402
from benchmarks.bench_dns import generate as dns_generate  # noqa: E402
from benchmarks.bench_flows import generate as mixed_generate  # noqa: E402
from benchmarks.bench_pipeline import generate as http_generate  # noqa: E402
from benchmarks.bench_pipeline import request, response  # noqa: E402
from benchmarks.dbbench import synthesize  # noqa: E402
from benchmarks.synth import Conversation  # noqa: E402
from scripts.pbcompare import PACKETBEAT_VERSION, CompareError, find_packetbeat, run_config  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wirebeat" / "sidebyside"

PROTOCOLS: list[dict[str, Any]] = [
    {"type": "http", "ports": [80]},
    {"type": "mysql", "ports": [3306]},
    {"type": "pgsql", "ports": [5432]},
    {"type": "redis", "ports": [6379]},
    {"type": "dns", "ports": [53]},
    {"type": "icmp", "enabled": True},
]
FLOWS = {"timeout": "30s", "period": "10s"}


# -- captures ------------------------------------------------------------------------------


def _http_short(path: Path, n: int) -> None:
    rnd = random.Random(3)

    def one(conv: Conversation, _n: int, i: int) -> int:
        conv.send(0, request(rnd, i).replace(b"keep-alive", b"close"))
        conv.send(1, response(rnd, i), ack_every=2)
        return 1

    synthesize(path, 80, n, 1, one)


def _redis(path: Path, n: int) -> None:
    from benchmarks.bench_redis import cmd

    def work(conv: Conversation, k: int, c: int) -> int:
        for i in range(k):
            key = b"user:%d:%d" % (c, i)
            if i % 4 == 0:
                conv.send(0, cmd(b"SET", key, b"some value %d" % i)).send(1, b"+OK\r\n")
            elif i % 4 == 1:
                conv.send(0, cmd(b"GET", key)).send(1, b"$14\r\nsome value %03d\r\n" % (i % 1000))
            elif i % 4 == 2:
                conv.send(0, cmd(b"LRANGE", key, b"0", b"4"))
                conv.send(1, b"*5\r\n" + b"".join(b"$2\r\nv%d\r\n" % j for j in range(5)))
            else:
                conv.send(0, cmd(b"INCR", key)).send(1, b":%d\r\n" % i)
        return k

    synthesize(path, 6379, n, 100, work)


def _mixed(path: Path, n: int) -> None:
    mixed_generate(path, n, max(60, n // 5000))


#: name → (generator(path, size), full size, quick size, flows on). Sizes are packets for
#: HTTP keep-alive and mixed, transactions for the others.
CAPTURES: dict[str, tuple[Callable[[Path, int], Any], int, int, bool]] = {
    "http-keepalive": (lambda p, n: http_generate(p, n, max(50, n // 500)), 1_000_000, 100_000, False),
    "http-short": (_http_short, 50_000, 5_000, False),
    "mysql": (
        lambda p, n: synthesize(p, 3306, n, 100, bench_mysql.workload, bench_mysql.prologue),
        200_000,
        20_000,
        False,
    ),
    "pgsql": (
        lambda p, n: synthesize(p, 5432, n, 100, bench_pgsql.workload, bench_pgsql.prologue),
        200_000,
        20_000,
        False,
    ),
    "redis": (_redis, 200_000, 20_000, False),
    "dns": (lambda p, n: dns_generate(p, n), 200_000, 20_000, False),
    "mixed+flows": (_mixed, 1_000_000, 100_000, True),
    # The same capture, flows reported only when they end (``period: -1s``): each tool
    # writes one report per flow. With ``period: 10s`` wirebeat's report clock runs on
    # capture time (200 s: twenty reports per flow) and Packetbeat's on the wall clock (one
    # or two per flow in a ten-second run), so the two write different numbers of events.
    "mixed+final-flows": (_mixed, 1_000_000, 100_000, True),
}
#: Captures that are another's file with another configuration.
SAME_FILE = {"mixed+final-flows": "mixed+flows"}
#: The flows configuration of a capture with flows on (``FLOWS`` if not named here).
FLOWS_OF = {"mixed+final-flows": {"timeout": "30s", "period": "-1s"}}


def capture(name: str, quick: bool, size: int | None = None) -> tuple[Path, int]:
    """The cached capture and its packet count (generated on first use); ``size``
    overrides the full or quick size."""
    gen, full, small, _flows = CAPTURES[name]
    size = size or (small if quick else full)
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{SAME_FILE.get(name, name)}-{size}.pcap"
    count = path.with_suffix(".packets")
    if not path.exists() or not count.exists():
        from capture import CaptureFile

        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        tmp = path.with_suffix(".tmp")
        gen(tmp, size)
        tmp.rename(path)
        count.write_text(str(sum(1 for _ in CaptureFile(str(path)))))
    return path, int(count.read_text())


# -- running -------------------------------------------------------------------------------


def config(name: str, pcap: Path) -> dict[str, Any]:
    cfg: dict[str, Any] = {"packetbeat.protocols": PROTOCOLS}
    if CAPTURES[name][3]:
        cfg["packetbeat.flows"] = FLOWS_OF.get(name, FLOWS)
    return cfg


#: ``packetbeat.shutdown_timeout``: Packetbeat's pause after the capture is read, long enough
#: for its publisher to drain (``queue.mem.flush.timeout: 0s``: it drains in well under a
#: second on the largest capture here).
SHUTDOWN_PAUSE_S = 3


def shutdown_pause(pcap: Path) -> str:
    return f"{SHUTDOWN_PAUSE_S}s"


def startup_sleep(tool: str) -> float:
    """Seconds a tool sleeps before it reads the capture. Packetbeat 9.3 checks its
    configuration by building a processor and stopping it, and ``processor.Stop`` sleeps
    ``shutdown_timeout`` (packetbeat/beater/processor.go): the pause comes once at start-up
    as well as at the end. It is idle time, left out of *time*."""
    return float(SHUTDOWN_PAUSE_S) if tool == "Packetbeat" else 0.0


def run_tool(
    tool: str, cmd_of: Callable[[Path, Path], list[str]], name: str, pcap: Path, pin: bool
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"sbs-{tool}-") as tmp:
        work = Path(tmp)
        cfg = run_config(config(name, pcap), work, tool, shutdown_pause(pcap))
        cfg["logging.metrics.enabled"] = False
        cfg_path = work / "packetbeat.yml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        cmd = cmd_of(cfg_path, pcap)
        if pin:
            cmd = ["taskset", "-c", "0", *cmd]
        err = (work / "stderr").open("w+b")
        start_ns = time.time_ns()
        run = measure.run(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        if run.returncode != 0:
            err.seek(0)
            tail = err.read().decode("utf-8", "replace")[-1500:]
            raise SystemExit(f"{tool} failed on {pcap.name} (exit {run.returncode}): {' '.join(cmd)}\n{tail}")
        files = sorted((work / "out").glob("*.ndjson"))
        events = 0
        last = start_ns
        size = sum(f.stat().st_size for f in files)
        for f in files:
            with f.open("rb") as fh:
                events += sum(buf.count(b"\n") for buf in iter(lambda fh=fh: fh.read(1 << 20), b""))
            last = max(last, f.stat().st_mtime_ns)
        return {
            "time": max(1e-3, (last - start_ns) / 1e9 - startup_sleep(tool)),
            "wall": run.wall,
            "cpu": run.cpu,
            "rss": run.maxrss_mb,
            "events": events,
            "bytes": size,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small captures (about a tenth of the full size)")
    ap.add_argument("--runs", type=int, default=3, help="runs per tool and setting; the median is reported")
    ap.add_argument("--captures", default=",".join(CAPTURES), help="comma-separated: " + ", ".join(CAPTURES))
    ap.add_argument("--cores", default="1,all", help="'1', 'all' or '1,all'")
    ap.add_argument("--wirebeat-args", default="", help="extra arguments for wirebeat (shell-quoted)")
    ap.add_argument("--packetbeat-args", default="", help="extra arguments for Packetbeat (shell-quoted)")
    args = ap.parse_args()
    names = [n.strip() for n in args.captures.split(",") if n.strip()]
    for n in names:
        if n not in CAPTURES:
            ap.error(f"unknown capture {n!r}; choose from {', '.join(CAPTURES)}")
    cores = [c.strip() for c in args.cores.split(",")]
    if not set(cores) <= {"1", "all"} or args.runs < 1:
        ap.error("--cores takes 1, all or 1,all; --runs at least 1")
    if "1" in cores and shutil.which("taskset") is None:
        ap.error("taskset (util-linux) is needed for the 1-core runs")
    try:
        pb = find_packetbeat()
    except CompareError as exc:
        print(f"sidebyside: cannot get Packetbeat {PACKETBEAT_VERSION}: {exc}", file=sys.stderr)
        print("  (scripts/build-packetbeat builds it; it needs Go >= 1.24 and libpcap-dev)", file=sys.stderr)
        return 2
    wb_extra = shlex.split(args.wirebeat_args)
    pb_extra = shlex.split(args.packetbeat_args)
    # wirebeat starts from bytecode, as an installed package does (with
    # PYTHONDONTWRITEBYTECODE set, every run would compile its modules again).
    for pkg in ("capture", "protocols", "shipper"):
        compileall.compile_dir(str(ROOT / pkg), quiet=1)
    tools: dict[str, Callable[[Path, Path], list[str]]] = {
        "wirebeat": lambda c, f: [
            sys.executable,
            "-m",
            "shipper",
            "-c",
            str(c),
            "-e",
            "-I",
            str(f),
            "-t",
            *wb_extra,
        ],
        "Packetbeat": lambda c, f: [
            str(pb),
            "-e",
            "-t",
            "-I",
            str(f),
            "-c",
            str(c),
            "--strict.perms=false",
            *pb_extra,
        ],
    }
    rows = []
    for name in names:
        pcap, packets = capture(name, args.quick)
        for core in cores:
            results: dict[str, list[dict[str, float]]] = {t: [] for t in tools}
            for i in range(args.runs):
                order = list(tools) if i % 2 == 0 else list(reversed(tools))
                for tool in order:
                    r = run_tool(tool, tools[tool], name, pcap, core == "1")
                    results[tool].append(r)
                    print(
                        f"{name} {core} core(s) {tool} run {i + 1}: {r['events']} events, "
                        f"{r['time']:.2f}s to the last event ({r['wall']:.2f}s wall), {r['cpu']:.2f}s CPU, "
                        f"{r['rss']:.0f} MB",
                        file=sys.stderr,
                        flush=True,
                    )
            med = {t: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for t, rs in results.items()}
            rows.append((name, core, packets, med))
    print()
    print(
        f"wirebeat vs Packetbeat {PACKETBEAT_VERSION} on {os.cpu_count()} cores "
        f"({'quick' if args.quick else 'full'} captures, median of {args.runs} runs"
        f"{', wirebeat ' + args.wirebeat_args if args.wirebeat_args else ''})"
    )
    print()
    print(
        "| capture | cores | tool | events | bytes/event | time s | CPU s | peak RSS MB | packets/s | events/s |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, core, packets, med in rows:
        for tool, m in med.items():
            print(
                f"| {name} | {core} | {tool} | {m['events']:,.0f} | {m['bytes'] / max(1, m['events']):,.0f} | "
                f"{m['time']:.2f} | {m['cpu']:.2f} | "
                f"{m['rss']:.0f} | {packets / m['time']:,.0f} | {m['events'] / m['time']:,.0f} |"
            )
        w, p = med["wirebeat"], med["Packetbeat"]

        def ratio(k: str, w: dict[str, float] = w, p: dict[str, float] = p) -> str:
            return f"{w[k] / p[k]:.2f}" if p[k] else "-"

        per_event = (
            f"{(w['bytes'] / w['events']) / (p['bytes'] / p['events']):.2f}"
            if w["events"] and p["events"]
            else "-"
        )

        print(
            f"| {name} | {core} | **wirebeat / Packetbeat** | {ratio('events')} | {per_event} | **{ratio('time')}** | "
            f"{ratio('cpu')} | {ratio('rss')} | | |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
