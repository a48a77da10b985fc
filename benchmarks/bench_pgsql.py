"""PostgreSQL decoder benchmark: ``python benchmarks/bench_pgsql.py [--transactions N]``.

Each connection does the startup exchange, then mixes simple queries with small result
sets, INSERTs, errors, and extended-protocol executes (Parse/Bind/Describe/Execute/Sync).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import dbwire as w
from benchmarks.dbbench import run
from benchmarks.synth import Conversation

C, S = 0, 1
ROWS = b"".join(w.pg_data_row([str(i), f"user-{i}@example.com", "2024-01-01 00:00:00"]) for i in range(5))
RESULT = w.pg_row_description(["id", "email", "created"]) + ROWS + w.pg_complete("SELECT 5") + w.pg_ready()
SELECT = w.pg_query("SELECT id, email, created FROM users WHERE org = 42 LIMIT 5")
INSERT = w.pg_query("INSERT INTO events (kind, payload) VALUES ('click', '{\"x\": 1}')")
INSERT_OK = w.pg_complete("INSERT 0 1") + w.pg_ready()
BAD = w.pg_query("SELEC 1")
BAD_ERR = w.pg_error("42601", 'syntax error at or near "SELEC"') + w.pg_ready()
EXTENDED = (
    w.pg_parse("SELECT id, email, created FROM users WHERE id = $1")
    + w.pg_bind(params=[b"7"])
    + w.pg_describe()
    + w.pg_execute()
    + w.pg_sync()
)
EXTENDED_RESULT = w.pg_msg(b"1") + w.pg_msg(b"2") + RESULT


def prologue(conv: Conversation) -> None:
    conv.send(C, w.pg_startup())
    conv.send(S, w.pg_msg(b"R", b"\0\0\0\0") + w.pg_msg(b"S", b"server_version\x0015\0") + w.pg_ready())


def workload(conv: Conversation, n: int, conn_no: int) -> int:
    for i in range(n):
        k = i % 10
        if k < 5:
            conv.send(C, SELECT).send(S, RESULT)
        elif k < 8:
            conv.send(C, INSERT).send(S, INSERT_OK)
        elif k == 8:
            conv.send(C, EXTENDED).send(S, EXTENDED_RESULT)
        else:
            conv.send(C, BAD).send(S, BAD_ERR)
    return n


if __name__ == "__main__":
    run("pgsql", 5432, workload, prologue)
