"""NFS transaction → event dict (Packetbeat ``protos/nfs/request_handler.go`` ``handleCall``,
``handleReply``, ``handleExpiredPacket``).

Packetbeat's renderings are kept: ``status`` is ``OK`` for every answered call whatever
the RPC or NFS outcome (a failed RPC sets ``event.outcome: failure``), ``NO_REPLY`` for a
call that expired unanswered; ``host.hostname``, ``user.id`` and ``group.id`` come from
AUTH_SYS credentials and are written as dotted top-level keys, as Packetbeat writes them;
the machine name also becomes ``source.domain`` (the caller's IP stands in for an empty
one in ``rpc.cred.machinename``); zeros and empty strings are kept (``group.id: 0``,
``nfs.tag: ""``, ``rpc.cred.gids: []``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.common.event import add_notes, transaction_event
from protocols.nfs.parser import (
    ACCEPT_STATUS,
    AUTH_STAT,
    REJECT_STATUS,
    auth_flavor_name,
    nfs_status_name,
)
from protocols.nfs.transactions import NfsTransaction

if TYPE_CHECKING:
    from protocols.nfs import NfsPlugin

_PROTOCOL = {3: "nfsv3", 4: "nfsv4"}
NO_REPLY = "NO_REPLY"


def to_event(plugin: NfsPlugin, txn: NfsTransaction) -> dict[str, Any]:
    call = txn.call
    reply = txn.reply
    evt = transaction_event(
        "nfs",
        txn.transport,
        "OK" if reply is not None else NO_REPLY,
        txn.ts,
        txn.src,
        txn.dst,
        start=txn.ts,
        end=txn.reply_ts if reply is not None else None,
        src_bytes=call.size,
        dst_bytes=reply.size if reply is not None else 0,
    )
    evt["network"]["protocol"] = _PROTOCOL.get(call.vers, "nfs")
    event = evt["event"]
    event["dataset"] = "nfs"
    if call.opcode:
        event["action"] = "nfs." + call.opcode
    rpc: dict[str, Any] = {"xid": f"{call.xid:08x}", "auth_flavor": auth_flavor_name(call.flavor)}
    cred = call.cred
    if cred is not None:
        stamp, machine, uid, gid, gids = cred
        if machine:
            evt["source"]["domain"] = machine
        else:
            machine = txn.src[0]
        rpc["cred"] = {"stamp": stamp, "machinename": machine, "uid": uid, "gid": gid, "gids": gids}
        evt["host.hostname"] = machine
        evt["user.id"] = uid
        evt["group.id"] = gid
    nfs = dict(call.nfs)
    if reply is not None:
        if reply.accept is not None:
            rpc["status"] = ACCEPT_STATUS[reply.accept]
            if reply.accept == 0:
                if call.proc == 0:
                    nfs["status"] = "NFS_OK"
                elif reply.body is not None:
                    nfs["status"] = nfs_status_name(reply.body)
                else:
                    plugin.stats.incr("nfs.short_replies")
            else:
                event["outcome"] = "failure"
        elif reply.reject is not None:
            rpc["status"] = REJECT_STATUS[reply.reject]
            event["outcome"] = "failure"
            if reply.reject == 1 and reply.detail:
                add_notes(evt, [AUTH_STAT.get(reply.detail[0], f"auth_stat {reply.detail[0]}")])
            elif reply.reject == 0 and len(reply.detail) == 2:
                add_notes(evt, [f"RPC version mismatch: server supports {reply.detail[0]}-{reply.detail[1]}"])
    evt["rpc"] = rpc
    evt["nfs"] = nfs
    return evt
