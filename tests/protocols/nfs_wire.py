"""A small XDR encoder for ONC RPC / NFS test messages (RFC 4506, 5531, 1813, 8881).

Independent of the decoder: messages are built field by field from the RFCs' XDR
definitions, so the tests can say what a message holds and check what comes out.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

NFS = 100003
MOUNT = 100005
PORTMAP = 100000


def u32(v: int) -> bytes:
    return struct.pack(">I", v & 0xFFFFFFFF)


def u64(v: int) -> bytes:
    return struct.pack(">Q", v)


def opaque(data: bytes) -> bytes:
    """Variable-length opaque: length, bytes, zero padding to 4."""
    return u32(len(data)) + data + b"\0" * (-len(data) % 4)


def string(s: str) -> bytes:
    return opaque(s.encode())


def words(values: Iterable[int]) -> bytes:
    vals = list(values)
    return u32(len(vals)) + b"".join(u32(v) for v in vals)


# -- authentication (RFC 5531 §8.2, §A) ------------------------------------------------------


def auth_null() -> bytes:
    return u32(0) + opaque(b"")


def auth_sys(uid: int = 1000, gid: int = 1000, gids: Sequence[int] = (1000,), machine: str = "client",
             stamp: int = 12345) -> bytes:  # fmt: skip
    body = u32(stamp) + string(machine) + u32(uid) + u32(gid) + words(gids)
    return u32(1) + opaque(body)


def auth_gss(handle: bytes = b"\x01\x02\x03\x04", seq: int = 1) -> bytes:
    """RPCSEC_GSS credential (RFC 2203 §5): version 1, RPCSEC_GSS_DATA, seq, service none."""
    body = u32(1) + u32(0) + u32(seq) + u32(1) + opaque(handle)
    return u32(6) + opaque(body)


def auth_raw(flavor: int, body: bytes) -> bytes:
    return u32(flavor) + opaque(body)


# -- messages ----------------------------------------------------------------------------------


def call(
    xid: int,
    proc: int,
    args: bytes = b"",
    vers: int = 3,
    prog: int = NFS,
    cred: bytes | None = None,
    verf: bytes | None = None,
    rpcvers: int = 2,
) -> bytes:
    cred = auth_sys() if cred is None else cred
    verf = auth_null() if verf is None else verf
    return u32(xid) + u32(0) + u32(rpcvers) + u32(prog) + u32(vers) + u32(proc) + cred + verf + args


def reply(xid: int, results: bytes = b"", accept: int = 0, verf: bytes | None = None) -> bytes:
    """An accepted reply (RFC 5531 §9): verifier, accept_stat, results."""
    verf = auth_null() if verf is None else verf
    return u32(xid) + u32(1) + u32(0) + verf + u32(accept) + results


def prog_mismatch(xid: int, low: int, high: int) -> bytes:
    return reply(xid, u32(low) + u32(high), accept=2)


def denied_rpc_mismatch(xid: int, low: int = 2, high: int = 2) -> bytes:
    return u32(xid) + u32(1) + u32(1) + u32(0) + u32(low) + u32(high)


def denied_auth(xid: int, stat: int = 1) -> bytes:
    return u32(xid) + u32(1) + u32(1) + u32(1) + u32(stat)


def nfs3_status(status: int, rest: bytes = b"") -> bytes:
    return u32(status) + rest


# -- NFSv4 COMPOUND (RFC 8881 §16.2) -------------------------------------------------------------

OP = {
    "ACCESS": 3, "CLOSE": 4, "COMMIT": 5, "CREATE": 6, "GETATTR": 9, "GETFH": 10, "LOOKUP": 15,
    "LOOKUPP": 16, "NVERIFY": 17, "OPEN": 18, "PUTFH": 22, "PUTPUBFH": 23, "PUTROOTFH": 24,
    "READ": 25, "READDIR": 26, "READLINK": 27, "REMOVE": 28, "RENAME": 29, "RENEW": 30,
    "RESTOREFH": 31, "SAVEFH": 32, "SECINFO": 33, "SETATTR": 34, "VERIFY": 37, "WRITE": 38,
    "EXCHANGE_ID": 42, "CREATE_SESSION": 43, "SEQUENCE": 53, "RECLAIM_COMPLETE": 58,
    "LAYOUTSTATS": 65, "CLONE": 71, "ILLEGAL": 10044,
}  # fmt: skip


def op_putfh(fh: bytes = b"\x01" * 28) -> bytes:
    return u32(OP["PUTFH"]) + opaque(fh)


def op_putrootfh() -> bytes:
    return u32(OP["PUTROOTFH"])


def op_getfh() -> bytes:
    return u32(OP["GETFH"])


def op_getattr(bitmap: Sequence[int] = (0x0010011A, 0x00B0A23A)) -> bytes:
    return u32(OP["GETATTR"]) + words(bitmap)


def op_lookup(name: str) -> bytes:
    return u32(OP["LOOKUP"]) + string(name)


def op_sequence(slot: int = 0, seq: int = 1) -> bytes:
    return u32(OP["SEQUENCE"]) + b"\xab" * 16 + u32(seq) + u32(slot) + u32(0) + u32(0)


def op_verify(bitmap: Sequence[int] = (1,), attrs: bytes = b"\0" * 8, negate: bool = False) -> bytes:
    return u32(OP["NVERIFY" if negate else "VERIFY"]) + words(bitmap) + opaque(attrs)


def op_renew(clientid: int = 7) -> bytes:
    return u32(OP["RENEW"]) + u64(clientid)


def op_secinfo(name: str) -> bytes:
    return u32(OP["SECINFO"]) + string(name)


def op_read(offset: int = 0, count: int = 4096) -> bytes:
    return u32(OP["READ"]) + u32(0) + b"\0" * 12 + u64(offset) + u32(count)


def op_readdir() -> bytes:
    return u32(OP["READDIR"]) + u64(0) + b"\0" * 8 + u32(8192) + u32(32768) + words((0x18091A,))


def op_write(data: bytes, offset: int = 0) -> bytes:
    return u32(OP["WRITE"]) + u32(0) + b"\0" * 12 + u64(offset) + u32(2) + opaque(data)


def op_plain(name: str, args: bytes = b"") -> bytes:
    return u32(OP[name]) + args


def compound(ops: Sequence[bytes], tag: str = "", minor: int = 1, count: int | None = None) -> bytes:
    return string(tag) + u32(minor) + u32(len(ops) if count is None else count) + b"".join(ops)


def compound_reply(status: int, results: Sequence[tuple[int, int]] = (), tag: str = "") -> bytes:
    """COMPOUND4res: status, tag, then (op, status) results without bodies."""
    return u32(status) + string(tag) + u32(len(results)) + b"".join(u32(o) + u32(s) for o, s in results)


# -- record marking (RFC 5531 §11) ---------------------------------------------------------------


def record(msg: bytes, fragments: Sequence[int] | None = None) -> bytes:
    """``msg`` with record marks; ``fragments`` gives the sizes of all fragments but the last."""
    out = b""
    pos = 0
    for size in fragments or ():
        out += u32(size) + msg[pos : pos + size]
        pos += size
    rest = msg[pos:]
    return out + u32(0x80000000 | len(rest)) + rest
