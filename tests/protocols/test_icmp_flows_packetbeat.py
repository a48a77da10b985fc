"""ICMP transactions and flow reports against what Packetbeat 9.3.0 emits for the same
captures (recorded in tests/data/packetbeat/ by ``tests.protocols.record_oracle``).

Every Packetbeat event must come out of wirebeat identical (after ``normalize``: agent,
host, local-address and wall-clock fields removed), except the documented differences
(docs/differences.md): fragments counted into their flow, unanswered requests published
at the end of the input, and the extra periodic reports capture time produces.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from protocols.decoder import Decoder
from protocols.flows import FlowConfig
from protocols.registry import build_plugins, default_config
from shipper.pipeline.envelope import Envelope
from tests.helpers import ROOT, shared_pcap
from tests.protocols.flow_captures import CAPTURES, icmp6_short
from tests.protocols.record_oracle import normalize

DATA = ROOT / "tests" / "data" / "packetbeat"


def run(packets: list[tuple[int, int, bytes, int]], **flow_opts: Any) -> tuple[list[dict[str, Any]], Decoder]:
    dec = Decoder(
        build_plugins({"icmp": default_config("icmp"), "http": default_config("http", ports=[80, 8080])}),
        flows=FlowConfig.from_seconds(**{"timeout": 30, "period": 10, **flow_opts}),
    )
    events: list[dict[str, Any]] = []
    for i in range(0, len(packets), 7):  # feed_many in small chunks, like the capture loops
        events += dec.feed_many(packets[i : i + 7])
    events += dec.flush()
    env = Envelope(beat_name="oracle-test")
    return [env.apply(e) for e in events], dec


def generated(name: str) -> list[tuple[int, int, bytes, int]]:
    linktype, frames = CAPTURES[name]()
    return [(ts, linktype, f, len(f)) for ts, f in frames]


def from_file(path: Path) -> list[tuple[int, int, bytes, int]]:
    return list(CaptureFile(str(path)))


def key(evt: dict[str, Any]) -> str:
    return json.dumps(normalize(evt), sort_keys=True)


def oracle(name: str) -> Counter[str]:
    lines = (DATA / f"{name}.ndjson").read_text().splitlines()
    return Counter(json.dumps(json.loads(line), sort_keys=True) for line in lines)


def compare(name: str, events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Packetbeat-only, wirebeat-only) events after normalization."""
    ours = Counter(key(e) for e in events)
    pb = oracle(name)
    return [json.loads(k) for k in (pb - ours).elements()], [json.loads(k) for k in (ours - pb).elements()]


@pytest.mark.parametrize(
    "name", ["icmp4_ping", "icmp4_ping_over_vlan", "icmp6_ping", "icmp6_ping_over_vlan", "http_over_vlan"]
)
def test_shared_captures_equal_packetbeat(name: str) -> None:
    events, _ = run(from_file(shared_pcap(name)))
    pb_only, ours_only = compare(name, events)
    assert pb_only == [] and ours_only == []
    assert len(events) == 2 and {e["type"] for e in events} == {"flow", "icmp" if "icmp" in name else "http"}


@pytest.mark.parametrize("name", ["flows_sll", "flows_null"])
def test_cooked_and_loopback_flows_equal_packetbeat(name: str) -> None:
    events, _ = run(generated(name))
    assert compare(name, events) == ([], [])


def test_icmp_messages_equal_packetbeat() -> None:
    events, dec = run(generated("icmp_misc"))
    assert compare("icmp_misc", events) == ([], [])
    assert dec.stats["icmp.malformed"] == 1  # the 4-byte ICMPv4 message
    assert dec.stats["icmp.duplicate_requests"] == 1
    assert dec.stats["icmp.unmatched_responses"] == 3


def test_flow_layers_equal_packetbeat_but_fragments_and_open_requests() -> None:
    events, dec = run(generated("flows_eth"))
    pb_only, ours_only = compare("flows_eth", events)
    # Packetbeat counts only the fragment that completes a datagram; wirebeat counts every
    # fragment into the flow of the first one (docs/differences.md, flow/fragments).
    pb_frag = {e["flow"]["id"]: e for e in pb_only}
    ours_frag = {e["flow"]["id"]: e for e in ours_only if e["type"] == "flow"}
    assert set(pb_frag) == set(ours_frag) and len(pb_frag) == 2
    udp = next(e for e in ours_frag.values() if e["network"].get("transport") == "udp")
    assert (udp["source"]["packets"], udp["source"]["bytes"]) == (3, 3110)
    assert pb_frag[udp["flow"]["id"]]["source"]["packets"] == 1
    ip_level = next(e for e in ours_frag.values() if e["network"].get("transport") != "udp")
    # Two ICMP fragments, the GRE packet and the broken TCP packet share the IP-level flow.
    assert (ip_level["source"]["packets"], ip_level["network"]["transport"]) == (4, "icmp")
    for fid, e in ours_frag.items():
        strip = {k: v for k, v in e.items() if k not in ("source", "network")}
        assert strip == {k: v for k, v in pb_frag[fid].items() if k not in ("source", "network")}
    # Unanswered echo requests are published when the input ends (Packetbeat: on expiry,
    # which never comes before it exits).
    opened = [e for e in ours_only if e["type"] == "icmp"]
    assert len(opened) == 2
    assert all(
        e["error"]["message"] == "Request was received without an associated response." for e in opened
    )
    assert "flows.fragments_without_first" not in dec.stats


def test_icmpv6_shorter_than_its_header_is_counted() -> None:
    # Packetbeat 9.3.0 panics on this packet (slice bounds out of range in the decoder).
    linktype, frames = icmp6_short()
    events, dec = run([(ts, linktype, f, len(f)) for ts, f in frames])
    assert [e["type"] for e in events] == ["flow"]
    assert dec.stats["icmp.malformed"] == 1


def test_flow_ids_are_packetbeats() -> None:
    """A few of the ids spelled out: Q-in-Q, IP-in-IP, TCP on a protocol port (connection
    ids 2 and 4; the routed reply with other MACs is its own flow with the same connection
    id), TCP on another port (no connection id), Linux cooked (no MACs)."""
    ids = {}
    for name in ("flows_eth", "flows_sll"):
        events, _ = run(generated(name))
        for e in events:
            if e["type"] == "flow":
                ip = e["source"].get("ip")
                src = tuple(ip) if isinstance(ip, list) else ip
                ids[(src, e["source"].get("port"), e["destination"].get("port"))] = e["flow"]["id"]
    assert ids[("192.168.1.1", None, None)] == "FwAADA7/EP////////8BAgEAAAAAAAoAAAAAAAtlAFgCwKgBAcCoAQI"
    assert (
        ids[(("172.16.0.1", "10.9.0.1"), 5000, 53)]
        == "GQIA//8MFP////8c//8BAAIAAAAAAAoAAAAAAAusEAABrBAAAgoJAAEKCQACiBM1AA"
    )
    assert (
        ids[("10.7.0.1", 41000, 80)] == "EQwA////DP//////FBgBAAEAAAAAAAoAAAAAAAsKBwABCgcAAiigUAACAAAAAAAAAA"
    )
    assert ids[("10.7.0.1", 41000, 8081)] == "EQQA////DP//////FP8BAAEAAAAAAAoAAAAAAAsKBwABCgcAAiigkR8"
    assert (
        ids[("10.8.0.1", 42000, 80)] == "EQwA////DP//////FBgBAAEAAAAAAAoAAAAAAAsKCAABCggAAhCkUAAEAAAAAAAAAA"
    )
    assert (
        ids[("10.8.0.2", 80, 42000)] == "EQwA////DP//////FBgBAAEAAAAAAAoAAAAAAAwKCAABCggAAhCkUAAEAAAAAAAAAA"
    )
    assert ids[("10.3.0.1", 43000, 80)] == "EAz/////AP//////CAwAAAEKAwABCgMAAvinUAABAAAAAAAAAA"


def test_documented_flow_differences() -> None:
    """flow/ipv6-extension-headers and flow/tcp-reuse (docs/differences.md)."""
    events, _ = run(generated("flows_differences"))
    pb_only, ours_only = compare("flows_differences", events)
    pb = {(e["source"]["ip"], e["network"].get("transport")): e for e in pb_only}
    ours = sorted(ours_only, key=lambda e: e["flow"]["id"])
    # Behind a destination-options header Packetbeat keys by the addresses alone.
    assert "port" not in pb[("fd03::1", None)]["source"]
    v6 = next(e for e in ours if e["source"]["ip"] == "fd03::1")
    assert (v6["source"]["port"], v6["destination"]["port"], v6["network"]["transport"]) == (
        1234,
        5678,
        "tcp",
    )
    # A new SYN after both FINs: Packetbeat counts it into the old connection's flow.
    assert pb[("10.0.0.1", "tcp")]["network"]["packets"] == 6
    reuse = [e for e in ours if e["source"]["ip"] == "10.0.0.1"]
    assert [e["network"]["packets"] for e in reuse] == [4, 2]
    assert reuse[0]["flow"]["id"] == pb[("10.0.0.1", "tcp")]["flow"]["id"]  # connection 1 as Packetbeat's
    assert reuse[0]["flow"]["id"] != reuse[1]["flow"]["id"]
