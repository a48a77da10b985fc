"""Value transformations: ``convert``, ``extract_array``, ``urldecode``, ``fingerprint``,
``add_id``, ``add_locale``, ``community_id``, ``registered_domain``, ``rate_limit`` and
``translate_sid`` (libbeat/processors/<name>)."""

from __future__ import annotations

import base64
import hashlib
import math
import os
import random
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from shipper.pipeline.conditions import parse_ip
from shipper.pipeline.fieldpath import MISSING, FieldError, path
from shipper.pipeline.processors.base import (
    Backup,
    Context,
    Event,
    Opts,
    Processor,
    ProcessorError,
    clone,
    put_error,
    register,
)
from shipper.pipeline.processors.gofmt import (
    format_value,
    parse_bool,
    parse_float,
    parse_int,
    to_float32,
    wrap_int,
)

# -- convert ---------------------------------------------------------------------------------------

_IGNORED: Any = object()
TYPES = ("integer", "long", "float", "double", "string", "boolean", "ip")


def _num_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "<nil>"
    if isinstance(v, list):
        return "[]interface {}"
    return "map[string]interface {}"


def convert_value(typ: str, v: Any) -> Any:
    """libbeat's ``transformType``; ValueError with libbeat's reason."""
    if typ == "string":
        if v is None:
            raise ValueError("invalid conversion of [null] to string")
        return v if isinstance(v, str) else format_value(v)
    if typ in ("long", "integer"):
        bits = 64 if typ == "long" else 32
        if isinstance(v, str):
            return parse_int(v, bits)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"invalid conversion of [{_num_type(v)}] to {typ}")
        if isinstance(v, float):
            if math.isnan(v) or math.isinf(v):
                return -(1 << (bits - 1))  # what Go's conversion gives on amd64
            v = int(v)
        return wrap_int(v, bits)
    if typ in ("float", "double"):
        if isinstance(v, str):
            return parse_float(v, 32 if typ == "float" else 64)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"invalid conversion of [{_num_type(v)}] to {typ}")
        return to_float32(float(v)) if typ == "float" else float(v)
    if typ == "boolean":
        if isinstance(v, bool):
            return v
        if isinstance(v, str):
            return parse_bool(v)
        raise ValueError(f"invalid conversion of [{_num_type(v)}] to boolean")
    if typ == "ip":
        if isinstance(v, str):
            if parse_ip(v) is None:
                raise ValueError("value is not a valid IP address")
            return v
        raise ValueError(f"invalid conversion of [{_num_type(v)}] to IP")
    return v


@register("convert")
def convert(o: Opts, ctx: Context) -> Processor:
    o.require("fields")
    tag = o.str("tag")
    ignore_missing = o.bool("ignore_missing", False)
    fail_on_error = o.bool("fail_on_error", True)
    mode = o.str("mode", "copy").lower()
    if mode not in ("copy", "rename"):
        raise o.error("mode", f"invalid mode: {mode}")
    specs: list[tuple[str, str, str]] = []
    for i, item in enumerate(o.mappings("fields", required=True)):
        src = item.get("from")
        if not isinstance(src, str) or not src:
            raise o.error(f"fields.{i}.from", "missing required field accessing 'from'")
        dst = item.get("to") or ""
        typ = item.get("type") or ""
        if not isinstance(dst, str) or not isinstance(typ, str):
            raise o.error(f"fields.{i}", "'to' and 'type' must be strings")
        typ = typ.lower()
        if typ and typ not in TYPES:
            raise o.error(f"fields.{i}.type", f"invalid data type: {typ}")
        if not dst and not typ:
            raise o.error(f"fields.{i}", "each field must have a 'to' or a 'type'")
        specs.append((src, dst, typ))
    who = "failed in processor.convert" + (f" with instance_id={tag}" if tag else "")

    def fail(spec: tuple[str, str, str], message: str, cause: str) -> str:
        src, dst, typ = spec
        target = f" with target field [{dst}]" if dst else ""
        kind = typ or "[unset]"
        return f"{who}: conversion of field [{src}] to type [{kind}]{target} failed: {message}: {cause}"

    backup = Backup([k for s in specs for k in (s[0], s[1]) if k])
    o.writes(*(k for s in specs for k in (s[0], s[1]) if k))

    def run(evt: Event) -> Event:
        values = []
        for spec in specs:
            src, _dst, typ = spec
            v = path(src).get(evt)
            if v is MISSING:
                if ignore_missing:
                    values.append(_IGNORED)
                    continue
                if fail_on_error:
                    raise ProcessorError(fail(spec, f"field [{src}] is missing", "key not found"), evt)
                values.append(_IGNORED)
                continue
            if typ:
                try:
                    v = convert_value(typ, v)
                except ValueError as exc:
                    if fail_on_error:
                        raise ProcessorError(
                            fail(spec, f"unable to convert value [{format_value(v)}]", str(exc)), evt
                        ) from None
                    v = _IGNORED
            values.append(v)
        saved = backup.take(evt) if len(specs) > 1 and fail_on_error else None
        for spec, v in zip(specs, values, strict=True):
            if v is _IGNORED:
                continue
            src, dst, _typ = spec
            if not dst:
                try:
                    path(src).put(evt, v)
                except FieldError:
                    pass
                continue
            try:
                path(dst).put(evt, v if mode == "rename" else clone(v))
            except FieldError as exc:
                if fail_on_error:
                    if saved is not None:
                        backup.restore(evt, saved)
                    raise ProcessorError(fail(spec, f"failed to put field [{dst}]", str(exc)), evt) from None
            if mode == "rename":
                path(src).pop(evt)
        return evt

    return run


# -- extract_array -----------------------------------------------------------------------------------


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _is_empty(v: Any) -> bool:
    return (isinstance(v, str | list | dict) and len(v) == 0) or v is None


@register("extract_array")
def extract_array(o: Opts, ctx: Context) -> Processor:
    o.require("field", "mappings")
    o.allow("field", "mappings", "ignore_missing", "overwrite_keys", "fail_on_error", "omit_empty")
    field = path(o.str("field", required=True))
    ignore_missing = o.bool("ignore_missing", False)
    omit_empty = o.bool("omit_empty", False)
    overwrite = o.bool("overwrite_keys", False)
    fail_on_error = o.bool("fail_on_error", True)
    mappings: list[tuple[int, str]] = []
    for to, col in _flatten(o.mapping("mappings", required=True)).items():
        idx: int | None = None
        if isinstance(col, int) and not isinstance(col, bool):
            idx = col
        elif (isinstance(col, float) and col.is_integer()) or (
            isinstance(col, str) and col.strip().lstrip("-").isdigit()
        ):
            idx = int(col)
        if idx is None or idx < 0:
            raise o.error(
                f"mappings.{to}", f"bad extract_array mapping for field {to}: {col} is not a positive integer"
            )
        mappings.append((idx, to))
    if not mappings:
        raise o.error("mappings", "no mappings defined in extract_array processor")
    mappings.sort(key=lambda m: m[0])
    targets = [to for _, to in mappings]
    backup = Backup(targets)
    o.writes(*targets)

    def run(evt: Event) -> Event:
        arr = field.get(evt)
        if arr is MISSING:
            if ignore_missing:
                return evt
            raise ProcessorError(f"could not fetch value for field {field.key}: key not found", evt)
        if not isinstance(arr, list):
            if not fail_on_error:
                return evt
            raise ProcessorError(
                f"unsupported type for field {field.key}: got: {_num_type(arr)} needed: array", evt
            )
        saved = backup.take(evt) if fail_on_error else None
        n = len(arr)

        def failed(msg: str) -> ProcessorError:
            assert saved is not None
            return ProcessorError(msg, backup.restore(evt, saved))

        for idx, to in mappings:
            if idx >= n:
                if not fail_on_error:
                    continue
                raise failed(f"index {idx} exceeds length of {n} when processing mapping for field {to}")
            cell = arr[idx]
            if omit_empty and _is_empty(cell):
                continue
            tp = path(to)
            if not overwrite and tp.get(evt) is not MISSING:
                if not fail_on_error:
                    continue
                raise failed(
                    f"target field {to} already has a value. "
                    "Set the overwrite_keys flag or drop/rename the field first"
                )
            try:
                tp.put(evt, clone(cell))
            except FieldError as exc:
                if not fail_on_error:
                    continue
                raise failed(f"failed setting field {to}: {exc}") from None
        return evt

    return run


# -- urldecode -----------------------------------------------------------------------------------------


def query_unescape(s: str) -> str:
    """Go's ``url.QueryUnescape``: ``+`` is a space, a bad ``%`` escape is an error."""
    raw = s.encode("utf-8", "surrogatepass")
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            h = raw[i + 1 : i + 3]
            if len(h) < 2 or not all(x in b"0123456789abcdefABCDEF" for x in h):
                bad = raw[i : i + 3].decode("utf-8", "replace")
                raise ValueError(f'invalid URL escape "{bad}"')
            out.append(int(h, 16))
            i += 3
        elif c == 0x2B:  # +
            out.append(0x20)
            i += 1
        else:
            out.append(c)
            i += 1
    return out.decode("utf-8", "replace")


@register("urldecode")
def urldecode(o: Opts, ctx: Context) -> Processor:
    o.require("fields")
    o.allow("fields", "ignore_missing", "fail_on_error")
    ignore_missing = o.bool("ignore_missing", False)
    fail_on_error = o.bool("fail_on_error", True)
    pairs = []
    for i, item in enumerate(o.mappings("fields", required=True)):
        src = item.get("from")
        if not isinstance(src, str) or not src:
            raise o.error(f"fields.{i}.from", "missing required field accessing 'from'")
        dst = item.get("to") or src
        pairs.append((src, str(dst)))
    backup = Backup([d for _, d in pairs])
    o.writes(*(d for _, d in pairs), "error")

    def run(evt: Event) -> Event:
        saved = backup.take(evt) if fail_on_error else None
        for src, dst in pairs:
            try:
                v = path(src).get(evt)
                if v is MISSING:
                    if ignore_missing:
                        continue
                    raise ValueError(f"could not fetch value for key: {src}, Error: key not found")
                if not isinstance(v, str):
                    raise ValueError(f"invalid type for `from`, expecting a string received {_num_type(v)}")
                try:
                    decoded = query_unescape(v)
                except ValueError as exc:
                    raise ValueError(f"error trying to URL-decode {v}: {exc}") from None
                path(dst).put(evt, decoded)
            except (ValueError, FieldError) as exc:
                if saved is not None:
                    backup.restore(evt, saved)
                    msg = f"failed to decode fields in urldecode processor: {exc}"
                    put_error(evt, msg)
                    raise ProcessorError(msg, evt) from None
        return evt

    return run


# -- fingerprint ------------------------------------------------------------------------------------------


def _xxhash() -> Any:
    try:
        import xxhash
    except ImportError:
        return None
    return xxhash.xxh64


_HASHES: dict[str, Callable[[], Any]] = {
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
_ENCODINGS: dict[str, Callable[[bytes], str]] = {
    "hex": lambda b: b.hex(),
    "base32": lambda b: base64.b32encode(b).decode(),
    "base64": lambda b: base64.b64encode(b).decode(),
}


@register("fingerprint")
def fingerprint(o: Opts, ctx: Context) -> Processor:
    fields = sorted(set(o.strings("fields", required=True)))
    if not fields:
        raise o.error("fields", "must specify at least one field")
    method = o.str("method", "sha256").lower()
    encoding = o.str("encoding", "hex").lower()
    target = path(o.str("target_field", "fingerprint"))
    ignore_missing = o.bool("ignore_missing", False)
    if method == "xxhash":
        xx = _xxhash()
        if xx is None:
            raise o.error("method", "xxhash needs the 'xxhash' package, which is not installed")
        new_hash: Callable[[], Any] = xx
    elif method in _HASHES:
        new_hash = _HASHES[method]
    else:
        raise o.error("method", f"invalid fingerprinting method [{method}]")
    if encoding not in _ENCODINGS:
        raise o.error("encoding", f"invalid encoding [{encoding}]")
    encode = _ENCODINGS[encoding]
    paths = [path(f) for f in fields]
    o.writes(target.key)

    def run(evt: Event) -> Event | None:
        h = new_hash()
        for p in paths:
            v = p.get(evt)
            if v is MISSING:
                if ignore_missing:
                    continue
                # libbeat returns no event with this error: the event is dropped.
                raise ProcessorError(
                    f"failed to compute fingerprint: failed to find field [{p.key}] in event: key not found",
                    None,
                )
            if isinstance(v, dict | list):
                raise ProcessorError(
                    "failed to compute fingerprint: "
                    f"cannot compute fingerprint using non-scalar field [{p.key}]",
                    None,
                )
            h.update(f"|{p.key}|{format_value(v)}".encode("utf-8", "surrogatepass"))
        h.update(b"|")
        try:
            target.put(evt, encode(h.digest()))
        except FieldError as exc:
            raise ProcessorError(f"failed to compute fingerprint: {exc}", None) from None
        return evt

    return run


# -- add_id ---------------------------------------------------------------------------------------------


class ElasticsearchIds:
    """Elasticsearch's time-based UUIDs (base64url of 15 bytes: sequence, time, node), as
    libbeat's ``add_id`` generates them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq = random.getrandbits(64)
        self.last = 0
        mac = bytearray(os.urandom(6))
        mac[0] |= 0x01  # multicast bit: never a real MAC address
        self.mac = bytes(mac)

    def next(self) -> str:
        with self.lock:
            self.seq = (self.seq + 1) & 0xFFFFFFFFFFFFFFFF
            s = self.seq & 0xFFFFFF
            now = time.time_ns() // 1_000_000
            ts = max(now, self.last)
            if s == 0:
                ts += 1
            self.last = ts
        b = bytes(
            [
                s & 0xFF,
                (s >> 16) & 0xFF,
                (ts >> 16) & 0xFF,
                (ts >> 24) & 0xFF,
                (ts >> 32) & 0xFF,
                (ts >> 40) & 0xFF,
            ]
        )
        b += self.mac + bytes([(ts >> 8) & 0xFF, (s >> 8) & 0xFF, ts & 0xFF])
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


_IDS = ElasticsearchIds()


@register("add_id")
def add_id(o: Opts, ctx: Context) -> Processor:
    target = path(o.str("target_field", "@metadata._id"))
    typ = o.str("type", "elasticsearch")
    if typ != "elasticsearch":
        raise o.error("type", f"invalid type [{typ}]")
    nxt = _IDS.next
    o.writes(target.key)

    def run(evt: Event) -> Event:
        try:
            target.put(evt, nxt())
        except FieldError as exc:
            raise ProcessorError(f"failed to compute ID: {exc}", None) from None
        return evt

    return run


# -- add_locale -------------------------------------------------------------------------------------------


def local_zone() -> tuple[str, int]:
    """The local time zone's abbreviation and UTC offset in seconds, now."""
    t = time.localtime()
    return t.tm_zone, t.tm_gmtoff


def format_zone(fmt: str, zone: str, offset: int) -> str:
    if fmt == "abbreviation":
        return zone
    sign = "-" if offset < 0 else "+"
    offset = abs(offset)
    return f"{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}"


@register("add_locale")
def add_locale(o: Opts, ctx: Context) -> Processor:
    fmt = o.str("format", "offset").lower()
    if fmt not in ("abbreviation", "offset"):
        raise o.error(
            "format",
            f"'{fmt}' is not a valid format option for the add_locale processor. "
            "Valid options are 'abbreviation' and 'offset'.",
        )
    tz = path("event.timezone")
    o.writes("event.timezone")
    cache: list[Any] = [0.0, ""]

    def run(evt: Event) -> Event:
        now = time.monotonic()
        if now - cache[0] > 1.0:  # the zone is looked up at most once a second
            cache[0], cache[1] = now, format_zone(fmt, *local_zone())
        try:
            tz.put(evt, cache[1])
        except FieldError:
            pass
        return evt

    return run


# -- community_id ---------------------------------------------------------------------------------------

_TRANSPORTS = {
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "ipv6-icmp": 58,
    "icmpv6": 58,
    "eigrp": 88,
    "ospf": 89,
    "pim": 103,
    "sctp": 132,
}
#: libbeat's flowhash tables (the type of the counterpart message stands for the port).
_ICMP4 = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6 = {
    128: 129,
    129: 128,
    133: 134,
    134: 133,
    136: 135,
    135: 136,
    130: 131,
    139: 140,
    140: 139,
    144: 145,
    145: 144,
}


def _ip16(text: str) -> bytes | None:
    a = parse_ip(text)
    if a is None:
        return None
    if a.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + a.packed
    return a.packed


def flow_hash(
    seed: int, sip: bytes, dip: bytes, proto: int, sport: int, dport: int, icmp: tuple[int, int]
) -> str:
    """Community ID v1 as libbeat's flowhash computes it (16-byte address forms order the
    endpoints; IPv4 is hashed as 4 bytes)."""
    if proto in (1, 58):
        table = _ICMP4 if proto == 1 else _ICMP6
        t, c = icmp
        if t in table:
            sport, dport, one_way = t, table[t], False
        else:
            sport, dport, one_way = t, c, True
        if not one_way and not (sip < dip or (sip == dip and sport < dport)):
            sip, dip, sport, dport = dip, sip, dport, sport
    elif not (sip < dip or (sip == dip and sport < dport)):
        sip, dip, sport, dport = dip, sip, dport, sport

    def raw(ip: bytes) -> bytes:
        return ip[12:] if ip[:12] == b"\x00" * 10 + b"\xff\xff" else ip

    data = struct.pack(">H", seed) + raw(sip) + raw(dip) + bytes([proto, 0])
    if proto in (6, 17, 132, 1, 58):
        data += struct.pack(">HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def _uint(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int):
        return None
    return v & 0xFFFFFFFFFFFFFFFF


@register("community_id")
def community_id(o: Opts, ctx: Context) -> Processor:
    fields = o.mapping("fields")
    names = {
        "source_ip": "source.ip",
        "source_port": "source.port",
        "destination_ip": "destination.ip",
        "destination_port": "destination.port",
        "iana_number": "network.iana_number",
        "transport": "network.transport",
        "icmp_type": "icmp.type",
        "icmp_code": "icmp.code",
    }
    for k, v in fields.items():
        if k not in names:
            raise o.error(f"fields.{k}", f"unknown field {k!r} (known: {', '.join(names)})")
        if not isinstance(v, str):
            raise o.error(f"fields.{k}", f"expected a field name, got {v!r}")
        names[k] = v
    target = path(o.str("target", "network.community_id"))
    seed = o.int("seed", 0, minimum=0)
    if seed > 0xFFFF:
        raise o.error("seed", "requires value <= 65535")
    p = {k: path(v) for k, v in names.items()}
    o.writes(target.key)

    def run(evt: Event) -> Event:
        if target.get(evt) is not MISSING:
            return evt
        s, d = p["source_ip"].get(evt), p["destination_ip"].get(evt)
        sip = _ip16(s) if isinstance(s, str) else None
        dip = _ip16(d) if isinstance(d, str) else None
        if sip is None or dip is None:
            return evt
        pv = p["iana_number"].get(evt)
        if pv is MISSING:
            pv = p["transport"].get(evt)
            if pv is MISSING:
                return evt
        proto: int | None = None
        if isinstance(pv, str):
            proto = _TRANSPORTS.get(pv, _TRANSPORTS.get(pv.lower()))
        if proto is None:
            u = _uint(pv)
            if u is None:
                return evt
            proto = u & 0xFF
        sport = dport = 0
        icmp = (0, 0)
        if proto in (6, 17, 132):
            sp, dp = _uint(p["source_port"].get(evt)), _uint(p["destination_port"].get(evt))
            if sp is None or dp is None or sp > 65535 or dp > 65535:
                return evt
            sport, dport = sp, dp
        elif proto in (1, 58):
            t, c = _uint(p["icmp_type"].get(evt)), _uint(p["icmp_code"].get(evt))
            if t is not None and c is not None:
                icmp = (t & 0xFF, c & 0xFF)
        try:
            target.put(evt, flow_hash(seed, sip, dip, proto, sport, dport, icmp))
        except FieldError as exc:
            raise ProcessorError(str(exc), evt) from None
        return evt

    return run


# -- registered_domain ------------------------------------------------------------------------------------

_psl: Any = None


def _suffix_list() -> Any:
    global _psl
    if _psl is None:
        from publicsuffixlist import PublicSuffixList

        _psl = PublicSuffixList()
    return _psl


def etld_plus_one(domain: str) -> tuple[str, str]:
    """(registered domain, public suffix) as Go's ``publicsuffix.EffectiveTLDPlusOne``
    gives them; ValueError for a domain that has none."""
    if domain.startswith(".") or domain.endswith(".") or ".." in domain:
        raise ValueError(f"publicsuffix: empty label in domain {domain!r}")
    psl = _suffix_list()
    suffix = psl.publicsuffix(domain, accept_unknown=True) or domain.rsplit(".", 1)[-1]
    if len(domain) <= len(suffix):
        raise ValueError(f"publicsuffix: cannot derive eTLD+1 for domain {domain!r}")
    head = domain[: len(domain) - len(suffix) - 1]
    return head.rsplit(".", 1)[-1] + "." + suffix, suffix


@register("registered_domain")
def registered_domain(o: Opts, ctx: Context) -> Processor:
    field = path(o.str("field", required=True))
    target = path(o.str("target_field", required=True))
    sub_t = o.str("target_subdomain_field")
    etld_t = o.str("target_etld_field")
    ignore_missing = o.bool("ignore_missing", False)
    ignore_failure = o.bool("ignore_failure", False)
    o.str("id")
    if not ctx.check_only:
        _suffix_list()  # load the bundled list once, at start-up
    sub_p = path(sub_t) if sub_t else None
    o.writes(target.key, *(t for t in (sub_t, etld_t) if t))
    etld_p = path(etld_t) if etld_t else None

    def run(evt: Event) -> Event:
        v = field.get(evt)
        if v is MISSING:
            if ignore_missing or ignore_failure:
                return evt
            raise ProcessorError(
                f"registered_domain source field [{field.key}] not found: key not found", evt
            )
        if not isinstance(v, str):
            if ignore_failure:
                return evt
            raise ProcessorError(f"registered_domain source field [{field.key}] is not a string", evt)
        try:
            rd, suffix = etld_plus_one(v)
            target.put(evt, rd)
            if etld_p is not None and suffix:
                etld_p.put(evt, suffix)
            if sub_p is not None:
                sub = v[: -len(rd)] if v.endswith(rd) else v
                sub = sub[:-1] if sub.endswith(".") else sub
                if sub:
                    sub_p.put(evt, sub)
        except (ValueError, FieldError) as exc:
            if ignore_failure:
                return evt
            raise ProcessorError(f"failed to determine the registered domain: {exc}", evt) from None
        return evt

    return run


# -- rate_limit -------------------------------------------------------------------------------------------


def parse_rate(text: Any) -> tuple[float, float]:
    """``"10000/m"`` → (10000, events per second)."""
    if not isinstance(text, str) or text.count("/") != 1:
        raise ValueError(f'rate in invalid format: {text}. Must be specified as "number/unit"')
    value, unit = (p.strip() for p in text.split("/"))
    try:
        v = parse_float(value)
    except ValueError:
        raise ValueError(f"rate's value component is not numeric: {value}") from None
    per = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(unit)
    if per is None:
        raise ValueError("rate's unit component must be specified as one of: /s,/m,/h")
    return v, v / per


class TokenBuckets:
    """libbeat's ``token_bucket``: one bucket per key, ``burst_multiplier`` × the limit
    deep, refilled at the limit's rate; idle full buckets are forgotten every
    ``gc.num_calls`` calls. (libbeat lets an idle bucket grow past its depth until that
    collection runs; here a bucket never holds more than its depth.)"""

    def __init__(self, per_second: float, depth: float, gc_calls: int, clock: Callable[[], float]) -> None:
        self.rate = per_second
        self.depth = depth
        self.gc_calls = gc_calls
        self.clock = clock
        self.buckets: dict[Any, list[float]] = {}
        self.calls = 0
        self.lock = threading.Lock()

    def allow(self, key: Any) -> bool:
        now = self.clock()
        with self.lock:
            self.calls += 1
            if self.calls >= self.gc_calls:
                self.calls = 0
                for k, old in list(self.buckets.items()):
                    if old[0] + (now - old[1]) * self.rate >= self.depth:
                        del self.buckets[k]
            b = self.buckets.get(key)
            if b is None:
                b = self.buckets[key] = [self.depth, now]
            else:
                b[0] = min(self.depth, b[0] + (now - b[1]) * self.rate)
                b[1] = now
            if b[0] < 1:
                return False
            b[0] -= 1
            return True


@register("rate_limit")
def rate_limit(o: Opts, ctx: Context) -> Processor:
    if not o.has("limit"):
        raise o.error("limit", "missing required field accessing 'limit'")
    try:
        value, per_second = parse_rate(o.raw("limit"))
    except ValueError as exc:
        raise o.error("limit", str(exc)) from None
    fields = sorted(o.strings("fields"))
    algo = o.mapping("algorithm") or {"token_bucket": {}}
    if list(algo) != ["token_bucket"]:
        raise o.error("algorithm", f"rate limiting algorithm '{next(iter(algo), '')}' not implemented")
    tb = algo["token_bucket"] or {}
    burst = tb.get("burst_multiplier", 1.0)
    gc = (tb.get("gc") or {}).get("num_calls", 10000)
    if isinstance(burst, bool) or not isinstance(burst, int | float) or burst <= 0:
        raise o.error("algorithm.token_bucket.burst_multiplier", f"expected a positive number, got {burst!r}")
    if isinstance(gc, bool) or not isinstance(gc, int) or gc < 1:
        raise o.error("algorithm.token_bucket.gc.num_calls", f"expected a positive integer, got {gc!r}")
    # libbeat: a bucket is the limit's number deep (``10/m``: 10), times burst_multiplier.
    buckets = TokenBuckets(per_second, value * float(burst), gc, ctx.clock)
    paths = [path(f) for f in fields]
    stats = ctx.stats
    o.writes()

    def run(evt: Event) -> Event | None:
        key: Any = None
        if paths:
            key = tuple(format_value(v) if (v := p.get(evt)) is not MISSING else "" for p in paths)
        if buckets.allow(key):
            return evt
        stats.incr("processors.rate_limit.dropped")
        return None

    return run


# -- translate_sid ------------------------------------------------------------------------------------------

#: Well-known SIDs (the ones every Windows machine resolves the same way), since there is
#: no Windows LSA to ask here: name, domain, account type.
WELL_KNOWN_SIDS = {
    "S-1-0-0": ("NULL SID", "", "Well Known Group"),
    "S-1-1-0": ("Everyone", "", "Well Known Group"),
    "S-1-2-0": ("LOCAL", "", "Well Known Group"),
    "S-1-3-0": ("CREATOR OWNER", "", "Well Known Group"),
    "S-1-3-1": ("CREATOR GROUP", "", "Well Known Group"),
    "S-1-5-1": ("DIALUP", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-2": ("NETWORK", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-3": ("BATCH", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-4": ("INTERACTIVE", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-6": ("SERVICE", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-7": ("ANONYMOUS LOGON", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-9": ("ENTERPRISE DOMAIN CONTROLLERS", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-11": ("Authenticated Users", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-13": ("TERMINAL SERVER USER", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-18": ("SYSTEM", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-19": ("LOCAL SERVICE", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-20": ("NETWORK SERVICE", "NT AUTHORITY", "Well Known Group"),
    "S-1-5-32-544": ("Administrators", "BUILTIN", "Alias"),
    "S-1-5-32-545": ("Users", "BUILTIN", "Alias"),
    "S-1-5-32-546": ("Guests", "BUILTIN", "Alias"),
    "S-1-5-32-547": ("Power Users", "BUILTIN", "Alias"),
    "S-1-5-32-551": ("Backup Operators", "BUILTIN", "Alias"),
    "S-1-5-32-555": ("Remote Desktop Users", "BUILTIN", "Alias"),
}


@register("translate_sid")
def translate_sid(o: Opts, ctx: Context) -> Processor:
    field = path(o.str("field", required=True))
    targets = [
        (path(t), i)
        for i, k in enumerate(("account_name_target", "domain_target", "account_type_target"))
        if (t := o.str(k))
    ]
    if not targets:
        raise o.error(
            None,
            "at least one target field must be configured (set account_name_target, account_type_target, "
            "and/or domain_target)",
        )
    ignore_missing = o.bool("ignore_missing", False)
    ignore_failure = o.bool("ignore_failure", False)
    o.writes(*(p.key for p, _ in targets))

    def run(evt: Event) -> Event:
        v = field.get(evt)
        if v is MISSING:
            if ignore_missing or ignore_failure:
                return evt
            raise ProcessorError("key not found", evt)
        if not isinstance(v, str):
            if ignore_failure:
                return evt
            raise ProcessorError("SID field value is not a string", evt)
        known = WELL_KNOWN_SIDS.get(v)
        if known is None:
            if ignore_failure:
                return evt
            raise ProcessorError("No mapping between account names and security IDs was done.", evt)
        for p, i in targets:
            try:
                p.put(evt, known[i])
            except FieldError:
                pass
        return evt

    return run
