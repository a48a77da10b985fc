"""libbeat's conditions (``libbeat/conditions``) for ``output.kafka.topics[].when``.

A minimal evaluator, kept behind one small interface (:func:`compile_condition` →
:class:`Condition` with ``check(event) -> bool``) so that the pipeline's own condition
engine (``processors:``, being written in ``shipper/pipeline/``) can replace it without
touching the selectors. Supported, with libbeat's semantics: ``equals`` (integers, strings
and booleans; the event value must have the same kind), ``contains`` (substring; any
element of a list of strings), ``regexp`` (unanchored search), ``range``
(``gt``/``gte``/``lt``/``lte`` on numbers), ``has_fields``, ``network`` (CIDRs and
libbeat's named networks: ``private``, ``public``, ``loopback``, ``unicast`` ...), ``and``,
``or``, ``not``. Field names are dotted paths, nested YAML maps are flattened.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from shipper.outputs.fmtstr import _MISSING, lookup

Event = Mapping[str, Any]


class Condition:
    def __init__(self, check: Callable[[Event], bool], text: str) -> None:
        self.check = check
        self.text = text

    def __repr__(self) -> str:
        return f"Condition({self.text})"


def _flatten(raw: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a mapping of fields, got {raw!r}")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, str):
        return "str"
    return ""


def _equals(fields: dict[str, Any]) -> Callable[[Event], bool]:
    tests: list[tuple[str, str, Any]] = []
    for field, want in fields.items():
        kind = _kind(want)
        if not kind:
            raise ValueError(
                f"condition attempted to set '{field}' -> '{want}' and encountered unexpected type "
                f"'{type(want).__name__}', only strings, ints, and booleans are allowed"
            )
        tests.append((field, kind, want))

    def check(event: Event) -> bool:
        for field, kind, want in tests:
            v = lookup(event, field)
            if v is _MISSING or _kind(v) != kind or v != want:
                return False
        return True

    return check


def _matcher(fields: dict[str, Any], regexp: bool) -> Callable[[Event], bool]:
    """``contains`` is a substring test, ``regexp`` an unanchored search (libbeat's match)."""
    tests: list[tuple[str, re.Pattern[str]]] = []
    for field, pattern in fields.items():
        if not isinstance(pattern, str):
            raise ValueError(f"unexpected type {type(pattern).__name__} of {pattern!r}")
        try:
            tests.append((field, re.compile(pattern if regexp else re.escape(pattern))))
        except re.error as exc:
            raise ValueError(f"invalid regexp {pattern!r}: {exc}") from None

    def check(event: Event) -> bool:
        for field, rx in tests:
            v = lookup(event, field)
            if isinstance(v, str):
                if rx.search(v) is None:
                    return False
            elif isinstance(v, list):
                if not any(isinstance(x, str) and rx.search(x) is not None for x in v):
                    return False
            else:
                return False
        return True

    return check


def _range(fields: dict[str, Any]) -> Callable[[Event], bool]:
    bounds: dict[str, dict[str, float]] = {}
    for key, value in fields.items():
        field, _, op = key.rpartition(".")
        if op not in ("gt", "gte", "lt", "lte") or not field:
            raise ValueError(f"unexpected range operator {op}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"range {key}: expected a number, got {value!r}")
        bounds.setdefault(field, {})[op] = float(value)

    def check(event: Event) -> bool:
        for field, b in bounds.items():
            v = lookup(event, field)
            if isinstance(v, bool) or not isinstance(v, int | float):
                return False
            if "gte" in b and v < b["gte"]:
                return False
            if "gt" in b and v <= b["gt"]:
                return False
            if "lte" in b and v > b["lte"]:
                return False
            if "lt" in b and v >= b["lt"]:
                return False
        return True

    return check


_PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8")]
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _private(ip: _IP) -> bool:
    return any(ip in n for n in _PRIVATE if n.version == ip.version)


def _global_unicast(ip: _IP) -> bool:
    # Go's IsGlobalUnicast: not unspecified, loopback, multicast, link-local, limited broadcast.
    if ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_link_local:
        return False
    return not (ip.version == 4 and int(ip) == 0xFFFFFFFF)


_NAMED: dict[str, Callable[[_IP], bool]] = {
    "loopback": lambda ip: ip.is_loopback,
    "global_unicast": _global_unicast,
    "unicast": _global_unicast,
    "link_local_unicast": lambda ip: ip.is_link_local and not ip.is_multicast,
    "interface_local_multicast": lambda ip: (
        ip.version == 6 and ip.is_multicast and (int(ip) >> 112) & 0xF == 1
    ),
    "link_local_multicast": lambda ip: (
        ip.is_multicast
        and (ip in ipaddress.ip_network("224.0.0.0/24") if ip.version == 4 else (int(ip) >> 112) & 0xF == 2)
    ),
    "multicast": lambda ip: ip.is_multicast,
    "unspecified": lambda ip: ip.is_unspecified,
    "private": _private,
    "public": lambda ip: (
        not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified or _private(ip))
    ),
}


def _network_matcher(spec: Any) -> Callable[[_IP], bool]:
    if isinstance(spec, list):
        parts = [_network_matcher(s) for s in spec]
        return lambda ip: any(p(ip) for p in parts)
    if not isinstance(spec, str):
        raise ValueError(f"network: expected a CIDR or a named network, got {spec!r}")
    if spec in _NAMED:
        return _NAMED[spec]
    try:
        net = ipaddress.ip_network(spec, strict=False)
    except ValueError:
        raise ValueError(f"network: invalid network {spec!r}") from None
    return lambda ip: ip.version == net.version and ip in net


def _network(fields: dict[str, Any]) -> Callable[[Event], bool]:
    tests = [(field, _network_matcher(spec)) for field, spec in fields.items()]

    def check(event: Event) -> bool:
        for field, test in tests:
            v = lookup(event, field)
            if not isinstance(v, str):
                return False
            try:
                ip = ipaddress.ip_address(v)
            except ValueError:
                return False
            if not test(ip):
                return False
        return True

    return check


def compile_condition(raw: Any) -> Condition:
    """Compile a libbeat condition; raises ValueError with libbeat's reasons."""
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError("missing or invalid condition")
    known = ("equals", "contains", "regexp", "range", "has_fields", "network", "or", "and", "not")
    keys = [k for k in raw if k in known]
    unknown = [k for k in raw if k not in known]
    if unknown:
        raise ValueError(f"unknown condition {unknown[0]!r} (known: {', '.join(known)})")
    if len(keys) != 1:
        raise ValueError(f"a condition has exactly one operator, got {', '.join(keys)}")
    op = keys[0]
    body = raw[op]
    check: Callable[[Event], bool]
    if op == "equals":
        check = _equals(_flatten(body))
    elif op in ("contains", "regexp"):
        check = _matcher(_flatten(body), op == "regexp")
    elif op == "range":
        check = _range(_flatten(body))
    elif op == "has_fields":
        names = body if isinstance(body, list) else [body]
        if not all(isinstance(n, str) for n in names):
            raise ValueError("has_fields: expected a list of field names")

        def check(event: Event, names: list[str] = names) -> bool:
            return all(lookup(event, n) is not _MISSING for n in names)

    elif op == "network":
        check = _network(_flatten_network(body))
    elif op in ("or", "and"):
        if not isinstance(body, list) or not body:
            raise ValueError(f"{op}: expected a list of conditions")
        subs = [compile_condition(c) for c in body]
        if op == "or":

            def check(event: Event, subs: list[Condition] = subs) -> bool:
                return any(c.check(event) for c in subs)

        else:

            def check(event: Event, subs: list[Condition] = subs) -> bool:
                return all(c.check(event) for c in subs)

    else:
        inner = compile_condition(body)

        def check(event: Event, inner: Condition = inner) -> bool:
            return not inner.check(event)

    return Condition(check, f"{op}: {body!r}")


def _flatten_network(body: Any) -> dict[str, Any]:
    """``network`` values are strings or lists: flatten the field maps, not the lists."""
    if not isinstance(body, Mapping) or not body:
        raise ValueError("network: expected a mapping of field to network")
    out: dict[str, Any] = {}
    for k, v in body.items():
        if isinstance(v, Mapping):
            out.update({f"{k}.{kk}": vv for kk, vv in _flatten_network(v).items()})
        else:
            out[str(k)] = v
    return out
