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
from typing import TYPE_CHECKING, Any

from protocols.common.flowhash import community_id_raw

if TYPE_CHECKING:
    from protocols.flows.table import Flow

# Layer flags (FlowIDFlag) and their slots in the offset table.
ETH, OUTER_VLAN, VLAN, OUTER_IPV4, IPV4, OUTER_IPV6, IPV6, ICMPV4, ICMPV6, UDP, TCP, CONN_ID = (
    1 << i for i in range(12)
)
_SLOT = {ETH: 0, OUTER_VLAN: 1, VLAN: 2, OUTER_IPV4: 3, IPV4: 4, OUTER_IPV6: 5, IPV6: 6, UDP: 9, TCP: 10}
_SLOT[CONN_ID] = 11
_UNSET, _FORWARD, _REVERSED = -1, 0, 1
_CATEGORY = ["network"]
_TYPE = ["connection"]
_TYPE_END = ["connection", "end"]


class _FlowIdBuilder:
    """Packetbeat's FlowID: layers added in decode order, addresses sorted on write."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.offsets = [0xFF] * 12
        self.flags = 0
        self.direction = _UNSET

    def _sort(self, a: bytes, b: bytes | None) -> tuple[bytes, bytes | None]:
        if b is None:
            return a, b  # single values (VLAN id, connection id) leave the order alone
        if self.direction == _FORWARD:
            return a, b
        if self.direction == _REVERSED:
            return b, a
        if a < b:
            self.direction = _FORWARD
        elif a > b:
            self.direction = _REVERSED
            a, b = b, a
        return a, b

    def add(self, flag: int, a: bytes, b: bytes | None = None) -> None:
        a, b = self._sort(a, b)
        self.offsets[_SLOT[flag]] = len(self.buf)
        self.buf += a
        if b is not None:
            self.buf += b
        self.flags |= flag

    def add_layer(self, flag: int, outer: int, a: bytes, b: bytes | None = None) -> None:
        """A layer that may repeat (VLAN tags, IP-in-IP): the first one becomes the outer."""
        a, b = self._sort(a, b)
        if self.flags & flag:
            self.offsets[_SLOT[outer]] = self.offsets[_SLOT[flag]]
            self.flags |= outer
        self.offsets[_SLOT[flag]] = len(self.buf)
        self.buf += a
        if b is not None:
            self.buf += b
        self.flags |= flag

    def encode(self, counts: tuple[int, int, int]) -> str:
        head = bytes([self.flags & 0xFF, self.flags >> 8, *self.offsets, *counts])
        return base64.b64encode(head + bytes(self.buf)).decode().rstrip("=")


def encode_flow_id(f: Flow) -> str:
    b = _FlowIdBuilder()
    macs = f.macs()
    if macs is not None:
        b.add(ETH, *macs)
    vlans = f.vlans()
    for v in vlans:
        b.add_layer(VLAN, OUTER_VLAN, v.to_bytes(2, "little"))
    layers = f.ip_layers()
    for src, dst in layers:
        if len(src) == 4:
            b.add_layer(IPV4, OUTER_IPV4, src, dst)
        else:
            b.add_layer(IPV6, OUTER_IPV6, src, dst)
    proto, sport, dport = f.key[3], f.key[4], f.key[5]
    if proto == 17 or proto == 6:
        b.add(UDP if proto == 17 else TCP, sport.to_bytes(2, "little"), dport.to_bytes(2, "little"))
    if f.conn_id is not None:
        b.add(CONN_ID, f.conn_id.to_bytes(8, "little"))
    return b.encode((1 if macs is not None else 0, len(vlans), len(layers)))


def _mac(raw: bytes) -> str:
    return raw.hex("-").upper()


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
