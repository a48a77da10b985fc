"""A throw-away PostgreSQL 15 server on 127.0.0.1 for live tests (run as user postgres)."""

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

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER = "wb"
PASSWORD = "wb-secret"
DATABASE = "wirebeat"


class PgServer:
    def __init__(self, port: int) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.user = USER
        self.password = PASSWORD
        self.database = DATABASE

    def dsn(self, **extra: str) -> str:
        opts = " ".join(f"{k}={v}" for k, v in extra.items())
        return (
            f"host={self.host} port={self.port} user={self.user} password={self.password} "
            f"dbname={self.database} {opts}"
        ).strip()


def _as_postgres() -> list[str]:
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        need("runuser (util-linux) to run postgres as a non-root user")
    return [str(runuser), "-u", "postgres", "--"]


@contextlib.contextmanager
def pg_server(ssl_dir: Path | None = None) -> Iterator[PgServer]:
    if not (PG_BIN / "postgres").exists():
        need("PostgreSQL 15 (apt-get install postgresql-15)")
    tmp = Path(tempfile.mkdtemp(prefix="wb-pg-"))
    os.chmod(tmp, 0o755)
    data = tmp / "data"
    pwfile = tmp / "pw"
    pwfile.write_text(PASSWORD + "\n")
    sudo = _as_postgres()
    if sudo:
        shutil.chown(tmp, "postgres")
        shutil.chown(pwfile, "postgres")
    subprocess.run(
        [
            *sudo,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    port = free_port()
    args = [
        *sudo,
        str(PG_BIN / "postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-k",
        str(tmp),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "shared_buffers=16MB",
    ]
    if ssl_dir is not None:
        for name in ("cert.pem", "key.pem"):
            shutil.copy(ssl_dir / name, tmp / name)
            if sudo:
                shutil.chown(tmp / name, "postgres")
            os.chmod(tmp / name, 0o600)
        args += [
            "-c",
            "ssl=on",
            "-c",
            f"ssl_cert_file={tmp / 'cert.pem'}",
            "-c",
            f"ssl_key_file={tmp / 'key.pem'}",
        ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(tmp / "log", "wb"))  # noqa: SIM115
    try:
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(
                    host=str(tmp), port=port, user=USER, dbname="postgres", autocommit=True
                ) as c:
                    c.execute(f"CREATE DATABASE {DATABASE}")
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"postgres did not start: {(tmp / 'log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)
        yield PgServer(port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
