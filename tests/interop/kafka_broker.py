"""A throw-away single-node Apache Kafka 4.x broker (KRaft: broker and controller in one
process) on 127.0.0.1 for the Kafka output tests.

The jars come from Maven Central (``org.apache.kafka:kafka_2.13`` and its runtime jars,
resolved into ``tests/kafka/target/lib`` by scripts/setup.d/50-kafka.sh). This module writes
a ``server.properties`` with four listeners on free ports — PLAINTEXT, SASL_PLAINTEXT
(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), SSL (a test CA and a certificate for
127.0.0.1/localhost made with ``cryptography``) and the controller — formats a temporary
log directory with a random cluster id and the SCRAM users (``kafka.tools.StorageTool
format --add-scram``), and runs ``kafka.Kafka`` on Java 17 with a 512 MiB heap. Boot takes
about 8-12 s on 2 cores. :meth:`KafkaBroker.kill` (SIGKILL) and :meth:`KafkaBroker.start`
restart it on the same ports and log directory.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import logging
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.helpers import ROOT, free_port, need

LIB = ROOT / "tests" / "kafka" / "target" / "lib"
START_TIMEOUT = 90.0

USERS = {"alice": "alice-secret", "bob": "bob-secret"}

LOG4J2 = """<Configuration status="WARN">
  <Appenders>
    <File name="F" fileName="{log}"><PatternLayout pattern="%d %p [%c] %m%n"/></File>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="F"/></Root>
    <Logger name="kafka" level="INFO"/>
    <Logger name="org.apache.kafka" level="INFO"/>
  </Loggers>
</Configuration>
"""


def make_certs(directory: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost (PKCS#8 key, PEM), plus a
    second CA that signed nothing (for a failed verification)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        need("python package cryptography")
        raise
    import ipaddress

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
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = ca("wirebeat kafka test CA")
    _, other_cert = ca("unrelated CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = {
        "ca": directory / "ca.crt",
        "other_ca": directory / "other-ca.crt",
        "server": directory / "server.pem",
    }
    paths["ca"].write_bytes(ca_cert.public_bytes(pem))
    paths["other_ca"].write_bytes(other_cert.public_bytes(pem))
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Kafka's PEM key store: the PKCS#8 key, then the certificate chain, in one file.
    paths["server"].write_bytes(key_pem + cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    return paths


class KafkaBroker:
    """One KRaft broker+controller; ``start()`` / ``kill()`` / ``stop()``."""

    def __init__(self, base: Path) -> None:
        self.java = shutil.which("java")
        if self.java is None:
            need("java (Java 17) for the Kafka test broker")
        if not LIB.is_dir() or not any(LIB.glob("kafka_2.13-*.jar")):
            need(f"Kafka jars in {LIB} (scripts/setup.d/50-kafka.sh resolves them with mvn)")
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.port, self.sasl_port, self.ssl_port, self.controller_port = (free_port() for _ in range(4))
        self.certs = make_certs(base)
        self.logs = base / "data"
        self.conf = base / "server.properties"
        self.conf.write_text(self._properties())
        (base / "log4j2.xml").write_text(LOG4J2.format(log=base / "server.log"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_in = 0.0
        self._format()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _properties(self) -> str:
        jaas_plain = "org.apache.kafka.common.security.plain.PlainLoginModule required " + " ".join(
            f'user_{u}="{p}"' for u, p in USERS.items()
        )
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{self.controller_port}
listeners=PLAINTEXT://127.0.0.1:{self.port},SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},SSL://127.0.0.1:{self.ssl_port},CONTROLLER://127.0.0.1:{self.controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},SSL://127.0.0.1:{self.ssl_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas_plain};
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config={scram}
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={scram}
ssl.keystore.type=PEM
ssl.keystore.location={self.certs["server"]}
ssl.client.auth=none
log.dirs={self.logs}
num.partitions=1
# The events carry their capture time (2013, 2024 ...) as record timestamps, as in libbeat:
# time-based retention would delete them at the first cleanup (30 s after boot).
log.retention.ms=-1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
# The events carry their capture time (2013, 2024 ...) as record timestamps, as in libbeat:
# time-based retention would delete them at the first cleanup (30 s after boot).
log.retention.ms=-1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
num.network.threads=2
num.io.threads=2
background.threads=2
"""

    def _java(self, main: str, *args: str) -> list[str]:
        assert self.java is not None
        return [
            self.java,
            "-Xms256m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-XX:ActiveProcessorCount=2",
            "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={self.base / 'log4j2.xml'}",
            "-cp",
            f"{LIB}/*",
            main,
            *args,
        ]

    def _format(self) -> None:
        # Like Kafka's own Uuid.randomUuid: never a leading "-" (the storage tool would take
        # the id for an option: 1 run in 64 failed with "expected one argument").
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        scram = []
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            for user, password in USERS.items():
                scram += ["--add-scram", f"{mech}=[name={user},password={password}]"]
        res = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.conf), *scram),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if res.returncode != 0:
            raise RuntimeError(f"kafka storage format failed: {res.stdout[-2000:]} {res.stderr[-2000:]}")

    def start(self) -> KafkaBroker:
        t0 = time.monotonic()
        out = open(self.base / "stdout.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self._java("kafka.Kafka", str(self.conf)), stdout=out, stderr=subprocess.STDOUT, cwd=self.base
        )
        out.close()
        self.wait_ready(t0)
        self.started_in = time.monotonic() - t0
        return self

    def wait_ready(self, t0: float) -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "logger": _QUIET})
        deadline = t0 + START_TIMEOUT
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"kafka exited ({self.proc.returncode}): {self.tail()}")
            if _port_open(self.port):
                with contextlib.suppress(Exception):
                    md = admin.list_topics(timeout=2)
                    if md.brokers:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"kafka did not start within {START_TIMEOUT:.0f}s: {self.tail()}")
            time.sleep(0.2)

    def tail(self) -> str:
        text = ""
        for name in ("stdout.log", "server.log"):
            p = self.base / name
            if p.exists():
                text += p.read_text(errors="replace")[-3000:]
        return text

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


#: librdkafka's own log lines (connection refused while the broker boots) stay out of the
#: test output.
_QUIET = logging.getLogger("tests.kafka.librdkafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def quiet_logger() -> logging.Logger:
    return _QUIET


@contextlib.contextmanager
def kafka_broker(base: Path) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(base)
    try:
        yield broker.start()
    finally:
        broker.stop()
