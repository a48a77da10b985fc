"""DHCPv4 decoder: the parser's accept/refuse rules, option renderings, roles and endpoints,
counters, the messages that crash Packetbeat, and the config (ports built in)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.dhcpwire import (
    ACK,
    BOOTREPLY,
    BOOTREQUEST,
    DISCOVER,
    OFFER,
    exchange,
    frame,
    ip,
    ips,
    message,
    opt,
    options,
    u32,
)
from protocols.dhcpv4 import Dhcpv4Plugin
from protocols.dhcpv4.config import Dhcpv4Config
from protocols.dhcpv4.fields import go_ip, go_text, mac_text, render_options
from protocols.dhcpv4.parser import DhcpError, parse, vivc_records
from protocols.registry import Registry, build_plugins, default_config
from shipper.agent.settings import load_settings
from tests.helpers import decode_packets
from tests.protocols.dhcpv4_cases import CRASHES

MAC = b"\x02\x00\x5e\x10\x00\x01"
C0 = ("0.0.0.0", 68)
BC = ("255.255.255.255", 67)


def decode(
    *datagrams: tuple[tuple[str, int], tuple[str, int], bytes], **cfg: Any
) -> tuple[list[dict[str, Any]], Any]:
    packets = [
        (1_700_000_000_000_000_000 + i * 1000, 1, frame(s, d, p)) for i, (s, d, p) in enumerate(datagrams)
    ]
    events, dec = decode_packets(packets, {"dhcpv4": cfg})
    return events, dec.stats


def one(payload: bytes, src: tuple[str, int] = C0, dst: tuple[str, int] = BC) -> dict[str, Any]:
    events, _ = decode((src, dst, payload))
    assert len(events) == 1
    return events[0]


def refused(opts: bytes, **kw: Any) -> str:
    with pytest.raises(DhcpError) as info:
        parse(message(BOOTREQUEST, 1, opts, **kw))
    return info.value.reason


# -- the parser -------------------------------------------------------------------------------


def test_header_fields() -> None:
    m = parse(
        message(
            BOOTREPLY,
            0xDEADBEEF,
            options(opt(53, ACK)),
            hops=3,
            secs=9,
            flags=0x8000,
            ciaddr="1.2.3.4",
            yiaddr="5.6.7.8",
            siaddr="9.9.9.9",
            giaddr="8.8.8.8",
            chaddr=MAC,
            sname=b"srv",
            file=b"f",
        )
    )
    assert (m.op, m.htype, m.hlen, m.hops, m.xid, m.secs, m.flags) == (2, 1, 6, 3, 0xDEADBEEF, 9, 0x8000)
    assert (m.ciaddr, m.yiaddr, m.siaddr, m.giaddr) == (
        ip("1.2.3.4"),
        ip("5.6.7.8"),
        ip("9.9.9.9"),
        ip("8.8.8.8"),
    )
    assert m.chaddr[:6] == MAC and m.sname.rstrip(b"\0") == b"srv" and m.file.rstrip(b"\0") == b"f"
    assert m.options == [(53, b"\x05")]


def test_options_stop_at_end_but_are_all_checked() -> None:
    m = parse(message(BOOTREQUEST, 1, options(opt(53, 1), opt(12, "a")) + b"\0" + opt(12, "b") + b"\xff"))
    assert m.options == [(53, b"\x01"), (12, b"a")]
    # what follows End must still parse (Packetbeat's library checks it)
    assert refused(options(opt(53, 1)) + b"\x0c\x05ab") == "option_overrun"
    assert refused(options(opt(53, 1)) + opt(54, b"\1\2\3")) == "bad_option_length"


@pytest.mark.parametrize(
    ("opts", "reason"),
    [
        (b"\x35", "option_overrun"),
        (b"\x35\x01", "option_overrun"),
        (b"\x35\x02\x01\x01\xff", "bad_option_length"),
        (b"\x39\x03\x01\x02\x03\xff", "bad_option_length"),
        (b"\x32\x05\x01\x02\x03\x04\x05\xff", "bad_option_length"),
        (b"\x36\x04\x01\x02", "option_overrun"),
        (b"\x1c\x00\xff", "bad_option_length"),
        (b"\x06\x00\xff", "bad_option_length"),
        (b"\x06\x05\x01\x02\x03\x04\x05\xff", "bad_option_length"),
        (b"\x0c\xff" + b"a" * 20, "option_overrun"),
        (b"\x7c\x07\x00\x00\x00\x01\x05ab\xff", "bad_vendor_identifying_option"),
        (b"\x7c\x06\x00\x00\x00\x01\x00\x00", "bad_vendor_identifying_option"),
    ],
)
def test_refused_options(opts: bytes, reason: str) -> None:
    assert refused(opts) == reason


def test_refused_headers() -> None:
    with pytest.raises(DhcpError, match="truncated_header"):
        parse(message()[:235])
    with pytest.raises(DhcpError, match="missing_magic_cookie"):
        parse(message()[:239])
    with pytest.raises(DhcpError, match="bad_magic_cookie"):
        parse(message(cookie=b"\x63\x82\x53\x64"))
    assert parse(message(opts=b"")).options == []


def test_vendor_identifying_records() -> None:
    assert vivc_records(b"") == []
    assert vivc_records(u32(1) + b"\x02ab" + u32(2) + b"\x00") == [(1, b"ab"), (2, b"")]
    assert vivc_records(u32(2) + b"\x00", strict=True) is None  # the library's reading
    assert vivc_records(u32(1) + b"\x03ab") is None
    assert vivc_records(u32(1) + b"\x00\x01") is None
    # followed by End: refused by Packetbeat, read here
    m = parse(message(opts=options(opt(53, 1), opt(124, u32(4491) + b"\x01a"))))
    assert m.options[1] == (124, u32(4491) + b"\x01a")
    # after End, the library's rule: it must end the datagram
    assert (
        refused(options(opt(53, 1)) + opt(124, u32(1) + b"\x01a") + b"\0") == "bad_vendor_identifying_option"
    )
    assert parse(message(opts=options(opt(53, 1)) + opt(124, u32(1) + b"\x01a"))).options == [(53, b"\x01")]


def test_overload() -> None:
    m = parse(
        message(
            BOOTREPLY,
            opts=options(opt(53, OFFER), opt(52, 3), opt(12, "main")),
            sname=options(opt(15, "s"), opt(12, "from-sname")),
            file=options(opt(12, "from-file"), opt(52, 3), opt(3, ip("1.1.1.1"))),
        )
    )
    assert m.overload == 3
    # file first, then sname (RFC 2131 §4.1); the nested overload is dropped
    assert [c for c, _ in m.options] == [53, 52, 12, 12, 3, 15, 12]
    assert m.problems == ["overload_nested"]
    # a malformed overloaded field is dropped; the message is kept
    m = parse(message(BOOTREPLY, opts=options(opt(53, OFFER), opt(52, 1)), file=b"\x0c\x7fabc"))
    assert m.overload == 1 and m.problems == ["overload_malformed"] and len(m.options) == 2
    for bad in (b"\x00", b"\x04", b"\x01\x02"):
        m = parse(message(BOOTREPLY, opts=options(opt(52, bad)), file=options(opt(12, "x"))))
        assert m.overload == 0 and m.problems == ["bad_overload_option"]


# -- renderings -------------------------------------------------------------------------------


def test_go_renderings() -> None:
    assert go_text(b"h\xffst\xc3") == "h\ufffdst\ufffd"
    assert go_text(b"\xe2\x82A") == "\ufffd\ufffdA"  # one per invalid byte, as Go
    assert go_text("déjà".encode()) == "déjà"
    assert go_ip(ip("10.0.0.1")) == "10.0.0.1"
    assert go_ip(b"\0" * 10 + b"\xff\xff" + ip("1.2.3.4")) == "1.2.3.4"
    assert go_ip(bytes.fromhex("20010db8000000000000000000000001")) == "2001:db8::1"
    assert go_ip(b"\xff\xff\xff\x00\x01") == "?ffffff0001"
    assert mac_text(MAC + b"\0" * 10, 6) == "02-00-5E-10-00-01"
    assert mac_text(bytes(range(16)), 16) == "00-01-02-03-04-05-06-07-08-09-0A-0B-0C-0D-0E-0F"


def test_option_renderings() -> None:
    problems: list[str] = []
    got = render_options(
        [
            (53, b"\x09"),
            (55, bytes([1, 84, 0, 255, 252])),
            (2, u32(-3600)),
            (51, u32(7) + b"x"),
            (58, b"\0\0"),
            (57, b"\x05\xdc"),
            (3, ips("1.1.1.1", "2.2.2.2")),
            (4, b"\1\2\3"),
            (124, b""),
            (1, b"\xff\xff\xff\x00\x01"),
            (61, b"\x01" + MAC),
            (43, b"\x01\x01a"),
        ],
        problems,
    )
    assert got == {
        "message_type": "unknown (9)",
        "parameter_request_list": ["Subnet Mask", "Unknown (84)", "Pad", "End", "Unknown (252)"],
        "utc_time_offset_sec": -3600,
        "ip_address_lease_time_sec": 7,
        "max_dhcp_message_size": 1500,
        "router": ["1.1.1.1", "2.2.2.2"],
        "vendor_identifying_options": [],
    }
    assert problems == ["bad_option_value", "bad_option_value"]


def test_event_of_a_request_and_a_reply() -> None:
    (d, o, r, a) = exchange(MAC, 0x3D1D, "10.9.0.50")
    events, stats = decode(d, o, r, a)
    assert [e["dhcpv4"]["option"]["message_type"] for e in events] == ["discover", "offer", "request", "ack"]
    disc, offer = events[0], events[1]
    assert disc["client"] == {"ip": "0.0.0.0", "port": 68, "bytes": len(d[2])}
    assert disc["server"] == {"ip": "255.255.255.255", "port": 67}
    assert disc["source"] == {"ip": "0.0.0.0", "port": 68, "bytes": len(d[2])}
    assert disc["event"] == {"start": disc["@timestamp"]}
    assert disc["status"] == "OK" and disc["type"] == "dhcpv4"
    assert disc["network"] == {"transport": "udp", "protocol": "dhcpv4"}
    assert disc["dhcpv4"] == {
        "op_code": "bootrequest",
        "hardware_type": "Ethernet",
        "hops": 0,
        "transaction_id": "0x00003d1d",
        "seconds": 0,
        "flags": "unicast",
        "client_mac": "02-00-5E-10-00-01",
        "option": {
            "message_type": "discover",
            "max_dhcp_message_size": 576,
            "hostname": "host",
            "parameter_request_list": [
                "Subnet Mask",
                "Router",
                "Domain Name Server",
                "Host Name",
                "Domain Name",
                "Broadcast Address",
                "NTP Servers",
                "IP Addresses Lease Time",
                "Server Identifier",
                "Renew Time Value",
                "Rebinding Time Value",
                "DNS Domain Search List",
            ],
        },
    }
    # a reply: the client is the destination, the server (which sent the bytes) the source
    assert offer["client"] == {"ip": "10.9.0.50", "port": 68}
    assert offer["server"] == {"ip": "10.9.0.1", "port": 67, "bytes": len(o[2])}
    assert offer["related"] == {"ip": ["10.9.0.1", "10.9.0.50"]}
    assert offer["dhcpv4"]["assigned_ip"] == "10.9.0.50"
    assert "server_ip" not in offer["dhcpv4"]  # siaddr: Packetbeat does not publish it
    assert offer["dhcpv4"]["option"] == {
        "message_type": "offer",
        "server_identifier": "10.9.0.1",
        "ip_address_lease_time_sec": 3600,
        "renewal_time_sec": 1800,
        "rebinding_time_sec": 3150,
        "subnet_mask": "255.255.255.0",
        "broadcast_address": "10.9.0.255",
        "router": "10.9.0.1",
        "dns_servers": ["10.9.0.1", "10.9.0.2"],
        "domain_name": "example.test",
        "ntp_servers": ["10.9.0.3"],
    }
    assert stats["dhcpv4.total_packets"] == 4 and "dhcpv4.parse_failures" not in stats


def test_relay_roles_follow_the_op_code() -> None:
    relay, server = ("10.8.0.1", 67), ("10.9.0.1", 67)
    events, _ = decode(
        (relay, server, message(BOOTREQUEST, 7, options(opt(53, DISCOVER)), giaddr="10.8.0.1", hops=1)),
        (server, relay, message(BOOTREPLY, 7, options(opt(53, OFFER)), giaddr="10.8.0.1", yiaddr="10.8.0.9")),
    )
    assert [(e["client"]["ip"], e["server"]["ip"]) for e in events] == [("10.8.0.1", "10.9.0.1")] * 2
    assert events[0]["dhcpv4"]["relay_ip"] == "10.8.0.1" and events[0]["dhcpv4"]["hops"] == 1
    assert events[1]["related"]["ip"] == ["10.9.0.1", "10.8.0.1", "10.8.0.9"]


def test_header_renderings() -> None:
    e = one(message(3, 1, options(opt(53, 1)), htype=99, flags=0x0002))["dhcpv4"]
    assert (e["op_code"], e["hardware_type"], e["flags"]) == (
        "invalid",
        "Invalid",
        "unicast (reserved bits not zeroed)",
    )
    e = one(message(BOOTREQUEST, 1, htype=32, flags=0x8001))["dhcpv4"]
    assert (e["hardware_type"], e["flags"]) == ("Infiniband", "broadcast")
    e = one(message(BOOTREPLY, 1, sname=b"srv\0junk\xff", file=b"\0" * 128))["dhcpv4"]
    assert e["server_name"] == "srv\0junk\ufffd" and "boot_file_name" not in e


def test_refused_datagrams_are_counted() -> None:
    events, stats = decode(
        (C0, BC, message()[:200]),
        (C0, BC, message(cookie=b"\0\0\0\0")),
        (C0, BC, message(opts=b"\x35\x01")),
        (C0, BC, b""),
    )
    assert events == []
    assert stats["dhcpv4.parse_failures"] == 4
    assert stats["dhcpv4.malformed.truncated_header"] == 2
    assert stats["dhcpv4.malformed.bad_magic_cookie"] == 1
    assert stats["dhcpv4.malformed.option_overrun"] == 1


def test_problems_are_counted() -> None:
    _, stats = decode(
        (C0, BC, message(BOOTREPLY, opts=options(opt(53, 2), opt(3, b"\1\2")))),
        (C0, BC, message(BOOTREPLY, opts=options(opt(52, 1)), file=b"\x0c\x7f")),
        (C0, BC, message(BOOTREPLY, opts=options(opt(52, 9)))),
    )
    assert stats["dhcpv4.bad_option_value"] == 1
    assert stats["dhcpv4.overload_malformed"] == 1
    assert stats["dhcpv4.bad_overload_option"] == 1


def test_messages_that_crash_packetbeat() -> None:
    """dhcpv4/packetbeat-crashes: Packetbeat panics on these; wirebeat goes on."""
    events, stats = decode(*[(C0, BC, p) for p in CRASHES.values()], (C0, BC, message(xid=99)))
    assert [e["dhcpv4"]["transaction_id"] for e in events] == [
        "0x0d000001",
        "0x0d000002",
        "0x0d000003",
        "0x00000063",
    ]
    assert all("client_mac" not in e["dhcpv4"] for e in events[:3])
    assert events[2]["dhcpv4"]["hardware_type"] == "Infiniband"
    assert stats["dhcpv4.bad_hardware_address_length"] == 1
    assert stats["dhcpv4.malformed.option_overrun"] == 1


# -- config -----------------------------------------------------------------------------------


def test_ports_are_built_in_and_replaceable(tmp_path: Any) -> None:
    assert Dhcpv4Config().ports == [67, 68]
    assert Dhcpv4Plugin.default_ports == (67, 68)
    for body, ports in (
        (
            "- type: dhcpv4\n  ports: [67, 68]\n",
            [67, 68],
        ),
        ("- type: dhcpv4\n", [67, 68]),
        ("- type: dhcpv4\n  ports: [1067, 1068]\n", [1067, 1068]),
    ):
        path = tmp_path / "pb.yml"
        path.write_text("packetbeat.interfaces.device: any\npacketbeat.protocols:\n" + body)
        settings, warnings = load_settings(str(path), required=True)
        assert settings.packetbeat.protocols["dhcpv4"].ports == ports
        assert warnings == []
    reg = Registry(build_plugins({"dhcpv4": default_config("dhcpv4")}))
    assert reg.bpf_filter() == "udp port 67 or udp port 68"


def test_other_ports() -> None:
    events, _ = decode((("0.0.0.0", 1068), ("255.255.255.255", 1067), message()), ports=[1067, 1068])
    assert len(events) == 1 and events[0]["client"]["port"] == 1068
