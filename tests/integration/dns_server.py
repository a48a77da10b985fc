"""A throw-away BIND 9 (Debian's ``named``) on 127.0.0.1: a free port for UDP and TCP, a
temporary directory, two DNSSEC-signed test zones (NSEC and NSEC3), zone transfers
allowed, transfer messages kept small so an AXFR takes several messages."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

from tests.helpers import need_tool

ZONE = "test.example"
ZONE3 = "n3.example"
#: Records in the big zone (enough for several transfer messages).
BIG_HOSTS = 120
BIG_TXT = " ".join(f"chunk-{i:03d}-" + "x" * 40 for i in range(24))  # about 1.2 KB: forces TC over UDP


def zone_text(origin: str) -> str:
    lines = [
        "$TTL 300",
        f"@ IN SOA ns1.{origin}. hostmaster.{origin}. 2024010101 3600 600 86400 300",
        f"@ IN NS ns1.{origin}.",
        f"@ IN MX 10 mail.{origin}.",
        f"@ IN MX 20 mail2.{origin}.",
        '@ IN TXT "v=spf1 -all"',
        '@ IN CAA 0 issue "letsencrypt.org"',
        "ns1 IN A 127.0.0.1",
        "www IN A 192.0.2.10",
        "www IN A 192.0.2.11",
        "www IN AAAA 2001:db8::10",
        "mail IN A 192.0.2.25",
        "mail2 IN A 192.0.2.26",
        "alias IN CNAME www",
        "_sip._tcp IN SRV 10 60 5060 sip",
        "sip IN A 192.0.2.50",
        '"quoted" IN TXT "with \\"quotes\\" and \\\\ backslash" "second string"',
        "big IN TXT " + " ".join(f'"{chunk}"' for chunk in _chunks(BIG_TXT, 200)),
        "10 IN PTR www",
    ]
    lines += [f"h{i:03d} IN A 198.51.100.{i % 250 + 1}" for i in range(BIG_HOSTS)]
    return "\n".join(lines) + "\n"


def _chunks(s: str, n: int) -> list[str]:
    return [s[i : i + n] for i in range(0, len(s), n)]


@attrs.frozen
class Bind:
    port: int
    directory: Path


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port for UDP and TCP")


def _sign(tmp: Path, origin: str, nsec3: bool) -> None:
    keygen = need_tool("dnssec-keygen")
    signzone = need_tool("dnssec-signzone")
    for extra in (["-f", "KSK"], []):
        subprocess.run(
            [keygen, "-q", "-K", str(tmp), "-a", "ECDSAP256SHA256", *extra, origin],
            check=True,
            capture_output=True,
            cwd=tmp,
        )
    args = [signzone, "-q", "-S", "-K", str(tmp), "-o", origin, "-f", f"{origin}.signed"]
    if nsec3:
        args += ["-3", "a1b2c3d4", "-H", "0"]
    subprocess.run([*args, f"{origin}.db"], check=True, capture_output=True, cwd=tmp)


@contextlib.contextmanager
def bind_server() -> Iterator[Bind]:
    named = need_tool("named")
    port = free_udp_tcp_port()
    with tempfile.TemporaryDirectory(prefix="wirebeat-bind-") as d:
        tmp = Path(d)
        for origin, nsec3 in ((ZONE, False), (ZONE3, True)):
            (tmp / f"{origin}.db").write_text(zone_text(origin))
            _sign(tmp, origin, nsec3)
        (tmp / "named.conf").write_text(
            f"""
options {{
    directory "{tmp}";
    pid-file "{tmp}/named.pid";
    session-keyfile "{tmp}/session.key";
    managed-keys-directory "{tmp}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-transfer {{ any; }};
    dnssec-validation no;
    transfer-message-size 1024;
    minimal-responses no;
    notify no;
}};
controls {{ }};
zone "{ZONE}" {{ type primary; file "{ZONE}.signed"; }};
zone "{ZONE3}" {{ type primary; file "{ZONE3}.signed"; }};
"""
        )
        proc = subprocess.Popen(
            [named, "-g", "-c", str(tmp / "named.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_ready(proc, port)
            yield Bind(port, tmp)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], port: int) -> None:
    import dns.message
    import dns.query

    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"named exited: {err[-2000:]}")
        with contextlib.suppress(Exception):
            r = dns.query.udp(dns.message.make_query(f"www.{ZONE}", "A"), "127.0.0.1", port=port, timeout=0.5)
            if r.answer:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("named did not answer")
        time.sleep(0.1)
