"""The field definitions are the one source of truth: every field any decoder emits is
defined there with the right type (checked over every shared capture, every protocol)."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from protocols.registry import available, plugin_class
from shipper.pipeline.envelope import Envelope
from shipper.setup.fields import (
    FieldsError,
    check_event,
    field_files,
    fields_markdown,
    flatten,
    load_fields,
    protocols_dir,
)
from tests.helpers import SHARED_PCAPS, beats_pcap, decode_file, need

FIELDS = load_fields()
#: Packetbeat's own test captures (read from the beats module) for protocols that no shared
#: capture has.
BEATS_CAPTURES = ("dhcp",)


def test_every_available_protocol_declares_its_fields() -> None:
    names = {p.parent.name for p in field_files()}
    assert "common" in names
    missing = [p for p in available() if p not in names]
    assert not missing, f"protocols without protocols/<name>/fields.yml: {missing}"


def test_common_fields_have_ecs_types() -> None:
    expect = {
        "@timestamp": "date",
        "source.ip": "ip",
        "destination.ip": "ip",
        "client.ip": "ip",
        "server.ip": "ip",
        "source.port": "long",
        "source.bytes": "long",
        "network.bytes": "long",
        "network.community_id": "keyword",
        "network.forwarded_ip": "ip",
        "event.duration": "long",
        "event.start": "date",
        "event.end": "date",
        "event.category": "keyword",
        "related.ip": "ip",
        "url.full": "wildcard",
        "url.path": "wildcard",
        "url.port": "long",
        "error.message": "match_only_text",
        "user_agent.original": "keyword",
        "agent.version": "keyword",
        "host.ip": "ip",
        "type": "keyword",
        "status": "keyword",
        "method": "keyword",
        "query": "keyword",
        "request": "text",
        "flow.id": "keyword",
        "flow.final": "boolean",
        "flow.vlan": "long",
        "source.packets": "long",
        "network.packets": "long",
        "source.mac": "keyword",
    }
    got = {k: FIELDS.fields[k].type for k in expect}
    assert got == expect
    assert FIELDS.fields["http.request.headers"].object_type == "keyword"
    assert FIELDS.fields["user_agent.original"].multi_fields == (("text", "match_only_text"),)
    assert (
        FIELDS.fields["bytes_in"].type == "alias" and FIELDS.fields["bytes_in"].alias_path == "source.bytes"
    )


def test_conflicting_redefinition_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "fields.yml"
    bad.write_text("- key: x\n  fields:\n    - name: source.ip\n      type: keyword\n")
    with pytest.raises(FieldsError, match=r"source\.ip"):
        load_fields([*field_files(), bad])
    same = tmp_path / "same.yml"
    same.write_text(
        "- key: x\n  fields:\n    - name: source\n      type: group\n"
        "      fields:\n        - name: ip\n          type: ip\n"
    )
    assert load_fields([*field_files(), same]).fields["source.ip"].type == "ip"


def test_dangling_alias_and_leaf_group_clash_are_errors(tmp_path: Path) -> None:
    a = tmp_path / "a.yml"
    a.write_text("- key: x\n  fields:\n    - name: old\n      type: alias\n      path: no.such.field\n")
    with pytest.raises(FieldsError, match="alias"):
        load_fields([a])
    b = tmp_path / "b.yml"
    b.write_text("- key: x\n  fields:\n    - name: a\n      type: long\n    - name: a.b\n      type: long\n")
    with pytest.raises(FieldsError, match="group"):
        load_fields([b])
    c = tmp_path / "c.yml"
    c.write_text("- key: x\n  fields:\n    - name: a\n      type: strnig\n")
    with pytest.raises(FieldsError, match="unknown type"):
        load_fields([c])


def test_a_new_protocol_file_is_picked_up(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "fields.yml").write_text((protocols_dir() / "common" / "fields.yml").read_text())
    (tmp_path / "newproto").mkdir()
    (tmp_path / "newproto" / "fields.yml").write_text(
        "- key: newproto\n  fields:\n    - name: newproto\n      type: group\n      fields:\n"
        "        - name: latency\n          type: long\n"
    )
    files = field_files(tmp_path)
    assert [f.parent.name for f in files] == ["common", "newproto"]
    assert load_fields(files).fields["newproto.latency"].type == "long"


def test_schema_check_catches_wrong_types() -> None:
    evt = {
        "@timestamp": "2024-01-01T00:00:00.000Z",
        "@metadata": {"beat": "packetbeat"},
        "source": {"ip": "not-an-ip", "port": "80"},
        "event": {"duration": 1.5, "start": "yesterday"},
        "nosuch": {"field": 1},
        "bytes_in": 10,
        "status": 200,
        "http": {"request": {"headers": {"content-length": 3, "x-a": "b", "bad": None}}},
        "related": {"ip": ["1.2.3.4", "x"]},
    }
    problems = "\n".join(check_event(evt, FIELDS))
    for needle in (
        "source.ip: ip expected",
        "source.port: long expected",
        "event.duration: long expected",
        "event.start: date expected",
        "nosuch: not defined",
        "bytes_in: is an alias",
        "status: keyword expected",
        "http.request.headers.bad",
        "related.ip: ip expected, got str 'x'",
    ):
        assert needle in problems
    assert "content-length" not in problems and "x-a" not in problems
    assert len(check_event({"@timestamp": "2024-01-01T00:00:00.123456789Z", "tags": ["a"]}, FIELDS)) == 0


def _ports(path: Path) -> list[int]:
    """Every TCP/UDP port in a capture (Ethernet, SLL, Null/loopback; VLAN tags; v4/v6)."""
    ports: set[int] = set()
    for _ts, lt, frame, _wl in CaptureFile(str(path)):
        off = {1: 12, 113: 14, 0: -1, 108: -1}.get(lt)
        if off is None:
            continue
        if off < 0:
            if len(frame) < 4:
                continue
            fam = struct.unpack("<I", frame[:4])[0] if lt == 0 else struct.unpack(">I", frame[:4])[0]
            etype = 0x0800 if fam == 2 else 0x86DD
            p = 4
        else:
            etype = struct.unpack(">H", frame[off : off + 2])[0]
            p = off + 2
            while etype in (0x8100, 0x88A8) and len(frame) >= p + 4:
                etype = struct.unpack(">H", frame[p + 2 : p + 4])[0]
                p += 4
        if etype == 0x0800 and len(frame) > p + 20:
            proto, ihl = frame[p + 9], (frame[p] & 0x0F) * 4
            t = p + ihl
        elif etype == 0x86DD and len(frame) > p + 40:
            proto, t = frame[p + 6], p + 40
        else:
            continue
        if proto in (6, 17) and len(frame) >= t + 4:
            sport, dport = struct.unpack(">HH", frame[t : t + 4])
            ports.update(x for x in (sport, dport) if x)
    return sorted(ports)


def _envelope() -> Envelope:
    return Envelope(
        beat_name="fields-test",
        local_ips=["192.168.1.10"],
        internal_networks=["private"],
        agent_id="00000000-0000-0000-0000-000000000000",
        ephemeral_id="11111111-1111-1111-1111-111111111111",
        host={
            "name": "fields-test",
            "hostname": "h",
            "ip": ["10.1.1.1"],
            "mac": ["00-11-22-33-44-55"],
            "os": {"type": "linux", "name": "Debian", "kernel": "6.1"},
            "architecture": "x86_64",
        },
        fields={"env": "test"},
        tags=["t1"],
    )


def _options(proto: str) -> dict[str, Any]:
    """Permissive protocol options: raw request/response and everything optional switched on."""
    opts: dict[str, Any] = {"send_request": True, "send_response": True}
    if proto == "http":
        opts.update(
            send_all_headers=True,
            include_body_for=["text", "json", "x-www-form-urlencoded", "html"],
            real_ip_header="x-forwarded-for",
        )
    return opts


def test_every_emitted_field_is_defined_with_its_type() -> None:
    """Every capture × every available protocol (listening on every port the capture uses)."""
    pcaps = sorted(SHARED_PCAPS.glob("*.pcap"))
    if not pcaps:
        need(f"shared captures in {SHARED_PCAPS}")
    pcaps += [beats_pcap(name) for name in BEATS_CAPTURES]
    env = _envelope()
    problems: Counter[str] = Counter()
    events_by_proto: Counter[str] = Counter()
    fields_seen: set[str] = set()
    for pcap in pcaps:
        ports = [p for p in _ports(pcap) if p < 65536]
        for proto in available():
            portless = not plugin_class(proto).transports  # icmp
            if not ports and not portless:
                continue
            opts = _options(proto) if portless else {"ports": ports, **_options(proto)}
            events = decode_file(pcap, {proto: opts})
            for evt in events:
                env.apply(evt)
                events_by_proto[proto] += 1
                fields_seen.update(flatten({k: v for k, v in evt.items() if k != "@metadata"}))
                for p in check_event(evt, FIELDS):
                    problems[f"{proto} ({pcap.name}): {p.split(' (value')[0]}"] += 1
    assert not problems, "\n".join(f"{n}x {p}" for p, n in problems.most_common(40))
    for proto in available():
        assert events_by_proto[proto] > 0, f"no capture produced a {proto} event"
    # The check really walked the interesting parts.
    for f in ("source.ip", "event.duration", "network.community_id", "http.response.status_code", "url.full"):
        assert f in fields_seen


def test_every_flow_field_is_defined_with_its_type() -> None:
    """Flow reports (periodic and final) of every shared capture, flows keyed every way."""
    from protocols.decoder import Decoder
    from protocols.flows import FlowConfig

    pcaps = sorted(SHARED_PCAPS.glob("*.pcap"))
    if not pcaps:
        need(f"shared captures in {SHARED_PCAPS}")
    env = _envelope()
    problems: Counter[str] = Counter()
    seen: set[str] = set()
    for pcap in pcaps:
        for delta in (False, True):
            dec = Decoder([], flows=FlowConfig.from_seconds(1, 1, delta=delta))
            events = []
            for ts, lt, frame, wl in CaptureFile(str(pcap)):
                events += dec.feed_many([(ts, lt, frame, wl)])
            events += dec.flush()
            for evt in events:
                env.apply(evt)
                seen.update(flatten({k: v for k, v in evt.items() if k != "@metadata"}))
                for p in check_event(evt, FIELDS):
                    problems[f"flow ({pcap.name}): {p.split(' (value')[0]}"] += 1
    assert not problems, "\n".join(f"{n}x {p}" for p, n in problems.most_common(40))
    for f in ("flow.id", "flow.final", "flow.vlan", "source.mac", "source.packets", "destination.bytes"):
        assert f in seen
    assert {"network.packets", "network.community_id", "event.duration", "event.action"} <= seen


def test_required_fields_are_present_in_events() -> None:
    env = _envelope()
    events = decode_file(SHARED_PCAPS / "http_minitwit.pcap", {"http": {"ports": [80]}})
    assert events
    required = [f.path for f in FIELDS if f.required]
    assert "@timestamp" in required and "type" in required
    for evt in events:
        flat = flatten(env.apply(evt))
        missing = [r for r in required if r not in flat]
        assert not missing


def test_fields_docs_list_every_field() -> None:
    doc = fields_markdown(FIELDS)
    for f in FIELDS:
        assert f"`{f.path}`" in doc
