"""Sample conversations of every TCP decoder, valid end to end, with the number of
transactions each client message starts: the seeds of the property tests
(``test_decoder_properties``) and of the coverage-guided campaign
(``benchmarks/fuzz_decoders.py``)."""

from __future__ import annotations

from tests.protocols import test_mysql_pgsql_fuzz as sqlfuzz
from tests.protocols import test_thrift_unit as tu

C, S = 0, 1
PROTOS = ["http", "mysql", "pgsql", "redis", "thrift"]

Conv = list[tuple[int, bytes, int]]  # (direction, bytes, transactions the message starts)


def _http() -> list[Conv]:
    get = b"GET /a?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"
    post = b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2"
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/html\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    head = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
    head_ok = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    fold = b"PUT /u HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n  b\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"
    cont = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    pipe = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.0\r\nAuthorization: Basic dTpw\r\n\r\n"
    pipe_ok = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n"
    gz = b"HTTP/1.1 404 Not Found\r\nContent-Encoding: gzip\r\nContent-Type: text/html\r\nContent-Length: 23\r\n\r\n"
    gz += b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcbH\xcd\xc9\xc9\x07\x00\x86\xa6\x106\x05\x00\x00\x00"
    return [
        [(C, get, 1), (S, ok, 0), (C, post, 1), (S, chunked, 0), (C, head, 1), (S, head_ok, 0)],
        [(C, fold, 1), (S, cont, 0), (C, pipe, 2), (S, pipe_ok, 0), (C, get, 1), (S, gz, 0)],
    ]


def _cmd(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _redis() -> list[Conv]:
    return [
        [
            (C, _cmd(b"SET", b"k", b"v"), 1),
            (S, b"+OK\r\n", 0),
            (C, _cmd(b"GET", b"k"), 1),
            (S, b"$5\r\nvalue\r\n", 0),
            (C, _cmd(b"LRANGE", b"l", b"0", b"-1"), 1),
            (S, b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n:-7\r\n", 0),
            (C, b"PING\r\n", 1),
            (S, b"+PONG\r\n", 0),
            (C, _cmd(b"NOPE"), 1),
            (S, b"-ERR unknown command\r\n", 0),
        ],
        [
            (C, _cmd(b"HELLO", b"3"), 1),
            (S, b"%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n", 0),
            (C, _cmd(b"HGETALL", b"h"), 1),
            (S, b"|1\r\n+ttl\r\n:3\r\n%1\r\n+f\r\n,1.5e3\r\n", 0),
            (C, _cmd(b"SMEMBERS", b"s"), 1),
            (S, b"~2\r\n#t\r\n(123456789012345678901234567890\r\n", 0),
            (C, _cmd(b"GET", b"n"), 1),
            (S, b"_\r\n", 0),
        ],
    ]


def _mysql() -> list[Conv]:
    conv = sqlfuzz.mysql_conversation()
    starts = {0x03, 0x16, 0x17}  # COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE
    return [[(d, m, int(d == C and m[3] == 0 and m[4] in starts)) for d, m in conv]]


def _pgsql() -> list[Conv]:
    conv = sqlfuzz.pgsql_conversation()
    counts = [0, 0, 0, 0, 2, 0, 1, 0, 1, 0, 1, 0, 0]
    assert len(counts) == len(conv)
    return [[(d, m, n) for (d, m), n in zip(conv, counts, strict=True)]]


def _thrift() -> list[Conv]:
    convs = []
    for compact, framed in ((False, False), (True, False), (False, True), (True, True)):
        conv: Conv = []
        for i, (side, (method, mtype, obj, _)) in enumerate(tu.WORKLOAD[:14]):
            conv.append((side, tu.encode(method, mtype, obj, i // 2, compact, framed), int(side == C)))
        convs.append(conv)
    return convs


SAMPLES: dict[str, list[Conv]] = {
    "http": _http(),
    "redis": _redis(),
    "mysql": _mysql(),
    "pgsql": _pgsql(),
    "thrift": _thrift(),
}
CASES = [(proto, i) for proto in PROTOS for i in range(len(SAMPLES[proto]))]
