"""SIP message → event dict (Packetbeat ``protos/sip/plugin.go`` ``buildEvent``).

Field names, which header value counts (the last for To, From, CSeq, Call-ID, Content-Type,
User-Agent, Max-Forwards, Allow, Supported; the first for Contact, Accept, Authorization,
P-Associated-URI; every distinct Via), how URIs, name-addrs, credentials and SDP lines are
cut, and the order of ``related.*`` are Packetbeat's. Deliberate differences
(docs/differences.md, SIP): ``sip.contact.*`` from the Contact header (Packetbeat reads the
To header again), ``sip.private.uri.*`` from the URI inside ``<>``, ``network.transport``
and ``network.iana_number`` from the packet's transport, ``event.original`` without the
messages that follow in the same datagram or segment, SDP lines ended by a bare LF and a
Content-Type in any case, an SDP owner address that is no IP address left out of the
``ip``-typed fields.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from protocols.common.event import ERROR, OK
from protocols.sip.text import (
    atoi,
    go_lower,
    go_lower_bytes,
    go_lower_str,
    go_upper,
    gostr,
    int_ascii,
    trim_space,
)
from protocols.sip.transactions import SipEvent

if TYPE_CHECKING:
    from protocols.sip import SipPlugin

_IANA = {"udp": "17", "tcp": "6"}
_TYPE = ("info", "protocol")
_NO_USER = (b" ", b"-")
_FLOAT = re.compile(rb"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")

Params = dict[bytes, bytes]


def _add(lst: list[str], value: str) -> None:
    if value and value not in lst:
        lst.append(value)


# -- URIs and name-addrs ------------------------------------------------------------------------


def parse_uri(uri: bytes, want_params: bool = False) -> tuple[bytes, bytes, bytes, int, Params]:
    """(scheme, user, host, port, parameters) the way Packetbeat's ``parseURI`` cuts a URI:
    scheme to the first colon, the user before the last ``@``, host and port split at a colon
    outside ``[]``, parameters after the first unescaped ``;``."""
    if len(uri) <= _CACHE_LEN:
        return _parse_uri_cached(uri, want_params)
    return _parse_uri(uri, want_params)


_CACHE_LEN = 256


def _parse_uri(uri: bytes, want_params: bool) -> tuple[bytes, bytes, bytes, int, Params]:
    uri = trim_space(uri)
    n = len(uri)
    if b"[" in uri or b"\\" in uri:
        return _parse_uri_scan(uri, want_params)
    colon = uri.find(b":")
    if colon < 0:
        return b"", b"", b"", 0, {}
    pos = colon + 1
    semi = uri.find(b";", pos)
    epos = semi if semi >= 0 else n
    part = uri[pos:epos]
    if part.count(b"@") > 1 or part.count(b":") > 1:
        return _parse_uri_scan(uri, want_params)
    # At most one '@' and one ':': the scan below, case by case.
    at = part.find(b"@")
    k = part.find(b":")
    user = b""
    if at >= 0 and k > at:
        user = part[:at]
        part = part[at + 1 :]
        k -= at + 1
        at = -1
    if at >= 0:
        # user:password@host: the host the colon cut is dropped again at the '@' (an empty
        # one is not, and the user then starts after the colon).
        user = part[1:at] if k == 0 else part[:at]
        host, port = trim_space(part[at + 1 :]), 0
    elif k > 0:
        host, port = part[:k], atoi(trim_space(part[k + 1 :]))
    elif k == 0:
        host, port = trim_space(part[1:]), 0
    else:
        host, port = trim_space(part), 0
    return uri[:colon], user, host, port, _uri_params(uri, semi) if semi >= 0 and want_params else {}


def _uri_params(uri: bytes, epos: int) -> Params:
    params: Params = {}
    for p in uri[epos + 1 :].split(b";"):
        kv = p.split(b"=")
        if len(kv) == 2:
            params[go_lower_bytes(trim_space(kv[0]))] = kv[1]
    return params


_parse_uri_cached = lru_cache(maxsize=4096)(_parse_uri)


def _parse_uri_scan(uri: bytes, want_params: bool) -> tuple[bytes, bytes, bytes, int, Params]:
    """Packetbeat's character scan (escapes, IPv6 brackets, several ``@`` or ``:``)."""
    n = len(uri)
    scheme = user = host = b""
    prev = 32
    in6 = False
    pos = ppos = -1
    epos = n
    has_params = False
    idx = 0
    while idx < n:
        c = uri[idx]
        if idx == 0:
            colon = uri.find(b":")
            if colon < 0:
                break
            scheme = uri[:colon]
            idx += colon
            pos = idx + 1
        elif c == 0x5B and prev != 0x5C:  # [
            in6 = True
        elif c == 0x5D and prev != 0x5C:  # ]
            in6 = False
        elif c == 0x3B and prev != 0x5C:  # ;
            has_params = True
            epos = idx
            break
        elif c == 0x40:  # @
            if host:
                pos = ppos
                host = b""
            user = uri[pos:idx]
            ppos = pos
            pos = idx + 1
        elif c == 0x3A and not in6:  # :
            host = uri[pos:idx]
            ppos = pos
            pos = idx + 1
        prev = c
        idx += 1
    port = 0
    if 0 < pos <= epos:
        if not host:
            host = trim_space(uri[pos:epos])
        else:
            port = atoi(trim_space(uri[pos:epos]))
    return scheme, user, host, port, _uri_params(uri, epos) if has_params and want_params else {}


def parse_name_addr(value: bytes) -> tuple[bytes, bytes, Params]:
    """(display name, URI, header parameters) of a From/To/Contact value, as Packetbeat's
    ``parseFromToContact`` cuts it: the URI inside ``<>``, else up to the first ``;``."""
    value = trim_space(value)
    lt = value.find(b"<")
    wrapped = lt >= 0
    pos = lt if wrapped else 0
    display = value[:pos].strip(b"'\"\t ")
    end = value.find(b">") if wrapped else value.find(b";")
    params: Params = {}
    if end < 0:
        return display, value[pos:], params
    if wrapped:
        pos += 1
    if end < pos:
        return display, b"", params  # '>' before '<' (Packetbeat's slice would panic)
    uri = value[pos:end]
    for p in value[end + 1 :].split(b";"):
        kv = p.split(b"=", 1)
        if len(kv) == 2:
            params[go_lower_bytes(trim_space(kv[0]))] = kv[1]
    return display, uri, params


def first_entry(value: bytes) -> bytes:
    """The first of a comma-separated list of name-addrs (commas in quotes or ``<>`` kept)."""
    if b"," not in value:
        return value
    quoted = angle = False
    prev = 0
    for i, c in enumerate(value):
        if c == 0x22 and prev != 0x5C:  # "
            quoted = not quoted
        elif not quoted:
            if c == 0x3C:
                angle = True
            elif c == 0x3E:
                angle = False
            elif c == 0x2C and not angle:
                return trim_space(value[:i])
        prev = c
    return value


def _uri_view(raw: bytes, want_params: bool) -> tuple[dict[str, Any], str, str, Params]:
    """A URI's fields, its user name and host (for ``related``), its parameters."""
    scheme, user, host, port, params = parse_uri(raw, want_params)
    out: dict[str, Any] = {}
    if raw:
        out["original"] = gostr(raw)
    if scheme:
        out["scheme"] = gostr(scheme)
    h = u = ""
    if host:
        h = out["host"] = gostr(host)
    if user and user not in _NO_USER:
        u = out["username"] = gostr(user)
    if port:
        out["port"] = port
    return out, u, h, params


_uri_view_cached = lru_cache(maxsize=4096)(_uri_view)


def _uri_fields(
    raw: bytes, users: list[str], hosts: list[str], want_params: bool = False
) -> tuple[dict[str, Any], Params]:
    view = _uri_view_cached if len(raw) <= _CACHE_LEN else _uri_view
    out, u, h, params = view(raw, want_params)
    if h and h not in hosts:
        hosts.append(h)
    if u and u not in users:
        users.append(u)
    return dict(out), params


def _q(value: bytes) -> float | int | None:
    """A q-value (``strconv.ParseFloat`` for decimal text); whole numbers as integers, as
    Go's encoder writes them."""
    if _FLOAT.fullmatch(value) is None:
        return None
    f = float(value)
    if f != f or f in (float("inf"), float("-inf")):
        return None
    return int(f) if f.is_integer() and abs(f) < 1e15 else f


def _name_addr(value: bytes, users: list[str], hosts: list[str], contact: bool = False) -> dict[str, Any]:
    view = _name_addr_cached if len(value) <= _CACHE_LEN else _name_addr_view
    out, u, h = view(value, contact)
    if h and h not in hosts:
        hosts.append(h)
    if u and u not in users:
        users.append(u)
    out = dict(out)
    if "uri" in out:
        out["uri"] = dict(out["uri"])
    return out


def _name_addr_view(value: bytes, contact: bool) -> tuple[dict[str, Any], str, str]:
    display, uri, params = parse_name_addr(value)
    out: dict[str, Any] = {}
    if display:
        out["display_info"] = gostr(display)
    uri_out, u, h, uparams = _uri_view(uri, contact)
    if uri_out:
        out["uri"] = uri_out
    if contact:
        expires = atoi(params.get(b"expires", b""))
        if expires:
            out["expires"] = expires
        q = _q(params.get(b"q", b""))
        if q:
            out["q"] = q
        line = uparams.get(b"line")
        if line:
            out["line"] = gostr(line)
        transport = uparams.get(b"transport")
        if transport:
            out["transport"] = go_lower(transport)
    else:
        tag = params.get(b"tag")
        if tag:
            out["tag"] = gostr(tag)
    return out, u, h


_name_addr_cached = lru_cache(maxsize=4096)(_name_addr_view)


def _comma_list(value: bytes) -> list[str]:
    return [go_lower(v.strip(b" ")) for v in value.split(b",")]


# -- Authorization and SDP ----------------------------------------------------------------------


def _auth(value: bytes, users: list[str], hosts: list[str]) -> tuple[dict[str, Any], str]:
    """``sip.auth.*`` and the user name of a credentials header (scheme, then
    comma-separated ``name=value`` pairs; quotes trimmed)."""
    out: dict[str, Any] = {}
    user_name = ""
    auth = trim_space(value)
    sp = auth.find(b" ")
    if sp < 0:
        return out, user_name
    out["scheme"] = gostr(auth[:sp])
    for p in auth[sp + 1 :].split(b","):
        kv = p.split(b"=", 1)
        if len(kv) != 2:
            continue
        val = kv[1].strip(b"'\" \t")
        key = go_lower_bytes(trim_space(kv[0]))
        if key == b"realm":
            out["realm"] = gostr(val)
        elif key == b"username":
            if val and val != b"-":
                user_name = gostr(val)
                _add(users, user_name)
        elif key == b"uri":
            scheme, _user, host, port, _ = parse_uri(val)
            uri: dict[str, Any] = {"original": gostr(val)} if val else {}
            if scheme:
                uri["scheme"] = gostr(scheme)
            if host:
                uri["host"] = gostr(host)
            if port:
                uri["port"] = port
            out["uri"] = uri
    return {k: v for k, v in out.items() if v}, user_name


@lru_cache(maxsize=4096)
def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "%" not in text


_SDP_KEYS = frozenset(b"vVoOsScCmM")


def _sdp(body: bytes, users: list[str], hosts: list[str], ips: list[str]) -> dict[str, Any]:
    """``sip.sdp.*`` from an SDP body (RFC 4566 §5): version, owner, session name, and the
    session-level connection (a ``c=`` line after the first ``m=`` belongs to a medium)."""
    version = owner_user = sess_id = owner_version = owner_ip = name = conn_info = conn_addr = b""
    in_media = False
    # RFC 4566 §5: lines end in CRLF, and a parser should take a bare LF too.
    for line in body.split(b"\n"):
        if line[-1:] == b"\r":
            line = line[:-1]
        if len(line) > 1 and line[1] == 0x3D and line[0] > 0x20:  # "x=...": the usual form
            if line[0] not in _SDP_KEYS:
                continue
            key = line[:1].lower()
            val = trim_space(line[2:])
        else:
            kv = line.split(b"=", 1)
            if len(kv) != 2:
                continue
            val = trim_space(kv[1])
            key = go_lower_bytes(trim_space(kv[0]))
        if key == b"v":
            version = val
        elif key == b"o":
            if not val:
                continue
            if val[0] == 0x22:  # a quoted user name
                close = val.find(b'"', 1)
                if close < 0:
                    continue
                user = val[1:close]
                parts = val[close + 1 :].lstrip(b" ").split(b" ", 2)
                if len(parts) != 3:
                    continue
            else:
                parts = val.split(b" ", 3)
                if len(parts) != 4:
                    continue
                user = parts[0]
                parts = parts[1:]
            if user != b"-":
                owner_user = user
            sess_id = parts[0]
            owner_version = parts[1]
            owner_ip = parts[2].split(b" ")[-1]
            _add(users, gostr(owner_user))
            if _is_ip(gostr(owner_ip)):
                _add(ips, gostr(owner_ip))
            else:
                owner_ip = b""
        elif key == b"s":
            if val != b"-":
                name = val
        elif key == b"c":
            if in_media:
                continue
            conn_info = val
            conn_addr = val.split(b" ")[-1]
            _add(hosts, gostr(conn_addr))
        elif key == b"m":
            in_media = True
    out: dict[str, Any] = {}
    if version:
        out["version"] = gostr(version)
    named = (("username", owner_user), ("session_id", sess_id), ("version", owner_version), ("ip", owner_ip))
    owner = {k: gostr(v) for k, v in named if v}
    if owner:
        out["owner"] = owner
    if name:
        out["session"] = {"name": gostr(name)}
    conn = {k: gostr(v) for k, v in (("info", conn_info), ("address", conn_addr)) if v}
    if conn:
        out["connection"] = conn
    if body:
        out["body"] = {"original": gostr(body)}
    return out


# -- the event ----------------------------------------------------------------------------------


def to_event(plugin: SipPlugin, ev: SipEvent) -> dict[str, Any]:
    cfg = plugin.config
    m = ev.msg
    h = m.headers
    users: list[str] = []
    hosts: list[str] = []
    ips: list[str] = []
    sip: dict[str, Any] = {}

    if m.is_request:
        sip["type"] = "request"
        if m.method:
            sip["method"] = go_upper(m.method)
        uri, _ = _uri_fields(m.uri, users, hosts)
        if uri:
            sip["uri"] = uri
    else:
        sip["type"] = "response"
        if m.code:
            sip["code"] = m.code
        if m.phrase:
            sip["status"] = gostr(m.phrase)
    sip["version"] = m.version

    get = h.get
    text: Callable[[bytes], str] = bytes.decode if m.raw.isascii() else gostr
    vals = get(b"allow")
    if vals:
        sip["allow"] = _comma_list(vals[-1])
    vals = get(b"call-id")
    if vals and vals[-1]:
        sip["call_id"] = text(vals[-1])
    if m.content_length:
        sip["content_length"] = m.content_length
    vals = get(b"content-type")
    ctype = go_lower(vals[-1]) if vals else ""
    if ctype:
        sip["content_type"] = ctype
    vals = get(b"max-forwards")
    if vals and vals[-1]:
        mf = int_ascii(vals[-1])
        if mf:
            sip["max_forwards"] = mf
    vals = get(b"supported")
    if vals:
        sip["supported"] = _comma_list(vals[-1])
    vals = get(b"user-agent")
    if vals and vals[-1]:
        sip["user_agent"] = {"original": text(vals[-1])}
    vals = get(b"via")
    if vals:
        sip["via"] = {"original": [text(x) for x in (dict.fromkeys(vals) if len(vals) > 1 else vals)]}

    vals = get(b"p-associated-uri")
    if vals:
        entry = first_entry(vals[0])
        if b"<" in entry:
            entry = parse_name_addr(entry)[1]
        private, _ = _uri_fields(entry, users, hosts)
        if private:
            sip["private"] = {"uri": private}
    vals = get(b"accept")
    if vals and vals[0]:
        sip["accept"] = go_lower(vals[0])

    cseq_code = 0
    cseq_method = ""
    vals = get(b"cseq")
    parts = vals[-1].split(b" ") if vals else ()
    if len(parts) == 2:
        cseq_code = atoi(parts[0])
        cseq_method = go_upper(parts[1])
        cseq: dict[str, Any] = {}
        if cseq_code:
            cseq["code"] = cseq_code
        if cseq_method:
            cseq["method"] = cseq_method
        if cseq:
            sip["cseq"] = cseq

    vals = get(b"from")
    if vals and vals[-1]:
        sip["from"] = _name_addr(vals[-1], users, hosts)
    vals = get(b"to")
    if vals and vals[-1]:
        sip["to"] = _name_addr(vals[-1], users, hosts)
    vals = get(b"contact")
    if vals:
        contact = _name_addr(first_entry(vals[0]), users, hosts, contact=True)
        if contact:
            sip["contact"] = contact

    user_name = ""
    if cfg.parse_authorization:
        vals = get(b"authorization")
        if vals:
            auth, user_name = _auth(vals[0], users, hosts)
            if auth:
                sip["auth"] = auth

    if (
        cfg.parse_body
        and m.content_length is not None
        and ctype == "application/sdp"
        and b"content-encoding" not in h
    ):
        sdp = _sdp(m.body, users, hosts, ips)
        if sdp:
            sip["sdp"] = sdp

    src, dst = ev.src, ev.dst
    _add(ips, src[0])
    _add(ips, dst[0])
    related: dict[str, Any] = {"ip": ips}
    if users:
        related["user"] = users
    if hosts:
        related["hosts"] = hosts

    ts = m.ts
    code = m.code
    event: dict[str, Any] = {
        "start": ts,
        "end": ts,
        "kind": "event",
        "category": ["network", "authentication"] if b"authorization" in h else ["network"],
        "type": list(_TYPE),
        "dataset": "sip",
    }
    if cseq_code:
        event["sequence"] = cseq_code
    if cfg.keep_original and m.raw:
        event["original"] = text(m.raw)
    event["action"] = "sip-" + (go_lower(m.method) if m.is_request else go_lower_str(cseq_method))
    if code >= 200:
        event["outcome"] = "failure" if code > 299 else "success"
    if m.phrase:
        event["reason"] = text(m.phrase)

    evt: dict[str, Any] = {
        "@timestamp": ts,
        "type": "sip",
        "status": ERROR if code >= 400 else OK,
        "event": event,
        "network": {
            "transport": ev.transport,
            "protocol": "sip",
            "application": "sip",
            "iana_number": _IANA[ev.transport],
        },
        "source": {"ip": src[0], "port": src[1]},
        "destination": {"ip": dst[0], "port": dst[1]},
        "related": related,
        "sip": sip,
    }
    if user_name:
        evt["user"] = {"name": user_name}
    return evt
