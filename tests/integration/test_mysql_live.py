"""MySQL decoder against a real MariaDB server and real clients, captured live on ``lo``.

Clients: PyMySQL (text protocol, COM_QUERY, multi-statements) and mysql-connector-python
with ``prepared=True`` (COM_STMT_PREPARE/EXECUTE/CLOSE, binary result sets). Every
transaction is checked against what the client sent and got back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import need
from tests.integration.capture import live_capture
from tests.integration.mysql_server import MysqlServer, mysql_server
from tests.integration.workload import Expected, decode, match, method_of, ssl_cert

pytestmark = pytest.mark.integration

BIG_ROWS = 10_000
DRIVER_SETUP = ("SET ",)


def _modules() -> tuple[Any, Any]:
    try:
        import mysql.connector
        import pymysql
    except ImportError as exc:
        need(f"python packages PyMySQL and mysql-connector-python ({exc})")
        raise
    return pymysql, mysql.connector


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ssl_cert(tmp_path_factory.mktemp("mysql-ssl"))


@pytest.fixture(scope="module")
def server(cert_dir: Path) -> Iterator[MysqlServer]:
    _modules()
    with mysql_server(ssl_dir=cert_dir) as s:
        yield s


def _pymysql(s: MysqlServer, **kw: Any) -> Any:
    pymysql, _ = _modules()
    kw.setdefault("ssl_disabled", "ssl_ca" not in kw)
    return pymysql.connect(
        host=s.host, port=s.port, user=s.user, password=s.password, database=s.database, autocommit=True, **kw
    )


def _connector(s: MysqlServer, **kw: Any) -> Any:
    _, connector = _modules()
    kw.setdefault("ssl_disabled", True)
    return connector.connect(
        host=s.host,
        port=s.port,
        user=s.user,
        password=s.password,
        database=s.database,
        use_pure=True,
        autocommit=True,
        **kw,
    )


class Recorder:
    def __init__(self) -> None:
        self.expected: list[Expected] = []

    def query(self, cur: Any, sql: str, args: Any = None) -> None:
        """Run ``sql`` on a PyMySQL cursor and record what the client got."""
        pymysql, _ = _modules()
        full = cur.mogrify(sql, args) if args is not None else sql
        try:
            n = cur.execute(sql, args)
        except pymysql.err.MySQLError as exc:
            self.expected.append(Expected(full, method_of(full), "Error", num_rows=0, error_code=exc.args[0]))
            return
        if cur.description is not None:
            rows = cur.fetchall()
            self.expected.append(
                Expected(
                    full,
                    method_of(full),
                    num_rows=len(rows),
                    num_fields=len(cur.description),
                    affected_rows=0,
                )
            )
        else:
            self.expected.append(
                Expected(full, method_of(full), num_rows=0, affected_rows=n, insert_id=cur.lastrowid or 0)
            )

    def prepared(self, cur: Any, sql: str, args: tuple[Any, ...], last: list[str]) -> None:
        """Run ``sql`` through a mysql-connector prepared cursor (PREPARE once, EXECUTE)."""
        _, connector = _modules()
        wire = sql.replace("%s", "?")
        params = [_param(a) for a in args]
        if not last or last[0] != wire:
            last[:] = [wire]
            prep = Expected("Request Prepare Statement", method_of(wire), notes=[wire], num_rows=0)
            self.expected.append(prep)
        else:
            prep = None
        try:
            cur.execute(sql, args)
        except connector.Error as exc:
            if prep is not None and exc.errno in (1146, 1064):
                # Failed in PREPARE: that is the transaction, with the SQL as its query.
                self.expected[-1] = Expected(wire, method_of(wire), "Error", error_code=exc.errno)
                last[:] = []
                return
            self.expected.append(
                Expected(wire, method_of(wire), "Error", error_code=exc.errno, params=params)
            )
            return
        if method_of(wire) == "SELECT":  # the connector keeps a stale description after DML
            rows = cur.fetchall()
            self.expected.append(
                Expected(
                    wire, method_of(wire), num_rows=len(rows), num_fields=len(cur.description), params=params
                )
            )
        else:
            self.expected.append(
                Expected(wire, method_of(wire), num_rows=0, affected_rows=cur.rowcount, params=params)
            )


def _param(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def test_pymysql_and_prepared_statements(server: MysqlServer, tmp_path: Path) -> None:
    pymysql, _ = _modules()
    rec = Recorder()
    pcap = tmp_path / "mysql.pcap"
    with live_capture(pcap, server.port, protocol="mysql"):
        conn = _pymysql(server)
        with conn.cursor() as cur:
            rec.query(
                cur,
                "CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64) UNIQUE, "
                "qty INT, price DOUBLE, note TEXT)",
            )
            for i in range(150):
                name = f"item-{i - 1 if i % 30 == 29 else i}"  # every 30th collides: error 1062
                rec.query(
                    cur,
                    "INSERT INTO items (name, qty, price, note) VALUES (%s, %s, %s, %s)",
                    (name, i % 17, i * 1.25, "x" * (i % 50) or None),
                )
            for q in range(30):
                rec.query(cur, "SELECT id, name, qty FROM items WHERE qty > %s ORDER BY id", (q % 17,))
            rec.query(cur, "UPDATE items SET qty = qty + 1 WHERE id <= 50")
            rec.query(cur, "DELETE FROM items WHERE id > 140")
            rec.query(cur, "SELEC 1")
            rec.query(cur, "SELECT * FROM no_such_table")
            rec.query(cur, "CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(40))")
            for chunk in range(10):
                values = ",".join(f"({chunk * 1000 + j}, 'payload-{chunk * 1000 + j}')" for j in range(1000))
                rec.query(cur, f"INSERT INTO big VALUES {values}")
            rec.query(cur, "SELECT * FROM big ORDER BY id")
            rec.query(cur, "SELECT COUNT(*) FROM big")
        conn.close()

        # Multi-statements: two result sets answer one COM_QUERY; one transaction.
        conn = _pymysql(server, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
        with conn.cursor() as cur:
            cur.execute("SELECT 1; SELECT 2, 3 UNION SELECT 4, 5")
            first = len(cur.fetchall())
            cur.nextset()
            second = len(cur.fetchall())
            rec.expected.append(
                Expected(
                    "SELECT 1; SELECT 2, 3 UNION SELECT 4, 5", "SELECT", num_rows=first + second, num_fields=1
                )
            )
        conn.close()

        conn = _connector(server)
        cur = conn.cursor(prepared=True)
        last: list[str] = []
        for i in range(20):
            rec.prepared(cur, "SELECT id, name, qty, price FROM items WHERE id = %s", (i * 7 + 1,), last)
        for i in range(10):
            rec.prepared(
                cur,
                "INSERT INTO items (name, qty, price) VALUES (%s, %s, %s)",
                (f"prep-{i % 9}", i, i + 0.5),
                last,
            )
        rec.prepared(cur, "SELECT id, payload FROM big WHERE id >= %s", (0,), last)
        rec.prepared(cur, "SELECT * FROM nope WHERE id = %s", (1,), last)
        cur.close()
        conn.close()
    events, stats = decode(pcap, "mysql", server.port, send_response=True)
    assert len(rec.expected) >= 200
    assert any(e.status == "Error" and e.error_code == 1062 for e in rec.expected)
    assert any(e.status == "Error" and e.error_code == 1064 for e in rec.expected)
    skipped = match(events, rec.expected, "mysql", DRIVER_SETUP)
    assert skipped <= 6
    big = next(e for e in events if e["query"] == "SELECT * FROM big ORDER BY id")
    assert big["mysql"]["num_rows"] == BIG_ROWS
    assert big["path"] == f"{server.database}.big"
    assert big["response"].split("\n")[:3] == ["id,payload", "0,payload-0", "1,payload-1"]
    assert len(big["response"].strip().split("\n")) == 11
    binary = next(e for e in events if e["query"] == "SELECT id, payload FROM big WHERE id >= ?")
    assert binary["mysql"]["num_rows"] == BIG_ROWS
    assert binary["response"].split("\n")[1] == "0,payload-0"
    errors = [e for e in events if e["status"] == "Error"]
    assert all(e["mysql"]["error_message"][5:7] == ": " for e in errors)
    assert stats.get("mysql.parse_errors", 0) == 0
    assert stats.get("mysql.unmatched_requests", 0) == 0


def test_compressed_and_tls_connections_are_counted_not_decoded(
    server: MysqlServer, cert_dir: Path, tmp_path: Path
) -> None:
    pcap = tmp_path / "mysql-special.pcap"
    with live_capture(pcap, server.port, protocol="mysql"):
        conn = _connector(server, compress=True)
        cur = conn.cursor()
        for i in range(3):
            cur.execute(f"SELECT {i}")
            assert cur.fetchall() == [(i,)]
        conn.close()
        conn = _pymysql(
            server, ssl_ca=str(cert_dir / "cert.pem"), ssl_verify_cert=False, ssl_verify_identity=False
        )
        with conn.cursor() as c:
            c.execute("SELECT 42")
            assert c.fetchall() == ((42,),)
            assert c.execute("SHOW STATUS LIKE 'Ssl_cipher'") == 1
            assert c.fetchall()[0][1]
        conn.close()
        conn = _pymysql(server)
        with conn.cursor() as c:
            c.execute("SELECT 'plain'")
        conn.close()
    events, stats = decode(pcap, "mysql", server.port)
    assert stats.get("mysql.compressed_connections") == 1
    assert stats.get("mysql.tls_connections") == 1
    queries = [e["query"] for e in events if not e["query"].startswith("SET ")]
    assert queries == ["SELECT 'plain'"]
    assert stats.get("mysql.parse_errors", 0) == 0
