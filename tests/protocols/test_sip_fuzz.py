"""Fuzzing the SIP decoder: random bytes, valid messages cut at every offset and mutated, lying
Content-Lengths, fed as datagrams and as TCP streams (whole, byte by byte, random chunks).
Only counted problems may come out: no exception escapes, every event fits the index
template, the stream buffers stay within their limits."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.handler import FROM_CLIENT, ConnInfo
from protocols.registry import build_plugins, default_config
from protocols.sip import SipPlugin
from protocols.sip.fields import _parse_uri, _parse_uri_scan
from protocols.sip.parser import SipStream, parse_datagram
from protocols.sip.text import trim_space
from protocols.sip.transactions import SipTcpHandler
from protocols.stats import Counters
from shipper.pipeline.envelope import Envelope
from shipper.setup.fields import check_event, load_fields

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = load_fields()
ENV = Envelope(beat_name="fuzz")
CONN = ConnInfo("10.0.0.1", 40000, "10.0.0.2", 5060, "tcp")
UCONN = ConnInfo("10.0.0.1", 5062, "10.0.0.2", 5060, "udp")
MAX_HEADER = 600
MAX_BODY = 400

SAMPLES = [
    b"INVITE sip:bob@[2001:db8::2]:5070;transport=tcp SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n"
    b'From: "A, B" <sip:alice:pw@atlanta.example.com>;tag=1\r\nTo: <sip:bob@h>\r\n'
    b"Call-ID: x@y\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.1;transport=tcp;line=z>;q=0.5;expires=60\r\n"
    b"Allow: INVITE, ACK\r\nSupported: timer\r\nUser-Agent: ua\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: 84\r\n\r\n"
    b"v=0\r\no=u 1 2 IN IP4 192.0.2.1\r\ns=x\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n",
    b"SIP/2.0 180 Ringing\r\nv: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\n"
    b"t: <sip:b@h>;tag=2\r\ni: x@y\r\nCSeq: 1 INVITE\r\nm: <sip:b@10.0.0.2>\r\nl: 0\r\n\r\n",
    b"\r\n\r\nREGISTER sip:h SIP/2.0\r\nCSeq: 2 REGISTER\r\n"
    b'Authorization: Digest username="u", realm="r", uri="sip:h:5060", response="x"\r\n'
    b"P-Associated-URI: <sip:p@h>\r\nSubject: folded\r\n line\r\nContent-Length: 0\r\n\r\n",
    b"SIP/2.0 200 OK\r\nCSeq: 2 REGISTER\r\nContent-Type: application/sdp\r\nContent-Length: 28\r\n\r\n"
    b'v=0\no="q u" 1 2 IN IP4 host\n',
]
STREAM = b"".join(SAMPLES)


def plugin() -> SipPlugin:
    p = build_plugins(
        {"sip": default_config("sip", max_header_size=MAX_HEADER, max_message_size=MAX_BODY)}, Counters()
    )[0]
    assert isinstance(p, SipPlugin)
    return p


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(data)]:
        out.append(data[prev:p])
        prev = p
    return [c for c in out if c]


def check(p: SipPlugin, txns: list[Any]) -> list[dict[str, Any]]:
    evs = []
    for t in txns:
        e = ENV.apply(p.to_event(t))
        assert check_event(e, FIELDS) == [], e
        evs.append(e)
    return evs


def tcp(data_pieces: list[bytes]) -> tuple[list[bytes], SipPlugin]:
    p = plugin()
    h = p.new_handler(CONN)
    assert isinstance(h, SipTcpHandler)
    raws = []
    for i, piece in enumerate(data_pieces):
        out = h.on_data(FROM_CLIENT, piece, i)
        check(p, out)
        raws += [t.msg.raw for t in out]
        st_ = h.streams[FROM_CLIENT]
        assert st_ is not None and st_.pending <= MAX_HEADER + MAX_BODY + len(piece)
    h.on_close("fin")
    return raws, p


def three_ways(data: bytes, cuts: list[int]) -> list[tuple[list[bytes], SipPlugin]]:
    return [
        tcp(pieces) for pieces in ([data], [data[i : i + 1] for i in range(len(data))], chunks(data, cuts))
    ]


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_datagrams(data: bytes) -> None:
    p = plugin()
    check(p, p.on_datagram(UCONN, FROM_CLIENT, data, 1))
    msgs, problem = parse_datagram(data, 1)
    assert msgs or problem or not data.strip(b"\r\n")


@FUZZ
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=8))
def test_random_streams(data: bytes, cuts: list[int]) -> None:
    three_ways(data, cuts)


@FUZZ
@given(cut=st.integers(0, len(STREAM)), cuts=st.lists(st.integers(0, len(STREAM)), max_size=10))
def test_valid_stream_cut_and_chunked(cut: int, cuts: list[int]) -> None:
    p = plugin()
    # CRLFs between messages go with the one before or after depending on the segments.
    whole, single, chunked = ([m.strip(b"\r\n") for m in r] for r, _ in three_ways(STREAM, cuts))
    assert whole == single == chunked == [m.strip(b"\r\n") for m in SAMPLES]
    # Cut anywhere: what completes is a prefix of the messages, and nothing is counted.
    h = p.new_handler(CONN)
    part = [t.msg.raw.strip(b"\r\n") for t in h.on_data(FROM_CLIENT, STREAM[:cut], 0)]
    assert part == [m.strip(b"\r\n") for m in SAMPLES[: len(part)]] and not p.stats
    # The same messages as datagrams, one each.
    for s in SAMPLES:
        msgs, problem = parse_datagram(s, 0)
        assert [m.raw for m in msgs] == [s] and not problem


@FUZZ
@given(
    pos=st.lists(st.integers(0, len(STREAM) - 1), min_size=1, max_size=6),
    new=st.binary(min_size=1, max_size=6),
    mode=st.sampled_from(["replace", "insert", "delete"]),
    cuts=st.lists(st.integers(0, len(STREAM)), max_size=8),
)
def test_mutated_messages(pos: list[int], new: bytes, mode: str, cuts: list[int]) -> None:
    data = bytearray(STREAM)
    for i in sorted(pos, reverse=True):
        if mode == "replace":
            data[i : i + len(new)] = new
        elif mode == "insert":
            data[i:i] = new
        else:
            del data[i : i + len(new)]
    three_ways(bytes(data), cuts)
    for s in bytes(data).split(b"\r\n\r\n\r\n"):
        p = plugin()
        check(p, p.on_datagram(UCONN, FROM_CLIENT, s, 1))


@FUZZ
@given(
    length=st.one_of(
        st.integers(-(10**12), 10**12).map(str),
        st.text(alphabet="0123456789-+ .e²٣０x", max_size=14),
    ),
    cuts=st.lists(st.integers(0, 300), max_size=6),
)
def test_lying_content_length(length: str, cuts: list[int]) -> None:
    data = re.sub(rb"Content-Length: \d+", b"Content-Length: " + length.encode(), SAMPLES[0]) + SAMPLES[1]
    st_ = SipStream(MAX_HEADER, MAX_BODY)
    st_.feed(data, 0)
    assert st_.pending <= MAX_HEADER + MAX_BODY
    p = plugin()
    check(p, p.on_datagram(UCONN, FROM_CLIENT, data, 1))
    # After a framing error the stream is read again from the next segment, so what comes
    # out depends on the segments; every loss is counted (unless a longer length took the
    # next message in as body).
    for raws, pw in three_ways(data, cuts):
        if SAMPLES[1] not in raws and not any(SAMPLES[1][:40] in r for r in raws):
            assert pw.stats


@FUZZ
@given(uri=st.binary(max_size=24) | st.text(alphabet="sip:@;[]\\ =x1.", max_size=24).map(str.encode))
def test_uri_shortcut_cuts_like_packetbeats_scan(uri: bytes) -> None:
    for want_params in (False, True):
        assert _parse_uri(uri, want_params) == _parse_uri_scan(trim_space(uri), want_params)
