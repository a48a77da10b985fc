"""Live flows: known numbers of packets and bytes over TCP, UDP and ICMP between this host
and a network namespace (real sockets and ping), captured on the veth, run through the CLI.

Every flow's counters are checked against what the test sent (UDP and ICMP: packet for
packet; TCP: the payload it carried) and against ``tshark -z conv`` on the same capture;
then the periodic, delta and final reports, and two replays giving the same events."""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile, PcapWriter
from tests.helpers import free_port, need_tool
from tests.integration.netns import Peer, capture, dual_stack_peer
from tests.live_helpers import need_capture
from tests.oracle.recordings import record_for_oracle
from tests.shipper.shiprun import FLOWS_REQUIRED, missing_required, wirebeat

pytestmark = pytest.mark.integration

NS = 1_000_000_000
TCP_SIZES = [100, 200, 300, 400]
UDP_SIZES = [20, 30, 40, 50, 60]
PINGS, PING_SIZE = 3, 64

_TCP_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(); print("ready", flush=True)
def exact(c, n):
    b = b""
    while len(b) < n:
        chunk = c.recv(n - len(b))
        if not chunk:
            return None
        b += chunk
    return b
while True:
    c, _ = s.accept()
    with c:
        while (hdr := exact(c, 4)) is not None:
            n = int.from_bytes(hdr, "big")
            exact(c, n)
            c.sendall(b"r" * (2 * n))
"""
_UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(4096)
    s.sendto(b"v" * (2 * len(data)), addr)
"""


class Traffic:
    """What the test sent, and the capture it is in."""

    def __init__(self, peer: Peer, pcap: Path, tcp_port: int, udp_port: int, probe_port: int) -> None:
        self.peer, self.pcap = peer, pcap
        self.tcp_port, self.udp_port, self.probe_port = tcp_port, udp_port, probe_port
        self.tcp_clients: list[int] = []
        self.udp_client = 0


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    need_capture()
    ping = need_tool("ping")
    need_tool("tshark")
    tmp = tmp_path_factory.mktemp("flows")
    with dual_stack_peer() as peer:
        t = Traffic(peer, tmp / "flows.pcap", free_port(), free_port(), free_port())
        servers = [
            subprocess.Popen(
                peer.inside(sys.executable, "-c", code, peer.peer4, str(port)),
                stdout=subprocess.PIPE,
                text=True,
            )
            for code, port in ((_TCP_SERVER, t.tcp_port), (_UDP_SERVER, t.udp_port))
        ]
        try:
            for s in servers:
                assert s.stdout is not None and s.stdout.readline().strip() == "ready"
            bpf = f"tcp port {t.tcp_port} or udp port {t.udp_port} or icmp"
            with capture(peer, t.pcap, bpf, t.probe_port):
                # Two TCP connections; the first one lasts about 2.5s (several report periods).
                for sizes in (TCP_SIZES, [50]):
                    with socket.create_connection((peer.peer4, t.tcp_port), timeout=10) as c:
                        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        t.tcp_clients.append(c.getsockname()[1])
                        for n in sizes:
                            c.sendall(struct.pack(">I", n) + b"q" * n)
                            got = b""
                            while len(got) < 2 * n:
                                got += c.recv(2 * n - len(got))
                            if len(sizes) > 1:
                                time.sleep(0.6)
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.settimeout(10)
                    for n in UDP_SIZES:
                        u.sendto(b"d" * n, (peer.peer4, t.udp_port))
                        assert len(u.recv(4096)) == 2 * n
                    t.udp_client = u.getsockname()[1]
                r = subprocess.run(
                    [ping, "-n", "-c", str(PINGS), "-i", "0.2", "-s", str(PING_SIZE), peer.peer4],
                    capture_output=True,
                    timeout=30,
                )
                assert r.returncode == 0
        finally:
            for s in servers:
                s.terminate()
                s.wait(timeout=10)
        # Flows and ICMP of real traffic, for the Packetbeat comparison (the shipped config
        # there has flows on).
        record_for_oracle(t.pcap, [{"type": "icmp"}], label="flows-live")
        yield t


def shifted(t: Traffic, tmp: Path) -> Path:
    """The capture moved in time (intervals kept) so it starts 0.5s before a multiple of
    10s: the report clock (aligned to 10s, like Packetbeat's) starts right away."""
    packets = list(CaptureFile(str(t.pcap)))
    first = packets[0][0]
    shift = (first // (10 * NS) + 1) * 10 * NS - NS // 2 - first
    out = tmp / "shifted.pcap"
    with PcapWriter(str(out), packets[0][1]) as w:
        for ts, _lt, frame, wl in packets:
            w.write(ts + shift, frame, wl)
    return out


def run_cli(t: Traffic, tmp: Path, flows: str, pcap: Path | None = None) -> list[dict[str, Any]]:
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = tmp / "wirebeat.yml"
    cfg.write_text(f"packetbeat.flows: {flows}\npacketbeat.protocols:\n- type: icmp\noutput.console: {{}}\n")
    run = wirebeat("-t", "-c", cfg, "-I", pcap or t.pcap, tmp=tmp)
    assert run.rc == 0, run
    return [e for e in run.events if e["type"] == "flow"]


def tshark_conv(pcap: Path, kind: str, display_filter: str = "") -> dict[tuple[str, str], tuple[int, int]]:
    """{(from, to): (frames, bytes)} per direction, from ``tshark -q -z conv,<kind>``."""
    stat = f"conv,{kind}" + (f",{display_filter}" if display_filter else "")
    out = subprocess.run(
        [need_tool("tshark"), "-n", "-r", str(pcap), "-q", "-z", stat],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    conv = {}
    row = re.compile(r"^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+(\d+) bytes\s+(\d+)\s+(\d+) bytes\s+")
    for line in out.splitlines():
        m = row.match(line)
        if m:
            a, b = m.group(1), m.group(2)
            conv[(b, a)] = (int(m.group(3)), int(m.group(4)))  # "<-": B → A
            conv[(a, b)] = (int(m.group(5)), int(m.group(6)))  # "->": A → B
    assert conv, out
    return conv


def payload_bytes(pcap: Path, sport: int, dport: int) -> int:
    out = subprocess.run(
        [
            need_tool("tshark"),
            "-n",
            "-r",
            str(pcap),
            "-Y",
            f"tcp.srcport == {sport} && tcp.dstport == {dport}",
            "-T",
            "fields",
            "-e",
            "tcp.len",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(int(x) for x in out.split())


def endpoint(side: dict[str, Any]) -> str:
    return f"{side['ip']}:{side['port']}" if "port" in side else side["ip"]


def by_endpoints(events: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(endpoint(e["source"]), endpoint(e["destination"])): e for e in events}


def test_counters_match_what_was_sent_and_tshark(traffic: Traffic, tmp_path: Path) -> None:
    t = traffic
    finals = run_cli(t, tmp_path, "{timeout: 30s, period: 10s}")
    assert all(e["flow"]["final"] for e in finals)
    flows = by_endpoints(finals)
    host, peer = t.peer.host4, t.peer.peer4
    ours = {("tcp", host, c, peer, t.tcp_port) for c in t.tcp_clients} | {
        ("udp", host, t.udp_client, peer, t.udp_port),
        ("udp", host, None, peer, t.probe_port),
        ("icmp", host, None, peer, None),
    }
    got = set()
    for e in finals:
        transport = e["network"].get("transport")
        if e["source"].get("port") == t.probe_port or e["destination"].get("port") == t.probe_port:
            got.add(("udp", e["source"]["ip"], None, e["destination"]["ip"], t.probe_port))
        else:
            got.add(
                (
                    transport,
                    e["source"]["ip"],
                    e["source"].get("port"),
                    e["destination"]["ip"],
                    e["destination"].get("port"),
                )
            )
        assert missing_required(e, FLOWS_REQUIRED) == [], e
        assert e["source"]["mac"] and e["destination"]["mac"]
    assert got == ours  # every flow in the capture is one the test made, and all are there

    tcp = tshark_conv(t.pcap, "tcp")
    for client, sizes in zip(t.tcp_clients, (TCP_SIZES, [50]), strict=True):
        a, b = f"{host}:{client}", f"{peer}:{t.tcp_port}"
        e = flows[(a, b)]
        assert (e["source"]["packets"], e["source"]["bytes"]) == tcp[(a, b)]
        assert (e["destination"]["packets"], e["destination"]["bytes"]) == tcp[(b, a)]
        assert e["network"]["packets"] == e["source"]["packets"] + e["destination"]["packets"]
        # What the sockets carried: a 4-byte length and the message up, twice its size back.
        assert payload_bytes(t.pcap, client, t.tcp_port) == sum(4 + n for n in sizes)
        assert payload_bytes(t.pcap, t.tcp_port, client) == sum(2 * n for n in sizes)
        # Headers: 14 Ethernet + 20 IP + at least 20 TCP per packet on top of the payload.
        assert e["source"]["bytes"] >= sum(4 + n for n in sizes) + 54 * e["source"]["packets"]

    udp = tshark_conv(t.pcap, "udp")
    a, b = f"{host}:{t.udp_client}", f"{peer}:{t.udp_port}"
    e = flows[(a, b)]
    assert (e["source"]["packets"], e["source"]["bytes"]) == (len(UDP_SIZES), sum(42 + n for n in UDP_SIZES))
    assert (e["destination"]["packets"], e["destination"]["bytes"]) == (
        len(UDP_SIZES),
        sum(42 + 2 * n for n in UDP_SIZES),
    )
    assert (e["source"]["packets"], e["source"]["bytes"]) == udp[(a, b)]
    assert (e["destination"]["packets"], e["destination"]["bytes"]) == udp[(b, a)]

    icmp = tshark_conv(t.pcap, "ip", "icmp")
    e = flows[(host, peer)]
    size = 14 + 20 + 8 + PING_SIZE
    assert (e["source"]["packets"], e["source"]["bytes"]) == (PINGS, PINGS * size) == icmp[(host, peer)]
    assert (
        (e["destination"]["packets"], e["destination"]["bytes"])
        == (PINGS, PINGS * size)
        == icmp[(peer, host)]
    )
    assert e["network"]["transport"] == "icmp" and e["network"]["community_id"].startswith("1:")


def test_periodic_and_delta_reports_add_up_and_replays_agree(traffic: Traffic, tmp_path: Path) -> None:
    t = traffic
    pcap = shifted(t, tmp_path)
    finals = by_endpoints(run_cli(t, tmp_path / "a", "{timeout: 30s, period: 10s}", pcap))
    periodic = run_cli(t, tmp_path / "b", "{timeout: 30s, period: 1s}", pcap)
    again = run_cli(t, tmp_path / "c", "{timeout: 30s, period: 1s}", pcap)
    strip = [{k: v for k, v in e.items() if k not in ("agent", "host")} for e in periodic]
    assert strip == [{k: v for k, v in e.items() if k not in ("agent", "host")} for e in again]

    long_conn = (f"{t.peer.host4}:{t.tcp_clients[0]}", f"{t.peer.peer4}:{t.tcp_port}")
    reports = [e for e in periodic if (endpoint(e["source"]), endpoint(e["destination"])) == long_conn]
    # The connection lasts ~2.5s of capture time: reports on whole seconds, then the final one.
    assert len(reports) >= 3 and [e["flow"]["final"] for e in reports] == [False] * (len(reports) - 1) + [
        True
    ]
    stamps = [e["@timestamp"] for e in reports[:-1]]
    assert all(s.endswith(".000Z") for s in stamps)
    assert len(set(stamps)) == len(stamps)
    counts = [e["network"]["packets"] for e in reports]
    assert counts == sorted(counts) and reports[-1]["network"] == finals[long_conn]["network"]
    assert {e["flow"]["id"] for e in reports} == {finals[long_conn]["flow"]["id"]}

    delta = run_cli(t, tmp_path / "d", "{timeout: 30s, period: 1s, enable_delta_flow_reports: true}", pcap)
    for key, final in finals.items():
        parts = [e for e in delta if (endpoint(e["source"]), endpoint(e["destination"])) == key]
        assert parts[-1]["flow"]["final"]
        for side in ("source", "destination"):
            for counter in ("packets", "bytes"):
                total = sum(p[side].get(counter, 0) for p in parts)
                assert total == final[side].get(counter, 0), (key, side, counter)
