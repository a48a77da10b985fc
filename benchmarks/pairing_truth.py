"""Pairing truth: is every transaction either right or flagged, under loss and reordering?

Each synthesized request carries a unique id (``rq<n>x``) and its response echoes it
(``rs<n>x``): in an HTTP path and status phrase, a Redis key and value, a MySQL query and
the OK packet's affected rows and insert id, a PgSQL query and its command tag, a Thrift
method name and its result, a memcache key (echoed in the
response's ``VALUE`` line). The conversations (real handshakes, acknowledgment
numbers as a TCP stack sets them, small segments, some pipelining) are then damaged the
way captures are: packets lost, packets reordered within a window, the handshake missing,
the capture starting mid-connection (often right before a response). Every event the
decoder emits is classified:

* **right**: the request id and the response id are the same transaction's;
* **flagged**: unmatched (one side only), or carrying notes (``error.message``);
* **silently wrong**: ids of two different transactions (or none) and no flag.

A fourth column, *pickup*, counts wrong pairs on connections picked up mid-way (neither SYN
nor SYN-ACK captured) while the server still owed a response to a request sent before the
first one captured and the client had pipelined more: such a capture is packet for packet
the same as one of an idle connection, so no decoder can tell (flagging every pair of every
connection picked up mid-way would be the only way out, and Packetbeat does not either).

Run: ``python benchmarks/pairing_truth.py [--conns N] [--seeds a,b,...]`` — prints
transactions, right, flagged and silently wrong per protocol. The suite runs a bounded
version (tests/protocols/test_pairing_truth.py).

Measured with ``--conns 300 --seeds 1,2,3,4,5`` (125,556 transactions over HTTP, Redis,
MySQL, PgSQL, Thrift, memcache): 0 silently wrong, 12,769 flagged, 367 pickup; before the
pairing work (main at 3525d63), 3,100 silently wrong and 486 pickup.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import attrs

from benchmarks import dbwire as w
from benchmarks.synth import Conversation, Frame
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

TS0 = 1_700_000_000_000_000_000
_RQ = re.compile(r"rq(\d+)x")
_RS = re.compile(r"rs(\d+)x")


def _http(uid: int) -> tuple[bytes, bytes]:
    body = b"rs%dx" % uid
    req = b"GET /rq%dx HTTP/1.1\r\nHost: h\r\n\r\n" % uid
    resp = b"HTTP/1.1 200 rs%dx\r\nContent-Length: %d\r\n\r\n%s" % (uid, len(body), body)
    return req, resp


def _redis(uid: int) -> tuple[bytes, bytes]:
    key, val = b"rq%dx" % uid, b"rs%dx" % uid
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key), b"$%d\r\n%s\r\n" % (len(val), val)


def _mysql(uid: int) -> tuple[bytes, bytes]:
    # The id comes back as affected rows and insert id: ``rs`` + the same digits.
    return w.my_query(f"UPDATE t SET v = 'rq{uid}x'"), w.my_ok(1, affected=uid, insert_id=uid)


def _pgsql(uid: int) -> tuple[bytes, bytes]:
    return (
        w.pg_query(f"SELECT 'rq{uid}x'"),
        w.pg_row_description(["c"]) + w.pg_data_row([f"rs{uid}x"]) + w.pg_complete("SELECT 1") + w.pg_ready(),
    )


def _thrift(uid: int) -> tuple[bytes, bytes]:
    def msg(name: bytes, mtype: int, body: bytes) -> bytes:
        return struct.pack(">Ii", 0x80010000 | mtype, len(name)) + name + struct.pack(">i", uid) + body

    # call rq<n>x(1: string) -> string; the reply's method name cannot differ, so the
    # reply's sequence id and its string result carry the id.
    arg, ret = b"a%d" % uid, b"rs%dx" % uid
    req = msg(b"rq%dx" % uid, 1, b"\x0b\x00\x01" + struct.pack(">i", len(arg)) + arg + b"\x00")
    rep = msg(b"rq%dx" % uid, 2, b"\x0b\x00\x00" + struct.pack(">i", len(ret)) + ret + b"\x00")
    return req, rep


def _memcache(uid: int) -> tuple[bytes, bytes]:
    key, val = b"rq%dx" % uid, b"rs%dx" % uid
    return b"get %s\r\n" % key, b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, len(val), val)


def _get(evt: dict[str, Any], path: str) -> Any:
    cur: Any = evt
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _find(rx: re.Pattern[str], value: Any) -> set[int]:
    if value is None:
        return set()
    return {int(m) for m in rx.findall(json.dumps(value, default=str))}


@attrs.frozen
class Proto:
    name: str
    port: int
    exchange: Callable[[int], tuple[bytes, bytes]]
    #: Event fields holding the request's id and the response's echo of it.
    request_fields: tuple[str, ...]
    response_fields: tuple[str, ...]
    #: The response echoes the id as a plain number there (not ``rs<n>x``).
    numeric_response: bool = False
    #: May the client send the next request before the response (the server answers in order)?
    pipelined: bool = True
    #: Bytes each side sends first (handshakes), as (side, bytes).
    prelude: tuple[tuple[int, bytes], ...] = ()

    def ids(self, evt: dict[str, Any]) -> tuple[set[int], set[int]]:
        req: set[int] = set()
        for f in self.request_fields:
            req |= _find(_RQ, _get(evt, f))
        resp: set[int] = set()
        for f in self.response_fields:
            v = _get(evt, f)
            if self.numeric_response:
                if isinstance(v, int) and v:
                    resp.add(v)
            else:
                resp |= _find(_RQ if self.name == "memcache" else _RS, v)
        return req, resp


PROTOCOLS = {
    p.name: p
    for p in (
        Proto("http", 80, _http, ("url.path",), ("http.response.status_phrase",)),
        Proto("redis", 6379, _redis, ("query",), ("redis.return_value",)),
        Proto(
            "mysql",
            3306,
            _mysql,
            ("query",),
            ("mysql.affected_rows", "mysql.insert_id"),
            numeric_response=True,
            pipelined=False,
            prelude=((1, w.my_greeting()), (0, w.my_handshake_response()), (1, w.my_ok(2))),
        ),
        Proto(
            "pgsql",
            5432,
            _pgsql,
            ("query",),
            ("response",),
            prelude=((0, w.pg_startup()), (1, w.pg_msg(b"R", b"\0\0\0\0") + w.pg_ready())),
        ),
        Proto("thrift", 9090, _thrift, ("method",), ("thrift.return_value",)),
        Proto("memcache", 11211, _memcache, ("memcache.request.keys",), ("memcache.response.keys",)),
    )
}


# -- captures -----------------------------------------------------------------------------


@attrs.frozen
class Damage:
    loss: float = 0.05
    reorder: float = 0.30
    #: A reordered packet is captured up to this many packets late.
    window: int = 4
    no_handshake: float = 0.25
    mid_connection: float = 0.25


def conversation(
    proto: Proto, rng: random.Random, conn: int, uid0: int, n: int, ts: int
) -> tuple[Conversation, dict[int, list[int]]]:
    """One connection carrying ``n`` transactions with ids ``uid0``…; small segments so
    that losses hit the middle of messages too. Also returns, per id, the indexes of the
    frames its request and its response start in."""
    client = (f"10.{1 + conn // 60000}.{conn // 250 % 240}.{conn % 250 + 1}", 20000 + conn % 40000)
    conv = Conversation(
        client,
        ("10.9.0.1", proto.port),
        ts=ts,
        mss=rng.choice((16, 48, 200, 1448)),
        isn_c=rng.randrange(1 << 32),
        isn_s=rng.randrange(1 << 32),
    ).handshake()
    for side, data in proto.prelude:
        conv.send(side, data, ack=False)
    uid = uid0
    starts: dict[int, list[int]] = {}
    while uid < uid0 + n:
        depth = rng.choice((1, 1, 1, 2, 3)) if proto.pipelined else 1
        batch = [proto.exchange(u) for u in range(uid, min(uid + depth, uid0 + n))]
        for k, (req, _) in enumerate(batch):
            starts[uid + k] = [len(conv.frames), 0]
            conv.send(0, req, ack=False)
        for k, (_, resp) in enumerate(batch):
            starts[uid + k][1] = len(conv.frames)
            conv.send(1, resp, ack=False)
        uid += len(batch)
    if rng.random() < 0.5:
        conv.close()
    return conv, starts


def damage(frames: list[Frame], rng: random.Random, d: Damage) -> tuple[list[Frame], set[int]]:
    """The frames as captured, and the indexes of those kept (before reordering)."""
    cut = 0
    if rng.random() < d.mid_connection:
        cut = rng.randrange(3, max(4, len(frames) // 2))
    elif rng.random() < d.no_handshake:
        cut = 3
    kept = {i for i in range(cut, len(frames)) if rng.random() >= d.loss}
    frames = [f for i, f in enumerate(frames) if i in kept]
    out: list[Frame] = []
    late: list[tuple[int, Frame]] = []  # (captured after this many more packets, frame)
    for f in frames:
        if rng.random() < d.reorder:
            late.append((rng.randint(1, d.window), f))
            continue
        out.append(f)
        due = [x for k, x in late if k <= 1]
        late = [(k - 1, x) for k, x in late if k > 1]
        out += due
    out += [x for _, x in late]
    return out, kept


@attrs.define
class Tally:
    transactions: int = 0
    events: int = 0
    right: int = 0
    flagged: int = 0
    wrong: int = 0
    #: Wrong, but undecidable from the wire: the capture started while the server still
    #: owed responses to requests sent before, and the client had already sent more
    #: (pipelined): those packets are the same as an idle connection's.
    pickup: int = 0
    examples: list[dict[str, Any]] = attrs.field(factory=list)


def flagged(evt: dict[str, Any], req: set[int], resp: set[int]) -> bool:
    """Unmatched (one side only), or the decoder's notes say something is off."""
    if not req or not resp:
        return True
    return bool(_get(evt, "error.message"))


def backlog(starts: dict[int, list[int]], kept: set[int]) -> bool:
    """Picked up mid-way (neither SYN nor SYN-ACK captured), the first request the
    capture holds was sent while a response to an earlier request (missed or lost) was
    still to come: nothing on the wire tells that this response is not its answer."""
    if 0 in kept or 1 in kept:
        return False
    first = min((req for req, _ in starts.values() if req in kept), default=None)
    if first is None:
        return False
    owed = [resp for req, resp in starts.values() if req < first <= resp]
    return bool(owed) and any(first <= req < max(owed) for req, _ in starts.values())


def classify(
    proto: Proto, events: list[dict[str, Any]], tally: Tally, pickup: set[int] | None = None, keep: int = 5
) -> None:
    """``pickup``: ids of connections picked up in an undecidable state (``backlog``)."""
    for evt in events:
        tally.events += 1
        req, resp = proto.ids(evt)
        if len(req) == 1 and req == resp:
            tally.right += 1
        elif flagged(evt, req, resp):
            tally.flagged += 1
        elif pickup and (req | resp) <= pickup:
            tally.pickup += 1
        else:
            tally.wrong += 1
            if len(tally.examples) < keep:
                tally.examples.append(evt)


def run(proto: Proto, seed: int, conns: int, dmg: Damage | None = None) -> Tally:
    """Decode ``conns`` damaged connections of ``proto`` (one decoder, one after another)."""
    dmg = dmg or Damage()
    rng = random.Random(f"{proto.name}:{seed}")
    cfg = default_config(proto.name, ports=[proto.port], send_request=True, send_response=True)
    dec = Decoder(build_plugins({proto.name: cfg}))
    tally = Tally()
    uid = 1
    ts = TS0
    pickup: set[int] = set()
    for c in range(conns):
        n = rng.randint(3, 25)
        conv, starts = conversation(proto, rng, c, uid, n, ts)
        uid += n
        tally.transactions += n
        ts = conv.ts + 2_000_000_000
        events: list[dict[str, Any]] = []
        frames, kept = damage(conv.frames, rng, dmg)
        for t, frame in frames:
            events += dec.feed(t, 1, frame)
        events += dec.tick(ts)
        if backlog(starts, kept):
            pickup.update(starts)
        classify(proto, events, tally, pickup)
    classify(proto, dec.flush(), tally, pickup)
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, default=300, help="connections per protocol and seed")
    ap.add_argument("--seeds", default="1,2,3", help="comma-separated seeds")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument("--examples", action="store_true", help="print silently wrong events")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    head = f"{'protocol':<10} {'transactions':>12} {'events':>8} {'right':>8} {'flagged':>8} {'wrong':>6}"
    print(head + f" {'pickup':>7}")
    totals = Tally()
    for name in args.protocols.split(","):
        proto = PROTOCOLS[name]
        t = Tally()
        for seed in seeds:
            r = run(proto, seed, args.conns)
            for f in ("transactions", "events", "right", "flagged", "wrong", "pickup"):
                setattr(t, f, getattr(t, f) + getattr(r, f))
                setattr(totals, f, getattr(totals, f) + getattr(r, f))
            t.examples += r.examples
        print(
            f"{name:<10} {t.transactions:>12} {t.events:>8} {t.right:>8} {t.flagged:>8} {t.wrong:>6} {t.pickup:>7}"
        )
        if args.examples:
            for e in t.examples[:5]:
                print(
                    "   ",
                    json.dumps(
                        {
                            k: v
                            for k, v in e.items()
                            if k
                            in (
                                "status",
                                "query",
                                "url",
                                "http",
                                "error",
                                "redis",
                                "mysql",
                                "response",
                                "method",
                                "thrift",
                                "memcache",
                            )
                        },
                        default=str,
                    )[:600],
                )
    t = totals
    print(
        f"{'total':<10} {t.transactions:>12} {t.events:>8} {t.right:>8} {t.flagged:>8} {t.wrong:>6} {t.pickup:>7}"
    )


if __name__ == "__main__":
    main()
