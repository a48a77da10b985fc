"""MySQL decoder benchmark: ``python benchmarks/bench_mysql.py [--transactions N]``.

Each connection logs in, then mixes text queries with small result sets, INSERTs (OK
packets), errors, and prepared statements executed with bound parameters.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import dbwire as w
from benchmarks.dbbench import run
from benchmarks.synth import Conversation

C, S = 0, 1
ROWS = [[str(i), f"user-{i}@example.com", "2024-01-01 00:00:00"] for i in range(5)]
RESULT, _ = w.my_result_set(["id", "email", "created"], ROWS, table="users", schema="app")
SELECT = w.my_query("SELECT id, email, created FROM users WHERE org = 42 LIMIT 5")
INSERT = w.my_query("INSERT INTO events (kind, payload) VALUES ('click', '{\"x\": 1}')")
INSERT_OK = w.my_ok(1, affected=1, insert_id=1234)
BAD = w.my_query("SELEC 1")
BAD_ERR = w.my_err(1, 1064, "42000", "You have an error in your SQL syntax")
PREPARE = w.my_prepare("SELECT id, email, created FROM users WHERE id = ?")
PREPARE_OK = w.my_prepare_ok(1, 3, 1)
EXECUTE = w.my_execute(1, [(8, struct.pack("<q", 7))])


def prologue(conv: Conversation) -> None:
    conv.send(S, w.my_greeting()).send(C, w.my_handshake_response()).send(S, w.my_ok(2))


def workload(conv: Conversation, n: int, conn_no: int) -> int:
    conv.send(C, PREPARE).send(S, PREPARE_OK)
    for i in range(1, n):
        k = i % 10
        if k < 5:
            conv.send(C, SELECT).send(S, RESULT)
        elif k < 8:
            conv.send(C, INSERT).send(S, INSERT_OK)
        elif k == 8:
            conv.send(C, EXECUTE).send(S, RESULT)
        else:
            conv.send(C, BAD).send(S, BAD_ERR)
    return n


if __name__ == "__main__":
    run("mysql", 3306, workload, prologue)
