"""ONC RPC v2 (RFC 5531) messages carrying NFSv3 (RFC 1813) and NFSv4.x COMPOUND
(RFC 7530, 8881, 7862), decoded as far as Packetbeat reads them (``protos/nfs``).

Two layers, both sans-IO:

* ``RecordStream`` cuts one TCP direction into RPC records (RFC 5531 §11 record marking:
  a 4-byte header per fragment, the top bit marking the last fragment of a record).
  Fragments of a record are joined. Only the first ``head_limit`` bytes of a record are
  kept (an RPC header and the start of the arguments is all that is read); the rest of
  a large READ reply or WRITE call is counted and skipped, never buffered. A fragment
  longer than ``max_record`` cannot be honest: the stream stops trusting its framing and
  looks for the next plausible record header (also after lost bytes it cannot step over).
* ``decode`` reads one record (or one UDP datagram) into a ``Call`` or a ``Reply``.

Hand-written rather than built on ``xdrlib`` (deprecated, removed in Python 3.13) or a
generated XDR codec: only a few words of each message are read, at known offsets, with
``struct`` and every length checked against the bytes present, so a lying length costs
nothing. Every problem is a ``RpcError`` with a short reason the plugin counts.
"""

from __future__ import annotations

import struct
from typing import Any

NFS_PROGRAM = 100003
CALL = 0
REPLY = 1
MSG_ACCEPTED = 0
MSG_DENIED = 1
#: RFC 5531 §8.2: ``opaque body<MAX_AUTH_BYTES>`` of credentials and verifiers.
MAX_AUTH_BYTES = 400
LAST_FRAGMENT = 0x80000000
SIZE_MASK = 0x7FFFFFFF

AUTH_NONE, AUTH_SYS, RPCSEC_GSS = 0, 1, 6

_U32 = struct.Struct(">I")
_U32x2 = struct.Struct(">II")
_U32x4 = struct.Struct(">IIII")
_CALL_HEAD = struct.Struct(">IIIIIIII")  # xid, type, rpcvers, prog, vers, proc, cred flavor, cred length
_REPLY_HEAD = struct.Struct(">IIIII")  # xid, type, reply_stat, verf flavor, verf length

# -- names (as Packetbeat writes them) -----------------------------------------------------

ACCEPT_STATUS = ("success", "prog_unavail", "prog_mismatch", "proc_unavail", "garbage_args", "system_err")
#: Denied replies (Packetbeat ignores them; see docs/differences.md nfs/denied-replies).
REJECT_STATUS = ("rpc_mismatch", "auth_error")
AUTH_STAT = {
    0: "AUTH_OK",
    1: "AUTH_BADCRED",
    2: "AUTH_REJECTEDCRED",
    3: "AUTH_BADVERF",
    4: "AUTH_REJECTEDVERF",
    5: "AUTH_TOOWEAK",
    6: "AUTH_INVALIDRESP",
    7: "AUTH_FAILED",
    8: "AUTH_KERB_GENERIC",
    9: "AUTH_TIMEEXPIRE",
    10: "AUTH_TKT_FILE",
    11: "AUTH_DECODE",
    12: "AUTH_NET_ADDR",
    13: "RPCSEC_GSS_CREDPROBLEM",
    14: "RPCSEC_GSS_CTXPROBLEM",
}

NFS3_PROCS = (
    "NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE", "CREATE",
    "MKDIR", "SYM_LINK", "MKNODE", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR",
    "READDIRPLUS", "FSSTAT", "FSINFO", "PATHINFO", "COMMIT",
)  # fmt: skip

NFS4_OPS = {
    3: "ACCESS", 4: "CLOSE", 5: "COMMIT", 6: "CREATE", 7: "DELEGPURGE", 8: "DELEGRETURN",
    9: "GETATTR", 10: "GETFH", 11: "LINK", 12: "LOCK", 13: "LOCKT", 14: "LOCKU", 15: "LOOKUP",
    16: "LOOKUPP", 17: "NVERIFY", 18: "OPEN", 19: "OPENATTR", 20: "OPEN_CONFIRM",
    21: "OPEN_DOWNGRADE", 22: "PUTFH", 23: "PUTPUBFH", 24: "PUTROOTFH", 25: "READ",
    26: "READDIR", 27: "READLINK", 28: "REMOVE", 29: "RENAME", 30: "RENEW", 31: "RESTOREFH",
    32: "SAVEFH", 33: "SECINFO", 34: "SETATTR", 35: "SETCLIENTID", 36: "SETCLIENTID_CONFIRM",
    37: "VERIFY", 38: "WRITE", 39: "RELEASE_LOCKOWNER", 40: "BACKCHANNEL_CTL",
    41: "BIND_CONN_TO_SESSION", 42: "EXCHANGE_ID", 43: "CREATE_SESSION", 44: "DESTROY_SESSION",
    45: "FREE_STATEID", 46: "GET_DIR_DELEGATION", 47: "GETDEVICEINFO", 48: "GETDEVICELIST",
    49: "LAYOUTCOMMIT", 50: "LAYOUTGET", 51: "LAYOUTRETURN", 52: "SECINFO_NO_NAME",
    53: "SEQUENCE", 54: "SET_SSV", 55: "TEST_STATEID", 56: "WANT_DELEGATION",
    57: "DESTROY_CLIENTID", 58: "RECLAIM_COMPLETE", 59: "ALLOCATE", 60: "COPY",
    61: "COPY_NOTIFY", 62: "DEALLOCATE", 63: "IO_ADVISE", 64: "LAYOUTERROR", 65: "LAYOUTSTATS",
    66: "OFFLOAD_CANCEL", 67: "OFFLOAD_STATUS", 68: "READ_PLUS", 69: "SEEK", 70: "WRITE_SAME",
    71: "CLONE", 10044: "ILLEGAL",
}  # fmt: skip

#: Operations that are what a COMPOUND is for (Packetbeat's "first class" operations): the
#: first of them names the compound. The others (PUTFH, GETATTR, SEQUENCE ...) set up or
#: decorate it; when no first-class operation comes, the last operation read names it.
FIRST_CLASS = frozenset(
    {3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 18, 19, 20, 21, 25, 26, 27, 28, 29, 34, 35, 36, 38, 39}
    | set(range(40, 53))
    | set(range(54, 72))
)

NFS_STATUS = {
    0: "NFS_OK", 1: "NFSERR_PERM", 2: "NFSERR_NOENT", 5: "NFSERR_IO", 6: "NFSERR_NXIO",
    13: "NFSERR_ACCESS", 17: "NFSERR_EXIST", 18: "NFSERR_XDEV", 19: "NFSERR_NODEV",
    20: "NFSERR_NOTDIR", 21: "NFSERR_ISDIR", 22: "NFSERR_INVAL", 27: "NFSERR_FBIG",
    28: "NFSERR_NOSPC", 30: "NFSERR_ROFS", 31: "NFSERR_MLINK", 63: "NFSERR_NAMETOOLONG",
    66: "NFSERR_NOTEMPTY", 69: "NFSERR_DQUOT", 70: "NFSERR_STALE", 71: "NFSERR_REMOTE",
    99: "NFSERR_WFLUSH", 10001: "NFSERR_BADHANDLE", 10002: "NFSERR_NOT_SYNC",
    10003: "NFSERR_BAD_COOKIE", 10004: "NFSERR_NOTSUPP", 10005: "NFSERR_TOOSMALL",
    10006: "NFSERR_SERVERFAULT", 10007: "NFSERR_BADTYPE", 10008: "NFSERR_DELAY",
    10009: "NFSERR_SAME", 10010: "NFSERR_DENIED", 10011: "NFSERR_EXPIRED",
    10012: "NFSERR_LOCKED", 10013: "NFSERR_GRACE", 10014: "NFSERR_FHEXPIRED",
    10015: "NFSERR_SHARE_DENIED", 10016: "NFSERR_WRONGSEC", 10017: "NFSERR_CLID_INUSE",
    10018: "NFSERR_RESOURCE", 10019: "NFSERR_MOVED", 10020: "NFSERR_NOFILEHANDLE",
    10021: "NFSERR_MINOR_VERS_MISMATCH", 10022: "NFSERR_STALE_CLIENTID",
    10023: "NFSERR_STALE_STATEID", 10024: "NFSERR_OLD_STATEID", 10025: "NFSERR_BAD_STATEID",
    10026: "NFSERR_BAD_SEQID", 10027: "NFSERR_NOT_SAME", 10028: "NFSERR_LOCK_RANGE",
    10029: "NFSERR_SYMLINK", 10030: "NFSERR_RESTOREFH", 10031: "NFSERR_LEASE_MOVED",
    10032: "NFSERR_ATTRNOTSUPP", 10033: "NFSERR_NO_GRACE", 10034: "NFSERR_RECLAIM_BAD",
    10035: "NFSERR_RECLAIM_CONFLICT", 10036: "NFSERR_BADXDR", 10037: "NFSERR_LOCKS_HELD",
    10038: "NFSERR_OPENMODE", 10039: "NFSERR_BADOWNER", 10040: "NFSERR_BADCHAR",
    10041: "NFSERR_BADNAME", 10042: "NFSERR_BAD_RANGE", 10043: "NFSERR_LOCK_NOTSUPP",
    10044: "NFSERR_OP_ILLEGAL", 10045: "NFSERR_DEADLOCK", 10046: "NFSERR_FILE_OPEN",
    10047: "NFSERR_ADMIN_REVOKED", 10048: "NFSERR_CB_PATH_DOWN", 10049: "NFSERR_BADIOMODE",
    10050: "NFSERR_BADLAYOUT", 10051: "NFSERR_BAD_SESSION_DIGEST", 10052: "NFSERR_BADSESSION",
    10053: "NFSERR_BADSLOT", 10054: "NFSERR_COMPLETE_ALREADY",
    10055: "NFSERR_CONN_NOT_BOUND_TO_SESSION", 10056: "NFSERR_DELEG_ALREADY_WANTED",
    10057: "NFSERR_BACK_CHAN_BUSY", 10058: "NFSERR_LAYOUTTRYLATER",
    10059: "NFSERR_LAYOUTUNAVAILABLE", 10060: "NFSERR_NOMATCHING_LAYOUT",
    10061: "NFSERR_RECALLCONFLICT", 10062: "NFSERR_UNKNOWN_LAYOUTTYPE",
    10063: "NFSERR_SEQ_MISORDERED", 10064: "NFSERR_SEQUENCE_POS", 10065: "NFSERR_REQ_TOO_BIG",
    10066: "NFSERR_REP_TOO_BIG", 10067: "NFSERR_REP_TOO_BIG_TO_CACHE",
    10068: "NFSERR_RETRY_UNCACHED_REP", 10069: "NFSERR_UNSAFE_COMPOUND",
    10070: "NFSERR_TOO_MANY_OPS", 10071: "NFSERR_OP_NOT_IN_SESSION",
    10072: "NFSERR_HASH_ALG_UNSUPP", 10073: "NFSERR_CONN_BINDING_NOT_ENFORCED",
    10074: "NFSERR_CLIENTID_BUSY", 10075: "NFSERR_PNFS_IO_HOLE", 10076: "NFSERR_SEQ_FALSE_RETRY",
    10077: "NFSERR_BAD_HIGH_SLOT", 10078: "NFSERR_DEADSESSION", 10079: "NFSERR_ENCR_ALG_UNSUPP",
    10080: "NFSERR_PNFS_NO_LAYOUT", 10081: "NFSERR_NOT_ONLY_OP", 10082: "NFSERR_WRONG_CRED",
    10083: "NFSERR_WRONG_TYPE", 10084: "NFSERR_DIRDELEG_UNAVAIL", 10085: "NFSERR_REJECT_DELEG",
    10086: "NFSERR_RETURNCONFLICT", 10087: "NFS4ERR_DELEG_REVOKED",
    10088: "NFS4ERR_PARTNER_NOTSUPP", 10089: "NFS4ERR_PARTNER_NO_AUTH",
    10090: "NFS4ERR_UNION_NOTSUPP", 10091: "NFS4ERR_OFFLOAD_DENIED", 10092: "NFS4ERR_WRONG_LFS",
    10093: "NFS4ERR_BADLABEL", 10094: "NFS4ERR_OFFLOAD_NO_REQS",
}  # fmt: skip


def nfs_status_name(code: int) -> str:
    # Packetbeat looks the code up in a Go map: an unknown code gives the empty string.
    return NFS_STATUS.get(code, "")


def auth_flavor_name(flavor: int) -> str:
    if flavor == AUTH_NONE:
        return "none"
    if flavor == AUTH_SYS:
        return "unix"
    if flavor == RPCSEC_GSS:
        return "rpcsec_gss"
    return f"unknown ({flavor})"


class RpcError(Exception):
    """A message that cannot be an RPC message; ``reason`` names the counter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Short(Exception):
    """Internal: the XDR ran past the bytes present."""


# -- messages ------------------------------------------------------------------------------


class Call:
    """An NFS call as Packetbeat reads it (``nfs`` holds the ``nfs.*`` fields)."""

    __slots__ = ("cred", "flavor", "nfs", "opcode", "proc", "size", "vers", "xid")

    def __init__(
        self,
        xid: int,
        vers: int,
        proc: int,
        flavor: int,
        cred: tuple[int, str, int, int, list[int]] | None,
        nfs: dict[str, Any],
        size: int,
    ) -> None:
        self.xid = xid
        self.vers = vers
        self.proc = proc
        self.flavor = flavor
        #: AUTH_SYS: (stamp, machine name, uid, gid, gids).
        self.cred = cred
        self.nfs = nfs
        self.opcode: str = nfs.get("opcode", "")
        self.size = size


class OtherCall:
    """A call to another RPC program (portmapper, mount, NLM, NFSv4 callbacks ...)."""

    __slots__ = ("prog", "xid")

    def __init__(self, xid: int, prog: int) -> None:
        self.xid = xid
        self.prog = prog


class Reply:
    __slots__ = ("accept", "body", "detail", "reject", "size", "xid")

    def __init__(self, xid: int, size: int) -> None:
        self.xid = xid
        self.size = size
        #: accept_stat of an accepted reply, else None.
        self.accept: int | None = None
        #: reject_stat of a denied reply, else None.
        self.reject: int | None = None
        #: The first word of the procedure's results (its status), when present.
        self.body: int | None = None
        #: Versions supported (PROG_MISMATCH, RPC_MISMATCH) or the auth_stat (AUTH_ERROR).
        self.detail: tuple[int, ...] = ()


Message = Call | OtherCall | Reply


# -- decoding ------------------------------------------------------------------------------


def decode(data: bytes | bytearray | memoryview, size: int, truncated: bool = False) -> Message:
    """One RPC message: ``data`` holds its first bytes (all of them unless ``truncated``),
    ``size`` is its length on the wire (record payload or datagram)."""
    n = len(data)
    if n < 12:
        raise RpcError("short_message")
    xid, mtype = _U32x2.unpack_from(data, 0)
    if mtype == CALL:
        return _call(data, n, xid, size, truncated)
    if mtype == REPLY:
        return _reply(data, n, xid, size)
    raise RpcError("bad_message_type")


def _call(data: Any, n: int, xid: int, size: int, truncated: bool) -> Call | OtherCall:
    if n < 24:
        raise RpcError("short_call")
    _, _, _rpcvers, prog, vers, proc = struct.unpack_from(">6I", data, 0)
    if prog != NFS_PROGRAM:
        return OtherCall(xid, prog)
    if n < 32:
        raise RpcError("short_call")
    flavor, clen = _U32x2.unpack_from(data, 24)
    if clen > MAX_AUTH_BYTES:
        raise RpcError("auth_too_long")
    pos = 32 + clen
    if pos > n:
        raise RpcError("short_call")
    cred = None
    if flavor == AUTH_SYS:
        cred = _auth_sys(data, 32, pos)
    pos = (pos + 3) & ~3
    if pos + 8 > n:
        raise RpcError("short_call")
    _vflavor, vlen = _U32x2.unpack_from(data, pos)
    if vlen > MAX_AUTH_BYTES:
        raise RpcError("auth_too_long")
    pos += 8 + ((vlen + 3) & ~3)
    if pos > n:
        raise RpcError("short_call")
    nfs: dict[str, Any] = {"version": vers}
    if vers == 3:
        nfs["opcode"] = NFS3_PROCS[proc] if proc < len(NFS3_PROCS) else "ILLEGAL"
    elif vers == 4:
        if proc == 0:
            nfs["opcode"] = "NULL"
        elif proc == 1:
            _compound(data, n, pos, nfs, truncated)
    return Call(xid, vers, proc, flavor, cred, nfs, size)


def _auth_sys(data: Any, pos: int, end: int) -> tuple[int, str, int, int, list[int]]:
    """RFC 5531 §A.1 ``authsys_parms``, read inside the credential body only."""
    if pos + 8 > end:
        raise RpcError("bad_auth_sys")
    stamp, mlen = _U32x2.unpack_from(data, pos)
    pos += 8
    if mlen > end - pos:
        raise RpcError("bad_auth_sys")
    machine = bytes(data[pos : pos + mlen]).decode("utf-8", "replace")
    pos += (mlen + 3) & ~3
    if pos + 12 > end:
        raise RpcError("bad_auth_sys")
    uid, gid, count = struct.unpack_from(">III", data, pos)
    pos += 12
    if count > (end - pos) >> 2:
        raise RpcError("bad_auth_sys")
    gids = list(struct.unpack_from(f">{count}I", data, pos)) if count else []
    return stamp, machine, uid, gid, gids


def _compound(data: Any, n: int, pos: int, nfs: dict[str, Any], truncated: bool) -> None:
    """COMPOUND4args: tag, minor version, then the operations until the main one."""
    try:
        (tlen,) = _U32.unpack_from(data, pos)
        pos += 4
        if tlen > n - pos:
            raise _Short
        tag = bytes(data[pos : pos + tlen]).decode("utf-8", "replace")
        pos += (tlen + 3) & ~3
        nfs["tag"] = tag
        (minor,) = _U32.unpack_from(data, pos)
        pos += 4
        nfs["minor_version"] = minor
        nfs["opcode"] = _main_op(data, n, pos)
    except (_Short, struct.error):
        if not truncated:
            raise RpcError("short_compound") from None
        # The arguments go on past the bytes kept of a very large record: the walk stops.
        nfs.setdefault("opcode", "ILLEGAL")


class _Walk:
    __slots__ = ("name",)

    def __init__(self) -> None:
        self.name = "ILLEGAL"


def _main_op(data: Any, n: int, pos: int) -> str:
    """Packetbeat's ``findV4MainOpcode``: walk the operations, skipping the arguments of
    those it knows how to skip, until a first-class operation; an operation number it does
    not know ends the walk with ``ILLEGAL``. Arguments of other operations are not skipped
    (their words are read as the next operation numbers), as in Packetbeat.

    Every step reads at least one word, so the walk is linear in the bytes present, whatever
    the operation count claims.
    """
    (count,) = _U32.unpack_from(data, pos)
    pos += 4
    name = "ILLEGAL"
    unpack = _U32.unpack_from
    for _ in range(count):
        if pos + 4 > n:
            # The operations claimed are not there: Packetbeat would read past the message.
            raise _Short
        (op,) = unpack(data, pos)
        pos += 4
        opname = NFS4_OPS.get(op)
        if opname is None:
            return "ILLEGAL"
        name = opname
        if op in FIRST_CLASS:
            return name
        pos = _skip_args(data, n, op, pos)
    return name


def _opaque(data: Any, n: int, pos: int) -> int:
    if pos + 4 > n:
        raise _Short
    (ln,) = _U32.unpack_from(data, pos)
    pos += 4 + ((ln + 3) & ~3)
    if pos > n:
        raise _Short
    return pos


def _skip_args(data: Any, n: int, op: int, pos: int) -> int:
    """Arguments of the operations Packetbeat's ``eatData`` skips (RFC 8881 §16, §18)."""
    if op == 9:  # GETATTR: bitmap4
        return _opaque_words(data, n, pos)
    if op in (15, 22, 33):  # LOOKUP component, PUTFH handle, SECINFO name
        return _opaque(data, n, pos)
    if op in (17, 37):  # NVERIFY, VERIFY: fattr4 (bitmap4, attrlist4)
        return _opaque(data, n, _opaque_words(data, n, pos))
    if op == 30:  # RENEW: clientid4
        pos += 8
    elif op == 53:  # SEQUENCE: sessionid, sequenceid, slotid, highest slotid, cachethis
        pos += 32
    if pos > n:
        raise _Short
    return pos


def _opaque_words(data: Any, n: int, pos: int) -> int:
    """A variable-length array of 32-bit words (bitmap4)."""
    if pos + 4 > n:
        raise _Short
    (count,) = _U32.unpack_from(data, pos)
    pos += 4
    if count > (n - pos) >> 2:
        raise _Short
    return pos + 4 * count


def _reply(data: Any, n: int, xid: int, size: int) -> Reply:
    r = Reply(xid, size)
    (stat,) = _U32.unpack_from(data, 8)
    if stat == MSG_ACCEPTED:
        if n < 20:
            raise RpcError("short_reply")
        _, _, _, _vflavor, vlen = _REPLY_HEAD.unpack_from(data, 0)
        if vlen > MAX_AUTH_BYTES:
            raise RpcError("auth_too_long")
        pos = 20 + ((vlen + 3) & ~3)
        if pos + 4 > n:
            raise RpcError("short_reply")
        (accept,) = _U32.unpack_from(data, pos)
        if accept >= len(ACCEPT_STATUS):
            raise RpcError("bad_accept_status")
        pos += 4
        r.accept = accept
        if accept == 0:
            if pos + 4 <= n:
                (r.body,) = _U32.unpack_from(data, pos)
        elif accept == 2 and pos + 8 <= n:  # PROG_MISMATCH: lowest and highest version
            r.detail = _U32x2.unpack_from(data, pos)
        return r
    if stat == MSG_DENIED:
        if n < 16:
            raise RpcError("short_reply")
        (reject,) = _U32.unpack_from(data, 12)
        if reject == 0:  # RPC_MISMATCH: lowest and highest RPC version supported
            if n < 24:
                raise RpcError("short_reply")
            r.detail = _U32x2.unpack_from(data, 16)
        elif reject == 1:  # AUTH_ERROR
            if n < 20:
                raise RpcError("short_reply")
            r.detail = _U32.unpack_from(data, 16)
        else:
            raise RpcError("bad_reject_status")
        r.reject = reject
        return r
    raise RpcError("bad_reply_status")


# -- record marking (TCP) ------------------------------------------------------------------


def plausible_header(data: Any, pos: int) -> int:
    """Is there a record marker at ``pos`` followed by the start of an RPC message? Returns
    the number of bytes needed to tell (0 when enough were there and the answer is no), or
    -1 for yes. Used to find the framing again after lost bytes."""
    n = len(data)
    if n - pos < 24:
        return 24
    marker, _xid, mtype, word = _U32x4.unpack_from(data, pos)
    size = marker & SIZE_MASK
    if mtype == CALL:
        if word != 2 or size < 40:
            return 0
        (prog,) = _U32.unpack_from(data, pos + 16)
        return -1 if prog == NFS_PROGRAM else 0
    if mtype == REPLY:
        if size < 16 or word > MSG_DENIED:
            return 0
        (nxt,) = _U32.unpack_from(data, pos + 16)
        if word == MSG_ACCEPTED:
            return -1 if nxt <= 6 and size >= 24 else 0
        return -1 if nxt <= 1 else 0
    return 0


_CALL_WORDS = b"\x00\x00\x00\x00\x00\x00\x00\x02"
_REPLY_WORDS = b"\x00\x00\x00\x01\x00\x00\x00"


class Record:
    """A complete record: its first bytes, its length, whether bytes were left out."""

    __slots__ = ("data", "size", "truncated")

    def __init__(self, data: bytes, size: int, truncated: bool) -> None:
        self.data = data
        self.size = size
        self.truncated = truncated


class RecordStream:
    """One direction of an RPC-over-TCP connection → records.

    States: between fragments (``frag_left == 0``; ``marker`` holds a partial marker), in a
    fragment (``frag_left`` bytes to go), or lost (``lost``: looking for a header). Memory is
    bounded by ``head_limit`` per record plus 24 bytes while lost.
    """

    __slots__ = (
        "damaged",
        "frag_left",
        "head",
        "head_limit",
        "last",
        "lost",
        "marker",
        "max_record",
        "record_size",
        "stats",
    )

    def __init__(self, stats: Any, head_limit: int, max_record: int) -> None:
        self.stats = stats
        self.head_limit = head_limit
        self.max_record = max_record
        self.marker = b""
        self.frag_left = 0
        self.last = False
        self.head = bytearray()
        self.record_size = 0
        self.damaged = False
        #: Bytes kept while looking for the framing again (None: not lost).
        self.lost: bytes | None = None

    @property
    def pending(self) -> int:
        """Bytes held (for the bounded-state checks)."""
        return len(self.head) + len(self.marker) + (len(self.lost) if self.lost is not None else 0)

    @property
    def in_record(self) -> bool:
        return self.frag_left > 0 or self.record_size > 0 or bool(self.marker)

    def feed(self, data: bytes) -> list[Record]:
        out: list[Record] = []
        if self.lost:
            data = self.lost + data
        n = len(data)
        pos = 0
        seen: dict[bytes, int] = {}
        while pos < n:
            if self.lost is not None:
                p = self._find(data, pos, seen)
                if p < 0:
                    self.lost = data[max(pos, n - 23) :]
                    return out
                self.lost = None
                pos = p
            pos = self._frame(data, pos, out)
        return out

    def _frame(self, data: bytes, pos: int, out: list[Record]) -> int:
        """Cut records from ``data[pos:]``; returns where it stopped (the end, or just past
        a marker that cannot be honest, the stream then being lost)."""
        n = len(data)
        head_limit = self.head_limit
        while pos < n:
            if self.frag_left == 0:
                if self.marker or n - pos < 4:
                    take = 4 - len(self.marker)
                    self.marker += data[pos : pos + take]
                    pos += take
                    if len(self.marker) < 4:
                        break
                    (marker,) = _U32.unpack(self.marker)
                    self.marker = b""
                else:
                    (marker,) = _U32.unpack_from(data, pos)
                    pos += 4
                    # Fast path: a whole single-fragment record in this chunk.
                    size = marker & SIZE_MASK
                    if (
                        marker & LAST_FRAGMENT
                        and not self.record_size
                        and size <= n - pos
                        and 0 < size <= head_limit
                    ):
                        out.append(Record(data[pos : pos + size], size, False))
                        pos += size
                        continue
                size = marker & SIZE_MASK
                self.last = bool(marker & LAST_FRAGMENT)
                if self.record_size + size > self.max_record:
                    # No honest record is this long: the framing cannot be trusted.
                    self.stats.incr("nfs.oversized_records")
                    self._lose()
                    return pos
                self.frag_left = size
                if size == 0:
                    if self.last:
                        self._finish(out)
                    continue
            take = min(self.frag_left, n - pos)
            room = head_limit - len(self.head)
            if room > 0:
                self.head += data[pos : pos + min(take, room)]
            self.record_size += take
            self.frag_left -= take
            pos += take
            if not self.frag_left and self.last:
                self._finish(out)
        return n

    def _finish(self, out: list[Record]) -> None:
        size = self.record_size
        if self.damaged:
            self.stats.incr("nfs.damaged_records")
        elif size == 0:
            self.stats.incr("nfs.empty_records")
        else:
            out.append(Record(bytes(self.head), size, size > len(self.head)))
        self.head = bytearray()
        self.record_size = 0
        self.damaged = False
        self.last = False

    def _lose(self) -> None:
        if self.record_size or self.frag_left:
            self.stats.incr("nfs.damaged_records")
        self.head = bytearray()
        self.record_size = 0
        self.frag_left = 0
        self.marker = b""
        self.damaged = False
        self.last = False
        self.lost = b""

    def _find(self, data: bytes, start: int, seen: dict[bytes, int]) -> int:
        """The first position at or after ``start`` where a record plausibly starts, or -1.

        A call's marker is followed by the xid, then the words 0 (CALL) and 2 (RPC
        version); a reply's by the xid, 1 (REPLY) and 0 or 1: ``find`` locates those
        words, and the few candidates are checked. ``seen`` remembers, per pattern, the
        next occurrence found in this buffer, so that no byte is scanned twice.
        """
        n = len(data)
        best = -1
        for pattern in _CALL_WORDS, _REPLY_WORDS:
            i = seen.get(pattern, -1)
            lo = start + 8
            while True:
                if i < lo:
                    i = data.find(pattern, lo)
                    seen[pattern] = i if i >= 0 else n
                if i < 0 or i >= n or (best >= 0 and i - 8 >= best):
                    break
                p = i - 8
                verdict = plausible_header(data, p)
                if verdict == -1:
                    best = p
                    break
                if verdict > 0:
                    break  # too close to the end to tell: kept for the next chunk
                lo = i + 1
        return best

    def gap(self, nbytes: int) -> None:
        """``nbytes`` were lost in this direction."""
        if self.lost is not None:
            self.lost = b""
            return
        if 0 < nbytes <= self.frag_left:
            # Inside the current fragment: the record is damaged but its end is known.
            self.frag_left -= nbytes
            self.record_size += nbytes
            self.damaged = True
            if not self.frag_left and self.last:
                self._finish([])
            return
        self.stats.incr("nfs.lost_sync")
        self._lose()
