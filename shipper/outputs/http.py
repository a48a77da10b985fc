"""A small HTTP client for Elasticsearch/OpenSearch and Kibana (urllib3, blocking, thread-safe).

Plain HTTP on purpose: it talks to any Elasticsearch or OpenSearch version (the official
``elasticsearch`` client refuses servers without ``X-Elastic-Product``). Hosts are tried in
turn on connection errors (libbeat's failover). ``ssl.*`` and the auth options follow
libbeat's names.
"""

from __future__ import annotations

import base64
import logging
import ssl
import time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import attrs
import orjson
import urllib3

from protocols.stats import Counters
from shipper.agent.settings import SslSettings
from shipper.outputs.tlsconfig import TLSConfigError, client_context

log = logging.getLogger("esclientleg")  # libbeat's selector for its Elasticsearch client


class TransportError(Exception):
    """A request that got no usable answer. ``retriable``: trying again may help."""

    def __init__(
        self, message: str, retriable: bool = True, status: int = 0, connect_failed: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retriable = retriable
        self.status = status
        #: No host could even be connected to (refused, unreachable, DNS, TLS handshake):
        #: the request was never sent.
        self.connect_failed = connect_failed


@attrs.frozen
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str = ""

    def json(self) -> Any:
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error_reason(self) -> str:
        """The server's reason for an error response, in one line."""
        data = self.json()
        if isinstance(data, dict):
            err = data.get("error", data.get("message"))
            if isinstance(err, dict):
                root = err.get("root_cause")
                if isinstance(root, list) and root and isinstance(root[0], dict) and not err.get("reason"):
                    err = root[0]
                reason = err.get("reason") or err.get("type") or ""
                # The useful part is often at the bottom of the caused_by chain.
                caused, depth = err.get("caused_by"), 0
                deepest = ""
                while isinstance(caused, dict) and depth < 10:
                    deepest = caused.get("reason") or deepest
                    caused, depth = caused.get("caused_by"), depth + 1
                if deepest and deepest not in reason:
                    reason = f"{reason}: {deepest}"
                return f"{err.get('type', 'error')}: {reason}" if err.get("type") else str(reason)
            if isinstance(err, str):
                return err
        text = self.body.decode("utf-8", "replace").strip().replace("\n", " ")
        return text[:300] or f"HTTP {self.status}"


def ssl_context(cfg: SslSettings) -> ssl.SSLContext:
    """TLS for an https URL (libbeat: the scheme turns TLS on; ``ssl.*`` tunes it)."""
    try:
        ctx = client_context(cfg, force=True)
    except TLSConfigError as exc:
        raise TransportError(str(exc), retriable=False) from None
    assert ctx is not None
    return ctx


def normalize_host(host: str, scheme: str, port: int, path: str = "") -> str:
    """``localhost:9200`` / ``https://h`` / ``h:9200/prefix`` → ``scheme://host:port/prefix``."""
    raw = host.strip()
    if "://" not in raw:
        raw = f"{scheme}://{raw}"
    parts = urlsplit(raw)
    if not parts.hostname:
        raise ValueError(f"invalid host {host!r}")
    host_part = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    prefix = (parts.path or "").rstrip("/")
    if path:
        prefix = prefix + "/" + path.strip("/")
    return f"{parts.scheme}://{host_part}:{parts.port or port}{prefix}"


def auth_headers(username: str = "", password: str = "", api_key: str = "") -> dict[str, str]:
    if api_key:
        # libbeat takes "id:api_key" and sends it base64-encoded; an encoded key is used as is.
        token = base64.b64encode(api_key.encode()).decode() if ":" in api_key else api_key
        return {"Authorization": f"ApiKey {token}"}
    if username:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


class HttpClient:
    """Blocking requests against one of ``hosts`` (failover on connection errors)."""

    def __init__(
        self,
        hosts: list[str],
        *,
        scheme: str = "http",
        default_port: int = 9200,
        path: str = "",
        username: str = "",
        password: str = "",
        api_key: str = "",
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        ssl_settings: SslSettings | None = None,
        timeout: float = 90.0,
        maxsize: int = 4,
        idle_timeout: float = 0.0,
    ) -> None:
        if not hosts:
            raise ValueError("no hosts configured")
        tls = ssl_settings or SslSettings()
        # As in libbeat, the scheme comes from the host URL or ``protocol``; ``ssl.*`` only
        # configures https connections.
        self.urls = [normalize_host(h, scheme, default_port, path) for h in hosts]
        self.headers = {**auth_headers(username, password, api_key), **(headers or {})}
        self.params = dict(params or {})
        self.timeout = timeout
        ctx = None
        if tls.enabled is not False and any(u.startswith("https:") for u in self.urls):
            ctx = ssl_context(tls)
        if ctx is not None and ctx.verify_mode == ssl.CERT_NONE:
            log.warning(
                "SSL/TLS verification is disabled (ssl.verification_mode: none) for %s", ", ".join(self.urls)
            )
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        extra: dict[str, Any] = {}
        if ctx is not None and not ctx.check_hostname:
            # urllib3 checks the name itself unless told not to (verification_mode certificate/none).
            extra["assert_hostname"] = False
        self.pool = urllib3.PoolManager(
            num_pools=max(4, len(self.urls)),
            maxsize=maxsize,
            ssl_context=ctx,
            **extra,
            retries=False,
            timeout=urllib3.Timeout(connect=min(10.0, timeout), read=timeout),
        )
        self._current = 0
        #: ``idle_connection_timeout``: pooled connections unused this long are closed
        #: before the next request instead of being reused (0: kept).
        self.idle_timeout = idle_timeout
        self._last_used = time.monotonic()
        #: Counts request and response body bytes (``output.write_bytes``/``read_bytes``) when set.
        self.stats: Counters | None = None

    @property
    def url(self) -> str:
        return self.urls[self._current]

    def request(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | list[Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        host_index: int | None = None,
    ) -> HttpResponse:
        """Send to the current host, then the others on connection errors."""
        data: bytes | None
        hdrs = dict(self.headers)
        if isinstance(body, dict | list):
            data = orjson.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        else:
            data = body
        if headers:
            hdrs.update(headers)
        query = {**self.params, **(params or {})}
        target = path if path.startswith("/") else "/" + path
        if query:
            target += "?" + urlencode({k: _param(v) for k, v in query.items()}, quote_via=quote)
        now = time.monotonic()
        if self.idle_timeout > 0 and now - self._last_used > self.idle_timeout:
            self.pool.clear()
        self._last_used = now
        start = self._current if host_index is None else host_index % len(self.urls)
        errors = []
        sent = False
        for i in range(len(self.urls)):
            idx = (start + i) % len(self.urls)
            url = self.urls[idx] + target
            try:
                r = self.pool.request(method, url, body=data, headers=hdrs, redirect=False)
            except urllib3.exceptions.HTTPError as exc:
                errors.append(f"{self.urls[idx]}: {_reason(exc)}")
                if not isinstance(exc, _CONNECT_ERRORS):
                    # The request may have reached the server: its connections to this
                    # host are suspect, the next request dials afresh.
                    sent = True
                    self.pool.clear()
                continue
            except OSError as exc:  # a socket error urllib3 did not wrap
                errors.append(f"{self.urls[idx]}: {exc}")
                sent = True
                self.pool.clear()
                continue
            self._current = idx
            if self.stats is not None:
                self.stats.incr("output.write_bytes", len(data or b""))
                self.stats.incr("output.read_bytes", len(r.data or b""))
            return HttpResponse(r.status, {k.lower(): v for k, v in r.headers.items()}, r.data, url)
        if host_index is None:
            self._current = (start + 1) % len(self.urls)
        message = "connection failed: " + "; ".join(errors)
        raise TransportError(message, retriable=True, connect_failed=not sent)

    def close(self) -> None:
        self.pool.clear()


#: Failures before the request could be written: refused, unreachable, DNS, TLS handshake.
_CONNECT_ERRORS = (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.SSLError)


def _param(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    inner = reason if isinstance(reason, BaseException) else exc
    text = str(inner)
    # urllib3 wraps the OS error text: "<...>: Failed to establish a new connection: [Errno 111] ..."
    if "Failed to establish a new connection:" in text:
        text = text.split("Failed to establish a new connection:", 1)[1].strip()
    return text or type(inner).__name__
