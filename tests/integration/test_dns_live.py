"""Live DNS: a real BIND 9 serving two DNSSEC-signed zones, queried by dnspython and by
dig over UDP and TCP (NXDOMAIN, REFUSED, EDNS and BADVERS, DO, a TXT too big for UDP that
comes back truncated and is retried over TCP, zone transfers over dozens of messages,
retransmissions), captured on lo with tcpdump and decoded.

Each event is checked against what the client itself parsed from the server's answer
(dnspython's message objects, dig's YAML output): ids, names, rcodes, flags, section
counts, every record rendered independently here from dnspython's rdata the way
Packetbeat prints it, sizes of the messages the client sent and received.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import decode_file, need, need_tool, tcpdump
from tests.integration.dns_server import BIG_HOSTS, BIG_TXT, ZONE, ZONE3, Bind, bind_server
from tests.oracle.recordings import record_for_oracle

pytestmark = pytest.mark.integration

try:
    import dns.edns
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.zone
except ImportError:  # pragma: no cover
    dns = None  # type: ignore[assignment]

HOST = "127.0.0.1"
ALGORITHMS = {8: "RSASHA256", 13: "ECDSAP256SHA256", 15: "ED25519"}
HASHES = {1: "SHA1", 2: "SHA256"}


@pytest.fixture(scope="session")
def bind() -> Iterator[Bind]:
    if dns is None:
        need("dnspython")
    need_tool("named")
    with bind_server() as b:
        yield b


# -- the workload ---------------------------------------------------------------------------


class Exchange:
    """One thing the client did and what it saw."""

    def __init__(
        self, label: str, transport: str, port: int, query: Any, responses: list[Any], sizes: tuple[int, int]
    ) -> None:
        self.label = label
        self.transport = transport
        self.port = port  # client source port
        self.query = query  # dns.message.Message as sent
        self.responses = responses  # as the client parsed them
        self.sizes = sizes  # bytes sent, bytes received (TCP: with the length prefixes)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def udp(b: Bind, label: str, q: Any) -> Exchange:
    """One query over UDP; the answer as received, parsed by dnspython."""
    wire = q.to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(5)
        s.sendto(wire, (HOST, b.port))
        data = s.recv(65535)
        port = s.getsockname()[1]
    return Exchange(label, "udp", port, q, [dns.message.from_wire(data)], (len(wire), len(data)))


def tcp(b: Bind, label: str, q: Any) -> Exchange:
    wire = q.to_wire()
    with socket.create_connection((HOST, b.port), timeout=5, source_address=(HOST, 0)) as s:
        s.sendall(len(wire).to_bytes(2, "big") + wire)
        data = _recv(s, int.from_bytes(_recv(s, 2), "big"))
        port = s.getsockname()[1]
    return Exchange(label, "tcp", port, q, [dns.message.from_wire(data)], (len(wire) + 2, len(data) + 2))


def raw_udp(b: Bind, label: str, q: Any, sends: int) -> list[bytes]:
    """Send the same query bytes ``sends`` times from one socket, read every answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(5)
        for _ in range(sends):
            s.sendto(q.to_wire(), (HOST, b.port))
        out = [s.recv(65535) for _ in range(sends)]
        exchanges.append(
            Exchange(label, "udp", s.getsockname()[1], q, [dns.message.from_wire(x) for x in out], (0, 0))
        )
        return out


def xfr(b: Bind, label: str, zone: str) -> Exchange:
    """AXFR with dnspython, reading every message the server sends."""
    q = dns.message.make_query(zone, "AXFR")
    msgs: list[Any] = []
    received = 0
    with socket.create_connection((HOST, b.port), timeout=10, source_address=(HOST, 0)) as s:
        port = s.getsockname()[1]
        wire = q.to_wire()
        s.sendall(len(wire).to_bytes(2, "big") + wire)
        soa_seen = 0
        while soa_seen < 2:
            ln = int.from_bytes(_recv(s, 2), "big")
            data = _recv(s, ln)
            received += ln + 2
            m = dns.message.from_wire(data, xfr=True, origin=None, one_rr_per_rrset=True)
            msgs.append(m)
            soa_seen += sum(1 for rrset in m.answer if rrset.rdtype == dns.rdatatype.SOA)
    return Exchange(label, "tcp", port, q, msgs, (len(wire) + 2, received))


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def dig(b: Bind, label: str, *args: str) -> dict[str, Any]:
    exe = need_tool("dig")
    port = free_port(socket.SOCK_DGRAM if "+tcp" not in args and "AXFR" not in args else socket.SOCK_STREAM)
    out = subprocess.run(
        [exe, f"@{HOST}", "-p", str(b.port), "-b", f"{HOST}#{port}", "+yaml", "+tries=1", "+time=5", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out.replace("!!timestamp ", "")) if d]
    msgs = [m["message"] for doc in docs for m in doc if m.get("type") == "MESSAGE"]
    digs.append((label, port, args, msgs))
    return msgs[-1]


exchanges: list[Exchange] = []
digs: list[tuple[str, int, tuple[str, ...], list[dict[str, Any]]]] = []


def workload(b: Bind) -> None:
    mq = dns.message.make_query
    exchanges.append(udp(b, "A", mq(f"www.{ZONE}", "A")))
    exchanges.append(udp(b, "AAAA+EDNS", mq(f"www.{ZONE}", "AAAA", use_edns=0, payload=1232)))
    exchanges.append(udp(b, "MX", mq(ZONE, "MX", use_edns=0)))
    exchanges.append(udp(b, "CNAME", mq(f"alias.{ZONE}", "A")))
    exchanges.append(udp(b, "SRV", mq(f"_sip._tcp.{ZONE}", "SRV")))
    exchanges.append(udp(b, "CAA", mq(ZONE, "CAA")))
    exchanges.append(udp(b, "TXT escapes", mq(f'"quoted".{ZONE}'.replace('"', ""), "TXT")))
    exchanges.append(udp(b, "PTR", mq(f"10.{ZONE}", "PTR")))
    exchanges.append(udp(b, "SOA+DO", mq(ZONE, "SOA", want_dnssec=True)))
    exchanges.append(udp(b, "NXDOMAIN NSEC", mq(f"nope.{ZONE}", "A", want_dnssec=True)))
    exchanges.append(udp(b, "NXDOMAIN NSEC3", mq(f"nope.{ZONE3}", "A", want_dnssec=True)))
    exchanges.append(udp(b, "DNSKEY", mq(ZONE, "DNSKEY", want_dnssec=True)))
    exchanges.append(udp(b, "NSEC3PARAM", mq(ZONE3, "NSEC3PARAM", want_dnssec=True)))
    exchanges.append(udp(b, "REFUSED", mq("elsewhere.invalid", "A")))
    exchanges.append(udp(b, "BADVERS", mq(f"www.{ZONE}", "A", use_edns=1)))
    exchanges.append(udp(b, "no flags", mq(f"www.{ZONE}", "A", flags=0)))
    # a TXT too big for 512 bytes: truncated over UDP, then the same over TCP
    big = mq(f"big.{ZONE}", "TXT")
    exchanges.append(udp(b, "TC", big))
    exchanges.append(tcp(b, "TC retry", big))
    exchanges.append(tcp(b, "TCP A", mq(f"www.{ZONE3}", "A", want_dnssec=True)))
    exchanges.append(xfr(b, "AXFR", ZONE))
    # a retransmission: the same bytes twice before any answer is read
    raw_udp(b, "retransmission", mq(f"mail.{ZONE}", "A"), 2)
    dig(b, "dig A", f"www.{ZONE}", "A")
    dig(b, "dig MX +dnssec", ZONE, "MX", "+dnssec")
    dig(b, "dig NSEC3 NXDOMAIN", f"x.{ZONE3}", "A", "+dnssec")
    dig(b, "dig +tcp", f"mail.{ZONE}", "A", "+tcp")
    dig(b, "dig +norec +noadflag", f"www.{ZONE}", "A", "+norec", "+noadflag", "+noedns")
    dig(b, "dig TC retry", f"big.{ZONE}", "TXT", "+noedns")
    dig(b, "dig AXFR", ZONE3, "AXFR")


@pytest.fixture(scope="module")
def events(bind: Bind, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    pcap = tmp_path_factory.mktemp("dns-live") / "dns.pcap"
    exchanges.clear()
    digs.clear()
    with tcpdump(pcap, f"host {HOST} and port {bind.port}", settle=1.0):
        _probe(bind, pcap)
        workload(bind)
    options = {"ports": [bind.port], "include_authorities": True, "include_additionals": True}
    record_for_oracle(pcap, [{"type": "dns", **options}])
    out = decode_file(pcap, {"dns": options})
    return [e for e in out if e.get("resource") != f"probe.{ZONE}"]


def _probe(b: Bind, pcap: Path) -> None:
    """Query until tcpdump has written something: the capture is running."""
    deadline = time.monotonic() + 15
    while True:
        with contextlib.suppress(Exception):
            dns.query.udp(dns.message.make_query(f"probe.{ZONE}", "A"), HOST, port=b.port, timeout=1)
        time.sleep(0.2)
        if os.path.exists(pcap) and os.path.getsize(pcap) > 24:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("tcpdump never captured the probe queries")


# -- Packetbeat's rendering, from dnspython's view of the records --------------------------


def esc(b: bytes, raw: bool = False) -> str:
    out = []
    for c in b:
        ch = chr(c)
        if ch in '"\\':
            out.append("\\" + ch)
        elif raw and ch in "\t\r\n":
            out.append({"\t": "\\t", "\r": "\\r", "\n": "\\n"}[ch])
        elif 0x20 <= c < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{c:03d}")
    return "".join(out)


def name_text(n: Any, keep_dot: bool = False) -> str:
    t = n.to_text()
    return t if keep_dot or t == "." else t.rstrip(".")


def rrsig_time(t: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(t))


def type_text(t: int) -> str:
    return dns.rdatatype.to_text(t).replace("TYPE", "")


def bitmap(windows: Any) -> str:
    types = []
    for window, bits in windows:
        for i, byte in enumerate(bits):
            for k in range(8):
                if byte & (0x80 >> k):
                    types.append(window * 256 + i * 8 + k)
    return " ".join(type_text(t) for t in types)


def render(owner: Any, ttl: int, rd: Any) -> dict[str, Any] | None:
    t = rd.rdtype
    d: dict[str, Any] = {
        "name": name_text(owner),
        "type": type_text(t),
        "class": dns.rdataclass.to_text(rd.rdclass),
        "ttl": str(ttl),
    }
    T = dns.rdatatype
    if t in (T.A, T.AAAA):
        d["data"] = rd.address
    elif t in (T.CNAME, T.NS, T.PTR):
        d["data"] = name_text(rd.target)
    elif t == T.MX:
        d.update(preference=rd.preference, data=name_text(rd.exchange))
    elif t == T.SRV:
        d.update(priority=rd.priority, weight=rd.weight, port=rd.port, data=name_text(rd.target))
    elif t == T.SOA:
        d.update(
            rname=name_text(rd.rname),
            serial=rd.serial,
            refresh=rd.refresh,
            retry=rd.retry,
            expire=rd.expire,
            minimum=rd.minimum,
            data=name_text(rd.mname),
        )
    elif t == T.TXT:
        d["data"] = " ".join(esc(s) for s in rd.strings)
    elif t == T.DNSKEY:
        d.update(
            flags=str(rd.flags),
            protocol=str(rd.protocol),
            algorithm=ALGORITHMS[rd.algorithm],
            data=base64.b64encode(rd.key).decode(),
        )
    elif t == T.RRSIG:
        d.update(
            type_covered=type_text(rd.type_covered),
            algorithm=ALGORITHMS[rd.algorithm],
            labels=str(rd.labels),
            original_ttl=str(rd.original_ttl),
            expiration=rrsig_time(rd.expiration),
            inception=rrsig_time(rd.inception),
            key_tag=str(rd.key_tag),
            signer_name=name_text(rd.signer),
            data=base64.b64encode(rd.signature).decode(),
        )
    elif t == T.NSEC:
        d.update(type_bits=bitmap(rd.windows), data=name_text(rd.next, keep_dot=True))
    elif t == T.NSEC3:
        d.update(
            hash=HASHES[rd.algorithm],
            flags=str(rd.flags),
            iterations=str(rd.iterations),
            salt=rd.salt.hex().upper() or "-",
            type_bits=bitmap(rd.windows),
            data=base64.b32hexencode(rd.next).decode().rstrip("="),
        )
    elif t == T.NSEC3PARAM:
        d.update(
            hash=HASHES[rd.algorithm],
            flags=str(rd.flags),
            iterations=str(rd.iterations),
            data=rd.salt.hex().upper() or "-",
        )
    elif t == T.CAA:
        d["data"] = esc(bytes([rd.flags, len(rd.tag)]) + rd.tag + rd.value, raw=True)
    elif t == T.OPT:
        return None
    else:
        raise AssertionError(f"no rendering for {t}")
    return d


def section(rrsets: list[Any]) -> list[dict[str, Any]]:
    out = []
    for rrset in rrsets:
        for rd in rrset:
            r = render(rrset.name, rrset.ttl, rd)
            if r is not None:
                out.append(r)
    return out


def count(rrsets: list[Any]) -> int:
    return sum(len(r) for r in rrsets)


RCODES = {"BADVERS": "BADSIG"}  # Packetbeat names rcode 16 after TSIG


def check_message(evt_dns: dict[str, Any], r: Any) -> None:
    assert evt_dns["id"] == r.id
    assert evt_dns["response_code"] == RCODES.get(dns.rcode.to_text(r.rcode()), dns.rcode.to_text(r.rcode()))
    f = r.flags
    assert evt_dns["flags"] == {
        "authoritative": bool(f & dns.flags.AA),
        "truncated_response": bool(f & dns.flags.TC),
        "recursion_desired": bool(f & dns.flags.RD),
        "recursion_available": bool(f & dns.flags.RA),
        "authentic_data": bool(f & dns.flags.AD),
        "checking_disabled": bool(f & dns.flags.CD),
    }
    hf = [
        n
        for n, bit in (
            ("AA", dns.flags.AA),
            ("TC", dns.flags.TC),
            ("RD", dns.flags.RD),
            ("RA", dns.flags.RA),
            ("AD", dns.flags.AD),
            ("CD", dns.flags.CD),
        )
        if f & bit
    ]
    if r.edns >= 0 and r.ednsflags & dns.flags.DO:
        hf.append("DO")
    assert evt_dns["header_flags"] == hf
    if r.question:
        q = r.question[0]
        assert evt_dns["question"]["name"] == name_text(q.name)
        assert evt_dns["question"]["type"] == dns.rdatatype.to_text(q.rdtype)
        assert evt_dns["question"]["class"] == dns.rdataclass.to_text(q.rdclass)
    assert evt_dns["answers_count"] == count(r.answer)
    assert evt_dns["authorities_count"] == count(r.authority)
    assert evt_dns["additionals_count"] == count(r.additional)
    assert evt_dns.get("answers", []) == section(r.answer)
    assert evt_dns.get("authorities", []) == section(r.authority)
    assert evt_dns.get("additionals", []) == section(r.additional)
    ips = [
        rd.address
        for rrset in r.answer
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        for rd in rrset
    ]
    assert evt_dns.get("resolved_ip", []) == ips
    if r.edns >= 0:
        assert evt_dns["opt"]["udp_size"] == r.payload
        assert evt_dns["opt"]["version"] == str(r.edns)
        assert evt_dns["opt"]["do"] == bool(r.ednsflags & dns.flags.DO)
    else:
        assert "opt" not in evt_dns


def find(events: list[dict[str, Any]], transport: str, port: int, ident: int) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["network"]["transport"] == transport and e["source"]["port"] == port and e["dns"]["id"] == ident
    ]


# -- the checks -----------------------------------------------------------------------------


def test_every_dnspython_exchange(events: list[dict[str, Any]]) -> None:
    checked = 0
    for ex in exchanges:
        if ex.label == "retransmission" or ex.label == "AXFR":
            continue
        (r,) = ex.responses
        (evt,) = find(events, ex.transport, ex.port, ex.query.id)
        assert evt["type"] == "dns" and evt["dns"]["type"] == "answer", ex.label
        assert evt["method"] == "QUERY"
        q = ex.query.question[0]
        assert evt["query"] == f"class IN, type {dns.rdatatype.to_text(q.rdtype)}, {name_text(q.name)}"
        assert evt["resource"] == name_text(q.name)
        assert evt["status"] == ("OK" if r.rcode() == 0 else "Error"), ex.label
        assert (evt["source"]["bytes"], evt["destination"]["bytes"]) == ex.sizes, ex.label
        assert evt["destination"] == {"ip": HOST, "port": evt["destination"]["port"], "bytes": ex.sizes[1]}
        assert evt["event"]["end"] >= evt["event"]["start"]
        check_message(evt["dns"], r)
        checked += 1
    assert checked == len(exchanges) - 2 == 19


def test_truncated_udp_answer_then_tcp(events: list[dict[str, Any]]) -> None:
    tc, full = (next(x for x in exchanges if x.label == lbl) for lbl in ("TC", "TC retry"))
    (e1,) = find(events, "udp", tc.port, tc.query.id)
    (e2,) = find(events, "tcp", full.port, full.query.id)
    assert e1["dns"]["flags"]["truncated_response"] and e1["dns"]["header_flags"][:2] == ["AA", "TC"]
    assert e1["dns"]["answers_count"] == 0
    assert not e2["dns"]["flags"]["truncated_response"]
    (txt,) = e2["dns"]["answers"]
    assert txt["data"].replace(" ", "") == BIG_TXT.replace(" ", "")
    assert e2["destination"]["bytes"] > 1024


def test_zone_transfer_is_one_transaction(events: list[dict[str, Any]]) -> None:
    ex = next(x for x in exchanges if x.label == "AXFR")
    assert len(ex.responses) > 10  # BIND sent many messages
    (evt,) = find(events, "tcp", ex.port, ex.query.id)
    records = [r for m in ex.responses for r in section(m.answer)]
    assert evt["dns"]["answers_count"] == len(records) > BIG_HOSTS
    assert evt["dns"]["answers"] == records
    assert evt["destination"]["bytes"] == ex.sizes[1]
    assert evt["status"] == "OK" and "error" not in evt
    check_message(
        {
            **evt["dns"],
            "answers_count": count(ex.responses[0].answer),
            "answers": section(ex.responses[0].answer),
            "resolved_ip": [r["data"] for r in section(ex.responses[0].answer) if r["type"] in ("A", "AAAA")],
        },
        ex.responses[0],
    )


def test_retransmitted_query(events: list[dict[str, Any]]) -> None:
    ex = next(x for x in exchanges if x.label == "retransmission")
    got = find(events, "udp", ex.port, ex.query.id)
    notes = sorted(" ".join(e.get("error", {}).get("message", ["None"])) for e in got)
    # The capture order decides: either each query got its own answer, or the second
    # query closed the first and the second answer found nobody waiting (Packetbeat).
    assert notes in (
        ["None", "None"],
        sorted(
            [
                "None",
                "Another query with the same DNS ID from this client was received so this query was closed without receiving a response",
                "Response: received without an associated Query",
            ]
        ),
    )
    for e in got:
        if e["dns"]["type"] == "answer":
            check_message(e["dns"], ex.responses[0])


def test_every_dig_exchange(events: list[dict[str, Any]]) -> None:
    checked = 0
    for label, port, args, msgs in digs:
        transport = "tcp" if "+tcp" in args or "AXFR" in args else "udp"
        last = msgs[-1]
        if label == "dig TC retry":
            # dig shows only the TCP answer; its truncated UDP answer came first
            transport = "tcp"
            (tc,) = [e for e in events if e["network"]["transport"] == "udp" and e["source"]["port"] == port]
            assert tc["dns"]["flags"]["truncated_response"] and tc["dns"]["answers_count"] == 0
        data = last.get("response_message_data")
        if label == "dig AXFR":
            got = [e for e in events if e["network"]["transport"] == "tcp" and e["source"]["port"] == port]
            (evt,) = got
            assert evt["query"] == f"class IN, type AXFR, {ZONE3}"
            total = sum(
                len(m["response_message_data"].get("ANSWER_SECTION", []))
                for m in msgs
                if "response_message_data" in m
            )
            assert evt["dns"]["answers_count"] == total > BIG_HOSTS
            owners = [
                line.split()[0].rstrip(".")
                for m in msgs
                for line in m["response_message_data"].get("ANSWER_SECTION", [])
            ]
            assert [a["name"] for a in evt["dns"]["answers"]] == owners
            checked += 1
            continue
        assert data is not None
        got = [
            e
            for e in events
            if e["network"]["transport"] == transport
            and e["dns"]["id"] == data["id"]
            and e["source"]["port"] == port
        ]
        (evt,) = got
        d = evt["dns"]
        assert d["response_code"] == data["status"]
        assert sorted(f.upper() for f in data["flags"].split() if f != "qr") == sorted(
            x for x in d["header_flags"] if x != "DO"
        )
        answers = data.get("ANSWER_SECTION", [])
        assert d["answers_count"] == len(answers)
        for line, ans in zip(answers, d.get("answers", []), strict=True):
            owner, ttl, cls, rtype, *rdata = line.split()
            assert (ans["name"], ans["ttl"], ans["class"], ans["type"]) == (
                owner.rstrip("."),
                ttl,
                cls,
                rtype,
            )
            if rtype in ("A", "AAAA"):
                assert ans["data"] == rdata[0]
            elif rtype == "MX":
                assert (ans["preference"], ans["data"]) == (int(rdata[0]), rdata[1].rstrip("."))
            elif rtype == "RRSIG":
                assert (ans["type_covered"], ans["key_tag"], ans["signer_name"]) == (
                    rdata[0],
                    rdata[6],
                    rdata[7].rstrip("."),
                )
        assert d["authorities_count"] == len(data.get("AUTHORITY_SECTION", []))
        edns = data.get("OPT_PSEUDOSECTION", {}).get("EDNS")
        if edns:
            assert d["opt"]["udp_size"] == edns["udp"]
            assert d["opt"]["do"] == ("do" in str(edns.get("flags", "")))
        else:
            assert "opt" not in d
        checked += 1
    assert checked == len(digs) == 7


def test_no_loss_and_nothing_left_over(events: list[dict[str, Any]]) -> None:
    # one event per exchange (dig's truncated UDP answer is one more; the retransmission
    # has its own test), none of them unanswered or an orphan
    retrans = next(x for x in exchanges if x.label == "retransmission")
    rest = [
        e for e in events if not (e["source"]["port"] == retrans.port and e["dns"]["id"] == retrans.query.id)
    ]
    assert len(rest) == len(exchanges) - 1 + len(digs) + 1
    assert all("error" not in e and e["dns"]["type"] == "answer" for e in rest)
