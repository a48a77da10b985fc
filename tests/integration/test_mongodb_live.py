"""Live MongoDB wire protocol: FerretDB (SQLite backend) as the server, pymongo as the client
(OP_MSG), traffic captured on lo with tcpdump.

pymongo's command monitoring (``CommandListener``) records every command the client sent,
its request id, the reply or the failure and the duration. The application connection is
one socket (``maxPoolSize=1``) and commands run one after another, so the decoder's
transactions on that connection pair one to one with the recorded commands, by request id
(the test attaches the id the decoder paired on to each event). Each
transaction is checked against its command: method, resource, the full ``request`` text
(the command document as sent), the ``response`` text (the reply as received), status and
error text, sizes and a duration no longer than the one the client measured.

FerretDB 1.24 offers no wire compression (its ``hello`` has no ``compression``), so
OP_COMPRESSED is covered by the unit tests (tests/protocols/test_mongodb_unit.py), as are
the legacy opcodes (pymongo 4 only speaks OP_MSG) with the shared captures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pymongo
import pytest
from bson.son import SON
from pymongo import monitoring
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from capture import CaptureFile
from protocols.mongodb.parser import CODEC
from protocols.mongodb.render import render
from tests.helpers import make_decoder, tcpdump
from tests.integration.mongo_server import ferretdb_server
from tests.oracle.recordings import record_for_oracle

pytestmark = pytest.mark.integration


# Commands pymongo sends as OP_MSG document sequences (kind 1) rather than in the body.
SEQUENCE_FIELDS = {"insert": "documents", "update": "updates", "delete": "deletes"}
COLLECTION_COMMANDS = {
    "find",
    "insert",
    "update",
    "delete",
    "aggregate",
    "count",
    "distinct",
    "findAndModify",
    "create",
    "drop",
    "createIndexes",
    "listIndexes",
    "dropIndexes",
}


class Listener(monitoring.CommandListener):
    def __init__(self) -> None:
        self.pending: dict[int, Any] = {}
        self.log: list[dict[str, Any]] = []

    def started(self, event: Any) -> None:
        self.pending[event.request_id] = event

    def succeeded(self, event: Any) -> None:
        self._done(event, event.reply, None)

    def failed(self, event: Any) -> None:
        self._done(event, None, event.failure)

    def _done(self, event: Any, reply: Any, failure: Any) -> None:
        start = self.pending.pop(event.request_id)
        self.log.append(
            {
                "request_id": event.request_id,
                "name": event.command_name,
                "db": start.database_name,
                "command": start.command,
                "reply": reply,
                "failure": failure,
                "micros": event.duration_micros,
            }
        )


def _roundtrip(d: Any) -> Any:
    """A document as it looks decoded from the wire by the decoder."""
    return bson.decode(bson.encode(d), CODEC)


def expected_resource(name: str, db: str, cmd: Any) -> str:
    value = cmd[name]
    if name in COLLECTION_COMMANDS and isinstance(value, str):
        return f"{db}.{value}"
    if name == "getMore":
        return f"{db}.{cmd['collection']}"
    return f"{db}.$cmd"


def workload(port: int, listener: Listener) -> int:
    client = pymongo.MongoClient(
        "127.0.0.1",
        port,
        maxPoolSize=1,
        event_listeners=[listener],
        serverSelectionTimeoutMS=10_000,
        retryWrites=False,
        retryReads=False,
    )
    db = client["shop"]
    coll = db["orders"]
    ops = 0

    def do(fn: Any, *args: Any, **kw: Any) -> Any:
        nonlocal ops
        ops += 1
        return fn(*args, **kw)

    do(db.create_collection, "orders")
    do(coll.create_index, [("sku", 1)], unique=True)
    for i in range(100):
        do(coll.insert_one, {"sku": f"A-{i:04d}", "qty": i, "price": i * 1.25, "tags": ["x", "<y>"]})
    time.sleep(0.1)
    do(coll.insert_many, [{"sku": f"B-{i:04d}", "qty": i % 17, "note": "é" * (i % 5)} for i in range(400)])
    time.sleep(0.1)
    for i in range(60):
        do(
            lambda i=i: list(
                coll.find({"qty": {"$gte": i % 10}}, {"_id": 0, "sku": 1, "qty": 1}).sort("sku", -1).limit(5)
            )
        )
    # A large result fetched in batches: one find and its getMores.
    got = do(lambda: list(coll.find({"sku": {"$regex": "^B-"}}, batch_size=60)))
    assert len(got) == 400
    time.sleep(0.1)
    for i in range(20):
        do(coll.update_one, {"sku": f"A-{i:04d}"}, {"$inc": {"qty": 100}})
    do(coll.update_many, {"qty": {"$lt": 3}}, {"$set": {"low": True}})
    for i in range(10):
        do(coll.delete_one, {"sku": f"A-{80 + i:04d}"})
    do(coll.delete_many, {"low": True})
    for i in range(5):
        do(
            lambda i=i: list(
                coll.aggregate(
                    [{"$match": {"qty": {"$gt": i}}}, {"$group": {"_id": "$qty", "n": {"$sum": 1}}}]
                )
            )
        )
        do(coll.count_documents, {"qty": {"$gt": i}})
        do(coll.distinct, "qty", {"qty": {"$lt": 5 + i}})
    do(coll.estimated_document_count)
    do(coll.find_one_and_update, {"sku": "A-0001"}, {"$set": {"seen": 1}})
    do(lambda: list(db.list_collections()))
    do(lambda: list(coll.list_indexes()))
    # A duplicate key: the insert command succeeds with writeErrors.
    with pytest.raises(DuplicateKeyError):
        do(coll.insert_one, {"sku": "A-0002"})
    with pytest.raises(BulkWriteError):
        do(coll.insert_many, [{"sku": "C-1"}, {"sku": "C-1"}], ordered=True)
    # Command errors: ok: 0.
    with pytest.raises(OperationFailure):
        do(db.command, "noSuchCommand")
    with pytest.raises(OperationFailure):
        do(lambda: list(coll.find({"$bogus": 1})))
    # (Unacknowledged writes, OP_MSG with moreToCome, are left to the unit tests: FerretDB
    # 1.24 answers them, which pymongo takes for a protocol error.)
    do(db.command, SON([("ping", 1)]))
    do(db.drop_collection, "orders")
    time.sleep(0.2)
    client.close()
    return ops


@pytest.fixture(scope="session")
def ferretdb() -> Iterator[int]:
    with ferretdb_server() as port:
        yield port


def test_ferretdb_workload(ferretdb: int, tmp_path: Path) -> None:
    port = ferretdb
    listener = Listener()
    pcap = tmp_path / "mongo.pcap"
    # settle: libpcap hands packets over a ring block at a time (a 1 s block timeout), so
    # the last packets need time to reach the file before tcpdump is stopped.
    with tcpdump(pcap, f"tcp port {port}", settle=1.5):
        ops = workload(port, listener)
    record_for_oracle(pcap, [{"type": "mongodb", "ports": [port]}])
    dec = make_decoder(
        {
            "mongodb": {
                "ports": [port],
                "send_request": True,
                "send_response": True,
                "max_docs": 0,
                "max_doc_length": 0,
            }
        }
    )
    # Test instrumentation: each event also carries the request id the decoder paired on.
    plug = dec.registry.plugins[0]
    to_event = plug.to_event

    def with_id(txn: Any) -> dict[str, Any]:
        evt = to_event(txn)
        evt["_request_id"] = txn.request.request_id
        return evt

    plug.to_event = with_id  # type: ignore[method-assign]
    events: list[dict[str, Any]] = []
    for ts, lt, frame, _wl in CaptureFile(str(pcap)):
        events += dec.feed(ts, lt, frame)
    events += dec.flush()
    stats = dec.stats
    assert not any(k.startswith("tcp.gap") for k in stats), stats
    assert ops >= 200
    log = listener.log
    assert len(log) >= 200

    by_port: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        by_port.setdefault(e["source"]["port"], []).append(e)
    app_port = max(by_port, key=lambda p: len(by_port[p]))
    mine = by_port[app_port]
    # The connection handshake (hello) is not a monitored command.
    while mine and mine[0]["method"] in ("hello", "isMaster", "ismaster"):
        mine.pop(0)
    # Paired on request id: the decoder's transactions are exactly the monitored commands.
    assert [e["_request_id"] for e in mine] == [r["request_id"] for r in log]
    assert [e["method"] for e in mine] == [r["name"] for r in log]

    checked = errors = 0
    for evt, rec in zip(mine, log, strict=True):
        name, db, cmd = rec["name"], rec["db"], rec["command"]
        assert evt["type"] == "mongodb"
        assert evt["resource"] == expected_resource(name, db, cmd), (evt["resource"], name)
        body = {k: v for k, v in _roundtrip(cmd).items() if k not in ("lsid", SEQUENCE_FIELDS.get(name))}
        body.setdefault("$db", db)
        assert evt["request"] == f"{evt['resource']}.{name}({render(body)})"
        short = {k: v for k, v in body.items() if k != "documents"}
        assert evt["query"] == f"{evt['resource']}.{name}({render(short)})"
        assert evt["source"]["bytes"] > 16
        assert evt["destination"]["bytes"] > 16
        dur = evt["event"]["end"] - evt["event"]["start"]
        assert 0 <= dur <= rec["micros"] * 1000 + 5_000_000, (dur, rec["micros"])
        if rec["failure"] is not None:
            errors += 1
            assert evt["status"] == "Error"
            assert evt["mongodb"]["error"] == rec["failure"]["errmsg"]
            assert evt["response"] == render(_roundtrip(rec["failure"]))
        else:
            reply = _roundtrip(rec["reply"])
            assert evt["response"] == render(reply)
            if "writeErrors" in reply:
                errors += 1
                assert evt["status"] == "Error"
                assert evt["mongodb"]["error"] == render(reply["writeErrors"])
            else:
                assert evt["status"] == "OK", evt
                assert "error" not in evt["mongodb"]
        checked += 1
    assert checked == len(log)
    assert errors >= 4
    assert any(r["name"] == "getMore" for r in log)
    print(f"ferretdb: {len(log)} commands checked ({errors} errors)")
