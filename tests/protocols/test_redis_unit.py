"""Redis parser and pairing on synthesized conversations."""

from __future__ import annotations

from typing import Any

from benchmarks.synth import Conversation
from protocols.redis.parser import RespParser
from tests.helpers import decode_packets

C, S = 0, 1
CLIENT = ("10.0.0.1", 40000)
SERVER = ("10.0.0.2", 6379)


def cmd(*args: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def run(
    messages: list[tuple[int, bytes]], close: bool = True, **cfg: Any
) -> tuple[list[dict[str, Any]], Any]:
    conv = Conversation(CLIENT, SERVER).handshake()
    for side, data in messages:
        conv.send(side, data)
    if close:
        conv.close()
    events, dec = decode_packets([(ts, 1, f) for ts, f in conv.frames], {"redis": {"ports": [6379], **cfg}})
    return events, dec


def rv(evt: dict[str, Any]) -> str:
    return evt["redis"].get("return_value", evt["redis"].get("error"))


def test_parser_values_resp2_and_resp3() -> None:
    p = RespParser()
    data = (
        b"+OK\r\n-ERR bad\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n"
        b"_\r\n#t\r\n#f\r\n,3.25\r\n,inf\r\n(12345678901234567890\r\n!9\r\nERR blobs\r\n=9\r\ntxt:a b c\r\n"
        b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*1\r\n:2\r\n~2\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3\r\n:7\r\n"
    )
    msgs = p.feed(data, 1)
    assert [m.render() for m in msgs] == [
        b"OK",
        b"ERR bad",
        b"42",
        b"hello",
        b"nil",
        b"nil",
        b"[]",
        b"[[1], ]",
        b"nil",
        b"true",
        b"false",
        b"3.25",
        b"inf",
        b"12345678901234567890",
        b"ERR blobs",
        b"a b c",
        b"{a: 1, b: [2]}",
        b"[1, 2]",
        b"7",
    ]
    assert [m.is_error for m in msgs].count(True) == 2
    assert sum(m.size for m in msgs) == len(data)
    assert p.errors == 0


def test_parser_resumes_value_by_value() -> None:
    big = b"*10000\r\n" + b"".join(b":%d\r\n" % i for i in range(10000))
    p = RespParser()
    out = []
    for i in range(0, len(big), 7):
        out += p.feed(big[i : i + 7], i)
        assert len(p.rest) < 40  # only the value being read is buffered
    assert len(out) == 1 and out[0].ts == 0 and out[0].size == len(big)
    assert out[0].parts == [b"%d" % i for i in range(10000)]


def test_parser_bounds() -> None:
    deep = b"*1\r\n" * 500 + b":1\r\n"
    p = RespParser(max_depth=128)
    assert p.feed(deep, 1) == [] and p.errors == 1
    p = RespParser(max_bytes=100)
    huge = b"$1000000\r\n" + b"x" * 1_000_000 + b"\r\n+OK\r\n"
    msgs = []
    for i in range(0, len(huge), 1448):
        msgs += p.feed(huge[i : i + 1448], i)
        assert len(p.rest) < 200
    assert [(m.truncated, m.render()) for m in msgs] == [(True, b""), (False, b"OK")]
    assert msgs[0].size == len(huge) - 5


def test_basic_pairing_and_error() -> None:
    events, _ = run(
        [
            (C, cmd("SET", "key3", "me")),
            (S, b"+OK\r\n"),
            (C, cmd("get", "key3")),
            (S, b"$2\r\nme\r\n"),
            (C, cmd("LLEN", "key3")),
            (S, b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ]
    )
    assert [(e["method"], e["resource"], e["query"], e["status"], rv(e)) for e in events] == [
        ("SET", "key3", "SET key3 me", "OK", "OK"),
        ("GET", "key3", "get key3", "OK", "me"),
        (
            "LLEN",
            "key3",
            "LLEN key3",
            "Error",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
    ]
    assert events[2]["event"]["outcome"] == "failure" and "outcome" not in events[0]["event"]
    assert events[1]["event"]["action"] == "redis.get"
    assert all(e["event"]["end"] > e["event"]["start"] for e in events)


def test_pipelining_in_one_segment() -> None:
    reqs = b"".join(cmd("INCR", "n") for _ in range(50))
    reps = b"".join(b":%d\r\n" % i for i in range(1, 51))
    events, _ = run([(C, reqs), (S, reps)])
    assert [rv(e) for e in events] == [str(i) for i in range(1, 51)]
    assert all(e["source"]["bytes"] == len(cmd("INCR", "n")) for e in events)


def test_multi_exec() -> None:
    events, _ = run(
        [
            (C, cmd("MULTI") + cmd("SET", "a", "1") + cmd("LPUSH", "a", "x") + cmd("EXEC")),
            (S, b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n-WRONGTYPE Operation against a key\r\n"),
        ]
    )
    assert [(e["method"], e["status"], rv(e)) for e in events] == [
        ("MULTI", "OK", "OK"),
        ("SET", "OK", "QUEUED"),
        ("LPUSH", "OK", "QUEUED"),
        # Packetbeat: an array reply is never an error, nested errors show as text
        ("EXEC", "OK", "[OK, WRONGTYPE Operation against a key]"),
    ]


def test_two_word_commands_and_inline() -> None:
    events, _ = run(
        [
            (C, cmd("CONFIG", "GET", "maxmemory")),
            (S, b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"),
            (C, cmd("CLIENT", "SETINFO", "LIB-NAME", "x")),
            (S, b"+OK\r\n"),
            (C, b"PING\r\n"),
            (S, b"+PONG\r\n"),
            (C, cmd("NOSUCH", "arg")),
            (S, b"-ERR unknown command 'NOSUCH'\r\n"),
        ]
    )
    assert [(e["method"], e["resource"], e["query"], e["event"]["action"]) for e in events] == [
        ("CONFIG GET", "maxmemory", "CONFIG GET maxmemory", "redis.config get"),
        ("CLIENT SETINFO", "LIB-NAME", "CLIENT SETINFO LIB-NAME x", "redis.client setinfo"),
        ("PING", "", "PING", "redis.ping"),
        ("NOSUCH", "arg", "NOSUCH arg", "redis.nosuch"),
    ]
    assert rv(events[0]) == "[maxmemory, 0]"


def test_pubsub_resp2_no_bogus_transactions() -> None:
    events, dec = run(
        [
            (C, cmd("SUBSCRIBE", "a", "b")),
            (S, b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"),
            (S, b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n"),
            (C, cmd("PING")),
            (S, b"*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$2\r\nyo\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
            (C, cmd("UNSUBSCRIBE")),
            (
                S,
                b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n",
            ),
            (C, cmd("GET", "k")),
            (S, b"$-1\r\n"),
        ]
    )
    assert [(e["method"], rv(e)) for e in events] == [
        ("SUBSCRIBE", "[subscribe, a, 1], [subscribe, b, 2]"),
        ("PING", "[pong, ]"),
        ("UNSUBSCRIBE", "[unsubscribe, a, 1], [unsubscribe, b, 0]"),
        ("GET", "nil"),
    ]
    assert dec.stats["redis.push_messages"] == 2


def test_resp3_hello_pushes_and_invalidation() -> None:
    hello = b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n"
    events, dec = run(
        [
            (C, cmd("HELLO", "3")),
            (S, hello),
            (C, cmd("CLIENT", "TRACKING", "on")),
            (S, b"+OK\r\n"),
            (C, cmd("GET", "k")),
            (S, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$1\r\nv\r\n"),  # push before the reply
            (C, cmd("SSUBSCRIBE", "ch")),
            (S, b">3\r\n$10\r\nssubscribe\r\n$2\r\nch\r\n:1\r\n"),
            (S, b">3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$1\r\nm\r\n"),
            (C, cmd("HGETALL", "h")),
            (S, b"%1\r\n$1\r\nf\r\n,1.5\r\n"),
        ]
    )
    assert [(e["method"], rv(e)) for e in events] == [
        ("HELLO", "{server: redis, proto: 3}"),
        ("CLIENT TRACKING", "OK"),
        ("GET", "v"),
        ("SSUBSCRIBE", "[ssubscribe, ch, 1]"),
        ("HGETALL", "{f: 1.5}"),
    ]
    assert dec.stats["redis.push_messages"] == 2


def test_orphan_reply_dropped_and_unanswered_counted() -> None:
    events, dec = run([(S, b"+OK\r\n"), (C, cmd("BLPOP", "q", "0"))])
    assert events == []
    assert dec.stats["redis.unmatched_responses"] == 1
    assert dec.stats["redis.unmatched_requests"] == 1


def test_queue_limits_keep_pairing_in_step() -> None:
    reqs = b"".join(cmd("GET", f"k{i}") for i in range(10))
    reps = b"".join(b"$2\r\nv%d\r\n" % i for i in range(10))
    events, dec = run([(C, reqs), (S, reps)], queue_max_messages=4)
    # the 6 oldest requests were evicted; their replies are skipped, not mispaired
    assert [(e["resource"], rv(e)) for e in events] == [(f"k{i}", f"v{i}") for i in range(6, 10)]
    assert dec.stats["redis.queue_evictions"] == 6
    events, _ = run([(C, reqs), (S, reps)], queue_max_bytes=len(b"GET k1") * 3)
    assert [(e["resource"], rv(e)) for e in events] == [(f"k{i}", f"v{i}") for i in range(7, 10)]


def test_monitor_and_replication_streams() -> None:
    events, dec = run(
        [
            (C, cmd("MONITOR")),
            (S, b"+OK\r\n"),
            (S, b'+1700000000.123456 [0 127.0.0.1:1234] "set" "a" "1"\r\n'),
            (C, cmd("QUIT")),
            (S, b"+OK\r\n"),
        ]
    )
    assert [(e["method"], rv(e)) for e in events] == [("MONITOR", "OK"), ("QUIT", "OK")]
    assert dec.stats["redis.monitor_lines"] == 1
    events, dec = run(
        [
            (C, cmd("PSYNC", "?", "-1")),
            (S, b"+FULLRESYNC 8371b4fb 0\r\n$5\r\nREDIS"),
            (S, cmd("SET", "a", "1")),
            (C, cmd("REPLCONF", "ACK", "0")),
        ]
    )
    assert [(e["method"], rv(e)) for e in events] == [("PSYNC", "FULLRESYNC 8371b4fb 0")]
    assert dec.stats.get("redis.parse_errors", 0) == 0


def test_parse_error_resyncs_on_next_segment() -> None:
    events, dec = run([(C, cmd("GET", "a")), (S, b"?garbage\r\n"), (C, cmd("GET", "b")), (S, b"$1\r\nx\r\n")])
    assert dec.stats["redis.parse_errors"] == 1
    assert [(e["resource"], rv(e)) for e in events] == [("a", "x")]


def test_gap_drops_state() -> None:
    conv = Conversation(CLIENT, SERVER).handshake()
    conv.send(C, cmd("GET", "a"))
    conv.seq[1] += 100  # the server's bytes are lost
    conv.send(S, b"$1\r\nx\r\n")
    conv.send(C, cmd("GET", "b"))
    conv.send(S, b"$1\r\ny\r\n")
    conv.close()
    events, dec = decode_packets([(ts, 1, f) for ts, f in conv.frames], {"redis": {"ports": [6379]}})
    assert [(e["resource"], rv(e)) for e in events] == [("b", "y")]
    assert dec.stats["redis.gap_drops"] >= 1


def test_truncated_message_note() -> None:
    events, _ = run([(C, cmd("GET", "k")), (S, b"$300\r\n" + b"z" * 300 + b"\r\n")], max_message_size=100)
    assert rv(events[0]) == ""
    assert events[0]["error"]["message"] == ["Response truncated"]
    assert events[0]["destination"]["bytes"] == 308
