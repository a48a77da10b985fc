"""NFS events from captures, checked against what real Packetbeat 9.3 emits for them.

The four shared captures (``../shared/pcaps/packetbeat/nfs*``) field by field; the synthetic
capture of ``nfs_captures.packetbeat_capture()`` (every NFSv3 procedure kind, NFSv4.x
COMPOUND shapes, auth flavours, accept statuses, other programs, retransmission,
pipelining) xid by xid, with the values Packetbeat 9.3.0 wrote for it; and the traffic
wirebeat decodes beyond Packetbeat (``beyond_capture()``, docs/differences.md ``## NFS``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import beats_pcap, decode_file, shared_pcap
from tests.protocols.nfs_captures import beyond_capture, events_by_xid, packetbeat_capture, write

NFS = {"nfs": {"ports": [2049]}}


def _strip(e: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in e.items() if k not in ("agent", "host", "ecs", "@metadata")}


def _decode(path: Path) -> list[dict[str, Any]]:
    from shipper.pipeline.envelope import Envelope

    env = Envelope(beat_name="test")
    return [_strip(env.apply(e)) for e in decode_file(path, NFS)]


# -- the shared captures: Packetbeat 9.3.0's events, field by field -------------------------

SHARED: dict[str, dict[str, Any]] = {
    "nfs4_close.pcap": {
        "@timestamp": "2016-06-08T08:59:04.249Z",
        "type": "nfs",
        "status": "OK",
        "host.hostname": "desycloud03.desy.de",
        "user.id": 48,
        "group.id": 48,
        "related": {"ip": ["131.169.5.156", "131.169.192.35"]},
        "source": {"bytes": 208, "ip": "131.169.5.156", "port": 907, "domain": "desycloud03.desy.de"},
        "client": {"bytes": 208, "ip": "131.169.5.156", "port": 907, "domain": "desycloud03.desy.de"},
        "destination": {"ip": "131.169.192.35", "port": 2049, "bytes": 176},
        "server": {"ip": "131.169.192.35", "port": 2049, "bytes": 176},
        "network": {
            "bytes": 384,
            "type": "ipv4",
            "transport": "tcp",
            "protocol": "nfsv4",
            "direction": "unknown",
            "community_id": "1:cd5eLXemAsSPMdXwCbdDUWWud4M=",
        },
        "nfs": {"version": 4, "tag": "", "minor_version": 1, "opcode": "CLOSE", "status": "NFS_OK"},
        "rpc": {
            "status": "success",
            "xid": "c3103fc1",
            "auth_flavor": "unix",
            "cred": {
                "gid": 48,
                "gids": [48],
                "stamp": 4308441,
                "machinename": "desycloud03.desy.de",
                "uid": 48,
            },
        },
        "event": {
            "action": "nfs.CLOSE",
            "type": ["connection", "protocol"],
            "dataset": "nfs",
            "duration": 5281000,
            "start": "2016-06-08T08:59:04.249Z",
            "end": "2016-06-08T08:59:04.255Z",
            "kind": "event",
            "category": ["network"],
        },
    },
    "nfs_v4.pcap": {
        # Packetbeat says 1937 (libpcap reads the seconds signed): general/pcap-seconds-unsigned.
        "@timestamp": "2073-04-19T04:21:29.273Z",
        "type": "nfs",
        "status": "OK",
        "host.hostname": "ani",
        "user.id": 500,
        "group.id": 500,
        "related": {"ip": ["127.0.0.1"]},
        "source": {"bytes": 212, "ip": "127.0.0.1", "port": 50676, "domain": "ani"},
        "client": {"bytes": 212, "ip": "127.0.0.1", "port": 50676, "domain": "ani"},
        "destination": {"ip": "127.0.0.1", "port": 2049, "bytes": 152},
        "server": {"ip": "127.0.0.1", "port": 2049, "bytes": 152},
        "network": {
            "community_id": "1:u4a4lCJ/7gmYBA9b/hhcnhhiek0=",
            "bytes": 364,
            "type": "ipv4",
            "transport": "tcp",
            "protocol": "nfsv4",
            "direction": "ingress",
        },
        "nfs": {"version": 4, "tag": "readdir", "minor_version": 1, "opcode": "READDIR", "status": "NFS_OK"},
        "rpc": {
            "auth_flavor": "unix",
            "cred": {
                "stamp": 1459253713,
                "machinename": "ani",
                "uid": 500,
                "gid": 500,
                "gids": [500, 500, 499, 491],
            },
            "status": "success",
            "xid": "00000008",
        },
        "event": {
            "start": "2073-04-19T04:21:29.273Z",
            "end": "2073-04-19T04:21:30.365Z",
            "kind": "event",
            "category": ["network"],
            "action": "nfs.READDIR",
            "type": ["connection", "protocol"],
            "dataset": "nfs",
            "duration": 1092074000,
        },
    },
    "nfsv42_clone.pcap": {
        "@timestamp": "2018-06-25T20:43:40.230Z",
        "type": "nfs",
        "status": "OK",
        "host.hostname": "netapp20",
        "user.id": 1000,
        "group.id": 1000,
        "related": {"ip": ["192.168.0.20", "192.168.0.41"]},
        "source": {"port": 742, "domain": "netapp20", "bytes": 272, "ip": "192.168.0.20"},
        "client": {"port": 742, "domain": "netapp20", "bytes": 272, "ip": "192.168.0.20"},
        "destination": {"ip": "192.168.0.41", "port": 2049, "bytes": 112},
        "server": {"ip": "192.168.0.41", "port": 2049, "bytes": 112},
        "network": {
            "bytes": 384,
            "type": "ipv4",
            "transport": "tcp",
            "protocol": "nfsv4",
            "direction": "unknown",
            "community_id": "1:Oj8idLoJXeaRZYVCvrOQg/ggjnw=",
        },
        "nfs": {"tag": "", "minor_version": 2, "opcode": "CLONE", "status": "NFSERR_NOTSUPP", "version": 4},
        "rpc": {
            "xid": "592d006f",
            "auth_flavor": "unix",
            "cred": {"stamp": 4295408, "machinename": "netapp20", "uid": 1000, "gid": 1000, "gids": [1000]},
            "status": "success",
        },
        "event": {
            "duration": 299000,
            "start": "2018-06-25T20:43:40.230Z",
            "end": "2018-06-25T20:43:40.230Z",
            "kind": "event",
            "category": ["network"],
            "action": "nfs.CLONE",
            "type": ["connection", "protocol"],
            "dataset": "nfs",
        },
    },
    "nfsv42_layoutstats.pcap": {
        "@timestamp": "2018-06-22T15:33:21.500Z",
        "type": "nfs",
        "status": "OK",
        "host.hostname": "ani",
        "user.id": 0,
        "group.id": 0,
        "related": {"ip": ["131.169.185.213", "131.169.191.144"]},
        "source": {"ip": "131.169.185.213", "port": 891, "domain": "ani", "bytes": 452},
        "client": {"ip": "131.169.185.213", "port": 891, "domain": "ani", "bytes": 452},
        "destination": {"ip": "131.169.191.144", "port": 2049, "bytes": 96},
        "server": {"ip": "131.169.191.144", "port": 2049, "bytes": 96},
        "network": {
            "protocol": "nfsv4",
            "direction": "unknown",
            "community_id": "1:CCwsRXvWZ5tJcgNT88TO0HJnYfU=",
            "bytes": 548,
            "type": "ipv4",
            "transport": "tcp",
        },
        "nfs": {
            "status": "NFSERR_OP_ILLEGAL",
            "version": 4,
            "tag": "",
            "minor_version": 1,
            "opcode": "LAYOUTSTATS",
        },
        "rpc": {
            "status": "success",
            "xid": "700b0de2",
            "auth_flavor": "unix",
            "cred": {"stamp": 4296142, "machinename": "ani", "uid": 0, "gid": 0, "gids": []},
        },
        "event": {
            "type": ["connection", "protocol"],
            "dataset": "nfs",
            "duration": 193000,
            "start": "2018-06-22T15:33:21.500Z",
            "end": "2018-06-22T15:33:21.500Z",
            "kind": "event",
            "category": ["network"],
            "action": "nfs.LAYOUTSTATS",
        },
    },
}


@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_capture_matches_packetbeat(name: str) -> None:
    events = _decode(shared_pcap(name))
    assert events == [SHARED[name]]


def test_packetbeat_system_test_v3_capture() -> None:
    """``nfs_v3.pcap`` of Packetbeat's own tests (test_0061_nfs.py), not in ../shared."""
    (e,) = _decode(beats_pcap("nfs_v3.pcap"))
    assert e == {
        # Packetbeat: 1936-11-26T16:02:12.071Z (general/pcap-seconds-unsigned).
        "@timestamp": "2073-01-01T22:30:28.071Z",
        "type": "nfs",
        "status": "OK",
        "host.hostname": "ani",
        "user.id": 0,
        "group.id": 0,
        "related": {"ip": ["127.0.0.1"]},
        "source": {"ip": "127.0.0.1", "port": 839, "domain": "ani", "bytes": 116},
        "client": {"ip": "127.0.0.1", "port": 839, "domain": "ani", "bytes": 116},
        "destination": {"ip": "127.0.0.1", "port": 2049, "bytes": 32},
        "server": {"ip": "127.0.0.1", "port": 2049, "bytes": 32},
        "network": {
            "protocol": "nfsv3",
            "direction": "ingress",
            "community_id": "1:K6/2XnLPJVyyA+yaYhZUWMBb0mw=",
            "bytes": 148,
            "type": "ipv4",
            "transport": "tcp",
        },
        "nfs": {"status": "NFSERR_NOENT", "version": 3, "opcode": "LOOKUP"},
        "rpc": {
            "xid": "a19a75d0",
            "auth_flavor": "unix",
            "cred": {"uid": 0, "gid": 0, "gids": [0], "stamp": 4639510, "machinename": "ani"},
            "status": "success",
        },
        "event": {
            "kind": "event",
            "category": ["network"],
            "action": "nfs.LOOKUP",
            "type": ["connection", "protocol"],
            "dataset": "nfs",
            "duration": 409242000,
            "start": "2073-01-01T22:30:28.071Z",
            "end": "2073-01-01T22:30:28.480Z",
        },
    }


# -- the synthetic capture: Packetbeat 9.3.0's values per xid --------------------------------

#: xid → (network.protocol, nfs.version, nfs.opcode, nfs.status, nfs.minor_version, nfs.tag,
#: rpc.status, rpc.auth_flavor, event.outcome, source.bytes, destination.bytes)
EXPECTED: dict[str, tuple[Any, ...]] = {
    "00001001": ("nfsv3", 3, "NULL", "NFS_OK", None, None, "success", "none", None, 40, 24),
    "00001002": ("nfsv3", 3, "GETATTR", "NFS_OK", None, None, "success", "unix", None, 124, 112),
    "00001003": ("nfsv3", 3, "LOOKUP", "NFSERR_NOENT", None, None, "success", "unix", None, 116, 32),
    "00001004": ("nfsv3", 3, "READ", "NFS_OK", None, None, "success", "unix", None, 120, 65660),
    "00001005": ("nfsv3", 3, "WRITE", "NFS_OK", None, None, "success", "unix", None, 100124, 68),
    "00001006": ("nfsv3", 3, "ACCESS", "NFSERR_ACCESS", None, None, "success", "unix", None, 112, 28),
    "00001007": ("nfsv3", 3, "ILLEGAL", None, None, None, "proc_unavail", "unix", "failure", 72, 24),
    "00001008": ("nfsv3", 3, "CREATE", None, None, None, "garbage_args", "unix", "failure", 60, 24),
    "00001009": ("nfsv3", 3, "REMOVE", None, None, None, "system_err", "rpcsec_gss", "failure", 64, 24),
    "0000100a": ("nfsv3", 3, "GETATTR", None, None, None, "prog_unavail", "unknown (3)", "failure", 52, 24),
    "0000100b": ("nfs", 5, None, None, None, None, "prog_mismatch", "unix", "failure", 72, 32),
    "0000100c": ("nfsv3", 3, "RENAME", "NFSERR_XDEV", None, None, "success", "unix", None, 184, 28),
    "0000100d": ("nfsv3", 3, "READDIRPLUS", "NFSERR_NOTSUPP", None, None, "success", "unix", None, 72, 48),
    "0000100e": ("nfs", 2, None, "NFSERR_STALE", None, None, "success", "unix", None, 72, 28),
    "0000100f": ("nfsv3", 3, "COMMIT", "", None, None, "success", "unix", None, 72, 28),
    "00002001": ("nfsv4", 4, "NULL", "NFS_OK", None, None, "success", "unix", None, 72, 28),
    "00002002": ("nfsv4", 4, "GETATTR", "NFS_OK", 1, "getattr", "success", "unix", None, 180, 36),
    "00002003": ("nfsv4", 4, "GETATTR", "NFS_OK", 0, "", "success", "unix", None, 108, 36),
    "00002004": ("nfsv4", 4, "OPEN", "NFSERR_DELAY", 1, "open", "success", "unix", None, 224, 36),
    "00002005": ("nfsv4", 4, "GETATTR", "NFSERR_NOENT", 0, "lookup", "success", "unix", None, 164, 36),
    "00002006": ("nfsv4", 4, "RENAME", "NFS_OK", 1, "", "success", "unix", None, 216, 36),
    "00002007": ("nfsv4", 4, "GETATTR", "NFS_OK", 0, "", "success", "unix", None, 196, 36),
    "00002008": ("nfsv4", 4, "RENEW", "NFSERR_STALE_CLIENTID", 0, "renew", "success", "unix", None, 104, 36),
    "00002009": ("nfsv4", 4, "ILLEGAL", "NFSERR_OP_ILLEGAL", 1, "", "success", "unix", None, 148, 36),
    "0000200a": ("nfsv4", 4, "READ", "NFS_OK", 1, "", "success", "unix", None, 160, 36),
    "0000200b": ("nfsv4", 4, "READ", "NFS_OK", 2, "r\u00e9ad", "success", "unix", None, 196, 36),
    "0000200c": ("nfsv4", 4, "WRITE", "NFS_OK", 2, "", "success", "unix", None, 3192, 36),
    "0000200d": ("nfsv4", 4, "READDIR", "NFS_OK", 1, "readdir", "success", "unix", None, 216, 36),
    "0000200e": ("nfsv4", 4, "RECLAIM_COMPLETE", "NFS_OK", 1, "", "success", "unix", None, 128, 36),
    "0000200f": ("nfsv4", 4, "EXCHANGE_ID", "NFS_OK", 1, "", "success", "unix", None, 148, 36),
    "00002010": ("nfsv4", 4, "GETFH", "", 1, "", "success", "unix", None, 164, 36),
    "00002011": ("nfsv4", 4, "CLONE", "NFSERR_NOTSUPP", 2, "", "success", "unix", None, 356, 36),
    "00002012": ("nfsv4", 4, "ILLEGAL", "NFS_OK", 1, "empty", "success", "unix", None, 92, 36),
    "00002013": ("nfsv4", 4, None, "NFS_OK", None, None, "success", "unix", None, 80, 28),
    "00003001": ("nfsv3", 3, "GETATTR", "NFSERR_NOENT", None, None, "success", "unix", None, 108, 28),
    "00003002": ("nfsv3", 3, "GETATTR", "NFS_OK", None, None, "success", "unix", None, 108, 28),
    "00003003": ("nfsv3", 3, "GETATTR", "NFS_OK", None, None, "success", "unix", None, 108, 28),
    "5e5e5e5e": ("nfsv3", 3, "NULL", "NFS_OK", None, None, "success", "unix", None, 72, 24),
}


def _summary(e: dict[str, Any]) -> tuple[Any, ...]:
    n, r = e["nfs"], e["rpc"]
    return (
        e["network"]["protocol"],
        n.get("version"),
        n.get("opcode"),
        n.get("status"),
        n.get("minor_version"),
        n.get("tag"),
        r.get("status"),
        r["auth_flavor"],
        e["event"].get("outcome"),
        e["source"]["bytes"],
        e["destination"]["bytes"],
    )


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _decode(write(tmp_path_factory.mktemp("nfs") / "synthetic.pcap", packetbeat_capture()))


def test_synthetic_capture_matches_packetbeat(synthetic: list[dict[str, Any]]) -> None:
    got = {x: _summary(e) for x, e in events_by_xid(synthetic).items()}
    assert got == EXPECTED
    assert len(synthetic) == len(EXPECTED)  # one event per xid: the retransmission is one call


def test_synthetic_capture_details(synthetic: list[dict[str, Any]]) -> None:
    by = events_by_xid(synthetic)
    e = by["00001002"]
    assert e["rpc"]["cred"] == {
        "uid": 1000,
        "gid": 100,
        "gids": [100, 4, 24, 27],
        "stamp": 12345,
        "machinename": "workstation",
    }
    assert (e["host.hostname"], e["user.id"], e["group.id"]) == ("workstation", 1000, 100)
    assert e["source"]["domain"] == e["client"]["domain"] == "workstation"
    assert e["event"]["action"] == "nfs.GETATTR" and e["event"]["duration"] == 100000
    # An empty machine name: the caller's address stands in, no source.domain.
    e = by["00001008"]
    assert e["rpc"]["cred"]["machinename"] == e["host.hostname"] == "10.20.0.5"
    assert "domain" not in e["source"] and e["rpc"]["cred"]["gids"] == []
    # No AUTH_SYS: no credential fields at all.
    e = by["00001009"]
    assert "cred" not in e["rpc"] and "user.id" not in e and "host.hostname" not in e
    # No opcode: no event.action.
    assert "action" not in by["0000100b"]["event"]
    assert by["0000100c"]["rpc"]["cred"]["gids"] == list(range(16))


def test_beyond_packetbeat(tmp_path: Path) -> None:
    events = _decode(write(tmp_path / "beyond.pcap", beyond_capture()))
    by = events_by_xid(events)
    assert sorted(by) == ["00004001", "00004002", "00004003", "00004004", "00005001", "00005002", "00005003"]
    # Fragmented call and reply: sizes without the markers.
    e = by["00004001"]
    assert (e["nfs"]["opcode"], e["nfs"]["status"], e["rpc"]["status"]) == ("GETATTR", "NFS_OK", "success")
    assert (e["source"]["bytes"], e["destination"]["bytes"]) == (108, 112)
    e = by["00004002"]
    assert (e["status"], e["rpc"]["status"], e["event"]["outcome"]) == ("OK", "auth_error", "failure")
    assert e["error"]["message"] == "AUTH_TOOWEAK" and "status" not in e["nfs"]
    e = by["00004003"]
    assert e["rpc"]["status"] == "rpc_mismatch"
    assert e["error"]["message"] == "RPC version mismatch: server supports 2-2"
    e = by["00004004"]
    assert e["status"] == "NO_REPLY" and "status" not in e["rpc"] and "end" not in e["event"]
    assert "bytes" not in e["destination"] and e["nfs"]["opcode"] == "LOOKUP"
    for x, op, status in (
        ("00005001", "LOOKUP", "NFSERR_NOENT"),
        ("00005002", "GETATTR", "NFS_OK"),
        ("00005003", "READ", "NFS_OK"),
    ):
        e = by[x]
        assert e["network"]["transport"] == "udp"
        assert (e["nfs"]["opcode"], e["nfs"]["status"], e["status"]) == (op, status, "OK")
        assert e["source"]["port"] == 1011 and e["destination"]["port"] == 2049
