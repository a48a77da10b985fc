"""Bad input for the TLS decoder: random bytes, valid flights cut at every offset and fed
whole, byte by byte and in random chunks, mutated bytes, lying record / handshake /
extension / certificate lengths, certificate garbage, huge declared lengths. Only counted
errors may come out: no exception escapes, the buffers stay within their caps, and what
a valid flight yields does not depend on how it was segmented."""

from __future__ import annotations

import functools
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import tlswire as w
from benchmarks.synth import Conversation
from protocols.decoder import Decoder
from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.registry import build_plugins, default_config
from protocols.stats import Counters
from protocols.tls import TlsPlugin
from protocols.tls.config import TlsConfig
from protocols.tls.hello import parse_client_hello, parse_server_hello
from protocols.tls.parser import (
    ENCRYPTED,
    FAILED,
    MAX_ALERTS,
    MAX_CERTIFICATES,
    MAX_HANDSHAKE,
    MAX_RECORD,
    MIDSTREAM,
    DirectionParser,
)
from protocols.tls.x509 import parse_certificate, parse_certificate_list

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def chain() -> tuple[bytes, bytes]:
    ca = w.make_certificate("Fuzz CA", sans=())
    return w.make_certificate("fuzz.example", issuer_name="Fuzz CA"), ca


@functools.cache
def flights() -> tuple[bytes, bytes]:
    """A TLS 1.2 client flight and server flight up to (and with) their CCS."""
    (c1, s1, c2, s2, *_rest) = w.tls12_flights("fuzz.example", list(chain()), record_size=700)
    return c1[1] + c2[1], s1[1] + s2[1]


def plugin(**opts: Any) -> TlsPlugin:
    return TlsPlugin(
        TlsConfig(ports=[443], include_raw_certificates=True, fingerprints=["md5", "sha1", "sha256"], **opts),
        Counters(),
    )


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(data)]:
        out.append(data[prev:p])
        prev = p
    return [c for c in out if c]


def check_bounds(p: DirectionParser) -> None:
    assert len(p.buf) < 5 + MAX_RECORD
    assert len(p.hs) < 4 + MAX_HANDSHAKE
    assert len(p.alerts) <= MAX_ALERTS and len(p.certificates) <= MAX_CERTIFICATES


def feed(pieces: list[bytes]) -> tuple[list[int], DirectionParser]:
    """Feed like the handler does: a fresh parser after FAILED, nothing after ENCRYPTED."""
    stats = Counters()
    p = DirectionParser(stats)
    states = []
    for piece in pieces:
        state = p.feed(piece)
        states.append(state)
        check_bounds(p)
        if state == FAILED:
            p = DirectionParser(stats)
        elif state in (ENCRYPTED, MIDSTREAM):
            break
    return states, p


def view(p: DirectionParser) -> tuple[Any, ...]:
    h = p.hello
    return (
        p.role,
        None if h is None else (h.to_map(), h.ja3(), h.ja3s()),
        [c.der for c in p.certificates],
        [(a.level, a.code) for a in p.alerts],
        p.key_exchanged,
        p.curve,
    )


def run_handler(msgs: list[tuple[int, bytes]], gaps: bool = True) -> list[dict[str, Any]]:
    pl = plugin()
    conn = ConnInfo("10.0.0.1", 50000, "10.0.0.2", 443)
    h = pl.new_handler(conn)
    events = []
    for i, (d, data) in enumerate(msgs):
        for t in h.on_data(d, data, i):
            events.append(pl.to_event(t))
        if gaps and i % 5 == 4 and h.on_gap(d, 3):
            events += [pl.to_event(t) for t in h.on_close("gap")]
            h = pl.new_handler(conn)
    for d in (FROM_CLIENT, FROM_SERVER):
        events += [pl.to_event(t) for t in h.on_fin(d, len(msgs))]
    events += [pl.to_event(t) for t in h.on_close("flush")]
    for e in events:
        assert e["type"] == "tls" and e["status"] in ("OK", "Error")
    return events


# -- the record / handshake parser -------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=8))
def test_random_bytes(data: bytes, cuts: list[int]) -> None:
    for pieces in ([data], [data[i : i + 1] for i in range(len(data))], chunks(data, cuts)):
        feed(pieces)


@FUZZ
@given(
    head=st.sampled_from(
        [b"\x16\x03\x01", b"\x16\x03\x03", b"\x15\x03\x03", b"\x14\x03\x03", b"\x80", b"\x16\x03\x00"]
    ),
    data=st.binary(max_size=400),
)
def test_random_bytes_behind_plausible_headers(head: bytes, data: bytes) -> None:
    feed([head + data])
    feed([head + struct.pack(">H", len(data)) + data])
    feed([head + struct.pack(">H", len(data) + 4) + b"\x01" + struct.pack(">I", len(data))[1:] + data])


@FUZZ
@given(
    side=st.sampled_from([0, 1]),
    cut=st.integers(0, 10_000),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_valid_flight_cut_anywhere_and_chunked(side: int, cut: int, cuts: list[int]) -> None:
    data = flights()[side]
    whole = view(feed([data])[1])
    assert whole[1] is not None  # the hello was found
    single = view(feed([data[i : i + 1] for i in range(len(data))])[1])
    chunked = view(feed(chunks(data, cuts))[1])
    assert whole == single == chunked
    # Cut anywhere: never a failure, and what is known is what the whole flight gives so far.
    n = cut % (len(data) + 1)
    states, p = feed([data[:n]])
    assert FAILED not in states
    part = view(p)
    if part[1] is not None:
        assert part[1] == whole[1]
    assert part[2] == whole[2][: len(part[2])]


def test_valid_flight_every_offset() -> None:
    for side in (0, 1):
        data = flights()[side]
        whole = view(feed([data])[1])
        for n in range(0, len(data) + 1, 7):
            states, p = feed([data[:n], data[n:]])
            assert FAILED not in states
            assert view(p) == whole


@FUZZ
@given(
    side=st.sampled_from([0, 1]),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
)
def test_mutated_flight(side: int, flips: list[tuple[int, int]], cuts: list[int]) -> None:
    bad = bytearray(flights()[side])
    for pos, value in flips:
        bad[pos % len(bad)] = value
    feed(chunks(bytes(bad), cuts))
    run_handler([(side, bytes(bad)), (1 - side, flights()[1 - side])])


@FUZZ
@given(
    side=st.sampled_from([0, 1]),
    pos=st.integers(0, 10_000),
    length=st.sampled_from([0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x4800, 0x4801, 0xFFFF, 0xFFFFFF]),
    width=st.sampled_from([1, 2, 3]),
)
def test_lying_lengths(side: int, pos: int, length: int, width: int) -> None:
    """Overwrite a 1-3 byte field anywhere (record, handshake, vector and extension lengths
    among them) with a small or huge length."""
    bad = bytearray(flights()[side])
    at = pos % (len(bad) - width)
    bad[at : at + width] = (length & (256**width - 1)).to_bytes(width, "big")
    feed([bytes(bad)])
    feed([bytes(bad[i : i + 97]) for i in range(0, len(bad), 97)])


def test_huge_declared_lengths_allocate_nothing() -> None:
    stats = Counters()
    p = DirectionParser(stats)
    # A handshake message claiming 16 MiB: refused as soon as its header is read.
    assert p.feed(w.record(22, b"\x01\xff\xff\xff" + bytes(100))) == FAILED
    assert stats["tls.handshake_too_large"] == 1 and len(p.hs) == 0
    # A record claiming 64 KiB: not TLS.
    p = DirectionParser(stats)
    assert p.feed(b"\x16\x03\x03\xff\xff" + bytes(100)) == FAILED and stats["tls.not_tls"] == 1
    # Vectors claiming more than the message holds.
    for body in (
        b"\x03\x03" + bytes(32) + b"\x20" + bytes(10),  # session id past the end
        b"\x03\x03" + bytes(32) + b"\x00\xff\xfe\x00\x2f",  # cipher suites past the end
        b"\x03\x03" + bytes(32) + b"\x00\x00\x02\x00\x2f\xff\x00",  # compression past the end
    ):
        assert parse_client_hello(body)[0] is None
    hello, bad = parse_client_hello(
        b"\x03\x03" + bytes(32) + b"\x00\x00\x02\x00\x2f\x01\x00\xff\xff\x00\x00\xff\xff"
    )
    assert hello is not None and bad and hello.extensions.parsed is None
    assert parse_server_hello(b"\x03\x03" + bytes(32) + b"\x00\xc0")[0] is None
    assert parse_certificate_list(b"\x00\x00\x06\xff\xff\xff\x30\x82\x00") is None


def test_linear_in_the_number_of_records() -> None:
    """A 60 KB handshake message in 1-byte records, fed in one piece and in small pieces:
    nothing is rescanned (a quadratic parser would not finish within the test timeout)."""
    ch = w.client_hello(w.CHROME_CIPHERS, [w.sni("x.example"), w.ext(21, bytes(60_000))])
    data = w.records(22, ch, 1)
    for pieces in ([data], [data[i : i + 1000] for i in range(0, len(data), 1000)]):
        states, p = feed(pieces)
        assert FAILED not in states and p.hello is not None and p.hello.server_names() == ["x.example"]


def test_caps_on_alerts_and_certificates() -> None:
    stats = Counters()
    p = DirectionParser(stats)
    p.feed(w.alert(1, 0) * (MAX_ALERTS + 10))
    assert len(p.alerts) == MAX_ALERTS and stats["tls.alerts_dropped"] == 10
    p = DirectionParser(stats)
    leaf, _ca = chain()
    p.feed(w.record(22, w.certificate([leaf] * 40)) * 3)
    assert (
        len(p.certificates) == MAX_CERTIFICATES
        and stats["tls.certificates_dropped"] == 120 - MAX_CERTIFICATES
    )


# -- certificates -----------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=300))
def test_certificate_garbage(data: bytes) -> None:
    parse_certificate(b"\x30\x82" + struct.pack(">H", len(data)) + data)
    parse_certificate(data)
    parse_certificate_list(struct.pack(">I", len(data) + 3)[1:] + struct.pack(">I", len(data))[1:] + data)


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 255)), min_size=1, max_size=3))
def test_mutated_certificate(flips: list[tuple[int, int]]) -> None:
    der = bytearray(chain()[0])
    for pos, value in flips:
        der[pos % len(der)] = value
    cert = parse_certificate(bytes(der))
    if cert is not None:
        m = cert.to_map()
        assert isinstance(m["serial_number"], str) and isinstance(m["subject"], dict)
        cert.fingerprint("sha1")
        cert.pem()


# -- the handler and the whole decoder ----------------------------------------------------


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([FROM_CLIENT, FROM_SERVER]), st.binary(max_size=120)), max_size=20))
def test_handler_random_traffic(msgs: list[tuple[int, bytes]]) -> None:
    run_handler(msgs)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from([FROM_CLIENT, FROM_SERVER]), st.integers(0, 10_000), st.integers(0, 10_000)
        ),
        max_size=12,
    )
)
def test_handler_pieces_of_valid_flights(msgs: list[tuple[int, int, int]]) -> None:
    pieces = []
    for side, a, b in msgs:
        data = flights()[side]
        lo, hi = sorted((a % (len(data) + 1), b % (len(data) + 1)))
        pieces.append((side, data[lo:hi]))
    run_handler(pieces)


def decode(frames: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    dec = Decoder(build_plugins({"tls": default_config("tls", include_raw_certificates=True)}))
    out = dec.feed_many([(ts, 1, f, len(f)) for ts, f in frames])
    return out + dec.flush()


def comparable(e: dict[str, Any]) -> dict[str, Any]:
    e = dict(e)
    for k in ("@timestamp", "event"):
        e.pop(k)
    return e


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mss=st.integers(1, 1500), other=st.integers(1, 1500))
def test_segmentation_does_not_change_the_event(mss: int, other: int) -> None:
    """The same handshake carried in segments of any size gives the same event."""
    results = []
    for size in (1460, mss, other):
        conv = Conversation(("10.1.1.1", 40000), ("10.2.2.2", 443), mss=size).handshake()
        for side, data in fixed_flights():
            conv.send(side, data)
        conv.close()
        (e,) = decode(conv.frames)
        results.append(comparable(e))
    assert results[0] == results[1] == results[2]


@functools.cache
def fixed_flights() -> list[tuple[int, bytes]]:
    """One handshake (the random parts drawn once), replayed with every segmentation."""
    return w.tls12_flights("seg.example", list(chain()), record_size=900)


def test_certificate_cache_is_bounded() -> None:
    """Parsed certificates are cached by their DER, small ones only: a peer sending big
    distinct certificates cannot grow it past CACHE_SIZE * CACHE_MAX_DER bytes."""
    from protocols.tls import x509

    big = w.make_certificate("big.example", sans=[f"host-{i}.big.example" for i in range(600)])
    assert len(big) > x509.CACHE_MAX_DER
    before = x509._cached.cache_info().currsize
    cert = x509.parse_certificate(big)
    assert cert is not None and len(cert.map["alternative_names"]) == 600
    assert x509._cached.cache_info().currsize == before
    assert x509.CACHE_SIZE * x509.CACHE_MAX_DER <= 16 << 20
