"""Community ID v1 (https://github.com/corelight/community-id-spec), as libbeat computes it.

Used by the envelope for transactions and by the flow reports. For ``icmp`` and
``ipv6-icmp`` the ICMP type and code stand in for the ports: a type with a counterpart
hashes like a port pair (type, counterpart type) and is ordered like one; any other type
is one-way (type, code) and keeps the endpoints as given.

The counterpart tables are libbeat's (``libbeat/common/flowhash``), which differ from the
spec's in two places: ICMPv4 Information Reply (16) and ICMPv6 Multicast Listener Report
(131) have no counterpart there, so they hash one-way. The network.community_id values
must equal Packetbeat's, so we keep those two gaps.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from functools import lru_cache

PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58, "sctp": 132}

ICMP4_COUNTERPART = {0: 8, 8: 0, 9: 10, 10: 9, 13: 14, 14: 13, 15: 16, 17: 18, 18: 17}
ICMP6_COUNTERPART = {
    128: 129,
    129: 128,
    133: 134,
    134: 133,
    135: 136,
    136: 135,
    130: 131,
    139: 140,
    140: 139,
    144: 145,
    145: 144,
}


@lru_cache(maxsize=65536)
def _ip_bytes(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


def community_id_raw(proto: int, src: bytes, sport: int, dst: bytes, dport: int, seed: int = 0) -> str:
    """Community ID from raw addresses; for ICMP (1, 58) ``sport``/``dport`` are type/code."""
    if proto == 1 or proto == 58:
        counterpart = (ICMP4_COUNTERPART if proto == 1 else ICMP6_COUNTERPART).get(sport)
        if counterpart is not None:
            dport = counterpart
            if (src, sport) > (dst, dport):
                src, dst, sport, dport = dst, src, dport, sport
    elif (src, sport) > (dst, dport):
        src, dst, sport, dport = dst, src, dport, sport
    data = struct.pack(">H", seed) + src + dst + struct.pack(">BBHH", proto, 0, sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


@lru_cache(maxsize=65536)
def community_id(
    transport: str, src_ip: str, src_port: int, dst_ip: str, dst_port: int, seed: int = 0
) -> str | None:
    """Community ID from address strings and a transport name (``None`` if it has none).

    For ``icmp`` and ``ipv6-icmp`` pass the ICMP type and code as the ports."""
    proto = PROTO_NUMBERS.get(transport)
    if proto is None:
        return None
    try:
        s, d = _ip_bytes(src_ip), _ip_bytes(dst_ip)
    except (OSError, ValueError):
        return None
    return community_id_raw(proto, s, src_port, d, dst_port, seed)
