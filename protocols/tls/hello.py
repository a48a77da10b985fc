"""ClientHello / ServerHello bodies and their extensions (RFC 8446 §4.1.2-4.1.3, §4.2;
RFC 5246 §7.4.1; the SSLv2-compatible ClientHello of RFC 5246 Appendix E.2).

Parsed by hand: the hello is a handful of length-prefixed vectors and the values are
rendered the way Packetbeat renders them (its names, its validation rules per extension),
which no TLS library exposes. Every read is bounds-checked; a hello that does not parse is
reported as such (``None``), never half-filled.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from protocols.tls.names import (
    CERT_TYPES,
    CIPHER_SUITES,
    GREASE,
    GROUPS,
    SIGNATURE_SCHEMES,
    cipher_name,
    compression_name,
    group_name,
    is_grease,
    point_format_name,
    scheme_name,
    version_name,
)

EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SESSION_TICKET = 35
EXT_PRE_SHARED_KEY = 41
EXT_SUPPORTED_VERSIONS = 43
EXT_KEY_SHARE = 51
#: Extensions whose raw body is kept (JA3, the negotiated version, the key-share group).
_KEEP_RAW = frozenset({EXT_SUPPORTED_GROUPS, EXT_EC_POINT_FORMATS, EXT_SUPPORTED_VERSIONS, EXT_KEY_SHARE})


def _u16(b: bytes, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def _u16s(b: bytes, pos: int, count: int) -> tuple[int, ...]:
    return struct.unpack_from(f">{count}H", b, pos)


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class Extensions:
    """``parsed``: label → rendered value (``None`` when the hello had no extension block,
    as Packetbeat leaves it out); ``order``: the non-GREASE codes as sent; ``raw``: bodies
    of the extensions JA3 and the version need; ``unparsed``: labels left unrendered."""

    __slots__ = ("order", "parsed", "raw")

    def __init__(self) -> None:
        self.parsed: dict[str, Any] | None = None
        self.order: list[int] = []
        self.raw: dict[int, bytes] = {}


_EMPTY_EXTENSIONS = Extensions()


class Hello:
    """One ClientHello or ServerHello."""

    __slots__ = (
        "cipher",
        "ciphers",
        "compression",
        "compressions",
        "extensions",
        "is_client",
        "random",
        "session_id",
        "sslv2",
        "version",
    )

    def __init__(self, is_client: bool) -> None:
        self.is_client = is_client
        self.version = (0, 0)
        self.random = b""
        self.session_id = b""
        #: ClientHello: offered suites (GREASE removed); ServerHello: empty.
        self.ciphers: list[int] = []
        self.compressions: list[int] = []
        #: ServerHello: the selected suite and compression.
        self.cipher = 0
        self.compression = 0
        self.extensions = _EMPTY_EXTENSIONS
        self.sslv2 = False

    # -- what the event needs -----------------------------------------------------------

    def ticket(self) -> str | None:
        """The rendered session_ticket extension, or None when absent."""
        parsed = self.extensions.parsed
        if parsed is None:
            return None
        value = parsed.get("session_ticket")
        return value if isinstance(value, str) else None

    def has_extension(self, code: int) -> bool:
        return code in self.extensions.order

    def selected_version(self) -> tuple[int, int] | None:
        """ServerHello: the version from supported_versions (TLS 1.3), if sent."""
        raw = self.extensions.raw.get(EXT_SUPPORTED_VERSIONS)
        if raw is None or len(raw) < 2:
            return None
        return raw[0], raw[1]

    def key_share_group(self) -> int | None:
        """ServerHello: the group of the key_share extension (RFC 8446 §4.2.8)."""
        raw = self.extensions.raw.get(EXT_KEY_SHARE)
        if raw is None or len(raw) < 2:
            return None
        return _u16(raw, 0)

    def server_names(self) -> list[str]:
        parsed = self.extensions.parsed
        value = parsed.get("server_name_indication") if parsed else None
        return value if isinstance(value, list) else []

    def alpn(self) -> list[str]:
        parsed = self.extensions.parsed
        value = parsed.get("application_layer_protocol_negotiation") if parsed else None
        return value if isinstance(value, list) else []

    def to_map(self) -> dict[str, Any]:
        """``tls.detailed.client_hello`` / ``server_hello``."""
        m: dict[str, Any] = {"version": f"{self.version[0]}.{self.version[1]}"}
        if self.session_id:
            m["session_id"] = self.session_id.hex()
        if self.random:
            m["random"] = self.random.hex()
        if self.compressions:
            m["supported_compression_methods"] = [compression_name(c) for c in self.compressions]
        else:
            m["selected_compression_method"] = compression_name(self.compression)
        parsed = self.extensions.parsed
        if parsed is not None:
            m["extensions"] = {
                k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                for k, v in parsed.items()
            }
        return m

    def supported_ciphers(self) -> list[str]:
        get = CIPHER_SUITES.get
        return [get(c) or cipher_name(c) for c in self.ciphers]

    def ja3(self) -> str:
        """JA3 (https://github.com/salesforce/ja3): version, suites, extensions, groups,
        point formats, GREASE left out, as decimal lists; the MD5 of that string."""
        ext = self.extensions
        parts = (
            str((self.version[0] << 8) | self.version[1]),
            "-".join(map(str, self.ciphers)),
            "-".join(map(str, ext.order)),
            "-".join(map(str, _ja3_list(ext.raw.get(EXT_SUPPORTED_GROUPS), 2))),
            "-".join(map(str, _ja3_list(ext.raw.get(EXT_EC_POINT_FORMATS), 1))),
        )
        return hashlib.md5(",".join(parts).encode(), usedforsecurity=False).hexdigest()

    def ja3s(self) -> str:
        """JA3S: the server's version, selected suite and extensions (salesforce/ja3)."""
        ext = self.extensions
        s = f"{(self.version[0] << 8) | self.version[1]},{self.cipher},{'-'.join(map(str, ext.order))}"
        return hashlib.md5(s.encode(), usedforsecurity=False).hexdigest()


def _ja3_list(raw: bytes | None, size: int) -> list[int]:
    """The entries of a length-prefixed list (groups: 2 bytes each, formats: 1), GREASE out;
    entries past the body's end are ignored."""
    if raw is None or len(raw) < size:
        return []
    declared = raw[0] if size == 1 else _u16(raw, 0)
    end = min(size + declared, len(raw))
    if size == 1:
        return list(raw[1:end])
    return [v for v in _u16s(raw, 2, (end - 2) // 2) if v not in GREASE]


# -- hello bodies ----------------------------------------------------------------------


def _common(b: bytes, hello: Hello) -> int:
    """Version, random, session id; returns the offset after them, or -1."""
    if len(b) < 35 or b[0] != 3:
        return -1
    sid_len = b[34]
    if sid_len > 32 or len(b) < 35 + sid_len:
        return -1
    hello.version = (b[0], b[1])
    hello.random = b[2:34]
    hello.session_id = b[35 : 35 + sid_len]
    return 35 + sid_len


def parse_client_hello(b: bytes) -> tuple[Hello | None, bool]:
    """A ClientHello body → (hello or None, extensions were malformed)."""
    hello = Hello(True)
    pos = _common(b, hello)
    if pos < 0 or pos + 2 > len(b):
        return None, False
    n = _u16(b, pos)
    end = pos + 2 + n
    # Pairs are read until the declared end; an odd length reads one byte past it, which
    # must still be inside the message.
    pairs = (n + 1) // 2
    if pos + 2 + 2 * pairs > len(b):
        return None, False
    hello.ciphers = [c for c in _u16s(b, pos + 2, pairs) if c not in GREASE]
    pos = end
    if pos >= len(b):
        return None, False
    n = b[pos]
    if pos + 1 + n > len(b):
        return None, False
    hello.compressions = list(b[pos + 1 : pos + 1 + n])
    bad = _extensions(b, pos + 1 + n, hello)
    return hello, bad


def parse_server_hello(b: bytes) -> tuple[Hello | None, bool]:
    """A ServerHello (or HelloRetryRequest) body → (hello or None, extensions malformed)."""
    hello = Hello(False)
    pos = _common(b, hello)
    if pos < 0 or pos + 3 > len(b):
        return None, False
    hello.cipher = _u16(b, pos)
    hello.compression = b[pos + 2]
    bad = _extensions(b, pos + 3, hello)
    return hello, bad


def parse_sslv2_client_hello(b: bytes) -> Hello | None:
    """The body of an SSLv2-format ClientHello (after the 2-byte record header):
    msg_type 1, version, three lengths, cipher specs (3 bytes each), session id, challenge.
    Only the specs of the form 00 xx yy are TLS suites (RFC 5246 E.2); the challenge is
    right-aligned in the 32-byte random. No extensions, null compression."""
    if len(b) < 9 or b[0] != 1:
        return None
    specs_len, sid_len, chal_len = _u16(b, 3), _u16(b, 5), _u16(b, 7)
    if (
        specs_len % 3
        or sid_len > 32
        or not 16 <= chal_len <= 32
        or 9 + specs_len + sid_len + chal_len > len(b)
    ):
        return None
    hello = Hello(True)
    hello.sslv2 = True
    hello.version = (b[1], b[2])
    pos = 9
    for i in range(pos, pos + specs_len, 3):
        if b[i] == 0:
            c = _u16(b, i + 1)
            if not is_grease(c):
                hello.ciphers.append(c)
    pos += specs_len
    hello.session_id = b[pos : pos + sid_len]
    pos += sid_len
    hello.random = bytes(32 - chal_len) + b[pos : pos + chal_len]
    hello.compressions = [0]
    return hello


# -- extensions ------------------------------------------------------------------------


def _extensions(b: bytes, pos: int, hello: Hello) -> bool:
    """Fill ``hello.extensions`` from the block at ``pos``; True when it was malformed
    (then no extension is kept, as Packetbeat keeps none)."""
    size = len(b)
    if pos + 2 > size:
        return False
    limit = pos + 2 + ((b[pos] << 8) | b[pos + 1])
    if limit == pos + 2:
        return False
    ext = Extensions()
    order, raw = ext.order, ext.raw
    parsed: dict[str, Any] = {}
    unparsed: list[str] = []
    client = hello.is_client
    i = pos + 2
    while i < limit:
        if i + 4 > size:
            return True
        code = (b[i] << 8) | b[i + 1]
        start = i + 4
        i = start + ((b[i + 2] << 8) | b[i + 3])
        if i > size:
            return True
        if code in GREASE:
            continue
        order.append(code)
        entry = _PARSERS.get(code)
        if entry is None:
            unparsed.append(str(code))
            if code == EXT_KEY_SHARE:
                raw[code] = b[start:i]
            continue
        body = b[start:i]
        value = entry[1](body, client)
        if value is None:
            unparsed.append(entry[0])
        else:
            parsed[entry[0]] = value
        if code in _KEEP_RAW:
            raw[code] = body
    if unparsed:
        parsed["_unparsed_"] = unparsed
    ext.parsed = parsed
    hello.extensions = ext
    return False


def _sni(b: bytes, _client: bool) -> Any:
    if len(b) < 2:
        return None
    limit = 2 + _u16(b, 0)
    hosts: list[str] = []
    pos = 2
    while pos + 3 <= limit:
        if pos + 3 > len(b):
            break
        kind, n = b[pos], _u16(b, pos + 1)
        if limit < pos + 3 + n or pos + 3 + n > len(b):
            break
        if kind == 0:
            hosts.append(_text(b[pos + 3 : pos + 3 + n]))
        pos += 3 + n
    return hosts


def _max_fragment_length(b: bytes, _client: bool) -> Any:
    if len(b) != 1:
        return None
    v = b[0]
    return f"2^{8 + v}" if 0 < v < 5 else f"(unknown:{v})"


def _expect_empty(b: bytes, _client: bool) -> Any:
    return "" if not b else f"(expected empty: found {len(b)} bytes)"


def _ignore(_b: bytes, _client: bool) -> Any:
    return None


def _status_request(b: bytes, _client: bool) -> Any:
    if not b:
        return {"response": True}
    # CertificateStatusRequest: status_type, ResponderID list<0..2^16-1>, request
    # Extensions<0..2^16-1> (RFC 6066 §8).
    if len(b) < 3:
        return None
    ids = _u16(b, 1)
    if 3 + ids + 2 > len(b):
        return None
    kind = "ocsp" if b[0] == 1 else str(b[0])
    return {"type": kind, "responder_id_list_length": ids, "request_extensions": _u16(b, 3 + ids)}


def _cert_type(b: bytes, _client: bool) -> Any:
    pos, limit = 0, len(b)
    if limit > 1:
        pos = 1
        limit = min(limit, 1 + b[0])
    return [CERT_TYPES.get(v, f"(unknown:{v})") for v in b[pos:limit]]


def _supported_groups(b: bytes, _client: bool) -> Any:
    if len(b) < 2 or _u16(b, 0) + 2 != len(b):
        return None
    get = GROUPS.get
    return [get(g) or group_name(g) for g in _u16s(b, 2, (len(b) - 2) // 2) if g not in GREASE]


def _ec_point_formats(b: bytes, _client: bool) -> Any:
    if not b or b[0] + 1 != len(b):
        return None
    return [point_format_name(v) for v in b[1:]]


def _srp(b: bytes, _client: bool) -> Any:
    if not b or b[0] + 1 > len(b):
        return None
    return _text(b[1 : 1 + b[0]])


def _signature_algorithms(b: bytes, _client: bool) -> Any:
    if len(b) < 2 or _u16(b, 0) + 2 != len(b):
        return None
    get = SIGNATURE_SCHEMES.get
    return [get(v) or scheme_name(v) for v in _u16s(b, 2, (len(b) - 2) // 2)]


def _alpn(b: bytes, _client: bool) -> Any:
    if len(b) < 2 or _u16(b, 0) + 2 != len(b):
        return None
    out = []
    pos = 2
    while pos < len(b):
        n = b[pos]
        if pos + 1 + n > len(b):
            return None
        out.append(_text(b[pos + 1 : pos + 1 + n]))
        pos += 1 + n
    return out


def _session_ticket(b: bytes, _client: bool) -> Any:
    return f"({len(b)} bytes)" if b else ""


def _supported_versions(b: bytes, client: bool) -> Any:
    # The server's extension is the one selected version; the client's is a list
    # (RFC 8446 §4.2.1). As Packetbeat, tell them apart by size.
    if len(b) == 2:
        return version_name(b[0], b[1])
    if len(b) < 3:
        return None
    n = b[0]
    if 1 + n > len(b) or n & 1 or n == 0:
        return None
    out = []
    for i in range(1, 1 + n, 2):
        v = _u16(b, i)
        if not is_grease(v):
            out.append(version_name(b[i], b[i + 1]))
    return out


_PARSERS: dict[int, tuple[str, Any]] = {
    0: ("server_name_indication", _sni),
    1: ("max_fragment_length", _max_fragment_length),
    2: ("client_certificate_url", _expect_empty),
    3: ("trusted_ca_keys", _ignore),
    4: ("truncated_hmac", _expect_empty),
    5: ("status_request", _status_request),
    6: ("user_mapping", _ignore),
    7: ("client_authz", _ignore),
    8: ("server_authz", _ignore),
    9: ("cert_type", _cert_type),
    10: ("supported_groups", _supported_groups),
    11: ("ec_points_formats", _ec_point_formats),
    12: ("srp", _srp),
    13: ("signature_algorithms", _signature_algorithms),
    16: ("application_layer_protocol_negotiation", _alpn),
    35: ("session_ticket", _session_ticket),
    43: ("supported_versions", _supported_versions),
    0xFF01: ("renegotiation_info", _ignore),
}
