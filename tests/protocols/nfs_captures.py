"""Synthetic NFS captures: what the NFS tests decode and what real Packetbeat 9.3 was run on.

``packetbeat_capture()`` holds only traffic Packetbeat decodes the way wirebeat does (one
fragment per record, every call answered, TCP): NFSv3 procedures, NFSv4.0/4.1/4.2
COMPOUNDs whose main operation is found at every place Packetbeat's walk can find it, each
auth flavour and accept status, calls to other programs, retransmissions, pipelining and
out-of-order replies. ``EXPECTED`` lists, per xid, what Packetbeat emitted for it (run
``scripts/compare-packetbeat -v --ports nfs=2049`` on the written capture to see it again).

``beyond_capture()`` holds what wirebeat decodes beyond Packetbeat (docs/differences.md
``## NFS``): records in several fragments, denied replies, NFS over UDP and a call never
answered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.synth import Conversation, Frame, interleave, ip_frame, udp_datagram
from capture.pcapwriter import PcapWriter
from tests.protocols.nfs_wire import (
    MOUNT,
    OP,
    PORTMAP,
    auth_gss,
    auth_null,
    auth_raw,
    auth_sys,
    call,
    compound,
    compound_reply,
    denied_auth,
    denied_rpc_mismatch,
    nfs3_status,
    op_getattr,
    op_getfh,
    op_lookup,
    op_plain,
    op_putfh,
    op_putrootfh,
    op_read,
    op_readdir,
    op_renew,
    op_secinfo,
    op_sequence,
    op_verify,
    op_write,
    prog_mismatch,
    record,
    reply,
    u32,
)

CLIENT = ("10.20.0.5", 801)
SERVER = ("10.20.0.1", 2049)
T0 = 1_700_000_000_000_000_000
SENTINEL_XID = 0x5E5E5E5E

#: xid → (call, reply or None). Calls are NFS unless another program is named.
Exchange = tuple[int, bytes, bytes | None]


def v3_exchanges() -> list[Exchange]:
    big_read = nfs3_status(0, b"\1" * 84 + u32(65536) + u32(1) + u32(65536) + b"r" * 65536)
    big_write = u32(24) + b"\2" * 32 + u32(0) + u32(100_000) + u32(2) + u32(100_000) + b"w" * 100_000
    return [
        (0x1001, call(0x1001, 0, cred=auth_null()), reply(0x1001)),
        (
            0x1002,
            call(0x1002, 1, b"\1" * 36, cred=auth_sys(1000, 100, (100, 4, 24, 27), "workstation")),
            reply(0x1002, nfs3_status(0, b"\0" * 84)),
        ),
        (0x1003, call(0x1003, 3, b"\1" * 36 + b"\0\0\0\4miss"), reply(0x1003, nfs3_status(2, b"\0\0\0\0"))),
        (0x1004, call(0x1004, 6, b"\1" * 36 + b"\0" * 12), reply(0x1004, big_read)),
        (0x1005, call(0x1005, 7, big_write), reply(0x1005, nfs3_status(0, b"\0" * 40))),
        (0x1006, call(0x1006, 4, b"\1" * 36 + u32(0x3F)), reply(0x1006, nfs3_status(13))),
        (0x1007, call(0x1007, 22), reply(0x1007, accept=3)),
        (0x1008, call(0x1008, 8, cred=auth_sys(0, 0, (), "")), reply(0x1008, accept=4)),
        (0x1009, call(0x1009, 12, cred=auth_gss()), reply(0x1009, accept=5)),
        (0x100A, call(0x100A, 1, cred=auth_raw(3, b"\0" * 12)), reply(0x100A, accept=1)),
        (0x100B, call(0x100B, 1, vers=5), prog_mismatch(0x100B, 2, 4)),
        (0x100C, call(0x100C, 14, cred=auth_sys(65534, 65534, list(range(16)), "x" * 60)), reply(0x100C, nfs3_status(18))),
        (0x100D, call(0x100D, 17), reply(0x100D, nfs3_status(10004), verf=auth_raw(1, b"v" * 20))),
        (0x100E, call(0x100E, 1, vers=2), reply(0x100E, nfs3_status(70))),
        (0x100F, call(0x100F, 21), reply(0x100F, nfs3_status(12345))),
        (0x1010, call(0x1010, 3, prog=PORTMAP, vers=2), reply(0x1010, u32(2049))),
        (0x1011, call(0x1011, 1, prog=MOUNT, vers=3), reply(0x1011, u32(0))),
    ]  # fmt: skip


def v4_exchanges() -> list[Exchange]:
    seq = op_sequence()
    fh = op_putfh()
    ga = op_getattr()
    cases: list[tuple[int, bytes, int, int]] = [
        (0x2001, b"", 0, 0),  # NULL
        (0x2002, compound([seq, fh, ga], "getattr", 1), 0, 0),
        (0x2003, compound([op_putrootfh(), op_getfh(), ga], "", 0), 0, 0),
        (0x2004, compound([seq, fh, op_plain("OPEN", b"\0" * 40), op_getfh(), ga], "open", 1), 10008, 0),
        (0x2005, compound([fh, op_lookup("a-name"), op_getfh(), ga], "lookup", 0), 2, 0),
        (0x2006, compound([seq, fh, op_plain("SAVEFH"), fh, op_plain("RENAME", b"\0" * 16)], "", 1), 0, 0),
        (0x2007, compound([fh, op_verify(), op_verify(negate=True), op_secinfo("x"), ga], "", 0), 0, 0),
        (0x2008, compound([op_renew()], "renew", 0), 10022, 0),
        (0x2009, compound([fh, u32(999) + b"\0" * 8, ga], "", 1), 10044, 0),
        (0x200A, compound([fh, op_plain("ILLEGAL"), u32(OP["READ"]) + b"\0" * 32], "", 1), 0, 0),
        (0x200B, compound([seq, fh, op_read()], "r\u00e9ad", 2), 0, 0),
        (0x200C, compound([seq, fh, op_write(b"d" * 3000)], "", 2), 0, 0),
        (0x200D, compound([seq, fh, op_readdir(), ga], "readdir", 1), 0, 0),
        (0x200E, compound([seq, op_plain("RECLAIM_COMPLETE", u32(0))], "", 1), 0, 0),
        (0x200F, compound([op_plain("EXCHANGE_ID", b"\0" * 60)], "", 1), 0, 0),
        (0x2010, compound([seq, fh, op_plain("LOOKUPP"), op_getfh()], "", 1), 12345, 0),
        (0x2011, compound([seq, fh, fh, fh, fh, ga, ga, op_plain("CLONE", b"\0" * 56)], "", 2), 10004, 0),
        (0x2012, compound([], "empty", 1), 0, 0),
        (0x2013, b"\0" * 8, 0, 2),  # procedure 2 does not exist in NFSv4
    ]
    out: list[Exchange] = []
    for xid, args, status, proc in cases:
        proc = proc or (1 if args else 0)
        results = compound_reply(status) if proc == 1 else u32(status)
        out.append((xid, call(xid, proc, args, vers=4), reply(xid, results)))
    return out


def _conversation(client: tuple[str, int], ts: int) -> Conversation:
    return Conversation(client, SERVER, ts=ts).handshake()


def packetbeat_capture() -> list[Frame]:
    convs: list[list[Frame]] = []
    # One exchange after the other on one connection per version.
    for n, exchanges in enumerate((v3_exchanges(), v4_exchanges())):
        conv = _conversation((CLIENT[0], CLIENT[1] + n), T0 + n * 1_000_000_000)
        for _xid, c, r in exchanges:
            conv.send(0, record(c))
            if r is not None:
                conv.send(1, record(r))
        conv.close()
        convs.append(conv.frames)
    # Pipelining: three calls in one segment, replies out of order (two in one segment),
    # a retransmission of the second call, and a reply nobody asked for.
    conv = _conversation(("10.20.0.6", 700), T0 + 3_000_000_000)
    c1, c2, c3 = (call(x, 1, b"\1" * 36) for x in (0x3001, 0x3002, 0x3003))
    conv.send(0, record(c1) + record(c2) + record(c3))
    conv.send(1, record(reply(0x3003, nfs3_status(0))) + record(reply(0x3001, nfs3_status(2))))
    conv.send(0, record(c2))
    conv.send(1, record(reply(0x3002, nfs3_status(0))))
    conv.send(1, record(reply(0x3999, nfs3_status(0))))
    conv.close()
    convs.append(conv.frames)
    # The sentinel: Packetbeat in file mode may exit before it has written the last events.
    conv = _conversation(("10.20.0.7", 600), T0 + 9_000_000_000)
    conv.send(0, record(call(SENTINEL_XID, 0, vers=3)))
    conv.send(1, record(reply(SENTINEL_XID)))
    conv.close()
    convs.append(conv.frames)
    return list(interleave(convs))


def beyond_capture() -> list[Frame]:
    """Traffic wirebeat decodes beyond (or otherwise than) Packetbeat."""
    convs: list[list[Frame]] = []
    conv = _conversation(("10.20.1.5", 900), T0)
    # A call in three fragments (the second empty), a reply in two.
    c = call(0x4001, 1, b"\1" * 36)
    conv.send(0, record(c, [20, 0]))
    conv.send(1, record(reply(0x4001, nfs3_status(0, b"\0" * 84)), [12]))
    # Denied replies.
    conv.send(0, record(call(0x4002, 1, b"\1" * 36)))
    conv.send(1, record(denied_auth(0x4002, 5)))
    conv.send(0, record(call(0x4003, 1, b"\1" * 36, rpcvers=3)))
    conv.send(1, record(denied_rpc_mismatch(0x4003, 2, 2)))
    # A call never answered.
    conv.send(0, record(call(0x4004, 3, b"\1" * 36 + b"\0\0\0\1x\0\0\0")))
    conv.close()
    convs.append(conv.frames)
    # NFSv3 over UDP.
    udp: list[Frame] = []
    ts = T0 + 500_000_000
    cl, sv = ("10.20.1.6", 1011), SERVER
    for xid, proc, status in ((0x5001, 3, 2), (0x5002, 1, 0), (0x5003, 6, 0)):
        msg = call(xid, proc, b"\1" * 36)
        udp.append((ts, ip_frame(cl[0], sv[0], 17, udp_datagram(cl[1], sv[1], msg))))
        rep = reply(xid, nfs3_status(status, b"\0" * 84 if status == 0 else b""))
        udp.append((ts + 200_000, ip_frame(sv[0], cl[0], 17, udp_datagram(sv[1], cl[1], rep))))
        ts += 1_000_000
    convs.append(udp)
    return list(interleave(convs))


def write(path: Path, frames: list[Frame]) -> Path:
    with PcapWriter(str(path), 1) as w:
        w.write_all(frames)
    return path


def events_by_xid(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["rpc"]["xid"]: e for e in events}
