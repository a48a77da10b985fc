"""TLS handshake bytes for tests and benchmarks: records, hellos with extensions,
certificates, key exchanges, alerts, SSLv2-format ClientHellos (RFC 5246, RFC 8446).

Only the plaintext part of a handshake is built (what a passive decoder sees); encrypted
records are random bytes of a plausible size.
"""

from __future__ import annotations

import datetime
import os
import struct
from collections.abc import Iterable, Sequence

CCS, ALERT, HANDSHAKE, APPDATA = 20, 21, 22, 23

# Handshake types.
CLIENT_HELLO, SERVER_HELLO, NEW_SESSION_TICKET = 1, 2, 4
CERTIFICATE, SERVER_KEY_EXCHANGE, CERTIFICATE_REQUEST, SERVER_HELLO_DONE = 11, 12, 13, 14
CERTIFICATE_VERIFY, CLIENT_KEY_EXCHANGE, FINISHED, CERTIFICATE_STATUS = 15, 16, 20, 22

TLS12 = (3, 3)
TLS10 = (3, 1)
SSL3 = (3, 0)


def u8(n: int) -> bytes:
    return bytes([n])


def u16(n: int) -> bytes:
    return struct.pack("!H", n)


def u24(n: int) -> bytes:
    return struct.pack("!I", n)[1:]


def vec8(b: bytes) -> bytes:
    return u8(len(b)) + b


def vec16(b: bytes) -> bytes:
    return u16(len(b)) + b


def vec24(b: bytes) -> bytes:
    return u24(len(b)) + b


def record(rtype: int, body: bytes, version: tuple[int, int] = TLS12) -> bytes:
    return bytes([rtype, *version]) + u16(len(body)) + body


def records(rtype: int, body: bytes, size: int, version: tuple[int, int] = TLS12) -> bytes:
    """``body`` split into records of at most ``size`` bytes (fragmented handshake)."""
    return b"".join(record(rtype, body[i : i + size], version) for i in range(0, len(body), size))


def handshake(htype: int, body: bytes) -> bytes:
    return u8(htype) + vec24(body)


# -- extensions -------------------------------------------------------------------------


def ext(code: int, body: bytes = b"") -> tuple[int, bytes]:
    return code, body


def sni(*names: str) -> tuple[int, bytes]:
    return 0, vec16(b"".join(u8(0) + vec16(n.encode()) for n in names))


def alpn(*protos: str) -> tuple[int, bytes]:
    return 16, vec16(b"".join(vec8(p.encode()) for p in protos))


def supported_groups(*groups: int) -> tuple[int, bytes]:
    return 10, vec16(b"".join(u16(g) for g in groups))


def ec_point_formats(*formats: int) -> tuple[int, bytes]:
    return 11, vec8(bytes(formats))


def signature_algorithms(*schemes: int) -> tuple[int, bytes]:
    return 13, vec16(b"".join(u16(s) for s in schemes))


def supported_versions_client(*versions: int) -> tuple[int, bytes]:
    return 43, vec8(b"".join(u16(v) for v in versions))


def supported_versions_server(version: int) -> tuple[int, bytes]:
    return 43, u16(version)


def key_share_client(*groups: int) -> tuple[int, bytes]:
    return 51, vec16(b"".join(u16(g) + vec16(os.urandom(32)) for g in groups))


def key_share_server(group: int, size: int = 32) -> tuple[int, bytes]:
    return 51, u16(group) + vec16(os.urandom(size))


def session_ticket(ticket: bytes = b"") -> tuple[int, bytes]:
    return 35, ticket


def status_request() -> tuple[int, bytes]:
    return 5, u8(1) + u16(0) + u16(0)


def psk_server(index: int = 0) -> tuple[int, bytes]:
    return 41, u16(index)


def extensions(exts: Iterable[tuple[int, bytes]]) -> bytes:
    return vec16(b"".join(u16(code) + vec16(body) for code, body in exts))


# -- handshake messages ----------------------------------------------------------------


def client_hello(
    ciphers: Sequence[int],
    exts: Sequence[tuple[int, bytes]] | None = (),
    version: tuple[int, int] = TLS12,
    random: bytes | None = None,
    session_id: bytes = b"",
    compression: bytes = b"\x00",
) -> bytes:
    body = bytes(version) + (random or os.urandom(32)) + vec8(session_id)
    body += vec16(b"".join(u16(c) for c in ciphers)) + vec8(compression)
    if exts is not None:
        body += extensions(exts)
    return handshake(CLIENT_HELLO, body)


def server_hello(
    cipher: int,
    exts: Sequence[tuple[int, bytes]] | None = (),
    version: tuple[int, int] = TLS12,
    random: bytes | None = None,
    session_id: bytes = b"",
    compression: int = 0,
) -> bytes:
    body = bytes(version) + (random or os.urandom(32)) + vec8(session_id) + u16(cipher) + u8(compression)
    if exts is not None:
        body += extensions(exts)
    return handshake(SERVER_HELLO, body)


def certificate(ders: Sequence[bytes]) -> bytes:
    return handshake(CERTIFICATE, vec24(b"".join(vec24(d) for d in ders)))


def server_key_exchange_ecdhe(group: int, sig_len: int = 256) -> bytes:
    body = u8(3) + u16(group) + vec8(b"\x04" + os.urandom(64)) + u16(0x0401) + vec16(os.urandom(sig_len))
    return handshake(SERVER_KEY_EXCHANGE, body)


def server_hello_done() -> bytes:
    return handshake(SERVER_HELLO_DONE, b"")


def certificate_request() -> bytes:
    return handshake(CERTIFICATE_REQUEST, vec8(b"\x01\x40") + vec16(u16(0x0401)) + vec16(b""))


def client_key_exchange(size: int = 65) -> bytes:
    """ECDHE point (vec8) up to 255 bytes, an RSA-encrypted premaster secret (vec16) beyond."""
    return handshake(CLIENT_KEY_EXCHANGE, vec8(os.urandom(size)) if size < 256 else vec16(os.urandom(size)))


def certificate_status(ocsp_status: int, size: int = 300) -> bytes:
    body = b"\x0a\x01" + u8(ocsp_status) + os.urandom(size)
    der = (
        b"\x30"
        + (
            b"\x82" + u16(len(body))
            if len(body) > 255
            else b"\x81" + u8(len(body))
            if len(body) > 127
            else u8(len(body))
        )
        + body
    )
    return handshake(CERTIFICATE_STATUS, u8(1) + vec24(der))


def ccs(version: tuple[int, int] = TLS12) -> bytes:
    return record(CCS, b"\x01", version)


def alert(level: int, code: int, version: tuple[int, int] = TLS12) -> bytes:
    return record(ALERT, bytes([level, code]), version)


def encrypted(size: int, rtype: int = HANDSHAKE, version: tuple[int, int] = TLS12) -> bytes:
    return record(rtype, os.urandom(size), version)


def sslv2_client_hello(
    ciphers: Sequence[int],
    version: tuple[int, int] = TLS10,
    challenge: bytes | None = None,
    v2_specs: Sequence[int] = (),
) -> bytes:
    """An SSLv2-format ClientHello (RFC 5246 E.2); ``v2_specs`` are 3-byte SSLv2 kinds."""
    challenge = challenge or os.urandom(16)
    specs = b"".join(s.to_bytes(3, "big") for s in v2_specs) + b"".join(b"\x00" + u16(c) for c in ciphers)
    body = u8(1) + bytes(version) + u16(len(specs)) + u16(0) + u16(len(challenge)) + specs + challenge
    return u16(0x8000 | len(body)) + body


# -- certificates ----------------------------------------------------------------------


def make_certificate(
    common_name: str = "server.example",
    issuer_name: str | None = None,
    key: object | None = None,
    signer: object | None = None,
    serial: int = 0x1234ABCD,
    sans: Sequence[str] = ("server.example",),
    extra_names: Sequence[tuple[str, str]] = (),
    days: int = 365,
    not_before: datetime.datetime | None = None,
) -> bytes:
    """A DER certificate made with ``cryptography`` (self-signed unless ``signer``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = key or ec.generate_private_key(ec.SECP256R1())
    signer = signer or key
    attrs = [x509.NameAttribute(x509.ObjectIdentifier(oid), v) for oid, v in extra_names]
    subject = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]) if issuer_name else subject
    start = not_before or datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), False)
    cert = builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]
    return cert.public_bytes(Encoding.DER)


# -- whole handshakes -------------------------------------------------------------------

CHROME_CIPHERS = (
    0x1301,
    0x1302,
    0x1303,
    0xC02B,
    0xC02F,
    0xC02C,
    0xC030,
    0xCCA9,
    0xCCA8,
    0xC013,
    0xC014,
    0x009C,
    0x009D,
    0x002F,
    0x0035,
)


def tls12_flights(
    server_name: str,
    chain: Sequence[bytes],
    cipher: int = 0xC02F,
    session_id: bytes = b"",
    record_size: int = 16384,
) -> list[tuple[int, bytes]]:
    """A full TLS 1.2 ECDHE handshake: [(side, bytes)], side 0 = client."""
    ch = client_hello(
        CHROME_CIPHERS,
        [
            (0x0A0A, b""),
            sni(server_name),
            ext(23),
            ext(0xFF01, b"\x00"),
            supported_groups(0x2A2A, 29, 23, 24),
            ec_point_formats(0),
            session_ticket(),
            alpn("h2", "http/1.1"),
            status_request(),
            signature_algorithms(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601),
            supported_versions_client(0x3A3A, 0x0304, 0x0303),
            ext(21, bytes(100)),
        ],
        session_id=session_id,
    )
    sh = server_hello(
        cipher, [ext(0xFF01, b"\x00"), ec_point_formats(0), alpn("h2")], session_id=os.urandom(32)
    )
    flight = sh + certificate(chain) + server_key_exchange_ecdhe(23) + server_hello_done()
    return [
        (0, records(HANDSHAKE, ch, record_size)),
        (1, records(HANDSHAKE, flight, record_size)),
        (0, record(HANDSHAKE, client_key_exchange()) + ccs() + encrypted(40)),
        (1, record(HANDSHAKE, handshake(NEW_SESSION_TICKET, os.urandom(180))) + ccs() + encrypted(40)),
        (0, encrypted(300, APPDATA)),
        (1, encrypted(1200, APPDATA)),
    ]
