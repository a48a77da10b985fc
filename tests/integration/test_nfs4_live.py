"""Live NFSv4.0 (and NFSv3 through the MOUNT protocol and rpcbind): NFS-Ganesha with its
in-memory FSAL as the server, libnfs clients (nfs-ls, nfs-cat, nfs-cp, tests/nfs/nfs-op.c
with ``version=4``), in namespaces of their own (tests/integration/ganesha.py), captured
with tcpdump there.

The reference is tshark's NFS dissector, run on the same capture: for each NFS call its xid,
version, procedure, tag, minor version, the list of COMPOUND operations, the credential;
for each reply its accept status and NFS status. From the operation list the main
operation is worked out by Packetbeat's rule (the first operation that is what the
compound is for, else the last one), so the walk over the XDR is checked by an independent
decoder. Every NFS call tshark sees must be one event with those values, and nothing else.
libnfs does not speak NFSv4.1 sessions; NFSv4.1/4.2 COMPOUNDs are covered by the shared
captures and the synthetic ones in tests/protocols/test_nfs_pcaps.py.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from tests.helpers import make_decoder, need_tool
from tests.integration.ganesha import Namespace, capture_in, ganesha
from tests.integration.nfs_server import nfs_op_binary
from tests.oracle.recordings import record_for_oracle

pytestmark = pytest.mark.integration

OPS = {
    3: "ACCESS", 4: "CLOSE", 5: "COMMIT", 6: "CREATE", 9: "GETATTR", 10: "GETFH", 15: "LOOKUP",
    16: "LOOKUPP", 18: "OPEN", 20: "OPEN_CONFIRM", 22: "PUTFH", 24: "PUTROOTFH", 25: "READ",
    26: "READDIR", 28: "REMOVE", 29: "RENAME", 30: "RENEW", 31: "RESTOREFH", 32: "SAVEFH",
    34: "SETATTR", 35: "SETCLIENTID", 36: "SETCLIENTID_CONFIRM", 38: "WRITE",
}  # fmt: skip
#: Operations that only set up or decorate a COMPOUND (Packetbeat walks past them).
SET_UP = {9, 10, 15, 16, 17, 22, 23, 24, 30, 31, 32, 33, 37, 53}
V3 = {0: "NULL", 1: "GETATTR", 3: "LOOKUP", 4: "ACCESS", 6: "READ", 7: "WRITE", 8: "CREATE", 16: "READDIR",
      17: "READDIRPLUS", 18: "FSSTAT", 19: "FSINFO", 20: "PATHINFO", 21: "COMMIT", 2: "SETATTR", 12: "REMOVE"}  # fmt: skip
STATUS = {0: "NFS_OK", 2: "NFSERR_NOENT", 10038: "NFSERR_OPENMODE", 17: "NFSERR_EXIST", 13: "NFSERR_ACCESS",
          10020: "NFSERR_NOFILEHANDLE", 10025: "NFSERR_BAD_STATEID", 10011: "NFSERR_EXPIRED"}  # fmt: skip
FIELDS = [
    "rpc.xid", "rpc.msgtyp", "rpc.program", "rpc.programversion", "rpc.procedure", "nfs.tag",
    "nfs.minorversion", "nfs.opcode", "nfs.nfsstat4", "nfs.status", "rpc.state_accept", "rpc.auth.uid",
    "rpc.auth.gid", "rpc.auth.machinename", "tcp.srcport", "tcp.dstport", "rpc.fraglen",
]  # fmt: skip


def main_op(ops: list[int]) -> str:
    for op in ops:
        if op not in SET_UP:
            return OPS[op]
    return OPS[ops[-1]] if ops else "ILLEGAL"


def tshark_messages(pcap: Path) -> list[dict[str, Any]]:
    exe = need_tool("tshark")
    # libnfs binds a privileged source port; tshark would try the dissector of a well-known
    # port below 1024 (ipp, rsync ...) before the NFS port: RPC heuristics go first instead.
    args = [exe, "-r", str(pcap), "-o", "tcp.try_heuristic_first:TRUE", "-Y", "rpc", "-T", "fields"]
    args += ["-E", "separator=|", "-E", "occurrence=a"]
    for f in FIELDS:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    msgs = []
    for line in out.splitlines():
        vals = dict(zip(FIELDS, line.split("|"), strict=True))
        # One TCP segment may carry several records: tshark joins their fields with commas.
        if "," in vals["rpc.xid"]:
            raise AssertionError(f"several RPC messages in one frame, not expected here: {line}")
        msgs.append(vals)
    return msgs


def run(ns: Namespace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ns.cmd(*args), capture_output=True, text=True, timeout=60)


def workload(ns: Namespace, tmp: Path) -> dict[str, str]:
    ls, cat, cp = need_tool("nfs-ls"), need_tool("nfs-cat"), need_tool("nfs-cp")
    op = str(nfs_op_binary())
    out: dict[str, str] = {}
    v4 = "nfs://127.0.0.1/mem?version=4"
    ops = (
        "mkdir /d write /d/f hello rename /d/f /d/g stat /d/g read /d/g ls /d unlink /d/g rmdir /d stat /nope"
    )
    out["op4"] = run(ns, op, v4, *ops.split()).stdout
    local = tmp / "local.txt"
    local.write_text("copied over NFSv4\n")
    out["cp4"] = run(ns, cp, str(local), "nfs://127.0.0.1/mem/up.txt?version=4").stdout
    out["cat4"] = run(ns, cat, "nfs://127.0.0.1/mem/up.txt?version=4").stdout
    out["ls4"] = run(ns, ls, v4).stdout
    out["cat4_missing"] = run(ns, cat, "nfs://127.0.0.1/mem/missing?version=4").stderr
    out["op3"] = run(
        ns, op, "nfs://127.0.0.1/mem?version=3", "stat", "/up.txt", "ls", "/", "stat", "/nope"
    ).stdout
    return out


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("nfs4-live")
    pcap = tmp / "nfs4.pcap"
    with ganesha() as ns, capture_in(ns, pcap):
        client = workload(ns, tmp)
    record_for_oracle(pcap, [{"type": "nfs", "ports": [2049]}])
    dec = make_decoder({"nfs": {"ports": [2049]}})
    events: list[dict[str, Any]] = []
    for ts, lt, frame, _wl in CaptureFile(str(pcap)):
        events += dec.feed(ts, lt, frame)
    events += dec.flush()
    return {"events": events, "stats": dict(dec.stats), "ref": tshark_messages(pcap), "client": client}


def test_clients_did_what_was_asked(session: dict[str, Any]) -> None:
    c = session["client"]
    assert "mkdir /d rc=0" in c["op4"] and "rmdir /d rc=0" in c["op4"] and "rename /d/f rc=0" in c["op4"]
    assert "stat /nope rc=-2" in c["op4"] and "NFS4ERR_NOENT" in c["op4"]
    # Ganesha's MEM FSAL keeps file sizes, not contents (it reads back "a"s).
    assert len(c["cat4"]) == len("copied over NFSv4\n")
    assert "up.txt" in c["ls4"]
    assert "NFS4ERR_NOENT" in c["cat4_missing"]
    assert "size /up.txt 18" in c["op3"] and "stat /nope rc=-2" in c["op3"]


def test_every_nfs_call_is_one_event_as_tshark_reads_it(session: dict[str, Any]) -> None:
    ref = session["ref"]
    calls = {
        (m["tcp.srcport"], m["rpc.xid"]): m
        for m in ref
        if m["rpc.msgtyp"] == "0" and m["rpc.program"] == "100003"
    }
    replies = {(m["tcp.dstport"], m["rpc.xid"]): m for m in ref if m["rpc.msgtyp"] == "1"}
    events = session["events"]
    assert len(calls) >= 40
    assert len(events) == len(calls), Counter(e["nfs"].get("opcode") for e in events)
    versions = Counter()
    for e in events:
        key = (str(e["source"]["port"]), "0x" + e["rpc"]["xid"])
        call, reply = calls[key], replies[key]
        vers = int(call["rpc.programversion"].split(",")[0])
        proc = int(call["rpc.procedure"])
        versions[vers] += 1
        assert e["nfs"]["version"] == vers and e["status"] == "OK"
        assert e["network"]["protocol"] == f"nfsv{vers}"
        assert e["source"]["bytes"] == int(call["rpc.fraglen"])
        assert e["destination"]["bytes"] == int(reply["rpc.fraglen"])
        assert e["rpc"]["status"] == "success" and reply["rpc.state_accept"] == "0"
        assert e["rpc"]["auth_flavor"] == "unix"
        assert e["rpc"]["cred"]["uid"] == int(call["rpc.auth.uid"])
        assert e["rpc"]["cred"]["gid"] == int(call["rpc.auth.gid"])
        assert e["rpc"]["cred"]["machinename"] == call["rpc.auth.machinename"]
        if vers == 4 and proc == 1:
            ops = [int(o) for o in call["nfs.opcode"].split(",") if o]
            assert e["nfs"]["opcode"] == main_op(ops), (ops, e["nfs"])
            assert e["nfs"]["tag"] == call["nfs.tag"]
            assert e["nfs"]["minor_version"] == int(call["nfs.minorversion"])
            status = int(reply["nfs.nfsstat4"].split(",")[0])
            assert e["nfs"]["status"] == STATUS[status]
        elif vers == 4:
            assert (proc, e["nfs"]["opcode"], e["nfs"]["status"]) == (0, "NULL", "NFS_OK")
        else:
            assert e["nfs"]["opcode"] == V3[proc]
            expected = "NFS_OK" if proc == 0 else STATUS[int(reply["nfs.status"])]
            assert e["nfs"]["status"] == expected
    assert versions[4] >= 30 and versions[3] >= 5


def test_compound_shapes_seen(session: dict[str, Any]) -> None:
    events = session["events"]
    seen = Counter((e["nfs"]["opcode"], e["nfs"].get("status")) for e in events)
    # libnfs opens with PUTFH, LOOKUP, GETATTR, ACCESS, OPEN ...: Packetbeat names that ACCESS.
    for op in ("SETCLIENTID", "SETCLIENTID_CONFIRM", "CREATE", "OPEN_CONFIRM", "WRITE", "READ",
               "CLOSE", "RENAME", "REMOVE", "READDIR", "ACCESS", "GETATTR"):  # fmt: skip
        assert any(k[0] == op for k in seen), (op, seen)
    assert any(k == ("GETATTR", "NFSERR_NOENT") or k[1] == "NFSERR_NOENT" for k in seen)
    stats = session["stats"]
    # Ganesha's MOUNT service has a port of its own (found through rpcbind): not captured.
    for name in ("nfs.malformed_messages", "nfs.unmatched_replies", "nfs.unmatched_requests"):
        assert name not in stats, stats
