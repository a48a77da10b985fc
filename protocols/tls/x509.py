"""X.509 certificates → ECS ``x509`` maps, the way Packetbeat (Go's ``crypto/x509``) shows them.

The certificate is parsed by ``cryptography`` (validity, public key, subject alternative
names, serial, version). Two things are read from the DER directly because no library
exposes them in the shape Packetbeat prints: the distinguished names (Go renders them
from the decoded attribute values, re-encoding unknown attributes as ``#<hex DER>``, in
RFC 2253-like reverse order with its own grouping of the well-known attributes), and the
RSASSA-PSS signature parameters (Go names a PSS signature only for matching hash, MGF1
hash and salt length).

Go refuses some certificates that ``cryptography`` accepts; the common cases are refused
here too (negative serial numbers, EC keys on curves other than P-224/256/384/521,
attribute values that are not strings), because Packetbeat then drops the whole
Certificate message. Parsed certificates are cached by their DER bytes: servers send the
same chain on every handshake.
"""

from __future__ import annotations

import base64
import hashlib
import warnings
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtensionOID

#: How many distinct certificates stay parsed, and the largest one cached (real ones are
#: 1-2 KB): the cache holds at most CACHE_SIZE * CACHE_MAX_DER bytes of certificates.
CACHE_SIZE = 1024
CACHE_MAX_DER = 8192

# -- a minimal DER reader (definite lengths only, as DER requires) ----------------------


class DerError(ValueError):
    pass


def _tlv(b: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag byte, content start, content end) of the element at ``pos``."""
    if pos + 2 > end:
        raise DerError("truncated")
    tag = b[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag number")
    n = b[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > end:
            raise DerError("bad length")
        n = int.from_bytes(b[pos : pos + k], "big")
        pos += k
    if pos + n > end:
        raise DerError("truncated")
    return tag, pos, pos + n


def _oid(b: bytes) -> str:
    if not b or b[-1] & 0x80:
        raise DerError("bad OID")
    arcs: list[int] = []
    v = 0
    for c in b:
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            arcs.append(v)
            v = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(map(str, head + arcs[1:]))


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


# -- distinguished names (Go's pkix.Name) -----------------------------------------------

_PRINTABLE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+,-./:=? ")
#: Go's parser also takes '*' and '&' in a PrintableString (seen in real CA certificates).
_PRINTABLE_LAX = _PRINTABLE | frozenset(b"*&")


def _string_value(tag: int, v: bytes) -> str:
    """Decode an attribute value as Go's x509 parser does; other types make it refuse the
    certificate."""
    if tag == 0x14:  # T61String: taken as Latin-1
        return v.decode("latin-1")
    if tag == 0x13:  # PrintableString
        if not all(c in _PRINTABLE_LAX for c in v):
            raise DerError("invalid PrintableString")
        return v.decode("ascii")
    if tag == 0x0C:  # UTF8String
        return v.decode("utf-8")
    if tag == 0x1E:  # BMPString (UCS-2)
        if len(v) % 2:
            raise DerError("invalid BMPString")
        if len(v) >= 2 and v[-1] == 0 and v[-2] == 0:
            v = v[:-2]
        units = [(v[i] << 8) | v[i + 1] for i in range(0, len(v), 2)]
        for u in units:
            if u in (0xFFFE, 0xFFFF) or 0xFDD0 <= u <= 0xFDEF or 0xD800 <= u <= 0xDFFF:
                raise DerError("invalid BMPString")
        return "".join(map(chr, units))
    if tag == 0x16:  # IA5String
        return v.decode("ascii")
    if tag == 0x12:  # NumericString
        if not all(0x30 <= c <= 0x39 or c == 0x20 for c in v):
            raise DerError("invalid NumericString")
        return v.decode("ascii")
    raise DerError(f"unsupported string type {tag}")


def _parse_name(b: bytes, start: int, end: int, lax: list[int]) -> list[list[tuple[str, str]]]:
    """The RDNs of a Name; appends to ``lax`` the offsets of PrintableStrings holding the
    '*' or '&' Go tolerates (and ``cryptography`` does not)."""
    rdns = []
    pos = start
    while pos < end:
        tag, s, e = _tlv(b, pos, end)
        if tag != 0x31:
            raise DerError("RDN is not a SET")
        rdn = []
        p = s
        while p < e:
            t, s2, e2 = _tlv(b, p, e)
            if t != 0x30:
                raise DerError("attribute is not a SEQUENCE")
            t_oid, os_, oe = _tlv(b, s2, e2)
            if t_oid != 0x06:
                raise DerError("attribute type is not an OID")
            t_val, vs, ve = _tlv(b, oe, e2)
            value = _string_value(t_val, b[vs:ve])
            if t_val == 0x13 and ("*" in value or "&" in value):
                lax.append(oe)
            rdn.append((_oid(b[os_:oe]), value))
            p = e2
        rdns.append(rdn)
        pos = e
    return rdns


#: OID → (Go's short name, map key), in the order Go emits them (ToRDNSequence).
_NAMED = {
    "2.5.4.6": ("C", "country"),
    "2.5.4.8": ("ST", "state_or_province"),
    "2.5.4.7": ("L", "locality"),
    "2.5.4.9": ("STREET", "street_address"),
    "2.5.4.17": ("POSTALCODE", "postal_code"),
    "2.5.4.10": ("O", "organization"),
    "2.5.4.11": ("OU", "organizational_unit"),
    "2.5.4.3": ("CN", "common_name"),
    "2.5.4.5": ("SERIALNUMBER", "serial_number"),
}
_SINGLE = frozenset({"2.5.4.3", "2.5.4.5"})
_SPECIAL = frozenset(',+"\\<>;')


def _escape(value: str) -> str:
    out = []
    last = len(value.encode()) - 1
    pos = 0
    for c in value:
        if c in _SPECIAL or (c == " " and (pos == 0 or pos == last)) or (c == "#" and pos == 0):
            out.append("\\")
        out.append(c)
        pos += len(c.encode())
    return "".join(out)


def _marshal_string(value: str) -> bytes:
    """asn1.Marshal of a Go string: PrintableString when it can be, else UTF8String."""
    raw = value.encode()
    tag = 0x13 if all(c in _PRINTABLE for c in raw) else 0x0C
    return bytes([tag]) + _der_len(len(raw)) + raw


def name_fields(rdns: list[list[tuple[str, str]]]) -> tuple[str, dict[str, str]]:
    """(distinguished name string, ECS name map) as Packetbeat prints them."""
    values: dict[str, list[str]] = {}
    others: list[tuple[str, str]] = []
    for rdn in rdns:
        for oid, value in rdn:
            if oid in _NAMED:
                if oid in _SINGLE:
                    values[oid] = [value]
                else:
                    values.setdefault(oid, []).append(value)
            else:
                others.append((oid, value))
    # Go puts the unknown attributes first, then the known ones in a fixed order, and
    # prints the sequence backwards.
    seq: list[str] = [f"{oid}=#{_marshal_string(v).hex()}" for oid, v in others]
    for oid, (short, _key) in _NAMED.items():
        vals = values.get(oid)
        if vals:
            seq.append("+".join(f"{short}={_escape(v)}" for v in vals))
    dn = ",".join(reversed(seq))
    fields: dict[str, str] = {}
    for oid, (_short, key) in _NAMED.items():
        vals = values.get(oid)
        if vals:
            joined = " ".join(vals)
            if joined:
                fields[key] = joined
    if dn:
        fields["distinguished_name"] = dn
    return dn, fields


# -- signature algorithm (Go's SignatureAlgorithm.String) -------------------------------

_SIG_NAMES = {
    "1.2.840.113549.1.1.4": "MD5-RSA",
    "1.2.840.113549.1.1.5": "SHA1-RSA",
    "1.3.14.3.2.29": "SHA1-RSA",
    "1.2.840.113549.1.1.11": "SHA256-RSA",
    "1.2.840.113549.1.1.12": "SHA384-RSA",
    "1.2.840.113549.1.1.13": "SHA512-RSA",
    "1.2.840.10040.4.3": "DSA-SHA1",
    "2.16.840.1.101.3.4.3.2": "DSA-SHA256",
    "1.2.840.10045.4.1": "ECDSA-SHA1",
    "1.2.840.10045.4.3.2": "ECDSA-SHA256",
    "1.2.840.10045.4.3.3": "ECDSA-SHA384",
    "1.2.840.10045.4.3.4": "ECDSA-SHA512",
    "1.3.101.112": "Ed25519",
}
_PSS = "1.2.840.113549.1.1.10"
_MGF1 = "1.2.840.113549.1.1.8"
_PSS_HASHES = {
    "2.16.840.1.101.3.4.2.1": (32, "SHA256"),
    "2.16.840.1.101.3.4.2.2": (48, "SHA384"),
    "2.16.840.1.101.3.4.2.3": (64, "SHA512"),
}
#: Go prints an unknown signature algorithm as its enum value.
_UNKNOWN_SIG = "0"


def _algorithm_id(b: bytes, start: int, end: int) -> tuple[str, bytes]:
    """(OID, parameters DER or b"") of an AlgorithmIdentifier's contents."""
    t, s, e = _tlv(b, start, end)
    if t != 0x06:
        raise DerError("algorithm is not an OID")
    return _oid(b[s:e]), b[e:end]


def _hash_of(b: bytes) -> str | None:
    """The OID of a hash AlgorithmIdentifier whose parameters are absent or NULL."""
    t, s, e = _tlv(b, 0, len(b))
    if t != 0x30:
        return None
    oid, params = _algorithm_id(b, s, e)
    return oid if params in (b"", b"\x05\x00") else None


def _pss_name(params: bytes) -> str:
    t, s, e = _tlv(params, 0, len(params))
    if t != 0x30:
        return _UNKNOWN_SIG
    fields: dict[int, bytes] = {}
    p = s
    while p < e:
        tag, cs, ce = _tlv(params, p, e)
        fields[tag] = params[cs:ce]
        p = ce
    if not {0xA0, 0xA1, 0xA2} <= fields.keys():
        return _UNKNOWN_SIG
    hash_oid = _hash_of(fields[0xA0])
    mgf = fields[0xA1]
    mt, ms, me = _tlv(mgf, 0, len(mgf))
    if mt != 0x30 or hash_oid is None:
        return _UNKNOWN_SIG
    mgf_oid, mgf_params = _algorithm_id(mgf, ms, me)
    if mgf_oid != _MGF1 or not mgf_params or _hash_of(mgf_params) != hash_oid:
        return _UNKNOWN_SIG
    st, ss, se = _tlv(fields[0xA2], 0, len(fields[0xA2]))
    salt = int.from_bytes(fields[0xA2][ss:se], "big", signed=True) if st == 0x02 else -1
    if 0xA3 in fields:
        tt, ts, te = _tlv(fields[0xA3], 0, len(fields[0xA3]))
        if tt != 0x02 or int.from_bytes(fields[0xA3][ts:te], "big", signed=True) != 1:
            return _UNKNOWN_SIG
    known = _PSS_HASHES.get(hash_oid)
    if known is None or known[0] != salt:
        return _UNKNOWN_SIG
    return f"{known[1]}-RSAPSS"


def _signature_name(oid: str, params: bytes) -> str:
    if oid == _PSS:
        return _pss_name(params) if params else _UNKNOWN_SIG
    if oid == "1.3.101.112" and params:
        return _UNKNOWN_SIG  # RFC 8410 §3: the parameters must be absent
    return _SIG_NAMES.get(oid, _UNKNOWN_SIG)


# -- the certificate --------------------------------------------------------------------

_GO_CURVES = frozenset({"secp224r1", "secp256r1", "secp384r1", "secp521r1"})
_RSA, _DSA, _EC, _ED25519 = (
    "1.2.840.113549.1.1.1",
    "1.2.840.10040.4.1",
    "1.2.840.10045.2.1",
    "1.3.101.112",
)
#: Packetbeat names RSA, DSA and ECDSA keys; others show Go's enum value.
_KEY_NAMES = {_RSA: "RSA", _DSA: "DSA", _EC: "ECDSA", _ED25519: "(unknown:4)"}


def _time(dt: datetime) -> str:
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}."
        f"{dt.microsecond // 1000:03d}Z"
    )


def _ip_text(ip: Any) -> str:
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped if mapped is not None else ip)


class Certificate:
    """One parsed certificate: the ECS map and the top-level strings the event needs."""

    __slots__ = ("_hashes", "der", "issuer", "map", "not_after", "not_before", "subject")

    def __init__(self, der: bytes, fields: dict[str, Any], subject: str, issuer: str) -> None:
        self.der = der
        self.map = fields
        self.subject = subject
        self.issuer = issuer
        self.not_before: str = fields["not_before"]
        self.not_after: str = fields["not_after"]
        self._hashes: dict[str, str] = {}

    def fingerprint(self, algo: str) -> str:
        h = self._hashes.get(algo)
        if h is None:
            h = self._hashes[algo] = hashlib.new(algo, self.der, usedforsecurity=False).hexdigest().upper()
        return h

    def to_map(self) -> dict[str, Any]:
        """A fresh copy of the ECS map (events are mutable; the cache is shared)."""
        m = dict(self.map)
        m["issuer"] = dict(m["issuer"])
        m["subject"] = dict(m["subject"])
        if "alternative_names" in m:
            m["alternative_names"] = list(m["alternative_names"])
        return m

    def pem(self) -> str:
        body = base64.b64encode(self.der).decode()
        lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def parse_certificate(der: bytes) -> Certificate | None:
    """The certificate, or None where Packetbeat's parser would refuse it."""
    return _cached(der) if len(der) <= CACHE_MAX_DER else _parse_safe(der)


def _parse_safe(der: bytes) -> Certificate | None:
    try:
        return _parse(der)
    except Exception:
        # Any failure of the DER walk or of cryptography means "does not parse".
        return None


_cached = lru_cache(maxsize=CACHE_SIZE)(_parse_safe)


def _parse(der: bytes) -> Certificate | None:
    t, cs, ce = _tlv(der, 0, len(der))
    if t != 0x30 or ce != len(der):
        return None
    t, ts, te = _tlv(der, cs, ce)  # TBSCertificate
    if t != 0x30:
        return None
    t, ss, se = _tlv(der, te, ce)  # signatureAlgorithm
    if t != 0x30:
        return None
    sig_oid, sig_params = _algorithm_id(der, ss, se)
    p = ts
    tag, s, e = _tlv(der, p, te)
    if tag == 0xA0:  # [0] EXPLICIT version
        p = e
        tag, s, e = _tlv(der, p, te)
    if tag != 0x02:
        return None
    p = e  # serial
    tag, s, e = _tlv(der, p, te)  # inner signature algorithm
    p = e
    tag, s, e = _tlv(der, p, te)  # issuer
    if tag != 0x30:
        return None
    lax: list[int] = []
    issuer_rdns = _parse_name(der, s, e, lax)
    p = e
    tag, s, e = _tlv(der, p, te)  # validity
    p = e
    tag, s, e = _tlv(der, p, te)  # subject
    if tag != 0x30:
        return None
    subject_rdns = _parse_name(der, s, e, lax)
    if lax:
        # Relabel them UTF8String for cryptography (same length; the signature is not checked).
        patched = bytearray(der)
        for off in lax:
            patched[off] = 0x0C
        lib_der = bytes(patched)
    else:
        lib_der = der

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography warns on some legacy encodings
        cert = cx509.load_der_x509_certificate(lib_der)
        serial = cert.serial_number
        if serial < 0:
            return None  # Go refuses negative serial numbers (since Go 1.23)
        version = cert.version.value + 1
        not_before = cert.not_valid_before_utc
        not_after = cert.not_valid_after_utc
        key_oid = cert.public_key_algorithm_oid.dotted_string
        key_size = 0
        if key_oid in (_RSA, _DSA, _EC, _ED25519):
            key = cert.public_key()
            if isinstance(key, rsa.RSAPublicKey):
                key_size = key.key_size
            elif isinstance(key, dsa.DSAPublicKey):
                key_size = key.parameters().parameter_numbers().p.bit_length()
            elif isinstance(key, ec.EllipticCurvePublicKey):
                if key.curve.name not in _GO_CURVES:
                    return None
                key_size = key.curve.key_size
        san: list[str] = []
        try:
            ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        except cx509.ExtensionNotFound:
            pass
        else:
            assert isinstance(ext, cx509.SubjectAlternativeName)
            san += ext.get_values_for_type(cx509.DNSName)
            san += ext.get_values_for_type(cx509.RFC822Name)
            san += [_ip_text(ip) for ip in ext.get_values_for_type(cx509.IPAddress)]

    subject, subject_map = name_fields(subject_rdns)
    issuer, issuer_map = name_fields(issuer_rdns)
    fields: dict[str, Any] = {
        "signature_algorithm": _signature_name(sig_oid, sig_params),
        "public_key_algorithm": _KEY_NAMES.get(key_oid, "(unknown:0)"),
        "serial_number": format(serial, "X"),
        "issuer": issuer_map,
        "subject": subject_map,
        "not_before": _time(not_before),
        "not_after": _time(not_after),
        "version_number": version,
    }
    if key_size > 0:
        fields["public_key_size"] = key_size
    if san:
        fields["alternative_names"] = san
    return Certificate(der, fields, subject, issuer)


def parse_certificate_list(body: bytes) -> list[Certificate] | None:
    """A TLS 1.0-1.2 Certificate message body (RFC 5246 §7.4.2): a 3-byte total length
    that must match, then 3-byte-length DER certificates. None if any part is wrong or
    any certificate does not parse (Packetbeat then keeps none of them)."""
    if len(body) < 3 or int.from_bytes(body[:3], "big") + 3 != len(body):
        return None
    certs = []
    pos = 3
    end = len(body)
    while pos + 3 <= end:
        n = int.from_bytes(body[pos : pos + 3], "big")
        if pos + 3 + n > end:
            return None
        cert = parse_certificate(bytes(body[pos + 3 : pos + 3 + n]))
        if cert is None:
            return None
        certs.append(cert)
        pos += 3 + n
    return certs
