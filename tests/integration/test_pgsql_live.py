"""PostgreSQL decoder against a real PostgreSQL 15 server and psycopg 3, captured live on ``lo``.

Covers the simple query protocol (client-side binding, several statements in one Query),
the extended protocol (server-side binding), named prepared statements, pipeline mode,
COPY in both directions, notices, errors and a 10,000-row result. Every transaction is
checked against what the client sent and got back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import need
from tests.integration.capture import live_capture
from tests.integration.pg_server import PgServer, pg_server
from tests.integration.workload import Expected, decode, match, method_of, ssl_cert

pytestmark = pytest.mark.integration

BIG_ROWS = 10_000


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        need(f"python package psycopg ({exc})")
        raise
    return psycopg


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ssl_cert(tmp_path_factory.mktemp("pg-ssl"))


@pytest.fixture(scope="module")
def server(cert_dir: Path) -> Iterator[PgServer]:
    _psycopg()
    with pg_server(ssl_dir=cert_dir) as s:
        yield s


def _dollars(sql: str) -> str:
    """psycopg's server-side binding: ``%s`` placeholders become ``$1, $2 ...``."""
    n = iter(range(1, 1000))
    return re.sub(r"%s", lambda _m: f"${next(n)}", sql)


class Recorder:
    def __init__(self) -> None:
        self.expected: list[Expected] = []

    def run(self, cur: Any, sql: str, params: Any = None, prepare: bool | None = None) -> None:
        """Server-side binding (extended protocol) on a regular cursor."""
        psycopg = _psycopg()
        wire = _dollars(sql) if params is not None else sql
        try:
            cur.execute(sql, params, prepare=prepare)
        except psycopg.Error as exc:
            self.expected.append(Expected(wire, method_of(wire), "Error", error_code=exc.sqlstate))
            return
        self._result(cur, wire)

    def simple(self, cur: Any, sql: str, params: Any = None) -> None:
        """Client-side binding on a ClientCursor: a simple Query message."""
        psycopg = _psycopg()
        full = cur.mogrify(sql, params)
        statements = [full.strip()]  # one statement per call (multi-statement Queries are spelled out)
        try:
            cur.execute(sql, params)
        except psycopg.Error as exc:
            assert len(statements) == 1, "errors are only provoked by single-statement queries here"
            self.expected.append(
                Expected(statements[0], method_of(statements[0]), "Error", error_code=exc.sqlstate)
            )
            return
        assert len(statements) == 1
        self._result(cur, statements[0])

    def _result(self, cur: Any, wire: str) -> None:
        if cur.description is not None:
            rows = cur.fetchall()
            self.expected.append(
                Expected(wire, method_of(wire), num_rows=len(rows), num_fields=len(cur.description))
            )
        else:
            self.expected.append(Expected(wire, method_of(wire), num_rows=0, num_fields=0))


def test_psycopg_workload(server: PgServer, tmp_path: Path) -> None:
    psycopg = _psycopg()
    rec = Recorder()
    pcap = tmp_path / "pgsql.pcap"
    with (
        live_capture(pcap, server.port, protocol="pgsql"),
        psycopg.connect(server.dsn(sslmode="disable"), autocommit=True) as conn,
    ):
        cur = conn.cursor()
        rec.run(cur, "CREATE TABLE items (id serial PRIMARY KEY, name text UNIQUE, qty int, price float8)")
        for i in range(120):
            name = f"item-{i - 1 if i % 30 == 29 else i}"  # every 30th collides: 23505
            rec.run(cur, "INSERT INTO items (name, qty, price) VALUES (%s, %s, %s)", (name, i % 13, i * 0.5))
        for q in range(20):
            rec.run(cur, "SELECT id, name, qty FROM items WHERE qty > %s ORDER BY id", (q % 13,))
        rec.run(cur, "SELEC 1")
        rec.run(cur, "SELECT * FROM no_such_table")
        rec.run(cur, "SELECT g, md5(g::text) FROM generate_series(1, %s) AS g", (BIG_ROWS,))
        rec.run(cur, "UPDATE items SET qty = qty + 1 WHERE id <= %s", (40,))

        # Named prepared statements.
        for i in range(15):
            rec.run(cur, "SELECT name, price FROM items WHERE id = %s", (i + 1,), prepare=True)
        rec.run(cur, "INSERT INTO items (name) VALUES (%s)", ("item-0",), prepare=True)

        # Simple query protocol, one and several statements per Query.
        ccur = psycopg.ClientCursor(conn)
        for i in range(10):
            rec.simple(ccur, "SELECT name FROM items WHERE id = %s", (i + 3,))
        # psycopg only exposes the last result of a multi-statement Query; the others are known.
        ccur.execute(
            "INSERT INTO items (name, qty) VALUES ('multi-1', 1); SELECT count(*) FROM items; "
            "UPDATE items SET qty = 0 WHERE name = 'multi-1'"
        )
        assert ccur.rowcount == 1
        rec.expected += [
            Expected(
                "INSERT INTO items (name, qty) VALUES ('multi-1', 1)", "INSERT", num_rows=0, num_fields=0
            ),
            Expected("SELECT count(*) FROM items", "SELECT", num_rows=1, num_fields=1),
            Expected("UPDATE items SET qty = 0 WHERE name = 'multi-1'", "UPDATE", num_rows=0, num_fields=0),
        ]
        rec.simple(ccur, "SELECT 'a;b' AS semi, $$x;y$$ AS dollar")
        rec.simple(ccur, "DO $$BEGIN RAISE NOTICE 'hello from plpgsql'; END$$")
        rec.simple(ccur, "SELECT 1/0")

        # COPY in both directions (CopyInResponse / CopyOutResponse inside a Query).
        with cur.copy("COPY items (name, qty) FROM STDIN") as copy:
            for i in range(5):
                copy.write_row((f"copied-{i}", i))
        rec.expected.append(Expected("COPY items (name, qty) FROM STDIN", "COPY", num_rows=0))
        with cur.copy("COPY (SELECT name FROM items WHERE name LIKE 'copied-%') TO STDOUT") as copy:
            copied = list(copy.rows())
        rec.expected.append(
            Expected(
                "COPY (SELECT name FROM items WHERE name LIKE 'copied-%') TO STDOUT",
                "COPY",
                num_rows=len(copied),
            )
        )

        # Pipeline mode: many Parse/Bind/Describe/Execute before one Sync.
        with conn.pipeline():
            curs = []
            for i in range(20):
                c = conn.cursor()
                c.execute("INSERT INTO items (name, qty) VALUES (%s, %s)", (f"pipe-{i}", i))
                curs.append(c)
            sel = conn.cursor()
            sel.execute("SELECT name FROM items WHERE name LIKE %s ORDER BY id", ("pipe-%",))
        for _ in curs:
            rec.expected.append(
                Expected("INSERT INTO items (name, qty) VALUES ($1, $2)", "INSERT", num_rows=0)
            )
        rows = sel.fetchall()
        assert len(rows) == 20
        rec.expected.append(
            Expected(
                "SELECT name FROM items WHERE name LIKE $1 ORDER BY id",
                "SELECT",
                num_rows=20,
                num_fields=1,
            )
        )
    events, stats = decode(pcap, "pgsql", server.port, send_response=True)
    assert len(rec.expected) >= 200
    assert any(e.error_code == "23505" for e in rec.expected)
    assert any(e.error_code == "42601" for e in rec.expected)
    match(events, rec.expected, "pgsql")
    big = next(e for e in events if e["query"].startswith("SELECT g, md5"))
    assert big["pgsql"]["num_rows"] == BIG_ROWS
    lines = big["response"].strip().split("\n")
    assert lines[0] == "g,md5" and lines[1].startswith("1,") and len(lines) == 11
    err = next(e for e in events if e["status"] == "Error" and e["pgsql"]["error_code"] == "23505")
    assert err["pgsql"]["error_severity"] == "ERROR"
    assert "duplicate key" in err["pgsql"]["error_message"]
    semi = next(e for e in events if e["query"].startswith("SELECT 'a;b'"))
    assert semi["response"] == "semi,dollar\na;b,x;y\n"
    assert stats.get("pgsql.parse_errors", 0) == 0
    assert stats.get("pgsql.unmatched_requests", 0) == 0


def test_tls_connection_is_counted_not_decoded(server: PgServer, tmp_path: Path) -> None:
    psycopg = _psycopg()
    pcap = tmp_path / "pgsql-tls.pcap"
    with live_capture(pcap, server.port, protocol="pgsql"):
        with psycopg.connect(server.dsn(sslmode="require"), autocommit=True) as conn:
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (
                True,
            )
            conn.execute("SELECT 1")
        with psycopg.connect(server.dsn(sslmode="disable"), autocommit=True) as conn:
            conn.execute("SELECT 'plain'")
    events, stats = decode(pcap, "pgsql", server.port)
    assert stats.get("pgsql.encrypted_connections") == 1
    assert [e["query"] for e in events] == ["SELECT 'plain'"]
