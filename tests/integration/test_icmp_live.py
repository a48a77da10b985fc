"""Live ICMP: iputils ping (v4 and v6) and a real kernel's port unreachable, captured on a
veth into a network namespace.

Every ICMP event is checked against what ping really did: one per echo request, the
sequence numbers in order, answered or not (per ping's own output), the round-trip time
close to the one ping measured, the sizes of what was sent."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from protocols.icmp.transactions import ORPHANED_REQUEST
from shipper.pipeline.envelope import Envelope
from tests.helpers import free_port, make_decoder, need_tool
from tests.integration.netns import Peer, capture, drop_echo_replies, dual_stack_peer
from tests.live_helpers import need_capture
from tests.oracle.recordings import record_for_oracle

pytestmark = pytest.mark.integration

NS = 1_000_000_000
_REPLY = re.compile(r"icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms")


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    need_capture()
    need_tool("ping")
    with dual_stack_peer() as p:
        yield p


def ping(addr: str, count: int, size: int = 56) -> tuple[int, dict[int, float]]:
    """Run ping; (exit code, {icmp_seq: rtt in ms} of the replies it got)."""
    exe = need_tool("ping")
    r = subprocess.run(
        [exe, "-n", "-c", str(count), "-i", "0.2", "-W", "1", "-s", str(size), addr],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return r.returncode, {int(m.group(1)): float(m.group(2)) for m in _REPLY.finditer(r.stdout)}


def decode(path: Path, **icmp: Any) -> list[dict[str, Any]]:
    dec = make_decoder({"icmp": icmp})
    events = []
    for ts, lt, frame, wl in CaptureFile(str(path)):
        events += dec.feed_many([(ts, lt, frame, wl)])
    events += dec.flush()
    env = Envelope(beat_name="icmp-live")
    return [env.apply(e) for e in events]


def echoes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Echo transactions; everything else must be IPv6 housekeeping (MLD, neighbour or
    router discovery the kernel may send on its own)."""
    out = []
    for e in events:
        req = e["icmp"].get("request") or e["icmp"]["response"]
        if req["type"] in (0, 8, 128, 129):
            out.append(e)
        else:
            assert e["icmp"]["version"] == 6 and req["type"] in (130, 131, 133, 134, 135, 136, 143), e
    return out


@pytest.mark.parametrize("family", [4, 6])
def test_answered_pings(tmp_path: Path, peer: Peer, family: int) -> None:
    src, dst = (peer.host4, peer.peer4) if family == 4 else (peer.host6, peer.peer6)
    pcap = tmp_path / "ping.pcap"
    with capture(peer, pcap, "icmp or icmp6", free_port()):
        rc, replies = ping(dst, 5, size=100)
    assert rc == 0 and sorted(replies) == [1, 2, 3, 4, 5]
    record_for_oracle(pcap, [{"type": "icmp"}], label=f"icmp-ping-v{family}")
    got = echoes(decode(pcap))
    assert len(got) == 5
    assert [e["@timestamp"] for e in got] == sorted(e["@timestamp"] for e in got)
    for seq, e in enumerate(got, 1):
        assert e["status"] == "OK" and "error" not in e
        assert (e["source"]["ip"], e["destination"]["ip"], e["path"]) == (src, dst, dst)
        assert e["icmp"]["version"] == family
        assert e["icmp"]["request"]["type"] == (8 if family == 4 else 128)
        assert e["icmp"]["response"]["type"] == (0 if family == 4 else 129)
        # ping -s 100: 100 data bytes after the 8-byte header, both ways.
        assert (e["source"]["bytes"], e["destination"]["bytes"]) == (100, 100)
        assert e["network"]["transport"] == ("icmp" if family == 4 else "ipv6-icmp")
        assert e["network"]["community_id"].startswith("1:")
        # The capture sees the exchange inside ping's own measurement (plus slack for the
        # two clocks reading at different moments).
        rtt_ms = replies[seq]
        assert 0 < e["event"]["duration"] <= (rtt_ms + 5) * 1e6, (seq, e["event"]["duration"], rtt_ms)


@pytest.mark.parametrize("family", [4, 6])
def test_unanswered_pings(tmp_path: Path, peer: Peer, family: int) -> None:
    src, dst = (peer.host4, peer.peer4) if family == 4 else (peer.host6, peer.peer6)
    pcap = tmp_path / "lost.pcap"
    with drop_echo_replies(peer), capture(peer, pcap, "icmp or icmp6", free_port()):
        rc, replies = ping(dst, 3)
    assert rc == 1 and replies == {}
    record_for_oracle(pcap, [{"type": "icmp"}], label=f"icmp-unanswered-v{family}")
    # 0.2s between pings and a 0.3s timeout: the first two expire while the capture runs
    # (capture time), the last one when the input ends.
    got = echoes(decode(pcap, transaction_timeout=0.3))
    assert len(got) == 3
    for e in got:
        assert e["status"] == "Error" and e["error"]["message"] == ORPHANED_REQUEST
        assert "response" not in e["icmp"] and "end" not in e["event"] and "duration" not in e["event"]
        assert (e["source"]["ip"], e["destination"]["ip"], e["source"]["bytes"]) == (src, dst, 56)
    starts = [e["@timestamp"] for e in got]
    assert starts == sorted(starts)


@pytest.mark.parametrize("family", [4, 6])
def test_port_unreachable_from_a_real_kernel(tmp_path: Path, peer: Peer, family: int) -> None:
    dst = peer.peer4 if family == 4 else peer.peer6
    closed = free_port()
    payload = b"is anybody there?"
    pcap = tmp_path / "unreach.pcap"
    family_ = socket.AF_INET if family == 4 else socket.AF_INET6
    with capture(peer, pcap, "icmp or icmp6", free_port()), socket.socket(family_, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.connect((dst, closed))
        s.send(payload)
        with pytest.raises(ConnectionRefusedError):  # the kernel's answer reached us
            s.recv(100)
    record_for_oracle(pcap, [{"type": "icmp"}], label=f"icmp-unreachable-v{family}")
    got = [e for e in decode(pcap) if e["icmp"]["request"]["type"] not in (130, 131, 133, 134, 135, 136, 143)]
    (e,) = got
    assert e["status"] == "Error" and "response" not in e["icmp"] and "error" not in e
    assert e["source"]["ip"] == dst and e["path"] == (peer.host4 if family == 4 else peer.host6)
    if family == 4:
        assert e["icmp"]["request"] == {"message": "DestinationUnreachable(Port)", "type": 3, "code": 3}
        assert e["source"]["bytes"] == 20 + 8 + len(payload)  # the datagram it refused
    else:
        assert e["icmp"]["request"] == {
            "message": "DestinationUnreachable(PortUnreachable)",
            "type": 1,
            "code": 4,
        }
        assert e["source"]["bytes"] == 40 + 8 + len(payload)


def test_live_run_with_flows_and_icmp(tmp_path: Path, peer: Peer) -> None:
    """``wirebeat run`` on the host end of the veth (af_packet): the capture filter is empty
    with flows on, the pings come out as transactions, their flow as a final report at
    shutdown with one packet per echo each way."""
    from tests.live_helpers import LiveBeat, live_config

    cfg = live_config(tmp_path, kind="af_packet", ports=[free_port()], device=peer.host_if)
    cfg["packetbeat.protocols"] = [{"type": "icmp"}]
    cfg["packetbeat.flows"] = {"timeout": "30s", "period": "10s"}
    with LiveBeat(tmp_path, cfg) as beat:
        rc, replies = ping(peer.peer4, 3)
        assert rc == 0 and len(replies) == 3
        assert beat.stop() == 0, beat.stderr()
    assert any("filter ''" in line for line in beat.lines), beat.stderr()
    events = beat.events()
    got = [e for e in events if e["type"] == "icmp" and e["icmp"]["request"]["type"] == 8]
    assert len(got) == 3 and all(e["status"] == "OK" for e in got)
    (flow,) = [
        e
        for e in events
        if e["type"] == "flow"
        and e["source"].get("ip") == peer.host4
        and e["destination"].get("ip") == peer.peer4
    ]
    assert flow["flow"]["final"] and flow["network"]["transport"] == "icmp"
    assert (flow["source"]["packets"], flow["destination"]["packets"]) == (3, 3)
    assert flow["source"]["bytes"] == 3 * (14 + 20 + 8 + 56)
