"""Live TLS: Python ``ssl`` and ``openssl`` clients and servers on 127.0.0.1, captured with
tcpdump, decoded by wirebeat. Every event is checked against what the peers really did
(version, cipher, SNI, ALPN, resumption as the client library reports them; certificates
against the DER the test generated; alerts against the failure the client saw) and
against tshark's view of the same capture (JA3, JA3S, key-exchange group)."""

from __future__ import annotations

import hashlib
import itertools
import ssl
import struct
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from protocols.tls.names import GROUPS
from tests.helpers import decode_file, need_tool
from tests.integration.tls_peers import (
    Cert,
    Pki,
    PyServer,
    capture,
    client_context,
    openssl_iana_names,
    openssl_server,
    py_connect,
    s_client,
    server_context,
    tshark_view,
)
from tests.oracle.recordings import record_for_oracle

pytestmark = pytest.mark.integration

V12, V13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
GROUP_CODES = {v: k for k, v in GROUPS.items()}
#: openssl s_client's "Server Temp Key" → IANA group name.
TEMP_KEYS = {
    "X25519": "x25519",
    "X448": "x448",
    "prime256v1": "secp256r1",
    "secp384r1": "secp384r1",
    "secp521r1": "secp521r1",
}

SNIS = [
    "v13.localhost",
    "v12.localhost",
    "rsa-kx.localhost",
    "mtls12.localhost",
    "mtls13.localhost",
    "ticket12.localhost",
    "id12.localhost",
    "psk13.localhost",
    "unknown-ca.localhost",
    "unknown-ca13.localhost",
    "no-compat13.localhost",
    "old-version.localhost",
    "frag12.localhost",
    "sclient12.localhost",
    "sclient13.localhost",
]


class Run:
    """Every connection the workload made, the events, and tshark's view."""

    def __init__(self) -> None:
        self.py: dict[str, list[dict[str, Any]]] = {}
        self.ossl: dict[str, list[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.tshark: dict[int, dict[str, Any]] = {}
        self.pki: Pki
        self.iana: dict[str, str] = {}
        self.pcap: Path

    def event(self, conn: dict[str, Any]) -> dict[str, Any]:
        mine = [e for e in self.events if e["source"]["port"] == conn["port"]]
        assert len(mine) == 1, (conn["sni"], len(mine))
        return mine[0]

    def events_for(self, sni: str) -> list[dict[str, Any]]:
        return sorted(
            (e for e in self.events if e.get("tls", {}).get("client", {}).get("server_name") == sni),
            key=lambda e: e["@timestamp"],
        )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    need_tool("tcpdump")
    need_tool("tshark")
    need_tool("openssl")
    d = tmp_path_factory.mktemp("tls")
    r = Run()
    r.pki = pki = Pki(d, SNIS)
    r.iana = openssl_iana_names()
    probe = PyServer(None)  # plain TCP: the capture's readiness probes go here
    main = PyServer(server_context(pki), small=True)
    mtls = PyServer(server_context(pki, mtls=True))
    only13 = PyServer(server_context(pki, minimum=V13))
    no_tickets = PyServer(server_context(pki, tickets=False))
    servers = [main, mtls, only13, no_tickets]
    with openssl_server(pki, "-max_send_frag", "512") as ossl_port:
        ports = [s.port for s in servers] + [ossl_port]
        pcap = d / "tls.pcap"
        with capture(pcap, [probe.port, *ports]):

            def py(sni: str, server: int, ctx: ssl.SSLContext, **kw: Any) -> dict[str, Any]:
                c = py_connect(server, ctx, sni, **kw)
                r.py.setdefault(sni, []).append(c)
                return c

            py("v13.localhost", main.port, client_context(pki))
            py("v12.localhost", main.port, client_context(pki, maximum=V12), small=True)
            py("rsa-kx.localhost", ossl_port, client_context(pki, maximum=V12, ciphers="AES128-GCM-SHA256"))
            py("mtls12.localhost", mtls.port, client_context(pki, maximum=V12, cert=True))
            py("mtls13.localhost", mtls.port, client_context(pki, cert=True))
            for sni, port, ctx in (
                ("ticket12.localhost", main.port, client_context(pki, maximum=V12)),
                ("id12.localhost", no_tickets.port, client_context(pki, maximum=V12, tickets=False)),
                ("psk13.localhost", main.port, client_context(pki)),
            ):
                first = py(sni, port, ctx)
                py(sni, port, ctx, session=first["session"])
            py("unknown-ca.localhost", main.port, client_context(pki, maximum=V12, ca="rogue.pem"))
            py("unknown-ca13.localhost", main.port, client_context(pki, ca="rogue.pem"))
            no_compat = client_context(pki)
            no_compat.options &= ~ssl.OP_ENABLE_MIDDLEBOX_COMPAT
            py("no-compat13.localhost", main.port, no_compat)
            py("old-version.localhost", only13.port, client_context(pki, maximum=V12))
            py("frag12.localhost", ossl_port, client_context(pki, maximum=V12), small=True)
            r.ossl["sclient12.localhost"] = [
                s_client(pki, ossl_port, "sclient12.localhost", "-tls1_2", "-alpn", "h2,http/1.1")
            ]
            sess = str(d / "sess13")
            r.ossl["sclient13.localhost"] = [
                s_client(pki, ossl_port, "sclient13.localhost", "-tls1_3", "-sess_out", sess),
                s_client(pki, ossl_port, "sclient13.localhost", "-tls1_3", "-sess_in", sess),
            ]
        for s in [probe, *servers]:
            s.close()
    r.pcap = pcap
    record_for_oracle(pcap, [{"type": "tls", "ports": ports}])
    r.events = decode_file(
        pcap,
        {
            "tls": {
                "ports": ports,
                "fingerprints": ["md5", "sha1", "sha256"],
                "include_raw_certificates": True,
            }
        },
    )
    r.tshark = tshark_view(pcap, ports)
    return r


def iana(run: Run, conn: dict[str, Any]) -> str:
    name = conn["cipher"]
    return name if name.startswith("TLS_") else run.iana[name]


def check_handshake(run: Run, e: dict[str, Any], conn: dict[str, Any]) -> None:
    """What every successful handshake must show."""
    tls = e["tls"]
    assert e["type"] == "tls" and e["status"] == "OK"
    assert tls["established"] is True
    assert e["destination"]["ip"] == "127.0.0.1" and e["destination"]["domain"] == conn["sni"]
    assert tls["client"]["server_name"] == conn["sni"]
    assert tls["version_protocol"] == "tls"
    assert "TLSv" + tls["version"] == conn["version"]
    assert tls["detailed"]["version"] == conn["version"].replace("TLSv", "TLS ")
    assert tls["cipher"] == iana(run, conn)
    if conn["version"] == "TLSv1.3":
        assert "next_protocol" not in tls  # the server's ALPN choice is encrypted in TLS 1.3
    else:
        assert tls.get("next_protocol") == conn["alpn"]
    assert tls["resumed"] is conn["reused"]
    assert e["event"]["end"] >= e["event"]["start"] == e["@timestamp"]
    # JA3 / JA3S and the group: tshark computed them from the same packets.
    ts = run.tshark[e["source"]["port"]]
    assert tls["client"]["ja3"] == ts["ja3"], ts["ja3_full"]
    assert tls["server"]["ja3s"] == ts["ja3s"], ts["ja3s_full"]
    if "group" in ts:
        assert GROUP_CODES[tls["curve"]] == ts["group"]
    else:
        assert "curve" not in tls


def check_certificate(x: dict[str, Any], c: Cert, issuer: Cert) -> None:
    assert x["subject"]["distinguished_name"] == c.dn
    assert x["issuer"]["distinguished_name"] == issuer.dn
    assert x["subject"]["common_name"] == dict(c.subject)["CN"]
    assert x["serial_number"] == format(c.serial, "X")
    assert x["not_before"] == c.cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert x["not_after"] == c.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert x["version_number"] == 3


def check_leaf(side: dict[str, Any], c: Cert, issuer: Cert) -> None:
    assert side["subject"] == c.dn and side["issuer"] == issuer.dn
    assert side["hash"] == {
        "md5": hashlib.md5(c.der).hexdigest().upper(),
        "sha1": hashlib.sha1(c.der).hexdigest().upper(),
        "sha256": hashlib.sha256(c.der).hexdigest().upper(),
    }
    check_certificate(side["x509"], c, issuer)


def test_tls13(run: Run) -> None:
    (conn,) = run.py["v13.localhost"]
    assert conn["ok"] and conn["version"] == "TLSv1.3" and conn["reply"] == b"pong GET / HTTP/1.0\r\n\r\n"
    e = run.event(conn)
    check_handshake(run, e, conn)
    tls = e["tls"]
    # Certificates are encrypted in TLS 1.3; the legacy session id is echoed, yet no resumption.
    assert "x509" not in tls.get("server", {}) and "subject" not in tls["server"]
    assert tls["resumed"] is False and "resumption_method" not in tls["detailed"]
    ch = tls["detailed"]["client_hello"]
    assert ch["version"] == "3.3" and "TLS 1.3" in ch["extensions"]["supported_versions"]
    assert ch["extensions"]["application_layer_protocol_negotiation"] == ["h2", "http/1.1"]
    assert tls["detailed"]["server_hello"]["extensions"]["supported_versions"] == "TLS 1.3"
    assert tls["detailed"]["server_hello"]["session_id"] == ch["session_id"]


def test_tls12_certificate_chain(run: Run) -> None:
    (conn,) = run.py["v12.localhost"]
    assert conn["version"] == "TLSv1.2"
    e = run.event(conn)
    check_handshake(run, e, conn)
    tls = e["tls"]
    pki = run.pki
    check_leaf(tls["server"], pki.server_ec, pki.inter)
    x = tls["server"]["x509"]
    assert x["public_key_algorithm"] == "ECDSA" and x["public_key_size"] == 256
    assert x["signature_algorithm"] == "ECDSA-SHA256"  # the P-384 intermediate signs with SHA-256
    assert x["alternative_names"] == [*SNIS, "127.0.0.1"]
    (inter,) = tls["detailed"]["server_certificate_chain"]
    check_certificate(inter, pki.inter, pki.root)
    assert inter["signature_algorithm"] == "SHA256-RSA" and inter["public_key_size"] == 384
    assert tls["server"]["certificate_chain"] == [pki.server_ec.pem().decode(), pki.inter.pem().decode()]
    assert tls["detailed"]["client_certificate_requested"] is False


def test_rsa_key_exchange_fragmented_records(run: Run) -> None:
    # openssl s_server -max_send_frag 512: the certificate message spans many records.
    for sni in ("rsa-kx.localhost", "frag12.localhost"):
        (conn,) = run.py[sni]
        e = run.event(conn)
        check_handshake(run, e, conn)
        tls = e["tls"]
        check_leaf(tls["server"], run.pki.server_rsa, run.pki.inter)
        assert tls["server"]["x509"]["public_key_size"] == 3072
        assert tls["server"]["x509"]["public_key_algorithm"] == "RSA"
    rsa_kx = run.event(run.py["rsa-kx.localhost"][0])["tls"]
    assert rsa_kx["cipher"] == "TLS_RSA_WITH_AES_128_GCM_SHA256" and "curve" not in rsa_kx


def segments(pcap: Path, src_port: int, dst_port: int) -> list[bytes]:
    """The TCP payloads one side sent, in capture order (tcpdump on lo: Ethernet, IPv4)."""
    out = []
    for _ts, _lt, frame, _wl in CaptureFile(str(pcap)):
        ip = frame[14:]
        if len(ip) < 20 or ip[9] != 6:
            continue
        t = ip[(ip[0] & 15) * 4 :]
        if struct.unpack(">HH", t[:4]) == (src_port, dst_port):
            payload = t[(t[12] >> 4) * 4 : struct.unpack(">H", ip[2:4])[0] - (ip[0] & 15) * 4]
            if payload:
                out.append(bytes(payload))
    return out


def test_records_span_segments_and_messages_span_records(run: Run) -> None:
    """The fragmented server flight really was fragmented both ways."""
    (conn,) = run.py["frag12.localhost"]
    e = run.event(conn)
    segs = segments(run.pcap, e["destination"]["port"], conn["port"])
    stream = b"".join(segs)
    bounds = set(itertools.accumulate(len(s) for s in segs))
    pos, records, spanning = 0, 0, 0
    while pos + 5 <= len(stream) and stream[pos] == 22:
        end = pos + 5 + int.from_bytes(stream[pos + 3 : pos + 5], "big")
        records += 1
        spanning += any(pos < b < end for b in bounds)
        pos = end
    assert records >= 4 and spanning >= 1 and len(segs) >= 3, (records, spanning, len(segs))


def test_mutual_tls(run: Run) -> None:
    (conn,) = run.py["mtls12.localhost"]
    e = run.event(conn)
    check_handshake(run, e, conn)
    tls = e["tls"]
    assert tls["detailed"]["client_certificate_requested"] is True
    check_leaf(tls["client"], run.pki.client, run.pki.root)
    assert tls["client"]["x509"]["public_key_algorithm"] == "RSA"
    # OpenSSL completes the client's chain from its trust store: the root follows.
    assert tls["client"]["certificate_chain"] == [run.pki.client.pem().decode(), run.pki.root.pem().decode()]
    (root,) = tls["detailed"]["client_certificate_chain"]
    check_certificate(root, run.pki.root, run.pki.root)
    # TLS 1.3: the request and the client's certificate are encrypted.
    (conn,) = run.py["mtls13.localhost"]
    e = run.event(conn)
    check_handshake(run, e, conn)
    assert "x509" not in e["tls"]["client"] and e["tls"]["detailed"]["client_certificate_requested"] is False


@pytest.mark.parametrize(
    ("sni", "method"),
    [("ticket12.localhost", "ticket"), ("id12.localhost", "id"), ("psk13.localhost", "ticket")],
)
def test_resumption(run: Run, sni: str, method: str) -> None:
    first, second = run.py[sni]
    assert (first["reused"], second["reused"]) == (False, True)
    for conn in (first, second):
        check_handshake(run, run.event(conn), conn)
    tls = run.event(second)["tls"]
    assert tls["detailed"]["resumption_method"] == method
    assert "resumption_method" not in run.event(first)["tls"]["detailed"]
    if method == "id":
        assert tls["detailed"]["client_hello"]["session_id"] == tls["detailed"]["server_hello"]["session_id"]
    if sni != "psk13.localhost":
        # An abbreviated TLS 1.2 handshake: no certificate, no key exchange.
        assert "x509" not in tls.get("server", {}) and "curve" not in tls


def test_unknown_ca(run: Run) -> None:
    (conn,) = run.py["unknown-ca.localhost"]
    assert not conn["ok"] and isinstance(conn["error"], ssl.SSLCertVerificationError)
    e = run.event(conn)
    tls = e["tls"]
    assert e["status"] == "Error" and tls["established"] is False
    assert "end" not in e["event"]
    assert tls["detailed"]["alerts"] == [
        {"severity": "fatal", "code": 48, "type": "unknown_ca", "source": "client"}
    ]
    assert tls["detailed"]["alert_types"] == ["unknown_ca"]
    # The server's flight was complete: its certificate is there.
    check_leaf(tls["server"], run.pki.server_ec, run.pki.inter)
    assert tls["client"]["ja3"] == run.tshark[conn["port"]]["ja3"]


def test_unknown_ca_tls13(run: Run) -> None:
    """The server's CCS and encrypted flight came; the client refused the certificate with a
    plaintext alert and never encrypted: not established."""
    (conn,) = run.py["unknown-ca13.localhost"]
    assert not conn["ok"] and isinstance(conn["error"], ssl.SSLCertVerificationError)
    e = run.event(conn)
    tls = e["tls"]
    assert e["status"] == "Error" and tls["established"] is False and "end" not in e["event"]
    assert tls["version"] == "1.3" and tls["resumed"] is False
    assert tls["detailed"]["alerts"] == [
        {"severity": "fatal", "code": 48, "type": "unknown_ca", "source": "client"}
    ]
    ts = run.tshark[conn["port"]]
    assert tls["client"]["ja3"] == ts["ja3"] and tls["server"]["ja3s"] == ts["ja3s"]


def test_tls13_without_compatibility_ccs(run: Run) -> None:
    """No ChangeCipherSpec from the client (and an empty legacy session id): established
    when the client encrypts (docs/differences.md tls/tls13-no-ccs)."""
    (conn,) = run.py["no-compat13.localhost"]
    e = run.event(conn)
    check_handshake(run, e, conn)
    assert "session_id" not in e["tls"]["detailed"]["client_hello"]


def test_protocol_version_refused(run: Run) -> None:
    (conn,) = run.py["old-version.localhost"]
    assert not conn["ok"] and "VERSION" in str(conn["error"]).upper()
    e = run.event(conn)
    tls = e["tls"]
    assert e["status"] == "Error" and tls["established"] is False
    assert tls["detailed"]["alerts"] == [
        {"severity": "fatal", "code": 70, "type": "protocol_version", "source": "server"}
    ]
    assert "server_hello" not in tls["detailed"] and "cipher" not in tls
    # No ServerHello: the version is the client's offer.
    assert tls["version"] == "1.2" and tls["detailed"]["client_hello"]["version"] == "3.3"
    assert "supported_versions" not in tls["detailed"]["client_hello"]["extensions"]


def test_openssl_s_client(run: Run) -> None:
    (out,) = run.ossl["sclient12.localhost"]
    assert out["version"] == "TLSv1.2" and out["verify"] == 0, out["text"][-500:]
    (e,) = run.events_for("sclient12.localhost")
    tls = e["tls"]
    assert e["status"] == "OK" and tls["established"] is True
    assert tls["version"] == "1.2" and tls["cipher"] == run.iana[out["cipher"]]
    assert tls.get("next_protocol") == out["alpn"]
    kind, _bits = out["temp_key"]
    assert tls["curve"] == TEMP_KEYS[kind if kind != "ECDH" else _bits.strip()]
    check_leaf(tls["server"], run.pki.server_rsa, run.pki.inter)
    ts = run.tshark[e["source"]["port"]]
    assert tls["client"]["ja3"] == ts["ja3"] and tls["server"]["ja3s"] == ts["ja3s"]


def test_openssl_tls13_resumption(run: Run) -> None:
    first, second = run.ossl["sclient13.localhost"]
    assert (first["reused"], second["reused"]) == (False, True), second["text"][-800:]
    events = run.events_for("sclient13.localhost")
    assert [e["tls"]["resumed"] for e in events] == [False, True]
    for out, e in zip((first, second), events, strict=True):
        tls = e["tls"]
        assert tls["version"] == "1.3" and tls["cipher"] == out["cipher"]
        kind, _ = out["temp_key"]
        assert tls["curve"] == TEMP_KEYS[kind]
        ts = run.tshark[e["source"]["port"]]
        assert tls["client"]["ja3"] == ts["ja3"] and tls["server"]["ja3s"] == ts["ja3s"]
    assert events[1]["tls"]["detailed"]["resumption_method"] == "ticket"


def test_every_connection_reported_once(run: Run) -> None:
    """One event per TLS connection; the capture probes (no data) give none."""
    conns = [c for cs in run.py.values() for c in cs]
    assert sorted(
        e["source"]["port"] for e in run.events if e["source"]["port"] in {c["port"] for c in conns}
    ) == sorted(c["port"] for c in conns)
    assert len(run.events) == len(conns) + sum(len(v) for v in run.ossl.values())
