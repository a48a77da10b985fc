"""ICMP: message names, pairing, expiry on capture time, bounds, decoder paths."""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

from protocols.decoder import Decoder
from protocols.icmp.parser import message_name
from protocols.icmp.transactions import DUPLICATE_REQUEST, ORPHANED_REQUEST, ORPHANED_RESPONSE
from protocols.registry import Registry, build_plugins, default_config

S = 1_000_000_000
T0 = 1_700_000_000 * S


def decoder(**opts: Any) -> Decoder:
    return Decoder(build_plugins({"icmp": default_config("icmp", **opts)}))


def frame(p: Packet) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / p)


def echo(src: str, dst: str, typ: int, ident: int = 1, seq: int = 1, data: bytes = b"p" * 56) -> bytes:
    return frame(IP(src=src, dst=dst) / ICMP(type=typ, id=ident, seq=seq) / Raw(data))


@pytest.mark.parametrize(
    ("version", "typ", "code", "name"),
    [
        (4, 8, 0, "EchoRequest"),
        (4, 0, 0, "EchoReply"),
        (4, 3, 3, "DestinationUnreachable(Port)"),
        (4, 3, 13, "DestinationUnreachable(CommAdminProhibited)"),
        (4, 3, 99, "DestinationUnreachable(Code: 99)"),
        (4, 5, 2, "Redirect(TOS+Net)"),
        (4, 8, 3, "EchoRequest(Code: 3)"),
        (4, 11, 0, "TimeExceeded(TTLExceeded)"),
        (4, 12, 1, "ParameterProblem(MissingOption)"),
        (4, 17, 0, "AddressMaskRequest"),
        (4, 42, 7, "42(7)"),
        (6, 1, 4, "DestinationUnreachable(PortUnreachable)"),
        (6, 2, 0, "PacketTooBig"),
        (6, 3, 0, "TimeExceeded(HopLimitExceeded)"),
        (6, 4, 2, "ParameterProblem(UnrecognizedIPv6Option)"),
        (6, 128, 0, "EchoRequest"),
        (6, 135, 0, "NeighborSolicitation"),
        (6, 137, 1, "Redirect(Code: 1)"),
        (6, 143, 0, "143(0)"),
    ],
)
def test_message_names_are_gopackets(version: int, typ: int, code: int, name: str) -> None:
    assert message_name(version, typ, code) == name


def test_echo_pair_v4_and_v6() -> None:
    dec = decoder()
    out = dec.feed(T0, 1, echo("10.0.0.1", "10.0.0.2", 8, data=b"x" * 56))
    assert out == []
    (evt,) = dec.feed(T0 + 1_500_000, 1, echo("10.0.0.2", "10.0.0.1", 0, data=b"x" * 56))
    assert evt["status"] == "OK" and evt["path"] == "10.0.0.2" and evt["@timestamp"] == T0
    assert evt["icmp"] == {
        "version": 4,
        "request": {"message": "EchoRequest", "type": 8, "code": 0},
        "response": {"message": "EchoReply", "type": 0, "code": 0},
    }
    assert (evt["source"]["bytes"], evt["destination"]["bytes"]) == (56, 56)
    assert (evt["event"]["start"], evt["event"]["end"]) == (T0, T0 + 1_500_000)
    assert evt["network"] == {"transport": "icmp"} and "protocol" not in evt["network"]
    v6 = [frame(IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest(id=9, seq=3, data=b"a" * 20))]
    v6 += [frame(IPv6(src="fd00::2", dst="fd00::1") / ICMPv6EchoReply(id=9, seq=3, data=b"a" * 20))]
    (evt,) = dec.feed(T0, 1, v6[0]) + dec.feed(T0 + 1, 1, v6[1])
    # Packetbeat drops the identifier and sequence number from the size too (8 bytes).
    assert (evt["source"]["bytes"], evt["destination"]["bytes"]) == (20, 20)
    assert evt["network"]["transport"] == "ipv6-icmp" and evt["icmp"]["version"] == 6


def test_pairing_needs_identifier_sequence_and_reverse_addresses() -> None:
    dec = decoder()
    dec.feed(T0, 1, echo("10.0.0.1", "10.0.0.2", 8, ident=1, seq=1))
    dec.feed(T0, 1, echo("10.0.0.1", "10.0.0.2", 8, ident=2, seq=1))
    # Same id/seq, but from a third host: a lone reply.
    (lone,) = dec.feed(T0 + 1, 1, echo("10.0.0.3", "10.0.0.1", 0, ident=1, seq=1))
    assert lone["error"]["message"] == [ORPHANED_RESPONSE] and lone["status"] == "Error"
    assert (lone["source"]["ip"], lone["destination"]["ip"], lone["@timestamp"]) == (
        "10.0.0.1",
        "10.0.0.3",
        T0 + 1,
    )
    assert "request" not in lone["icmp"] and "start" not in lone["event"]
    (ok,) = dec.feed(T0 + 2, 1, echo("10.0.0.2", "10.0.0.1", 0, ident=2, seq=1))
    assert ok["status"] == "OK"
    assert dec.stats["icmp.unmatched_responses"] == 1


def test_unanswered_requests_expire_on_capture_time_and_at_the_end() -> None:
    dec = decoder(transaction_timeout=10.0)
    dec.feed(T0, 1, echo("10.0.0.1", "10.0.0.2", 8, seq=1))
    dec.feed(T0 + 5 * S, 1, echo("10.0.0.1", "10.0.0.2", 8, seq=2))
    assert dec.tick(T0 + 10 * S) == []
    (expired,) = dec.tick(T0 + 10 * S + 1)
    assert expired["icmp"]["request"]["type"] == 8 and "response" not in expired["icmp"]
    assert expired["status"] == "Error" and expired["error"]["message"] == [ORPHANED_REQUEST]
    assert expired["@timestamp"] == T0
    (late,) = dec.flush()
    assert late["@timestamp"] == T0 + 5 * S and late["error"]["message"] == [ORPHANED_REQUEST]
    assert dec.stats["icmp.unmatched_requests"] == 2


def test_duplicate_request_closes_the_first() -> None:
    dec = decoder()
    assert dec.feed(T0, 1, echo("10.0.0.1", "10.0.0.2", 8)) == []
    (dup,) = dec.feed(T0 + 1, 1, echo("10.0.0.1", "10.0.0.2", 8))
    assert dup["error"]["message"] == [DUPLICATE_REQUEST] and dup["@timestamp"] == T0
    (pair,) = dec.feed(T0 + 2, 1, echo("10.0.0.2", "10.0.0.1", 0))
    assert pair["@timestamp"] == T0 + 1 and pair["status"] == "OK"


def test_errors_and_other_messages_are_transactions_of_their_own() -> None:
    dec = decoder()
    inner = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / Raw(b"\0" * 8))
    (unreach,) = dec.feed(
        T0, 1, frame(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=3, code=3) / Raw(inner))
    )
    assert (
        unreach["status"] == "Error"
        and unreach["icmp"]["request"]["message"] == "DestinationUnreachable(Port)"
    )
    assert unreach["source"]["bytes"] == len(inner) and "error" not in unreach
    (advert,) = dec.feed(T0, 1, frame(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=9) / Raw(b"\0" * 8)))
    assert advert["status"] == "OK"


def test_pending_requests_are_bounded() -> None:
    dec = decoder(max_pending=2)
    out: list[dict[str, Any]] = []
    for seq in range(5):
        out += dec.feed(T0 + seq, 1, echo("10.0.0.1", "10.0.0.2", 8, seq=seq))
    assert [e["icmp"]["request"]["type"] for e in out] == [8, 8, 8]
    assert all(e["error"]["message"] == [ORPHANED_REQUEST] for e in out)
    assert dec.stats["icmp.pending_evicted"] == 3
    assert len(dec.flush()) == 2


def test_short_messages_are_counted_not_decoded() -> None:
    dec = decoder()
    assert (
        dec.feed(T0, 1, frame(IP(src="10.0.0.1", dst="10.0.0.2", proto=1) / Raw(b"\x08\x00\x00\x00"))) == []
    )
    assert (
        dec.feed(T0, 1, frame(IPv6(src="fd00::1", dst="fd00::2", nh=58) / Raw(b"\x80\x00\x00\x00\x00\x01")))
        == []
    )
    assert dec.stats["icmp.malformed"] == 2


def test_vlan_and_q_in_q() -> None:
    dec = decoder()
    out = []
    for tags in ([Dot1Q(vlan=10)], [Dot1Q(vlan=101), Dot1Q(vlan=600)]):
        layers: Packet = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        for t in tags:
            layers = layers / t
        out += dec.feed(T0, 1, bytes(layers / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=5, seq=5)))
        out += dec.feed(
            T0 + 1, 1, bytes(layers / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=0, id=5, seq=5))
        )
    assert [e["status"] for e in out] == ["OK", "OK"]


def test_capture_filter_has_icmp_and_icmp6() -> None:
    plugins = build_plugins({"icmp": default_config("icmp"), "http": default_config("http", ports=[80])})
    assert Registry(plugins).bpf_filter() == "tcp port 80 or icmp or icmp6"
