"""HTTP parser and pairing, fed whole, byte by byte and in random chunks (h11's habit)."""

from __future__ import annotations

import gzip
import random
import re
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.http import HttpPlugin
from protocols.http.config import HttpConfig
from protocols.stats import Counters

CONN = ConnInfo("10.0.0.1", 40000, "10.0.0.2", 8080, "tcp", 1)


def plugin(**opts: Any) -> HttpPlugin:
    return HttpPlugin(HttpConfig(ports=[8080], **opts), Counters())


def chunkings(data: bytes, seed: int = 0) -> list[list[bytes]]:
    """The same bytes whole, one byte at a time, and in random pieces."""
    rnd = random.Random(seed)
    pieces = []
    i = 0
    while i < len(data):
        n = rnd.randint(1, 40)
        pieces.append(data[i : i + n])
        i += n
    return [[data], [data[i : i + 1] for i in range(len(data))], pieces]


def run(
    p: HttpPlugin, exchange: list[tuple[int, bytes]], split: int = 0, close: bool = True
) -> list[dict[str, Any]]:
    """Feed (direction, bytes) messages through a handler; returns the events."""
    h = p.new_handler(CONN)
    txns: list[Any] = []
    ts = 1_000_000_000
    for direction, data in exchange:
        for piece in chunkings(data)[split]:
            ts += 1000
            txns += h.on_data(direction, piece, ts)
    if close:
        txns += h.on_close("flush")
    return [p.to_event(t) for t in txns]


@pytest.fixture(params=[0, 1, 2], ids=["whole", "bytewise", "random"])
def split(request: pytest.FixtureRequest) -> int:
    return int(request.param)


REQ = b"GET /index.html?b=2&a=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t/1\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"


def test_simple_exchange(split: int) -> None:
    (e,) = run(plugin(), [(FROM_CLIENT, REQ), (FROM_SERVER, RESP)], split)
    assert e["status"] == "OK"
    assert e["method"] == "GET" and e["query"] == "GET /index.html"
    assert e["http"]["request"]["bytes"] == len(REQ)
    assert e["http"]["response"]["bytes"] == len(RESP)
    assert e["http"]["response"]["status_code"] == 200
    assert e["http"]["response"]["status_phrase"] == "ok"
    assert e["http"]["response"]["body"]["bytes"] == 5
    assert e["http"]["response"]["headers"] == {"content-length": 5, "content-type": "text/html"}
    assert e["url"] == {
        "scheme": "http",
        "domain": "example.com",
        "port": 8080,
        "path": "/index.html",
        "extension": "html",
        "query": "a=1&b=2",
        "full": "http://example.com:8080/index.html?a=1&b=2",
    }
    assert e["destination"]["domain"] == "example.com"
    assert e["user_agent"] == {"original": "t/1"}
    assert e["source"] == {"ip": "10.0.0.1", "port": 40000, "bytes": len(REQ)}
    assert e["event"]["end"] > e["event"]["start"]


def test_pipelined_requests_pair_in_order(split: int) -> None:
    reqs = b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(5))
    resps = b"".join(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % i for i in range(5))
    events = run(plugin(), [(FROM_CLIENT, reqs), (FROM_SERVER, resps)], split)
    assert [e["query"] for e in events] == [f"GET /{i}" for i in range(5)]
    assert all(e["status"] == "OK" for e in events)


def test_chunked_response_with_extensions_and_trailers(split: int) -> None:
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n" + body
    p = plugin(include_body_for=["text/plain"], send_response=True)
    (e,) = run(p, [(FROM_CLIENT, REQ), (FROM_SERVER, resp)], split)
    assert e["http"]["response"]["bytes"] == len(resp)
    assert e["http"]["response"]["body"] == {"bytes": 11, "content": "hello world"}
    assert e["response"].endswith("hello world")


def test_body_to_close_for_http10(split: int) -> None:
    resp = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 1000
    p = plugin()
    h = p.new_handler(CONN)
    out = []
    for piece in chunkings(REQ)[split]:
        out += h.on_data(FROM_CLIENT, piece, 1)
    for piece in chunkings(resp)[split]:
        out += h.on_data(FROM_SERVER, piece, 2)
    assert out == []
    out += h.on_fin(FROM_SERVER, 3)
    (e,) = [p.to_event(t) for t in out]
    assert e["http"]["response"]["body"]["bytes"] == 1000
    assert e["http"]["response"]["bytes"] == len(resp)


@pytest.mark.parametrize("code", [100, 101, 204, 304])
def test_statuses_without_body(code: int) -> None:
    resp = b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % code
    events = run(plugin(), [(FROM_CLIENT, REQ), (FROM_SERVER, resp + (RESP if code == 100 else b""))])
    if code == 100:
        # The interim 100 never pairs; the final response does.
        assert [e["http"]["response"]["status_code"] for e in events] == [200]
    else:
        assert [e["http"]["response"]["status_code"] for e in events] == [code]


def test_head_response_has_no_body() -> None:
    head = b"HEAD /big HTTP/1.1\r\nHost: h\r\n\r\n"
    resp_head = b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n"
    events = run(plugin(), [(FROM_CLIENT, head + REQ), (FROM_SERVER, resp_head + RESP)])
    assert [(e["method"], e["status"], e["http"]["response"]["bytes"]) for e in events] == [
        ("HEAD", "OK", len(resp_head)),
        ("GET", "OK", len(RESP)),
    ]


def test_100_continue_flow() -> None:
    req_head = b"POST /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
    p = plugin()
    h = p.new_handler(CONN)
    out = h.on_data(FROM_CLIENT, req_head, 1)
    out += h.on_data(FROM_SERVER, b"HTTP/1.1 100 Continue\r\n\r\n", 2)
    out += h.on_data(FROM_CLIENT, b"data", 3)
    out += h.on_data(FROM_SERVER, RESP, 4)
    (e,) = [p.to_event(t) for t in out]
    assert e["status"] == "OK" and e["method"] == "POST"
    assert e["http"]["request"]["bytes"] == len(req_head) + 4
    assert "error" not in e


def test_gzip_and_deflate_bodies_are_decoded() -> None:
    for enc, packed in (
        ("gzip", gzip.compress(b"<html>zipped</html>")),
        ("deflate", zlib.compress(b"<html>zipped</html>")),
        ("deflate", zlib.compress(b"<html>zipped</html>")[2:-4]),  # raw deflate, seen in the wild
    ):
        resp = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
            % (enc.encode(), len(packed))
            + packed
        )
        (e,) = run(plugin(include_body_for=["text/html"]), [(FROM_CLIENT, REQ), (FROM_SERVER, resp)])
        assert e["http"]["response"]["body"]["content"] == "<html>zipped</html>", enc
        assert e["http"]["response"]["bytes"] == len(resp)


def test_undecodable_body_is_a_note() -> None:
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope"
    (e,) = run(plugin(include_body_for=["text/html"]), [(FROM_CLIENT, REQ), (FROM_SERVER, resp)])
    assert any("unable to decode body using gzip" in m for m in e["error"]["message"])


def test_unmatched_response_and_request() -> None:
    events = run(plugin(), [(FROM_SERVER, RESP), (FROM_CLIENT, REQ)])
    assert [(e["status"], e["error"]["message"]) for e in events] == [
        ("Error", ["Unmatched response"]),
        ("Error", ["Unmatched request"]),
    ]
    # An orphan response's source is the server (Packetbeat's rule).
    assert events[0]["source"]["port"] == 8080
    assert "start" not in events[0]["event"] and "end" not in events[1]["event"]


def test_lone_100_continue_is_dropped() -> None:
    events = run(plugin(), [(FROM_SERVER, b"HTTP/1.1 100 Continue\r\n\r\n")])
    assert events == []


def test_error_status() -> None:
    (e,) = run(plugin(), [(FROM_CLIENT, REQ), (FROM_SERVER, b"HTTP/1.1 500 Internal Server Error\r\n\r\n")])
    assert e["status"] == "Error" and e["http"]["response"]["status_phrase"] == "internal server error"


def test_headers_folding_and_repeats(split: int) -> None:
    req = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\nX-A: two\r\nX-Long: first\r\n  second\r\n\r\n"
    (e,) = run(plugin(send_all_headers=True), [(FROM_CLIENT, req), (FROM_SERVER, RESP)], split)
    headers = e["http"]["request"]["headers"]
    assert headers["x-a"] == "one, two"
    assert headers["x-long"] == "first second"
    assert headers["content-length"] == 0


def test_send_headers_whitelist_and_split_cookie() -> None:
    req = b'GET / HTTP/1.1\r\nHost: h\r\nCookie: A=1; b="2"; c=x=y\r\nAccept: */*\r\n\r\n'
    resp = b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=42; Path=/\r\nContent-Length: 0\r\n\r\n"
    p = plugin(send_headers=["Cookie", "set-cookie"], split_cookie=True)
    (e,) = run(p, [(FROM_CLIENT, req), (FROM_SERVER, resp)])
    assert e["http"]["request"]["headers"] == {
        "content-length": 0,
        "cookie": {"a": "1", "b": "2", "c": "x=y"},
    }
    assert e["http"]["response"]["headers"]["set-cookie"] == {"sid": "42", "path": "/"}


def test_real_ip_header() -> None:
    req = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.9, 10.1.1.1\r\n\r\n"
    (e,) = run(plugin(real_ip_header="X-Forwarded-For"), [(FROM_CLIENT, req), (FROM_SERVER, RESP)])
    assert e["network"]["forwarded_ip"] == "203.0.113.9"
    assert "203.0.113.9" in e["related"]["ip"]


def test_hide_keywords_in_query_and_form_body() -> None:
    body = b"user=monica&password=secret+pw"
    req = (
        b"POST /login?token=abc&x=%20y HTTP/1.1\r\nHost: h\r\n"
        + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    (e,) = run(plugin(hide_keywords=["password", "TOKEN"]), [(FROM_CLIENT, req), (FROM_SERVER, RESP)])
    assert e["url"]["query"] == "password=xxxxx&token=xxxxx&user=monica&x=+y"


def test_basic_auth_user_and_redaction() -> None:
    req = b"GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dXNlcjpwYXNz\r\nX-Secret: s3\r\n\r\n"
    (e,) = run(plugin(send_request=True), [(FROM_CLIENT, req), (FROM_SERVER, RESP)])
    # Packetbeat 9.3 takes the user name only from a captured Authorization header.
    assert "user" not in e and "user" not in e["related"]
    assert "dXNlcjpwYXNz" in e["request"]
    for opts in ({"send_headers": ["Authorization"]}, {"send_all_headers": True}):
        (e,) = run(plugin(**opts), [(FROM_CLIENT, req), (FROM_SERVER, RESP)])
        assert e["user"] == {"name": "user"} and e["related"]["user"] == ["user"]
    p = plugin(
        send_request=True, redact_authorization=True, send_all_headers=True, redact_headers=["x-secret"]
    )
    (e,) = run(p, [(FROM_CLIENT, req), (FROM_SERVER, RESP)])
    assert "user" not in e
    assert "dXNlcjpwYXNz" not in e["request"] and "Authorization:*" in e["request"]
    assert e["http"]["request"]["headers"]["authorization"] == "*"
    assert e["http"]["request"]["headers"]["x-secret"] == "REDACTED"


def test_include_body_for_request_and_response_variants() -> None:
    req = b"POST /j HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
    (e,) = run(plugin(include_request_body_for=["json"]), [(FROM_CLIENT, req), (FROM_SERVER, resp)])
    assert e["http"]["request"]["body"]["content"] == "{}"
    assert "content" not in e["http"]["response"]["body"]
    (e,) = run(plugin(include_response_body_for=["text/"]), [(FROM_CLIENT, req), (FROM_SERVER, resp)])
    assert "content" not in e["http"]["request"]["body"]
    assert e["http"]["response"]["body"]["content"] == "ok"


def test_max_message_size_bounds_stored_bodies() -> None:
    body = b"y" * 5000
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n\r\n" + body
    (e,) = run(
        plugin(include_body_for=["text/plain"], max_message_size=1000),
        [(FROM_CLIENT, REQ), (FROM_SERVER, resp)],
    )
    assert e["http"]["response"]["bytes"] == len(resp)
    assert len(e["http"]["response"]["body"]["content"]) < 1000


def test_host_port_mismatch_note() -> None:
    req = b"GET / HTTP/1.1\r\nHost: example.com:9999\r\n\r\n"
    (e,) = run(plugin(), [(FROM_CLIENT, req), (FROM_SERVER, RESP)])
    assert e["error"]["message"] == ["Host header port number mismatch"]
    assert e["url"]["port"] == 9999


def test_gap_in_body_adds_a_note_and_keeps_pairing() -> None:
    p = plugin()
    h = p.new_handler(CONN)
    resp_head = b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n"
    out = h.on_data(FROM_CLIENT, REQ, 1)
    out += h.on_data(FROM_SERVER, resp_head + b"a" * 1000, 2)
    assert h.on_gap(FROM_SERVER, 1000) is False
    out += h.on_data(FROM_SERVER, b"b" * 1000, 3)
    (e,) = [p.to_event(t) for t in out]
    assert e["error"]["message"] == ["Packet loss while capturing the response"]
    assert e["http"]["response"]["bytes"] == len(resp_head) + 2000
    assert e["status"] == "OK"


def test_gap_in_headers_keeps_queued_requests() -> None:
    p = plugin()
    h = p.new_handler(CONN)
    out = h.on_data(FROM_CLIENT, REQ, 1)
    out += h.on_data(FROM_SERVER, b"HTTP/1.1 200 OK\r\nContent-Le", 2)
    assert h.on_gap(FROM_SERVER, 30) is False
    out += h.on_close("flush")
    (e,) = [p.to_event(t) for t in out]
    # Its response's head was lost: published unmatched, saying why.
    assert e["error"]["message"] == ["Packet loss while capturing the response", "Unmatched request"]
    assert p.stats["http.gap_lost_messages"] == 1


def test_garbage_then_resync_on_next_segment() -> None:
    p = plugin()
    h = p.new_handler(CONN)
    out = h.on_data(FROM_CLIENT, b"\x16\x03\x01\x02\x00garbage", 1)
    assert p.stats["http.parse_errors"] == 1
    out += h.on_data(FROM_CLIENT, REQ, 2)
    out += h.on_data(FROM_SERVER, RESP, 3)
    assert [p.to_event(t)["status"] for t in out] == ["OK"]


def test_upgrade_stops_parsing() -> None:
    req = b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
    p = plugin()
    events = run(p, [(FROM_CLIENT, req), (FROM_SERVER, resp), (FROM_CLIENT, b"\x81\x85binaryframe")])
    assert [e["http"]["response"]["status_code"] for e in events] == [101]
    assert "http.parse_errors" not in p.stats


def test_full_url_path_escaped_like_packetbeat() -> None:
    """url.full is built by Go's net/url in Packetbeat: the decoded path escaped again."""
    for raw, full in [
        ("/logstash-*/_search", "/logstash-%2A/_search"),
        ("/a%20b/caf%C3%A9", "/a%20b/caf%C3%A9"),
        ("/x%2Fy;p=1,2:@$&+", "/x/y;p=1,2:@$&+"),
        ("/plain-path_1.~", "/plain-path_1.~"),
    ]:
        req = f"GET {raw} HTTP/1.1\r\nHost: h\r\n\r\n".encode()
        (e,) = run(plugin(), [(FROM_CLIENT, req), (FROM_SERVER, RESP)])
        assert e["url"]["full"] == f"http://h:8080{full}", raw


def test_target_bytes_and_query_pairs_like_go_net_url() -> None:
    """Packetbeat's url.* come from Go's net/url on the target's bytes (checked against
    Packetbeat 9.3 on synthetic captures): UTF-8 paths stay UTF-8, pairs ParseQuery rejects
    (a ``;``, a broken escape) are dropped, other bytes are re-escaped as they were."""
    cases = [
        ("/caf\u00e9/x".encode(), "h", "/café/x", None, "http://h:8080/caf%C3%A9/x"),
        (b"/x?a=1;b=2&c=3", "h", "/x", "c=3", "http://h:8080/x?c=3"),
        (b"/x?k%zz=1&b=2", "h", "/x", "b=2", "http://h:8080/x?b=2"),
        (b"/x?%E9=%FF", "h", "/x", "%E9=%FF", "http://h:8080/x?%E9=%FF"),
        (b"/v", "b\u00fccher.example", "/v", None, "http://b%C3%BCcher.example:8080/v"),
    ]
    for target, host, path, query, full in cases:
        req = b"GET " + target + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"
        (e,) = run(plugin(), [(FROM_CLIENT, req), (FROM_SERVER, RESP)])
        assert e["url"]["path"] == path, target
        assert e["url"].get("query") == query, target
        assert e["url"]["full"] == full, target
        assert e["query"] == f"GET {path}"


@given(st.text(alphabet=st.characters(max_codepoint=0x10FFFF), max_size=12))
def test_a_plain_request_target_is_printable_ascii_without_escapes_query_or_fragment(uri: str) -> None:
    """``fields._plain_uri`` (string scans) says what the regular expression it replaced says."""
    from protocols.http.fields import _plain_uri

    assert _plain_uri(uri) == bool(re.fullmatch(r"[^\x00-\x20#%?\x7f-\U0010ffff]*", uri))


@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
    | st.text(alphabet="aZ09_.~-+ &=%é", max_size=12)
)
def test_query_escape_fast_path_agrees_with_go_rule(s: str) -> None:
    """``fields._escape`` (ASCII letters and digits returned at once) escapes like Go's
    url.QueryEscape: unreserved characters kept, the rest percent-encoded, space as ``+``."""
    from urllib.parse import quote_plus

    from protocols.http.fields import _escape

    want = s if re.fullmatch(r"[A-Za-z0-9_.~-]*", s) else quote_plus(s, safe="", errors="surrogateescape")
    assert _escape(s) == want
