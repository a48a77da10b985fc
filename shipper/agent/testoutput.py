"""``wirebeat test output``: per host, the steps and a verdict, as libbeat prints them.

For ``output.logstash``: parse host, DNS lookup, dial up, TLS handshake, then a one-event
round trip (a window of one event, tagged ``wirebeat_test_output``, acknowledged by the
server). For ``output.redis``: dial, AUTH/SELECT, PING and the key's type. For
``output.elasticsearch`` (libbeat's ``eslegclient.Connection.Test``): parse url, DNS
lookup, dial up, TLS, then ``GET /`` with the configured credentials and the server's
version. For ``output.kafka`` (libbeat only dials; wirebeat also talks Kafka): parse
host, DNS lookup, dial up per host, then the cluster: metadata (the SASL/TLS handshake
included), the brokers, and each topic that does not depend on the event. For
``output.file``: the directory and a file written in it; ``output.console``: stdout
(Packetbeat says these two "don't support testing" and exits 1). Exit code 0 when every
check passed, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import sys
from functools import partial
from typing import Any, TextIO

from protocols.stats import Counters
from shipper.agent.config import ConfigError
from shipper.agent.settings import Settings, output_module
from shipper.agent.version import VERSION
from shipper.outputs.base import OutputContext, OutputError, encode_event
from shipper.outputs.hosts import format_host
from shipper.outputs.lumberjack.client import LumberjackClient, LumberjackError, describe_os_error


class Reporter:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.ok = True

    def line(self, indent: int, text: str) -> None:
        self.out.write("  " * indent + text + "\n")
        self.out.flush()

    def step(self, indent: int, text: str, error: str | None = None) -> bool:
        if error is None:
            self.line(indent, f"{text}... OK")
            return True
        self.ok = False
        self.line(indent, f"{text}... ERROR {error}")
        return False


def test_event(index: str) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "@timestamp": now,
        "@metadata": {"beat": index, "type": "_doc", "version": VERSION},
        "message": "wirebeat test output",
        "tags": ["wirebeat_test_output"],
        "event": {"kind": "event", "dataset": "wirebeat.test_output"},
        "agent": {"type": "packetbeat", "version": VERSION},
    }


async def _resolve(r: Reporter, host: str, port: int) -> bool:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return r.step(2, "dns lookup", f"lookup {host}: {exc.strerror or exc}")
    r.step(2, "dns lookup")
    r.line(2, "addresses: " + ", ".join(sorted({str(i[4][0]) for i in infos})))
    return True


async def _dial(r: Reporter, host: str, port: int, timeout: float) -> bool:
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return r.step(2, "dial up", f"dial tcp {format_host(host, port)}: i/o timeout")
    except OSError as exc:
        return r.step(2, "dial up", f"dial tcp {format_host(host, port)}: {describe_os_error(exc)}")
    w.transport.abort()
    return r.step(2, "dial up")


async def _logstash(r: Reporter, settings: Settings) -> None:
    mod = output_module("logstash")
    cfg = settings.output_config()
    ctx = OutputContext(settings.beat_name, VERSION, Counters(), settings.data_path)
    try:
        out = mod.create(cfg, ctx)
    except (OutputError, ConfigError) as exc:
        r.ok = False
        r.line(0, f"logstash: ERROR {exc}")
        return
    index = cfg.index or "packetbeat"
    for host, port in out.hosts:
        r.line(0, f"logstash: {format_host(host, port)}...")
        r.line(1, "connection...")
        r.step(2, "parse host")
        if not await _resolve(r, host, port) or not await _dial(r, host, port, cfg.timeout):
            continue
        client = LumberjackClient(
            host,
            port,
            timeout=cfg.timeout,
            compression_level=cfg.compression_level,
            ssl_context=out.ssl_context,
        )
        if out.ssl_context is None:
            r.line(1, "TLS... WARN secure connection disabled")
        else:
            r.line(1, "TLS...")
            mode = cfg.ssl.verification_mode if cfg.ssl is not None else "full"
            r.line(2, f"security: verification mode {mode}")
        try:
            await client.connect()
        except LumberjackError as exc:
            r.step(2, "handshake" if out.ssl_context is not None else "dial up", str(exc))
            continue
        if out.ssl_context is not None:
            r.step(2, "handshake")
            r.line(2, f"TLS version: {client.tls_version}")
        try:
            await client.send([encode_event(test_event(index), escape_html=cfg.escape_html)])
        except LumberjackError as exc:
            r.step(1, "talk to server", str(exc))
        else:
            r.step(1, "talk to server")
        finally:
            await client.close()


async def _redis(r: Reporter, settings: Settings) -> None:
    mod = output_module("redis")
    cfg = settings.output_config()
    out = mod.create(cfg, OutputContext(settings.beat_name, VERSION, Counters(), settings.data_path))
    for i, (host, port) in enumerate(out.hosts):
        r.line(0, f"redis: {format_host(host, port)}...")
        r.line(1, "connection...")
        r.step(2, "parse host")
        if not await _resolve(r, host, port) or not await _dial(r, host, port, cfg.timeout):
            continue
        try:
            await out.ping(i)
        except (OutputError, Exception) as exc:
            r.step(1, "talk to server", str(exc) or type(exc).__name__)
        else:
            r.step(1, "talk to server")


async def _elasticsearch(r: Reporter, settings: Settings) -> None:
    from urllib.parse import urlsplit

    from shipper.outputs.http import TransportError

    mod = output_module("elasticsearch")
    cfg = settings.output_config()
    try:
        client = mod.http_client(cfg, timeout=min(cfg.timeout, 30.0))
    except (TransportError, ValueError, ConfigError) as exc:
        r.ok = False
        r.line(0, f"elasticsearch: ERROR {getattr(exc, 'message', None) or exc}")
        return
    loop = asyncio.get_running_loop()
    try:
        for i, url in enumerate(client.urls):
            r.line(0, f"elasticsearch: {url}...")
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 9200)
            r.step(1, "parse url")
            r.line(1, "connection...")
            r.step(2, "parse host")
            if not await _resolve(r, host, port) or not await _dial(r, host, port, min(cfg.timeout, 30.0)):
                continue
            if parts.scheme != "https":
                r.line(1, "TLS... WARN secure connection disabled")
            else:
                r.line(1, "TLS...")
                mode = cfg.ssl.verification_mode if cfg.ssl is not None else "full"
                r.line(2, f"security: verification mode {mode}")
            try:
                resp = await loop.run_in_executor(None, partial(client.request, "GET", "/", host_index=i))
            except TransportError as exc:
                r.step(1, "talk to server", exc.message)
                continue
            if not resp.ok:
                r.step(1, "talk to server", f"{resp.status} {resp.error_reason()}")
                continue
            info = resp.json() if resp.body else {}
            version = info.get("version", {}) if isinstance(info, dict) else {}
            number = version.get("number", "unknown") if isinstance(version, dict) else "unknown"
            r.step(1, "talk to server")
            dist = version.get("distribution") if isinstance(version, dict) else None
            r.line(1, f"version: {number}" + (f" ({dist})" if dist else ""))
    finally:
        client.close()


async def _kafka(r: Reporter, settings: Settings) -> None:
    from shipper.outputs.base import ConnectError

    mod = output_module("kafka")
    cfg = settings.output_config()
    try:
        out = mod.create(cfg, OutputContext(settings.beat_name, VERSION, Counters(), settings.data_path))
    except (OutputError, ConfigError) as exc:
        r.ok = False
        r.line(0, f"kafka: ERROR {exc}")
        return
    reachable = 0
    for host, port in out.hosts:
        r.line(0, f"Kafka: {format_host(host, port)}...")
        r.line(1, "connection...")
        r.step(2, "parse host")
        if await _resolve(r, host, port) and await _dial(r, host, port, min(cfg.timeout, 30.0)):
            reachable += 1
    r.line(0, f"Kafka cluster: {out.describe()}...")
    security = out.conf["security.protocol"]
    if out.ssl_context is None:
        r.line(1, "TLS... WARN secure connection disabled")
    else:
        mode = cfg.ssl.verification_mode if cfg.ssl is not None else "full"
        r.line(1, f"TLS... security: verification mode {mode}")
    if cfg.username:
        r.line(1, f"SASL: {out.conf['sasl.mechanism']} as {cfg.username!r} ({security})")
    if not reachable:
        r.step(1, "talk to server", "no broker could be reached")
        return
    try:
        md = await out.check_cluster(min(cfg.timeout, 10.0))
    except ConnectError as exc:
        r.step(1, "talk to server", str(exc))
        await out.close()
        return
    try:
        r.step(1, "talk to server")
        brokers = sorted(md.brokers.values(), key=lambda b: b.id)
        r.line(1, "brokers: " + ", ".join(f"{b.host}:{b.port} (id {b.id})" for b in brokers))
        topics = out.test_topics()
        if not topics:
            r.line(1, "topics: chosen per event (format strings or rules); not checked")
        for topic in topics:
            info = await out._topic(topic)
            if info.error or not info.all:
                r.step(1, f"topic {topic}", info.error or "no partitions")
            else:
                r.step(1, f"topic {topic}")
                r.line(2, f"partitions: {len(info.all)} ({len(info.writable)} with a leader)")
    finally:
        await out.close()


def test_output(settings: Settings, out: TextIO | None = None) -> int:
    r = Reporter(out or sys.stdout)
    name = settings.output_name()
    if name == "logstash":
        asyncio.run(_logstash(r, settings))
    elif name == "redis":
        asyncio.run(_redis(r, settings))
    elif name == "elasticsearch":
        asyncio.run(_elasticsearch(r, settings))
    elif name == "kafka":
        asyncio.run(_kafka(r, settings))
    elif name == "file":
        _file(r, settings)
    elif name == "console":
        _console(r)
    else:
        hook = getattr(output_module(name), "test_output", None)
        if hook is None:
            r.line(0, f"{name}: nothing to test (events are discarded)")
            return 0
        code: int = hook(settings)
        return code
    return 0 if r.ok else 1


def _file(r: Reporter, settings: Settings) -> None:
    """``output.file`` (Packetbeat: "file output doesn't support testing"): the directory
    exists or can be created, and a file can be created and written in it."""
    import os
    import tempfile

    cfg = settings.output_config()
    directory = cfg.path or str(settings.data_path)
    r.line(0, f"file: {directory}...")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        r.step(1, "create directory", exc.strerror or str(exc))
        return
    r.step(1, "create directory")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".wirebeat-test-output-") as fh:
            fh.write(b"{}\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        r.step(1, "write a file", exc.strerror or str(exc))
        return
    r.step(1, "write a file")


def _console(r: Reporter) -> None:
    """``output.console`` (Packetbeat: "console output doesn't support testing"): stdout
    is open for writing."""
    import os

    r.line(0, "console: stdout...")
    try:
        os.fstat(sys.stdout.fileno())
    except (OSError, ValueError) as exc:
        r.step(1, "open", str(exc))
        return
    r.step(1, "open")
