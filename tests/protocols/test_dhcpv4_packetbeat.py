"""DHCPv4 events against Packetbeat 9.3's, field for field.

Packetbeat's own capture (``dhcp.pcap`` of its system test 0066, read from the beats module)
must give exactly the events written out below. ``tests/data/dhcpv4/cases.pcap`` (made by
``tests/protocols/dhcpv4_cases.py``: every message type, every option Packetbeat reads, and
the corners of its DHCP library) must give the events Packetbeat 9.3.0 wrote for it
(``cases.packetbeat.ndjson``), except the deliberate differences listed per message here, each
documented in ``docs/differences.md`` (DHCPv4).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import defaultdict
from typing import Any

from shipper.pipeline.envelope import Envelope
from shipper.setup.fields import check_event, load_fields
from tests.helpers import ROOT, beats_pcap, decode_file
from tests.protocols.dhcpv4_cases import CASES, DATA, XIDS

IGNORED = ("agent.", "host.", "ecs.", "@metadata.version")
MISSING = "<missing>"
CASE_OF = {f"0x{x:08x}": name for name, x in XIDS.items()}

#: (case, index among Packetbeat's events of the case) → field glob → slug.
ALLOWED: dict[tuple[str, int], dict[str, str]] = {
    ("value-errors", 0): {"dhcpv4.option.*": "option-values"},
    ("value-errors", 1): {"dhcpv4.option.*": "option-values"},
    ("value-errors", 2): {"dhcpv4.option.*": "option-values"},
    ("value-errors", 3): {"dhcpv4.option.*": "option-values"},
    ("value-errors", 4): {"dhcpv4.option.subnet_mask": "subnet-mask-length"},
    ("overload", 0): {
        "dhcpv4.server_name": "option-overload",
        "dhcpv4.boot_file_name": "option-overload",
        "dhcpv4.option.*": "option-overload",
    },
    ("overload", 1): {"dhcpv4.boot_file_name": "option-overload", "dhcpv4.option.*": "option-overload"},
    ("overload", 2): {
        "dhcpv4.server_name": "option-overload",
        "dhcpv4.option.option_overload": "option-overload",
    },
    ("overload", 5): {"dhcpv4.option.option_overload": "option-overload"},
}
#: Events only wirebeat publishes: (case, index among wirebeat's events of the case) → slug.
EXTRA: dict[tuple[str, int], str] = {
    ("vendor-identifying", 1): "vendor-identifying-option",
    ("vendor-identifying", 2): "vendor-identifying-option",
}


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def wirebeat_raw(pcap: Any) -> list[dict[str, Any]]:
    env = Envelope(beat_name="test")
    return [env.apply(e) for e in decode_file(pcap, {"dhcpv4": {}})]


def wirebeat(pcap: Any) -> list[dict[str, Any]]:
    # Through JSON, as an output would write it.
    return [flat(json.loads(json.dumps(e, default=str))) for e in wirebeat_raw(pcap)]


def by_case(events: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    seen: dict[str, int] = defaultdict(int)
    out = {}
    for e in events:
        case = CASE_OF[e["dhcpv4.transaction_id"]]
        out[(case, seen[case])] = e
        seen[case] += 1
    return out


def diff(pb: dict[str, Any], wb: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        k: (pb.get(k, MISSING), wb.get(k, MISSING))
        for k in sorted(set(pb) | set(wb))
        if not k.startswith(IGNORED) and pb.get(k, MISSING) != wb.get(k, MISSING)
    }


def test_cases_match_packetbeat() -> None:
    lines = (DATA / "cases.packetbeat.ndjson").read_text().splitlines()
    pb = by_case([flat(json.loads(line)) for line in lines if line.strip()])
    wb_all = wirebeat(DATA / "cases.pcap")
    wb_only = {k for k in by_case(wb_all) if k in EXTRA}
    assert wb_only == set(EXTRA)
    seen: dict[str, int] = defaultdict(int)
    kept = []
    for e in wb_all:  # wirebeat's events without the extra ones, renumbered
        case = CASE_OF[e["dhcpv4.transaction_id"]]
        if (case, seen[case]) not in EXTRA:
            kept.append(e)
        seen[case] += 1
    wb = by_case(kept)
    assert set(wb) == set(pb), set(wb) ^ set(pb)
    assert {c for c, _ in pb} == set(CASES)
    checked = 0
    for key, expected in pb.items():
        allowed = ALLOWED.get(key, {})
        d = diff(expected, wb[key])
        bad = {f: v for f, v in d.items() if not any(fnmatch.fnmatchcase(f, g) for g in allowed)}
        assert not bad, (key, bad)
        checked += len(expected)
    assert len(pb) == 51
    assert checked > 1700


def test_every_difference_is_documented() -> None:
    text = (ROOT / "docs" / "differences.md").read_text()
    slugs = set(re.findall(r"^### dhcpv4/([a-z0-9-]+)$", text, re.M))
    used = set(EXTRA.values()) | {s for per in ALLOWED.values() for s in per.values()}
    assert used <= slugs
    assert slugs - used == {"packetbeat-crashes"}  # tested in test_dhcpv4_unit.py


def test_every_field_is_defined() -> None:
    fields = load_fields()
    problems = []
    events = wirebeat_raw(DATA / "cases.pcap") + wirebeat_raw(beats_pcap("dhcp"))
    for evt in events:
        problems += check_event(evt, fields)
    assert not problems, problems[:20]
    assert len(events) == 57


# -- Packetbeat's dhcp.pcap (system test 0066): Packetbeat 9.3's events, written out ---------

_COMMON = {
    "type": "dhcpv4",
    "status": "OK",
    "event.category": ["network"],
    "event.dataset": "dhcpv4",
    "event.kind": "event",
    "event.type": ["connection", "protocol"],
    "network.direction": "unknown",
    "network.protocol": "dhcpv4",
    "network.transport": "udp",
    "network.type": "ipv4",
    "dhcpv4.client_mac": "00-0B-82-01-FC-42",
    "dhcpv4.flags": "unicast",
    "dhcpv4.hardware_type": "Ethernet",
    "dhcpv4.hops": 0,
    "dhcpv4.seconds": 0,
    "@metadata.beat": "packetbeat",
    "@metadata.type": "_doc",
}
_PRL = ["Subnet Mask", "Router", "Domain Name Server", "NTP Servers"]


def _request(ts: str, xid: str, **options: Any) -> dict[str, Any]:
    return {
        **_COMMON,
        "@timestamp": ts,
        "event.start": ts,
        "source.ip": "0.0.0.0",
        "source.port": 68,
        "source.bytes": 272,
        "client.ip": "0.0.0.0",
        "client.port": 68,
        "client.bytes": 272,
        "destination.ip": "255.255.255.255",
        "destination.port": 67,
        "server.ip": "255.255.255.255",
        "server.port": 67,
        "network.bytes": 272,
        "network.community_id": "1:t9O1j0qj71O4wJM7gnaHtgmfev8=",
        "related.ip": ["0.0.0.0", "255.255.255.255"],
        "dhcpv4.op_code": "bootrequest",
        "dhcpv4.transaction_id": xid,
        "dhcpv4.option.parameter_request_list": _PRL,
        **{f"dhcpv4.option.{k}": v for k, v in options.items()},
    }


def _reply(ts: str, xid: str, message_type: str) -> dict[str, Any]:
    return {
        **_COMMON,
        "@timestamp": ts,
        "event.start": ts,
        "source.ip": "192.168.0.1",
        "source.port": 67,
        "source.bytes": 300,
        "server.ip": "192.168.0.1",
        "server.port": 67,
        "server.bytes": 300,
        "destination.ip": "192.168.0.10",
        "destination.port": 68,
        "client.ip": "192.168.0.10",
        "client.port": 68,
        "network.bytes": 300,
        "network.community_id": "1:VbRSZnvQqvLiQRhYHLrdVI17sLQ=",
        "related.ip": ["192.168.0.1", "192.168.0.10"],
        "dhcpv4.op_code": "bootreply",
        "dhcpv4.transaction_id": xid,
        "dhcpv4.assigned_ip": "192.168.0.10",
        "dhcpv4.option.message_type": message_type,
        "dhcpv4.option.server_identifier": "192.168.0.1",
        "dhcpv4.option.subnet_mask": "255.255.255.0",
        "dhcpv4.option.ip_address_lease_time_sec": 3600,
        "dhcpv4.option.renewal_time_sec": 1800,
        "dhcpv4.option.rebinding_time_sec": 3150,
    }


DHCP_PCAP = [
    _request(
        "2004-12-05T19:16:24.317Z", "0x00003d1d", message_type="discover", requested_ip_address="0.0.0.0"
    ),
    _reply("2004-12-05T19:16:24.317Z", "0x00003d1d", "offer"),
    _request(
        "2004-12-05T19:16:24.387Z",
        "0x00003d1e",
        message_type="request",
        requested_ip_address="192.168.0.10",
        server_identifier="192.168.0.1",
    ),
    _reply("2004-12-05T19:16:24.387Z", "0x00003d1e", "ack"),
]


def test_packetbeat_dhcp_pcap() -> None:
    got = [{k: v for k, v in e.items() if not k.startswith(IGNORED)} for e in wirebeat(beats_pcap("dhcp"))]
    assert got == DHCP_PCAP
