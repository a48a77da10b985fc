"""packaging/wirebeat.service: a unit systemd accepts, whose command line wirebeat accepts,
running as the user packaging/wirebeat.sysusers creates, with only CAP_NET_RAW and
CAP_NET_ADMIN, and those capabilities are enough to capture on a device as a user."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shipper.agent.cli import build_parser
from tests.helpers import ROOT, need_tool
from tests.live_helpers import (
    LiveBeat,
    http_events,
    http_server,
    keepalive_requests,
    live_config,
    need_capture,
    settle,
)

UNIT = ROOT / "packaging" / "wirebeat.service"
SYSUSERS = ROOT / "packaging" / "wirebeat.sysusers"
CAPS = ["CAP_NET_RAW", "CAP_NET_ADMIN"]


def unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    cp.read_string(UNIT.read_text())
    return cp


def exec_start() -> list[str]:
    return shlex.split(unit()["Service"]["ExecStart"])


def test_unit_runs_as_a_user_with_two_capabilities_and_restarts() -> None:
    s = unit()["Service"]
    assert s["User"] == s["Group"] == "wirebeat"
    assert s["AmbientCapabilities"].split() == CAPS
    assert s["CapabilityBoundingSet"].split() == CAPS
    assert s["NoNewPrivileges"] == "yes"
    assert s["Restart"] == "always" and s["RestartSec"]
    assert unit()["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in unit()["Unit"]["After"]


def test_exec_start_is_a_command_line_wirebeat_accepts() -> None:
    argv = exec_start()
    assert Path(argv[0]).name == "wirebeat"
    args = build_parser().parse_args(argv[1:])
    assert args.words == ["run"]
    assert args.config == "/etc/wirebeat/wirebeat.yml"
    s = unit()["Service"]
    # The directories systemd creates for the service user are the ones wirebeat uses.
    assert args.path_config == f"/etc/{s['ConfigurationDirectory']}"
    assert args.path_data == f"/var/lib/{s['StateDirectory']}"
    assert args.path_logs == f"/var/log/{s['LogsDirectory']}"


def test_sysusers_creates_the_units_user() -> None:
    lines = [line for line in SYSUSERS.read_text().splitlines() if line and not line.startswith("#")]
    assert len(lines) == 1
    kind, name, _id, _gecos, home, shell = shlex.split(lines[0])
    assert (kind, name) == ("u", unit()["Service"]["User"])
    assert home == "/var/lib/wirebeat" and shell == "/usr/sbin/nologin"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd's own checks, with ExecStart pointing at this checkout's wirebeat."""
    analyze = need_tool("systemd-analyze")
    wrapper = tmp_path / "wirebeat"
    wrapper.write_text(
        f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} "
        "-c 'from shipper.agent.cli import main; main()' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    text = UNIT.read_text().replace("/usr/local/bin/wirebeat", str(wrapper))
    assert text != UNIT.read_text()
    (tmp_path / "wirebeat.service").write_text(text)
    out = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / "wirebeat.service")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "" and out.stdout.strip() == ""
    # The wrapper is a working wirebeat: the unit's flags parse and the version prints.
    version = subprocess.run([str(wrapper), "version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("wirebeat version")


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["af_packet", "pcap"])
def test_the_units_capabilities_are_enough_to_capture(tmp_path: Path, kind: str) -> None:
    """As user nobody with only the unit's ambient capabilities (and, because this
    interpreter lives under /root, the right to read it), wirebeat captures on lo."""
    need_capture(kind)
    setpriv = need_tool("setpriv")
    caps = [c.lower().removeprefix("cap_") for c in unit()["Service"]["AmbientCapabilities"].split()]
    extra = ["dac_read_search"]
    listed = ",".join(f"+{c}" for c in caps + extra)
    prefix = [
        setpriv,
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        f"--inh-caps=-all,{listed}",
        f"--ambient-caps={listed}",
        f"--bounding-set=-all,{listed}",
        "--",
    ]
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="wirebeat-unit-"))
    work.chmod(0o777)
    try:
        with http_server(tmp_path / "www") as port:
            cfg = live_config(work, kind=kind, ports=[port])
            beat = LiveBeat(work, cfg, prefix=prefix)
            (work / "wirebeat.yml").chmod(0o644)
            with beat:
                status = dict(
                    line.split(":\t", 1) for line in Path(f"/proc/{beat.pid}/status").read_text().splitlines()
                )
                assert keepalive_requests(port, ["/f1.txt", "/f2.txt"]) == [200, 200]
                settle()
                assert beat.stop() == 0, beat.stderr()
            events = http_events(beat.events(), port)
        assert [e["url"]["path"] for e in events] == ["/f1.txt", "/f2.txt"], beat.stderr()
        # It really ran as nobody with just these capabilities (bits 12, 13 and 2).
        assert status["Uid"].split()[:2] == ["65534", "65534"]
        assert int(status["CapEff"], 16) == (1 << 12) | (1 << 13) | (1 << 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
