"""Live NFSv3: our go-nfs server (tests/nfs/server) and real libnfs clients — libnfs-utils'
nfs-ls, nfs-cat, nfs-cp and tests/nfs/nfs-op.c — on 127.0.0.1, captured with tcpdump.

The workload mounts (MOUNT protocol on the same port, which wirebeat leaves out as
Packetbeat does), lists directories, reads a small and a 200 KB file, creates and writes
files, makes and removes a directory, renames, changes a mode, and fails on purpose: a
missing name (NFS3ERR_NOENT), writes and a remove on the read-only export
(NFS3ERR_ROFS), a SETATTR the read-only export cannot do.

The server logs every RPC message it receives and sends, read off its own socket by its own
record reader: each NFS call with its xid, program, version and procedure, each reply with
its accept status and NFS status, and their sizes. Every event must be one of those calls,
with the procedure's name, the reply's statuses and both sizes; every NFS call of the log
must have its event, in the order the server got them; the MOUNT calls must be counted and
left out. The clients' own reports (exit codes, nfs-op's per-operation result) are checked
against the statuses too.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from tests.helpers import make_decoder, need_tool
from tests.integration.capture import live_capture
from tests.integration.nfs_server import NfsServer, nfs_op_binary, nfs_server

pytestmark = pytest.mark.integration

#: RFC 1813 §3 procedure numbers, with the names Packetbeat gives them.
PROCEDURES = {
    0: "NULL", 1: "GETATTR", 2: "SETATTR", 3: "LOOKUP", 4: "ACCESS", 5: "READLINK", 6: "READ",
    7: "WRITE", 8: "CREATE", 9: "MKDIR", 10: "SYM_LINK", 11: "MKNODE", 12: "REMOVE", 13: "RMDIR",
    14: "RENAME", 15: "LINK", 16: "READDIR", 17: "READDIRPLUS", 18: "FSSTAT", 19: "FSINFO",
    20: "PATHINFO", 21: "COMMIT",
}  # fmt: skip
#: RFC 1813 §2.6 nfsstat3 values this workload can produce, named as Packetbeat names them.
STATUSES = {
    0: "NFS_OK", 1: "NFSERR_PERM", 2: "NFSERR_NOENT", 5: "NFSERR_IO", 13: "NFSERR_ACCESS",
    17: "NFSERR_EXIST", 20: "NFSERR_NOTDIR", 21: "NFSERR_ISDIR", 22: "NFSERR_INVAL",
    30: "NFSERR_ROFS", 66: "NFSERR_NOTEMPTY", 70: "NFSERR_STALE", 10001: "NFSERR_BADHANDLE",
    10004: "NFSERR_NOTSUPP",
}  # fmt: skip
ACCEPT = {
    0: "success",
    1: "prog_unavail",
    2: "prog_mismatch",
    3: "proc_unavail",
    4: "garbage_args",
    5: "system_err",
}


def run(args: list[str], check_rc: int | None = 0) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if check_rc is not None:
        assert p.returncode == check_rc, (args, p.returncode, p.stdout, p.stderr)
    return p


def workload(srv: NfsServer, tmp: Path) -> dict[str, Any]:
    """Run the clients; returns what they reported."""
    ls, cat, cp = need_tool("nfs-ls"), need_tool("nfs-cat"), need_tool("nfs-cp")
    op = str(nfs_op_binary())
    out: dict[str, Any] = {}
    out["ls"] = run([ls, srv.url("/data")]).stdout
    out["cat"] = run([cat, srv.url("/data/hello.txt")]).stdout
    out["cat_missing"] = run([cat, srv.url("/data/missing.txt")], check_rc=None)
    local = tmp / "local.txt"
    local.write_text("written over NFS\n")
    run([cp, str(local), srv.url("/data/up.txt")])
    run([cp, srv.url("/data/big.bin"), str(tmp / "big.bin")])
    out["cp_ro"] = run([cp, str(local), srv.url("/ro/up.txt")], check_rc=None)
    ops = "mkdir /d write /d/f hello rename /d/f /d/g stat /d/g read /d/g unlink /d/g rmdir /d"
    ops += " stat /nope chmod /hello.txt 600 ls /sub"
    out["op"] = run([op, srv.url("/data"), *ops.split()]).stdout
    out["op_ro"] = run(
        [op, srv.url("/ro"), "unlink", "/r.txt", "write", "/w", "x", "chmod", "/r.txt", "600"]
    ).stdout
    out["big"] = (tmp / "big.bin").read_bytes()
    return out


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("nfs-live")
    pcap = tmp / "nfs.pcap"
    with nfs_server() as srv:
        with live_capture(pcap, srv.port, protocol="nfs"):
            client = workload(srv, tmp)
        messages = srv.messages()
        data_dir = srv.root / "data"
        tree = sorted(p.name for p in data_dir.iterdir())
        mode = (data_dir / "hello.txt").stat().st_mode & 0o777
        port = srv.port
    dec = make_decoder({"nfs": {"ports": [port]}})
    events: list[dict[str, Any]] = []
    for ts, lt, frame, _wl in CaptureFile(str(pcap)):
        events += dec.feed(ts, lt, frame)
    events += dec.flush()
    return {
        "events": events,
        "stats": dict(dec.stats),
        "messages": messages,
        "client": client,
        "tree": tree,
        "mode": mode,
        "port": port,
    }


def _calls(messages: list[dict[str, Any]], prog: int) -> list[dict[str, Any]]:
    return [m for m in messages if m["dir"] == "call" and m["prog"] == prog]


def test_clients_did_what_was_asked(session: dict[str, Any]) -> None:
    c = session["client"]
    assert "hello.txt" in c["ls"] and "sub" in c["ls"] and "big.bin" in c["ls"]
    assert c["cat"] == "hello\n"
    assert c["cat_missing"].returncode != 0 and "NFS3ERR_NOENT" in c["cat_missing"].stderr
    assert c["cp_ro"].returncode != 0 and "NFS3ERR_ROFS" in c["cp_ro"].stderr
    assert c["big"] == bytes(range(256)) * 800
    lines = c["op"].splitlines()
    assert "stat /nope rc=-2 " in "\n".join(lines) + " "
    assert all("rc=-" not in ln for ln in lines if not ln.startswith("stat /nope"))
    ro = c["op_ro"]
    assert "unlink /r.txt rc=-30" in ro and "write /w rc=-30" in ro
    assert session["tree"] == ["big.bin", "hello.txt", "sub", "up.txt"]
    assert session["mode"] == 0o600


def test_every_nfs_call_is_one_event(session: dict[str, Any]) -> None:
    messages = session["messages"]
    replies = {(m["client_port"], m["xid"]): m for m in messages if m["dir"] == "reply"}
    calls = _calls(messages, 100003)
    assert len(calls) >= 40
    events = session["events"]
    assert len(events) == len(calls), Counter(e["nfs"].get("opcode") for e in events)
    by_key = {(e["source"]["port"], int(e["rpc"]["xid"], 16)): e for e in events}
    assert len(by_key) == len(events)
    uid = os.getuid()
    for call in calls:
        key = (call["client_port"], call["xid"])
        e = by_key[key]
        reply = replies[key]
        assert e["type"] == "nfs" and e["status"] == "OK"
        assert e["network"] == {"transport": "tcp", "protocol": "nfsv3"}
        assert e["source"]["ip"] == e["destination"]["ip"] == "127.0.0.1"
        assert e["destination"]["port"] == session["port"]
        assert e["source"]["bytes"] == call["size"]
        assert e["destination"]["bytes"] == reply["size"]
        assert e["nfs"]["version"] == call["vers"] == 3
        assert e["nfs"]["opcode"] == PROCEDURES[call["proc"]]
        assert e["event"]["action"] == "nfs." + PROCEDURES[call["proc"]]
        assert e["event"]["end"] >= e["event"]["start"]
        assert reply["reply_stat"] == 0
        assert e["rpc"]["status"] == ACCEPT[reply["accept_stat"]]
        if reply["accept_stat"] == 0:
            expected = "NFS_OK" if call["proc"] == 0 else STATUSES[reply["status"]]
            assert e["nfs"]["status"] == expected, (PROCEDURES[call["proc"]], reply)
        else:
            assert "status" not in e["nfs"] and e["event"]["outcome"] == "failure"
        # libnfs sends AUTH_SYS credentials of the user running it.
        assert e["rpc"]["auth_flavor"] == "unix"
        assert e["rpc"]["cred"]["uid"] == e["user.id"] == uid
        assert e["rpc"]["cred"]["gid"] == e["group.id"]


def test_order_per_connection_is_the_servers(session: dict[str, Any]) -> None:
    order: dict[int, list[int]] = {}
    for call in _calls(session["messages"], 100003):
        order.setdefault(call["client_port"], []).append(call["xid"])
    seen: dict[int, list[int]] = {}
    for e in session["events"]:
        seen.setdefault(e["source"]["port"], []).append(int(e["rpc"]["xid"], 16))
    assert seen == order


def test_workload_coverage(session: dict[str, Any]) -> None:
    events = session["events"]
    ops = Counter(e["nfs"]["opcode"] for e in events)
    for op in ("NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READ", "WRITE", "CREATE", "MKDIR",
               "REMOVE", "RMDIR", "RENAME", "FSINFO"):  # fmt: skip
        assert ops[op] > 0, (op, ops)
    assert ops["READDIRPLUS"] + ops["READDIR"] > 0
    assert ops["READ"] >= 3  # hello.txt, big.bin (go-nfs offers 1 MiB reads: one READ), /d/g
    failed = Counter((e["nfs"]["opcode"], e["nfs"].get("status")) for e in events)
    assert failed[("LOOKUP", "NFSERR_NOENT")] >= 2  # nfs-cat of a missing file, stat /nope
    assert failed[("CREATE", "NFSERR_ROFS")] >= 2  # nfs-cp and nfs-op write on the read-only export
    assert failed[("REMOVE", "NFSERR_ROFS")] == 1
    big_reads = [e for e in events if e["nfs"]["opcode"] == "READ" and e["destination"]["bytes"] > 60_000]
    assert big_reads, "the large READ replies span many TCP segments"


def test_mount_protocol_is_counted_not_published(session: dict[str, Any]) -> None:
    mounts = _calls(session["messages"], 100005)
    assert len(mounts) >= 8  # NULL, MNT and EXPORT for every client run
    stats = session["stats"]
    assert stats.get("nfs.other_program_calls") == len(mounts)
    assert stats.get("nfs.other_program_replies") == len(mounts)
    for name in (
        "nfs.malformed_messages",
        "nfs.unmatched_replies",
        "nfs.unmatched_requests",
        "nfs.lost_sync",
    ):
        assert name not in stats, stats


def test_machine_name_is_the_clients(session: dict[str, Any]) -> None:
    names = {e["rpc"]["cred"]["machinename"] for e in session["events"]}
    assert len(names) == 1
    (name,) = names
    assert name and all(e["host.hostname"] == name for e in session["events"])
    assert all(e["source"]["domain"] == name for e in session["events"])
