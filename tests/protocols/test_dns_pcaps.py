"""The shared captures with DNS in them give exactly what Packetbeat 9.3 gives.

``tests/data/dns/shared/<capture>.json`` holds Packetbeat's events (recorded by
gen_dns_oracle.py with include_authorities, include_additionals, send_request and
send_response on); every field must match. A few events are also spelled out here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shipper.pipeline.envelope import Envelope
from shipper.setup.fields import check_event, load_fields
from tests.helpers import decode_file, shared_pcap
from tests.protocols.dns_oracle import DATA, OPTIONS, SHARED_CAPTURES, strip

FIELDS = load_fields()


def decode(name: str, **opts: Any) -> list[dict[str, Any]]:
    env = Envelope(beat_name="dns-pcaps")
    out = []
    for evt in decode_file(shared_pcap(name), {"dns": {"ports": [53], **opts}}):
        env.apply(evt)
        assert not check_event(evt, FIELDS)
        out.append(strip(json.loads(json.dumps(evt))))
    return out


@pytest.mark.parametrize("name", SHARED_CAPTURES)
def test_every_field_as_packetbeat(name: str) -> None:
    expected = json.loads((DATA / "shared" / f"{name}.json").read_text())
    got = decode(name, **OPTIONS)
    assert got == expected


def test_edns_dnssec_field_by_field() -> None:
    (evt,) = decode("dns_udp_edns_ds")
    assert evt["@timestamp"] == "2013-01-23T02:48:51.102Z"
    assert evt["event"]["duration"] == 69_167_000
    assert evt["source"] == {"ip": "172.16.1.199", "port": 51634, "bytes": 37}
    assert evt["destination"] == {"ip": "75.75.75.75", "port": 53, "bytes": 284}
    assert evt["network"] == {
        "transport": "udp",
        "protocol": "dns",
        "bytes": 321,
        "community_id": "1:B1ESDYl2EK6/RQvtfyTS/L+QUTw=",
        "type": "ipv4",
        "direction": "unknown",
    }
    assert (evt["method"], evt["query"], evt["resource"], evt["status"]) == (
        "QUERY",
        "class IN, type DS, ietf.org",
        "ietf.org",
        "OK",
    )
    dns = evt["dns"]
    assert dns["header_flags"] == ["RD", "RA", "AD", "DO"]
    assert dns["opt"] == {"do": True, "version": "0", "udp_size": 4000, "ext_rcode": "NOERROR"}
    assert dns["question"] == {
        "name": "ietf.org",
        "type": "DS",
        "class": "IN",
        "etld_plus_one": "ietf.org",
        "registered_domain": "ietf.org",
        "top_level_domain": "org",
    }
    assert (dns["answers_count"], dns["authorities_count"], dns["additionals_count"]) == (3, 0, 0)
    ds, _, rrsig = dns["answers"]
    assert ds == {
        "name": "ietf.org",
        "type": "DS",
        "class": "IN",
        "ttl": "291",
        "key_tag": "45586",
        "algorithm": "RSASHA1",
        "digest_type": "SHA256",
        "data": "67FCD7E0B9E0366309F3B6F7476DFF931D5226EDC5348CD80FD82A081DFCF6EE",
    }
    assert rrsig["type_covered"] == "DS"
    assert rrsig["algorithm"] == "RSASHA1-NSEC3-SHA1"
    assert (rrsig["labels"], rrsig["original_ttl"], rrsig["key_tag"]) == ("2", "86400", "41790")
    assert (rrsig["expiration"], rrsig["inception"]) == ("20130207154924", "20130117144924")
    assert rrsig["signer_name"] == "org"
    assert rrsig["data"].startswith("CzRzHX/bMNu+YcYeo1BJJ1WIF6M9v6lM")


def test_tcp_axfr_field_by_field() -> None:
    (evt,) = decode("dns_tcp_axfr", send_request=True, send_response=True)
    assert evt["network"]["transport"] == "tcp"
    assert evt["network"]["community_id"] == "1:d2CjEdZBFJgieI3mD5ov3hvYp8I="
    assert evt["source"]["bytes"] == 30 and evt["destination"]["bytes"] == 197  # with the length prefixes
    assert evt["query"] == "class IN, type AXFR, etas.com"
    assert evt["dns"]["answers_count"] == 4
    soa = evt["dns"]["answers"][0]
    assert soa == {
        "name": "etas.com",
        "type": "SOA",
        "class": "IN",
        "ttl": "3600",
        "data": "training2003p",
        "rname": "hostmaster",
        "serial": 3,
        "refresh": 60,
        "retry": 600,
        "expire": 86400,
        "minimum": 3600,
    }
    assert (
        evt["request"]
        == "ID 0; QR query; OPCODE QUERY; FLAGS ; RCODE NOERROR; QUESTION class IN, type AXFR, etas.com"
    )
    assert evt["response"] == (
        "ID 0; QR response; OPCODE QUERY; FLAGS ra; RCODE NOERROR; QUESTION class IN, type AXFR, etas.com; "
        "ANSWER rname hostmaster, training2003p; training2003p; 1.1.1.1; rname hostmaster, training2003p"
    )


def test_include_options_default_off() -> None:
    """Packetbeat's code defaults: the sections' records only with include_*."""
    (evt,) = decode("dns_additional")
    dns = evt["dns"]
    assert (dns["answers_count"], dns["authorities_count"], dns["additionals_count"]) == (1, 5, 1)
    assert "authorities" not in dns and "additionals" not in dns
    assert "request" not in evt and "response" not in evt
    (evt,) = decode("dns_additional", include_authorities=True, include_additionals=True)
    assert [a["data"] for a in evt["dns"]["authorities"]] == [
        "ns.pop-hannover.de",
        "ns.heise.de",
        "ns.plusline.de",
        "ns2.pop-hannover.net",
        "ns.s.plusline.de",
    ]
    assert evt["dns"]["additionals"] == [
        {"name": "ns.heise.de", "type": "A", "class": "IN", "ttl": "1298", "data": "193.99.145.37"}
    ]
    assert evt["related"]["ip"] == ["192.168.238.68", "192.168.238.1", "193.99.144.80"]
    assert evt["dns"]["resolved_ip"] == ["193.99.144.80"]


def test_community_id_matches_packetbeat_for_udp_and_tcp() -> None:
    expected = {
        name: json.loads((DATA / "shared" / f"{name}.json").read_text())[0]["network"]["community_id"]
        for name in ("dns_txt", "dns_tcp_axfr", "http_basicauth")
    }
    assert {name: decode(name)[0]["network"]["community_id"] for name in expected} == expected
