"""Record what real Packetbeat 9.3 emits for the synthetic DNS captures.

Run by hand after changing ``tests/protocols/dns_captures.py`` (needs the oracle binary,
``scripts/build-packetbeat``):

    python -m tests.protocols.gen_dns_oracle

Writes ``tests/data/dns/<capture>.json``: Packetbeat's events without ``agent``,
``host``, ``ecs`` and ``@metadata``; and ``tests/data/dns/shared/<capture>.json`` for the
shared captures that carry DNS (``../shared/pcaps/packetbeat/dns_*.pcap``,
``http_basicauth.pcap``). Packetbeat in file mode sometimes exits before the
last events of a capture are written, so every capture ends with a sentinel exchange and
Packetbeat is run until the sentinel's event is there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.protocols.dns_oracle import CONFIG, DATA, SHARED_CAPTURES, build, drop_sentinel, strip
from tests.helpers import SHARED_PCAPS

ROOT = Path(__file__).resolve().parents[2]


def packetbeat() -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "build-packetbeat")], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def run(exe: str, pcap: Path) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="dns-oracle-") as tmp:
        cfg = Path(tmp) / "pb.yml"
        cfg.write_text(
            "packetbeat.interfaces.device: any\n"
            + CONFIG
            + f"output.file: {{path: {tmp}/out, filename: packetbeat}}\n"
            "queue.mem.flush.timeout: 0s\n"
            f"path.data: {tmp}/data\npath.logs: {tmp}/logs\n"
        )
        subprocess.run(
            [exe, "-e", "-t", "-I", str(pcap), "-c", str(cfg), "--strict.perms=false"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        events = []
        out = Path(tmp) / "out"
        for f in sorted(out.glob("*")) if out.exists() else []:
            events += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        return events


def main() -> None:
    exe = packetbeat()
    DATA.mkdir(parents=True, exist_ok=True)
    names = sys.argv[1:] or None
    from tests.protocols.dns_captures import CAPTURES

    with tempfile.TemporaryDirectory() as tmp:
        for name in names or list(CAPTURES):
            pcap = build(name).write(Path(tmp) / f"{name}.pcap")
            for attempt in range(10):
                events = [strip(e) for e in run(exe, pcap)]
                kept = drop_sentinel(events)
                if len(kept) < len(events):
                    break
            else:
                raise SystemExit(f"{name}: Packetbeat never wrote the sentinel's event")
            (DATA / f"{name}.json").write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n")
            print(f"{name}: {len(kept)} events (attempt {attempt + 1})")
    if names:
        return
    (DATA / "shared").mkdir(exist_ok=True)
    for name in SHARED_CAPTURES:
        best: list[dict] = []
        for _ in range(10):  # no sentinel possible here: keep the fullest run
            events = [strip(e) for e in run(exe, SHARED_PCAPS / f"{name}.pcap")]
            if len(events) > len(best):
                best = events
        (DATA / "shared" / f"{name}.json").write_text(json.dumps(best, indent=1, sort_keys=True) + "\n")
        print(f"shared {name}: {len(best)} events")
    shutil.rmtree(Path(tmp), ignore_errors=True)


if __name__ == "__main__":
    main()
