"""MongoDB decoder throughput: a synthesized capture of 200,000+ OP_MSG transactions (finds
with filters returning a few documents, single and batched inserts, updates) over many
connections, decoded with protocols.decoder.Decoder through feed_many.
Run: python benchmarks/bench_mongodb.py [--send-response]"""

from __future__ import annotations

import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bson
from bson.objectid import ObjectId
from bson.son import SON

from benchmarks.synth import Conversation, decode_timed, interleave
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

CONNECTIONS = 400
PER_CONN = 520  # 208,000 transactions


def op_msg(rid: int, to: int, body: bytes, seq: bytes = b"") -> bytes:
    data = b"\0\0\0\0\0" + body + seq  # flag bits 0, then a kind-0 section
    return struct.pack("<iiii", 16 + len(data), rid, to, 2013) + data


def sequence(ident: str, docs: list[bytes]) -> bytes:
    payload = ident.encode() + b"\0" + b"".join(docs)
    return b"\1" + struct.pack("<i", 4 + len(payload)) + payload


def frames() -> list[tuple[int, bytes]]:
    lsid = {"id": bson.Binary(b"0123456789abcdef", 4)}
    convs = []
    rid = 1
    for c in range(CONNECTIONS):
        conv = Conversation(
            (f"10.1.{c // 250}.{c % 250 + 1}", 20000 + c),
            ("10.9.0.1", 27017),
            ts=1_700_000_000_000_000_000 + c * 1000,
        )
        conv.handshake()
        for i in range(PER_CONN):
            k = i % 4
            if k in (0, 1):
                body = bson.encode(
                    SON(
                        [
                            ("find", "orders"),
                            ("filter", {"customer": f"c{c}", "status": {"$in": ["open", "paid"]}}),
                            ("sort", {"created": -1}),
                            ("limit", 3),
                            ("lsid", lsid),
                            ("$db", "shop"),
                        ]
                    )
                )
                docs = [
                    {
                        "_id": ObjectId(),
                        "customer": f"c{c}",
                        "status": "open",
                        "total": 12.5 + j,
                        "items": [1, 2, 3],
                    }
                    for j in range(3)
                ]
                reply = bson.encode(
                    {"cursor": {"firstBatch": docs, "id": bson.Int64(0), "ns": "shop.orders"}, "ok": 1.0}
                )
            elif k == 2:
                body = bson.encode(
                    SON([("insert", "orders"), ("ordered", True), ("lsid", lsid), ("$db", "shop")])
                )
                n = 1 + i % 5
                seq = sequence(
                    "documents",
                    [bson.encode({"_id": ObjectId(), "customer": f"c{c}", "n": j}) for j in range(n)],
                )
                conv.send(0, op_msg(rid, 0, body, seq), ack=False)
                conv.send(1, op_msg(rid + 1, rid, bson.encode({"n": n, "ok": 1.0})), ack=False)
                rid += 2
                continue
            else:
                body = bson.encode(
                    SON([("update", "orders"), ("ordered", True), ("lsid", lsid), ("$db", "shop")])
                )
                seq = sequence(
                    "updates", [bson.encode({"q": {"customer": f"c{c}"}, "u": {"$inc": {"visits": 1}}})]
                )
                conv.send(0, op_msg(rid, 0, body, seq), ack=False)
                conv.send(
                    1, op_msg(rid + 1, rid, bson.encode({"n": 1, "nModified": 1, "ok": 1.0})), ack=False
                )
                rid += 2
                continue
            conv.send(0, op_msg(rid, 0, body), ack=False)
            conv.send(1, op_msg(rid + 1, rid, reply), ack=False)
            rid += 2
        conv.close()
        convs.append(conv.frames)
    return list(interleave(convs))


def main() -> None:
    send_response = "--send-response" in sys.argv
    t0 = time.perf_counter()
    pkts = frames()
    print(f"synthesized {len(pkts):,} packets in {time.perf_counter() - t0:.1f}s")
    cfg = default_config("mongodb", send_request=send_response, send_response=send_response)
    dec = Decoder(build_plugins({"mongodb": cfg}))
    n, _first, dt = decode_timed(dec, [(ts, 1, frame, len(frame)) for ts, frame in pkts])
    assert n == CONNECTIONS * PER_CONN, (n, dec.stats)
    label = "mongodb (send_request/send_response)" if send_response else "mongodb"
    print(f"{label}: {n:,} transactions, {len(pkts):,} packets in {dt:.2f}s")
    print(f"{label}: {n / dt:,.0f} transactions/s, {len(pkts) / dt:,.0f} packets/s")


if __name__ == "__main__":
    main()
