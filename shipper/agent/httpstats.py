"""The optional local stats endpoint (libbeat's ``http.enabled``, ``http.host``, ``http.port``).

``GET /`` answers the beat info, ``GET /stats`` the metrics in libbeat's layout
(``beat``, ``libbeat.pipeline``, ``libbeat.output``, ``system``) plus every wirebeat
counter under ``wirebeat``, ``GET /inputs/`` one entry per capture interface. Append
``?pretty`` for indented JSON. A stdlib server in a daemon thread.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import platform
import resource
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("api")

Json = dict[str, Any]


def nest(flat: dict[str, int]) -> Json:
    """``{"a.b": 1, "a.c": 2}`` → ``{"a": {"b": 1, "c": 2}}``; a leaf that is also a prefix
    becomes ``value`` inside it."""
    out: Json = {}
    for key in sorted(flat):
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {} if child is None else {"value": child}
            node = child
        leaf = parts[-1]
        if isinstance(node.get(leaf), dict):
            node[leaf]["value"] = flat[key]
        else:
            node[leaf] = flat[key]
    return out


class StatsServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        info: Callable[[], Json],
        metrics: Callable[[], dict[str, int]],
        inputs: Callable[[], list[Json]],
        output_type: str = "",
        queue_max: int = 0,
    ) -> None:
        self.info = info
        self.metrics = metrics
        self.inputs = inputs
        self.output_type = output_type
        self.queue_max = queue_max
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
        flat = self.metrics()
        # The monitor names the publisher/queue/output counters "pipeline.*".
        m = {k[9:]: v for k, v in flat.items() if k.startswith("pipeline.")}
        ru = resource.getrusage(resource.RUSAGE_SELF)
        user_ms, sys_ms = int(ru.ru_utime * 1000), int(ru.ru_stime * 1000)
        try:
            handles = len(os.listdir("/proc/self/fd"))
        except OSError:
            handles = 0
        published = m.get("publisher.published", 0)
        filtered = m.get("publisher.dropped_outgoing", 0)
        drops = ("publisher.dropped", "queue.dropped")
        dropped = sum(v for k, v in m.items() if k.startswith(drops)) - filtered
        acked = m.get("queue.acked", 0)
        try:
            load = dict(zip(("1", "5", "15"), os.getloadavg(), strict=True))
        except OSError:
            load = {}
        return {
            "beat": {
                "cpu": {
                    "user": {"ticks": user_ms},
                    "system": {"ticks": sys_ms},
                    "total": {"ticks": user_ms + sys_ms, "value": user_ms + sys_ms},
                },
                "handles": {"open": handles},
                "info": {"uptime": {"ms": int((time.monotonic() - self.started) * 1000)}},
                "memstats": {"rss": _rss(), "rss_max": ru.ru_maxrss * 1024},
            },
            "libbeat": {
                "output": {
                    "type": self.output_type,
                    "events": {
                        "acked": m.get("output.acked", 0),
                        "batches": m.get("output.batches", 0),
                        "failed": m.get("output.failed_batches", 0),
                        "dropped": m.get("queue.dropped_max_retries", 0),
                    },
                },
                "pipeline": {
                    "clients": 1,
                    "events": {
                        "published": published,
                        "dropped": dropped,
                        "filtered": filtered,
                        "retry": m.get("queue.retried", 0),
                        "active": max(0, m.get("queue.published", 0) - acked),
                        "total": published + dropped + filtered,
                    },
                    "queue": {"acked": acked, "max_events": self.queue_max},
                },
            },
            "system": {"cpu": {"cores": os.cpu_count() or 1}, "load": load},
            "wirebeat": nest(flat),
        }


def _rss() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


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
