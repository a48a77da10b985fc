"""The HTTP decoder against Packetbeat's own captures (``shared/pcaps/packetbeat``).

Expected values are worked out from each capture with tshark (``http_oracle``) and with
Packetbeat's rules, and the numbers Packetbeat's system tests assert are asserted here
too. Final events come from the real CLI (``-I pcap -t`` with ``output.file``), so the
envelope (``client``/``server`` mirrors, ``network.bytes``, ``community_id``,
``event.duration``, ``@timestamp``) is covered as well.

Where wirebeat deliberately differs from Packetbeat, the test asserts our behaviour and
says so:

* requests still open at the end of the input come out as ``Unmatched request``
  (Packetbeat drops them at EOF under ``-t``);
* interim 1xx responses never pair with a request;
* a response to HEAD has no body whatever its Content-Length says;
* bytes lost outside a body (a response's head, or whole responses) do not throw the
  connection's state away: the requests waiting for those responses are published at
  once as ``Unmatched request``, noted ``Packet loss while capturing the response``
  (Packetbeat drops them), and later transactions pair as usual.
"""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from capture import CaptureFile
from shipper.pipeline.envelope import Envelope
from tests.helpers import ROOT, decode_file, shared_pcap
from tests.protocols import http_oracle as oracle

#: capture → the HTTP ports Packetbeat's system tests configured for it.
CAPTURES: dict[str, list[int]] = {
    "http_minitwit": [80, 5000],
    "http_post": [80],
    "http_url_params": [80],
    "http_10_connection_close": [8000],
    "http_unmatched": [8080],
    "http_over_vlan": [8080],
    "wsgi_loopback": [8888],
    "http_basicauth": [80],
    "http_100_continue": [9200],
    "http_get_2k_file": [8000],
}

#: Added by libbeat, not by the decoder; and ``network.direction`` depends on the host.
_ENVELOPE_ONLY = ("agent", "host", "ecs", "@metadata")


def run_wirebeat(tmp_path: Path, pcap: Path, http: dict[str, Any]) -> list[dict[str, Any]]:
    """``wirebeat -c cfg -e -I pcap -t`` with ``output.file``; the published events."""
    out_dir = tmp_path / "out"
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = {
        "packetbeat.protocols": [{"type": "http", **http}],
        "output.file": {"path": str(out_dir), "filename": "packetbeat"},
    }
    cfg_path = tmp_path / "wirebeat.yml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "shipper", "-c", str(cfg_path), "-e", "-I", str(pcap), "-t"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    files = sorted(out_dir.glob("packetbeat-*.ndjson"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines()]


def decoded(name: str, ports: list[int], **opts: Any) -> list[dict[str, Any]]:
    """Decoder + envelope in-process (for option variants), flattened."""
    env = Envelope(beat_name="test")
    return [
        oracle.flatten(env.apply(e))
        for e in decode_file(shared_pcap(name), {"http": {"ports": ports, **opts}})
    ]


def comparable(evt: dict[str, Any]) -> dict[str, Any]:
    flat = oracle.flatten({k: v for k, v in evt.items() if k not in _ENVELOPE_ONLY})
    flat.pop("network.direction")
    return flat


def _order(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["@timestamp"], e.get("event.start", ""), e["source.port"], e.get("query", ""))


# -- every shared capture, every field ------------------------------------------------------


@pytest.mark.parametrize("send_all_headers", [False, True])
@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_capture_events_field_by_field(tmp_path: Path, name: str, send_all_headers: bool) -> None:
    ports = CAPTURES[name]
    pcap = shared_pcap(name)
    txns = oracle.pair(oracle.messages(pcap, ports))
    expected = sorted((oracle.expected_event(t, send_all_headers=send_all_headers) for t in txns), key=_order)
    config = {"ports": ports, "send_all_headers": send_all_headers}
    got = sorted((comparable(e) for e in run_wirebeat(tmp_path, pcap, config)), key=_order)
    assert len(got) == len(expected), [e.get("query") for e in got]
    assert expected, "tshark found no HTTP in the capture"
    for g, x in zip(got, expected, strict=True):
        assert sorted(g) == sorted(x), f"{x.get('query')}: fields differ"
        for key in x:
            assert g[key] == x[key], f"{x.get('query')}: {key}"


# -- the numbers Packetbeat's system tests assert -------------------------------------------


def test_minitwit_port_80_matches_packetbeat(tmp_path: Path) -> None:
    """test_0003_http_simple: 3 transactions on one connection, sizes 364/1000, 471/234, 289/396."""
    events = run_wirebeat(tmp_path, shared_pcap("http_minitwit"), {"ports": [80]})
    assert [(e["source"]["bytes"], e["destination"]["bytes"]) for e in events] == [
        (364, 1000),
        (471, 234),
        (289, 396),
    ]
    assert [e["status"] for e in events] == ["OK", "OK", "Error"]
    assert {
        (e["client"]["ip"], e["client"]["port"], e["server"]["ip"], e["server"]["port"]) for e in events
    } == {("192.168.1.104", 54742, "192.168.1.110", 80)}


def test_minitwit_ports_80_and_5000(tmp_path: Path) -> None:
    events = run_wirebeat(tmp_path, shared_pcap("http_minitwit"), {"ports": [80, 5000]})
    assert len(events) == 6
    by_port: dict[int, list[str]] = {}
    for e in events:
        by_port.setdefault(e["server"]["port"], []).append(e["query"])
    assert by_port == {
        80: ["GET /", "GET /static/style.css", "GET /favicon.ico"],
        5000: ["GET /", "GET /static/style.css", "GET /favicon.ico"],
    }


def test_http_10_connection_close(tmp_path: Path) -> None:
    """test_0010: an HTTP/1.0 response without Content-Length runs to the server's FIN."""
    pcap = shared_pcap("http_10_connection_close")
    (evt,) = run_wirebeat(tmp_path, pcap, {"ports": [8000]})
    assert evt["status"] == "OK"
    assert evt["http"]["response"]["headers"]["content-length"] == 11422
    assert evt["http"]["response"]["status_code"] == 200
    assert (evt["client"]["ip"], evt["client"]["port"]) == ("127.0.0.1", 37885)
    assert (evt["server"]["ip"], evt["server"]["port"]) == ("127.0.0.1", 8000)
    # The PostgreSQL-over-TLS connection in the same file is not HTTP and gives nothing.
    assert evt["type"] == "http"


def test_http_unmatched(tmp_path: Path) -> None:
    """test_0065: the 404 arrives before any request on its connection: ``Unmatched response``,
    source = the server. Then a normal 200.

    Deliberate difference: Packetbeat drops ``GET /something`` (its connection ends with a
    RST and no response) when the file ends; we publish it as ``Unmatched request``."""
    events = run_wirebeat(tmp_path, shared_pcap("http_unmatched"), {"ports": [8080]})
    assert len(events) == 3
    unmatched_req = [e for e in events if e.get("error", {}).get("message") == "Unmatched request"]
    packetbeat_view = [e for e in events if e not in unmatched_req]
    assert [e["query"] for e in unmatched_req] == ["GET /something"]
    first, second = packetbeat_view
    assert first["status"] == "Error"
    assert first["http"]["response"]["status_code"] == 404
    assert first["error"]["message"] == "Unmatched response"
    assert (first["source"]["port"], first["destination"]["port"]) == (8080, 63082)
    assert second["status"] == "OK"
    assert second["http"]["response"]["status_code"] == 200
    assert second["http"]["request"]["headers"] == {"content-length": 0}


def test_http_over_vlan(tmp_path: Path) -> None:
    (evt,) = run_wirebeat(tmp_path, shared_pcap("http_over_vlan"), {"ports": [8080]})
    assert evt["query"] == "GET /jpetstore/"


def test_params_and_query(tmp_path: Path) -> None:
    """test_0023/test_0024: form parameters of a POST and URL parameters of a GET."""
    (post,) = run_wirebeat(tmp_path / "post", shared_pcap("http_post"), {"ports": [80]})
    assert post["url"]["query"] == "address=anklamerstr.14b&telephon=8932784368&user=monica"
    assert post["query"] == "POST /register"
    (get,) = run_wirebeat(tmp_path / "get", shared_pcap("http_url_params"), {"ports": [80]})
    assert get["url"]["query"] == "input=packetbeat&src_ip=192.35.243.1"
    assert get["query"] == "GET /dashboard/transactions"


def test_gap_in_stream(tmp_path: Path) -> None:
    """test_0029: a download with 49152 body bytes never captured still gives one OK event,
    noted ``Packet loss while capturing the response``. tshark cannot reassemble the
    response, so the sizes come from the TCP payload lengths of the capture."""
    pcap = shared_pcap("gap_in_stream")
    fields = ["-e", "tcp.srcport", "-e", "tcp.seq", "-e", "tcp.len", "-e", "tcp.payload"]
    out = oracle._tshark(pcap, [8000], "-Y", "tcp.len > 0", "-T", "fields", *fields)
    rows = [ln.split("\t") for ln in out.splitlines()]
    server = [(int(seq), int(n), bytes.fromhex(p)) for sport, seq, n, p in rows if sport == "8000"]
    client = [int(n) for sport, _seq, n, _p in rows if sport != "8000"]
    # Relative sequence numbers: the response starts at 1; the headers are contiguous.
    head = b"".join(p for seq, _n, p in server if seq < 1000)
    header_len = head.index(b"\r\n\r\n") + 4
    length_line = next(ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:"))
    content_length = int(length_line.split(b":")[1])
    captured = sum(n for _s, n, _p in server)
    last_seq, last_len, _ = server[-1]
    lost = last_seq + last_len - 1 - captured
    assert lost == 49152 and header_len + content_length == captured + lost

    (evt,) = run_wirebeat(tmp_path, pcap, {"ports": [8000]})
    assert evt["status"] == "OK"
    assert evt["error"]["message"] == "Packet loss while capturing the response"
    assert evt["source"]["bytes"] == sum(client)
    # Packetbeat counts the bytes it saw; the lost ones are not in http.response.bytes.
    assert evt["http"]["response"]["bytes"] == evt["destination"]["bytes"] == captured
    assert evt["http"]["response"]["body"]["bytes"] == content_length
    assert evt["http"]["response"]["headers"]["content-length"] == content_length
    assert evt["url"]["full"] == "http://127.0.0.1:8000/jszip.min.js"
    assert evt["http"]["version"] == "1.1"


def without_frames(src: Path, dst: Path, frames: set[int]) -> Path:
    """``src`` without the given (1-based, as tshark numbers them) frames: lost packets."""
    count = sum(1 for _ in CaptureFile(str(src)))
    return oracle.write_order(src, dst, [i for i in range(count) if i + 1 not in frames])


def test_lost_response_leaves_its_request_unmatched(tmp_path: Path) -> None:
    """The 304 of the keep-alive connection on port 80 is lost (one segment). Deliberate
    difference: Packetbeat drops the connection's state at a gap outside a body and never
    publishes ``GET /static/style.css``; we publish it as unmatched, and the requests
    after the gap still pair with their own responses (not shifted by one)."""
    pcap = shared_pcap("http_minitwit")
    msgs = oracle.messages(pcap, [80])
    (lost,) = [m for m in msgs if not m.is_request and m.code == 304 and m.sport == 80]
    assert len(lost.raw) == lost.size  # the whole response in that one segment
    original = decode_file(pcap, {"http": {"ports": [80]}})
    out = without_frames(pcap, tmp_path / "lost-304.pcap", {lost.frame})
    events = decode_file(out, {"http": {"ports": [80]}})
    assert [e["query"] for e in events] == ["GET /", "GET /static/style.css", "GET /favicon.ico"]
    assert events[0] == original[0] and events[2] == original[2]
    unmatched = events[1]
    assert unmatched["status"] == "Error"
    assert unmatched["error"]["message"] == ["Packet loss while capturing the response", "Unmatched request"]
    assert "response" not in unmatched["http"] and "bytes" not in unmatched["destination"]
    assert unmatched["http"]["request"] == original[1]["http"]["request"]


def test_lost_response_headers(tmp_path: Path) -> None:
    """The segment with the response's headers is lost, the rest of the body arrives: the
    GET comes out unmatched and the orphaned end of the body makes no event."""
    pcap = shared_pcap("http_basicauth")
    (resp,) = [m for m in oracle.messages(pcap, [80]) if not m.is_request]
    segments = oracle._tshark(
        pcap, [80], "-Y", f"frame.number == {resp.frame}", "-T", "fields", "-e", "tcp.segment"
    )
    first, *rest = (int(f) for f in segments.strip().split(","))
    assert rest  # the response spans several segments; its first (the headers) is lost
    (evt,) = decode_file(
        without_frames(pcap, tmp_path / "lost-head.pcap", {first}),
        {"http": {"ports": [80], "send_headers": ["authorization"]}},
    )
    assert evt["query"] == "GET /"
    assert evt["error"]["message"] == ["Packet loss while capturing the response", "Unmatched request"]
    assert evt["user"]["name"] == "simplesimon"


@pytest.mark.parametrize("name", ["http_get_2k_file", "http_10_connection_close"])
def test_lost_last_segment_before_fin(tmp_path: Path, name: str) -> None:
    """The response's last data segment is lost and the server's FIN follows: the bytes
    up to the FIN are a gap like any other (they used to go unreported, the response
    ending short without a note). With Content-Length the body is known to be complete
    by then; a body read to the close counts the lost bytes in (as Packetbeat does)."""
    pcap = shared_pcap(name)
    port = CAPTURES[name][0]
    out = oracle._tshark(pcap, [port], "-Y", f"tcp.srcport == {port} and tcp.len > 0", "-T", "fields",
                         "-e", "frame.number", "-e", "tcp.len")  # fmt: skip
    last, lost = (int(x) for x in out.split("\n")[-2].split("\t"))
    (resp,) = [m for m in oracle.messages(pcap, [port]) if not m.is_request]
    (evt,) = decode_file(
        without_frames(pcap, tmp_path / "lost-last.pcap", {last}), {"http": {"ports": [port]}}
    )
    assert evt["status"] == "OK"
    assert evt["error"]["message"] == ["Packet loss while capturing the response"]
    assert evt["http"]["response"]["bytes"] == resp.size - lost
    assert evt["http"]["response"]["body"]["bytes"] == resp.body_bytes


def test_100_continue_gives_one_event(tmp_path: Path) -> None:
    """test_0070: ``Expect: 100-continue``: the interim response does not make an event or
    an error; the request (headers and body in two segments) pairs with the 200."""
    (evt,) = run_wirebeat(
        tmp_path, shared_pcap("http_100_continue"), {"ports": [9200], "send_all_headers": True}
    )
    assert evt["http"]["request"]["headers"]["expect"] == "100-continue"
    assert evt["http"]["response"]["status_code"] == 200
    assert "error" not in evt
    assert evt["network"]["type"] == "ipv6"


def test_basic_auth_golden(tmp_path: Path) -> None:
    """golden/http_basic_auth-expected.json (the HTTP event; its DNS event is another decoder's)."""
    (evt,) = run_wirebeat(tmp_path, shared_pcap("http_basicauth"), {"ports": [80], "send_all_headers": True})
    flat = comparable(evt)
    for key in ("event.start", "event.end", "@timestamp"):
        flat.pop(key)
    assert flat == {
        "client.bytes": 130,
        "client.ip": "172.31.98.49",
        "client.port": 55874,
        "destination.bytes": 1591,
        "destination.domain": "www.example.com",
        "destination.ip": "93.184.216.34",
        "destination.port": 80,
        "event.category": ["network"],
        "event.dataset": "http",
        "event.duration": 18341000,
        "event.kind": "event",
        "event.type": ["connection", "protocol"],
        "http.request.bytes": 130,
        "http.request.headers": {
            "accept": "*/*",
            "authorization": "Basic c2ltcGxlc2ltb246YWJjZDEyMys=",
            "content-length": 0,
            "host": "www.example.com",
            "user-agent": "curl/7.37.1",
        },
        "http.request.method": "GET",
        "http.response.body.bytes": 1270,
        "http.response.bytes": 1591,
        "http.response.headers": {
            "accept-ranges": "bytes",
            "cache-control": "max-age=604800",
            "content-length": 1270,
            "content-type": "text/html",
            "date": "Wed, 18 Feb 2015 00:13:06 GMT",
            "etag": '"359670651"',
            "expires": "Wed, 25 Feb 2015 00:13:06 GMT",
            "last-modified": "Fri, 09 Aug 2013 23:54:35 GMT",
            "server": "ECS (pae/3796)",
            "x-cache": "HIT",
            "x-ec-custom-error": "1",
        },
        "http.response.status_code": 200,
        "http.response.status_phrase": "ok",
        "http.version": "1.1",
        "method": "GET",
        "network.bytes": 1721,
        "network.community_id": "1:TMPM5eEnGOXfxAjx6NKlyjx+X10=",
        "network.protocol": "http",
        "network.transport": "tcp",
        "network.type": "ipv4",
        "query": "GET /",
        "related.hosts": ["www.example.com"],
        "related.ip": ["172.31.98.49", "93.184.216.34"],
        "related.user": ["simplesimon"],
        "server.bytes": 1591,
        "server.domain": "www.example.com",
        "server.ip": "93.184.216.34",
        "server.port": 80,
        "source.bytes": 130,
        "source.ip": "172.31.98.49",
        "source.port": 55874,
        "status": "OK",
        "type": "http",
        "url.domain": "www.example.com",
        "url.full": "http://www.example.com/",
        "url.path": "/",
        "url.scheme": "http",
        "user.name": "simplesimon",
        "user_agent.original": "curl/7.37.1",
    }


# -- options on real captures ---------------------------------------------------------------


def test_send_request_and_response() -> None:
    """test_0006 test_send_options: raw messages only when asked; without include_body_for
    they are the header blocks exactly as captured."""
    (plain,) = decoded("wsgi_loopback", [8888])
    assert "request" not in plain and "response" not in plain
    msgs = oracle.messages(shared_pcap("wsgi_loopback"), [8888])
    req, resp = (m for m in msgs)
    (evt,) = decoded("wsgi_loopback", [8888], send_request=True, send_response=True)
    assert evt["request"] == req.raw[: req.header_len].decode()
    assert evt["response"] == resp.raw[: resp.header_len].decode()


def test_include_body_for_wsgi() -> None:
    """test_0006 test_include_body_for: the whole 38 kB page ends up in ``response``."""
    msgs = oracle.messages(shared_pcap("wsgi_loopback"), [8888])
    resp = msgs[-1]
    (evt,) = decoded(
        "wsgi_loopback",
        [8888],
        send_headers=["content-type"],
        include_body_for=["text/html"],
        send_response=True,
    )
    assert len(evt["response"]) > 20000
    assert evt["response"].encode() == resp.raw
    assert evt["http.response.body.content"].encode() == resp.raw[resp.header_len :]
    assert evt["http.response.body.bytes"] == len(resp.raw) - resp.header_len == 38220
    assert evt["http.response.headers"] == {
        "content-length": 38220,
        "content-type": "text/html; charset=utf-8",
    }
    assert "http.request.body.content" not in evt


def test_include_body_for_both_directions_http_post() -> None:
    """test_0063: the form body and the HTML page; the raw response without its body when
    only the request's content type is listed."""
    (req_only,) = decoded("http_post", [80], include_body_for=["x-www-form-urlencoded"], send_response=True)
    assert req_only["http.request.body.content"] == "user=monica&telephon=8932784368&address=anklamerstr.14b"
    assert "http.response.body.content" not in req_only
    assert len(req_only["response"]) == 172
    assert "request" not in req_only
    (both,) = decoded("http_post", [80], include_body_for=["x-www-form-urlencoded", "text/html"])
    msgs = oracle.messages(shared_pcap("http_post"), [80])
    assert both["http.response.body.content"].encode() == msgs[1].raw[msgs[1].header_len :]
    assert both["http.response.body.bytes"] == 8936


def test_include_body_for_decodes_gzip_chunked() -> None:
    """nginx answers port 80 with gzip over chunked encoding; the page it proxied is the
    plain Werkzeug response on port 5000 of the same capture. With include_body_for the
    event shows the decoded page and body.bytes is its decoded length; without, body.bytes
    is the encoded length (the sum of the chunks)."""
    msgs = oracle.messages(shared_pcap("http_minitwit"), [80, 5000])
    events = decoded("http_minitwit", [80, 5000], include_body_for=["text/html"])
    by = {(e["destination.port"], e["url.path"]): e for e in events}
    plain = {e["url.path"]: e for e in decoded("http_minitwit", [80])}
    for path, code in (("/", 200), ("/favicon.ico", 404)):
        (upstream,) = [m for m in msgs if not m.is_request and m.sport == 5000 and m.code == code]
        (proxied,) = [m for m in msgs if not m.is_request and m.sport == 80 and m.code == code]
        page = upstream.raw[upstream.header_len :]
        assert proxied.header("content-encoding") == "gzip" and proxied.chunk_sizes
        assert gzip.decompress(_dechunk(proxied)) == page
        assert by[(5000, path)]["http.response.body.content"].encode() == page
        assert by[(80, path)]["http.response.body.content"].encode() == page
        assert by[(80, path)]["http.response.body.bytes"] == len(page)
        assert plain[path]["http.response.body.bytes"] == sum(proxied.chunk_sizes)


def _dechunk(m: oracle.Message) -> bytes:
    body, out = m.raw[m.header_len :], b""
    while True:
        line, _, rest = body.partition(b"\r\n")
        n = int(line, 16)
        if n == 0:
            return out
        out += rest[:n]
        body = rest[n + 2 :]


def test_max_message_size_keeps_a_prefix_and_counts_everything() -> None:
    """test_0063 test_large_body: a 2 KiB body with max_message_size 1024 is included but cut.

    Packetbeat keeps whichever segments happen to fit (here the last 600 bytes); we keep
    the first ``max_message_size - headers`` bytes. Both satisfy its 500 < len < 2000."""
    msgs = oracle.messages(shared_pcap("http_get_2k_file"), [8000])
    resp = msgs[-1]
    (evt,) = decoded("http_get_2k_file", [8000], include_body_for=["binary"], max_message_size=1024)
    content = evt["http.response.body.content"]
    assert 500 < len(content) < 2000
    body = resp.raw[resp.header_len :]
    assert content == body[: 1024 - resp.header_len].decode("utf-8", "replace")
    assert evt["http.response.bytes"] == resp.size == 2272
    # Two Content-Type headers; Packetbeat keeps the last one.
    assert evt["http.response.headers"]["content-type"] == "binary"


def test_send_headers_and_send_all_headers() -> None:
    """test_0006 test_send_headers_options, test_0062."""
    (default,) = decoded("wsgi_loopback", [8888])
    assert default["http.request.headers"] == {"content-length": 0}
    (all_h,) = decoded("wsgi_loopback", [8888], send_all_headers=True)
    msgs = oracle.messages(shared_pcap("wsgi_loopback"), [8888])
    assert all_h["http.request.headers"]["cache-control"] == "max-age=0"
    assert isinstance(all_h["http.response.headers"]["set-cookie"], str)
    assert all_h["http.response.headers"]["set-cookie"] == msgs[1].header("set-cookie")
    expected_req = {**msgs[0].all_headers(), "content-length": 0}
    assert all_h["http.request.headers"] == expected_req
    expected_resp = {**msgs[1].all_headers(), "content-length": 38220}
    assert all_h["http.response.headers"] == expected_resp
    (some,) = decoded("wsgi_loopback", [8888], send_headers=["User-Agent", "content-Type", "x-forwarded-for"])
    assert some["http.request.headers"] == {"content-length": 0, "user-agent": msgs[0].header("user-agent")}
    assert some["http.response.headers"] == {
        "content-length": 38220,
        "content-type": "text/html; charset=utf-8",
    }
    (post,) = decoded("http_post", [80], send_headers=["host"])
    assert post["http.request.headers"] == {
        "content-length": 55,
        "content-type": "application/x-www-form-urlencoded",
        "host": "packetbeat.com",
    }
    assert set(post["http.response.headers"]) == {"content-length", "content-type"}


def test_split_cookie() -> None:
    """test_0006 test_split_cookie: 6 request cookies, 4 set-cookie attributes, names
    lower-cased, quotes stripped."""
    (evt,) = decoded("wsgi_loopback", [8888], send_all_headers=True, split_cookie=True)
    cookies = evt["http.request.headers"]["cookie"]
    assert len(cookies) == 6
    assert cookies["mezzanine-comment-name"] == "Tudor Golubenco"
    assert cookies["csrftoken"] == "S9ZuJF8mvIMT5CL4T1Xqn32wkA6ZSeyf"
    assert cookies["mezzanine-comment-url"] == ""
    set_cookie = evt["http.response.headers"]["set-cookie"]
    assert set_cookie == {
        "csrftoken": "S9ZuJF8mvIMT5CL4T1Xqn32wkA6ZSeyf",
        "expires": "Fri, 20-Nov-2015 17:07:34 GMT",
        "max-age": "31449600",
        "path": "/",
    }


def test_real_ip_header() -> None:
    """nginx on port 80 passes ``X-Real-IP`` to the app on port 5000."""
    events = decoded("http_minitwit", [80, 5000], real_ip_header="X-Real-IP")
    msgs = oracle.messages(shared_pcap("http_minitwit"), [80, 5000])
    real = {m.header("x-real-ip") for m in msgs if m.is_request and m.dport == 5000}
    assert real == {"192.168.1.104"}
    for e in events:
        if e["destination.port"] == 5000:
            assert e["network.forwarded_ip"] == "192.168.1.104"
            assert e["related.ip"] == ["127.0.0.1", "192.168.1.104"]
        else:
            assert "network.forwarded_ip" not in e


def test_hide_keywords() -> None:
    """test_0019: hidden parameter values become ``xxxxx`` (case-insensitive names)."""
    (evt,) = decoded("http_post", [80], hide_keywords=["Telephon", "pass"])
    assert evt["url.query"] == "address=anklamerstr.14b&telephon=xxxxx&user=monica"
    assert "8932784368" not in json.dumps(evt)
    (get,) = decoded("http_url_params", [80], hide_keywords=["src_ip"])
    assert get["url.query"] == "input=packetbeat&src_ip=xxxxx"


def test_redact_authorization() -> None:
    """test_0012: the header map shows ``*``, the raw request ``Authorization:`` and stars;
    no user.name then."""
    (evt,) = decoded(
        "http_basicauth", [80], send_all_headers=True, redact_authorization=True, send_request=True
    )
    assert evt["http.request.headers"]["authorization"] == "*"
    token = " Basic c2ltcGxlc2ltb246YWJjZDEyMys="
    assert "Authorization:" + "*" * len(token) + "\r\n" in evt["request"]
    assert "c2ltcGxlc2ltb24" not in json.dumps(evt)
    assert "user.name" not in evt and "related.user" not in evt
    (plain,) = decoded("http_basicauth", [80])
    assert "user.name" not in plain  # Packetbeat 9.3: only from a captured Authorization header
    (kept,) = decoded("http_basicauth", [80], send_headers=["Authorization"])
    assert kept["user.name"] == base64.b64decode("c2ltcGxlc2ltb246YWJjZDEyMys=").decode().split(":")[0]


def test_redact_headers() -> None:
    (evt,) = decoded("wsgi_loopback", [8888], send_all_headers=True, redact_headers=["Cookie", "Set-Cookie"])
    assert evt["http.request.headers"]["cookie"] == "REDACTED"
    assert evt["http.response.headers"]["set-cookie"] == "REDACTED"
    assert evt["http.request.headers"]["cache-control"] == "max-age=0"
