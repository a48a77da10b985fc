"""libpcap through ctypes (Debian's ``libpcap0.8`` provides ``libpcap.so.0.8``).

Two uses: compiling BPF filters on a dead handle (for the AF_PACKET ring too), and the
``type: pcap`` live source. The source reads in non-blocking mode with ``pcap_next_ex``
and waits on the selectable descriptor when the buffer is empty, so one call hands back
a batch and the caller learns when the link is idle.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import select
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

from capture.errors import CaptureError

Packet = tuple[int, int, bytes, int]

PCAP_ERRBUF_SIZE = 256
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
PCAP_TSTAMP_PRECISION_NANO = 1
PCAP_D_IN = 1
PCAP_WARNING = 1
PCAP_ERROR = -1
PCAP_ERROR_NO_SUCH_DEVICE = -5
PCAP_ERROR_PERM_DENIED = -8

_lib: Any = None
_lib_lock = threading.Lock()


class BpfInsn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(BpfInsn))]


class PcapStat(ctypes.Structure):
    _fields_ = [("ps_recv", ctypes.c_uint), ("ps_drop", ctypes.c_uint), ("ps_ifdrop", ctypes.c_uint)]


def lib() -> Any:
    """The loaded libpcap, or CaptureError with what to install."""
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        names = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"]
        found = ctypes.util.find_library("pcap")
        if found:
            names.append(found)
        last: OSError | None = None
        for name in names:
            try:
                handle = ctypes.CDLL(name, use_errno=True)
                break
            except OSError as exc:
                last = exc
        else:
            raise CaptureError(
                "libpcap is not installed: live capture needs it to compile its capture filter "
                f"(Debian/Ubuntu: apt-get install libpcap0.8); replaying a file with -I does not ({last})"
            )
        _declare(handle)
        _lib = handle
        return handle


def _declare(h: Any) -> None:
    vp = ctypes.c_void_p
    cp = ctypes.c_char_p
    i = ctypes.c_int
    h.pcap_open_dead.argtypes = [i, i]
    h.pcap_open_dead.restype = vp
    h.pcap_compile.argtypes = [vp, ctypes.POINTER(BpfProgram), cp, i, ctypes.c_uint32]
    h.pcap_compile.restype = i
    h.pcap_freecode.argtypes = [ctypes.POINTER(BpfProgram)]
    h.pcap_freecode.restype = None
    h.pcap_geterr.argtypes = [vp]
    h.pcap_geterr.restype = cp
    h.pcap_close.argtypes = [vp]
    h.pcap_close.restype = None
    h.pcap_create.argtypes = [cp, cp]
    h.pcap_create.restype = vp
    for name in ("pcap_set_snaplen", "pcap_set_promisc", "pcap_set_timeout", "pcap_set_buffer_size"):
        getattr(h, name).argtypes = [vp, i]
        getattr(h, name).restype = i
    h.pcap_set_tstamp_precision.argtypes = [vp, i]
    h.pcap_set_tstamp_precision.restype = i
    h.pcap_activate.argtypes = [vp]
    h.pcap_activate.restype = i
    h.pcap_statustostr.argtypes = [i]
    h.pcap_statustostr.restype = cp
    h.pcap_datalink.argtypes = [vp]
    h.pcap_datalink.restype = i
    h.pcap_setfilter.argtypes = [vp, ctypes.POINTER(BpfProgram)]
    h.pcap_setfilter.restype = i
    h.pcap_setdirection.argtypes = [vp, i]
    h.pcap_setdirection.restype = i
    h.pcap_setnonblock.argtypes = [vp, i, cp]
    h.pcap_setnonblock.restype = i
    h.pcap_get_selectable_fd.argtypes = [vp]
    h.pcap_get_selectable_fd.restype = i
    h.pcap_next_ex.argtypes = [vp, ctypes.POINTER(vp), ctypes.POINTER(vp)]
    h.pcap_next_ex.restype = i
    h.pcap_stats.argtypes = [vp, ctypes.POINTER(PcapStat)]
    h.pcap_stats.restype = i
    h.pcap_lib_version.argtypes = []
    h.pcap_lib_version.restype = cp


def version() -> str:
    return str(lib().pcap_lib_version().decode())


def compile_filter(expr: str, linktype: int, snaplen: int) -> list[tuple[int, int, int, int]]:
    """Compile ``expr`` for ``linktype`` on a dead handle: the classic BPF instructions.

    Raises ValueError with libpcap's message when the expression is invalid.
    """
    h = lib()
    pcap = h.pcap_open_dead(linktype, snaplen)
    if not pcap:
        raise CaptureError(f"pcap_open_dead({linktype}) failed")
    prog = BpfProgram()
    try:
        if h.pcap_compile(pcap, ctypes.byref(prog), expr.encode(), 1, PCAP_NETMASK_UNKNOWN) != 0:
            raise ValueError(h.pcap_geterr(pcap).decode(errors="replace"))
        try:
            return [
                (prog.bf_insns[n].code, prog.bf_insns[n].jt, prog.bf_insns[n].jf, prog.bf_insns[n].k)
                for n in range(prog.bf_len)
            ]
        finally:
            h.pcap_freecode(ctypes.byref(prog))
    finally:
        h.pcap_close(pcap)


def _attach_fd(fd: int, prog: list[tuple[int, int, int, int]]) -> None:
    """SO_ATTACH_FILTER on a descriptor we do not own (a duplicate is used and closed)."""
    arr = (BpfInsn * len(prog))(*(BpfInsn(*i) for i in prog))
    fprog = struct.pack("HP", len(prog), ctypes.addressof(arr))
    sock = socket.fromfd(fd, socket.AF_PACKET, socket.SOCK_RAW)
    try:
        sock.setsockopt(socket.SOL_SOCKET, 26, fprog)  # SO_ATTACH_FILTER
    finally:
        sock.close()


class PcapPkthdr(ctypes.Structure):
    """struct pcap_pkthdr; with nanosecond precision ``frac`` holds nanoseconds."""

    _fields_ = [
        ("sec", ctypes.c_long),
        ("frac", ctypes.c_long),
        ("caplen", ctypes.c_uint32),
        ("len", ctypes.c_uint32),
    ]


class PcapSource:
    """A live libpcap handle: promiscuous, nanosecond timestamps, non-blocking reads.

    Iterating yields the capture seam until ``close()``; ``read_batch`` is what the live
    loop uses (an empty batch means the link was idle for ``timeout``).
    """

    kind = "pcap"

    def __init__(
        self,
        device: str,
        *,
        snaplen: int = 65535,
        buffer_size_mb: int = 24,
        promisc: bool = True,
        bpf_filter: str = "",
        direction_in: bool = False,
        timeout_ms: int = 200,
        prefix: list[tuple[int, int, int, int]] | None = None,
    ) -> None:
        """``prefix``: instructions run before the compiled filter in the kernel (used to
        drop the outgoing copy of loopback packets there instead of in libpcap)."""
        h = self._h = lib()
        self.device = device
        self.bpf_filter = bpf_filter
        err = ctypes.create_string_buffer(PCAP_ERRBUF_SIZE)
        p = h.pcap_create(device.encode(), err)
        if not p:
            raise CaptureError(f"pcap: cannot open {device}: {err.value.decode(errors='replace')}")
        self._p: Any = p
        try:
            h.pcap_set_snaplen(p, snaplen)
            h.pcap_set_promisc(p, 1 if promisc else 0)
            h.pcap_set_timeout(p, timeout_ms)
            h.pcap_set_buffer_size(p, buffer_size_mb * 1024 * 1024)
            h.pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO)
            rc = h.pcap_activate(p)
            if rc < 0:
                raise CaptureError(self._activate_error(rc))
            self.linktype = int(h.pcap_datalink(p))
            if bpf_filter or prefix:
                prog = BpfProgram()
                if h.pcap_compile(p, ctypes.byref(prog), bpf_filter.encode(), 1, PCAP_NETMASK_UNKNOWN):
                    raise CaptureError(f"invalid BPF filter {bpf_filter!r}: {self._err()}")
                try:
                    if h.pcap_setfilter(p, ctypes.byref(prog)):
                        raise CaptureError(f"pcap: cannot set the filter on {device}: {self._err()}")
                    if prefix:
                        # Replace the kernel's copy of the filter with prefix + program. libpcap
                        # keeps the plain program for the blocks it filters in user space
                        # right after pcap_setfilter (it cannot run the ancillary loads).
                        insns = [
                            (i.code, i.jt, i.jf, i.k) for i in (prog.bf_insns[n] for n in range(prog.bf_len))
                        ]
                        _attach_fd(int(h.pcap_get_selectable_fd(p)), prefix + insns)
                finally:
                    h.pcap_freecode(ctypes.byref(prog))
            if direction_in and h.pcap_setdirection(p, PCAP_D_IN):
                raise CaptureError(f"pcap: cannot capture inbound only on {device}: {self._err()}")
            if h.pcap_setnonblock(p, 1, err):
                raise CaptureError(f"pcap: {err.value.decode(errors='replace')}")
            self.fd = int(h.pcap_get_selectable_fd(p))
        except BaseException:
            h.pcap_close(p)
            self._p = None
            raise
        self._poll = select.poll()
        self._poll.register(self.fd, select.POLLIN)
        self._hdrp = ctypes.c_void_p()
        self._hdr: PcapPkthdr | None = None
        self._hdr_addr = 0
        # The hot call, given ready-made ctypes objects (no per-call conversion of the handle).
        proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
        self._next_ex = proto(ctypes.cast(h.pcap_next_ex, ctypes.c_void_p).value or 0)
        self._pv = ctypes.c_void_p(p)
        self._datap = ctypes.c_void_p()
        self._stats = PcapStat()
        self._lock = threading.Lock()
        self._closed = False
        self.packets = 0
        self.bytes = 0

    def _err(self) -> str:
        return str(self._h.pcap_geterr(self._p).decode(errors="replace"))

    def _activate_error(self, rc: int) -> str:
        detail = self._err() if rc == PCAP_ERROR else ""
        status = self._h.pcap_statustostr(rc).decode(errors="replace")
        msg = f"pcap: cannot capture on {self.device}: {status}"
        if detail:
            msg += f" ({detail})"
        if rc == PCAP_ERROR_PERM_DENIED or "ermission" in detail or "ermitted" in detail:
            msg += " (capture needs root or CAP_NET_RAW)"
        return msg

    def read_batch(self, timeout: float, max_packets: int = 4096) -> list[Packet]:
        """Packets ready now; waits up to ``timeout`` seconds for the first one."""
        out: list[Packet] = []
        if self._closed:
            return out
        with self._lock:
            self._drain(out, max_packets)
        if out or not self._poll.poll(int(timeout * 1000)):
            return out
        with self._lock:
            if not self._closed:
                self._drain(out, max_packets)
        return out

    def _drain(self, out: list[Packet], limit: int) -> None:
        next_ex = self._next_ex
        p = self._pv
        hp = self._hdrp
        dp = self._datap
        hrefp = ctypes.byref(hp)
        drefp = ctypes.byref(dp)
        string_at = ctypes.string_at
        lt = self.linktype
        nbytes = 0
        append = out.append
        hdr = self._hdr
        while len(out) < limit:
            rc = next_ex(p, hrefp, drefp)
            if rc != 1:
                if rc == PCAP_ERROR:
                    raise CaptureError(f"pcap: read error on {self.device}: {self._err()}")
                break
            # pcap_next_ex points the header at a struct inside the handle (pcap.c,
            # pcap_oneshot), so one view of it serves every packet; re-made if it moves.
            if hdr is None or hp.value != self._hdr_addr:
                self._hdr_addr = hp.value or 0
                hdr = self._hdr = PcapPkthdr.from_address(self._hdr_addr)
            caplen = hdr.caplen
            append((hdr.sec * 1_000_000_000 + hdr.frac, lt, string_at(dp, caplen), hdr.len))
            nbytes += caplen
        self.packets += len(out)
        self.bytes += nbytes

    def __iter__(self) -> Iterator[Packet]:
        while not self._closed:
            yield from self.read_batch(0.2)

    def kernel_stats(self) -> dict[str, int]:
        """``pcap_stats``: received (by the filter) and dropped (buffer full, interface)."""
        with self._lock:
            if self._closed or self._h.pcap_stats(self._p, ctypes.byref(self._stats)):
                return {}
            s = self._stats
            return {"received": s.ps_recv, "dropped": s.ps_drop, "if_dropped": s.ps_ifdrop}

    def stats(self) -> dict[str, int]:
        out = {"packets": self.packets, "bytes": self.bytes}
        for k, v in self.kernel_stats().items():
            out[f"kernel.{k}"] = v
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            if self._p:
                self._h.pcap_close(self._p)
                self._p = None
