"""TLS events against Packetbeat 9.3's, field for field.

``tests/data/tls/<capture>.<variant>.packetbeat.ndjson`` are the events the real
Packetbeat 9.3.0 wrote for the shared TLS captures and for ``cases.pcap`` (41 handshakes
covering certificate kinds, odd extensions, alerts, resumption, OCSP, SSLv3, an
SSLv2-format hello, gaps and resets; made by ``tests/data/tls/make_cases.py``), with the
option sets of Packetbeat's golden tests. Every field must be equal, except the deliberate
differences listed per event here — each one documented in ``docs/differences.md``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from protocols.tls.config import DEFAULT_PORTS
from shipper.pipeline.envelope import Envelope
from shipper.setup.fields import check_event, load_fields
from tests.helpers import ROOT, decode_file, shared_pcap

DATA = ROOT / "tests" / "data" / "tls"
IGNORED = ("agent.", "host.", "ecs.", "@metadata.version")

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "all": {"include_raw_certificates": True, "fingerprints": ["md5", "sha1", "sha256"]},
    "not-detailed": {"include_detailed_fields": False},
    "no-certs": {"send_certificates": False, "include_raw_certificates": True},
}

# Everywhere: the JA3S is the standard one (tshark's), and tls.curve is filled.
EVERYWHERE = {"tls.server.ja3s": "ja3s", "tls.curve": "curve"}
ORIENTATION = {
    f: "orientation"
    for f in (
        "source.ip",
        "source.port",
        "destination.ip",
        "destination.port",
        "client.ip",
        "client.port",
        "server.ip",
        "server.port",
        "related.ip",
    )
}
SSLV2 = {
    f: "sslv2-client-hello"
    for f in (
        "tls.client.ja3",
        "tls.client.supported_ciphers",
        "tls.detailed.client_hello.random",
        "tls.detailed.client_hello.supported_compression_methods",
        "tls.detailed.client_hello.version",
    )
}
TLS13_RESUMPTION = {"tls.resumed": "tls13-resumption", "tls.detailed.resumption_method": "tls13-resumption"}
#: Per event of cases.pcap (by client port): the fields allowed to differ, with the slug of
#: their section in docs/differences.md.
CASES = {
    40017: TLS13_RESUMPTION,  # TLS 1.3 full handshake: Packetbeat says resumed
    40018: TLS13_RESUMPTION,  # TLS 1.3 with a PSK: "ticket", not "id"
    40032: TLS13_RESUMPTION,  # HelloRetryRequest: Packetbeat says resumed
    40022: {"tls.detailed.ocsp_response": "ocsp-response"},  # a 5-byte OCSP "tryLater"
    40023: {"tls.detailed.client_hello.extensions.status_request.request_extensions": "status-request"},
    40026: SSLV2,  # the SSLv2-format ClientHello
    40040: {  # the same, refused by the server with an alert
        **SSLV2,
        "tls.detailed.version": "sslv2-client-hello",
        "tls.version": "sslv2-client-hello",
        "tls.version_protocol": "sslv2-client-hello",
        "tls.detailed.alerts": "alert-source",
    },
    40039: {"tls.detailed.alerts": "alert-source"},  # a hello that does not parse, the server's alert
    40041: {"tls.detailed.alerts": "alert-source"},  # the client's alert alone
    40028: ORIENTATION,  # the server spoke first (STARTTLS-like)
    40034: {"tls.detailed.resumption_method": "ticket-resumption"},  # a ticket accepted, not renewed
    40036: TLS13_RESUMPTION,  # TLS 1.3 refused by the client: Packetbeat still says resumed
    40037: {  # TLS 1.3 without the compatibility CCS: Packetbeat never sees it established
        "status": "tls13-no-ccs",
        "tls.established": "tls13-no-ccs",
        "event.end": "tls13-no-ccs",
        "event.duration": "tls13-no-ccs",
    },
}
#: Events only wirebeat reports: reset after the ClientHello, open at the end of the capture.
EXTRA_EVENTS = {40029: "in-flight", 40033: "in-flight"}

#: The standard JA3S of the shared captures, as tshark 4.0 computes it (tls.handshake.ja3s).
TSHARK_JA3S = {
    "tls-sample2": "ae53107a2e47ea20c72ac44821a728bf",
    "tls-version-13": "2b0648ab686ee45e0e7c35fcfb0eea7e",
    "http2-16-ssl": "957ca065469c0e8ba08f0b2d0244f092",
}


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def key(e: dict[str, Any]) -> tuple[tuple[int, int], str]:
    ports = sorted((e["source.port"], e["destination.port"]))
    return (ports[0], ports[1]), e["@timestamp"]


def packetbeat(name: str, variant: str) -> dict[tuple[tuple[int, int], str], dict[str, Any]]:
    path = DATA / f"{name}.{variant}.packetbeat.ndjson"
    events = [flat(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    return {key(e): e for e in events}


def wirebeat_raw(pcap: Path, variant: str) -> list[dict[str, Any]]:
    env = Envelope(beat_name="test")
    events = decode_file(pcap, {"tls": {"ports": list(DEFAULT_PORTS), **VARIANTS[variant]}})
    return [env.apply(e) for e in events]


def wirebeat(pcap: Path, variant: str) -> dict[tuple[tuple[int, int], str], dict[str, Any]]:
    # Through JSON, as an output would write it.
    events = [flat(json.loads(json.dumps(e, default=str))) for e in wirebeat_raw(pcap, variant)]
    return {key(e): e for e in events}


def diff(pb: dict[str, Any], wb: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    missing = "<missing>"
    return {
        k: (pb.get(k, missing), wb.get(k, missing))
        for k in sorted(set(pb) | set(wb))
        if not k.startswith(IGNORED) and pb.get(k, missing) != wb.get(k, missing)
    }


def documented_slugs() -> set[str]:
    text = (ROOT / "docs" / "differences.md").read_text()
    return set(re.findall(r"^### tls/([a-z0-9-]+)$", text, re.M))


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("name", list(TSHARK_JA3S))
def test_shared_captures_match_packetbeat(name: str, variant: str) -> None:
    pb = packetbeat(name, variant)
    wb = wirebeat(shared_pcap(name), variant)
    assert pb.keys() == wb.keys()
    # tls-version-13 is a TLS 1.3 session resumed with a pre-shared key.
    allowed = {**EVERYWHERE, **(TLS13_RESUMPTION if name == "tls-version-13" else {})}
    for k, expected in pb.items():
        d = diff(expected, wb[k])
        assert set(d) <= set(allowed), d
        assert wb[k]["tls.server.ja3s"] == TSHARK_JA3S[name]


def test_shared_capture_values() -> None:
    """The values Packetbeat's own system tests check, and the curves tshark shows."""
    (e,) = wirebeat(shared_pcap("http2-16-ssl"), "default").values()
    assert (e["source.ip"], e["source.port"], e["destination.ip"], e["destination.port"]) == (
        "127.0.0.1",
        60883,
        "127.0.0.1",
        443,
    )
    assert e["destination.domain"] == "localhost" and e["status"] == "OK"
    assert "network.bytes" not in e and "event.duration" in e
    assert e["tls.client.ja3"] == "ba7a226ea102737ecfa8959f26b28b95"
    assert e["tls.detailed.version"] == "TLS 1.2"
    assert e["tls.detailed.client_hello.extensions.server_name_indication"] == ["localhost"]
    assert e["tls.curve"] == "secp256r1"
    (e,) = wirebeat(shared_pcap("tls-version-13"), "default").values()
    assert e["tls.version"] == "1.3" and e["tls.cipher"] == "TLS_AES_128_GCM_SHA256"
    assert e["tls.resumed"] is True and e["tls.detailed.resumption_method"] == "ticket"
    assert e["tls.curve"] == "x25519"
    assert e["event.duration"] == 12_280_000
    (e,) = wirebeat(shared_pcap("tls-sample2"), "all").values()
    assert e["tls.server.hash.sha1"] == "7BB698386970363D2919CC5772846984FFD4A889"
    assert e["tls.server.subject"] == (
        "CN=www.example.org,OU=Technology,O=Internet Corporation for Assigned Names and Numbers,"
        "L=Los Angeles,ST=California,C=US"
    )
    assert len(e["tls.server.certificate_chain"]) == 3
    assert e["tls.curve"] == "secp256r1"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cases_match_packetbeat(variant: str) -> None:
    pcap = DATA / "cases.pcap"
    pb = packetbeat("cases", variant)
    wb = wirebeat(pcap, variant)
    extra = {k for k in wb if k not in pb}
    assert {k[0][1] for k in extra} == set(EXTRA_EVENTS)
    assert not set(pb) - set(wb)
    checked = 0
    for k, expected in pb.items():
        got = wb[k]
        client_port = got["source.port"] if got["destination.port"] in (443, 993) else got["destination.port"]
        allowed = {**EVERYWHERE, **CASES.get(client_port, {})}
        d = diff(expected, got)
        assert set(d) <= set(allowed), (client_port, {f: v for f, v in d.items() if f not in allowed})
        checked += len(expected)
    assert checked > 1000


def test_every_difference_is_documented() -> None:
    slugs = {*EVERYWHERE.values(), *EXTRA_EVENTS.values()}
    for fields in CASES.values():
        slugs |= set(fields.values())
    assert slugs <= documented_slugs()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_field_is_defined(variant: str) -> None:
    fields = load_fields()
    problems = []
    for evt in wirebeat_raw(DATA / "cases.pcap", variant):
        problems += check_event(evt, fields)
    assert not problems, problems[:20]
