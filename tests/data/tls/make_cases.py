"""Write ``cases.pcap``: TLS handshakes covering the corners of Packetbeat's TLS decoder
(certificate kinds and names, extensions rendered and refused, alerts, resumption, OCSP,
fragmented records and messages, SSLv3, SSLv2-format hellos, gaps, resets, an
unfinished connection). Run once; ``cases.pcap`` and Packetbeat 9.3's events for it
(``cases.packetbeat.ndjson``) are kept beside this script and checked by
``tests/protocols/test_tls_cases.py``.

    python tests/data/tls/make_cases.py && \\
    packetbeat -e -t -I tests/data/tls/cases.pcap -c <tls config> ...
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from benchmarks import tlswire as w
from benchmarks.synth import Conversation
from capture import PcapWriter

HERE = Path(__file__).resolve().parent
SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")
SHA1_RSA = bytes.fromhex("06092a864886f70d010105")
T0 = datetime.datetime(2024, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)


def name(*attrs: tuple[object, str] | tuple[object, str, object]) -> x509.Name:
    rdns = []
    for a in attrs:
        if isinstance(a[0], list):  # a multi-valued RDN
            rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(o, v) for o, v in a[0]]))
        elif len(a) == 3:
            rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(a[0], a[1], a[2])]))  # type: ignore[arg-type]
        else:
            rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(a[0], a[1])]))  # type: ignore[arg-type]
    return x509.Name(rdns)


def cert(
    subject: x509.Name,
    key: object,
    issuer: x509.Name | None = None,
    signer: object | None = None,
    serial: int = 0x0123456789ABCDEF,
    sans: list[x509.GeneralName] | None = None,
    algo: object = None,
    pss: bool = False,
    version: x509.Version = x509.Version.v3,
) -> bytes:
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(serial)
        .not_valid_before(T0)
        .not_valid_after(T0 + datetime.timedelta(days=397, seconds=1))
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), False)
    b._version = version  # v1 certificates: cryptography's builder only writes v3
    signer = signer or key
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        c = b.sign(signer, None)
    elif pss:
        c = b.sign(signer, hashes.SHA256(), rsa_padding=padding.PSS(padding.MGF1(hashes.SHA256()), 32))  # type: ignore[arg-type]
    else:
        c = b.sign(signer, algo or hashes.SHA256())  # type: ignore[arg-type]
    return c.public_bytes(Encoding.DER)


def certificates() -> dict[str, bytes]:
    rsa_key = rsa.generate_private_key(65537, 2048)
    p384 = ec.generate_private_key(ec.SECP384R1())
    p521 = ec.generate_private_key(ec.SECP521R1())
    p256 = ec.generate_private_key(ec.SECP256R1())
    brainpool = ec.generate_private_key(ec.BrainpoolP256R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    dsa_key = dsa.generate_private_key(2048)
    ca_name = name(
        (NameOID.COUNTRY_NAME, "DE"),
        (NameOID.ORGANIZATION_NAME, "Wirebeat Test CA, Inc."),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Unit A"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Unit B"),
        (NameOID.COMMON_NAME, " Test CA #1 "),
    )
    leaf_name = name(
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "California"),
        (NameOID.LOCALITY_NAME, "Los Angeles"),
        (NameOID.STREET_ADDRESS, "1 Main St"),
        (NameOID.POSTAL_CODE, "90001"),
        (NameOID.ORGANIZATION_NAME, 'Org+Plus;Semi<>"Quoted"\\'),
        (NameOID.EMAIL_ADDRESS, "admin@example.com"),
        (NameOID.SURNAME, "Müller"),
        (NameOID.COMMON_NAME, "leaf.example.com"),
        (NameOID.SERIAL_NUMBER, "SN-42"),
    )
    return {
        "ca": cert(ca_name, rsa_key, algo=hashes.SHA384()),
        "leaf": cert(
            leaf_name,
            p256,
            issuer=ca_name,
            signer=rsa_key,
            sans=[
                x509.DNSName("leaf.example.com"),
                x509.UniformResourceIdentifier("https://leaf.example.com/"),
                x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
                x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
                x509.IPAddress(ipaddress.ip_address("::ffff:192.0.2.8")),
                x509.RFC822Name("ops@example.com"),
                x509.DNSName("*.example.com"),
            ],
        ),
        "p384": cert(name((NameOID.COMMON_NAME, "p384")), p384, algo=hashes.SHA384()),
        "p521": cert(name((NameOID.COMMON_NAME, "p521")), p521, algo=hashes.SHA512()),
        "ed25519": cert(name((NameOID.COMMON_NAME, "ed25519")), ed),
        "dsa": cert(name((NameOID.COMMON_NAME, "dsa")), dsa_key),
        "pss": cert(name((NameOID.COMMON_NAME, "pss")), rsa_key, pss=True),
        # cryptography refuses to sign with SHA-1: relabel a SHA-256 signature (nobody checks it).
        "sha1": cert(name((NameOID.COMMON_NAME, "sha1")), rsa_key).replace(SHA256_RSA, SHA1_RSA),
        "v1": cert(name((NameOID.COMMON_NAME, "v1")), p256, version=x509.Version.v1),
        "brainpool": cert(name((NameOID.COMMON_NAME, "brainpool")), brainpool),
        # cryptography refuses negative serials: patch the INTEGER 0x7a into -5.
        "negative": cert(name((NameOID.COMMON_NAME, "negative")), p256, serial=0x7A).replace(
            b"\x02\x01\x7a", b"\x02\x01\xfb", 1
        ),
        "strings": cert(
            name(
                (NameOID.COMMON_NAME, "caf\xe9", _ASN1Type.T61String),
                (NameOID.ORGANIZATION_NAME, "\u00c5ngstr\u00f6m", _ASN1Type.BMPString),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, "#hash start", _ASN1Type.UTF8String),
                (NameOID.LOCALITY_NAME, "wild*card&co", _ASN1Type.UTF8String),
                ([(NameOID.DOMAIN_COMPONENT, "example"), (NameOID.USER_ID, "u1")], ""),
                (NameOID.TITLE, "Chief*"),
            ),
            p256,
            serial=1,
        ).replace(b"\x0c\x0cwild*card&co", b"\x13\x0cwild*card&co"),  # a lax PrintableString, as Go takes it
        "empty": cert(x509.Name([]), p256, issuer=name((NameOID.COMMON_NAME, "issuer only"))),
    }


CIPHERS = (0xC02F, 0xC030, 0x009C, 0x1301, 0xFF85, 0x0A0A)
STD_EXTS = [
    w.sni("www.example.org"),
    w.supported_groups(29, 23),
    w.ec_point_formats(0),
    w.alpn("h2", "http/1.1"),
]


def main() -> None:
    certs = certificates()
    convs: list[Conversation] = []
    port = [40000]

    def conv(mss: int = 1448, server_port: int = 443) -> Conversation:
        port[0] += 1
        c = Conversation(
            ("10.0.0.1", port[0]),
            ("10.0.0.2", server_port),
            ts=1_709_294_400_000_000_000 + port[0] * 1_000_000_000,
            mss=mss,
        )
        convs.append(c)
        return c.handshake()

    def full12(
        chain: list[bytes],
        c: Conversation | None = None,
        ch_exts: list | None = None,
        sh_exts: list | None = None,
        size: int = 16384,
    ) -> None:
        c = c or conv()
        c.send(
            0, w.records(w.HANDSHAKE, w.client_hello(CIPHERS, STD_EXTS if ch_exts is None else ch_exts), size)
        )
        sh = w.server_hello(
            0xC02F,
            [w.ec_point_formats(0), w.alpn("h2")] if sh_exts is None else sh_exts,
            session_id=bytes(range(32)),
        )
        c.send(
            1,
            w.records(
                w.HANDSHAKE,
                sh + w.certificate(chain) + w.server_key_exchange_ecdhe(23) + w.server_hello_done(),
                size,
            ),
        )
        c.send(0, w.record(w.HANDSHAKE, w.client_key_exchange()) + w.ccs() + w.encrypted(40))
        c.send(1, w.ccs() + w.encrypted(40))
        c.send(0, w.encrypted(100, w.APPDATA)).close()

    # 1: a chain of two, records of 100 bytes, segments of 300 (records and messages split).
    full12([certs["leaf"], certs["ca"]], conv(mss=300), size=100)
    # 2-9: one certificate kind each.
    for k in ("p384", "p521", "ed25519", "dsa", "pss", "sha1", "v1", "strings", "empty"):
        full12([certs[k]])
    # 11-12: certificates Go refuses: the whole message is dropped.
    full12([certs["leaf"], certs["brainpool"]])
    full12([certs["negative"]])
    # 13: a Certificate message whose total length lies.
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, STD_EXTS)))
    body = w.vec24(w.vec24(certs["p384"])) + b"\x00"
    c.send(1, w.record(w.HANDSHAKE, w.server_hello(0xC02F) + w.handshake(w.CERTIFICATE, body)))
    c.send(1, w.ccs()).send(0, w.ccs()).close()
    # 14: unknown CA: the client's fatal alert after the server's flight.
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, STD_EXTS)))
    c.send(
        1,
        w.record(
            w.HANDSHAKE,
            w.server_hello(0xC02F)
            + w.certificate([certs["p384"]])
            + w.server_key_exchange_ecdhe(29)
            + w.server_hello_done(),
        ),
    )
    c.send(0, w.alert(2, 48)).close()
    # 15: protocol version refused by the server, a warning alert, an unknown code.
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, STD_EXTS, version=(3, 1)), (3, 1)))
    c.send(1, w.alert(1, 0) + w.alert(2, 70) + w.alert(3, 200)).close()
    # 16: a ClientHello and nothing else.
    conv().send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, STD_EXTS))).close()
    # 17: TLS 1.3 full handshake (compat mode: session id echoed, CCS after the ServerHello).
    sid = bytes(range(100, 132))
    ch13 = w.client_hello(
        (0x1301, 0x1302, 0xC02F),
        [
            w.sni("tls13.example"),
            w.supported_groups(29, 23),
            w.key_share_client(29),
            w.supported_versions_client(0x0304, 0x0303),
            w.signature_algorithms(0x0403, 0x0804),
            w.ext(45, b"\x01\x01"),
        ],
        session_id=sid,
    )
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, ch13))
    c.send(
        1,
        w.record(
            w.HANDSHAKE,
            w.server_hello(
                0x1301, [w.key_share_server(29), w.supported_versions_server(0x0304)], session_id=sid
            ),
        )
        + w.ccs()
        + w.encrypted(2000, w.APPDATA),
    )
    c.send(0, w.ccs() + w.encrypted(60, w.APPDATA)).close()
    # 18: TLS 1.3 resumed with a PSK (and a secp384r1 key share).
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, ch13))
    c.send(
        1,
        w.record(
            w.HANDSHAKE,
            w.server_hello(
                0x1302,
                [w.supported_versions_server(0x0304), w.key_share_server(24, 97), w.psk_server()],
                session_id=sid,
            ),
        )
        + w.ccs()
        + w.encrypted(100, w.APPDATA),
    )
    c.send(0, w.ccs() + w.encrypted(60, w.APPDATA)).close()
    # 19: TLS 1.2 resumed by session id (server CCS first).
    c = conv()
    rsid = bytes(range(1, 33))
    c.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, STD_EXTS, session_id=rsid)))
    c.send(1, w.record(w.HANDSHAKE, w.server_hello(0xC02F, [], session_id=rsid)) + w.ccs() + w.encrypted(40))
    c.send(0, w.ccs() + w.encrypted(40)).close()
    # 20: TLS 1.2 resumed by ticket.
    c = conv()
    c.send(
        0,
        w.record(
            w.HANDSHAKE, w.client_hello(CIPHERS, [*STD_EXTS, w.session_ticket(bytes(200))], session_id=rsid)
        ),
    )
    c.send(
        1,
        w.record(w.HANDSHAKE, w.server_hello(0xC02F, [w.session_ticket()], session_id=rsid))
        + w.ccs()
        + w.encrypted(40),
    )
    c.send(0, w.ccs() + w.encrypted(40)).close()
    # 21: mutual TLS: certificate request, the client's certificate, OCSP stapling.
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, [*STD_EXTS, w.status_request()])))
    c.send(
        1,
        w.record(
            w.HANDSHAKE,
            w.server_hello(0xC02F, [w.ext(5)])
            + w.certificate([certs["leaf"], certs["ca"]])
            + w.certificate_status(0)
            + w.server_key_exchange_ecdhe(24)
            + w.certificate_request()
            + w.server_hello_done(),
        ),
    )
    c.send(
        0,
        w.record(
            w.HANDSHAKE, w.certificate([certs["p384"]]) + w.client_key_exchange() + w.handshake(15, bytes(72))
        )
        + w.ccs()
        + w.encrypted(40),
    )
    c.send(1, w.ccs() + w.encrypted(40)).close()
    # 22: OCSP "tryLater" (a 5-byte response) and an RSA key exchange.
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, [w.status_request()])))
    short = w.handshake(22, b"\x01" + w.vec24(b"\x30\x03\x0a\x01\x03"))
    c.send(
        1,
        w.record(
            w.HANDSHAKE,
            w.server_hello(0x009C) + w.certificate([certs["sha1"]]) + short + w.server_hello_done(),
        ),
    )
    c.send(0, w.record(w.HANDSHAKE, w.client_key_exchange(256)) + w.ccs()).send(1, w.ccs()).close()
    # 23: extensions Packetbeat renders in odd ways.
    odd = [
        w.sni(""),
        w.ext(1, b"\x02"),
        w.ext(1, b"\x09"),
        w.ext(2),
        w.ext(4, b"\x00\x01"),
        w.ext(9, b"\x02\x00\x02"),
        w.ext(12, b"\x04user"),
        w.ext(5, b"\x01\x00\x04\x00\x02ab\x00\x05"),
        w.supported_versions_client(0x0A0A, 0x1A1A),
        w.ext(10, b"\x00\x03\x00\x17\x00"),
        w.alpn(),
        w.ext(0x1234, b"xyz"),
        w.ext(3, b"abc"),
        w.ext(0xFF01, b"\x00"),
        w.ext(21, bytes(10)),
        w.sni("first.example", "second.example"),
    ]
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, odd)))
    c.send(
        1,
        w.record(
            w.HANDSHAKE,
            w.server_hello(
                0xC02F, [w.ext(9, b"\x00"), w.ext(0), w.ext(43, b"\x7f\x17"), w.ext(11, b"\x00\x01\x02")]
            ),
        ),
    )
    c.close()
    # 24: no extension block, no compression methods, an odd suite length.
    c = conv()
    body = bytes([3, 3]) + bytes(32) + b"\x00" + b"\x00\x03\xc0\x2f\x00" + b"\x00"
    c.send(0, w.record(w.HANDSHAKE, w.handshake(1, body)))
    c.send(1, w.record(w.HANDSHAKE, w.server_hello(0xC02F, None) + w.certificate([certs["p384"]]))).close()
    # 25: SSLv3 (record and hello version 3.0), RC4.
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, w.client_hello((0x0005, 0x0004, 0x000A), None, version=w.SSL3), w.SSL3))
    c.send(
        1,
        w.record(
            w.HANDSHAKE,
            w.server_hello(0x0005, None, version=w.SSL3)
            + w.certificate([certs["sha1"]])
            + w.server_hello_done(),
            w.SSL3,
        ),
    )
    c.send(0, w.record(w.HANDSHAKE, w.client_key_exchange(128), w.SSL3) + w.ccs(w.SSL3)).send(
        1, w.ccs(w.SSL3)
    ).close()
    # 26: an SSLv2-format ClientHello answered in TLS 1.0.
    c = conv()
    c.send(
        0,
        w.sslv2_client_hello(
            (0x0035, 0x002F, 0x000A, 0x00FF), v2_specs=(0x010080, 0x0700C0), challenge=bytes(range(16))
        ),
    )
    c.send(
        1,
        w.record(
            w.HANDSHAKE,
            w.server_hello(0x0035, [w.ext(0xFF01, b"\x00")], version=w.TLS10)
            + w.certificate([certs["leaf"]])
            + w.server_hello_done(),
            w.TLS10,
        ),
    )
    c.send(0, w.record(w.HANDSHAKE, w.client_key_exchange(256), w.TLS10) + w.ccs(w.TLS10)).send(
        1, w.ccs(w.TLS10)
    ).close()
    # 27: not TLS on a TLS port.
    conv().send(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").send(1, b"HTTP/1.1 400 Bad Request\r\n\r\n").close()
    # 28: plaintext first, then a handshake starting on a segment boundary (STARTTLS-like).
    c = conv(server_port=993)
    c.send(1, b"* OK IMAP4rev1 ready\r\n").send(0, b"a STARTTLS\r\n").send(1, b"a OK go\r\n")
    full12([certs["p384"]], c)
    # 29: reset after the ClientHello (Packetbeat publishes nothing).
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, STD_EXTS))).reset(1)
    # 30: a gap in the server's flight.
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, STD_EXTS)))
    c.send(
        1,
        w.record(
            w.HANDSHAKE,
            w.server_hello(0xC02F)
            + w.certificate([certs["p521"]])
            + w.server_key_exchange_ecdhe(23)
            + w.server_hello_done(),
        ),
    )
    lost = w.encrypted(500, w.APPDATA)
    c.seq[1] += len(lost)
    c.send(1, w.ccs()).send(0, w.ccs()).close()
    # 31: a handshake message longer than 64 KiB (refused), then a valid hello.
    c = conv()
    c.send(0, w.records(w.HANDSHAKE, w.handshake(1, bytes(70000)), 16384))
    c.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, STD_EXTS))).close()
    # 32: a hello request, a HelloRetryRequest and a second ClientHello, no CCS at all.
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, ch13))
    hrr = w.server_hello(
        0x1301,
        [w.supported_versions_server(0x0304), w.ext(51, b"\x00\x17")],
        random=bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"),
        session_id=sid,
    )
    c.send(1, w.record(w.HANDSHAKE, hrr))
    c.send(0, w.record(w.HANDSHAKE, ch13)).close()
    # 33: the connection is still open at the end of the capture (written last, below).
    still_open = conv()
    # 34: TLS 1.2 resumed from a ticket the server does not renew (the session id is echoed).
    c = conv()
    c.send(
        0,
        w.record(
            w.HANDSHAKE, w.client_hello(CIPHERS, [*STD_EXTS, w.session_ticket(bytes(180))], session_id=rsid)
        ),
    )
    c.send(
        1,
        w.record(w.HANDSHAKE, w.server_hello(0xC02F, [w.ec_point_formats(0)], session_id=rsid))
        + w.ccs()
        + w.encrypted(40),
    )
    c.send(0, w.ccs() + w.encrypted(40)).close()
    # 35: an empty host name, GREASE and a duplicate extension, an encrypted alert, a heartbeat
    # record, a certificate request answered with no certificate, a DHE key exchange.
    c = conv()
    c.send(
        0,
        w.record(
            w.HANDSHAKE,
            w.client_hello(
                CIPHERS,
                [w.sni(""), (0x0A0A, b""), w.supported_groups(23), w.supported_groups(0x1A1A, 29, 24)],
            ),
        ),
    )
    dhe = w.handshake(w.SERVER_KEY_EXCHANGE, b"\x00\x03\x01\x00\x01" + bytes(100))
    c.send(
        1,
        w.record(
            w.HANDSHAKE,
            w.server_hello(0x009E, [(0x2A2A, b""), w.ec_point_formats(0)])
            + w.certificate([certs["p384"]])
            + dhe
            + w.certificate_request()
            + w.server_hello_done(),
        )
        + w.record(24, b"\x01\x00\x10" + bytes(32)),
    )
    c.send(
        0,
        w.record(w.HANDSHAKE, w.certificate([]) + w.client_key_exchange(256))
        + w.record(w.ALERT, bytes(26))
        + w.ccs(),
    )
    c.send(1, w.ccs()).close()
    # 36: TLS 1.3, the client refuses the server's (encrypted) certificate: a plaintext alert
    # after the server's CCS, no CCS from the client.
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, ch13))
    c.send(
        1,
        w.record(
            w.HANDSHAKE,
            w.server_hello(
                0x1301, [w.key_share_server(29), w.supported_versions_server(0x0304)], session_id=sid
            ),
        )
        + w.ccs()
        + w.encrypted(1500, w.APPDATA),
    )
    c.send(0, w.alert(2, 48)).close()
    # 37: TLS 1.3 without the middlebox-compatibility CCS: encrypted records right after the hellos.
    c = conv()
    ch13_plain = w.client_hello(
        (0x1301, 0x1302),
        [
            w.sni("nocompat.example"),
            w.supported_groups(29),
            w.key_share_client(29),
            w.supported_versions_client(0x0304),
        ],
    )
    c.send(0, w.record(w.HANDSHAKE, ch13_plain))
    c.send(
        1,
        w.record(
            w.HANDSHAKE, w.server_hello(0x1301, [w.key_share_server(29), w.supported_versions_server(0x0304)])
        )
        + w.encrypted(1500, w.APPDATA),
    )
    c.send(0, w.encrypted(53, w.APPDATA)).send(1, w.encrypted(300, w.APPDATA)).close()
    # 38: TLS 1.2 abbreviated handshake the client abandons after the server's CCS.
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, STD_EXTS, session_id=rsid)))
    c.send(1, w.record(w.HANDSHAKE, w.server_hello(0xC02F, [], session_id=rsid)) + w.ccs() + w.encrypted(40))
    c.send(0, w.alert(2, 40)).close()
    # 39-41: alerts with no hello to tell the roles: after a ClientHello that does not parse,
    # after an SSLv2-format one, and a client's alert alone.
    c = conv()
    c.send(0, w.record(w.HANDSHAKE, w.handshake(w.CLIENT_HELLO, b"\x02\x00" + bytes(40)))).send(
        1, w.alert(2, 50)
    ).close()
    c = conv()
    c.send(0, w.sslv2_client_hello((0x0035, 0x000A))).send(1, w.alert(2, 40)).close()
    conv().send(0, w.alert(2, 90)).close()
    still_open.send(0, w.record(w.HANDSHAKE, w.client_hello(CIPHERS, STD_EXTS)))

    frames = sorted((f for c in convs for f in c.frames), key=lambda f: f[0])
    with PcapWriter(str(HERE / "cases.pcap"), 1, nanosecond=False) as pw:
        for ts, frame in frames:
            pw.write(ts, frame)
    print(f"{len(convs)} connections, {len(frames)} packets")


if __name__ == "__main__":
    main()
