"""A throw-away single-node Apache Cassandra 5.0 on 127.0.0.1 for the live tests.

The jars come from Maven Central (``org.apache.cassandra:cassandra-all``, resolved into
``tests/cassandra/target/lib`` by scripts/setup.d/50-cassandra.sh); this module writes a small
``cassandra.yaml`` (free native/storage ports, no JMX, temporary data directories, one token)
and runs ``CassandraDaemon`` on Java 17 with a 512 MiB heap. Boot takes 20-60 s on 2 cores, so
the test modules start it once per session.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import ROOT, free_port, need

NODE_DIR = ROOT / "tests" / "cassandra"
LIB = NODE_DIR / "target" / "lib"
START_TIMEOUT = 240.0

#: What Cassandra's own conf/jvm17-server.options opens up for Java 17.
JAVA17_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    *(
        f"--add-exports={m}=ALL-UNNAMED"
        for m in (
            "java.base/jdk.internal.misc",
            "java.base/jdk.internal.ref",
            "java.base/sun.nio.ch",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
        )
    ),
    *(
        f"--add-opens={m}=ALL-UNNAMED"
        for m in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.nio",
            "java.base/java.util.concurrent",
            "java.base/java.util",
            "java.base/java.util.concurrent.atomic",
            "java.base/java.lang",
            "java.base/java.math",
            "java.base/java.lang.reflect",
            "java.base/java.net",
        )
    ),
]

LOGBACK = """<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>{log}</file>
    <encoder><pattern>%d %-5level [%thread] %logger{{1}} - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
"""


def _yaml(base: Path, native_port: int, storage_port: int) -> str:
    d = {k: base / k for k in ("data", "commitlog", "saved_caches", "hints", "cdc_raw")}
    return f"""cluster_name: wirebeat-test
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:{storage_port}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: {storage_port}
native_transport_port: {native_port}
start_native_transport: true
endpoint_snitch: SimpleSnitch
data_file_directories: [{d["data"]}]
commitlog_directory: {d["commitlog"]}
saved_caches_directory: {d["saved_caches"]}
hints_directory: {d["hints"]}
cdc_raw_directory: {d["cdc_raw"]}
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
concurrent_reads: 4
concurrent_writes: 4
concurrent_compactors: 1
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 0MiB
dynamic_snitch: false
auto_snapshot: false
user_defined_functions_enabled: false
materialized_views_enabled: true
native_transport_allow_older_protocols: true
batch_size_warn_threshold: 5KiB
read_request_timeout: 20000ms
write_request_timeout: 20000ms
request_timeout: 20000ms
"""


def _native_ready(port: int) -> bool:
    """An OPTIONS frame (v4) on the native port; True once SUPPORTED comes back."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"\x04\x00\x00\x00\x05\x00\x00\x00\x00")
        head = s.recv(9)
        return len(head) >= 5 and head[0] == 0x84 and head[4] == 0x06
    return False


class CassandraNode:
    def __init__(self, port: int, proc: subprocess.Popen[bytes], log: Path, started_in: float) -> None:
        self.port = port
        self.proc = proc
        self.log = log
        self.started_in = started_in


@contextlib.contextmanager
def cassandra_node() -> Iterator[CassandraNode]:
    java = shutil.which("java")
    if java is None:
        need("java (Java 17) for the Cassandra test node")
    assert java is not None
    if not LIB.is_dir() or not any(LIB.glob("cassandra-all-*.jar")):
        need(f"Cassandra jars in {LIB} (scripts/setup.d/50-cassandra.sh resolves them with mvn)")
    native_port, storage_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="wirebeat-cassandra-") as tmp:
        base = Path(tmp)
        for sub in ("data", "commitlog", "saved_caches", "hints", "cdc_raw", "logs"):
            (base / sub).mkdir()
        conf = base / "cassandra.yaml"
        conf.write_text(_yaml(base, native_port, storage_port))
        log = base / "logs" / "system.log"
        (base / "logback.xml").write_text(LOGBACK.format(log=log))
        cmd = [
            java,
            "-Xms512m",
            "-Xmx512m",
            "-Xss512k",
            "-XX:+UseG1GC",
            "-XX:ActiveProcessorCount=2",
            *JAVA17_OPTIONS,
            f"-Dcassandra.config=file://{conf}",
            f"-Dlogback.configurationFile=file://{base / 'logback.xml'}",
            f"-Dcassandra.logdir={base / 'logs'}",
            f"-Dcassandra.storagedir={base}",
            "-Dcassandra-foreground=yes",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=100",
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-Dcassandra.join_ring=true",
            "-Dcassandra.disable_tcactive_openssl=true",
            "-cp",
            f"{LIB}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        t0 = time.monotonic()
        out = open(base / "logs" / "stdout.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=base)
        try:
            deadline = t0 + START_TIMEOUT
            while not _native_ready(native_port):
                if proc.poll() is not None:
                    tail = (base / "logs" / "stdout.log").read_text(errors="replace")[-3000:]
                    if log.exists():
                        tail += log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"cassandra exited ({proc.returncode}): {tail}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cassandra did not start within {START_TIMEOUT:.0f}s")
                time.sleep(0.5)
            yield CassandraNode(native_port, proc, log, time.monotonic() - t0)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out.close()
