"""Classic BPF programs for the kernel: compiled by libpcap, attached with SO_ATTACH_FILTER."""

from __future__ import annotations

import ctypes
import socket
import struct

from capture import libpcap

Insn = tuple[int, int, int, int]

SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27

# Instruction classes and fields (linux/filter.h, linux/bpf_common.h).
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_RET = 0x06
BPF_JMP = 0x05
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_ABS = 0x20
BPF_IND = 0x40
BPF_MSH = 0xA0
BPF_K = 0x00
BPF_JEQ = 0x10

# Ancillary loads: offsets past SKF_AD_OFF read socket-buffer metadata, not packet bytes.
SKF_AD_OFF = -0x1000 & 0xFFFFFFFF
SKF_AD_PROTOCOL = 0
SKF_AD_PKTTYPE = 4
SKF_AD_IFINDEX = 8

PACKET_OUTGOING = 4
SLL_HDR_LEN = 16
LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113


class FilterError(ValueError):
    """The filter expression does not compile (libpcap's message)."""


def compile_filter(expr: str, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 65535) -> list[Insn]:
    try:
        return libpcap.compile_filter(expr, linktype, snaplen)
    except ValueError as exc:
        raise FilterError(f"invalid BPF filter {expr!r}: {exc}") from None


def uncook(prog: list[Insn]) -> list[Insn] | None:
    """Rewrite a program compiled for LINKTYPE_LINUX_SLL for a SOCK_DGRAM socket.

    The kernel runs the filter on the packet *without* the 16-byte cooked header that
    user space prepends, so header fields become ancillary loads and payload offsets move
    back by 16 (libpcap's ``fix_program``/``fix_offset`` in pcap-linux.c). None when an
    instruction reads a header field the kernel cannot supply.
    """
    out: list[Insn] = []
    for code, jt, jf, k in prog:
        cls = code & 0x07
        mode = code & 0xE0
        if cls in (BPF_LD, BPF_LDX) and mode in (BPF_ABS, BPF_IND, BPF_MSH):
            if k >= SLL_HDR_LEN:
                k -= SLL_HDR_LEN
            elif k == 0 and mode == BPF_ABS and cls == BPF_LD:
                k = SKF_AD_OFF + SKF_AD_PKTTYPE
            elif k == 14 and mode == BPF_ABS and cls == BPF_LD:
                k = SKF_AD_OFF + SKF_AD_PROTOCOL
            else:
                return None
        out.append((code, jt, jf, k))
    return out


def skip_outgoing(prog: list[Insn], only_ifindex: int | None = None) -> list[Insn]:
    """Prefix ``prog`` with "drop PACKET_OUTGOING" (optionally only on one interface).

    On a loopback device every packet is seen twice, once leaving (PACKET_OUTGOING) and
    once arriving; like libpcap we keep only the arrival. ``ignore_outgoing`` drops all
    outgoing packets. Jumps are relative, so the original program runs unchanged after.
    """
    ld_type = (BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE)
    ret0 = (BPF_RET | BPF_K, 0, 0, 0)
    if only_ifindex is None:
        # jeq OUTGOING → ret 0 (next insn), else skip it
        prefix = [ld_type, (BPF_JMP | BPF_JEQ | BPF_K, 0, 1, PACKET_OUTGOING), ret0]
    else:
        prefix = [
            ld_type,
            (BPF_JMP | BPF_JEQ | BPF_K, 0, 3, PACKET_OUTGOING),
            (BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_AD_OFF + SKF_AD_IFINDEX),
            (BPF_JMP | BPF_JEQ | BPF_K, 0, 1, only_ifindex),
            ret0,
        ]
    return prefix + (prog or [(BPF_RET | BPF_K, 0, 0, 0xFFFFFFFF)])


def outgoing_prefix() -> list[Insn]:
    """The instructions ``skip_outgoing`` puts in front of a program (all interfaces)."""
    return skip_outgoing([])[:3]


def attach(sock: socket.socket, prog: list[Insn]) -> None:
    """SO_ATTACH_FILTER: ``struct sock_fprog { unsigned short len; struct sock_filter *filter; }``."""
    arr = (libpcap.BpfInsn * len(prog))(*(libpcap.BpfInsn(c, jt, jf, k) for c, jt, jf, k in prog))
    fprog = struct.pack("HP", len(prog), ctypes.addressof(arr))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def accepts_all(prog: list[Insn]) -> bool:
    return len(prog) == 1 and prog[0][0] == BPF_RET | BPF_K and prog[0][3] != 0
