"""The event envelope: what Packetbeat's publisher and libbeat add to every transaction.

Protocols hand over dicts with capture times as integer nanoseconds; here they get
``@timestamp`` (ms precision unless ``timestamp.precision`` says otherwise), the
derived ECS fields (``network.bytes``, ``community_id``, ``type``, ``direction``,
``client``/``server`` mirrors, ``event.duration`` in ns, ``event.dataset``), ``agent``,
``host``, ``ecs`` and ``@metadata`` (``beat: packetbeat`` by default, so existing Logstash
pipelines and the ``packetbeat-*`` index pattern work unchanged).
"""

from __future__ import annotations

import datetime
import ipaddress
from functools import lru_cache
from typing import Any, Final

from protocols.common.flowhash import community_id
from shipper.agent.version import ECS_VERSION, VERSION
from shipper.pipeline.processors.base import clone
from shipper.pipeline.processors.chain import Processing

__all__ = ["NETWORK_NAMES", "Envelope", "TimeFormatter", "community_id", "parse_networks"]

_CATEGORY: Final = ["network"]
_TYPE: Final = ["connection", "protocol"]
_DIGITS: Final = {"millisecond": 3, "microsecond": 6, "nanosecond": 9}


#: RFC 3339 writes four-digit years: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z
#: (year 0 is left out: Python's calendar starts at year 1).
MIN_TIMESTAMP_NS: Final = -62_135_596_800 * 1_000_000_000
MAX_TIMESTAMP_NS: Final = 253_402_300_800 * 1_000_000_000 - 1
_EPOCH: Final = datetime.datetime(1970, 1, 1)


class EventRejected(ValueError):
    """An event the envelope cannot complete; ``reason`` names the drop counter
    (``publisher.dropped_<reason>``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class EventFiltered(Exception):
    """An event dropped on purpose (``ignore_outgoing``, a processor); ``reason`` names
    the counter (``publisher.<reason>``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TimeFormatter:
    """Integer nanoseconds → RFC 3339 UTC with 3, 6 or 9 fractional digits.

    Any integer is handled: a time outside the years 1..9999 has no RFC 3339 form (and
    no Elasticsearch ``date``), so it raises :class:`EventRejected` (reason
    ``bad_timestamp``) rather than writing a five-digit or negative year; the pipeline
    drops and counts such an event, as libbeat drops an event its encoder cannot write.

    The date-and-seconds part is cached per second: one event often carries several times
    (a flow report's ``@timestamp``, ``event.start`` and ``event.end`` are seconds apart)."""

    __slots__ = ("_bases", "_digits", "_last", "_last_unit", "_ms", "_unit")

    def __init__(self, precision: str = "millisecond") -> None:
        self._digits = _DIGITS[precision]
        self._bases: dict[int, str] = {}
        #: Millisecond precision (the default): the fraction is one of a thousand suffixes.
        self._ms = self._digits == 3
        #: Nanoseconds per written unit, and the last ``stamp``.
        self._unit = 10 ** (9 - self._digits)
        self._last_unit = MIN_TIMESTAMP_NS // self._unit
        self._last = self.format(MIN_TIMESTAMP_NS)

    def __call__(self, ts: int) -> str:
        return self.format(ts)

    def stamp(self, ts: int) -> str:
        """``format`` for the events' ``@timestamp``, the last unit's text kept: the
        reports of one flow tick share a time, busy traffic its milliseconds."""
        unit = ts // self._unit
        if unit == self._last_unit:
            return self._last
        text = self.format(ts)
        self._last_unit = unit
        self._last = text
        return text

    def format(self, ts: int) -> str:
        sec, frac = divmod(ts, 1_000_000_000)
        base = self._bases.get(sec)
        if base is None:
            if not MIN_TIMESTAMP_NS <= ts <= MAX_TIMESTAMP_NS:
                raise EventRejected("bad_timestamp", f"timestamp {ts} ns is outside the years 1..9999")
            if len(self._bases) >= 4096:
                self._bases.clear()
            t = _EPOCH + datetime.timedelta(seconds=sec)
            base = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
            self._bases[sec] = base
        # Table look-ups: a format spec per event (``{x:03d}``) cost more than the rest.
        if self._ms:
            return base + _MS_SUFFIX[frac // 1_000_000]
        if self._digits == 6:
            us = frac // 1000
            return base + "." + _TRIPLE[us // 1000] + _TRIPLE[us % 1000] + "Z"
        ms, rest = divmod(frac, 1_000_000)
        return base + "." + _TRIPLE[ms] + _TRIPLE[rest // 1000] + _TRIPLE[rest % 1000] + "Z"


_TRIPLE: Final = [f"{i:03d}" for i in range(1000)]
_MS_SUFFIX: Final = [f".{i:03d}Z" for i in range(1000)]


@lru_cache(maxsize=65536)
def _ip_class(ip: str) -> tuple[bool, Any]:
    """(loopback or link-local, parsed address or None) — cached per address string."""
    if ":" not in ip:
        # IPv4 fast path: no ipaddress object needed for the special ranges.
        if ip.startswith(("127.", "169.254.", "224.0.0.")):
            return True, None
        return False, None
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False, None
    special = a.is_loopback or a.is_link_local or (a.is_multicast and _link_local_multicast(a))
    return special, a


def _link_local_multicast(a: Any) -> bool:
    if a.version == 4:
        return a in ipaddress.ip_network("224.0.0.0/24")
    return a in ipaddress.ip_network("ff02::/16")


def _u16(n: Any) -> bool:
    return type(n) is int and 0 <= n <= 0xFFFF


def _icmp_type_code(evt: dict[str, Any]) -> tuple[int, int]:
    """ICMP type and code for the Community ID: the request's, else the response's."""
    icmp = evt.get("icmp")
    msg = (icmp.get("request") or icmp.get("response") or {}) if isinstance(icmp, dict) else {}
    if not isinstance(msg, dict):
        return 0, 0
    try:
        return int(msg.get("type", 0)), int(msg.get("code", 0))
    except (TypeError, ValueError):
        return 0, 0


_NAMED_NETWORKS = {
    "loopback": ["127.0.0.0/8", "::1/128"],
    "private": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"],
    "link_local_unicast": ["169.254.0.0/16", "fe80::/10"],
    "interface_local_multicast": ["ff01::/16"],
    "link_local_multicast": ["224.0.0.0/24", "ff02::/16"],
    "multicast": ["224.0.0.0/4", "ff00::/8"],
    "unspecified": ["0.0.0.0/32", "::/128"],
}
_BROADCAST = ipaddress.ip_address("255.255.255.255")


def _named(name: str) -> list[Any]:
    return [ipaddress.ip_network(n) for n in _NAMED_NETWORKS[name]]


def _in_any(a: Any, nets: list[Any]) -> bool:
    return any(a.version == n.version and a in n for n in nets)


_PRIVATE = _named("private")
_NOT_PUBLIC = [
    *_PRIVATE,
    *_named("loopback"),
    *_named("unspecified"),
    *_named("link_local_unicast"),
    *_named("link_local_multicast"),
    *_named("interface_local_multicast"),
]


def _global_unicast(a: Any) -> bool:
    """Go's ``IP.IsGlobalUnicast`` (private addresses included)."""
    return not (a.is_unspecified or a.is_loopback or a.is_multicast or a.is_link_local or a == _BROADCAST)


def _public(a: Any) -> bool:
    """libbeat's ``public``: neither private, loopback, unspecified, broadcast nor link-local."""
    return a != _BROADCAST and not _in_any(a, _NOT_PUBLIC)


#: Named networks that are predicates rather than CIDR lists (libbeat conditions/network.go).
_NAMED_PREDICATES = {"global_unicast": _global_unicast, "unicast": _global_unicast, "public": _public}
NETWORK_NAMES = tuple(sorted([*_NAMED_NETWORKS, *_NAMED_PREDICATES]))


def parse_networks(specs: list[str]) -> list[Any]:
    """CIDRs, addresses and libbeat's named networks → networks or predicates.

    Raises ValueError naming the bad entry."""
    nets: list[Any] = []
    for spec in specs:
        if spec in _NAMED_NETWORKS:
            nets.extend(_named(spec))
        elif spec in _NAMED_PREDICATES:
            nets.append(_NAMED_PREDICATES[spec])
        else:
            try:
                nets.append(ipaddress.ip_network(str(spec).strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"invalid network {spec!r}: use a CIDR such as 10.0.0.0/8 or one of "
                    + ", ".join(NETWORK_NAMES)
                ) from None
    return nets


class Envelope:
    """Completes protocol event dicts into publishable events (in place)."""

    def __init__(
        self,
        *,
        beat_name: str,
        index: str = "packetbeat",
        precision: str = "millisecond",
        local_ips: list[str] | None = None,
        internal_networks: list[str] | None = None,
        agent_id: str = "",
        ephemeral_id: str = "",
        host: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
        fields_under_root: bool = False,
        tags: list[str] | None = None,
        per_protocol: dict[str, dict[str, Any]] | None = None,
        processing: Processing | None = None,
        ignore_outgoing: bool = False,
    ) -> None:
        self.fmt = TimeFormatter(precision)
        self.index = index
        self.local_ips = {str(ipaddress.ip_address(i)) for i in (local_ips or [])}
        self.internal = parse_networks(internal_networks or [])
        # The keys libbeat sends (no agent.build: Packetbeat has none); agent.version is
        # wirebeat's own, which tells its events apart (docs/differences.md).
        self.agent: dict[str, str] = {"type": "packetbeat", "name": beat_name, "version": VERSION}
        if agent_id:
            self.agent["id"] = agent_id
        if ephemeral_id:
            self.agent["ephemeral_id"] = ephemeral_id
        self.host = host or {"name": beat_name}
        self.ecs = {"version": ECS_VERSION}
        self.fields = fields or {}
        self.fields_under_root = fields_under_root
        self.tags = list(tags or [])
        #: protocol → {"index", "fields", "fields_under_root", "tags"} from its config.
        self.per_protocol = per_protocol or {}
        self._dir_cache: dict[tuple[str | None, str | None], str] = {}
        #: One ``@metadata`` object per index name, shared by the events (outputs only read it).
        self._metadata: dict[str, dict[str, str]] = {}
        #: The same objects by ``id``: they live as long as the envelope and are never
        #: changed, so the encoder may encode each once (``EncodedEvent.from_event``).
        self.shared_metadata: dict[int, dict[str, str]] = {}
        #: The compiled processors (None: none configured, nothing is copied per event).
        self.processing = processing
        #: packetbeat.ignore_outgoing: transactions this host sent (egress) are dropped,
        #: before any processor runs (packetbeat/publish).
        self.ignore_outgoing = ignore_outgoing

    def direction(self, src: str | None, dst: str | None) -> str:
        key = (src, dst)
        d = self._dir_cache.get(key)
        if d is None:
            if len(self._dir_cache) > 65536:
                self._dir_cache.clear()
            d = self._dir_cache[key] = self._direction(src, dst)
        return d

    def _direction(self, src: str | None, dst: str | None) -> str:
        if dst:
            special, _ = _ip_class(dst)
            if special or dst in self.local_ips:
                return "ingress"
        if src:
            special, _ = _ip_class(src)
            if special or src in self.local_ips:
                return "egress"
        if self.internal:
            s_in = self._internal(src)
            d_in = self._internal(dst)
            if s_in and d_in:
                return "internal"
            if s_in:
                return "outbound"
            if d_in:
                return "inbound"
            return "external"
        return "unknown"

    def _internal(self, ip: str | None) -> bool:
        if not ip:
            return False
        try:
            a = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(n(a) if callable(n) else (a.version == n.version and a in n) for n in self.internal)

    def apply(self, evt: dict[str, Any]) -> dict[str, Any]:
        """Complete ``evt`` (in place, unless a processor replaces it) and return it.
        Raises :class:`EventRejected` for an event that cannot be published (a timestamp
        outside the years 1..9999, a section of the wrong type) and :class:`EventFiltered`
        for one that ``ignore_outgoing`` or a processor drops; the caller counts both."""
        fmt = self.fmt
        event = evt.get("event")
        if event is None:
            event = evt["event"] = {}
        elif not isinstance(event, dict):
            raise EventRejected("invalid", "'event' is not an object")
        start: Any = event.get("start")
        end: Any = event.get("end")
        ts = evt.get("@timestamp")
        # Format first: an event with a time out of range is rejected before it is changed.
        if type(ts) is int:
            stamp = fmt.stamp(ts)
        elif not isinstance(ts, str):
            raise EventRejected("invalid", f"@timestamp is neither an integer nor a string: {ts!r:.40}")
        # A transaction's @timestamp is usually its start: format that time once.
        start_text = (stamp if start == ts else fmt.format(start)) if type(start) is int else None
        end_text = (start_text if end == start else fmt.format(end)) if type(end) is int else None
        if start_text is not None and end_text is not None and "duration" not in event and end >= start:
            event["duration"] = end - start
        if start_text is not None:
            event["start"] = start_text
        if end_text is not None:
            event["end"] = end_text
        # Shared, never mutated: the same list objects serve every event.
        if "kind" not in event:
            event["kind"] = "event"
        if "category" not in event:
            event["category"] = _CATEGORY
        if "type" not in event:
            event["type"] = _TYPE
        if evt.get("type") != "flow":
            # Flow reports come complete from the flow table (Packetbeat publishes them
            # without the transaction publisher's derived fields).
            self._derive(evt, event)

        if type(ts) is int:
            evt["@timestamp"] = stamp
        index = self.index
        if self.per_protocol:
            proto = self.per_protocol.get(evt.get("type", ""))
            if proto:
                index = proto.get("index") or index
                self._add_fields(
                    evt, proto.get("fields"), proto.get("fields_under_root", False), proto.get("tags")
                )
        if self.fields or self.tags:
            self._add_fields(evt, self.fields, self.fields_under_root, self.tags)
        meta = self._metadata.get(index)
        if meta is None:
            meta = self._metadata[index] = {"beat": index, "type": "_doc", "version": VERSION}
            self.shared_metadata[id(meta)] = meta
        processing = self.processing
        if processing is None:
            evt["@metadata"] = meta
            evt["agent"] = self.agent
            evt["host"] = self.host
            evt["ecs"] = self.ecs
            return evt
        return self._process(evt, meta, processing)

    def _process(self, evt: dict[str, Any], meta: dict[str, str], processing: Processing) -> dict[str, Any]:
        """libbeat's order: per-protocol processors, then ``agent``/``ecs``/``host.name``
        where they did not set them, then the global processors. Every event gets its own
        copies of the shared parts, since processors may change them."""
        w = processing.writes
        evt["@metadata"] = dict(meta) if w is None or "@metadata" in w else meta
        out = processing.client(evt.get("type"), evt)
        if out is None:
            raise EventFiltered("filtered")
        evt = out
        # Shared objects where no processor may change them, copies where one may.
        if "agent" not in evt:
            if w is None or "agent" in w:
                evt["agent"] = self.agent.copy()
            else:
                evt["agent"] = self.agent
        if "ecs" not in evt:
            evt["ecs"] = self.ecs.copy() if w is None or "ecs" in w else self.ecs
        host = evt.get("host")
        if host is None:
            evt["host"] = clone(self.host) if w is None or "host" in w else self.host
        elif isinstance(host, dict) and "name" not in host:
            host["name"] = self.host.get("name")
        ev = evt.get("event")
        if type(ev) is dict and (w is None or "event" in w):
            if ev.get("category") is _CATEGORY:
                ev["category"] = ["network"]
            if ev.get("type") is _TYPE:
                ev["type"] = ["connection", "protocol"]
        out = processing.run_global(evt)
        if out is None:
            raise EventFiltered("filtered")
        return out

    def _derive(self, evt: dict[str, Any], event: dict[str, Any]) -> None:
        """Packetbeat's ``pb.Fields.ComputeValues`` and the publisher's transaction fields."""
        network = evt.get("network")
        if network is None:
            network = evt["network"] = {}
        elif not isinstance(network, dict):
            raise EventRejected("invalid", "'network' is not an object")
        if "dataset" not in event and network.get("protocol"):
            event["dataset"] = network["protocol"]

        src = evt.get("source")
        dst = evt.get("destination")
        # (no ``dict | None``: a union object would be built per call)
        if not (src is None or isinstance(src, dict)) or not (dst is None or isinstance(dst, dict)):
            raise EventRejected("invalid", "'source' or 'destination' is not an object")
        src_ip = src.get("ip") if src else None
        dst_ip = dst.get("ip") if dst else None
        if not (src_ip is None or isinstance(src_ip, str)) or not (dst_ip is None or isinstance(dst_ip, str)):
            raise EventRejected("invalid", "an endpoint 'ip' is not a string")
        sbytes = src.get("bytes", 0) if src else 0
        dbytes = dst.get("bytes", 0) if dst else 0
        nbytes = (sbytes if type(sbytes) is int else 0) + (dbytes if type(dbytes) is int else 0)
        if nbytes:
            network["bytes"] = nbytes
        if "community_id" not in network and src_ip and dst_ip:
            transport = network.get("transport", "")
            if transport in ("icmp", "ipv6-icmp"):
                sport, dport = _icmp_type_code(evt)
            else:
                sport = src.get("port", 0) if src else 0
                dport = dst.get("port", 0) if dst else 0
            if isinstance(transport, str) and _u16(sport) and _u16(dport):
                cid = community_id(transport, src_ip, sport, dst_ip, dport)
                if cid:
                    network["community_id"] = cid
        if "type" not in network and (src_ip or dst_ip):
            network["type"] = "ipv6" if ":" in (src_ip or dst_ip or "") else "ipv4"
        if "direction" not in network:
            network["direction"] = self.direction(src_ip, dst_ip)
        if self.ignore_outgoing and network["direction"] == "egress":
            raise EventFiltered("dropped_outgoing")
        # Without processors nothing changes the event after this: the mirrors can be the
        # same objects (the encoder writes them twice); a processor may change one of them.
        shared = self.processing is None
        if src is not None and "client" not in evt:
            evt["client"] = src if shared else dict(src)
        if dst is not None and "server" not in evt:
            evt["server"] = dst if shared else dict(dst)

        err = evt.get("error")
        if isinstance(err, dict):
            msgs = err.get("message")
            if isinstance(msgs, list):
                if not msgs:
                    del evt["error"]
                elif len(msgs) == 1:
                    err["message"] = msgs[0]

    @staticmethod
    def _add_fields(evt: dict[str, Any], fields: Any, under_root: bool, tags: Any) -> None:
        if fields:
            # Copies: processors, or the outputs, must never change the configured values.
            if under_root:
                for k, v in fields.items():
                    evt[k] = clone(v)
            else:
                evt.setdefault("fields", {}).update(clone(fields))
        if tags:
            existing = evt.setdefault("tags", [])
            existing.extend(t for t in tags if t not in existing)
