"""libbeat conditions, compiled once into plain predicates (``event dict -> bool``).

The condition language of ``when:`` on processors, ``if:`` blocks and output routing
(``output.kafka.topics``, …): ``equals``, ``contains``, ``regexp``, ``range``,
``has_fields``, ``network``, ``and``, ``or``, ``not`` — with libbeat's semantics
(libbeat/conditions): a field that is absent, or of a type the test does not take, makes the
test false; ``equals`` compares integers with integers, strings with strings and booleans
with booleans only; ``contains``/``regexp`` on a list match when any string element does;
``network`` takes CIDRs or the named ranges ``loopback``, ``private``, ``public``,
``multicast`` … and matches a list of addresses when any of them is inside.

:func:`compile_condition` checks everything up front and raises
:class:`~shipper.agent.config.ConfigError` naming the key path (``processors.0.drop_event.
when.regexp.http.request.method``); the returned predicate never raises.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from shipper.agent.config import ConfigError, expand_dotted
from shipper.pipeline.fieldpath import MISSING, FieldPath, path
from shipper.pipeline.goregexp import RegexpError, compile_go

Condition = Callable[[dict[str, Any]], bool]
Warn = Callable[[str], None]

#: The condition kinds in the order libbeat looks for them (the first one found is used).
KINDS = ("equals", "contains", "regexp", "range", "has_fields", "network", "or", "and", "not")


def compile_condition(cfg: Any, where: str = "condition", warn: Warn | None = None) -> Condition:
    """The predicate for one condition config (the mapping under ``when:``, ``if:`` …)."""
    if not isinstance(cfg, dict):
        raise ConfigError(where, f"a condition must be a mapping, got {_show(cfg)}")
    cfg = expand_dotted(cfg)  # ``not.contains.tags: x`` is ``not: {contains: {tags: x}}``
    present = [k for k in KINDS if k in cfg and _given(k, cfg[k])]
    unknown = [str(k) for k in cfg if k not in KINDS]
    if not present:
        hint = (
            f" (unknown key {', '.join(map(repr, unknown))}; use one of {', '.join(KINDS)})"
            if unknown
            else ""
        )
        raise ConfigError(where, f"missing or invalid condition{hint}")
    kind = present[0]
    if warn is not None:
        if len(present) > 1:
            warn(f"{where}: several conditions in one mapping; only {kind!r} is used (as in libbeat)")
        for k in unknown:
            warn(f"{where}.{k}: unknown condition setting (ignored)")
    sub = f"{where}.{kind}"
    body = cfg[kind]
    if kind == "equals":
        return _equals(_fields(body, sub), sub)
    if kind in ("contains", "regexp"):
        return _matcher(kind, _fields(body, sub), sub)
    if kind == "range":
        return _range(_fields(body, sub), sub)
    if kind == "has_fields":
        return _has_fields(body, sub)
    if kind == "network":
        return _network(body, sub)
    if kind in ("or", "and"):
        items = body if isinstance(body, list) else [body]
        subs = [compile_condition(c, f"{sub}.{i}", warn) for i, c in enumerate(items)]
        return _any(subs) if kind == "or" else _all(subs)
    inner = compile_condition(body, sub, warn)
    return lambda evt: not inner(evt)


def _given(kind: str, value: Any) -> bool:
    """libbeat skips an empty ``network``, ``or`` or ``and``."""
    if kind in ("network", "or", "and"):
        return bool(value)
    return value is not None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fields(body: Any, where: str) -> dict[str, Any]:
    """libbeat's ``conditions.Fields``: nested mappings and lists become dotted keys."""
    if not isinstance(body, dict):
        raise ConfigError(where, "wrong type, expect map")
    out: dict[str, Any] = {}

    def expand(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                expand(f"{key}.{k}", v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                expand(f"{key}.{i}", v)
        else:
            out[key] = value

    for k, v in body.items():
        expand(str(k), v)
    return out


def _all(preds: list[Condition]) -> Condition:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda evt: a(evt) and b(evt)
    return lambda evt: all(p(evt) for p in preds)


def _any(preds: list[Condition]) -> Condition:
    if len(preds) == 1:
        return preds[0]
    return lambda evt: any(p(evt) for p in preds)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# -- equals ------------------------------------------------------------------------------------


def _equals(fields: dict[str, Any], where: str) -> Condition:
    preds = []
    for key, want in fields.items():
        fp = path(key)
        if _is_int(want):
            preds.append(_eq_int(fp, want))
        elif isinstance(want, str):
            preds.append(_eq_typed(fp, want, str))
        elif isinstance(want, bool):
            preds.append(_eq_typed(fp, want, bool))
        else:
            raise ConfigError(
                f"{where}.{key}",
                f"condition attempted to set '{key}' -> '{want}' and encountered unexpected type "
                f"'{_go_type(want)}', only strings, ints, and booleans are allowed",
            )
    if not preds:
        return lambda evt: True
    return _all(preds)


def _eq_int(fp: FieldPath, want: int) -> Condition:
    get = fp.get
    want64 = want & 0xFFFFFFFFFFFFFFFF  # libbeat compares as uint64

    def check(evt: dict[str, Any]) -> bool:
        v = get(evt)
        return type(v) is int and (v == want or v & 0xFFFFFFFFFFFFFFFF == want64)

    return check


def _eq_typed(fp: FieldPath, want: Any, tp: type) -> Condition:
    get = fp.get

    def check(evt: dict[str, Any]) -> bool:
        v = get(evt)
        return type(v) is tp and v == want

    return check


def _go_type(v: Any) -> str:
    if isinstance(v, float):
        return "float64"
    if v is None:
        return "<nil>"
    if isinstance(v, list):
        return "[]interface {}"
    return type(v).__name__


# -- contains / regexp ---------------------------------------------------------------------------


def _matcher(kind: str, fields: dict[str, Any], where: str) -> Condition:
    preds = []
    for key, pattern in fields.items():
        if not isinstance(pattern, str):
            raise ConfigError(f"{where}.{key}", f"unexpected type {_go_type(pattern)} of {pattern}")
        if kind == "contains":
            match = _contains_fn(pattern)
        else:
            try:
                match = compile_go(pattern).search
            except RegexpError as exc:
                raise ConfigError(f"{where}.{key}", str(exc)) from None
        preds.append(_match_field(path(key), match))
    if not preds:
        return lambda evt: True
    return _all(preds)


def _contains_fn(needle: str) -> Callable[[str], Any]:
    if needle == "":
        return lambda s: s == ""  # libbeat's empty matcher matches the empty string only
    return lambda s: needle in s


def _match_field(fp: FieldPath, match: Callable[[str], Any]) -> Condition:
    get = fp.get

    def check(evt: dict[str, Any]) -> bool:
        v = get(evt)
        if type(v) is str:
            return bool(match(v))
        if type(v) is list:
            return any(type(s) is str and match(s) for s in v)
        return False

    return check


# -- range ---------------------------------------------------------------------------------------

_OPS = ("gte", "gt", "lte", "lt")


def _float(v: Any) -> float | None:
    """libbeat's ExtractFloat: numbers, and strings that parse as one."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v) if v.strip() == v and "_" not in v else None
        except ValueError:
            return None
    return None


def _range(fields: dict[str, Any], where: str) -> Condition:
    bounds: dict[str, dict[str, float]] = {}
    for key, value in fields.items():
        f = _float(value)
        if f is None:
            raise ConfigError(f"{where}.{key}", f"expected a number, got {_show(value)}")
        op = key.rsplit(".", 1)[-1]
        if op not in _OPS:
            raise ConfigError(f"{where}.{key}", f"unexpected range operator {op} (use gte, gt, lte or lt)")
        field = key[: -len(op) - 1] if key.endswith("." + op) else key
        bounds.setdefault(field, {})[op] = f
    preds = [_range_field(path(field), b) for field, b in bounds.items()]
    if not preds:
        return lambda evt: True
    return _all(preds)


def _range_field(fp: FieldPath, b: dict[str, float]) -> Condition:
    get = fp.get
    gte, gt, lte, lt = (b.get(op) for op in _OPS)
    lo = -math.inf if gte is None else gte
    hi = math.inf if lte is None else lte

    def check(evt: dict[str, Any]) -> bool:
        v = get(evt)
        tv = type(v)
        if tv is int or tv is float:
            x = float(v)
        else:
            x2 = _float(v)
            if x2 is None:
                return False
            x = x2
        # Written as libbeat's "fails when ..." tests, so NaN passes as it does there.
        if x < lo or x > hi:
            return False
        if gt is not None and x <= gt:
            return False
        return not (lt is not None and x >= lt)

    return check


# -- has_fields ----------------------------------------------------------------------------------


def _has_fields(body: Any, where: str) -> Condition:
    items = body if isinstance(body, list) else [body]
    paths = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ConfigError(f"{where}.{i}", f"expected a field name, got {_show(item)}")
        paths.append(path(item))
    gets = [p.get for p in paths]
    if len(gets) == 1:
        g = gets[0]
        return lambda evt: g(evt) is not MISSING
    return lambda evt: all(g(evt) is not MISSING for g in gets)


# -- network -------------------------------------------------------------------------------------

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=65536)
def parse_ip(text: str) -> IP | None:
    """Go's ``net.ParseIP``: an IPv4-mapped IPv6 address is the IPv4 address."""
    if "%" in text:
        return None
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return None
    if a.version == 6:
        mapped = a.ipv4_mapped
        if mapped is not None:
            return mapped
    return a


def _v4(*nets: str) -> list[ipaddress.IPv4Network]:
    return [ipaddress.IPv4Network(n) for n in nets]


_PRIVATE4 = _v4("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
_PRIVATE6 = ipaddress.IPv6Network("fd00::/8")
_LOOP4 = ipaddress.IPv4Network("127.0.0.0/8")
_LL4 = ipaddress.IPv4Network("169.254.0.0/16")
_LL6 = ipaddress.IPv6Network("fe80::/10")
_LLMC4 = ipaddress.IPv4Network("224.0.0.0/24")
_MC4 = ipaddress.IPv4Network("224.0.0.0/4")
_BCAST = ipaddress.IPv4Address("255.255.255.255")


def _loopback(a: IP) -> bool:
    return a in _LOOP4 if a.version == 4 else int(a) == 1


def _unspecified(a: IP) -> bool:
    return int(a) == 0


def _multicast(a: IP) -> bool:
    return a in _MC4 if a.version == 4 else (int(a) >> 120) == 0xFF


def _ll_unicast(a: IP) -> bool:
    return a in _LL4 if a.version == 4 else a in _LL6


def _v6_multicast_scope(a: IP, scope: int) -> bool:
    # Go tests only the scope nibble, whatever the flags (ff02::, ff12::, ff32:: …).
    n = int(a)
    return a.version == 6 and (n >> 120) == 0xFF and ((n >> 112) & 0x0F) == scope


def _ll_multicast(a: IP) -> bool:
    return a in _LLMC4 if a.version == 4 else _v6_multicast_scope(a, 2)


def _if_multicast(a: IP) -> bool:
    return _v6_multicast_scope(a, 1)


def _private(a: IP) -> bool:
    return any(a in n for n in _PRIVATE4) if a.version == 4 else a in _PRIVATE6


def _global_unicast(a: IP) -> bool:
    return not (a == _BCAST or _unspecified(a) or _loopback(a) or _multicast(a) or _ll_unicast(a))


def _public(a: IP) -> bool:
    return not (
        _private(a)
        or _loopback(a)
        or _unspecified(a)
        or a == _BCAST
        or _ll_unicast(a)
        or _ll_multicast(a)
        or _if_multicast(a)
    )


#: libbeat's named networks (conditions/network.go).
NAMED_NETWORKS: dict[str, Callable[[IP], bool]] = {
    "loopback": _loopback,
    "global_unicast": _global_unicast,
    "unicast": _global_unicast,
    "link_local_unicast": _ll_unicast,
    "interface_local_multicast": _if_multicast,
    "link_local_multicast": _ll_multicast,
    "multicast": _multicast,
    "unspecified": _unspecified,
    "private": _private,
    "public": _public,
}


def network_matcher(spec: Any) -> Callable[[IP], bool]:
    """One named network or CIDR → a membership test. ValueError says what is wrong."""
    if not isinstance(spec, str):
        raise ValueError(f"expected a network name or CIDR, got {_show(spec)}")
    named = NAMED_NETWORKS.get(spec)
    if named is not None:
        return named
    try:
        if "/" not in spec:
            raise ValueError("missing prefix length")
        net = ipaddress.ip_network(spec, strict=False)
    except ValueError:
        raise ValueError(
            "failed to parse CIDR, values must be an IP address and prefix length, like "
            "'192.0.2.0/24' or '2001:db8::/32', as defined in RFC 4632 and RFC 4291: "
            f"invalid CIDR address: {spec} (or use one of {', '.join(NAMED_NETWORKS)})"
        ) from None
    version = net.version
    base, mask = int(net.network_address), int(net.netmask)
    return lambda a: a.version == version and (int(a) & mask) == base


def networks_matcher(specs: list[Any]) -> Callable[[IP], bool]:
    ms = [network_matcher(s) for s in specs]
    if len(ms) == 1:
        return ms[0]
    return lambda a: any(m(a) for m in ms)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _network(body: Any, where: str) -> Condition:
    if not isinstance(body, dict):
        raise ConfigError(where, "wrong type, expect map")
    preds = []
    for key, value in _flatten(body).items():
        specs = value if isinstance(value, list) else [value]
        if not isinstance(value, str | list) or not all(isinstance(s, str) for s in specs):
            raise ConfigError(
                f"{where}.{key}",
                f"network condition attempted to set '{key}' -> '{value}' and encountered unexpected "
                "type, only strings or []strings are allowed",
            )
        try:
            contains = networks_matcher(specs)
        except ValueError as exc:
            raise ConfigError(f"{where}.{key}", str(exc)) from None
        preds.append(_network_field(path(key), contains))
    return _all(preds)


def _network_field(fp: FieldPath, contains: Callable[[IP], bool]) -> Condition:
    get = fp.get
    #: address text → inside? (traffic repeats its addresses: most events are one lookup)
    seen: dict[str, bool] = {}

    def test(text: str) -> bool:
        hit = seen.get(text)
        if hit is None:
            if len(seen) >= 65536:
                seen.clear()
            a = parse_ip(text)
            hit = seen[text] = a is not None and contains(a)
        return hit

    def check(evt: dict[str, Any]) -> bool:
        v = get(evt)
        if type(v) is str:
            return test(v)
        if type(v) is list:
            return any(type(s) is str and test(s) for s in v)
        return False

    return check


__all__ = [
    "KINDS",
    "NAMED_NETWORKS",
    "Condition",
    "compile_condition",
    "network_matcher",
    "networks_matcher",
    "parse_ip",
]
