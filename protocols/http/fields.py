"""HTTP transaction → event dict (Packetbeat ``protos/http``, ECS field names)."""

from __future__ import annotations

import ipaddress
import re
import zlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote_plus, unquote_to_bytes, urlsplit

from protocols.common.digits import ascii_uint
from protocols.common.event import ERROR, OK, add_notes, add_related, transaction_event
from protocols.handler import FROM_CLIENT
from protocols.http.parser import Message
from protocols.http.transactions import HttpTransaction, basic_auth_user

if TYPE_CHECKING:
    from protocols.http import HttpPlugin


def to_event(plugin: HttpPlugin, txn: HttpTransaction) -> dict[str, Any]:
    cfg = plugin.config
    req, resp = txn.request, txn.response
    req_notes = list(req.notes) if req is not None and req.notes else []
    resp_notes = list(resp.notes) if resp is not None and resp.notes else []
    status = OK
    if resp is None:
        status = ERROR
        req_notes.append("Unmatched request")
    elif resp.status_code >= 400:
        status = ERROR
    if req is None:
        status = ERROR
        resp_notes.append("Unmatched response")

    first = req if req is not None else resp
    assert first is not None
    # (ConnInfo.endpoints inlined: a call into the interpreted class cost more)
    c = txn.conn
    if txn.first_dir == FROM_CLIENT:
        src_ip, src_port, dst_ip, dst_port = c.client_ip, c.client_port, c.server_ip, c.server_port
    else:
        src_ip, src_port, dst_ip, dst_port = c.server_ip, c.server_port, c.client_ip, c.client_port
    evt = transaction_event(
        "http",
        "tcp",
        status,
        first.ts,
        (src_ip, src_port),
        (dst_ip, dst_port),
        start=req.ts if req is not None else None,
        end=resp.ts if resp is not None else None,
    )
    http: dict[str, Any] = {}
    evt["http"] = http

    if req is not None:
        if req.encodings:
            _decode_body(plugin, req, req_notes)
        uri = req.uri
        if not req.save_body and _plain_uri(uri) and uri[:1] == "/" and uri[1:2] != "/":
            path = raw_path = uri  # nothing to decode or re-encode (most requests)
            params = ""
        else:
            path, params, raw_path = _extract_parameters(cfg.hide_keywords, req)
        evt["source"]["bytes"] = req.size
        host, port = _split_host(req.host)
        if host:
            if _is_ip(host):
                add_related(evt, "ip", host)
            else:
                evt["destination"]["domain"] = host
                add_related(evt, "hosts", host)
        if port == 0:
            port = dst_port
        elif port != dst_port:
            req_notes.append("Host header port number mismatch")
        if req.real_ip:
            evt["network"]["forwarded_ip"] = req.real_ip
            add_related(evt, "ip", req.real_ip)

        http["version"] = req.version_str
        request: dict[str, Any] = {"method": req.method, "bytes": req.size}
        body_bytes = req.content_length
        if req.send_body and req.body:
            body_bytes = len(req.body)
            request["body"] = {"bytes": body_bytes, "content": _text(req.body)}
        elif body_bytes:
            request["body"] = {"bytes": body_bytes}
        if req.referer:
            request["referrer"] = req.referer
            add_related(evt, "hosts", req.referer)
        request["headers"] = _collect_headers(plugin, req, "cookie")
        http["request"] = request

        url: dict[str, Any] = {"scheme": "http"}
        if host:
            url["domain"] = host
        if port != 80:
            url["port"] = port
        if path:
            url["path"] = path
            dot = path.rfind(".")
            if dot != -1 and path[dot + 1 :]:
                url["extension"] = path[dot + 1 :]
        if params:
            url["query"] = params
        full = _full_url(host, port, raw_path, params)
        if full:
            url["full"] = full
        evt["url"] = url
        if req.user_agent:
            evt["user_agent"] = {"original": req.user_agent}
        if cfg.send_request:
            evt["request"] = _raw_message(req)
        evt["method"] = req.method
        evt["query"] = f"{req.method} {path}"
        # Like Packetbeat, the user name comes only from a captured Authorization header:
        # with the default config no user name is indexed.
        if req.authorization and not cfg.redact_authorization and _keeps_authorization(cfg):
            user = basic_auth_user(req.authorization)
            if user:
                evt["user"] = {"name": user}
                add_related(evt, "user", user)

    if resp is not None:
        if resp.encodings:
            _decode_body(plugin, resp, resp_notes)
        evt["destination"]["bytes"] = resp.size
        response: dict[str, Any] = {"status_code": resp.status_code, "bytes": resp.size}
        if resp.status_phrase:
            response["status_phrase"] = resp.status_phrase.lower()
        # A response to HEAD carries no body; its Content-Length (kept in the headers map)
        # is the size a GET would have got.
        body_bytes = 0 if req is not None and req.method == "HEAD" else resp.content_length
        if resp.send_body and resp.body:
            body_bytes = len(resp.body)
            response["body"] = {"bytes": body_bytes, "content": _text(resp.body)}
        elif body_bytes:
            response["body"] = {"bytes": body_bytes}
        response["headers"] = _collect_headers(plugin, resp, "set-cookie")
        http["response"] = response
        if cfg.send_response:
            evt["response"] = _raw_message(resp)

    add_notes(evt, req_notes + resp_notes)
    return evt


def _text(body: bytes | bytearray) -> str:
    return bytes(body).decode("utf-8", "replace")


def _raw_message(m: Message) -> str:
    raw = m.raw_headers
    if m.send_body and m.body:
        raw = raw + bytes(m.body)
    return raw.decode("utf-8", "replace")


def _collect_headers(plugin: HttpPlugin, m: Message, cookie: str) -> dict[str, Any]:
    hdrs: dict[str, Any] = {"content-length": m.content_length}
    if m.content_type:
        hdrs["content-type"] = m.content_type
    if not m.headers:  # (no headers configured: the config is not even read)
        return hdrs
    split = plugin.config.split_cookie
    for name, value in m.headers.items():
        if name == "content-length" or name == "content-type":
            continue
        if split and name == cookie:
            hdrs[name] = _split_cookies(value)
        else:
            hdrs[name] = value
    return hdrs


def _split_cookies(value: str) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in value.split(";"):
        name, sep, val = part.partition("=")
        if not sep:
            continue
        val = val.strip()
        if len(val) > 1 and val[0] == '"' and val[-1] == '"':
            val = val[1:-1]
        cookies[name.strip().lower()] = val
    return cookies


def _decode_body(plugin: HttpPlugin, m: Message, notes: list[str]) -> None:
    if not (m.save_body and m.body and m.encodings and plugin.config.decode_body):
        return
    body = bytes(m.body)
    limit = plugin.config.max_message_size
    for idx in range(len(m.encodings) - 1, -1, -1):
        enc = m.encodings[idx]
        try:
            body = _decode_one(body, enc, limit)
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            notes.append(f"unable to decode body using {enc} encoding: {exc}")
            if idx != 0:
                body = b""
            break
    m.body = bytearray(body)


def _decode_one(body: bytes, enc: str, limit: int) -> bytes:
    if enc in ("gzip", "x-gzip"):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif enc in ("deflate", "x-deflate"):
        # RFC 9110 says zlib-wrapped; some servers send raw deflate. Accept both.
        d = zlib.decompressobj(zlib.MAX_WBITS if body[:1] and (body[0] & 0x0F) == 8 else -zlib.MAX_WBITS)
    else:
        raise ValueError(f"unsupported encoding {enc!r}")
    out = d.decompress(body, limit + 1)
    if len(out) > limit:
        raise ValueError(f"decoded body larger than {limit} bytes")
    return out


def _plain_uri(uri: str) -> bool:
    """Printable ASCII without a space, ``#``, ``%`` or ``?``: nothing to unescape, no query
    or fragment (string scans in C: a regular expression cost several times more)."""
    return (
        uri.isascii()
        and uri.isprintable()
        and " " not in uri
        and "#" not in uri
        and "%" not in uri
        and "?" not in uri
    )


#: A ``%`` that does not start an escape: Go's unescaping fails on it.
_BAD_ESCAPE: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _extract_parameters(hide: list[str], m: Message) -> tuple[str, str, str]:
    """(decoded path, re-encoded sorted params, raw path) as Packetbeat derives them with Go's
    net/url, on the target's bytes: the path decoded (UTF-8 shown as such), query pairs Go
    cannot parse (a ``;``, a broken escape) dropped, the rest re-encoded byte for byte."""
    if m.uri.isascii() and "%" not in m.uri and not m.save_body:
        return _extract_plain(hide, m.uri)
    uri = m.uri.encode("latin-1")  # the parser keeps the request line's bytes as latin-1
    if uri[:1] == b"/" and uri[1:2] != b"/":
        # origin-form (nearly every request): no need for the general URL parser
        raw_path, _, query = uri.partition(b"?")
        query = query.partition(b"#")[0]
        raw_path = raw_path.partition(b"#")[0]
    else:
        try:
            parts = urlsplit(uri)
        except ValueError:
            return "", "", ""
        raw_path, query = parts.path, parts.query
    path_bytes = unquote_to_bytes(raw_path) if raw_path.find(b"%") >= 0 else raw_path
    path = path_bytes.decode("utf-8", "replace")
    values: dict[str, list[str]] = {}
    if query:
        for k, v in _parse_query(query):
            values.setdefault(k, []).append("xxxxx" if k.lower() in hide else v)
    if m.content_length > 0 and m.save_body and m.body is not None and "urlencoded" in m.content_type.lower():
        body_values: dict[str, list[str]] = {}
        for k, v in _parse_query(bytes(m.body)):
            body_values.setdefault(k, []).append("xxxxx" if k.lower() in hide else v)
        values.update(body_values)
    raw = raw_path.decode("latin-1")
    if not values:
        return path, "", raw
    params = "&".join(f"{_escape(k)}={_escape(v)}" for k in sorted(values) for v in values[k])
    return path, params, raw


def _extract_plain(hide: list[str], uri: str) -> tuple[str, str, str]:
    """``_extract_parameters`` for an ASCII target without escapes (nearly every request)."""
    if uri[:1] == "/" and uri[1:2] != "/":
        raw_path, _, query = uri.partition("?")
        query = query.partition("#")[0]
        raw_path = raw_path.partition("#")[0]
    else:
        try:
            parts = urlsplit(uri)
        except ValueError:
            return "", "", ""
        raw_path, query = parts.path, parts.query
    if not query:
        return raw_path, "", raw_path
    values: dict[str, list[str]] = {}
    for part in query.split("&"):
        if not part or ";" in part:
            continue
        k, _, v = part.partition("=")
        if "+" in part:
            k, v = k.replace("+", " "), v.replace("+", " ")
        values.setdefault(k, []).append("xxxxx" if k.lower() in hide else v)
    if not values:
        return raw_path, "", raw_path
    params = "&".join(f"{_escape(k)}={_escape(v)}" for k in sorted(values) for v in values[k])
    return raw_path, params, raw_path


_PLAIN: Final = re.compile(r"[A-Za-z0-9_.~-]*")


def _parse_query(query: bytes) -> list[tuple[str, str]]:
    """Go's url.ParseQuery: ``&``-separated pairs, ``+`` a space, blank values kept; a pair with
    a ``;`` or a broken escape is skipped. Keys and values keep their bytes (surrogateescape)."""
    out = []
    for part in query.split(b"&"):
        if not part or part.find(b";") >= 0 or (part.find(b"%") >= 0 and _BAD_ESCAPE.search(part)):
            continue
        k, _, v = part.partition(b"=")
        out.append((_query_unescape(k), _query_unescape(v)))
    return out


def _query_unescape(b: bytes) -> str:
    if b.find(b"+") >= 0:  # (find: ``in`` on bytes raises and catches a TypeError first)
        b = b.replace(b"+", b" ")
    if b.find(b"%") >= 0:
        b = unquote_to_bytes(b)
    return b.decode("utf-8", "surrogateescape")


def _escape(s: str) -> str:
    """Go's url.QueryEscape (of the original bytes)."""
    if s.isascii() and s.isalnum():  # (most keys and values: no regular expression needed)
        return s
    return s if _PLAIN.fullmatch(s) else quote_plus(s, safe="", errors="surrogateescape")


@lru_cache(maxsize=4096)
def _split_host(header: str) -> tuple[str, int]:
    if not header:
        return "", 0
    if _is_ip(header):
        return header, 0
    host, port = header, 0
    pos = header.rfind(":")
    if pos != -1:
        n = ascii_uint(header[pos + 1 :], 5)
        if n is not None and 0 < n < 65536:
            host, port = header[:pos], n
    if len(host) > 2 and host[0] == "[" and host[-1] == "]" and _is_ip(host[1:-1]):
        host = host[1:-1]
    return host, port


@lru_cache(maxsize=4096)
def _is_ip(s: str) -> bool:
    if not s or (":" not in s and not "0" <= s[-1] <= "9"):
        return False  # a host name: IPv4 ends in a digit, IPv6 has colons
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


def _full_url(host: str, port: int, raw_path: str, query: str) -> str:
    if not host or port <= 0:
        return ""
    if port != 80:
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    elif ":" in host:
        netloc = f"[{host}]"
    else:
        netloc = host
    netloc = _escape_host(netloc)
    path = _escape_path(raw_path)
    if path and not path.startswith("/"):
        path = "/" + path
    url = f"http://{netloc}{path}"
    if query:
        url += "?" + query
    return url


#: What Go's url.URL.String() leaves unescaped in a host (sub-delims, ``:``, brackets).
_HOST_PLAIN: Final = re.compile(r"[A-Za-z0-9\-_.~!$&'()*+,;=:\[\]<>\"]*")
_ALNUM: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_HOST_SAFE: Final = frozenset(_ALNUM + b"-_.~!$&'()*+,;=:[]<>\"")
#: What Go's url.URL.String() leaves unescaped in a path (RFC 3986 §3.3 as net/url reads it).
_PATH_PLAIN: Final = re.compile(r"[A-Za-z0-9\-_.~$&+,/:;=@]*")
_PATH_SAFE: Final = frozenset(_ALNUM + b"-_.~$&+,/:;=@")


@lru_cache(maxsize=4096)
def _escape_host(netloc: str) -> str:
    if _HOST_PLAIN.fullmatch(netloc):
        return netloc
    return "".join(chr(c) if c in _HOST_SAFE else f"%{c:02X}" for c in netloc.encode("utf-8"))


@lru_cache(maxsize=4096)
def _escape_path(raw_path: str) -> str:
    """The path as Packetbeat's ``url.full`` has it: decoded, then escaped by Go's net/url
    (``*``, ``%2A`` and a space all come out as ``%2A``/``%20``; ``%2F`` becomes ``/``)."""
    if _PATH_PLAIN.fullmatch(raw_path) or raw_path == "*":
        return raw_path
    raw = unquote_to_bytes(raw_path.encode("latin-1"))
    return "".join(chr(c) if c in _PATH_SAFE else f"%{c:02X}" for c in raw)


def _keeps_authorization(cfg: Any) -> bool:
    return bool(cfg.send_all_headers or "authorization" in cfg.send_headers)
