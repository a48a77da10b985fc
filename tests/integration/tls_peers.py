"""Real TLS peers for the live tests: a test PKI made with ``cryptography``, Python ``ssl``
servers and clients, ``openssl s_server`` / ``s_client``, and tshark's view of the same
capture (JA3, JA3S, groups) as the independent reference."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.helpers import need_tool, tcpdump

PCAP_HEADER = 24
#: What the clients send: an HTTP request, so that ``openssl s_server -www`` answers too.
REQUEST = b"GET / HTTP/1.0\r\n\r\n"
T0 = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(days=1)


class Cert:
    """A certificate the test made: its DER, key, and the values it put in."""

    def __init__(self, cert: x509.Certificate, key: Any, subject: list[tuple[str, str]], serial: int) -> None:
        self.cert = cert
        self.key = key
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self.subject = subject
        self.serial = serial

    @property
    def dn(self) -> str:
        """The subject as Packetbeat (Go) prints it: most specific first."""
        return ",".join(f"{k}={v}" for k, v in reversed(self.subject))

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


_OIDS = {
    "C": NameOID.COUNTRY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
}


def make_cert(
    subject: list[tuple[str, str]],
    key: Any,
    issuer: Cert | None = None,
    ca: bool = False,
    serial: int | None = None,
    sans: list[str] = (),  # type: ignore[assignment]
    days: int = 30,
    client: bool = False,
) -> Cert:
    name = x509.Name([x509.NameAttribute(_OIDS[k], v) for k, v in subject])
    serial = serial if serial is not None else x509.random_serial_number()
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(T0)
        .not_valid_after(T0 + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        names: list[x509.GeneralName] = []
        for s in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                names.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if not ca:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    signer = issuer.key if issuer else key
    return Cert(b.sign(signer, hashes.SHA256()), key, subject, serial)


class Pki:
    """Root CA → intermediate → server certificates; a client certificate; a rogue CA."""

    def __init__(self, directory: Path, server_names: list[str]) -> None:
        self.dir = directory
        self.root = make_cert(
            [("C", "DE"), ("O", "Wirebeat Test"), ("CN", "Wirebeat Root CA")],
            rsa.generate_private_key(65537, 2048),
            ca=True,
            days=3650,
        )
        self.inter = make_cert(
            [("C", "DE"), ("O", "Wirebeat Test"), ("OU", "Issuing"), ("CN", "Wirebeat Intermediate CA")],
            ec.generate_private_key(ec.SECP384R1()),
            issuer=self.root,
            ca=True,
            days=1000,
        )
        sans = [*server_names, "127.0.0.1"]
        self.server_ec = make_cert(
            [("O", "Wirebeat Test"), ("CN", "localhost")],
            ec.generate_private_key(ec.SECP256R1()),
            issuer=self.inter,
            sans=sans,
            serial=0x5EC0DE01,
        )
        self.server_rsa = make_cert(
            [("C", "DE"), ("O", "Wirebeat Test"), ("CN", "rsa.localhost")],
            rsa.generate_private_key(65537, 3072),
            issuer=self.inter,
            sans=sans,
            days=90,
        )
        self.client = make_cert(
            [("O", "Wirebeat Test"), ("OU", "Clients"), ("CN", "client-1")],
            rsa.generate_private_key(65537, 2048),
            issuer=self.root,
            client=True,
            serial=0xC11E47,
        )
        self.rogue = make_cert([("CN", "Rogue CA")], ec.generate_private_key(ec.SECP256R1()), ca=True)
        self.write("root.pem", self.root.pem())
        self.write("rogue.pem", self.rogue.pem())
        self.write("server-ec.pem", self.server_ec.pem() + self.inter.pem())
        self.write("server-ec.key", self.server_ec.key_pem())
        self.write("server-rsa.pem", self.server_rsa.pem())
        self.write("server-rsa.key", self.server_rsa.key_pem())
        self.write("chain.pem", self.inter.pem())
        self.write("client.pem", self.client.pem())
        self.write("client.key", self.client.key_pem())

    def write(self, name: str, data: bytes) -> Path:
        p = self.dir / name
        p.write_bytes(data)
        return p

    def path(self, name: str) -> str:
        return str(self.dir / name)


# -- Python ssl peers ------------------------------------------------------------------


def small_buffers(sock: socket.socket, size: int = 2048) -> None:
    """Small receive windows make the peer send small segments (records then span them)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


class PyServer:
    """A Python ``ssl`` server: each connection gets the handshake, one line read, one
    line answered, then close."""

    def __init__(self, ctx: ssl.SSLContext | None, small: bool = False) -> None:
        self.ctx = ctx
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if small:
            small_buffers(self.sock)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.errors: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(10)
            if self.ctx is None:
                conn.close()
                continue
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    line = tls.recv(1024)
                    if line:
                        tls.sendall(b"pong " + line)
                    # A clean close_notify exchange: OpenSSL forgets sessions of unclean closes.
                    tls.unwrap()
            except (ssl.SSLError, OSError) as exc:
                self.errors.append(repr(exc))
                conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def server_context(
    pki: Pki,
    cert: str = "server-ec",
    minimum: ssl.TLSVersion | None = None,
    mtls: bool = False,
    tickets: bool = True,
    alpn: tuple[str, ...] = ("http/1.1", "h2"),
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.path(f"{cert}.pem"), pki.path(f"{cert}.key"))
    if minimum is not None:
        ctx.minimum_version = minimum
    if mtls:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki.path("root.pem"))
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_context(
    pki: Pki,
    maximum: ssl.TLSVersion | None = None,
    ca: str = "root.pem",
    cert: bool = False,
    tickets: bool = True,
    ciphers: str | None = None,
    alpn: tuple[str, ...] = ("h2", "http/1.1"),
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.path(ca))
    if maximum is not None:
        ctx.maximum_version = maximum
    if cert:
        ctx.load_cert_chain(pki.path("client.pem"), pki.path("client.key"))
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    if ciphers:
        ctx.set_ciphers(ciphers)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def py_connect(
    port: int, ctx: ssl.SSLContext, sni: str, session: Any = None, small: bool = False
) -> dict[str, Any]:
    """One connection; what the client library says about it."""
    raw = socket.socket()
    if small:
        small_buffers(raw)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", port))
    out: dict[str, Any] = {"port": raw.getsockname()[1], "sni": sni}
    try:
        with ctx.wrap_socket(raw, server_hostname=sni, session=session) as tls:
            out.update(
                ok=True,
                version=tls.version(),
                cipher=tls.cipher()[0],
                alpn=tls.selected_alpn_protocol(),
                reused=tls.session_reused,
            )
            tls.sendall(REQUEST)
            reply = b""
            while True:  # both servers answer and close
                try:
                    chunk = tls.recv(4096)
                except ssl.SSLZeroReturnError:
                    break
                if not chunk:
                    break
                reply += chunk
            # TLS 1.3 tickets come after the handshake: the session is complete only now.
            out.update(session=tls.session, reply=reply)
            with contextlib.suppress(OSError, ssl.SSLError):
                tls.unwrap()
    except ssl.SSLError as exc:
        out.update(ok=False, error=exc)
    finally:
        raw.close()
    time.sleep(0.05)
    return out


# -- openssl ---------------------------------------------------------------------------


@contextlib.contextmanager
def openssl_server(pki: Pki, *args: str) -> Iterator[int]:
    exe = need_tool("openssl")
    from tests.helpers import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            "s_server",
            "-accept",
            f"127.0.0.1:{port}",
            "-cert",
            pki.path("server-rsa.pem"),
            "-key",
            pki.path("server-rsa.key"),
            "-cert_chain",
            pki.path("chain.pem"),
            "-www",
            "-quiet",
            *args,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        time.sleep(0.1)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def s_client(pki: Pki, port: int, sni: str, *args: str) -> dict[str, Any]:
    """``openssl s_client`` sending one HTTP request; what it printed about the session."""
    exe = need_tool("openssl")
    res = subprocess.run(
        [
            exe,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            sni,
            "-CAfile",
            pki.path("root.pem"),
            "-ign_eof",
            *args,
        ],
        input=b"GET / HTTP/1.0\r\n\r\n",
        capture_output=True,
        timeout=30,
    )
    text = res.stdout.decode(errors="replace")
    out: dict[str, Any] = {"sni": sni, "text": text}
    m = re.search(r"^(New|Reused), (TLSv1\.[0-3]), Cipher is (\S+)", text, re.M)
    if m:
        out.update(reused=m.group(1) == "Reused", version=m.group(2), cipher=m.group(3))
    m = re.search(r"^ALPN protocol: (\S+)", text, re.M)
    out["alpn"] = m.group(1) if m else None
    m = re.search(r"^(?:Server|Peer) Temp Key: ([^,\n]+)(?:, ([^,\n]+))?", text, re.M)
    if m:
        out["temp_key"] = (m.group(1), m.group(2))
    m = re.search(r"^\s*Verify return code: (\d+)", text, re.M)
    out["verify"] = int(m.group(1)) if m else None
    time.sleep(0.05)
    return out


def openssl_iana_names() -> dict[str, str]:
    """OpenSSL cipher name → IANA (standard) name, from ``openssl ciphers -stdname``."""
    exe = need_tool("openssl")
    out = subprocess.run(
        [exe, "ciphers", "-stdname", "ALL:COMPLEMENTOFALL"], capture_output=True, text=True, check=True
    ).stdout
    names = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "-":
            names[parts[2]] = parts[0]
    return names


# -- capture and tshark ----------------------------------------------------------------


@contextlib.contextmanager
def capture(path: Path, ports: list[int]) -> Iterator[Path]:
    """tcpdump on lo for these ports, running (probed) before the block starts."""
    bpf = " or ".join(f"tcp port {p}" for p in ports)
    with tcpdump(path, bpf, settle=1.0) as p:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", ports[0]), timeout=2):
                pass
            time.sleep(0.2)
            if os.path.exists(path) and os.path.getsize(path) > PCAP_HEADER:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("tcpdump never captured the probe connections")
        yield p


def tshark_view(pcap: Path, ports: list[int]) -> dict[int, dict[str, Any]]:
    """Per client port: tshark's JA3 / JA3S strings and hashes, and the server's group."""
    exe = need_tool("tshark")
    cmd = [exe, "-r", str(pcap), "-n"]
    for p in ports:
        cmd += ["-d", f"tcp.port=={p},tls"]
    fields = [
        "tcp.srcport",
        "tcp.dstport",
        "tls.handshake.type",
        "tls.handshake.ja3",
        "tls.handshake.ja3_full",
        "tls.handshake.ja3s",
        "tls.handshake.ja3s_full",
        "tls.handshake.extensions_key_share_group",
        "tls.handshake.server_named_curve",
    ]
    cmd += [
        "-Y",
        "tls.handshake",
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    view: dict[int, dict[str, Any]] = {}
    for line in out.splitlines():
        src, dst, types, ja3, ja3_full, ja3s, ja3s_full, share, curve = (line.split("\t") + [""] * 9)[:9]
        types_l = types.split(",")
        client_port = int(src) if int(dst) in ports else int(dst)
        v = view.setdefault(client_port, {})
        if "1" in types_l and ja3:
            v["ja3"], v["ja3_full"] = ja3, ja3_full
        if "2" in types_l and ja3s:
            v["ja3s"], v["ja3s_full"] = ja3s, ja3s_full
            if share:
                v["group"] = int(share.split(",")[0])
        if curve:
            v["group"] = int(curve.split(",")[0], 0)
    return view
