"""A throw-away MariaDB server on 127.0.0.1 for live tests (started and stopped by the test)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import free_port, need

USER = "wb"
PASSWORD = "wb-secret"
DATABASE = "wirebeat"


class MysqlServer:
    def __init__(self, datadir: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.datadir = datadir
        self.port = port
        self.proc = proc
        self.host = "127.0.0.1"
        self.user = USER
        self.password = PASSWORD
        self.database = DATABASE


def _binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        need(f"MariaDB ({name}; apt-get install mariadb-server)")
    assert path is not None
    return path


@contextlib.contextmanager
def mysql_server(ssl_dir: Path | None = None) -> Iterator[MysqlServer]:
    mariadbd = _binary("mariadbd")
    install = _binary("mariadb-install-db")
    tmp = Path(tempfile.mkdtemp(prefix="wb-mariadb-"))
    datadir = tmp / "data"
    sock = tmp / "mysqld.sock"
    subprocess.run(
        [
            install,
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    port = free_port()
    args = [
        mariadbd,
        "--no-defaults",
        "--user=root",
        f"--datadir={datadir}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={sock}",
        f"--pid-file={tmp / 'mysqld.pid'}",
        f"--log-error={tmp / 'error.log'}",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=32M",
        "--max-allowed-packet=64M",
    ]
    if ssl_dir is not None:
        args += [f"--ssl-cert={ssl_dir / 'cert.pem'}", f"--ssl-key={ssl_dir / 'key.pem'}"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import pymysql

        deadline = time.monotonic() + 60
        while True:
            try:
                conn = pymysql.connect(unix_socket=str(sock), user="root", password="")
                break
            except pymysql.err.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (tmp / "error.log").read_text(errors="replace")
                        if (tmp / "error.log").exists()
                        else ""
                    )
                    raise RuntimeError(f"mariadbd did not start: {log[-2000:]}") from None
                time.sleep(0.2)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DATABASE}")
            cur.execute(f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
            cur.execute(f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'%'")
        conn.close()
        yield MysqlServer(datadir, port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
