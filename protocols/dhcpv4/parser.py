"""DHCPv4 wire parser (RFC 2131 §2, RFC 2132): the fixed BOOTP header, the magic cookie and
the options, one UDP datagram at a time.

Packetbeat 9.3 decodes DHCP with elastic's 2020 fork of insomniacslk/dhcp. Which datagrams it
refuses, and what it takes from each option, follow that library's rules, so they are
reproduced here (hand-written: the rules are the library's quirks, no Python DHCP library has
them, and the per-packet path stays one ``struct`` call plus a loop over the options):

* a datagram shorter than the 236-byte header, or without the magic cookie right after it, is
  refused;
* every option up to the end of the datagram must fit, *including those after the End
  option* (which are not used): one that runs past the end refuses the datagram;
* the message type (53) must be 1 byte long, the requested IP address (50), server identifier
  (54) and broadcast address (28) 4 bytes, the maximum message size (57) 2 bytes, the DNS
  servers (6) a non-zero multiple of 4; any other length refuses the datagram;
* the vendor-identifying vendor class (124, RFC 3925) must be a well-formed list of
  enterprise records, or the datagram is refused.

Where the library is plainly wrong wirebeat departs from it (docs/differences.md, DHCPv4):
it reads option 124 where it stands (the library accepts it only as the very last bytes of the
datagram, without the End option after it, and not with an empty last record); a last byte
that is an option code without its length is refused here (Packetbeat crashes on it); and the
options an Option Overload (52, RFC 2132 §9.3) puts in the ``file`` and ``sname`` fields are
decoded (the library ignores the overload and shows those bytes as names). Each overloaded
field is read once, in the RFC 2131 §4.1 order (``file``, then ``sname``); an overload option
inside them is ignored and counted, so overload chains cannot loop.
"""

from __future__ import annotations

import struct
from typing import Any

#: RFC 2131 §3: the four octets at the start of the options field.
MAGIC_COOKIE = b"\x63\x82\x53\x63"
HEADER_SIZE = 236
OPTIONS_START = HEADER_SIZE + 4
_HEADER = struct.Struct(">BBBBIHH4s4s4s4s16s64s128s")

PAD = 0
END = 255
OPT_OVERLOAD = 52
OPT_VIVC = 124
#: Offsets of the fields an overload may fill with options (RFC 2131 §2).
SNAME = (44, 108)
FILE = (108, 236)
OVERLOAD_FILE = 1
OVERLOAD_SNAME = 2

#: Options whose length the library checks while parsing (any other length refuses the datagram).
_FIXED_LENGTH = {53: 1, 50: 4, 54: 4, 28: 4, 57: 2}
#: DNS servers (6): a non-zero multiple of 4.
_OPT_DNS = 6


class DhcpError(ValueError):
    """A datagram Packetbeat's decoder refuses; ``reason`` names the counter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Message:
    """One DHCP message: the header fields, and the options before the first End option in
    wire order (those of overloaded ``file``/``sname`` fields after them)."""

    __slots__ = (
        "chaddr",
        "ciaddr",
        "file",
        "flags",
        "giaddr",
        "hlen",
        "hops",
        "htype",
        "op",
        "options",
        "overload",
        "problems",
        "secs",
        "siaddr",
        "sname",
        "xid",
        "yiaddr",
    )

    def __init__(self, fields: tuple[Any, ...]) -> None:
        (
            self.op,
            self.htype,
            self.hlen,
            self.hops,
            self.xid,
            self.secs,
            self.flags,
            self.ciaddr,
            self.yiaddr,
            self.siaddr,
            self.giaddr,
            self.chaddr,
            self.sname,
            self.file,
        ) = fields
        self.options: list[tuple[int, bytes]] = []
        #: 0, or OVERLOAD_FILE | OVERLOAD_SNAME when option 52 moved options there.
        self.overload = 0
        #: Anomalies that did not refuse the message (counter names).
        self.problems: list[str] = []

    op: int
    htype: int
    hlen: int
    hops: int
    xid: int
    secs: int
    flags: int
    ciaddr: bytes
    yiaddr: bytes
    siaddr: bytes
    giaddr: bytes
    chaddr: bytes
    sname: bytes
    file: bytes


def parse(data: bytes) -> Message:
    """Decode one datagram; raises :class:`DhcpError` for one Packetbeat would refuse."""
    if len(data) < HEADER_SIZE:
        raise DhcpError("truncated_header")
    if len(data) < OPTIONS_START:
        raise DhcpError("missing_magic_cookie")
    if data[HEADER_SIZE:OPTIONS_START] != MAGIC_COOKIE:
        raise DhcpError("bad_magic_cookie")
    msg = Message(_HEADER.unpack_from(data))
    walk_options(data, OPTIONS_START, len(data), msg.options)
    for code, value in msg.options:
        if code == OPT_OVERLOAD:
            _overload(data, msg, value)
            break
    return msg


def walk_options(buf: bytes, i: int, end: int, keep: list[tuple[int, bytes]]) -> bool:
    """Check the options in ``buf[i:end]`` as the library does and append those before the
    first End to ``keep``. Returns whether an End option was seen."""
    seen_end = False
    while i < end:
        code = buf[i]
        if code == PAD:
            i += 1
            continue
        if code == END:
            seen_end = True
            i += 1
            continue
        if i + 1 >= end:
            raise DhcpError("option_overrun")
        n = buf[i + 1]
        stop = i + 2 + n
        if stop > end:
            raise DhcpError("option_overrun")
        fixed = _FIXED_LENGTH.get(code)
        if fixed is not None:
            if n != fixed:
                raise DhcpError("bad_option_length")
        elif code == _OPT_DNS:
            if n == 0 or n & 3:
                raise DhcpError("bad_option_length")
        elif code == OPT_VIVC and (
            vivc_records(buf[i + 2 : stop], strict=seen_end) is None or (seen_end and stop != end)
        ):
            # After the End option (never used) the library's own rule, to refuse what it
            # refuses: the option must end the datagram.
            raise DhcpError("bad_vendor_identifying_option")
        if not seen_end:
            keep.append((code, buf[i + 2 : stop]))
        i = stop
    return seen_end


def vivc_records(value: bytes, strict: bool = False) -> list[tuple[int, bytes]] | None:
    """RFC 3925 §3 records (enterprise number, data), or None when they do not fill the option.
    ``strict``: the library's reading, which refuses an empty last record."""
    out: list[tuple[int, bytes]] = []
    i = 0
    n = len(value)
    least = 6 if strict else 5
    while n - i >= least:
        size = value[i + 4]
        stop = i + 5 + size
        if stop > n:
            return None
        out.append((int.from_bytes(value[i : i + 4], "big"), value[i + 5 : stop]))
        i = stop
    return out if i == n else None


def _overload(data: bytes, msg: Message, value: bytes) -> None:
    """RFC 2132 §9.3: 1 = ``file`` holds options, 2 = ``sname``, 3 = both."""
    if len(value) != 1 or not 1 <= value[0] <= 3:
        msg.problems.append("bad_overload_option")
        return
    msg.overload = value[0]
    for bit, (start, stop) in ((OVERLOAD_FILE, FILE), (OVERLOAD_SNAME, SNAME)):
        if not msg.overload & bit:
            continue
        found: list[tuple[int, bytes]] = []
        try:
            walk_options(data, start, stop, found)
        except DhcpError:
            msg.problems.append("overload_malformed")
            continue
        for opt in found:
            if opt[0] == OPT_OVERLOAD:
                msg.problems.append("overload_nested")
            else:
                msg.options.append(opt)
