"""TLS decoder units: when a session is reported (Packetbeat's rules and the flushes beyond
them), JA3/JA3S strings, hellos Packetbeat cannot take (SSLv2 format, malformed JA3
lists that crash Packetbeat 9.3), options."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import pytest

from benchmarks import tlswire as w
from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.stats import Counters
from protocols.tls import TlsPlugin
from protocols.tls.config import TlsConfig
from protocols.tls.hello import parse_client_hello, parse_server_hello, parse_sslv2_client_hello
from protocols.tls.parser import DirectionParser
from shipper.agent.config import ConfigError
from shipper.agent.settings import load_settings

CONN = ConnInfo("10.0.0.1", 51000, "10.0.0.2", 443)


@functools.cache
def leaf() -> bytes:
    return w.make_certificate("unit.example")


def plugin(**opts: Any) -> TlsPlugin:
    return TlsPlugin(TlsConfig(ports=[443], **opts), Counters())


def body(msg: bytes) -> bytes:
    return msg[4:]


CH = w.record(22, w.client_hello((0x1301, 0xC02F), [w.sni("unit.example"), w.supported_groups(29, 23)]))
SH = w.record(22, w.server_hello(0xC02F, [w.ec_point_formats(0)]) + w.certificate([leaf()]))


def run(steps: list[tuple[str, int, bytes]]) -> tuple[list[dict[str, Any]], TlsPlugin]:
    """Steps: ("data", dir, bytes), ("fin", dir, b""), ("gap", dir, b""), ("close:<reason>", 0, b"")."""
    pl = plugin()
    h = pl.new_handler(CONN)
    out = []
    for ts, (what, d, data) in enumerate(steps, 1):
        if what == "data":
            out += h.on_data(d, data, ts * 1000)
        elif what == "fin":
            out += h.on_fin(d, ts * 1000)
        elif what == "gap":
            if h.on_gap(d, 10):
                out += h.on_close("gap")
                h = pl.new_handler(CONN)
        else:
            out += h.on_close(what.split(":")[1])
    return [pl.to_event(t) for t in out], pl


# -- when a session is reported -------------------------------------------------------------


def test_reported_when_both_sides_encrypt() -> None:
    events, _ = run(
        [
            ("data", 0, CH),
            ("data", 1, SH + w.ccs()),
            ("data", 0, w.ccs() + w.encrypted(50)),
            ("fin", 0, b""),
            ("close:fin", 0, b""),
        ]
    )
    (e,) = events
    assert e["status"] == "OK" and e["tls"]["established"] is True
    assert e["event"] == {"start": 1000, "end": 3000} and e["@timestamp"] == 1000
    assert e["tls"]["server"]["subject"] == "CN=unit.example"


def test_fin_reports_what_was_seen_without_an_end() -> None:
    events, _ = run(
        [("data", 0, CH), ("data", 1, SH), ("fin", 1, b""), ("fin", 0, b""), ("close:fin", 0, b"")]
    )
    (e,) = events
    assert e["status"] == "Error" and e["tls"]["established"] is False and e["event"] == {"start": 1000}


def test_gap_reports_and_starts_over() -> None:
    events, _ = run([("data", 0, CH), ("gap", 1, b""), ("data", 0, CH), ("close:flush", 0, b"")])
    assert len(events) == 2
    assert [e["event"]["start"] for e in events] == [1000, 3000]


@pytest.mark.parametrize("reason", ["rst", "expired", "evicted", "flush"])
def test_in_flight_handshake_reported_at_close(reason: str) -> None:
    """Packetbeat drops these; wirebeat reports them (docs/differences.md tls/in-flight)."""
    (e,) = run([("data", 0, CH), ("close:" + reason, 0, b"")])[0]
    assert e["status"] == "Error" and e["tls"]["client"]["server_name"] == "unit.example"


def test_nothing_to_report() -> None:
    assert run([("data", 0, b"GET / HTTP/1.1\r\n\r\n"), ("fin", 0, b""), ("close:fin", 0, b"")])[0] == []
    assert run([("data", 0, w.encrypted(40, 23)), ("close:flush", 0, b"")])[0] == []
    assert run([("close:flush", 0, b"")])[0] == []


def test_one_report_per_connection() -> None:
    events, _ = run(
        [("data", 0, CH), ("fin", 0, b""), ("data", 1, SH), ("fin", 1, b""), ("close:fin", 0, b"")]
    )
    assert len(events) == 1 and "server" not in events[0]["tls"]


def test_picked_up_after_the_handshake() -> None:
    """Encrypted records first (capture started mid-connection): those directions are left
    alone; a handshake that really starts later on the connection cannot exist."""
    events, pl = run(
        [
            ("data", 0, w.encrypted(3000, 23)[:1000]),
            ("data", 1, w.encrypted(200, 23)),
            ("data", 0, CH),
            ("close:flush", 0, b""),
        ]
    )
    assert events == [] and pl.stats["tls.midstream"] == 2


def test_roles_come_from_the_content() -> None:
    """The transport's guess is wrong (no SYN, both ports TLS ports): the ClientHello decides."""
    events, _ = run([("data", 1, CH), ("data", 0, SH + w.ccs()), ("data", 1, w.ccs())])
    (e,) = events
    assert e["source"] == {"ip": "10.0.0.2", "port": 443} and e["destination"]["domain"] == "unit.example"
    assert e["tls"]["established"] is True and e["tls"]["server"]["subject"] == "CN=unit.example"


def test_plaintext_then_handshake_on_a_segment_boundary() -> None:
    events, pl = run(
        [
            ("data", 1, b"* OK ready\r\n"),
            ("data", 0, b"a STARTTLS\r\n"),
            ("data", 0, CH),
            ("close:flush", 0, b""),
        ]
    )
    (e,) = events
    assert e["tls"]["client"]["server_name"] == "unit.example"
    assert pl.stats["tls.not_tls"] == 2


# -- JA3 / JA3S ------------------------------------------------------------------------------


def test_ja3_strings() -> None:
    ch, bad = parse_client_hello(
        body(
            w.client_hello(
                (0x0A0A, 0x1301, 0xC02F),
                [
                    (0x1A1A, b""),
                    w.sni("a"),
                    w.supported_groups(0x2A2A, 29, 23),
                    w.ec_point_formats(0, 1),
                    (0xFF01, b"\x00"),
                ],
            )
        )
    )
    assert ch is not None and not bad
    expect = "771,4865-49199,0-10-11-65281,29-23,0-1"
    assert ch.ja3() == hashlib.md5(expect.encode()).hexdigest()
    sh, _ = parse_server_hello(
        body(w.server_hello(0xC02F, [(0xFF01, b"\x00"), w.ec_point_formats(0), w.alpn("h2")]))
    )
    assert sh is not None
    assert sh.ja3s() == hashlib.md5(b"771,49199,65281-11-16").hexdigest()


@pytest.mark.parametrize(
    ("groups", "formats", "ja3_groups", "ja3_formats"),
    [
        (b"\x00\x05\x00\x17\x00", b"\x01\x00", "23", "0"),  # a list claiming a byte it lacks
        (b"\x00\x08\x00\x17", b"\x05\x00\x01", "23", "0-1"),  # lists claiming more than they hold
    ],
)
def test_malformed_ja3_lists(groups: bytes, formats: bytes, ja3_groups: str, ja3_formats: str) -> None:
    """Packetbeat 9.3 panics on these (index out of range in extractJa3Array), ending the
    process; wirebeat takes the entries present (docs/differences.md tls/malformed-ja3-lists)."""
    msg = w.client_hello((0xC02F,), [(10, groups), (11, formats)])
    ch, _ = parse_client_hello(body(msg))
    assert ch is not None
    assert ch.ja3() == hashlib.md5(f"771,49199,10-11,{ja3_groups},{ja3_formats}".encode()).hexdigest()
    (e,) = run([("data", 0, w.record(22, msg)), ("close:flush", 0, b"")])[0]
    assert e["tls"]["client"]["ja3"] == ch.ja3()


# -- hellos Packetbeat does not take ------------------------------------------------------------


def test_sslv2_client_hello() -> None:
    msg = w.sslv2_client_hello((0x0035, 0x002F, 0x0A0A), v2_specs=(0x010080,), challenge=bytes(range(16)))
    ch = parse_sslv2_client_hello(msg[2:])
    assert ch is not None and ch.version == (3, 1)
    assert ch.supported_ciphers() == ["TLS_RSA_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"]
    assert ch.random == bytes(16) + bytes(range(16))
    assert ch.ja3() == hashlib.md5(b"769,53-47,,,").hexdigest()
    stats = Counters()
    p = DirectionParser(stats)
    assert p.feed(msg[:1]) == 1 and p.feed(msg[1:] + CH) == 0  # MORE, then OK
    assert p.hello is not None and p.hello.server_names() == ["unit.example"]  # the TLS hello that followed
    assert stats["tls.sslv2_client_hellos"] == 1


def test_sslv3() -> None:
    ch = w.record(22, w.client_hello((0x0005,), None, version=w.SSL3), w.SSL3)
    sh = w.record(22, w.server_hello(0x0005, None, version=w.SSL3), w.SSL3)
    (e,) = run([("data", 0, ch), ("data", 1, sh + w.ccs(w.SSL3)), ("data", 0, w.ccs(w.SSL3))])[0]
    tls = e["tls"]
    assert (tls["version_protocol"], tls["version"], tls["detailed"]["version"]) == ("ssl", "3.0", "SSL 3.0")
    assert tls["cipher"] == "TLS_RSA_WITH_RC4_128_SHA" and "extensions" not in tls["detailed"]["client_hello"]


def test_tls13_curve_and_dhe_without_curve() -> None:
    sh13 = w.record(
        22, w.server_hello(0x1301, [w.supported_versions_server(0x0304), w.key_share_server(0x11EC, 1120)])
    )
    (e,) = run([("data", 0, CH), ("data", 1, sh13), ("close:flush", 0, b"")])[0]
    assert e["tls"]["curve"] == "(unknown:0x11ec)" and e["tls"]["version"] == "1.3"
    dhe = w.record(22, w.server_hello(0x009E) + w.handshake(12, b"\x00\x03\x01\x00\x01" + bytes(300)))
    (e,) = run([("data", 0, CH), ("data", 1, dhe), ("close:flush", 0, b"")])[0]
    assert "curve" not in e["tls"] and e["tls"]["cipher"] == "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"


# -- options --------------------------------------------------------------------------------


def test_fingerprint_names() -> None:
    assert TlsConfig(fingerprints=["SHA-1", "sha256", "MD5", "sha1"]).hash_names() == (
        "sha1",
        "sha256",
        "md5",
    )
    with pytest.raises(ValueError, match="sha512"):
        TlsConfig(fingerprints=["sha512"])


def test_packetbeat_tls_section_loads_without_warning(tmp_path: Any) -> None:
    cfg = tmp_path / "pb.yml"
    cfg.write_text(
        """
packetbeat.protocols:
- type: tls
  enabled: true
  ports: [443, 993, 995, 5223, 8443, 8883, 9243]
  fingerprints: [sha1]
  send_certificates: true
  include_raw_certificates: false
  include_detailed_fields: true
  keep_null: false
  index: my-custom-tls-index
output.console: {}
"""
    )
    settings, warnings = load_settings(str(cfg))
    tls = settings.packetbeat.protocols["tls"]
    assert isinstance(tls, TlsConfig) and tls.fingerprints == ["sha1"] and not warnings
    cfg.write_text(
        "packetbeat.protocols:\n- type: tls\n  ports: [443]\n  fingerprints: [crc32]\noutput.console: {}\n"
    )
    with pytest.raises(ConfigError, match="crc32"):
        load_settings(str(cfg))


def test_options_shape_the_event() -> None:
    flight = [("data", 0, CH), ("data", 1, SH + w.ccs()), ("data", 0, w.ccs())]
    pl = plugin(
        send_certificates=False, include_detailed_fields=False, include_raw_certificates=True, fingerprints=[]
    )
    h = pl.new_handler(CONN)
    out = []
    for i, (_k, d, data) in enumerate(flight):
        out += h.on_data(d, data, i)
    (e,) = [pl.to_event(t) for t in out]
    server = e["tls"]["server"]
    assert "detailed" not in e["tls"] and "x509" not in server and "hash" not in server
    assert server["certificate_chain"][0].startswith("-----BEGIN CERTIFICATE-----\n")
    assert server["subject"] == "CN=unit.example"
    assert FROM_CLIENT == 0 and FROM_SERVER == 1
