"""SIP parser and fields, message by message: framing over UDP and TCP, compact and folded
headers, Packetbeat's ways of cutting URIs, name-addrs, credentials and SDP, bad input."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.registry import build_plugins, default_config
from protocols.sip import SipPlugin
from protocols.sip.fields import first_entry, parse_name_addr, parse_uri
from protocols.sip.parser import SipStream, parse_datagram
from protocols.sip.text import atoi, go_lower, go_upper, gostr, int_ascii, space_bounds, trim_space
from protocols.sip.transactions import SipEvent, SipTcpHandler
from protocols.stats import Counters

CONN = ConnInfo("10.0.0.1", 40000, "10.0.0.2", 5060, "tcp")
UCONN = ConnInfo("10.0.0.1", 5062, "10.0.0.2", 5060, "udp")


def plugin(**opts: Any) -> SipPlugin:
    p = build_plugins({"sip": default_config("sip", **opts)}, Counters())[0]
    assert isinstance(p, SipPlugin)
    return p


def msg(start: str, *headers: str, body: str = "", cl: bool = True) -> bytes:
    lines = [start, *headers]
    if cl:
        lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


INVITE = msg(
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    'To: "Bob" <sip:bob@biloxi.example.com>',
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:alice@pc33.atlanta.example.com>",
    "Content-Type: application/sdp",
    body="v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\nc=IN IP4 192.0.2.101\r\n"
    "t=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
)
RINGING = msg(
    "SIP/2.0 180 Ringing",
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.101",
    'To: "Bob" <sip:bob@biloxi.example.com>;tag=a6c85cf',
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 314159 INVITE",
)


def with_cl(m: bytes, value: str) -> bytes:
    return re.sub(rb"Content-Length: \d+", b"Content-Length: " + value.encode(), m)


def udp(data: bytes, p: SipPlugin | None = None, direction: int = FROM_CLIENT) -> list[dict[str, Any]]:
    p = p or plugin()
    return [p.to_event(t) for t in p.on_datagram(UCONN, direction, data, 1_000)]


def tcp_feed(chunks: list[bytes], p: SipPlugin | None = None) -> tuple[list[dict[str, Any]], SipPlugin]:
    p = p or plugin()
    h = p.new_handler(CONN)
    out = []
    for i, c in enumerate(chunks):
        out += [p.to_event(t) for t in h.on_data(FROM_CLIENT, c, (i + 1) * 1_000)]
    out += [p.to_event(t) for t in h.on_close("fin")]
    return out, p


# -- messages and fields -------------------------------------------------------------------------


def test_request_fields() -> None:
    (e,) = udp(INVITE)
    s = e["sip"]
    assert s["type"] == "request" and s["method"] == "INVITE" and s["version"] == "2.0"
    assert s["uri"] == {
        "original": "sip:bob@biloxi.example.com",
        "scheme": "sip",
        "host": "biloxi.example.com",
        "username": "bob",
    }
    assert s["to"] == {"display_info": "Bob", "uri": s["uri"]}
    assert s["from"]["tag"] == "1928301774" and s["from"]["display_info"] == "Alice"
    assert s["cseq"] == {"code": 314159, "method": "INVITE"}
    assert s["contact"]["uri"]["host"] == "pc33.atlanta.example.com"
    assert s["sdp"]["owner"] == {
        "username": "alice",
        "session_id": "2890844526",
        "version": "2890844526",
        "ip": "192.0.2.101",
    }
    assert s["sdp"]["connection"] == {"info": "IN IP4 192.0.2.101", "address": "192.0.2.101"}
    assert "session" not in s["sdp"]  # s=- is left out
    assert e["event"]["action"] == "sip-invite" and e["event"]["sequence"] == 314159
    assert "outcome" not in e["event"] and e["status"] == "OK"
    assert e["event"]["original"] == INVITE.decode()
    assert e["related"] == {
        "ip": ["192.0.2.101", "10.0.0.1", "10.0.0.2"],
        "user": ["bob", "alice"],
        "hosts": ["biloxi.example.com", "atlanta.example.com", "pc33.atlanta.example.com", "192.0.2.101"],
    }
    assert e["network"] == {"transport": "udp", "protocol": "sip", "application": "sip", "iana_number": "17"}


@pytest.mark.parametrize(
    ("code", "status", "outcome"),
    [(100, "OK", None), (180, "OK", None), (200, "OK", "success"), (302, "OK", "failure"),
     (401, "Error", "failure"), (486, "Error", "failure"), (603, "Error", "failure")],
)  # fmt: skip
def test_response_status_and_outcome(code: int, status: str, outcome: str | None) -> None:
    (e,) = udp(RINGING.replace(b"180 Ringing", f"{code} Some Phrase".encode()), direction=FROM_SERVER)
    assert e["sip"]["code"] == code and e["sip"]["status"] == "Some Phrase"
    assert e["status"] == status and e["event"].get("outcome") == outcome
    assert e["event"]["reason"] == "Some Phrase" and e["event"]["action"] == "sip-invite"
    assert (e["source"]["ip"], e["destination"]["ip"]) == ("10.0.0.2", "10.0.0.1")


def test_compact_header_names() -> None:
    m = (
        b"BYE sip:bob@h SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\n"
        b"t: <sip:b@h>;tag=2\r\ni: cid@h\r\nCSeq: 2 BYE\r\nm: <sip:a@10.0.0.1:5070>\r\nk: timer\r\n"
        b"c: application/sdp\r\nl: 4\r\n\r\nv=0\n"
    )
    (e,) = udp(m)
    s = e["sip"]
    assert s["call_id"] == "cid@h" and s["via"] == {"original": ["SIP/2.0/UDP a;branch=z9hG4bK1"]}
    assert s["from"]["tag"] == "1" and s["to"]["tag"] == "2" and s["contact"]["uri"]["port"] == 5070
    assert s["content_length"] == 4 and s["supported"] == ["timer"] and s["sdp"]["version"] == "0"


def test_last_and_first_header_values_as_packetbeat() -> None:
    m = msg(
        "OPTIONS sip:x@h SIP/2.0",
        "Via: SIP/2.0/UDP a",
        "Via: SIP/2.0/UDP b",
        "Via: SIP/2.0/UDP a",
        "CSeq: 1 OPTIONS",
        "CSeq: 2 options",
        "Accept: Application/SDP",
        "Accept: text/plain",
        "Allow: INVITE,  Ack ,BYE",
        "Max-Forwards: 70abc",
        "User-Agent: one",
        "User-Agent: two",
    )
    s = udp(m)[0]["sip"]
    assert s["via"]["original"] == ["SIP/2.0/UDP a", "SIP/2.0/UDP b"]
    assert s["cseq"] == {"code": 2, "method": "OPTIONS"}
    assert s["accept"] == "application/sdp"
    assert s["allow"] == ["invite", "ack", "bye"]
    assert s["max_forwards"] == 70
    assert s["user_agent"]["original"] == "two"


def test_folded_header_lines_are_joined() -> None:
    m = msg(
        "OPTIONS sip:x@h SIP/2.0", "To: Bob", "  <sip:bob@h>;tag=9", "Subject: a", "\tb", "CSeq: 5 OPTIONS"
    )
    s = udp(m)[0]["sip"]
    assert s["to"] == {"display_info": "Bob", "uri": {"original": "sip:bob@h", "scheme": "sip", "host": "h", "username": "bob"}, "tag": "9"}  # fmt: skip
    assert s["cseq"]["code"] == 5


def test_header_name_with_space_before_colon() -> None:
    s = udp(msg("OPTIONS sip:x@h SIP/2.0", "Call-ID : abc", "CSeq\t: 3 OPTIONS"))[0]["sip"]
    assert s["call_id"] == "abc" and s["cseq"]["code"] == 3


def test_authorization() -> None:
    m = msg(
        "REGISTER sip:registrar.example.com SIP/2.0",
        "CSeq: 2 REGISTER",
        'Authorization: Digest username="bob", realm="atlanta.example.com", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", '
        'opaque="", uri="sips:ss2.biloxi.example.com:5061", response="dfe56131d1958046689d83306477ecc"',
    )
    e = udp(m)[0]
    assert e["sip"]["auth"] == {
        "scheme": "Digest",
        "realm": "atlanta.example.com",
        "uri": {"original": "sips:ss2.biloxi.example.com:5061", "scheme": "sips", "host": "ss2.biloxi.example.com", "port": 5061},
    }  # fmt: skip
    assert e["user"] == {"name": "bob"} and e["event"]["category"] == ["network", "authentication"]
    anon = udp(m.replace(b'username="bob"', b'username="-"'))[0]
    assert "user" not in anon


def test_private_uri_from_the_first_name_addr() -> None:
    m = msg(
        "SIP/2.0 200 OK",
        "CSeq: 1 REGISTER",
        "P-Associated-URI: <sip:user1@home1.net>, <sip:+1-212-555-1111@home1.net;user=phone>",
    )
    s = udp(m)[0]["sip"]
    assert s["private"]["uri"] == {"original": "sip:user1@home1.net", "scheme": "sip", "host": "home1.net", "username": "user1"}  # fmt: skip


def test_contact_parameters() -> None:
    m = msg(
        "REGISTER sip:h SIP/2.0",
        'Contact: "Mr. Watson" <sip:watson@worcester.bell-telephone.com;transport=TCP;line=x1>;q=0.7; expires=3600, '
        '"Mr. Watson" <mailto:watson@bell-telephone.com> ;q=0.1',
    )
    c = udp(m)[0]["sip"]["contact"]
    assert c == {
        "display_info": "Mr. Watson",
        "uri": {"original": "sip:watson@worcester.bell-telephone.com;transport=TCP;line=x1", "scheme": "sip",
                "host": "worcester.bell-telephone.com", "username": "watson"},
        "expires": 3600, "q": 0.7, "transport": "tcp", "line": "x1",
    }  # fmt: skip
    assert udp(msg("REGISTER sip:h SIP/2.0", "Contact: <sip:a@h>;q=1"))[0]["sip"]["contact"]["q"] == 1


def test_sdp_quirks() -> None:
    body = "v=0\no=- 1 2 IN IP4 host.example.com\ns=Talk\nc=IN IP4 192.0.2.1\nm=audio 1 RTP/AVP 0\nc=IN IP4 192.0.2.2\n"
    m = msg("INVITE sip:b@h SIP/2.0", "Content-Type: Application/SDP", body=body)
    e = udp(m)[0]
    sdp = e["sip"]["sdp"]
    assert sdp["version"] == "0" and sdp["session"] == {"name": "Talk"}
    assert sdp["owner"] == {"session_id": "1", "version": "2"}  # a host name is no IP address
    assert sdp["connection"]["address"] == "192.0.2.1"  # the media c= line does not count
    assert "host.example.com" not in e["related"]["ip"]
    quoted = msg(
        "INVITE sip:b@h SIP/2.0", "Content-Type: application/sdp", body='o="Al Ice" 3 4 IN IP4 192.0.2.9\r\n'
    )
    assert udp(quoted)[0]["sip"]["sdp"]["owner"]["username"] == "Al Ice"
    for bad in ("o=\r\n", 'o="open 1 2 IN IP4 1.2.3.4\r\n', "o=a b\r\n"):
        e = udp(msg("INVITE sip:b@h SIP/2.0", "Content-Type: application/sdp", body=bad))[0]
        assert "owner" not in e["sip"].get("sdp", {})
    enc = msg(
        "INVITE sip:b@h SIP/2.0", "Content-Type: application/sdp", "Content-Encoding: gzip", body="v=0\r\n"
    )
    assert "sdp" not in udp(enc)[0]["sip"]


def test_multiple_messages_in_one_datagram() -> None:
    p = plugin()
    evs = udp(b"\r\n" + INVITE + RINGING + b"\r\n", p)
    assert [e["sip"]["type"] for e in evs] == ["request", "response"]
    assert evs[0]["event"]["original"] == "\r\n" + INVITE.decode()
    assert evs[1]["event"]["original"] == RINGING.decode() + "\r\n"


def test_udp_without_content_length_runs_to_the_end() -> None:
    m = msg("SIP/2.0 200 OK", "CSeq: 1 OPTIONS", "Call-ID: x", cl=False)
    (e,) = udp(m + b"trailing")
    assert e["sip"]["code"] == 200 and "content_length" not in e["sip"]
    assert e["event"]["original"].endswith("trailing")


# -- bad input over UDP ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "counter"),
    [
        (INVITE[:-10], "sip.incomplete_messages"),  # Content-Length beyond the data
        (with_cl(INVITE, "9999999999"), "sip.incomplete_messages"),
        (b"INVITE sip:x SIP/2.0\r\nTo: <sip:x>\r\n", "sip.incomplete_messages"),  # no CRLF CRLF
        (b"short\r\n\r\n", "sip.invalid_start_line"),
        (b"SIP/2.0 OOO OK\r\n\r\n", "sip.invalid_start_line"),
        ("SIP/2.0 ٢٠٠ OK\r\n\r\n".encode(), "sip.invalid_start_line"),  # Arabic-Indic digits
        (b"INVITE sip:x HTTP/1.1\r\n\r\n", "sip.invalid_start_line"),
    ],
)
def test_udp_bad_input_is_counted(data: bytes, counter: str) -> None:
    p = plugin()
    assert udp(data, p) == []
    assert p.stats == {counter: 1}


@pytest.mark.parametrize("value", ["-5", "1e3", "０", "²", "12abc", "", "99999999999"])
def test_udp_bad_content_length(value: str) -> None:
    p = plugin()
    m = msg("OPTIONS sip:x@h SIP/2.0", f"Content-Length: {value}", "CSeq: 1 OPTIONS", cl=False)
    evs = udp(m, p)
    assert len(evs) == 1 and "content_length" not in evs[0]["sip"]
    assert p.stats == {"sip.bad_content_length": 1}


def test_non_ascii_digits_in_cseq_and_max_forwards() -> None:
    s = udp(msg("OPTIONS sip:x@h SIP/2.0", "CSeq: ١٢ OPTIONS", "Max-Forwards: ７０"))[0]["sip"]
    assert s["cseq"] == {"method": "OPTIONS"} and "max_forwards" not in s


def test_status_code_and_version_as_packetbeat_reads_them() -> None:
    s = udp(b"SIP/2.0 70000 Weird\r\nContent-Length: 0\r\n\r\n")[0]["sip"]
    assert s["code"] == 70000 & 0xFFFF
    s = udp(b"SIP/3.1 200 OK Fine\r\nContent-Length: 0\r\n\r\n")[0]["sip"]
    assert s["version"] == "3.1" and s["status"] == "OK Fine"
    s = udp(b"OPTIONS sip:x SIP/2.x\r\nContent-Length: 0\r\n\r\n")[0]["sip"]
    assert s["version"] == f"2.{(ord('x') - 48) & 0xFF}"


# -- TCP framing -------------------------------------------------------------------------------


def test_tcp_several_messages_in_one_segment() -> None:
    evs, p = tcp_feed([INVITE + RINGING + INVITE])
    assert len(evs) == 3 and not p.stats
    assert [e["event"]["original"].encode() for e in evs] == [INVITE, RINGING, INVITE]
    assert evs[0]["network"] == {
        "transport": "tcp",
        "protocol": "sip",
        "application": "sip",
        "iana_number": "6",
    }


@pytest.mark.parametrize("cut", range(1, len(INVITE)))
def test_tcp_message_split_at_every_offset(cut: int) -> None:
    evs, p = tcp_feed([INVITE[:cut], INVITE[cut:] + RINGING])
    assert [e["event"]["original"].encode() for e in evs] == [INVITE, RINGING]
    assert evs[0]["event"]["start"] == 1_000 and evs[1]["event"]["start"] == 2_000
    assert not p.stats


def test_tcp_byte_by_byte() -> None:
    data = b"\r\n\r\n" + INVITE + RINGING
    evs, p = tcp_feed([data[i : i + 1] for i in range(len(data))])
    assert [e["event"]["original"].encode() for e in evs] == [INVITE, RINGING]
    assert not p.stats


def test_tcp_keepalives_and_trailing_crlf() -> None:
    evs, _ = tcp_feed([b"\r\n\r\n", INVITE + b"\r\n", b"\r\n", RINGING])
    assert [e["event"]["original"].encode() for e in evs] == [INVITE + b"\r\n", RINGING]


def test_tcp_no_content_length_means_no_body() -> None:
    m = msg("SIP/2.0 100 Trying", "CSeq: 1 INVITE", cl=False)
    evs, p = tcp_feed([m + RINGING])
    assert [e["sip"]["code"] for e in evs] == [100, 180]


def test_tcp_resynchronises_at_the_next_segment() -> None:
    bad = with_cl(INVITE, "-1")
    evs, p = tcp_feed([bad + RINGING, b"garbage that is no start line\r\n\r\n", RINGING])
    assert [e["sip"].get("code") for e in evs] == [180]
    assert p.stats == {"sip.bad_content_length": 1, "sip.invalid_start_line": 1}


def test_tcp_unfinished_message_at_close_is_counted() -> None:
    evs, p = tcp_feed([INVITE[:-5]])
    assert evs == [] and p.stats == {"sip.incomplete_messages": 1}


def test_tcp_headers_without_end_are_capped_in_linear_time() -> None:
    p = plugin(max_header_size=4096)
    h = p.new_handler(CONN)
    h.on_data(FROM_CLIENT, b"INVITE sip:x@h SIP/2.0\r\n", 1)
    t0 = time.perf_counter()
    for i in range(20_000):
        h.on_data(FROM_CLIENT, b"X-Filler: 0123456789\r\n", i)
    assert time.perf_counter() - t0 < 5
    assert p.stats["sip.headers_too_long"] >= 1
    assert isinstance(h, SipTcpHandler)
    st = h.streams[FROM_CLIENT]
    assert st is not None and st.pending < 4096


def test_tcp_start_line_without_end_is_capped() -> None:
    p = plugin(max_header_size=1024)
    h = p.new_handler(CONN)
    for i in range(1000):
        h.on_data(FROM_CLIENT, b"A" * 100, i)
    st = h.streams[FROM_CLIENT]
    assert st is not None and st.pending < 1024 and p.stats["sip.headers_too_long"] >= 1


def test_tcp_oversized_body_is_skipped_without_buffering() -> None:
    p = plugin(max_message_size=1000)
    big = msg("MESSAGE sip:x@h SIP/2.0", "CSeq: 1 MESSAGE", body="x" * 50_000)
    h = p.new_handler(CONN)
    out = []
    for i in range(0, len(big), 1400):
        out += h.on_data(FROM_CLIENT, big[i : i + 1400], i)
        st = h.streams[FROM_CLIENT]
        assert st is not None and st.pending < 2000
    out += h.on_data(FROM_CLIENT, RINGING, 99)
    assert [t.msg.code for t in out] == [180]
    assert p.stats == {"sip.oversized_messages": 1}


def test_tcp_gap_drops_the_partial_message_and_resyncs() -> None:
    p = plugin()
    h = p.new_handler(CONN)
    assert h.on_data(FROM_CLIENT, INVITE[:50], 1) == []
    assert h.on_gap(FROM_CLIENT, 30) is False
    assert h.on_data(FROM_CLIENT, INVITE[80:], 2) == []  # mid-message: no start line
    out = h.on_data(FROM_CLIENT, RINGING, 3)
    assert [t.msg.code for t in out] == [180]
    assert p.stats == {"sip.gap_dropped_messages": 1, "sip.invalid_start_line": 1}


def test_stream_state_is_bounded_by_its_limits() -> None:
    st = SipStream(2048, 4096)
    msgs, problems = st.feed(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 4000\r\n\r\n" + b"y" * 3000, 1)
    assert msgs == [] and problems == [] and st.pending < 2048 + 4096
    msgs, _ = st.feed(b"y" * 1000, 2)
    assert len(msgs) == 1 and len(msgs[0].body) == 4000 and msgs[0].ts == 1 and st.pending == 0


# -- helpers that mimic Go -----------------------------------------------------------------------


def test_parse_uri_like_packetbeat() -> None:
    assert parse_uri(b"sip:alice:secret@atlanta.com;transport=tcp", True) == (
        b"sip",
        b"alice:secret",
        b"atlanta.com",
        0,
        {b"transport": b"tcp"},
    )
    assert parse_uri(b"sip:[2001:db8::1]:5070") == (b"sip", b"", b"[2001:db8::1]", 5070, {})
    assert parse_uri(b"tel:+1-212-555-0101") == (b"tel", b"", b"+1-212-555-0101", 0, {})
    assert parse_uri(b"nocolon")[:3] == (b"", b"", b"")
    assert parse_uri(b"sip:h:99999999999999999999999")[3] == (1 << 63) - 1


def test_name_addr_and_lists() -> None:
    assert parse_name_addr(b'"A, B" <sip:a@h>;tag=x') == (b"A, B", b"sip:a@h", {b"tag": b"x"})
    assert parse_name_addr(b"sip:a@h;tag=y") == (b"", b"sip:a@h", {b"tag": b"y"})
    assert parse_name_addr(b"x> <y")[1] == b""  # Packetbeat's slice would panic here
    assert first_entry(b'"A, B" <sip:a@h,x>, <sip:c@h>') == b'"A, B" <sip:a@h,x>'


def test_go_text_helpers() -> None:
    assert gostr(b"a\xffb") == "a\ufffdb"
    assert go_upper(b"invit\xc3\xa9") == "INVITÉ" and go_upper("straße".encode()) == "STRAßE"
    assert go_lower("İ".encode()) == "i"
    assert trim_space("\u00a0 x \u3000".encode()) == b"x" and trim_space(b"\x1c x") == b"\x1c x"
    assert space_bounds(b"a b c") == (1, 3) and space_bounds("a\u00a0b c".encode()) == (1, 4)
    assert int_ascii(b"+12ab") == 12 and int_ascii(b"-3") == -3 and int_ascii(b"x") is None
    assert int_ascii("٣".encode()) is None
    assert atoi(b"+7") == 7 and atoi(b"7x") == 0 and atoi(b"-" + b"9" * 40) == -(1 << 63)


def test_datagram_raw_spans() -> None:
    msgs, problem = parse_datagram(INVITE + b"junk\r\n", 5)
    assert problem == "invalid_start_line" and len(msgs) == 1 and msgs[0].raw == INVITE + b"junk\r\n"
    msgs, problem = parse_datagram(INVITE + b"\r\njunk", 5)
    assert problem == "incomplete_messages" and msgs[0].raw == INVITE + b"\r\njunk"


def test_event_carrier_repr() -> None:
    (t,) = plugin().on_datagram(UCONN, FROM_CLIENT, RINGING, 1)
    assert isinstance(t, SipEvent) and "180" in repr(t)


def test_crlf_floods_and_many_small_messages_stay_linear() -> None:
    p = plugin()
    t0 = time.perf_counter()
    assert udp(b"\r\n" * 32_000, p) == []
    small = b"OPTIONS sip:x@h SIP/2.0\r\nl: 0\r\n\r\n"
    assert len(udp(small * (60_000 // len(small)), p)) == 60_000 // len(small)
    evs, _ = tcp_feed([b"\r\n" * 30_000] * 20 + [RINGING])
    assert len(evs) == 1
    assert time.perf_counter() - t0 < 10
    assert not p.stats
