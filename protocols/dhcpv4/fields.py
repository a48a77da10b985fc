"""DHCPv4 message → event dict (Packetbeat ``protos/dhcpv4``: ``parseDHCPv4`` and
``optionsToMap``).

Every message is its own event (Packetbeat does not pair them): ``source``/``destination``
are the datagram's endpoints, ``client``/``server`` the BOOTP roles (a BOOTREPLY goes from the
server to the client), ``source.bytes`` is the DHCP payload size, ``status`` is always ``OK``.
Names and renderings are the library's: ``Ethernet``, ``unicast (reserved bits not zeroed)``,
the parameter request list as option names (``Unknown (84)``), text as Go's ``string(b)``.

Where an option's value is unreadable (a router option of 8 bytes, NTP servers of 6 bytes)
Packetbeat drops every option of the message; wirebeat skips that option alone, counts it,
and publishes several routers as a list (docs/differences.md, dhcpv4/option-values). A subnet
mask of neither 4 nor 16 bytes is left out (dhcpv4/subnet-mask-length).
"""

from __future__ import annotations

import ipaddress
from socket import inet_ntoa
from typing import TYPE_CHECKING, Any

from protocols.common.event import OK, add_related, transaction_event
from protocols.dhcpv4.parser import OVERLOAD_FILE, OVERLOAD_SNAME, Message, vivc_records

if TYPE_CHECKING:
    from protocols.dhcpv4 import Dhcpv4Plugin

_ZERO4 = b"\0\0\0\0"
_V4_MAPPED = b"\0" * 10 + b"\xff\xff"

OP_CODES = {1: "bootrequest", 2: "bootreply"}
#: The broadcast bit, and whether any of the bits 0xfe is set: the library looks at those, not
#: at the 15 reserved bits of RFC 2131 §2.
_FLAGS = (
    "unicast",
    "broadcast",
    "unicast (reserved bits not zeroed)",
    "broadcast (reserved bits not zeroed)",
)

#: IANA ARP hardware types 1-35 as the library names them (anything else: ``Invalid``).
HARDWARE_TYPES = (
    "Ethernet",
    "Experimental Ethernet",
    "Amateur Radio AX.25",
    "Proteon ProNET Token Ring",
    "Chaos",
    "IEEE 802",
    "ARCNET",
    "Hyperchannel",
    "Lanstar",
    "Autonet Short Address",
    "LocalTalk",
    "LocalNet",
    "Ultra link",
    "SMDS",
    "Frame Relay",
    "ATM",
    "HDLC",
    "Fibre Channel",
    "ATM 2",
    "Serial Line",
    "ATM 3",
    "MIL-STD-188-220",
    "Metricom",
    "IEEE 1394.1995",
    "MAPOS",
    "Twinaxial",
    "EUI-64",
    "HIPARP",
    "IP and ARP over ISO 7816-3",
    "ARPSec",
    "IPsec tunnel",
    "Infiniband",
    "CAI, TIA-102 Project 125 Common Air Interface",
    "Wiegand Interface",
    "Pure IP",
)

MESSAGE_TYPES = {
    1: "discover",
    2: "offer",
    3: "request",
    4: "decline",
    5: "ack",
    6: "nak",
    7: "release",
    8: "inform",
}

#: Option names of the parameter request list, as the library spells them (typos included).
OPTION_NAMES = {
    0: "Pad",
    1: "Subnet Mask",
    2: "Time Offset",
    3: "Router",
    4: "Time Server",
    5: "Name Server",
    6: "Domain Name Server",
    7: "Log Server",
    8: "Quote Server",
    9: "LPR Server",
    10: "Impress Server",
    11: "Resource Location Server",
    12: "Host Name",
    13: "Boot File Size",
    14: "Merit Dump File",
    15: "Domain Name",
    16: "Swap Server",
    17: "Root Path",
    18: "Extensions Path",
    19: "IP Forwarding enable/disable",
    20: "Non-local Source Routing enable/disable",
    21: "Policy Filter",
    22: "Maximum Datagram Reassembly Size",
    23: "Default IP Time-to-live",
    24: "Path MTU Aging Timeout",
    25: "Path MTU Plateau Table",
    26: "Interface MTU",
    27: "All Subnets Are Local",
    28: "Broadcast Address",
    29: "Perform Mask Discovery",
    30: "Mask Supplier",
    31: "Perform Router Discovery",
    32: "Router Solicitation Address",
    33: "Static Routing Table",
    34: "Trailer Encapsulation",
    35: "ARP Cache Timeout",
    36: "Ethernet Encapsulation",
    37: "Default TCP TTL",
    38: "TCP Keepalive Interval",
    39: "TCP Keepalive Garbage",
    40: "Network Information Service Domain",
    41: "Network Information Servers",
    42: "NTP Servers",
    43: "Vendor Specific Information",
    44: "NetBIOS over TCP/IP Name Server",
    45: "NetBIOS over TCP/IP Datagram Distribution Server",
    46: "NetBIOS over TCP/IP Node Type",
    47: "NetBIOS over TCP/IP Scope",
    48: "X Window System Font Server",
    49: "X Window System Display Manager",
    50: "Requested IP Address",
    51: "IP Addresses Lease Time",
    52: "Option Overload",
    53: "DHCP Message Type",
    54: "Server Identifier",
    55: "Parameter Request List",
    56: "Message",
    57: "Maximum DHCP Message Size",
    58: "Renew Time Value",
    59: "Rebinding Time Value",
    60: "Class Identifier",
    61: "Client identifier",
    62: "NetWare/IP Domain Name",
    63: "NetWare/IP Information",
    64: "Network Information Service+ Domain",
    65: "Network Information Service+ Servers",
    66: "TFTP Server Name",
    67: "Bootfile Name",
    68: "Mobile IP Home Agent",
    69: "SMTP Server",
    70: "POP Server",
    71: "NNTP Server",
    72: "Default WWW Server",
    73: "Default Finger Server",
    74: "Default IRC Server",
    75: "StreetTalk Server",
    76: "StreetTalk Directory Assistance Server",
    77: "User Class Information",
    78: "SLP DIrectory Agent",
    79: "SLP Service Scope",
    80: "Rapid Commit",
    81: "FQDN",
    82: "Relay Agent Information",
    83: "Internet Storage Name Service",
    85: "NDS Servers",
    86: "NDS Tree Name",
    87: "NDS Context",
    88: "BCMCS Controller Domain Name List",
    89: "BCMCS Controller IPv4 Address List",
    90: "Authentication",
    91: "Client Last Transaction Time",
    92: "Associated IP",
    93: "Client System Architecture Type",
    94: "Client Network Interface Identifier",
    95: "LDAP",
    97: "Client Machine Identifier",
    98: "OpenGroup's User Authentication",
    99: "GEOCONF_CIVIC",
    100: "IEEE 1003.1 TZ String",
    101: "Reference to the TZ Database",
    112: "NetInfo Parent Server Address",
    113: "NetInfo Parent Server Tag",
    114: "URL",
    116: "Auto-Configure",
    117: "Name Service Search",
    118: "Subnet Selection",
    119: "DNS Domain Search List",
    120: "SIP Servers DHCP Option",
    121: "Classless Static Route Option",
    122: "CCC, CableLabs Client Configuration",
    123: "GeoConf",
    124: "Vendor-Identifying Vendor Class",
    125: "Vendor-Identifying Vendor-Specific",
    128: "TFTP Server IP Address",
    129: "Call Server IP Address",
    130: "Discrimination String",
    131: "RemoteStatistics Server IP Address",
    132: "802.1P VLAN ID",
    133: "802.1Q L2 Priority",
    134: "Diffserv Code Point",
    135: "HTTP Proxy for phone-specific applications",
    136: "PANA Authentication Agent",
    137: "LoST Server",
    138: "CAPWAP Access Controller Addresses",
    139: "OPTION-IPv4_Address-MoS",
    140: "OPTION-IPv4_FQDN-MoS",
    141: "SIP UA Configuration Service Domains",
    142: "OPTION-IPv4_Address-ANDSF",
    143: "OPTION-IPv6_Address-ANDSF",
    150: "TFTP Server Address",
    151: "Status Code",
    152: "Base Time",
    153: "Start Time of State",
    154: "Query Start Time",
    155: "Query End Time",
    156: "DHCP Staet",
    157: "Data Source",
    175: "Etherboot",
    176: "IP Telephone",
    177: "Etherboot / PacketCable and CableHome",
    208: "PXELinux Magic String",
    209: "PXELinux Config File",
    210: "PXELinux Path Prefix",
    211: "PXELinux Reboot Time",
    212: "OPTION_6RD",
    213: "OPTION_V4_ACCESS_DOMAIN",
    220: "Subnet Allocation",
    221: "Virtual Subnet Selection",
    255: "End",
}
_REQUEST_NAMES = tuple(OPTION_NAMES.get(c, f"Unknown ({c})") for c in range(256))


class BadValue(ValueError):
    """An option value Packetbeat cannot read (it then drops every option of the message)."""


def go_text(raw: bytes) -> str:
    """Go's ``string(b)`` as its JSON encoder writes it: one U+FFFD per invalid byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "surrogateescape")
        return "".join("\ufffd" if "\udc80" <= c <= "\udcff" else c for c in text)


def go_ip(raw: bytes) -> str:
    """Go's ``net.IP(b).String()``: dotted for 4 bytes (and IPv4-mapped 16), RFC 5952 text for
    other 16-byte values, ``?`` and hex for any other length."""
    n = len(raw)
    if n == 4:
        return inet_ntoa(raw)
    if n == 16:
        if raw[:12] == _V4_MAPPED:
            return inet_ntoa(raw[12:])
        return str(ipaddress.IPv6Address(raw))
    return "?" + raw.hex() if n else "<nil>"


def mac_text(chaddr: bytes, hlen: int) -> str:
    """``00-0B-82-01-FC-42``: the first ``hlen`` bytes of ``chaddr``, upper-case hex."""
    return chaddr[:hlen].hex("-").upper()


def _ip4(v: bytes) -> str:
    if len(v) != 4:  # the parser refuses these for the options it checks
        raise BadValue
    return inet_ntoa(v)


def _ip_list(v: bytes) -> list[str]:
    if not v or len(v) & 3:
        raise BadValue
    return [inet_ntoa(v[i : i + 4]) for i in range(0, len(v), 4)]


def _router(v: bytes) -> str | list[str]:
    # Packetbeat reads exactly one address; several are a list here (see the module docstring).
    return _ip4(v) if len(v) == 4 else _ip_list(v)


def _u32(v: bytes) -> int | None:
    return int.from_bytes(v[:4], "big") if len(v) >= 4 else None


def _i32(v: bytes) -> int | None:
    return int.from_bytes(v[:4], "big", signed=True) if len(v) >= 4 else None


def _message_type(v: bytes) -> str:
    if len(v) != 1:
        raise BadValue
    return MESSAGE_TYPES.get(v[0]) or f"unknown ({v[0]})"


def _request_list(v: bytes) -> list[str]:
    names = _REQUEST_NAMES
    return [names[c] for c in v]


def _vivc(v: bytes) -> list[dict[str, Any]]:
    return [{"id": ent, "data": data.hex()} for ent, data in vivc_records(v) or ()]


def _subnet_mask(v: bytes) -> str | None:
    n = len(v)
    if n < 4:
        return None
    if n != 4 and n != 16:
        # Packetbeat writes "?ffffff0001", which an ip field refuses (and the whole event
        # with it); left out here.
        raise BadValue
    return go_ip(v)


#: Option code → (field under ``dhcpv4.option``, renderer). A renderer returning None leaves
#: the field out (Packetbeat's ``len >= 4`` checks); raising BadValue skips the option.
RENDERERS: dict[int, tuple[str, Any]] = {
    53: ("message_type", _message_type),
    55: ("parameter_request_list", _request_list),
    50: ("requested_ip_address", _ip4),
    54: ("server_identifier", _ip4),
    28: ("broadcast_address", _ip4),
    57: ("max_dhcp_message_size", lambda v: int.from_bytes(v[:2], "big")),
    60: ("class_identifier", go_text),
    15: ("domain_name", go_text),
    6: ("dns_servers", _ip_list),
    124: ("vendor_identifying_options", _vivc),
    1: ("subnet_mask", _subnet_mask),
    2: ("utc_time_offset_sec", _i32),
    3: ("router", _router),
    4: ("time_servers", _ip_list),
    42: ("ntp_servers", _ip_list),
    12: ("hostname", go_text),
    51: ("ip_address_lease_time_sec", _u32),
    56: ("message", go_text),
    58: ("renewal_time_sec", _u32),
    59: ("rebinding_time_sec", _u32),
    67: ("boot_file_name", go_text),
}

#: ``dhcpv4.option.option_overload`` (not in Packetbeat): the fields that held options.
_OVERLOAD_NAMES = {
    OVERLOAD_FILE: ["file"],
    OVERLOAD_SNAME: ["sname"],
    OVERLOAD_FILE | OVERLOAD_SNAME: ["file", "sname"],
}


def render_options(options: list[tuple[int, bytes]], problems: list[str]) -> dict[str, Any]:
    """The ``dhcpv4.option`` object; a repeated option keeps its last value (Packetbeat's)."""
    out: dict[str, Any] = {}
    get = RENDERERS.get
    for code, value in options:
        r = get(code)
        if r is None:
            continue
        try:
            v = r[1](value)
        except BadValue:
            problems.append("bad_option_value")
            continue
        if v is not None:
            out[r[0]] = v
    return out


def to_event(plugin: Dhcpv4Plugin, m: DhcpMessage) -> dict[str, Any]:
    msg = m.msg
    src, dst = m.src, m.dst
    evt = transaction_event("dhcpv4", "udp", OK, m.ts, src, dst, start=m.ts, src_bytes=m.size)
    source = evt["source"]
    destination = evt["destination"]
    if msg.op == 2:
        evt["client"] = dict(destination)
        evt["server"] = dict(source)
    else:
        evt["client"] = dict(source)
        evt["server"] = dict(destination)
    htype = msg.htype
    flags = msg.flags
    d: dict[str, Any] = {
        "op_code": OP_CODES.get(msg.op, "invalid"),
        "hardware_type": HARDWARE_TYPES[htype - 1] if 1 <= htype <= len(HARDWARE_TYPES) else "Invalid",
        "hops": msg.hops,
        "transaction_id": f"0x{msg.xid:08x}",
        "seconds": msg.secs,
        "flags": _FLAGS[(flags >> 15) | (2 if flags & 0xFE else 0)],
    }
    hlen = msg.hlen
    if 0 < hlen <= 16:
        d["client_mac"] = mac_text(msg.chaddr, hlen)
    elif hlen:
        m.problems.append("bad_hardware_address_length")
    for key, addr in (("client_ip", msg.ciaddr), ("assigned_ip", msg.yiaddr), ("relay_ip", msg.giaddr)):
        if addr != _ZERO4:
            ip = inet_ntoa(addr)
            d[key] = ip
            add_related(evt, "ip", ip)
    overload = msg.overload
    if not overload & OVERLOAD_SNAME:
        name = msg.sname.rstrip(b"\0")
        if name:
            d["server_name"] = go_text(name)
    if not overload & OVERLOAD_FILE:
        name = msg.file.rstrip(b"\0")
        if name:
            d["boot_file_name"] = go_text(name)
    opts = render_options(msg.options, m.problems)
    if overload:
        opts["option_overload"] = list(_OVERLOAD_NAMES[overload])
    if opts:
        d["option"] = opts
    evt["dhcpv4"] = d
    for p in m.problems:
        plugin.stats.incr("dhcpv4." + p)
    return evt


class DhcpMessage:
    """A decoded datagram with where and when it was seen."""

    __slots__ = ("dst", "msg", "problems", "size", "src", "ts")

    def __init__(self, msg: Message, ts: int, size: int, src: tuple[str, int], dst: tuple[str, int]) -> None:
        self.msg = msg
        self.ts = ts
        self.size = size
        self.src = src
        self.dst = dst
        self.problems = msg.problems
