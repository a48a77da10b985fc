"""The optional local stats endpoint (libbeat's ``http.enabled``, ``http.host``, ``http.port``).

``GET /`` answers the beat info, ``GET /stats`` the metrics in libbeat's names and layout
(``beat``, ``libbeat``, ``system``, Packetbeat's protocol counters, the capture's; see
shipper/agent/monitor.py), ``GET /state`` what Metricbeat's ``beat`` module asks before
reading ``/stats`` (output name, queue, host), ``GET /inputs/`` one entry per capture
interface. Append ``?pretty`` for indented JSON. A stdlib server in a daemon thread.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import platform
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from shipper.agent.monitor import nest

if TYPE_CHECKING:
    from shipper.agent.beat import Beat

log = logging.getLogger("api")

Json = dict[str, Any]


class StatsServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        info: Callable[[], Json],
        metrics: Callable[[], dict[str, Any]],
        inputs: Callable[[], list[Json]],
        state: Callable[[], Json] | None = None,
    ) -> None:
        self.info = info
        self.metrics = metrics
        self.inputs = inputs
        self.state = state or (lambda: {})
        self.started = time.monotonic()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                try:
                    if path == "/":
                        body: Any = server.info()
                    elif path in ("/stats", "/stats/"):
                        body = server.stats()
                    elif path in ("/state", "/state/"):
                        body = server.state()
                    elif path in ("/inputs", "/inputs/"):
                        body = server.inputs()
                    else:
                        self.send_error(404, "Not Found")
                        return
                except Exception as exc:  # a broken metrics source: answer, don't die
                    self.send_error(500, repr(exc))
                    return
                pretty = "pretty" in query.split("&")
                data = json.dumps(body, indent=2 if pretty else None, sort_keys=True).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s " + format, self.address_string(), *args)

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        self.httpd = Server((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http-stats", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("Starting stats endpoint on http://%s:%d", self.httpd.server_address[0], self.port)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def stats(self) -> Json:
        return nest(self.metrics())


def beat_info(name: str, version: str, ephemeral_id: str, agent_uuid: str) -> Json:
    """What libbeat answers on ``/``."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {
        "beat": "packetbeat",
        "binary_arch": arch,
        "build_commit": "unknown",
        "build_time": "unknown",
        "elastic_licensed": False,
        "ephemeral_id": ephemeral_id,
        "gid": str(os.getgid()),
        "hostname": socket.gethostname(),
        "name": name,
        "uid": str(os.getuid()),
        "username": user,
        "uuid": agent_uuid,
        "version": version,
    }


def beat_state(
    name: str, version: str, agent_uuid: str, output: str, queue: str, cluster_uuid: str = ""
) -> Json:
    """What libbeat answers on ``/state`` (the parts Metricbeat's ``beat`` module reads:
    ``output.name``, ``outputs.elasticsearch.cluster_uuid``, ``monitoring.cluster_uuid``)."""
    host = {"architecture": platform.machine(), "hostname": socket.gethostname()}
    return {
        "beat": {"name": name},
        "host": {**host, "os": {"kernel": platform.release()}},
        "management": {"enabled": False},
        "monitoring": {"cluster_uuid": ""},
        "output": {"batch_size": -1, "clients": 1, "name": output},
        "outputs": {"elasticsearch": {"cluster_uuid": cluster_uuid}},
        "queue": {"name": queue},
        "service": {"id": agent_uuid, "name": "packetbeat", "version": version},
    }


def start_stats_server(beat: Beat, inputs: Callable[[], list[Json]]) -> StatsServer | None:
    """Start ``http.*``'s endpoint for a run (live or replay); None when disabled or the
    address cannot be bound (logged)."""
    from shipper.agent.version import VERSION

    s = beat.settings
    hs = s.http
    if not hs.enabled:
        return None
    env = beat.pipeline.envelope if beat.pipeline is not None else None
    agent = env.agent if env is not None else {}
    ephemeral, uuid = str(agent.get("ephemeral_id", "")), str(agent.get("id", ""))
    queue = "disk" if s.queue.disk is not None else "mem"
    cluster = _ClusterUUID(beat)
    try:
        server = StatsServer(
            hs.host,
            hs.port,
            info=lambda: beat_info(s.beat_name, VERSION, ephemeral, uuid),
            metrics=beat.monitor.metrics,
            inputs=inputs,
            state=lambda: beat_state(s.beat_name, VERSION, uuid, s.output_name(), queue, cluster()),
        )
    except OSError as exc:
        log.error("cannot start the stats endpoint on %s:%d: %s", hs.host, hs.port, exc)
        return None
    server.start()
    return server


class _ClusterUUID:
    """The Elasticsearch output's cluster UUID (``GET /``, asked once it answers): without
    it Metricbeat's ``beat`` module skips a Beat that ships to Elasticsearch."""

    def __init__(self, beat: Beat) -> None:
        self.beat = beat
        self.value = ""
        self.lock = threading.Lock()

    def __call__(self) -> str:
        if self.value or self.beat.settings.output_name() != "elasticsearch":
            return self.value
        from shipper.outputs.http import HttpClient

        client = getattr(self.beat.output, "client", None)
        if not isinstance(client, HttpClient):
            return ""
        with self.lock:
            if not self.value:
                try:
                    body = client.request("GET", "/").json()
                except Exception as exc:  # not reachable yet: ask again next time
                    log.debug("cluster UUID not known yet: %s", exc)
                    return ""
                if isinstance(body, dict):
                    self.value = str(body.get("cluster_uuid") or "")
        return self.value
