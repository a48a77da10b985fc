"""One direction of a TLS connection, up to its ChangeCipherSpec: records (RFC 5246 §6.2,
RFC 8446 §5.1), handshake messages reassembled across records (§7.4 / §4), alerts.

Sans-IO: ``feed(data)`` takes the next in-order bytes and answers ``MORE`` (a record is
still incomplete), ``OK`` (everything consumed), ``ENCRYPTED`` (ChangeCipherSpec, or in
TLS 1.3 without it the first encrypted record after the hello: what follows is encrypted,
stop), ``MIDSTREAM`` (the stream starts with encrypted application
data: stop) or ``FAILED`` (not TLS, or a message that does not parse).
On ``FAILED`` the caller drops this parser and starts a fresh one on the next segment, as
Packetbeat does: a STARTTLS-like exchange whose handshake begins on a segment boundary is
still found.

Bounds: a record longer than 2^14 + 2048 bytes is not TLS (RFC 5246 §6.2.3), a handshake
message longer than 64 KiB is refused (Packetbeat's limit, the same as Go's), so at most
one record and one handshake message are buffered. Alerts and certificates kept per
direction are capped (the excess is counted).
"""

from __future__ import annotations

from protocols.stats import Counters
from protocols.tls.hello import Hello, parse_client_hello, parse_server_hello, parse_sslv2_client_hello
from protocols.tls.names import OCSP_STATUS
from protocols.tls.x509 import Certificate, parse_certificate_list

OK, MORE, FAILED, ENCRYPTED, MIDSTREAM = range(5)

UNKNOWN, CLIENT, SERVER = range(3)

MAX_RECORD = (1 << 14) + 2048
MAX_HANDSHAKE = 1 << 16
MAX_ALERTS = 32
#: Certificates kept per direction (a peer may repeat Certificate messages before its CCS).
MAX_CERTIFICATES = 64

CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23

HELLO_REQUEST = 0
CLIENT_HELLO = 1
SERVER_HELLO = 2
CERTIFICATE = 11
SERVER_KEY_EXCHANGE = 12
CERTIFICATE_REQUEST = 13
CLIENT_KEY_EXCHANGE = 16
CERTIFICATE_STATUS = 22


class Alert:
    __slots__ = ("code", "level")

    def __init__(self, level: int, code: int) -> None:
        self.level = level
        self.code = code


class DirectionParser:
    """What one side sent before encrypting: its role, hello, certificates, alerts."""

    __slots__ = (
        "alerts",
        "buf",
        "cert_requested",
        "certificates",
        "curve",
        "hello",
        "hs",
        "key_exchanged",
        "ocsp",
        "records",
        "role",
        "stats",
    )

    def __init__(self, stats: Counters) -> None:
        self.stats = stats
        self.buf = bytearray()  # an incomplete record
        self.hs = bytearray()  # an incomplete handshake message
        self.records = 0
        self.role = UNKNOWN
        self.hello: Hello | None = None
        self.certificates: list[Certificate] = []
        self.alerts: list[Alert] = []
        self.cert_requested = False
        self.key_exchanged = False
        #: The OCSP response status of a CertificateStatus message.
        self.ocsp: int | None = None
        #: ServerKeyExchange of an ECDHE suite: the named group (RFC 8422 §5.4).
        self.curve: int | None = None

    def has_info(self) -> bool:
        return self.hello is not None or bool(self.alerts) or bool(self.certificates)

    # -- records ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> int:
        if self.buf:
            self.buf += data
            b: bytes | bytearray = self.buf
        else:
            b = data
        if not self.records and b and b[0] & 0x80:
            state, used = self._sslv2(b)
            if state != OK:
                return state
            pos = used
        else:
            pos = 0
        end = len(b)
        state = OK
        while end - pos >= 5:
            rtype = b[pos]
            length = (b[pos + 3] << 8) | b[pos + 4]
            if b[pos + 1] != 3 or length > MAX_RECORD:
                self.stats.incr("tls.not_tls")
                return FAILED
            if rtype == APPLICATION_DATA:
                if not self.records:
                    # Encrypted data before any handshake: picked up after the handshake (a
                    # capture started mid-connection, or a gap); nothing readable will follow.
                    self.buf = bytearray()
                    return MIDSTREAM
                if self.hello is not None:
                    # After a hello and before any ChangeCipherSpec: TLS 1.3 without the
                    # middlebox-compatibility CCS (RFC 8446 D.4); encrypted from here on.
                    self.buf = bytearray()
                    return ENCRYPTED
            stop = pos + 5 + length
            if stop > end:
                break
            self.records += 1
            if rtype == HANDSHAKE:
                state = self._handshake(b[pos + 5 : stop])
                if state == FAILED:
                    return FAILED
            elif rtype == CHANGE_CIPHER_SPEC:
                self.buf = bytearray()
                return ENCRYPTED
            elif rtype == ALERT and length == 2:
                # Longer alerts are encrypted ones.
                if len(self.alerts) < MAX_ALERTS:
                    self.alerts.append(Alert(b[pos + 5], b[pos + 6]))
                else:
                    self.stats.incr("tls.alerts_dropped")
            pos = stop
        if pos == end:
            if self.buf:
                self.buf = bytearray()
            return OK
        if b is self.buf:
            del self.buf[:pos]
        else:
            self.buf = bytearray(b[pos:])
        return MORE

    def _sslv2(self, b: bytes | bytearray) -> tuple[int, int]:
        """An SSLv2-format ClientHello opening the stream (RFC 5246 E.2): a 2-byte header
        with the top bit set and the length, then the message."""
        if len(b) < 3:
            self.buf = bytearray(b)
            return MORE, 0
        length = ((b[0] & 0x7F) << 8) | b[1]
        if b[2] != CLIENT_HELLO or length > MAX_RECORD:
            self.stats.incr("tls.not_tls")
            return FAILED, 0
        if len(b) < 2 + length:
            if b is not self.buf:
                self.buf = bytearray(b)
            return MORE, 0
        hello = parse_sslv2_client_hello(bytes(b[2 : 2 + length]))
        if hello is None:
            self.stats.incr("tls.bad_hello")
            return FAILED, 0
        self.records += 1
        self.role = CLIENT
        self.hello = hello
        self.stats.incr("tls.sslv2_client_hellos")
        return OK, 2 + length

    # -- handshake messages ------------------------------------------------------------------

    def _handshake(self, fragment: bytes | bytearray) -> int:
        hs = self.hs
        if hs:
            hs += fragment
            b: bytes | bytearray = hs
        else:
            b = fragment
        pos = 0
        end = len(b)
        while end - pos >= 4:
            mtype = b[pos]
            length = (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]
            if length > MAX_HANDSHAKE:
                self.stats.incr("tls.handshake_too_large")
                self.hs = bytearray()
                return FAILED
            stop = pos + 4 + length
            if stop > end:
                break
            if not self._message(mtype, bytes(b[pos + 4 : stop])):
                self.hs = bytearray()
                return FAILED
            pos = stop
        if b is hs:
            del hs[:pos]
        elif pos < end:
            self.hs = bytearray(b[pos:])
        return OK

    def _message(self, mtype: int, body: bytes) -> bool:
        if mtype == CLIENT_HELLO:
            self.role = CLIENT
            hello, bad_ext = parse_client_hello(body)
            return self._hello(hello, bad_ext)
        if mtype == SERVER_HELLO:
            self.role = SERVER
            hello, bad_ext = parse_server_hello(body)
            return self._hello(hello, bad_ext)
        if mtype == CERTIFICATE:
            certs = parse_certificate_list(body)
            if certs is None:
                self.stats.incr("tls.bad_certificates")
            else:
                room = MAX_CERTIFICATES - len(self.certificates)
                if len(certs) > room:
                    self.stats.incr("tls.certificates_dropped", len(certs) - room)
                    certs = certs[:room]
                self.certificates += certs
        elif mtype == SERVER_KEY_EXCHANGE:
            self.role = SERVER
            self.key_exchanged = True
            # ECParameters: curve_type named_curve(3), then the group (RFC 8422 §5.4).
            if len(body) >= 3 and body[0] == 3:
                self.curve = (body[1] << 8) | body[2]
        elif mtype == CLIENT_KEY_EXCHANGE:
            self.role = CLIENT
            self.key_exchanged = True
        elif mtype in (CERTIFICATE_REQUEST, HELLO_REQUEST):
            self.role = SERVER
            if mtype == CERTIFICATE_REQUEST:
                self.cert_requested = True
        elif mtype == CERTIFICATE_STATUS:
            self.ocsp = _ocsp_status(body)
        return True

    def _hello(self, hello: Hello | None, bad_ext: bool) -> bool:
        if bad_ext:
            self.stats.incr("tls.bad_extensions")
        if hello is None:
            self.stats.incr("tls.bad_hello")
            return False
        self.hello = hello
        return True


def _ocsp_status(body: bytes) -> int | None:
    """CertificateStatus (RFC 6066 §8): status_type ocsp(1), a 3-byte length, then the
    OCSPResponse: SEQUENCE { responseStatus ENUMERATED, ... } (RFC 6960 §4.2.1)."""
    if len(body) < 4 or body[0] != 1:
        return None
    p = 4
    if p + 2 > len(body) or body[p] != 0x30:
        return None
    n = body[p + 1]
    p += 2 + (n & 0x7F if n & 0x80 else 0)
    if p + 3 > len(body) or body[p] != 0x0A or body[p + 1] != 1:
        return None
    return body[p + 2]


def ocsp_name(status: int) -> str:
    return OCSP_STATUS.get(status, str(status))
