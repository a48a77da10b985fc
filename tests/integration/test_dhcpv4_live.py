"""DHCPv4 against real peers in network namespaces the test creates: dnsmasq (authoritative,
``--log-dhcp``) serves one end of a veth pair, BusyBox udhcpc runs on the other, tcpdump
captures on the server's end.

The workload: a lease (DISCOVER, OFFER, REQUEST, ACK), a renewal (SIGUSR1: a unicast REQUEST
and its ACK), a NAK (dnsmasq restarted with another range and no leases, then SIGUSR1: the
renewal of an address it no longer hands out is refused, the client starts over and gets a new
lease), a release (SIGUSR2), and a DECLINE (a second client with ARP checking is offered an
address the server's side already uses). Every event is checked against dnsmasq's log (each
message's xid, type, address, MAC and every option it sent or was given) and against the
leases udhcpc's event script saw; the capture is recorded for the Packetbeat comparison.
"""

from __future__ import annotations

import os
import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from protocols.dhcpv4.fields import MESSAGE_TYPES, OPTION_NAMES
from tests.helpers import decode_packets, need, need_tool
from tests.integration.dhcp_peers import (
    CLIENT_MAC,
    SERVER_IP,
    SUBNET,
    Dnsmasq,
    Lab,
    Logged,
    Udhcpc,
    parse_log,
    seconds,
    wait_for,
)
from tests.oracle.recordings import record_for_oracle

pytestmark = pytest.mark.integration

MAC = CLIENT_MAC.upper().replace(":", "-")
SERVER_OPTIONS = (
    "--dhcp-option=option:router," + SERVER_IP,
    f"--dhcp-option=option:dns-server,{SERVER_IP},{SUBNET}.2",
    f"--dhcp-option=option:ntp-server,{SUBNET}.3",
    "--domain=wirebeat.test",
)


class Live:
    def __init__(self, pcap: Path) -> None:
        self.pcap = pcap
        self.logs: list[Logged] = []
        self.leases: list[tuple[str, dict[str, str]]] = []  # udhcpc's script calls, both clients
        self.first_client: list[str] = []
        self.second_client: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.stats: dict[str, int] = {}
        self.datagrams = 0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Live:
    if os.geteuid() != 0:
        need("root (network namespaces)")
    for tool in ("ip", "tcpdump", "dnsmasq", "udhcpc"):
        need_tool(tool)
    work = Path(tmp_path_factory.mktemp("dhcpv4-live"))
    result = Live(work / "dhcpv4.pcap")
    lab = Lab(work)
    try:
        lab.up()
        with lab.capture(result.pcap):
            # A lease and its renewal.
            d1 = Dnsmasq(lab, "dnsmasq1", f"{SUBNET}.100", f"{SUBNET}.149", *SERVER_OPTIONS)
            c1 = Udhcpc(lab, "udhcpc1", "-x", "hostname:wbclient", "-V", "wirebeat-test", "-O", "ntpsrv")
            c1.wait_event("bound")
            c1.signal(signal.SIGUSR1)
            c1.wait_event("renew")
            # The server forgets it (another range, no leases): the renewal gets a NAK, the
            # client starts over; then it releases its new lease.
            d1.stop()
            d2 = Dnsmasq(
                lab, "dnsmasq2", f"{SUBNET}.150", f"{SUBNET}.199", "--dhcp-option=option:router," + SERVER_IP
            )
            c1.signal(signal.SIGUSR1)
            c1.wait_event("nak")
            c1.wait_event("bound", 2)
            c1.signal(signal.SIGUSR2)
            wait_for("the release in dnsmasq's log", lambda: "DHCPRELEASE" in d2.text())
            c1.stop()
            d2.stop()
            # An address already in use on the link: the client's ARP check declines it.
            lab.add_server_address(f"{SUBNET}.120")
            d3 = Dnsmasq(lab, "dnsmasq3", f"{SUBNET}.120", f"{SUBNET}.120")
            c2 = Udhcpc(lab, "udhcpc2", "-a200", "-B", "-n", "-x", "hostname:wbdecline")
            wait_for("the decline in dnsmasq's log", lambda: "DHCPDECLINE" in d3.text())
            c2.stop()
            wait_for("dnsmasq to log what it received", lambda: d3.text().count("DHCPDECLINE") >= 1)
            d3.stop()
        record_for_oracle(result.pcap, [{"type": "dhcpv4", "ports": [67, 68]}])
        for d in (d1, d2, d3):
            result.logs += parse_log(d.text())
        result.leases = c1.events() + c2.events()
        result.first_client, result.second_client = c1.names(), c2.names()
    finally:
        lab.down()
    packets = [(ts, lt, fr) for ts, lt, fr, _ in CaptureFile(str(result.pcap))]
    result.events, dec = decode_packets(packets, {"dhcpv4": {}})
    result.stats = dict(dec.stats)
    result.datagrams = result.stats.get("dhcpv4.total_packets", 0)
    return result


def option(e: dict[str, Any], name: str) -> Any:
    return e["dhcpv4"].get("option", {}).get(name)


def xid(e: dict[str, Any]) -> int:
    return int(e["dhcpv4"]["transaction_id"], 16)


def test_workload_happened(live: Live) -> None:
    assert live.first_client == ["deconfig", "bound", "renew", "nak", "deconfig", "bound", "deconfig"]
    assert "bound" not in live.second_client
    types = {option(e, "message_type") for e in live.events}
    assert types == {"discover", "offer", "request", "ack", "nak", "release", "decline"}


def test_every_datagram_is_an_event(live: Live) -> None:
    assert live.datagrams == len(live.events) >= 14
    assert not {k for k in live.stats if k.startswith("dhcpv4.") and k != "dhcpv4.total_packets"}


#: dnsmasq's option renderings → (event field under dhcpv4.option, value as the event has it).
def _sent_value(code: int, text: str) -> tuple[str, Any]:
    if code == 53:
        return "message_type", MESSAGE_TYPES[int(text)]
    if code in (51, 58, 59):
        name = {51: "ip_address_lease_time_sec", 58: "renewal_time_sec", 59: "rebinding_time_sec"}[code]
        return name, seconds(text)
    if code in (6, 42):
        return {6: "dns_servers", 42: "ntp_servers"}[code], [a.strip() for a in text.split(",")]
    if code == 56:  # hex bytes, cut at 14 with "..."
        return "message", bytes.fromhex(text.removesuffix("...").replace(":", "")).decode()
    names = {
        54: "server_identifier",
        1: "subnet_mask",
        28: "broadcast_address",
        3: "router",
        15: "domain_name",
    }
    names[12] = "hostname"
    return names[code], text


def test_every_event_is_in_dnsmasqs_log(live: Live) -> None:
    """Each message dnsmasq logged is one event with its xid, type, MAC and address, and every
    option dnsmasq sent (or was given) has its value there; no event is left over."""
    events: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for e in live.events:
        events[(xid(e), option(e, "message_type"))].append(e)
    checked = 0
    for rec in live.logs:
        assert events[(rec.xid, rec.type)], f"dnsmasq logged a message the capture does not have: {rec}"
        e = events[(rec.xid, rec.type)].pop(0)
        d = e["dhcpv4"]
        assert d["op_code"] == ("bootrequest" if rec.received else "bootreply")
        assert d["client_mac"] == rec.mac.upper().replace(":", "-") == MAC  # type: ignore[union-attr]
        assert d["hardware_type"] == "Ethernet"
        if rec.received:
            if rec.type == "request":
                assert rec.ip in (option(e, "requested_ip_address"), d.get("client_ip"))
            elif rec.type == "release":
                assert d["client_ip"] == rec.ip and option(e, "server_identifier") == SERVER_IP
            elif rec.type == "decline":
                assert option(e, "requested_ip_address") == rec.ip == f"{SUBNET}.120"
            elif rec.ip is not None:
                assert option(e, "requested_ip_address") == rec.ip
            if rec.vendor_class is not None:
                assert option(e, "class_identifier") == rec.vendor_class
            if rec.client_name is not None:
                assert option(e, "hostname") == rec.client_name
            if rec.requested:
                assert option(e, "parameter_request_list") == [OPTION_NAMES[c] for c in rec.requested]
        else:
            assert rec.sent, rec
            got = dict(d["option"])
            if rec.type == "nak":
                assert "assigned_ip" not in d and option(e, "message") == rec.text
            else:
                assert d["assigned_ip"] == rec.ip
            expected = dict(_sent_value(code, text) for code, text in rec.sent.items())
            if "message" in expected:
                assert got["message"].startswith(expected.pop("message"))
                got.pop("message")
            assert got == expected
        checked += 1
    assert not [k for k, v in events.items() if v], "events dnsmasq did not log"
    assert checked == len(live.events)


def test_leases_match_the_acks(live: Live) -> None:
    """The addresses and parameters udhcpc configured are those of ACK events, in order (an ACK
    the client missed, e.g. a renewal's unicast ACK that came before its socket listened,
    is followed by its retransmission's)."""
    acks = iter([e for e in live.events if option(e, "message_type") == "ack"])
    leases = [env for name, env in live.leases if name in ("bound", "renew")]
    assert len(leases) == 3
    for env in leases:
        expected = {
            "subnet_mask": env["subnet"],
            "router": env["router"],
            "server_identifier": env["serverid"],
            "broadcast_address": env["broadcast"],
            "ip_address_lease_time_sec": int(env["lease"]),
            "dns_servers": env["dns"].split() if "dns" in env else None,
            "ntp_servers": env["ntpsrv"].split() if "ntpsrv" in env else None,
            "domain_name": env.get("domain"),
            "hostname": env.get("hostname"),
        }
        assert expected["ip_address_lease_time_sec"] == 600
        e = next(
            (
                e
                for e in acks
                if e["dhcpv4"]["assigned_ip"] == env["ip"]
                and all(option(e, k) == v for k, v in expected.items())
            ),
            None,
        )
        assert e is not None, f"no ACK event for the lease {env}"
    nak = next(env for name, env in live.leases if name == "nak")
    (nak_event,) = [e for e in live.events if option(e, "message_type") == "nak"]
    assert option(nak_event, "message") == nak.get("message", "address not available")


def test_roles_and_endpoints(live: Live) -> None:
    for e in live.events:
        d = e["dhcpv4"]
        src, dst = e["source"], e["destination"]
        assert src["bytes"] >= 300 and "bytes" not in dst
        assert e["status"] == "OK" and e["event"]["start"] == e["@timestamp"]
        if d["op_code"] == "bootreply":
            assert (src["ip"], src["port"]) == (SERVER_IP, 67)
            assert e["server"] == src and e["client"] == dst
            assert dst["port"] == 68
            assert dst["ip"] in (d.get("assigned_ip"), "255.255.255.255")
        else:
            assert e["client"] == src and e["server"] == dst
            assert src["port"] == 68 and dst["port"] == 67
            # from nothing to everyone, or from the lease to the server (renew, release) or to
            # everyone (a renewal retransmitted as a rebinding)
            lease = d.get("client_ip")
            assert (src["ip"], dst["ip"]) in (
                ("0.0.0.0", "255.255.255.255"),
                (lease, SERVER_IP),
                (lease, "255.255.255.255"),
            )
        ips = [src["ip"], dst["ip"], d.get("client_ip"), d.get("assigned_ip")]
        assert e["related"]["ip"] == list(dict.fromkeys(ip for ip in ips if ip))
    # The decline phase asked for broadcast replies (udhcpc -B).
    flags = {
        option(e, "message_type"): e["dhcpv4"]["flags"] for e in live.events if xid(e) in _decline_xids(live)
    }
    assert flags["decline"] == "broadcast" or flags["offer"] == "broadcast"


def _decline_xids(live: Live) -> set[int]:
    return {r.xid for r in live.logs if r.type in ("decline", "offer") and r.ip == f"{SUBNET}.120"}


def test_renewal_and_release_are_sent_from_the_lease(live: Live) -> None:
    renewals = [
        e for e in live.events if option(e, "message_type") == "request" and e["dhcpv4"].get("client_ip")
    ]
    assert len(renewals) >= 2  # the renewal that got an ACK, the one that got the NAK
    for e in renewals:
        assert e["source"]["ip"] == e["dhcpv4"]["client_ip"]
        assert e["destination"]["ip"] in (SERVER_IP, "255.255.255.255")
        assert "requested_ip_address" not in e["dhcpv4"]["option"]  # RFC 2131 §4.3.2: RENEWING
    assert renewals[-1]["destination"]["ip"] == SERVER_IP  # the one dnsmasq refused
    (release,) = [e for e in live.events if option(e, "message_type") == "release"]
    assert release["source"]["ip"] == release["dhcpv4"]["client_ip"]
    assert release["destination"]["ip"] == SERVER_IP
    assert int(release["dhcpv4"]["client_ip"].rsplit(".", 1)[1]) in range(150, 200)  # the lease after the NAK
