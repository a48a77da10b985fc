"""Build pcapng files block by block (every block type the format defines), for the tests
and the fuzz campaign. Layouts: draft-ietf-opsawg-pcapng §4.

``pcapng(packets)`` turns ``(ts_ns, linktype, frame, wire_len)`` tuples (what
``CaptureFile`` yields) into a pcapng file with one interface per link type, packets as
Enhanced Packet Blocks (or Simple / obsolete Packet Blocks).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

SHB, IDB, PB, SPB, NRB, ISB, EPB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6
DSB = 0x0000000A  # decryption secrets block
CUSTOM, CUSTOM_NOCOPY = 0x00000BAD, 0x40000BAD


def block(btype: int, body: bytes, endian: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def option(code: int, value: bytes, endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def end_of_options(endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", 0, 0)


def shb(endian: str = "<", options: bytes = b"") -> bytes:
    return block(SHB, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options, endian)


def idb(
    linktype: int = 1,
    tsresol: int | None = None,
    tsoffset: int | None = None,
    snaplen: int = 65535,
    endian: str = "<",
) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), endian)
    if tsoffset is not None:
        opts += option(14, struct.pack(endian + "q", tsoffset), endian)
    if opts:
        opts += end_of_options(endian)
    return block(IDB, struct.pack(endian + "HHI", linktype, 0, snaplen) + opts, endian)


def epb(iface: int, ts_units: int, data: bytes, wire_len: int | None = None, endian: str = "<") -> bytes:
    wl = len(data) if wire_len is None else wire_len
    head = struct.pack(endian + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), wl)
    return block(EPB, head + data, endian)


def spb(data: bytes, wire_len: int | None = None, endian: str = "<") -> bytes:
    wl = len(data) if wire_len is None else wire_len
    return block(SPB, struct.pack(endian + "I", wl) + data, endian)


def pb(iface: int, ts_units: int, data: bytes, wire_len: int | None = None, endian: str = "<") -> bytes:
    wl = len(data) if wire_len is None else wire_len
    head = struct.pack(endian + "HHIIII", iface, 0, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), wl)
    return block(PB, head + data, endian)


def nrb(endian: str = "<") -> bytes:
    rec = struct.pack(endian + "HH", 1, 14) + bytes([10, 0, 0, 1]) + b"host.local" + b"\0" * 2
    return block(NRB, rec + struct.pack(endian + "HH", 0, 0), endian)


def isb(iface: int = 0, endian: str = "<") -> bytes:
    return block(ISB, struct.pack(endian + "III", iface, 0, 0) + option(4, b"\0" * 8, endian), endian)


def custom(nocopy: bool = False, endian: str = "<") -> bytes:
    return block(CUSTOM_NOCOPY if nocopy else CUSTOM, struct.pack(endian + "I", 32473) + b"anything", endian)


def dsb(endian: str = "<") -> bytes:
    return block(DSB, struct.pack(endian + "II", 0x544C534B, 4) + b"keys", endian)


def pcapng(packets: Iterable[tuple[int, int, bytes, int]], kind: str = "epb") -> bytes:
    """A pcapng file of ``packets`` (nanosecond interfaces; ``kind``: epb, spb or pb)."""
    out = bytearray(shb())
    ifaces: dict[int, int] = {}
    for ts, lt, frame, wl in packets:
        if lt not in ifaces:
            ifaces[lt] = len(ifaces)
            out += idb(lt, tsresol=9)
        if kind == "spb":
            out += spb(frame, wl)
        elif kind == "pb":
            out += pb(ifaces[lt], ts, frame, wl)
        else:
            out += epb(ifaces[lt], ts, frame, wl)
    return bytes(out)
