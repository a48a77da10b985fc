"""DNS parser and pairing rules that the Packetbeat comparisons do not reach: capture-time
expiry, end of input, bounds, TCP framing, compression memo, counters."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from protocols.dns import DnsPlugin
from protocols.dns.config import DnsConfig
from protocols.dns.parser import DnsError, parse
from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.registry import build_plugins, default_config
from protocols.stats import Counters
from tests.helpers import decode_packets
from tests.protocols.dns_wire import (
    AXFR,
    MX,
    NS,
    QR,
    RA,
    RD,
    SOA,
    A,
    Capture,
    a,
    framed,
    message,
    name,
    query,
    question,
    rr,
    soa,
)

S = 1_000_000_000
CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.53", 53)


def plugin(**opts: Any) -> DnsPlugin:
    cfg = DnsConfig(ports=[53], **opts)
    return DnsPlugin(cfg, Counters())


def udp(
    p: DnsPlugin, data: bytes, ts: int, from_server: bool = False, client: tuple[str, int] = CLIENT
) -> list[dict[str, Any]]:
    conn = ConnInfo(client[0], client[1], SERVER[0], SERVER[1], "udp")
    txns = p.on_datagram(conn, FROM_SERVER if from_server else FROM_CLIENT, data, ts)
    return [p.to_event(t) for t in txns]


def answer(ident: int, qname: str = "x.example.com", ip: str = "192.0.2.1", **kw: Any) -> bytes:
    return message(ident, QR | RD | RA, [question(qname)], [rr(qname, A, a(ip))], **kw)


# -- pairing by capture time ---------------------------------------------------------------


def test_unanswered_query_expires_by_capture_time() -> None:
    p = plugin(transaction_timeout=2.0)
    assert udp(p, query(1, "x.example.com"), 10 * S) == []
    assert [e for t in p.tick(11 * S) for e in [p.to_event(t)]] == []
    (evt,) = (p.to_event(t) for t in p.tick(12 * S + 1))
    assert evt["status"] == "Error"
    assert evt["dns"]["type"] == "query"
    assert evt["error"]["message"] == ["No response to this query was received"]
    assert evt["event"] == {"start": 10 * S}
    assert evt["source"]["bytes"] == len(query(1, "x.example.com"))
    assert "bytes" not in evt["destination"]
    assert p.stats["dns.unmatched_requests"] == 1
    # the late answer is an orphan now
    (orphan,) = udp(p, answer(1), 13 * S, from_server=True)
    assert orphan["error"]["message"] == ["Response: received without an associated Query"]
    assert orphan["source"]["ip"] == CLIENT[0] and orphan["destination"]["port"] == 53
    assert orphan["event"] == {"end": 13 * S}
    assert orphan["@timestamp"] == 13 * S


def test_expiry_also_runs_on_traffic() -> None:
    p = plugin(transaction_timeout=1.0)
    udp(p, query(1, "x.example.com"), 0)
    events = udp(p, query(2, "y.example.com"), 5 * S)
    assert [e["dns"]["id"] for e in events] == [1]


def test_end_of_input_publishes_waiting_queries_in_order() -> None:
    p = plugin()
    for i in range(3):
        udp(p, query(i, f"q{i}.example.com"), i * S // 10)
    events = [p.to_event(t) for t in p.flush()]
    assert [e["dns"]["id"] for e in events] == [0, 1, 2]
    assert all(e["error"]["message"] == ["No response to this query was received"] for e in events)
    assert p.flush() == []


def test_pending_queries_are_bounded() -> None:
    p = plugin(max_pending=10)
    out = []
    for i in range(25):
        out += udp(p, query(i, "x.example.com"), i)
    assert [e["dns"]["id"] for e in out] == list(range(15))
    assert len(p.pairing.pending) == 10
    assert p.stats["dns.evicted_queries"] == 15


def test_answer_pairs_by_endpoints_and_id() -> None:
    p = plugin()
    udp(p, query(7, "x.example.com"), 0, client=("10.0.0.1", 1111))
    udp(p, query(7, "x.example.com"), 1, client=("10.0.0.2", 1111))
    (e,) = udp(p, answer(7, ip="192.0.2.2"), 2, from_server=True, client=("10.0.0.2", 1111))
    assert e["status"] == "OK" and e["source"]["ip"] == "10.0.0.2"
    assert e["dns"]["resolved_ip"] == ["192.0.2.2"]
    assert e["related"]["ip"] == ["10.0.0.2", "10.0.0.53", "192.0.2.2"]
    assert len(p.pairing.pending) == 1


@pytest.mark.parametrize(
    ("rcode", "status", "code"),
    [
        (0, "OK", "NOERROR"),
        (3, "Error", "NXDOMAIN"),
        (2, "Error", "SERVFAIL"),
        (5, "Error", "REFUSED"),
        (13, "Error", "Unknown 13"),
    ],
)
def test_rcodes(rcode: int, status: str, code: str) -> None:
    p = plugin()
    udp(p, query(1, "x.example.com"), 0)
    (e,) = udp(p, message(1, QR | RD | RA, [question("x.example.com")], rcode=rcode), 1, from_server=True)
    assert (e["status"], e["dns"]["response_code"]) == (status, code)


# -- parser --------------------------------------------------------------------------------


def test_parser_rejects_with_reasons() -> None:
    hdr = struct.pack(">HHHHHH", 1, QR, 1, 0, 0, 0)
    cases = {
        b"": "truncated",
        hdr: "empty",
        hdr + b"\xc0\x0c\x00\x01\x00\x01": "pointer_loop",
        hdr + b"\x80\x00\x00\x01\x00\x01": "bad_label_type",
        hdr + b"\x03abc": "truncated",
        hdr + name([b"a" * 63] * 4) + b"\x00\x01\x00\x01": "name_too_long",
        message(1, QR, [question("x")], [rr("x", A, b"\x01")]): "bad_rdlength",
    }
    for data, reason in cases.items():
        with pytest.raises(DnsError) as exc:
            parse(data)
        assert exc.value.reason == reason, data


def test_lying_counts_cost_nothing() -> None:
    data = struct.pack(">HHHHHH", 1, QR, 1, 65535, 65535, 65535) + question("x.example.com")
    m = parse(data)
    assert (len(m.questions), len(m.answers), len(m.authorities), len(m.additionals)) == (1, 0, 0, 0)


def _chain(n: int) -> tuple[bytes, int]:
    """ "a." at 12, then n pointers each to the previous one; returns (bytes, offset of the
    last pointer): reading there follows n pointers."""
    data = bytearray(struct.pack(">HHHHHH", 1, QR, 1, 0, 0, 0) + b"\x01a\x00")
    first = len(data)
    for i in range(n):
        data += struct.pack(">H", 0xC000 | (12 if i == 0 else first + 2 * (i - 1)))
    return bytes(data + b"\xc0\x00"), first + 2 * (n - 1)


def test_compression_memo_keeps_miekg_pointer_limit() -> None:
    """A name may follow at most 126 pointers (miekg), whether or not the memo helps."""
    from protocols.dns.parser import _Names

    data, last = _chain(126)
    names = _Names(data)
    assert names.read(last, len(data)) == ("a", last + 2)
    assert names.read(last, len(data)) == ("a", last + 2)  # through the memo now
    # one more pointer in front: 127 in all, refused although every target is memoised
    extra = len(data) - 2
    data = data[:extra] + struct.pack(">H", 0xC000 | last)
    names2 = _Names(data)
    assert names2.read(last, len(data))[0] == "a"
    with pytest.raises(DnsError):
        names2.read(extra, len(data))
    data127, last127 = _chain(127)
    with pytest.raises(DnsError):
        _Names(data127).read(last127, len(data127))


def test_memo_does_not_leak_names_past_a_records_end() -> None:
    """A name in RDATA may only use bytes before the record's end, memo or not."""
    q = question("www.example.com", MX)
    # answer 1 owner points to 12 (fills the memo for 12); answer 2's RDATA points forward
    # to a name that lies after its own end: miekg fails that.
    ans1 = rr(struct.pack(">H", 0xC00C), MX, b"\x00\x01" + struct.pack(">H", 0xC00C))
    msg_ok = message(1, QR, [q], [ans1])
    assert parse(msg_ok).answers[0][4] == {
        "name": "www.example.com",
        "type": "MX",
        "class": "IN",
        "ttl": "300",
        "preference": 1,
        "data": "www.example.com",
    }
    base = len(message(1, QR, [q], [ans1]))
    fwd = base + 12 + 4  # past answer 2's own end
    ans2 = rr(struct.pack(">H", 0xC00C), MX, b"\x00\x01" + struct.pack(">H", 0xC000 | fwd))
    tail = rr(name("mx.example.com"), A, a("192.0.2.1"))
    with pytest.raises(DnsError):
        parse(message(1, QR, [q], [ans1, ans2, tail]))


def test_names_render_as_presentation_format() -> None:
    m = parse(message(1, QR, [question(name([b"a.b", b"c d", b"\x00\xff", b'"\\', b"com"]))]))
    assert m.questions[0][0] == 'a\\.b.c\\ d.\\000\\255.\\"\\\\.com'


# -- TCP -----------------------------------------------------------------------------------


def tcp_events(
    sends: list[tuple[int, bytes]], mss: int = 1448, close: bool = True, **opts: Any
) -> tuple[list[dict[str, Any]], Counters]:
    cap = Capture()
    conv = cap.tcp(("10.0.0.1", 50000), ("10.0.0.53", 53), mss=mss)
    for side, data in sends:
        conv.send(side, data)
    if close:
        conv.close()
    cap.add(conv)
    events, dec = decode_packets([(ts, 1, f) for ts, f in cap.frames], {"dns": {"ports": [53], **opts}})
    return events, dec.stats


def test_tcp_byte_by_byte() -> None:
    q = framed(query(5, "x.example.com"))
    r = framed(answer(5))
    events, _ = tcp_events([(0, q), (1, r)], mss=1)
    (e,) = events
    assert e["status"] == "OK" and e["source"]["bytes"] == len(q) and e["destination"]["bytes"] == len(r)


def test_tcp_response_cut_by_fin_is_reported_on_the_query() -> None:
    events, stats = tcp_events([(0, framed(query(5, "x.example.com"))), (1, framed(answer(5))[:-4])])
    (e,) = events
    assert e["dns"]["type"] == "query"
    assert e["error"]["message"] == ["Response: Message's data is incomplete"]
    assert stats["dns.incomplete_messages"] == 1


def test_zone_transfer_records_are_capped() -> None:
    zq = question("z.example", AXFR)
    head = rr("z.example", SOA, soa("ns.z.example", "h.z.example", 9))
    body = [rr(f"h{i}.z.example", A, a("192.0.2.1")) for i in range(50)]
    msgs = [message(3, QR | 0x0400, [zq], [head, *body[:10]])]
    msgs += [message(3, QR | 0x0400, [], body[i : i + 10]) for i in range(10, 50, 10)]
    msgs += [message(3, QR | 0x0400, [], [rr("z.example", NS, name("ns.z.example")), head])]
    sends = [(0, framed(message(3, 0, [zq])))] + [(1, framed(m)) for m in msgs]
    events, stats = tcp_events(sends, max_transfer_records=20)
    (e,) = events
    assert e["dns"]["answers_count"] == 53
    assert len(e["dns"]["answers"]) == 11 + 20  # the first message, then the cap
    assert stats["dns.transfer_records_dropped"] == 53 - 31


def test_zone_transfer_cut_short_is_published_with_a_note() -> None:
    zq = question("z.example", AXFR)
    head = rr("z.example", SOA, soa("ns.z.example", "h.z.example", 9))
    sends = [
        (0, framed(message(3, 0, [zq]))),
        (1, framed(message(3, QR, [zq], [head, rr("a.z.example", A, a("192.0.2.1"))]))),
    ]
    events, stats = tcp_events(sends)
    (e,) = events
    assert e["error"]["message"] == ["Zone transfer incomplete"]
    assert e["dns"]["answers_count"] == 2
    assert stats["dns.incomplete_transfers"] == 1


def test_registered_in_registry_and_port_map() -> None:
    (p,) = build_plugins({"dns": default_config("dns")})
    assert p.ports == [53]
    assert p.transports == {"udp", "tcp"}


def test_public_suffix_list_is_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled list is read from the package; nothing opens a socket."""
    import socket

    import protocols.dns.fields as f

    def no_network(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("network access")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(f, "_PSL", None)
    f.domain_parts.cache_clear()
    assert dict(f.domain_parts("a.b.example.co.uk")) == {
        "etld_plus_one": "example.co.uk",
        "registered_domain": "example.co.uk",
        "top_level_domain": "co.uk",
        "subdomain": "a.b",
    }
    assert dict(f.domain_parts("foo.github.io"))["registered_domain"] == "foo.github.io"  # private section
    assert dict(f.domain_parts(".")) == {"registered_domain": "."}
    assert dict(f.domain_parts("co.uk")) == {"registered_domain": "co.uk", "top_level_domain": "uk"}
    assert f.domain_parts("com") == ()


STOCK_DNS = """
packetbeat.interfaces.device: any
packetbeat.protocols:
- type: dns
  # Enable DNS monitoring. Default: true
  #enabled: true
  ports: [53]
  include_authorities: true
  include_additionals: true
  #send_request: true
  #send_response: true
  #transaction_timeout: 10s
output.console.enabled: true
"""


def test_stock_dns_section_loads_without_warnings(tmp_path: Any) -> None:
    from shipper.agent.settings import load_settings

    path = tmp_path / "packetbeat.yml"
    path.write_text(STOCK_DNS)
    settings, warnings = load_settings(str(path), [], required=True)
    assert warnings == []
    cfg = settings.packetbeat.protocols["dns"]
    assert isinstance(cfg, DnsConfig)
    assert (cfg.ports, cfg.include_authorities, cfg.include_additionals) == ([53], True, True)
    assert (cfg.send_request, cfg.send_response, cfg.transaction_timeout) == (False, False, 10.0)


def test_unanswered_query_event_as_packetbeat_publishes_it(tmp_path: Any) -> None:
    """Packetbeat 9.3 replaying this capture in real time (no -t, transaction_timeout 1s)
    published this event on expiry; wirebeat gives the same, on capture time."""
    import json

    from shipper.pipeline.envelope import Envelope
    from tests.helpers import decode_file
    from tests.protocols.dns_wire import opt

    cap = Capture()
    cap.udp(
        ("192.0.2.10", 40001),
        ("192.0.2.53", 53),
        query(0x1111, "lonely.example.com", edns=opt(1232, do=True)),
    )
    opts = {
        "ports": [53],
        "include_authorities": True,
        "include_additionals": True,
        "transaction_timeout": 1.0,
    }
    (evt,) = decode_file(cap.write(tmp_path / "q.pcap"), {"dns": {**opts, "send_request": True}})
    Envelope(beat_name="x").apply(evt)
    evt = json.loads(json.dumps(evt))
    for k in ("agent", "host", "ecs", "@metadata", "@timestamp"):
        del evt[k]
    assert evt.pop("event") == {
        "category": ["network"],
        "dataset": "dns",
        "kind": "event",
        "start": "2023-11-14T22:13:20.000Z",
        "type": ["connection", "protocol"],
    }
    assert evt == {
        "client": {"bytes": 47, "ip": "192.0.2.10", "port": 40001},
        "destination": {"ip": "192.0.2.53", "port": 53},
        "dns": {
            "additionals_count": 0,
            "answers_count": 0,
            "authorities_count": 0,
            "flags": {
                "authentic_data": False,
                "authoritative": False,
                "checking_disabled": False,
                "recursion_available": False,
                "recursion_desired": True,
                "truncated_response": False,
            },
            "header_flags": ["RD", "DO"],
            "id": 4369,
            "op_code": "QUERY",
            "opt": {"do": True, "ext_rcode": "NOERROR", "udp_size": 1232, "version": "0"},
            "question": {
                "class": "IN",
                "etld_plus_one": "example.com",
                "name": "lonely.example.com",
                "registered_domain": "example.com",
                "subdomain": "lonely",
                "top_level_domain": "com",
                "type": "A",
            },
            "response_code": "NOERROR",
            "type": "query",
        },
        "error": {"message": "No response to this query was received"},
        "method": "QUERY",
        "network": {
            "bytes": 47,
            "community_id": "1:NI8QH/AO9GvPM//1vLEsUD3+95s=",
            "direction": "unknown",
            "protocol": "dns",
            "transport": "udp",
            "type": "ipv4",
        },
        "query": "class IN, type A, lonely.example.com",
        "related": {"ip": ["192.0.2.10", "192.0.2.53"]},
        "request": "ID 4369; QR query; OPCODE QUERY; FLAGS rd; RCODE NOERROR; QUESTION class IN, type A, lonely.example.com; ADDITIONAL ",
        "resource": "lonely.example.com",
        "server": {"ip": "192.0.2.53", "port": 53},
        "source": {"bytes": 47, "ip": "192.0.2.10", "port": 40001},
        "status": "Error",
        "type": "dns",
    }
