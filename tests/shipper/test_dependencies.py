"""What a plain Python install needs: replaying a file imports neither libpcap (ctypes) nor
scapy; scapy is only a test dependency; live capture says what it needs where it starts."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.helpers import ROOT
from tests.shipper.shiprun import wirebeat

PACKAGES = ("capture", "protocols", "shipper")

#: Run before the CLI: importing ctypes (how libpcap is loaded) fails, as on a machine where
#: it cannot load libpcap at all; at exit, list what was imported.
NO_CTYPES = """
import atexit, sys
sys.modules["ctypes"] = None  # import ctypes -> ImportError
def _report():
    mods = sorted(m for m, mod in sys.modules.items() if mod is not None and (
        m.split(".")[0] in ("scapy", "ctypes") or m.startswith(("capture.libpcap", "capture.afpacket", "capture.bpf"))))
    print("IMPORTED " + " ".join(mods), file=sys.stderr)
atexit.register(_report)
"""

#: ctypes works but no libpcap can be loaded (a machine without the libpcap0.8 package).
NO_LIBPCAP = """
import ctypes, ctypes.util
def _missing(name, *args, **kwargs):
    raise OSError(f"{name}: cannot open shared object file: No such file or directory")
ctypes.CDLL = _missing
ctypes.util.find_library = lambda name: None
"""


def readme_first_command() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "the README starts with a sh block"
    return block[1].strip().splitlines()[0]


def test_replaying_a_file_needs_neither_libpcap_nor_scapy(tmp_path: Path) -> None:
    # The README's first command, minus the install: the sample replayed to the console.
    first = readme_first_command()
    assert first.endswith("wirebeat -e -t -I samples/sample.pcap"), first
    run = wirebeat("-e", "-t", "-I", "samples/sample.pcap", tmp=tmp_path, prelude=NO_CTYPES)
    assert run.rc == 0, run
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(events) == 12 and {e["type"] for e in events} == {"http", "redis"}
    (imported,) = [line for line in run.stderr.splitlines() if line.startswith("IMPORTED")]
    assert imported.split() == ["IMPORTED"], imported


def test_live_capture_without_libpcap_says_what_to_install(tmp_path: Path) -> None:
    cfg = tmp_path / "wirebeat.yml"
    cfg.write_text("packetbeat.interfaces.device: lo\npacketbeat.protocols: [{type: http, ports: [80]}]\n")
    cfg.chmod(0o600)
    run = wirebeat("test", "config", "-c", cfg, tmp=tmp_path, prelude=NO_LIBPCAP)
    assert run.rc == 1, run
    (line,) = run.stderr.splitlines()[:1]
    assert line.startswith("Exiting: "), line
    assert "libpcap is not installed: live capture needs it" in line
    assert "apt-get install libpcap0.8" in line and "replaying a file with -I does not" in line


def test_scapy_is_a_test_dependency_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=!~\[ ]", d)[0].lower() for d in project["dependencies"]]
    assert "scapy" not in names
    assert any(d.lower().startswith("scapy") for d in project["optional-dependencies"]["test"])
    users = []
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                mods = []
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    mods = [node.module]
                if any(m.split(".")[0] == "scapy" for m in mods):
                    users.append(str(path.relative_to(ROOT)))
    assert not users, users


def test_importing_the_cli_loads_no_capture_library() -> None:
    code = (
        "import sys\nfrom shipper.agent.cli import main  # noqa: F401\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scapy', 'ctypes')"
        " or m in ('capture.libpcap', 'capture.afpacket', 'capture.bpf')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
