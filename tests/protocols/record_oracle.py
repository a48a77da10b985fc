"""Record what Packetbeat 9.3.0 emits for the ICMP/flow captures (not a test).

    python -m tests.protocols.record_oracle

Writes ``tests/data/packetbeat/<capture>.ndjson``: Packetbeat's events for the generated
captures of ``flow_captures`` and the shared ``icmp*``/``*vlan*`` captures, normalized
with ``normalize`` (the fields that depend on the machine or the wall clock removed).
The binary comes from ``scripts/build-packetbeat``.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from capture import PcapWriter
from tests.helpers import ROOT, SHARED_PCAPS
from tests.protocols.flow_captures import CAPTURES

DATA = ROOT / "tests" / "data" / "packetbeat"
SHARED = ["icmp4_ping", "icmp4_ping_over_vlan", "icmp6_ping", "icmp6_ping_over_vlan", "http_over_vlan"]

CONFIG = """
packetbeat.flows: {{timeout: 30s, period: 10s}}
packetbeat.protocols:
- type: icmp
- type: http
  ports: [80, 8080]
packetbeat.shutdown_timeout: 1s
output.file: {{path: {tmp}/out, filename: packetbeat}}
queue.mem.flush.timeout: 0s
path.data: {tmp}/data
path.logs: {tmp}/logs
"""


def normalize(evt: dict[str, Any]) -> dict[str, Any]:
    """Drop what depends on the machine (agent, host, local addresses) or, for flows, on
    Packetbeat's wall clock (report and flow times)."""
    evt = json.loads(json.dumps(evt))
    for k in ("agent", "host", "ecs", "@metadata"):
        evt.pop(k, None)
    evt.get("network", {}).pop("direction", None)
    if evt.get("type") == "flow":
        evt.pop("@timestamp", None)
        for k in ("start", "end", "duration"):
            evt["event"].pop(k, None)
    return evt


def write_pcap(name: str, path: Path) -> None:
    linktype, frames = CAPTURES[name]()
    with PcapWriter(str(path), linktype) as w:
        for ts, frame in frames:
            w.write(ts, frame)


def run_packetbeat(pcap: Path) -> list[dict[str, Any]]:
    binary = subprocess.run(
        [str(ROOT / "scripts" / "build-packetbeat")], capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "pb.yml"
        cfg.write_text(CONFIG.format(tmp=tmp))
        subprocess.run(
            [binary, "-e", "-t", "-I", str(pcap), "-c", str(cfg), "--strict.perms=false"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        events = []
        for f in sorted((Path(tmp) / "out").glob("*.ndjson")):
            events += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return events


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pcaps = {name: Path(tmp) / f"{name}.pcap" for name in CAPTURES}
        for name, path in pcaps.items():
            write_pcap(name, path)
        pcaps.update({name: SHARED_PCAPS / f"{name}.pcap" for name in SHARED})
        for name, path in pcaps.items():
            events = sorted(
                (normalize(e) for e in run_packetbeat(path)), key=lambda e: json.dumps(e, sort_keys=True)
            )
            (DATA / f"{name}.ndjson").write_text(
                "".join(json.dumps(e, sort_keys=True) + "\n" for e in events)
            )
            print(f"{name}: {len(events)} events")


if __name__ == "__main__":
    main()
