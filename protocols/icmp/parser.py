"""ICMPv4/ICMPv6 messages: type, code, identifier/sequence of the request/reply kinds, and
Packetbeat's names for them (gopacket's ``ICMPv4TypeCode``/``ICMPv6TypeCode`` strings).

A message shorter than its 8-byte header is malformed (Packetbeat's decoder rejects
ICMPv4 under 8 bytes and fails on ICMPv6 under 8). The reported size is what follows the
8-byte header, as Packetbeat counts it (for ICMPv6 it strips the 4 bytes gopacket leaves
in the payload).
"""

from __future__ import annotations

#: RFC 792 / RFC 950 replies.
RESPONSE_TYPES = {4: frozenset({0, 14, 16, 18}), 6: frozenset({129})}
#: Types that expect a counterpart: echo, timestamp, information, address mask (RFC 792,
#: RFC 950); ICMPv6 echo (RFC 4443 §4).
PAIR_TYPES = {4: frozenset({0, 8, 13, 14, 15, 16, 17, 18}), 6: frozenset({128, 129})}
#: Destination unreachable, source quench, time exceeded, parameter problem (and packet
#: too big for ICMPv6).
ERROR_TYPES = {4: frozenset({3, 4, 11, 12}), 6: frozenset({1, 2, 3, 4})}

_V4_NAMES: dict[int, tuple[str, dict[int, str] | None]] = {
    0: ("EchoReply", None),
    3: (
        "DestinationUnreachable",
        {
            0: "Net",
            1: "Host",
            2: "Protocol",
            3: "Port",
            4: "FragmentationNeeded",
            5: "SourceRoutingFailed",
            6: "NetUnknown",
            7: "HostUnknown",
            8: "SourceIsolated",
            9: "NetAdminProhibited",
            10: "HostAdminProhibited",
            11: "NetTOS",
            12: "HostTOS",
            13: "CommAdminProhibited",
            14: "HostPrecedence",
            15: "PrecedenceCutoff",
        },
    ),
    4: ("SourceQuench", None),
    5: ("Redirect", {0: "Net", 1: "Host", 2: "TOS+Net", 3: "TOS+Host"}),
    8: ("EchoRequest", None),
    9: ("RouterAdvertisement", None),
    10: ("RouterSolicitation", None),
    11: ("TimeExceeded", {0: "TTLExceeded", 1: "FragmentReassemblyTimeExceeded"}),
    12: ("ParameterProblem", {0: "PointerIndicatesError", 1: "MissingOption", 2: "BadLength"}),
    13: ("TimestampRequest", None),
    14: ("TimestampReply", None),
    15: ("InfoRequest", None),
    16: ("InfoReply", None),
    17: ("AddressMaskRequest", None),
    18: ("AddressMaskReply", None),
}
_V6_NAMES: dict[int, tuple[str, dict[int, str] | None]] = {
    1: (
        "DestinationUnreachable",
        {
            0: "NoRouteToDst",
            1: "AdminProhibited",
            2: "BeyondScopeOfSrc",
            3: "AddressUnreachable",
            4: "PortUnreachable",
            5: "SrcAddressFailedPolicy",
            6: "RejectRouteToDst",
        },
    ),
    2: ("PacketTooBig", None),
    3: ("TimeExceeded", {0: "HopLimitExceeded", 1: "FragmentReassemblyTimeExceeded"}),
    4: (
        "ParameterProblem",
        {0: "ErroneousHeaderField", 1: "UnrecognizedNextHeader", 2: "UnrecognizedIPv6Option"},
    ),
    128: ("EchoRequest", None),
    129: ("EchoReply", None),
    133: ("RouterSolicitation", None),
    134: ("RouterAdvertisement", None),
    135: ("NeighborSolicitation", None),
    136: ("NeighborAdvertisement", None),
    137: ("Redirect", None),
}


def message_name(version: int, typ: int, code: int) -> str:
    """``EchoRequest``, ``DestinationUnreachable(Port)``, ``Redirect(Code: 9)``, ``42(1)``."""
    info = (_V4_NAMES if version == 4 else _V6_NAMES).get(typ)
    if info is None:
        return f"{typ}({code})"
    name, codes = info
    if codes is None:
        return name if code == 0 else f"{name}(Code: {code})"
    label = codes.get(code)
    return f"{name}({label})" if label is not None else f"{name}(Code: {code})"


class IcmpMessage:
    __slots__ = ("code", "ident", "seq", "size", "ts", "type")

    def __init__(self, ts: int, typ: int, code: int, ident: int, seq: int, size: int) -> None:
        self.ts = ts
        self.type = typ
        self.code = code
        self.ident = ident
        self.seq = seq
        self.size = size


def parse(ts: int, version: int, data: bytes) -> IcmpMessage | None:
    """One ICMP message (``data`` starts at the ICMP header); ``None`` if it is too short."""
    if len(data) < 8:
        return None
    typ, code = data[0], data[1]
    ident = seq = 0
    if typ in PAIR_TYPES[version]:
        ident = (data[4] << 8) | data[5]
        seq = (data[6] << 8) | data[7]
    return IcmpMessage(ts, typ, code, ident, seq, len(data) - 8)
