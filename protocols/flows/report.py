"""A flow → its report event (Packetbeat ``flows/worker.go`` ``createEvent``) and ``flow.id``.

``flow.id`` is Packetbeat's raw flow key, base64 without padding: 17 bytes of layout (the
layer flags, one offset per layer slot, the layer counts) then the key bytes, each
address pair written in a canonical order (the first layer whose two addresses differ
decides it, and later layers follow that order). We rebuild it from the packet that
created the flow, so the ids equal Packetbeat's for the same traffic.
"""

from __future__ import annotations

import base64
import socket
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from protocols.common.flowhash import community_id_raw

if TYPE_CHECKING:
    from protocols.flows.table import Flow

# Layer flags (FlowIDFlag); a layer's slot in the offset table is its bit number.
ETH, OUTER_VLAN, VLAN, OUTER_IPV4, IPV4, OUTER_IPV6, IPV6, ICMPV4, ICMPV6, UDP, TCP, CONN_ID = (
    1 << i for i in range(12)
)
_SLOT = {1 << i: i for i in range(12)}
_CATEGORY = ["network"]
_TYPE = ["connection"]
_TYPE_END = ["connection", "end"]


def encode_flow_id(f: Flow) -> str:
    """Packetbeat's FlowID of the packet that created ``f``: layers in decode order, each
    address pair written in the order the first differing pair set (``order``: 0 unset,
    1 as seen, -1 swapped); a repeated layer (second VLAN tag, inner IP) moves the first
    one to the outer slot."""
    l2, src, dst, proto, sport, dport = f.key
    eth, vlans, outer = l2 if type(l2) is tuple else (l2, (), ())
    buf = bytearray()
    offsets = [0xFF] * 12
    flags = 0
    order = 0
    if eth:
        a, b = eth[6:12], eth[0:6]  # the creating packet's source and destination
        if a != b:
            order = 1 if a < b else -1
        buf += a + b if order >= 0 else b + a
        offsets[0] = 0
        flags = ETH
    for v in vlans:
        if flags & VLAN:
            offsets[1] = offsets[2]
            flags |= OUTER_VLAN
        offsets[2] = len(buf)
        buf += v.to_bytes(2, "little")
        flags |= VLAN
    layers = [*outer, (src, dst)] if src else list(outer)
    for a, b in layers:
        if order == 0 and a != b:
            order = 1 if a < b else -1
        flag, outer_flag = (IPV4, OUTER_IPV4) if len(a) == 4 else (IPV6, OUTER_IPV6)
        if flags & flag:
            offsets[_SLOT[outer_flag]] = offsets[_SLOT[flag]]
            flags |= outer_flag
        offsets[_SLOT[flag]] = len(buf)
        buf += a + b if order >= 0 else b + a
        flags |= flag
    if proto == 17 or proto == 6:
        a, b = sport.to_bytes(2, "little"), dport.to_bytes(2, "little")
        if order == 0 and a != b:
            order = 1 if a < b else -1
        flag = UDP if proto == 17 else TCP
        offsets[_SLOT[flag]] = len(buf)
        buf += a + b if order >= 0 else b + a
        flags |= flag
    if f.conn_id is not None:
        offsets[11] = len(buf)
        buf += f.conn_id.to_bytes(8, "little")
        flags |= CONN_ID
    head = bytes([flags & 0xFF, flags >> 8, *offsets, 1 if eth else 0, len(vlans), len(layers)])
    return base64.b64encode(head + bytes(buf)).decode().rstrip("=")


def flow_id_conn(flow_id: str) -> int | None:
    """The connection number inside a ``flow.id`` (None: the id has none)."""
    raw = base64.b64decode(flow_id + "=" * (-len(flow_id) % 4))
    if len(raw) < 17 or not (raw[0] | raw[1] << 8) & CONN_ID:
        return None
    at = 17 + raw[2 + _SLOT[CONN_ID]]
    return int.from_bytes(raw[at : at + 8], "little")


def flow_id_with_conn(flow_id: str, conn_id: int) -> str:
    """``flow_id`` with another connection number (flow tables that each saw part of one
    capture number their connections apart; one number sequence is restored after)."""
    raw = bytearray(base64.b64decode(flow_id + "=" * (-len(flow_id) % 4)))
    at = 17 + raw[2 + _SLOT[CONN_ID]]
    raw[at : at + 8] = conn_id.to_bytes(8, "little")
    return base64.b64encode(bytes(raw)).decode().rstrip("=")


@lru_cache(maxsize=4096)
def _mac(raw: bytes) -> str:
    return raw.hex("-").upper()


@lru_cache(maxsize=65536)
def _ip(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _put(m: dict[str, Any], key: str, value: Any) -> None:
    """Packetbeat's putOrAppend: a second value turns the field into a list."""
    old = m.get(key)
    if old is None:
        m[key] = value
    elif isinstance(old, list):
        old.append(value)
    else:
        m[key] = [old, value]


class _Static:
    """The parts of a flow's reports that never change, built once."""

    __slots__ = ("cid", "cid_ips", "cid_proto", "destination", "flow", "network", "ports", "source")

    def __init__(self, f: Flow) -> None:
        self.flow: dict[str, Any] = {"id": encode_flow_id(f)}
        source: dict[str, Any] = {}
        dest: dict[str, Any] = {}
        network: dict[str, Any] = {}
        macs = f.macs()
        if macs is not None:
            source["mac"], dest["mac"] = _mac(macs[0]), _mac(macs[1])
        for v in f.vlans():
            _put(self.flow, "vlan", v)
        # IP layers in Packetbeat's slot order: outer IPv4, IPv4, outer IPv6, IPv6.
        layers = f.ip_layers()
        v4 = [lay for lay in layers if len(lay[0]) == 4]
        v6 = [lay for lay in layers if len(lay[0]) != 4]
        slots = [
            (v4[0] if len(v4) == 2 else None, True, "ipv4"),
            (v4[-1] if v4 else None, False, "ipv4"),
            (v6[0] if len(v6) == 2 else None, True, "ipv6"),
            (v6[-1] if v6 else None, False, "ipv6"),
        ]
        self.cid_ips: tuple[bytes, bytes] | None = None
        for pair, outer, kind in slots:
            if pair is None:
                continue
            _put(source, "ip", _ip(pair[0]))
            _put(dest, "ip", _ip(pair[1]))
            if outer or self.cid_ips is None:
                self.cid_ips = pair
                network["type"] = kind
        proto, sport, dport = f.key[3], f.key[4], f.key[5]
        self.cid_proto = 0
        self.ports = (sport, dport)
        if proto == 6 or proto == 17:
            source["port"], dest["port"] = sport, dport
            network["transport"] = "tcp" if proto == 6 else "udp"
            self.cid_proto = proto
        self.source = source
        self.destination = dest
        self.network = network
        #: Community ID per (protocol, ports or ICMP type/code) of the source side.
        self.cid: dict[tuple[int, int, int], str | None] = {}

    def community_id(self, proto: int, sport: int, dport: int) -> str | None:
        key = (proto, sport, dport)
        cid = self.cid.get(key)
        if cid is None and key not in self.cid:
            ips = self.cid_ips
            cid = self.cid[key] = (
                community_id_raw(proto, ips[0], sport, ips[1], dport) if proto and ips is not None else None
            )
        return cid


def flow_event(f: Flow, at: int, final: bool, delta: bool) -> dict[str, Any]:
    """The report of ``f`` at capture time ``at`` (times stay integer ns for the envelope)."""
    st: _Static | None = f.report
    if st is None:
        st = f.report = _Static(f)
    flow = dict(st.flow)
    flow["final"] = final
    source = dict(st.source)
    dest = dict(st.destination)
    network = dict(st.network)
    proto = st.cid_proto
    sport, dport = st.ports
    a, b = f.a, f.b
    source["bytes"], source["packets"] = a.bytes, a.packets
    total_bytes, total_packets = a.bytes, a.packets
    if a.icmp is not None and a.icmp[1] > 0:
        version, typecode = a.icmp
        network["transport"] = "icmp" if version == 4 else "ipv6-icmp"
        proto = 1 if version == 4 else 58
        sport, dport = typecode >> 8, typecode & 0xFF
    if delta:
        a.packets = a.bytes = 0
        a.active = True
    if b is not None and (b.packets or b.active):
        dest["bytes"], dest["packets"] = b.bytes, b.packets
        total_bytes += b.bytes
        total_packets += b.packets
        if delta:
            b.packets = b.bytes = 0
            b.active = True
    cid = st.community_id(proto, sport, dport)
    if cid is not None:
        network["community_id"] = cid
    network["bytes"] = total_bytes
    network["packets"] = total_packets
    last = f.last
    return {
        "@timestamp": at,
        "type": "flow",
        "event": {
            "start": f.start,
            "end": last,
            "duration": last - f.start,
            "dataset": "flow",
            "kind": "event",
            "category": _CATEGORY,
            "action": "network_flow",
            "type": _TYPE_END if final else _TYPE,
        },
        "flow": flow,
        "network": network,
        "source": source,
        "destination": dest,
    }
