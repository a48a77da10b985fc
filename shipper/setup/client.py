"""Index management against a cluster: detect the distribution, then install templates,
ILM policies and write aliases.

- Elasticsearch 8 and 9: the official ``elasticsearch`` client (its product check insists
  on ``X-Elastic-Product: Elasticsearch``), asking for the server's own major version's
  compatible API.
- OpenSearch (any version) and Elasticsearch 6/7: plain HTTP (``shipper.outputs.http``); the
  official 8/9 clients refuse those servers.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

import attrs

from shipper.outputs.elasticsearch import ElasticsearchConfig, http_client
from shipper.outputs.http import HttpClient, HttpResponse, TransportError, ssl_context
from shipper.setup.template import Target, Template, parse_version


class SetupError(Exception):
    """Setup cannot go on; the message is one line for the user."""


@attrs.frozen
class ServerInfo:
    flavor: str
    version: str
    url: str
    cluster: str = ""

    @property
    def target(self) -> Target:
        return Target(self.flavor, parse_version(self.version))

    def describe(self) -> str:
        name = "OpenSearch" if self.flavor == "opensearch" else "Elasticsearch"
        return f"{name} {self.version} at {self.url}"


class IndexAdmin(Protocol):
    info: ServerInfo

    def put_template(self, t: Template) -> None: ...

    def policy_exists(self, name: str) -> bool: ...

    def put_policy(self, name: str, body: dict[str, Any]) -> None: ...

    def alias_exists(self, name: str) -> bool: ...

    def create_write_index(self, alias: str) -> None: ...

    def close(self) -> None: ...


def _status_error(what: str, r: HttpResponse) -> SetupError:
    if r.status == 401:
        return SetupError(
            f"{what}: authentication failed (HTTP 401) at {r.url}: check output.elasticsearch "
            "username/password or api_key"
        )
    if r.status == 403:
        return SetupError(f"{what}: permission denied (HTTP 403): {r.error_reason()}")
    return SetupError(f"{what}: HTTP {r.status}: {r.error_reason()}")


def detect(client: HttpClient) -> ServerInfo:
    """``GET /``: which distribution and version answers."""
    try:
        r = client.request("GET", "/")
    except TransportError as exc:
        raise SetupError(f"cannot connect to Elasticsearch/OpenSearch: {exc.message}") from None
    if not r.ok:
        raise _status_error(f"GET {client.url}/", r)
    data = r.json()
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, dict) or not isinstance(version.get("number"), str):
        raise SetupError(
            f"the server at {client.url} is neither Elasticsearch nor OpenSearch (no version in GET /)"
        )
    assert isinstance(data, dict)
    cluster = str(data.get("cluster_name", ""))
    if version.get("distribution") == "opensearch":
        return ServerInfo("opensearch", version["number"], client.url, cluster)
    if r.headers.get("x-elastic-product") == "Elasticsearch" or data.get("tagline") == "You Know, for Search":
        return ServerInfo("elasticsearch", version["number"], client.url, cluster)
    raise SetupError(f"the server at {client.url} is neither Elasticsearch nor OpenSearch")


class HttpAdmin:
    """Plain HTTP (OpenSearch, Elasticsearch before 8)."""

    def __init__(self, client: HttpClient, info: ServerInfo) -> None:
        self.client = client
        self.info = info

    def _call(self, what: str, method: str, path: str, body: Any = None) -> HttpResponse:
        try:
            r = self.client.request(method, path, body)
        except TransportError as exc:
            raise SetupError(f"{what}: {exc.message}") from None
        if not r.ok and r.status != 404:
            raise _status_error(what, r)
        return r

    def put_template(self, t: Template) -> None:
        r = self._call(f"loading template {t.name}", "PUT", t.path, t.body)
        if r.status == 404:
            raise _status_error(f"loading template {t.name}", r)

    def policy_exists(self, name: str) -> bool:
        return self._call(f"check ILM policy {name}", "GET", f"/_ilm/policy/{quote(name)}").status == 200

    def put_policy(self, name: str, body: dict[str, Any]) -> None:
        r = self._call(f"loading ILM policy {name}", "PUT", f"/_ilm/policy/{quote(name)}", body)
        if r.status == 404:
            raise _status_error(f"loading ILM policy {name}", r)

    def alias_exists(self, name: str) -> bool:
        return self._call(f"check alias {name}", "HEAD", f"/_alias/{quote(name)}").status == 200

    def create_write_index(self, alias: str) -> None:
        index = quote(f"<{alias}-{{now/d}}-000001>", safe="")
        body = {"aliases": {alias: {"is_write_index": True}}}
        r = self._call(f"creating the write index for {alias}", "PUT", f"/{index}", body)
        if r.status == 404:
            raise _status_error(f"creating the write index for {alias}", r)

    def close(self) -> None:
        self.client.close()


class OfficialAdmin:
    """The official ``elasticsearch`` client (Elasticsearch 8 and 9)."""

    def __init__(self, cfg: ElasticsearchConfig, info: ServerInfo, urls: list[str]) -> None:
        from elasticsearch import Elasticsearch

        self.info = info
        major = parse_version(info.version)[0]
        # The 9.x client asks for compatible-with=9, which an 8.x server refuses; ask for the
        # server's own major (already in vendor form, so the client leaves it alone).
        self.headers = {
            "accept": f"application/vnd.elasticsearch+json; compatible-with={major}",
            "content-type": f"application/vnd.elasticsearch+json; compatible-with={major}",
        }
        kwargs: dict[str, Any] = {
            "request_timeout": cfg.timeout,
            "headers": dict(cfg.headers),
            "max_retries": 0,
        }
        if cfg.api_key:
            kwargs["api_key"] = tuple(cfg.api_key.split(":", 1)) if ":" in cfg.api_key else cfg.api_key
        elif cfg.username:
            kwargs["basic_auth"] = (cfg.username, cfg.password)
        if any(u.startswith("https:") for u in urls):
            kwargs["ssl_context"] = ssl_context(cfg.ssl)
        self.es = Elasticsearch(urls, **kwargs)

    def _call(self, what: str, method: str, path: str, body: Any = None) -> int:
        from elastic_transport import ConnectionError as EsConnectionError
        from elastic_transport import TransportError as EsTransportError
        from elasticsearch import ApiError, UnsupportedProductError

        try:
            resp = self.es.perform_request(method, path, body=body, headers=self.headers)
        except UnsupportedProductError:
            raise SetupError(
                f"{what}: the server at {self.info.url} is not Elasticsearch (the official client refuses it)"
            ) from None
        except ApiError as exc:
            status = exc.meta.status
            if status == 404:
                return 404
            raise _status_error(
                what,
                HttpResponse(status, {}, _body_bytes(exc.body), self.info.url),
            ) from None
        except EsConnectionError as exc:
            raise SetupError(f"{what}: cannot connect to {self.info.url}: {exc.message}") from None
        except EsTransportError as exc:
            raise SetupError(f"{what}: {exc}") from None
        return int(resp.meta.status)

    def put_template(self, t: Template) -> None:
        if self._call(f"loading template {t.name}", "PUT", t.path, t.body) == 404:
            raise SetupError(f"loading template {t.name}: HTTP 404")

    def policy_exists(self, name: str) -> bool:
        return self._call(f"check ILM policy {name}", "GET", f"/_ilm/policy/{quote(name)}") == 200

    def put_policy(self, name: str, body: dict[str, Any]) -> None:
        if self._call(f"loading ILM policy {name}", "PUT", f"/_ilm/policy/{quote(name)}", body) == 404:
            raise SetupError(f"loading ILM policy {name}: HTTP 404")

    def alias_exists(self, name: str) -> bool:
        return self._call(f"check alias {name}", "HEAD", f"/_alias/{quote(name)}") == 200

    def create_write_index(self, alias: str) -> None:
        index = quote(f"<{alias}-{{now/d}}-000001>", safe="")
        body = {"aliases": {alias: {"is_write_index": True}}}
        self._call(f"creating the write index for {alias}", "PUT", f"/{index}", body)

    def close(self) -> None:
        self.es.close()


def _body_bytes(body: Any) -> bytes:
    import orjson

    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    try:
        return orjson.dumps(body)
    except TypeError:
        return str(body).encode()


def connect(cfg: ElasticsearchConfig) -> IndexAdmin:
    """Detect the server and pick the client: official for Elasticsearch ≥ 8, plain HTTP otherwise."""
    client = http_client(cfg)
    info = detect(client)
    if info.flavor == "elasticsearch" and parse_version(info.version)[0] >= 8:
        client.close()
        return OfficialAdmin(cfg, info, client.urls)
    return HttpAdmin(client, info)
