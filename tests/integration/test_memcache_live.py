"""Live memcache: a real memcached (Debian), captured on lo, driven by

* pymemcache (text protocol over TCP, ``noreply`` commands included),
* python-binary-memcached (``bmemcached``, binary protocol: get/set/cas/incr, get_multi as a
  GetKQ batch, set_multi as SetQ + noop, delete_multi, stats), plus a small binary client
  of this test for what bmemcached does not send (append, prepend, touch, version, quiet
  batches with opaques, IncrementQ/DeleteQ, quit),
* UDP requests sent by the test itself with memcached's frame header (pymemcache has no
  UDP): text and binary, a value and a multi-get whose replies take several datagrams.

Every transaction the decoder reports is checked against what the client sent and what
the server answered (command, keys, values as base64, sizes, counters, CAS, status)."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from shipper.setup.fields import flatten
from tests.helpers import decode_file, need, tcpdump
from tests.integration.memcached_server import memcached_server
from tests.oracle.recordings import record_for_oracle

pytestmark = pytest.mark.integration

try:
    import bmemcached
    from pymemcache.client.base import Client as TextClient
    from pymemcache.exceptions import MemcacheClientError
except ImportError:  # pragma: no cover
    bmemcached = None


def b64(v: bytes) -> str:
    return base64.b64encode(v).decode()


class Expect:
    """What one transaction must look like (flattened memcache.* fields and a few more)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, transport: str, proto: str, status: str = "OK", **fields: Any) -> None:
        self.items.append({"transport": transport, "proto": proto, "status": status, "fields": fields})


# -- binary protocol helper -------------------------------------------------------------------

HDR = struct.Struct(">BBHBBHIIQ")


def binmsg(
    op: int, key: bytes = b"", extras: bytes = b"", value: bytes = b"", opaque: int = 0, cas: int = 0
) -> bytes:
    body = extras + key + value
    return HDR.pack(0x80, op, len(key), len(extras), 0, 0, len(body), opaque, cas) + body


class BinClient:
    """Raw binary protocol over one TCP connection: send, then read replies until one
    with the given opaque (quiet batches end with a noop)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def reply(self) -> dict[str, Any]:
        magic, op, keylen, extlen, _dt, status, total, opaque, cas = HDR.unpack(self._read(24))
        body = self._read(total)
        return {
            "op": op,
            "status": status,
            "opaque": opaque,
            "cas": cas,
            "key": body[extlen : extlen + keylen],
            "value": body[extlen + keylen :],
        }

    def call(self, data: bytes, until_opaque: int) -> list[dict[str, Any]]:
        self.sock.sendall(data)
        out = []
        while True:
            r = self.reply()
            out.append(r)
            if (r["opaque"] == until_opaque and r["op"] != 0x10) or (r["op"] == 0x10 and not r["key"]):
                return out

    def close(self) -> None:
        self.sock.close()


# -- workloads ---------------------------------------------------------------------------------


def text_workload(port: int, exp: Expect) -> int:
    c = TextClient(("127.0.0.1", port), default_noreply=False, connect_timeout=5, timeout=10)
    ops = 0

    def add(status: str = "OK", **f: Any) -> None:
        nonlocal ops
        ops += 1
        exp.add("tcp", "text", status, **f)

    stored: dict[str, bytes] = {}
    for i in range(40):
        k, v = f"t{i}", b"v%d-" % i * (i % 7 + 1)
        noreply = i % 3 == 0
        c.set(k, v, noreply=noreply)
        stored[k] = v
        resp = None if noreply else "STORED"
        add(
            **{
                "request.command": "set",
                "request.keys": [k],
                "request.noreply": noreply,
                "request.bytes": len(v),
                "request.values": b64(v),
                "response.command": resp,
            }
        )
        assert c.get(k) == v
        add(
            **{
                "request.command": "get",
                "request.keys": [k],
                "response.command": "VALUE",
                "response.keys": [k],
                "response.bytes": len(v),
                "response.values": [b64(v)],
                "response.count_values": 1,
            }
        )
        assert c.get(k + "x") is None
        add(**{"request.command": "get", "request.keys": [k + "x"], "response.command": "END"})
    for j in range(3):
        keys = [f"t{i}" for i in range(j, 40, 4)] + [f"nope{j}", f"t{j}x"]
        got = c.get_many(keys)
        hits = [k for k in keys if k in stored]
        assert list(got) == hits
        add(
            **{
                "request.command": "get",
                "request.keys": keys,
                "response.command": "VALUE",
                "response.keys": hits,
                "response.count_values": len(hits),
                "response.bytes": sum(len(stored[k]) for k in hits),
                "response.values": [b64(stored[k]) for k in hits],
            }
        )
    # cas: success, conflict, missing key
    value, token = c.gets("t1")
    add(**{"request.command": "gets", "request.keys": ["t1"], "response.cas_unique": int(token)})
    assert c.cas("t1", b"new", token) is True
    add(**{"request.command": "cas", "request.cas_unique": int(token), "response.command": "STORED"})
    assert c.cas("t1", b"newer", token) is False
    add(**{"request.command": "cas", "request.cas_unique": int(token), "response.command": "EXISTS"})
    assert c.cas("nokey", b"x", b"123") is None
    add("Error", **{"request.command": "cas", "request.keys": ["nokey"], "response.command": "NOT_FOUND"})
    assert c.add("t2", b"x") is False
    add("Error", **{"request.command": "add", "response.command": "NOT_STORED"})
    assert c.add("fresh", b"x") is True
    add(**{"request.command": "add", "response.command": "STORED"})
    assert c.replace("missing", b"x") is False
    add("Error", **{"request.command": "replace", "response.command": "NOT_STORED"})
    assert c.append("t2", b"AP") is True
    add(**{"request.command": "append", "request.values": b64(b"AP"), "response.command": "STORED"})
    assert c.prepend("t2", b"PR") is True
    add(**{"request.command": "prepend", "response.command": "STORED"})
    # counters
    c.set("n", b"10")
    add(**{"request.command": "set", "response.command": "STORED"})
    for i in range(10):
        got = c.incr("n", i + 1) if i % 2 == 0 else c.decr("n", i)
        add(
            **{
                "request.command": "incr" if i % 2 == 0 else "decr",
                "request.delta": i + 1 if i % 2 == 0 else i,
                "response.command": "<counter_op_res>",
                "response.value": got,
            }
        )
    assert c.incr("nothere", 1) is None
    add("Error", **{"request.command": "incr", "response.command": "NOT_FOUND"})
    with pytest.raises(MemcacheClientError):
        c.incr("t3", 1)  # not a number
    add(
        "Client Error",
        **{
            "request.command": "incr",
            "response.command": "CLIENT_ERROR",
            "response.error_msg": "cannot increment or decrement non-numeric value",
        },
    )
    c.incr("n", 5, noreply=True)
    add(**{"request.command": "incr", "request.noreply": True, "response.command": None})
    assert c.touch("t4", 100) is True
    add(**{"request.command": "touch", "request.exptime": 100, "response.command": "TOCHED"})
    assert c.touch("gone", 100) is False
    add("Error", **{"request.command": "touch", "response.command": "NOT_FOUND"})
    assert c.delete("t5") is True
    add(**{"request.command": "delete", "request.keys": ["t5"], "response.command": "DELETED"})
    assert c.delete("t5") is False
    add("Error", **{"request.command": "delete", "response.command": "NOT_FOUND"})
    c.delete("t6", noreply=True)
    add(**{"request.command": "delete", "request.noreply": True, "response.command": None})
    stats = c.stats()
    add(
        **{
            "request.command": "stats",
            "request.raw_args": "",
            "response.command": "STAT",
            "stat_names": sorted(k.decode() for k in stats),
        }
    )
    settings = c.stats("settings")
    add(
        **{
            "request.command": "stats",
            "request.raw_args": "settings",
            "response.command": "STAT",
            "stat_names": sorted(k.decode() for k in settings),
        }
    )
    assert c.version().startswith(b"1.")
    add(**{"request.command": "version", "response.command": "VERSION"})
    big = os.urandom(300_000)
    c.set("big", big)
    add(
        **{
            "request.command": "set",
            "request.bytes": len(big),
            "request.values": b64(big),
            "response.command": "STORED",
        }
    )
    assert c.get("big") == big
    add(**{"request.command": "get", "response.bytes": len(big), "response.values": [b64(big)]})
    c.quit()
    add(**{"request.command": "quit", "response.command": None})
    return ops


def binary_workload(port: int, exp: Expect) -> int:
    p = bmemcached.protocol.Protocol(f"127.0.0.1:{port}", raw_data=True, socket_timeout=10)
    ops = 0

    def add(status: str = "OK", **f: Any) -> None:
        nonlocal ops
        ops += 1
        exp.add("tcp", "binary", status, **f)

    values: dict[str, bytes] = {}
    for i in range(25):
        k, v = f"b{i}", os.urandom(i * 13 + 1)
        ok, cas = p.set(k, v, 0, get_cas=True)
        assert ok
        values[k] = v
        add(
            **{
                "request.opcode": "Set",
                "request.keys": [k],
                "request.bytes": len(v),
                "request.values": [b64(v)],
                "response.status": "Success",
                "response.cas_unique": cas,
            }
        )
        got, cas2 = p.get(k)
        assert got == v and cas2 == cas
        add(
            **{
                "request.opcode": "Get",
                "request.keys": [k],
                "response.values": [b64(v)],
                "response.flags": 0,
                "response.cas_unique": cas,
            }
        )
        assert p.get(k + "x") == (None, None)
        add(
            "Error",
            **{"request.opcode": "Get", "request.keys": [k + "x"], "response.status": "Key not found"},
        )
    # get_multi: GetKQ for all keys but the last, GetK for it, every opaque 0
    keys = ["b1", "missing1", "b2", "missing2", "b3", "missing3"]
    got = p.get_multi(keys)
    assert sorted(got) == ["b1", "b2", "b3"]
    for k in keys:
        last = k == keys[-1]
        if k in values:
            add(
                **{
                    "request.opcode": "GetK" if last else "GetKQ",
                    "request.keys": [k],
                    "response.keys": [k],
                    "response.values": [b64(values[k])],
                }
            )
        else:
            add(
                "Error" if last else "OK",
                **{
                    "request.opcode": "GetK" if last else "GetKQ",
                    "request.keys": [k],
                    "response.status": "Key not found" if last else None,
                },
            )
    # set_multi: SetQ per key (opaque = index), then a noop
    mapping = {f"m{i}": b"mv%d" % i for i in range(6)}
    assert p.set_multi(mapping, 0) == []
    for i, (k, v) in enumerate(mapping.items()):
        add(
            **{
                "request.opcode": "SetQ",
                "request.keys": [k],
                "request.opaque": i,
                "request.quiet": True,
                "request.values": [b64(v)],
                "response.status": None,
            }
        )
    add(**{"request.opcode": "No-op", "response.opcode": "No-op"})
    assert p.delete_multi(["m0", "m1", "nokey"]) is False
    for k in ("m0", "m1", "nokey"):
        add(
            "Error" if k == "nokey" else "OK",
            **{
                "request.opcode": "Delete",
                "request.keys": [k],
                "response.status": "Key not found" if k == "nokey" else "Success",
            },
        )
    add(**{"request.opcode": "No-op"})
    # counters and errors
    assert p.incr("cnt", 5) == 0  # created with the initial value
    add(**{"request.opcode": "Increment", "request.delta": 5, "request.initial": 0, "response.value": 0})
    for i in range(8):
        got = p.incr("cnt", 3) if i % 2 == 0 else p.decr("cnt", 1)
        add(**{"request.opcode": "Increment" if i % 2 == 0 else "Decrement", "response.value": got})
    with pytest.raises(bmemcached.exceptions.MemcachedException):
        p.incr("b3", 1)
    add(
        "Error",
        **{
            "request.opcode": "Increment",
            "response.status": "Incr/Decr on non-numeric value.",
            "response.status_code": 6,
            "response.value": None,
        },
    )
    ok, cas = p.set("c1", b"one", 0, get_cas=True)
    add(**{"request.opcode": "Set", "response.cas_unique": cas})
    assert p.cas("c1", b"two", cas + 1000, 0) is False
    add(
        "Error",
        **{"request.opcode": "Set", "request.cas_unique": cas + 1000, "response.status": "Key exists"},
    )
    assert p.add("c1", b"x", 0) is False
    add("Error", **{"request.opcode": "Add", "response.status": "Key exists"})
    stats = p.stats()
    add(**{"request.opcode": "Stat", "response.opcode": "Stat", "stat_names": sorted(stats)})
    big = os.urandom(200_000)
    assert p.set("bigb", big, 0)
    add(**{"request.opcode": "Set", "request.bytes": len(big), "request.values": [b64(big)]})
    assert p.get("bigb")[0] == big
    add(**{"request.opcode": "Get", "response.bytes": len(big), "response.values": [b64(big)]})
    p.disconnect()

    # What bmemcached does not send: a small client of our own.
    b = BinClient(port)
    r = b.call(binmsg(0x0E, b"b4", value=b"APP", opaque=101), 101)
    add(**{"request.opcode": "Append", "request.values": [b64(b"APP")], "response.cas_unique": r[0]["cas"]})
    b.call(binmsg(0x0F, b"b4", value=b"PRE", opaque=102), 102)
    add(**{"request.opcode": "Prepend", "request.opaque": 102, "response.opaque": 102})
    b.call(binmsg(0x1C, b"b4", struct.pack(">I", 300), opaque=103), 103)
    add(**{"request.opcode": "Touch", "request.exptime": 300, "response.status": "Success"})
    r = b.call(binmsg(0x0B, opaque=104), 104)
    add(**{"request.opcode": "Version", "response.version": r[0]["value"].decode()})
    # a quiet batch: hits answer, misses and stores stay silent, the noop ends it
    batch = (
        binmsg(0x09, b"b5", opaque=110)
        + binmsg(0x09, b"qmiss", opaque=111)
        + binmsg(0x11, b"q1", struct.pack(">II", 7, 0), b"quiet", opaque=112)
        + binmsg(0x15, b"cnt", struct.pack(">QQI", 10, 0, 0), opaque=113)
        + binmsg(0x14, b"q1", opaque=114)
        + binmsg(0x14, b"q1", opaque=115)
        + binmsg(0x0A, opaque=116)
    )
    replies = b.call(batch, 116)
    assert [r["opaque"] for r in replies] == [110, 115, 116]
    add(**{"request.opcode": "GetQ", "request.opaque": 110, "response.values": [b64(values["b5"])]})
    add(**{"request.opcode": "GetQ", "request.opaque": 111, "response.status": None})
    add(**{"request.opcode": "SetQ", "request.flags": 7, "response.status": None})
    add(**{"request.opcode": "IncrementQ", "request.delta": 10, "response.status": None})
    add(**{"request.opcode": "DeleteQ", "request.opaque": 114, "response.status": None})
    add("Error", **{"request.opcode": "DeleteQ", "request.opaque": 115, "response.status": "Key not found"})
    add(**{"request.opcode": "No-op", "request.opaque": 116})
    b.call(binmsg(0x07, opaque=120), 120)
    add(**{"request.opcode": "Quit", "response.opcode": "Quit"})
    b.close()
    return ops


def udp_workload(port: int, exp: Expect) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    rid = 0
    ops = 0

    def call(payload: bytes, replies: bool = True) -> bytes:
        """One request; the reply's messages put back together (seq order, per sequence)."""
        nonlocal rid
        rid += 1
        s.sendto(struct.pack(">HHHH", rid, 0, 1, 0) + payload, ("127.0.0.1", port))
        if not replies:
            return b""
        out = b""
        parts: dict[int, bytes] = {}
        while True:
            d = s.recv(65536)
            r, seq, total, _ = struct.unpack(">HHHH", d[:8])
            assert r == rid
            if total == 0:  # memcached's empty frame: no reply to a quiet command
                return out
            parts[seq] = d[8:]
            if len(parts) == total:
                out += b"".join(parts[i] for i in range(total))
                parts = {}
                if out[:1] == b"\x81" or not out.startswith((b"VALUE", b"STAT")) or out.endswith(b"END\r\n"):
                    return out

    def add(status: str = "OK", proto: str = "text", **f: Any) -> None:
        nonlocal ops
        ops += 1
        exp.add("udp", proto, status, **f)

    big = os.urandom(5000)
    assert call(b"set ubig 0 0 5000\r\n" + big + b"\r\n") == b"STORED\r\n"
    add(
        **{
            "request.command": "set",
            "request.bytes": 5000,
            "request.values": b64(big),
            "response.command": "STORED",
        }
    )
    got = call(b"get ubig\r\n")
    assert got == b"VALUE ubig 0 5000\r\n" + big + b"\r\nEND\r\n"
    add(
        **{
            "request.command": "get",
            "response.keys": ["ubig"],
            "response.values": [b64(big)],
            "size": len(got),
        }
    )
    for i in range(8):
        v = b"u%d" % i * (i + 1)
        assert call(b"set u%d 0 0 %d\r\n%s\r\n" % (i, len(v), v)) == b"STORED\r\n"
        add(**{"request.command": "set", "request.keys": [f"u{i}"], "request.values": b64(v)})
        got = call(b"get u%d nope ubig\r\n" % i)
        assert got.count(b"VALUE") == 2
        add(
            **{
                "request.command": "get",
                "request.keys": [f"u{i}", "nope", "ubig"],
                "response.keys": [f"u{i}", "ubig"],
                "response.count_values": 2,
                "response.bytes": len(v) + 5000,
                "size": len(got),
            }
        )
    got = call(b"stats\r\n")
    names = sorted(line.split(b" ")[1].decode() for line in got.split(b"\r\n") if line.startswith(b"STAT "))
    add(**{"request.command": "stats", "stat_names": names, "size": len(got)})
    assert call(b"incr ubig 1\r\n").startswith(b"CLIENT_ERROR")
    add("Client Error", **{"request.command": "incr", "response.command": "CLIENT_ERROR"})
    call(b"delete u0 noreply\r\n", replies=False)
    add(**{"request.command": "delete", "request.noreply": True, "response.command": None})
    got = call(binmsg(0x00, b"ubig", opaque=7))
    add(
        proto="binary",
        **{"request.opcode": "Get", "response.values": [b64(big)], "response.opaque": 7, "size": len(got)},
    )
    got = call(binmsg(0x0C, b"nope", opaque=8))
    add("Error", proto="binary", **{"request.opcode": "GetK", "response.status": "Key not found"})
    # memcached answers a quiet command with an empty frame (Packetbeat crashes on it)
    assert call(binmsg(0x11, b"uq", struct.pack(">II", 0, 0), b"quiet", opaque=9)) == b""
    add(proto="binary", **{"request.opcode": "SetQ", "request.quiet": True, "response.status": None})
    s.close()
    return ops


# -- the test ------------------------------------------------------------------------------------


def without_empty_udp_frames(src: Path, dst: Path, port: int) -> int:
    """Copy a (little-endian, Ethernet or Linux cooked) pcap without memcached's empty UDP frames
    from ``port``: Packetbeat 9.3 crashes on them (docs/differences.md, memcache/udp-empty-frames),
    so the copy is what the Packetbeat comparison gets. Returns how many were left out."""
    data = src.read_bytes()
    magic, linktype = struct.unpack_from("<I", data)[0], struct.unpack_from("<I", data, 20)[0]
    assert magic in (0xA1B2C3D4, 0xA1B23C4D), "tcpdump writes little-endian pcap here"
    l2 = {1: 14, 113: 16}[linktype]
    out, pos, dropped = [data[:24]], 24, 0
    while pos + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        rec = data[pos : pos + 16 + caplen]
        frame = rec[16:]
        pos += 16 + caplen
        ip = frame[l2:]
        if len(ip) >= 20 and ip[0] >> 4 == 4 and ip[9] == 17:
            udp = ip[(ip[0] & 15) * 4 :]
            sport, _dport, ulen = struct.unpack_from(">HHH", udp)
            if sport == port and ulen == 16 and udp[12:14] == b"\0\0":  # 8-byte frame, 0 datagrams
                dropped += 1
                continue
        out.append(rec)
    dst.write_bytes(b"".join(out))
    return dropped


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Expect, dict[str, int]]:
    if bmemcached is None:
        need("pymemcache and python-binary-memcached (pip install -e .[test])")
    pcap = tmp_path_factory.mktemp("memcache") / "live.pcap"
    exp = Expect()
    counts = {}
    with memcached_server() as (tport, uport):
        with tcpdump(pcap, f"port {tport} or port {uport}", settle=1.0):
            deadline = time.monotonic() + 15
            while True:  # the capture really runs once a probe connection shows in it
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", tport), timeout=2):
                    pass
                time.sleep(0.2)
                if pcap.exists() and pcap.stat().st_size > 24:
                    break
                assert time.monotonic() < deadline, "tcpdump never captured the probe"
            counts["text"] = text_workload(tport, exp)
            counts["binary"] = binary_workload(tport, exp)
            counts["udp"] = udp_workload(uport, exp)
        events = decode_file(Path(pcap), {"memcache": {"ports": [tport, uport], "maxvalues": -1}})
    oracle = pcap.with_name("live-for-packetbeat.pcap")
    assert without_empty_udp_frames(pcap, oracle, uport) == 1
    record_for_oracle(oracle, [{"type": "memcache", "ports": [tport, uport]}], label="memcache-live")
    record_for_oracle(
        oracle, [{"type": "memcache", "ports": [tport, uport], "maxvalues": -1}], label="memcache-live-values"
    )
    events.sort(key=lambda e: e["event"]["start"])  # stable: a batch keeps its order
    return events, exp, counts


def test_workload_size(live: tuple[list[dict[str, Any]], Expect, dict[str, int]]) -> None:
    events, exp, counts = live
    assert sum(counts.values()) >= 200
    assert len(events) == len(exp.items), [e["memcache"].get("request", {}).get("command") for e in events]


def test_every_transaction_matches_the_client(
    live: tuple[list[dict[str, Any]], Expect, dict[str, int]],
) -> None:
    events, exp, _ = live
    for i, (evt, want) in enumerate(zip(events, exp.items, strict=False)):
        got = flatten(evt["memcache"])
        where = f"#{i} {want} got {dict(list(got.items())[:12])}"
        assert evt["network"]["transport"] == want["transport"], where
        assert got["protocol_type"] == want["proto"], where
        assert evt["status"] == want["status"], where
        for k, v in want["fields"].items():
            if k == "stat_names":
                assert sorted(s["name"] for s in evt["memcache"]["response"]["stats"]) == v, where
            elif k == "size":
                assert evt["destination"]["bytes"] == v, where
            elif v is None:
                # absent: no reply (noreply, quiet), or no counter value on an error reply
                if k in ("response.command", "response.status", "response.opcode"):
                    assert "response" not in evt["memcache"], where
                else:
                    assert k not in got, where
            else:
                assert got.get(k) == v, f"{k}: {where}"
        assert evt["source"]["ip"] == "127.0.0.1" and evt["destination"]["port"] > 0
        assert evt["source"].get("bytes", 0) > 0, where
        if "response" in evt["memcache"]:
            assert 0 <= evt["event"]["end"] - evt["event"]["start"] < 10**10, where
            assert evt["destination"]["bytes"] > 0, where
            assert evt["event"]["outcome"] == ("success" if evt["status"] == "OK" else "failure")


def test_no_errors_counted(live: tuple[list[dict[str, Any]], Expect, dict[str, int]]) -> None:
    events, _, _ = live
    assert not any("error" in e for e in events), [e["error"] for e in events if "error" in e]
