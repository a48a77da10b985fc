"""Linux AF_PACKET capture through a TPACKET_V3 memory-mapped ring, in plain Python.

The kernel fills fixed-size *blocks* with variable-size frames and hands a whole block
to user space at once (when full, or when ``retire_blk_tov`` expires); user space walks
the block's frames and gives the block back. One ``poll``/status check per block instead
of one system call per packet is what makes a Python reader fast enough.
See the kernel's Documentation/networking/packet_mmap.rst ("AF_PACKET TPACKET_V3 example").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
import select
import socket
import struct
import threading
from collections.abc import Iterator

from capture import bpf
from capture.errors import CaptureError

Packet = tuple[int, int, bytes, int]

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_MR_PROMISC = 1
PACKET_FANOUT_HASH = 0
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
TPACKET_V3 = 2
ETH_P_ALL = 0x0003
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
PACKET_OUTGOING = 4

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113

MiB = 1024 * 1024

# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1 whose first
# fields are block_status (+8), num_pkts (+12), offset_to_first_pkt (+16).
_BLOCK_STATUS = 8
_BLOCK_HDR = struct.Struct("<III")  # block_status, num_pkts, offset_to_first_pkt
# struct tpacket3_hdr (48 bytes): tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len,
# tp_status, tp_mac, tp_net, hv1 {tp_rxhash, tp_vlan_tci, tp_vlan_tpid, pad}, pad[8];
# then struct sockaddr_ll at TPACKET_ALIGN(48) = 48, whose sll_pkttype is byte 10 → +58.
_FRAME_HDR = struct.Struct("<6I2H30xB")
_VLAN = struct.Struct("<IH")  # tp_vlan_tci (+32), tp_vlan_tpid (+36)
# sockaddr_ll after the frame header: family, protocol (network order), ifindex, hatype,
# pkttype, halen, addr[8].
_SLL = struct.Struct("<H2siHBB8s")
_REQ3 = struct.Struct("=7I")  # struct tpacket_req3
_STATS3 = struct.Struct("=III")  # struct tpacket_stats_v3: packets, drops, freeze_q_cnt


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def interface_type(device: str) -> int:
    try:
        with open(f"/sys/class/net/{device}/type") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 0


def loopback_ifindex() -> int | None:
    for idx, name in socket.if_nameindex():
        if interface_type(name) == ARPHRD_LOOPBACK:
            return idx
    return None


def _permission_hint(exc: OSError) -> str:
    if exc.errno in (errno.EPERM, errno.EACCES):
        return " (capture needs root or CAP_NET_RAW)"
    return ""


class AfPacketSource:
    """One AF_PACKET socket with a TPACKET_V3 RX ring on ``device`` (or ``any``).

    Ethernet and loopback devices are read as Ethernet frames; ``any`` and other link
    types through a SOCK_DGRAM socket with a Linux cooked (SLL) header built from the
    ring's ``sockaddr_ll``, as libpcap does.
    """

    kind = "af_packet"

    def __init__(
        self,
        device: str,
        *,
        snaplen: int = 65535,
        buffer_size_mb: int = 24,
        promisc: bool = True,
        bpf_filter: str = "",
        fanout_group: int | None = None,
        ignore_outgoing: bool = False,
        block_timeout_ms: int = 50,
    ) -> None:
        self.device = device
        self.bpf_filter = bpf_filter
        self.warnings: list[str] = []
        self._lock = threading.Lock()
        self._closed = False
        self.packets = 0
        self.bytes = 0
        self.outgoing_skipped = 0
        self._k_received = 0
        self._k_dropped = 0
        self._k_freezes = 0
        if device == "any":
            ifindex, hatype = 0, 0
        else:
            try:
                ifindex = socket.if_nametoindex(device)
            except OSError:
                raise CaptureError(f"af_packet: no such device {device!r}") from None
            hatype = interface_type(device)
        self.ifindex = ifindex
        self.cooked = hatype not in (ARPHRD_ETHER, ARPHRD_LOOPBACK)
        self.linktype = LINKTYPE_LINUX_SLL if self.cooked else LINKTYPE_ETHERNET
        self.snaplen = snaplen
        lo = loopback_ifindex()
        # Loopback packets show up twice (leaving and arriving); keep the arrival only.
        if ignore_outgoing or hatype == ARPHRD_LOOPBACK:
            self._skip_out_ifindex: int | None = -1
        elif device == "any":
            self._skip_out_ifindex = lo
        else:
            self._skip_out_ifindex = None

        prog = bpf.compile_filter(bpf_filter, self.linktype, snaplen)
        if self.cooked:
            fixed = bpf.uncook(prog)
            if fixed is None:
                raise CaptureError(
                    f"af_packet: filter {bpf_filter!r} reads cooked-header fields the kernel "
                    f"cannot filter on for {device}; use type: pcap"
                )
            prog = fixed
        if self._skip_out_ifindex is not None:
            prog = bpf.skip_outgoing(prog, None if self._skip_out_ifindex < 0 else self._skip_out_ifindex)

        kind = socket.SOCK_DGRAM if self.cooked else socket.SOCK_RAW
        try:
            # Protocol 0: the socket receives nothing until bind(), so no packet slips in
            # before the filter is attached.
            self.sock = socket.socket(socket.AF_PACKET, kind, 0)
        except OSError as exc:
            raise CaptureError(
                f"af_packet: cannot open a capture socket on {device}: {exc.strerror}{_permission_hint(exc)}"
            ) from None
        self.mm: mmap.mmap | None = None
        try:
            self.sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            self._setup_ring(snaplen, buffer_size_mb, block_timeout_ms)
            bpf.attach(self.sock, prog)
            self._bind(ifindex)
            if promisc and ifindex:
                mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
                self.sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            if fanout_group is not None:
                arg = (fanout_group & 0xFFFF) | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16)
                self.sock.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("I", arg))
        except OSError as exc:
            self.close()
            raise CaptureError(f"af_packet: cannot capture on {device}: {exc.strerror}") from None
        self._poll = select.poll()
        self._poll.register(self.sock.fileno(), select.POLLIN | select.POLLERR)
        self._cur = 0

    def _setup_ring(self, snaplen: int, buffer_size_mb: int, tov_ms: int) -> None:
        page = mmap.PAGESIZE
        # A block must hold the largest frame: headers + snaplen. Blocks of 1 MiB (or the
        # next power of two) keep the hand-over fine-grained; the kernel allocates each
        # block contiguously and falls back to vmalloc, and we halve on ENOMEM (#522).
        need = snaplen + 256
        block = MiB
        while block < need:
            block <<= 1
        total = max(buffer_size_mb, 1) * MiB
        frame = 2048
        while True:
            nr = max(2, total // block)
            req = _REQ3.pack(block, nr, frame, (block // frame) * nr, tov_ms, 0, 0)
            try:
                self.sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
                break
            except OSError as exc:
                if exc.errno != errno.ENOMEM:
                    raise
                smaller = block >> 1
                if smaller >= max(need, page * 4):
                    block = smaller
                elif total > 2 * block:
                    total //= 2
                else:
                    raise
                self.warnings.append(
                    f"af_packet ring allocation failed; retrying with {nr} blocks of {block} bytes"
                )
        self.block_size = block
        self.block_nr = nr
        self.mm = mmap.mmap(self.sock.fileno(), block * nr, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    def _bind(self, ifindex: int) -> None:
        addr = struct.pack("=HHiHBB8s", socket.AF_PACKET, socket.htons(ETH_P_ALL), ifindex, 0, 0, 0, b"")
        libc = _libc()
        if libc.bind(self.sock.fileno(), addr, len(addr)) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))

    # -- reading -------------------------------------------------------------------------

    def read_batch(self, timeout: float) -> list[Packet]:
        """The packets of the next block the kernel handed over; [] after ``timeout`` idle."""
        mm = self.mm
        if mm is None:
            return []
        off = self._cur * self.block_size
        status, num, first = _BLOCK_HDR.unpack_from(mm, off + _BLOCK_STATUS)
        if not status & TP_STATUS_USER:
            self._poll.poll(int(timeout * 1000))
            status, num, first = _BLOCK_HDR.unpack_from(mm, off + _BLOCK_STATUS)
            if not status & TP_STATUS_USER:
                return []
        out: list[Packet] = []
        append = out.append
        unpack = _FRAME_HDR.unpack_from
        lt = self.linktype
        skip_out = self._skip_out_ifindex is not None
        cooked = self.cooked
        nbytes = 0
        p = off + first
        for _ in range(num):
            nxt, sec, nsec, snap, wire, st, mac, _net, pkttype = unpack(mm, p)
            if pkttype == PACKET_OUTGOING and skip_out and self._outgoing_skipped(mm, p):
                p += nxt
                continue
            start = p + mac
            data = mm[start : start + snap]
            if st & TP_STATUS_VLAN_VALID and not cooked:
                data = self._with_vlan(mm, p, st, data)
                wire += 4
            elif cooked:
                data = self._sll_header(mm, p) + data
                wire += 16
            append(((sec * 1_000_000_000) + nsec, lt, data, wire))
            nbytes += snap
            p += nxt
        # Give the block back: the kernel owns it again once block_status is
        # TP_STATUS_KERNEL (packet_mmap.rst). All frame bytes were copied out above.
        struct.pack_into("<I", mm, off + _BLOCK_STATUS, TP_STATUS_KERNEL)
        self._cur = (self._cur + 1) % self.block_nr
        self.packets += len(out)
        self.bytes += nbytes
        return out

    def _outgoing_skipped(self, mm: mmap.mmap, p: int) -> bool:
        """Kernel filter fallback: is this outgoing frame one we skip?"""
        want = self._skip_out_ifindex
        if want is not None and want >= 0 and _SLL.unpack_from(mm, p + 48)[2] != want:
            return False
        self.outgoing_skipped += 1
        return True

    @staticmethod
    def _with_vlan(mm: mmap.mmap, p: int, st: int, data: bytes) -> bytes:
        # The NIC stripped the 802.1Q tag into the ring header; put it back (libpcap does).
        tci, tpid = _VLAN.unpack_from(mm, p + 32)
        if not st & TP_STATUS_VLAN_TPID_VALID:
            tpid = 0x8100
        return data[:12] + struct.pack(">HH", tpid, tci & 0xFFFF) + data[12:]

    @staticmethod
    def _sll_header(mm: mmap.mmap, p: int) -> bytes:
        _fam, proto, _ifi, hatype, pkttype, halen, addr = _SLL.unpack_from(mm, p + 48)
        return struct.pack(">HHH", pkttype, hatype, halen) + addr + proto

    def __iter__(self) -> Iterator[Packet]:
        while not self._closed:
            yield from self.read_batch(0.2)

    # -- statistics ----------------------------------------------------------------------

    def kernel_stats(self) -> dict[str, int]:
        """PACKET_STATISTICS (reading resets the kernel's counters, so they accumulate here)."""
        with self._lock:
            if not self._closed:
                try:
                    raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS3.size)
                except OSError:
                    raw = b""
                if len(raw) >= _STATS3.size:
                    packets, drops, freezes = _STATS3.unpack(raw[: _STATS3.size])
                    # tp_packets already includes tp_drops (net/packet/af_packet.c).
                    self._k_received += packets
                    self._k_dropped += drops
                    self._k_freezes += freezes
            return {"received": self._k_received, "dropped": self._k_dropped, "freeze_q": self._k_freezes}

    def stats(self) -> dict[str, int]:
        out = {"packets": self.packets, "bytes": self.bytes, "outgoing_skipped": self.outgoing_skipped}
        for k, v in self.kernel_stats().items():
            out[f"kernel.{k}"] = v
        return out

    def close(self) -> None:
        """Release the ring and the socket; call from the reading thread (or after it stopped)."""
        if self._closed:
            return
        self.kernel_stats()  # keep the final counts
        with self._lock:
            self._closed = True
            if self.mm is not None:
                try:
                    self.mm.close()
                except BufferError:
                    pass
                self.mm = None
            self.sock.close()
