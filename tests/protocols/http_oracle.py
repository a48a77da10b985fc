"""Expected HTTP events, worked out from a capture with tshark instead of our decoder.

tshark dissects and reassembles every HTTP message; this module turns its view into the
events Packetbeat builds (reference §1.7, §1.8, §2.3): request/response pairing per
connection, sizes (headers + body as they went over the wire), ``url.*``, headers map,
notes, times. Nothing here calls into ``protocols/``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from capture import CaptureFile, PcapWriter
from tests.helpers import need_tool

_FIELDS = (
    "frame.number",
    "tcp.stream",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.len",
    "tcp.payload",
    "tcp.segment",
    "tcp.reassembled.data",
    "communityid",
    "http.request.method",
    "http.request.uri",
    "http.request.version",
    "http.request.uri.query.parameter",
    "http.response.version",
    "http.response.code",
    "http.response.phrase",
    "http.request.line",
    "http.response.line",
    "http.chunk_size",
    "http.file_data",
    "urlencoded-form.key",
    "urlencoded-form.value",
)


def _tshark(pcap: Path, ports: list[int], *args: str) -> str:
    exe = need_tool("tshark")
    decode = [a for p in ports for a in ("-d", f"tcp.port=={p},http")]
    out = subprocess.run(
        [exe, "-r", str(pcap), "-n", "--enable-protocol", "communityid", *decode, *args],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return out.stdout.decode()


def frame_times(pcap: Path) -> dict[int, int]:
    """Frame number → capture time in integer nanoseconds (exact, via Decimal)."""
    out = _tshark(pcap, [], "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch")
    times = {}
    for line in out.splitlines():
        num, epoch = line.split("\t")
        times[int(num)] = int(Decimal(epoch) * 1_000_000_000)
    return times


@dataclass
class Message:
    frame: int
    stream: int
    ts: int
    src: str
    sport: int
    dst: str
    dport: int
    raw: bytes
    community_id: str
    is_request: bool
    method: str = ""
    uri: str = ""
    version: str = ""
    code: int = 0
    phrase: str = ""
    #: (lower-case name, value) in wire order
    header_list: list[tuple[str, str]] = field(default_factory=list)
    chunk_sizes: list[int] = field(default_factory=list)
    file_data: str | None = None
    form: list[tuple[str, str]] = field(default_factory=list)
    query_params: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """Last value of a header (Packetbeat keeps the last Content-Type/Length/Host)."""
        vals = [v for n, v in self.header_list if n == name]
        return vals[-1] if vals else None

    @property
    def header_len(self) -> int:
        end = self.raw.find(b"\r\n\r\n")
        assert end > 0, f"frame {self.frame}: no end of headers in the reassembled message"
        return end + 4

    @property
    def content_length(self) -> int | None:
        v = self.header("content-length")
        return None if v is None else int(v)

    @property
    def wire_body_len(self) -> int:
        """Body bytes on the wire (chunk framing included)."""
        if self.content_length is not None:
            return self.content_length
        return len(self.raw) - self.header_len

    @property
    def size(self) -> int:
        return self.header_len + self.wire_body_len

    @property
    def body_bytes(self) -> int:
        """Packetbeat's body length: Content-Length, the sum of the chunks, or all to the close."""
        if self.chunk_sizes:
            return sum(self.chunk_sizes)
        return self.wire_body_len

    def all_headers(self) -> dict[str, str]:
        hdrs: dict[str, str] = {}
        for n, v in self.header_list:
            hdrs[n] = v if n not in hdrs else hdrs[n] + ", " + v
        return hdrs


def _one(layers: dict[str, list[str]], name: str, default: str = "") -> str:
    vals = layers.get(name)
    if not vals:
        return default
    assert len(vals) == 1, f"{name}: one message per frame expected, got {vals}"
    return vals[0]


def _header_lines(lines: list[str]) -> list[tuple[str, str]]:
    out = []
    for line in lines:
        name, _, value = line.rstrip("\r\n").partition(":")
        out.append((name.strip().lower(), value.strip()))
    return out


def messages(pcap: Path, ports: list[int]) -> list[Message]:
    """Every HTTP message tshark finds, in the order it completed, with its first segment's time."""
    times = frame_times(pcap)
    args = ["-Y", "http", "-T", "json"]
    for f in _FIELDS:
        args += ["-e", f]
    packets = json.loads(_tshark(pcap, ports, *args) or "[]")
    msgs = []
    for p in packets:
        ly = p["_source"]["layers"]
        frame = int(_one(ly, "frame.number"))
        segments = [int(s) for s in ly.get("tcp.segment", [])] or [frame]
        raw_hex = _one(ly, "tcp.reassembled.data") or _one(ly, "tcp.payload")
        is_request = "http.request.method" in ly
        m = Message(
            frame=frame,
            stream=int(_one(ly, "tcp.stream")),
            ts=times[min(segments)],
            src=_one(ly, "ip.src") or _one(ly, "ipv6.src"),
            sport=int(_one(ly, "tcp.srcport")),
            dst=_one(ly, "ip.dst") or _one(ly, "ipv6.dst"),
            dport=int(_one(ly, "tcp.dstport")),
            raw=bytes.fromhex(raw_hex.replace(":", "")),
            community_id=_one(ly, "communityid"),
            is_request=is_request,
        )
        if is_request:
            m.method = _one(ly, "http.request.method")
            m.uri = _one(ly, "http.request.uri")
            m.version = _one(ly, "http.request.version")
            m.header_list = _header_lines(ly.get("http.request.line", []))
            m.query_params = [
                (k, v)
                for k, _, v in (q.partition("=") for q in ly.get("http.request.uri.query.parameter", []))
            ]
            m.form = list(
                zip(ly.get("urlencoded-form.key", []), ly.get("urlencoded-form.value", []), strict=True)
            )
        else:
            m.version = _one(ly, "http.response.version")
            m.code = int(_one(ly, "http.response.code"))
            m.phrase = _one(ly, "http.response.phrase")
            m.header_list = _header_lines(ly.get("http.response.line", []))
        m.chunk_sizes = [int(c) for c in ly.get("http.chunk_size", [])]
        fd = ly.get("http.file_data")
        m.file_data = fd[0] if fd else None
        msgs.append(m)
    return msgs


@dataclass
class Txn:
    request: Message | None
    response: Message | None


def pair(msgs: list[Message]) -> list[Txn]:
    """Packetbeat's pairing (§1.7): per connection a FIFO of requests; a response pops the
    oldest, or is unmatched when none waits; interim 1xx responses never pair. Requests
    left at the end come out unmatched (our end-of-input flush)."""
    out: list[Txn] = []
    waiting: dict[int, list[Message]] = {}
    for m in sorted(msgs, key=lambda m: m.frame):
        q = waiting.setdefault(m.stream, [])
        if m.is_request:
            q.append(m)
        elif 100 <= m.code < 200:
            continue
        elif q:
            out.append(Txn(q.pop(0), m))
        else:
            out.append(Txn(None, m))
    for q in waiting.values():
        out.extend(Txn(r, None) for r in q)
    return out


def fmt_ms(ts: int) -> str:
    sec, ns = divmod(ts, 1_000_000_000)
    base = dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns // 1_000_000:03d}Z"


def _split_host(host: str) -> tuple[str, int]:
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, int(port)
    return host, 0


def _is_ip(s: str) -> bool:
    parts = s.split(".")
    return ":" in s or (len(parts) == 4 and all(p.isdigit() for p in parts))


def encode_params(query: list[tuple[str, str]], form: list[tuple[str, str]], hide: tuple[str, ...]) -> str:
    """Go's ``url.Values.Encode`` of the query merged with the form (form keys win)."""
    values: dict[str, list[str]] = {}
    for k, v in query:
        values.setdefault(k, []).append(v)
    form_values: dict[str, list[str]] = {}
    for k, v in form:
        form_values.setdefault(k, []).append(v)
    values.update(form_values)
    return "&".join(
        f"{quote_plus(k)}={quote_plus('xxxxx' if k.lower() in hide else v)}"
        for k in sorted(values)
        for v in values[k]
    )


def _headers_map(m: Message, send_all: bool) -> dict[str, Any]:
    hdrs: dict[str, Any] = {}
    if send_all:
        hdrs.update(m.all_headers())
    hdrs["content-length"] = m.body_bytes
    ctype = m.header("content-type")
    if ctype is not None:
        hdrs["content-type"] = ctype
    return hdrs


def expected_event(txn: Txn, *, send_all_headers: bool = False, hide: tuple[str, ...] = ()) -> dict[str, Any]:
    """The event Packetbeat publishes for one transaction, as flattened dotted keys."""
    req, resp = txn.request, txn.response
    first = req or resp
    assert first is not None
    # Packetbeat appends "Unmatched request" before the request's own notes are looked at.
    notes: list[str] = ["Unmatched request"] if resp is None else []
    status = "OK"
    if resp is None or req is None or resp.code >= 400:
        status = "Error"
    e: dict[str, Any] = {
        "@timestamp": fmt_ms(first.ts),
        "type": "http",
        "status": status,
        "event.kind": "event",
        "event.category": ["network"],
        "event.type": ["connection", "protocol"],
        "event.dataset": "http",
        "network.transport": "tcp",
        "network.protocol": "http",
        "network.type": "ipv6" if ":" in first.src else "ipv4",
        "network.community_id": first.community_id,
        "source.ip": first.src,
        "source.port": first.sport,
        "destination.ip": first.dst,
        "destination.port": first.dport,
    }
    related_ip = list(dict.fromkeys([first.src, first.dst]))
    related_hosts: list[str] = []
    if req is not None:
        host, port = _split_host(req.header("host") or "")
        if host:
            if _is_ip(host):
                related_ip = list(dict.fromkeys([*related_ip, host]))
            else:
                e["destination.domain"] = host
                related_hosts.append(host)
        if port == 0:
            port = req.dport
        elif port != req.dport:
            notes.append("Host header port number mismatch")
        path = req.uri.split("?", 1)[0]
        form = req.form if "urlencoded" in (req.header("content-type") or "") else []
        query = encode_params(req.query_params, form, hide)
        e["source.bytes"] = req.size
        e["event.start"] = fmt_ms(req.ts)
        e["method"] = req.method
        e["query"] = f"{req.method} {path}"
        e["http.version"] = req.version.removeprefix("HTTP/")
        e["http.request.method"] = req.method
        e["http.request.bytes"] = req.size
        if req.body_bytes:
            e["http.request.body.bytes"] = req.body_bytes
        e["http.request.headers"] = _headers_map(req, send_all_headers)
        referer = req.header("referer")
        if referer:
            e["http.request.referrer"] = referer
            related_hosts.append(referer)
        e["url.scheme"] = "http"
        if host:
            e["url.domain"] = host
        if port != 80:
            e["url.port"] = port
        e["url.path"] = path
        if "." in path and not path.endswith("."):
            e["url.extension"] = path[path.rfind(".") + 1 :]
        if query:
            e["url.query"] = query
        if host:
            netloc = host if port == 80 else f"{host}:{port}"
            e["url.full"] = f"http://{netloc}{path}" + (f"?{query}" if query else "")
        ua = req.header("user-agent")
        if ua:
            e["user_agent.original"] = ua
        auth = req.header("authorization") or ""
        # Packetbeat 9.3 reads the user name only from a captured Authorization header.
        if send_all_headers and auth.lower().startswith("basic "):
            user = base64.b64decode(auth[6:]).decode().partition(":")[0]
            e["user.name"] = user
            e["related.user"] = [user]
    if resp is not None:
        e["destination.bytes"] = resp.size
        e["event.end"] = fmt_ms(resp.ts)
        e["http.response.status_code"] = resp.code
        if resp.phrase:
            e["http.response.status_phrase"] = resp.phrase.lower()
        e["http.response.bytes"] = resp.size
        if resp.body_bytes:
            e["http.response.body.bytes"] = resp.body_bytes
        e["http.response.headers"] = _headers_map(resp, send_all_headers)
    if req is not None and resp is not None:
        e["event.duration"] = resp.ts - req.ts
        e["network.bytes"] = req.size + resp.size
    elif req is not None:
        e["network.bytes"] = req.size
    else:
        assert resp is not None
        e["network.bytes"] = resp.size
        notes.append("Unmatched response")
    e["related.ip"] = related_ip
    if related_hosts:
        e["related.hosts"] = list(dict.fromkeys(related_hosts))
    if notes:
        e["error.message"] = notes[0] if len(notes) == 1 else notes
    # Packetbeat's publisher mirrors source → client and destination → server, bytes included.
    for side, mirror in (("source", "client"), ("destination", "server")):
        for k in [k for k in e if k.startswith(side + ".")]:
            e[mirror + k[len(side) :]] = e[k]
    return e


def flatten(evt: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys, as Packetbeat's system tests read events; header maps stay whole."""
    out: dict[str, Any] = {}
    for k, v in evt.items():
        key = prefix + k
        if isinstance(v, dict) and not key.endswith(".headers"):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def write_order(src: Path, dst: Path, order: list[int]) -> Path:
    """Write the packets of ``src`` (0-based indexes) in ``order``, timestamps unchanged:
    packets left out are lost, packets moved are reordered."""
    packets = list(CaptureFile(str(src)))
    with PcapWriter(str(dst), packets[0][1]) as w:
        for i in order:
            ts, _lt, frame, wire_len = packets[i]
            w.write(ts, frame, wire_len)
    return dst
