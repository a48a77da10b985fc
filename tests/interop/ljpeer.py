"""The real peer: the go-lumber receiver (tests/receiver), built on demand, plus helpers
to run wirebeat itself and to make captures, certificates and Redis servers."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tests.helpers import ROOT, free_port, need, need_tool

RECEIVER_DIR = ROOT / "tests" / "receiver"
RECEIVER_BIN = RECEIVER_DIR / "lj-receiver"


def receiver_binary() -> Path:
    """tests/receiver/lj-receiver, built with ``go build`` when missing or stale."""
    sources = [RECEIVER_DIR / n for n in ("main.go", "go.mod", "go.sum")]
    if RECEIVER_BIN.exists() and all(RECEIVER_BIN.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return RECEIVER_BIN
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if go is None:
        go = need_tool("go")
    r = subprocess.run(
        [go, "build", "-o", str(RECEIVER_BIN), "."],
        cwd=RECEIVER_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        need(f"the go-lumber receiver (go build failed: {r.stderr.strip()[-500:]})")
    return RECEIVER_BIN


class Receiver:
    """One go-lumber receiver process; every (re)start appends to a new output file."""

    def __init__(self, workdir: Path, *args: str, port: int | None = None) -> None:
        self.bin = receiver_binary()
        self.workdir = workdir
        self.port = port or free_port()
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.files: list[Path] = []
        self.logs: list[Path] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        n = len(self.files)
        out = self.workdir / f"recv-{self.port}-{n}.ndjson"
        log = self.workdir / f"recv-{self.port}-{n}.log"
        self.files.append(out)
        self.logs.append(log)
        deadline = time.monotonic() + 15
        while True:
            with open(log, "wb") as err:
                self.proc = subprocess.Popen(
                    [str(self.bin), "-listen", self.address, "-out", str(out), *self.args],
                    stdout=subprocess.PIPE,
                    stderr=err,
                )
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if line.startswith(b"listening on"):
                return self
            self.proc.wait(5)
            # The port may still be held by the previous incarnation for a moment.
            if time.monotonic() > deadline:
                raise RuntimeError(f"receiver did not start: {log.read_text()[-500:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def events(self) -> list[dict[str, Any]]:
        """Every received event, in arrival order. Only the last line of a file may be
        torn (killed mid-write), and only if the file does not end in a newline; such an
        event was never acknowledged."""
        out: list[dict[str, Any]] = []
        for f in self.files:
            if not f.exists():
                continue
            data = f.read_bytes()
            lines = data.split(b"\n")
            last = lines.pop()
            out += [orjson.loads(line) for line in lines]
            if last:
                with contextlib.suppress(orjson.JSONDecodeError):
                    out.append(orjson.loads(last))
        return out


def wirebeat(
    *args: str, timeout: float = 300, check: bool = True, **kw: Any
) -> subprocess.CompletedProcess[bytes]:
    """Run ``wirebeat`` from this checkout (not whatever is installed)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-c", "from shipper.agent.cli import main; main()", *args],
        capture_output=True,
        timeout=timeout,
        env=env,
        **kw,
    )
    if check and r.returncode != 0:
        raise AssertionError(
            f"wirebeat {' '.join(args)} failed ({r.returncode}): {r.stderr.decode()[-2000:]}"
        )
    return r


def wirebeat_popen(*args: str, **kw: Any) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", "from shipper.agent.cli import main; main()", *args], env=env, **kw
    )


def http_capture(path: Path, n: int, per_connection: int = 100) -> Path:
    """A capture of ``n`` HTTP transactions, each with a unique ``url.path`` (/item/<i>)."""
    from benchmarks.synth import Conversation
    from capture.pcapwriter import PcapWriter

    ts = 1_700_000_000_000_000_000
    i = 0
    with PcapWriter(str(path), 1) as w:
        conn = 0
        while i < n:
            conv = Conversation(("10.1.0.1", 20000 + conn % 40000), ("10.2.0.2", 80), ts=ts).handshake()
            for _ in range(min(per_connection, n - i)):
                body = f'{{"item":{i}}}'.encode()
                conv.send(0, f"GET /item/{i} HTTP/1.1\r\nHost: shop.example\r\n\r\n".encode())
                conv.send(
                    1,
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body,
                )
                i += 1
            conv.close()
            w.write_all(conv.frames)
            ts = conv.ts + 1_000_000
            conn += 1
    return path


# -- TLS material ----------------------------------------------------------------------------


def make_pki(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1 signed by it, a certificate for
    another name signed by it, and an unrelated CA."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        need("python package cryptography")
        raise

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(cn: str) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def leaf(ca_key: Any, ca_cert: Any, cn: str, sans: list[x509.GeneralName]) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return key, cert

    def write(stem: str, key: Any, cert: Any) -> None:
        (directory / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            (directory / f"{stem}.key").write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )

    ca_key, ca_cert = ca("wirebeat test CA")
    other_key, other_cert = ca("some other CA")
    srv = leaf(
        ca_key,
        ca_cert,
        "localhost",
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    wrong = leaf(ca_key, ca_cert, "logstash.invalid", [x509.DNSName("logstash.invalid")])
    write("ca", None, ca_cert)
    write("other-ca", None, other_cert)
    write("server", *srv)
    write("wrong-name", *wrong)
    del other_key
    return {
        "ca": directory / "ca.crt",
        "other_ca": directory / "other-ca.crt",
        "cert": directory / "server.crt",
        "key": directory / "server.key",
        "wrong_cert": directory / "wrong-name.crt",
        "wrong_key": directory / "wrong-name.key",
    }


# -- Redis -----------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_server(directory: Path, password: str = "") -> Iterator[int]:
    exe = need_tool("redis-server")
    port = free_port()
    args = [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    if password:
        args += ["--requirepass", password]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        import socket

        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    raise RuntimeError(f"redis-server did not start: {out[-500:]}") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
