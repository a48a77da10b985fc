"""``dns``: look fields up in DNS (reverse/PTR, A, AAAA, TXT) and write the answers
(libbeat/processors/dns), with a success cache (answer TTL, at least ``min_ttl``) and a
failure cache, through the nameservers configured or those of ``/etc/resolv.conf``, over
UDP or DNS-over-TLS (dnspython). A lookup blocks the pipeline for at most ``timeout`` per
nameserver, as in libbeat; the caches keep that rare."""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from typing import Any

from shipper.pipeline.fieldpath import MISSING, FieldError, path
from shipper.pipeline.processors.base import Context, Event, Opts, Processor, add_tags, register

_TYPES = {"a": "A", "aaaa": "AAAA", "ptr": "PTR", "reverse": "PTR", "txt": "TXT"}


class LookupError_(Exception):
    pass


class TTLCache:
    """Bounded LRU of (expiry, value)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str, now: float) -> Any:
        with self.lock:
            hit = self.items.get(key)
            if hit is None:
                return None
            if hit[0] <= now:
                del self.items[key]
                return None
            self.items.move_to_end(key)
            return hit[1]

    def put(self, key: str, value: Any, expires: float) -> None:
        with self.lock:
            self.items[key] = (expires, value)
            self.items.move_to_end(key)
            while len(self.items) > self.capacity:
                self.items.popitem(last=False)


def system_nameservers(path_: str = "/etc/resolv.conf") -> list[str]:
    out = []
    try:
        with open(path_, encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append(parts[1])
    except OSError:
        pass
    return out


def _split_server(server: str, default_port: int) -> tuple[str, int]:
    s = server.strip()
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if s.count(":") == 1:
        host, port = s.split(":")
        return host, int(port)
    return s, default_port


class Resolver:
    """Queries the nameservers in turn; (answers, ttl) or LookupError_."""

    def __init__(self, servers: list[str], timeout: float, transport: str) -> None:
        import dns.message
        import dns.query
        import dns.rcode
        import dns.rdatatype
        import dns.reversename

        self.dns = dns
        port = 853 if transport == "tls" else 53
        self.servers = [_split_server(s, port) for s in servers]
        self.timeout = timeout
        self.transport = transport

    def lookup(self, value: str, qtype: str) -> tuple[list[str], float]:
        dns = self.dns
        if qtype == "PTR":
            try:
                name = dns.reversename.from_address(str(ipaddress.ip_address(value)))
            except ValueError:
                raise LookupError_(f"value '{value}' is not a valid IP address") from None
        else:
            name = dns.name.from_text(value)
        q = dns.message.make_query(name, qtype)
        last: Exception | None = None
        for host, port in self.servers:
            try:
                if self.transport == "tls":
                    resp = dns.query.tls(q, host, timeout=self.timeout, port=port)
                else:
                    resp = dns.query.udp(q, host, timeout=self.timeout, port=port)
            except Exception as exc:
                last = exc
                continue
            rcode = resp.rcode()
            if rcode != dns.rcode.NOERROR:
                raise LookupError_(dns.rcode.to_text(rcode))
            answers: list[str] = []
            ttl: float | None = None
            want = dns.rdatatype.from_text(qtype)
            for rrset in resp.answer:
                if rrset.rdtype != want:
                    continue
                ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
                for rd in rrset:
                    if qtype == "PTR":
                        answers.append(rd.target.to_text().rstrip("."))
                    elif qtype == "TXT":
                        answers.append(b"".join(rd.strings).decode("utf-8", "replace"))
                    else:
                        answers.append(rd.address)
            if not answers:
                raise LookupError_(f"no {qtype} resource records were found")
            return answers, float(ttl or 0)
        raise LookupError_(f"all nameservers failed: {last}")


def _cache_opts(o: Opts, key: str, ttl_default: float | None) -> dict[str, Any]:
    raw = o.mapping(key)
    enabled = raw.get("enabled", True)
    min_ttl = raw.get("min_ttl", "1m")
    ttl = raw.get("ttl", "1m" if ttl_default else None)
    cap = raw.get("capacity") or {}
    from shipper.agent.config import parse_duration

    try:
        out = {
            "enabled": bool(enabled),
            "min_ttl": parse_duration(min_ttl),
            "ttl": parse_duration(ttl) if ttl is not None else 0.0,
            "max": int(cap.get("max", 10000)),
            "initial": int(cap.get("initial", 1000)),
        }
    except (ValueError, TypeError) as exc:
        raise o.error(key, str(exc)) from None
    if key == "success_cache" and out["min_ttl"] <= 0:
        raise o.error(f"{key}.min_ttl", "success_cache.min_ttl must be > 0")
    if key == "failure_cache" and out["ttl"] <= 0:
        raise o.error(f"{key}.ttl", "failure_cache.ttl must be > 0")
    if out["max"] <= 0:
        raise o.error(f"{key}.capacity.max", f"{key}.capacity.max must be > 0")
    if out["max"] < out["initial"]:
        raise o.error(f"{key}.capacity.max", f"{key}.capacity.max must be >= {key}.capacity.initial")
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


@register("dns")
def dns_processor(o: Opts, ctx: Context) -> Processor:
    t = o.str("type", required=True).lower()
    if t not in _TYPES:
        raise o.error(
            "type",
            f"invalid dns lookup type '{t}' specified in config "
            "(valid values are: A, AAAA, PTR, reverse, TXT)",
        )
    qtype = _TYPES[t]
    action = o.str("action", "append").lower()
    if action not in ("append", "replace"):
        raise o.error("action", f"invalid dns field action value '{action}'")
    transport = o.str("transport", "udp").lower()
    if transport not in ("udp", "tls"):
        raise o.error(
            "transport",
            f"invalid transport method type '{transport}' specified in config (valid value is: tls or udp)",
        )
    timeout = o.duration("timeout", 0.5)
    tags = o.strings("tag_on_failure")
    fields: dict[str, str] = {}
    for k, v in _flatten(o.mapping("fields")).items():
        if not isinstance(v, str):
            raise o.error(
                f"fields.{k}",
                f"target field for dns lookup of {k} must be a string but got {type(v).__name__}",
            )
        fields[k] = v
    servers = o.strings("nameservers") or system_nameservers()
    if not servers:
        raise o.error("nameservers", "no nameservers configured and none found in /etc/resolv.conf")
    for i, s in enumerate(servers):
        try:
            _split_server(s, 53)
        except ValueError:
            raise o.error(f"nameservers.{i}", f"invalid nameserver {s!r}") from None
    success = _cache_opts(o, "success_cache", None)
    failure = _cache_opts(o, "failure_cache", 60.0)
    try:
        resolver = Resolver(servers, timeout, transport)
    except ImportError:
        raise o.error(None, "processor 'dns' needs the dnspython package, which is not installed") from None
    ok_cache = TTLCache(success["max"])
    bad_cache = TTLCache(failure["max"])
    stats = ctx.stats
    clock = ctx.clock
    pairs = [(path(src), path(dst)) for src, dst in fields.items()]
    o.writes(*fields.values(), "tags")

    def lookup(value: str) -> list[str]:
        now = clock()
        key = qtype + "|" + value
        if success["enabled"]:
            hit = ok_cache.get(key, now)
            if hit is not None:
                stats.incr("processors.dns.cache_hits")
                return list(hit)
        if failure["enabled"]:
            err = bad_cache.get(key, now)
            if err is not None:
                stats.incr("processors.dns.cache_hits")
                raise LookupError_(err)
        stats.incr("processors.dns.lookups")
        try:
            answers, ttl = resolver.lookup(value, qtype)
        except LookupError_ as exc:
            stats.incr("processors.dns.failures")
            if failure["enabled"]:
                bad_cache.put(key, str(exc), now + failure["ttl"])
            raise
        if success["enabled"]:
            ok_cache.put(key, answers, now + max(ttl, success["min_ttl"]))
        return answers

    def put(evt: Event, dst: Any, values: list[str]) -> None:
        value: Any = values[0] if qtype == "PTR" else list(values)
        if action == "replace":
            dst.put(evt, value)
            return
        old = dst.put(evt, value)
        if old is MISSING or old is None:
            return
        new = values[:1] if qtype == "PTR" else values
        if isinstance(old, str):
            dst.put(evt, [old, *new])
        elif isinstance(old, list) and all(isinstance(x, str) for x in old):
            dst.put(evt, old + new)

    def run(evt: Event) -> Event:
        failed = False
        for src, dst in pairs:
            v = src.get(evt)
            if not isinstance(v, str):
                continue
            try:
                put(evt, dst, lookup(v))
            except (LookupError_, FieldError):
                failed = True
        if failed and tags:
            add_tags(evt, "tags", tags)
        return evt

    return run
