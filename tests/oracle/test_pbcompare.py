"""The comparison tool itself (scripts/pbcompare.py), without running Packetbeat: pairing,
normalising, the differences.md format and how entries match."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from scripts import pbcompare as pc
from tests.helpers import ROOT, SHARED_PCAPS


def ev(
    query: str = "GET /",
    start: str = "2020-01-01T00:00:00.000Z",
    port: int = 40000,
    typ: str = "http",
    cid: str = "1:conn",
    **fields: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": start,
        "@metadata": {"beat": "packetbeat", "type": "_doc", "version": "9.3.0"},
        "agent": {"version": "9.3.0", "id": "x"},
        "host": {"name": "h"},
        "ecs": {"version": "8.0.0"},
        "type": typ,
        "query": query,
        "client": {"ip": "127.0.0.1", "port": port},
        "event": {"start": start},
        "network": {"community_id": cid},
    }
    for k, v in fields.items():
        node = doc
        *head, last = k.split("__")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = v
    return doc


def entries(text: str) -> list[pc.Documented]:
    return pc.parse_differences(text, "test")


def entry(slug: str, **block: Any) -> str:
    import yaml

    if "with_" in block:
        block["with"] = block.pop("with_")
    return f"### {slug}\n```yaml\n{yaml.safe_dump(block)}```\nWhy.\n\n"


def run(pb: list[dict[str, Any]], wb: list[dict[str, Any]], docs: str = "", built: Any = None) -> pc.Result:
    return pc.compare("cap.pcap", pb, wb, entries(docs), built or {"http", "mysql", "redis"})


# -- normalising and pairing ------------------------------------------------------------


def test_agent_fields_are_left_out() -> None:
    a = ev()
    b = ev()
    b["agent"] = {"version": "0.1.0", "build": {"original": "wirebeat"}}
    b["host"] = {"name": "other", "os": {"type": "linux"}}
    b["@metadata"]["version"] = "0.1.0"
    b["ecs"]["version"] = "1.0"
    res = run([a], [b])
    assert res.ok and res.counts("http").identical == 1
    assert "agent.version" not in pc.normalise(a) and "@metadata.beat" in pc.normalise(a)


def test_pairing_ignores_output_order_and_repeated_queries() -> None:
    pb = [ev("GET /a", status="OK"), ev("GET /a", status="Error"), ev("GET /b")]
    wb = list(reversed(pb))
    res = run(pb, wb)
    c = res.counts("http")
    assert (c.paired, c.identical, c.missing, c.extra) == (3, 3, 0, 0)


def test_event_with_another_query_pairs_by_start_and_shows_the_difference() -> None:
    res = run([ev("SELECT 'a")], [ev("SELECT 'a;b'")])
    assert res.counts("http").paired == 1
    (d,) = res.undocumented
    assert (d.kind, d.field, d.pb_value(), d.wb_value()) == ("value", "query", "SELECT 'a", "SELECT 'a;b'")


def test_missing_and_extra_events() -> None:
    res = run([ev("GET /a", port=1)], [ev("GET /b", port=2)])
    c = res.counts("http")
    assert (c.paired, c.missing, c.extra, c.failures) == (0, 1, 1, 2)
    assert {d.kind for d in res.undocumented} == {"missing-event", "extra-event"}


def test_flows_pair_by_id_and_final_flag() -> None:
    def flow(fid: str, final: bool, packets: int) -> dict[str, Any]:
        return {"type": "flow", "flow": {"id": fid, "final": final}, "network": {"packets": packets}}

    pb = [flow("A", False, 1), flow("A", True, 3), flow("B", True, 2)]
    wb = [flow("B", True, 2), flow("A", True, 4), flow("A", False, 1)]
    res = run(pb, wb, built={"flow"})
    assert res.counts("flow").paired == 3
    (d,) = res.undocumented
    assert (d.field, d.pb_value(), d.wb_value()) == ("network.packets", 3, 4)


def test_protocols_not_built_are_reported_not_failed() -> None:
    res = run([ev(typ="dns", query="class IN, type A, x")], [], built={"http"})
    assert res.ok and res.not_built == {"dns"}
    assert res.counts("dns").not_built and res.counts("dns").failures == 0
    assert "not built" in pc.table(res)


def test_values_compare_by_type() -> None:
    res = run([ev(http__response__status_code=200)], [ev(http__response__status_code="200")])
    assert not res.ok


# -- the differences.md format --------------------------------------------------------------


def test_the_projects_differences_file_parses() -> None:
    docs = pc.load_differences()
    assert docs, "docs/differences.md has no entries"
    assert all(d.slug.split("/")[0] in (d.protocol, "general") for d in docs)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"protocol": "http", "kind": "value"}, "needs fields"),
        ({"protocol": "http", "kind": "nonsense"}, "needs protocol and kind"),
        ({"protocol": "http", "kind": "extra-event", "whenever": {}}, "unknown keys"),
        ({"protocol": "mysql", "kind": "extra-event"}, "slug must start"),
        ({"protocol": "http", "kind": "extra-event", "after": "http/none"}, "is no entry"),
        ({"protocol": "http", "kind": "extra-event", "connection": "sometimes"}, "connection must be"),
        ({"protocol": "http", "kind": "packetbeat-crash"}, "needs fields"),
        (
            {"protocol": "http", "kind": "packetbeat-crash", "fields": ["*"], "when": {"a": 1}},
            "no event to put conditions on",
        ),
    ],
)
def test_malformed_entries_are_errors(block: dict[str, Any], message: str) -> None:
    with pytest.raises(pc.CompareError, match=message):
        entries(entry("http/x", **block))


def test_heading_without_yaml_is_an_error() -> None:
    with pytest.raises(pc.CompareError, match="no ```yaml block"):
        entries("### http/x\nJust prose.\n")


def test_cascade_must_name_a_cause_without_cascade() -> None:
    text = (
        entry("http/a", protocol="http", kind="extra-event")
        + entry("http/b", protocol="http", kind="extra-event", after="http/a")
        + entry("http/c", protocol="http", kind="extra-event", after="http/b")
    )
    with pytest.raises(pc.CompareError, match="without after/with"):
        entries(text)


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("GET /x", "GET *", True),
        ("GET /x", ["POST *", "GET *"], True),
        (["a", "b"], "b", True),
        (["a", "b"], '["a","b"]', True),
        (42011, ">32767", True),
        (8080, ">32767", False),
        ("42011", ">32767", False),
        (0, "!=0", False),
        (True, True, True),
        (1, True, False),
        (3, 3, True),
    ],
)
def test_value_patterns(value: Any, pattern: Any, expected: bool) -> None:
    assert pc.value_matches(value, pattern) is expected


def test_null_pattern_means_absent() -> None:
    assert pc.value_matches(None, None, present=False)
    assert not pc.value_matches("x", None, present=True)
    assert not pc.value_matches(None, "*", present=False)


# -- matching ---------------------------------------------------------------------------------


def test_entry_matches_kind_field_and_conditions() -> None:
    docs = entry(
        "http/port",
        protocol="http",
        kind=["value", "missing-field"],
        fields=["url.*"],
        when={"url.port": ">32767"},
    )
    pb = [
        ev("GET /a", url__domain="h:40000", url__port=40000),
        ev("GET /b", url__domain="h:80", url__port=80),
    ]
    wb = [ev("GET /a", url__domain="h", url__port=40000), ev("GET /b", url__domain="h", url__port=80)]
    res = run(pb, wb, docs)
    assert [d.doc.slug if d.doc else None for d in res.diffs if d.pb.flat["query"] == "GET /a"] == [
        "http/port"
    ]
    (bad,) = res.undocumented
    assert bad.pb.flat["query"] == "GET /b"
    c = res.counts("http")
    assert (c.documented, c.undocumented) == (1, 1)


def test_when_packetbeat_and_value_patterns() -> None:
    docs = entry(
        "http/v", protocol="http", kind="value", fields=["status"], packetbeat="Error", wirebeat="OK"
    )
    assert run([ev(status="Error")], [ev(status="OK")], docs).ok
    assert not run([ev(status="OK")], [ev(status="Error")], docs).ok
    docs = entry(
        "http/w", protocol="http", kind="value", fields=["status"], when_packetbeat={"method": "HEAD"}
    )
    assert run([ev(status="Error", method="HEAD")], [ev(status="OK", method="HEAD")], docs).ok
    assert not run([ev(status="Error", method="GET")], [ev(status="OK", method="GET")], docs).ok


def test_unless() -> None:
    docs = entry("redis/u", protocol="redis", kind="extra-event", unless={"method": ["GET", "SET"]})
    assert run([], [ev("HELLO 3", typ="redis", method="HELLO")], docs).ok
    assert not run([], [ev("GET k", typ="redis", method="GET")], docs).ok


def test_general_entries_apply_to_every_protocol() -> None:
    docs = entry("general/g", protocol="*", kind="extra-event", when={"error.message": "Unmatched request"})
    res = run([], [ev(typ="mysql", error__message=["Unmatched request"])], docs)
    assert res.ok


def test_after_covers_the_rest_of_the_connection_only() -> None:
    docs = entry(
        "http/cause", protocol="http", kind="value", fields=["http.response.bytes"], when={"method": "HEAD"}
    ) + entry("http/desync", protocol="http", kind=["value", "extra-event"], fields=["*"], after="http/cause")
    t = "2020-01-01T00:00:0{}.000Z"
    pb = [
        ev("GET /0", t.format(0), method="GET", status="OK"),
        ev("HEAD /", t.format(1), method="HEAD", http__response__bytes=200),
        ev("GET /2", t.format(2), method="GET", status="Error"),
        ev("GET /o", t.format(2), method="GET", status="Error", port=40001, cid="1:other"),
    ]
    wb = [
        ev("GET /0", t.format(0), method="GET", status="OK"),
        ev("HEAD /", t.format(1), method="HEAD", http__response__bytes=100),
        ev("GET /2", t.format(2), method="GET", status="OK"),
        ev("GET /3", t.format(3), method="GET", status="OK"),
        ev("GET /o", t.format(2), method="GET", status="OK", port=40001, cid="1:other"),
    ]
    res = run(pb, wb, docs)
    got = {(d.event.flat["query"], d.doc.slug if d.doc else None) for d in res.diffs}
    assert got == {
        ("HEAD /", "http/cause"),
        ("GET /2", "http/desync"),
        ("GET /3", "http/desync"),
        ("GET /o", None),  # another connection
    }


def test_with_covers_the_whole_connection() -> None:
    docs = entry(
        "mysql/cause",
        protocol="mysql",
        kind="value",
        fields=["path"],
        when_packetbeat={"event.duration": None},
    ) + entry("mysql/rest", protocol="mysql", kind="extra-event", with_="mysql/cause")
    t = "2020-01-01T00:00:0{}.000Z"
    pb = [ev("SELECT 2", t.format(2), typ="mysql", path="garbage", event__end=t.format(1))]
    wb = [
        ev("SELECT 1", t.format(1), typ="mysql"),
        ev("SELECT 2", t.format(2), typ="mysql", path=".", event__end=t.format(2), event__duration=0),
    ]
    res = run(pb, wb, docs)
    assert {d.doc.slug for d in res.diffs if d.doc} == {"mysql/cause", "mysql/rest"}
    assert [d.field for d in res.undocumented] == ["event.duration", "event.end"]


def test_connection_facts() -> None:
    silent = entry("thrift/s", protocol="thrift", kind="extra-event", connection="packetbeat-silent")
    unpaired = entry(
        "thrift/u", protocol="thrift", kind=["extra-event", "missing-event"], connection="packetbeat-unpaired"
    )
    framed = [ev("ping()", typ="thrift", cid="1:framed")]
    both = [ev("ping()", typ="thrift", cid="1:plain")]
    assert run(both, both + framed, silent, built={"thrift"}).ok
    assert not run(both, [*both, ev("zip()", typ="thrift", cid="1:plain")], silent, built={"thrift"}).ok
    garbage = [ev("\x00\x03add", typ="thrift", cid="1:framed", port=9090)]
    assert not run(both + garbage, both + framed, silent, built={"thrift"}).ok
    assert run(both + garbage, both + framed, unpaired, built={"thrift"}).ok


# -- configuration ----------------------------------------------------------------------------


def test_default_config_has_every_protocol_on_shipped_and_test_ports() -> None:
    protos = {p["type"]: p for p in pc.default_config()["packetbeat.protocols"]}
    assert set(protos) == {
        "icmp",
        "amqp",
        "cassandra",
        "dhcpv4",
        "dns",
        "http",
        "memcache",
        "mysql",
        "pgsql",
        "redis",
        "thrift",
        "mongodb",
        "nfs",
        "tls",
        "sip",
    }
    assert protos["http"]["ports"] == [80, 8080, 8000, 5000, 8002, 8888, 9200]
    assert protos["redis"]["ports"] == [6379, 6380]
    assert "ports" not in protos["icmp"]


def test_with_protocols_merges_ports_and_options() -> None:
    base = pc.default_config()
    cfg = pc.with_protocols(base, [{"type": "thrift", "ports": [5000, 41000], "transport_type": "framed"}])
    protos = {p["type"]: p for p in cfg["packetbeat.protocols"]}
    assert protos["thrift"] == {"type": "thrift", "ports": [9090, 5000, 41000], "transport_type": "framed"}
    assert 5000 not in protos["http"]["ports"]  # a port belongs to one protocol
    assert 5000 in {p["type"]: p for p in base["packetbeat.protocols"]}["http"]["ports"]  # base untouched


def test_run_config_replaces_outputs_and_paths_however_written(tmp_path: Any) -> None:
    user = {
        "output.elasticsearch": {"hosts": ["x"]},
        "output": {"logstash": {"hosts": ["y"]}},
        "queue": {"mem": {"events": 10}},
        "path.data": "/var/lib",
        "packetbeat": {"shutdown_timeout": "0s", "protocols": []},
        "processors": [{"drop_fields": {"fields": ["a"]}}],
    }
    cfg = pc.run_config(user, tmp_path, "packetbeat")
    assert "output.elasticsearch" not in cfg and "output" not in cfg and "queue" not in cfg
    assert cfg["output.file"]["path"] == str(tmp_path / "out")
    assert cfg["queue.mem.flush.timeout"] == "0s"
    assert cfg["packetbeat.shutdown_timeout"] == pc.SHUTDOWN_TIMEOUT
    assert cfg["packetbeat"] == {"protocols": []}
    assert cfg["processors"] == user["processors"]


def test_cli_exits_2_without_packetbeat(tmp_path: Any) -> None:
    env = dict(os.environ, WIREBEAT_PACKETBEAT=str(tmp_path / "nothing"))
    pcap = tmp_path / "x.pcap"
    pcap.write_bytes(b"")
    proc = subprocess.run(
        [str(ROOT / "scripts" / "compare-packetbeat"), str(pcap)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2
    assert "is not an executable" in proc.stderr
    assert sys.executable  # the wrapper uses python3 from PATH


def test_protocols_in_any_form_become_one_list() -> None:
    nested = {"packetbeat": {"protocols": [{"type": "http", "ports": [80]}], "flows": {"enabled": False}}}
    old = {"packetbeat.protocols": {"http": {"ports": [80]}, "redis": None}}
    for cfg in (nested, old):
        out = pc.with_protocols(cfg, [{"type": "http", "ports": [8000]}])
        assert out["packetbeat.protocols"][0] == {"type": "http", "ports": [80, 8000]}
        assert "protocols" not in out.get("packetbeat", {})
    assert pc.list_form(old)["packetbeat.protocols"][1] == {"type": "redis"}
    assert pc.detailed(nested)["packetbeat"] == {"flows": {"enabled": False}}


def test_an_entry_of_the_wrong_kind_is_named_as_a_hint() -> None:
    docs = entry("http/h", protocol="http", kind="value", fields=["url.query"])
    res = run([ev(url__query="a=1")], [ev()], docs)
    (d,) = res.undocumented
    assert d.hint == "http/h would explain it with kind missing-field"
    assert "would explain it with kind missing-field" in d.line()


def test_cassandra_events_pair_by_request_stream_and_field_references() -> None:
    """Cassandra events have no ``query``: the request's stream id (and query text) tells
    them apart; ``"!=@field"`` compares two fields of one event."""

    def cass(stream: int, resp_stream: int, rows: int) -> dict[str, Any]:
        e = ev("", typ="cassandra")
        del e["query"]
        e["cassandra"] = {
            "request": {"headers": {"stream": stream}},
            "response": {"headers": {"stream": resp_stream}, "rows": rows},
        }
        return e

    pb = [cass(1, 2, 20), cass(2, 1, 10)]
    wb = [cass(2, 2, 20), cass(1, 1, 10)]
    doc = entry(
        "cassandra/pairing",
        protocol="cassandra",
        kind="value",
        fields=["cassandra.response.*"],
        when_packetbeat={"cassandra.response.headers.stream": "!=@cassandra.request.headers.stream"},
    )
    res = run(pb, wb, doc, {"cassandra"})
    diffs = [d for d in res.diffs if d.kind == "value"]
    assert {d.field for d in diffs} == {"cassandra.response.headers.stream", "cassandra.response.rows"}
    assert all(d.doc is not None for d in diffs)
    # The same pairs with equal streams on Packetbeat's side are not explained by it.
    res = run([cass(1, 1, 20)], [cass(1, 1, 10)], doc, {"cassandra"})
    assert [d.doc for d in res.diffs if d.kind == "value"] == [None]


def test_port_reused_fact_reads_new_connections_from_the_capture(tmp_path: Any) -> None:
    """``connection: port-reused``: an event that began after a second connection (a SYN with
    a new initial sequence number) on its addresses and ports; a retransmitted SYN is none."""
    from benchmarks.synth import Conversation
    from capture import PcapWriter

    t0 = 1_700_000_000_000_000_000
    first = Conversation(("127.0.0.1", 705), ("127.0.0.1", 2049), ts=t0, isn_c=1000).handshake()
    first.frames.append(first.frames[0])  # the SYN again: a retransmission
    again = Conversation(("127.0.0.1", 705), ("127.0.0.1", 2049), ts=t0 + 3_000_000, isn_c=77).handshake()
    other = Conversation(("127.0.0.1", 706), ("127.0.0.1", 2049), ts=t0 + 4_000_000).handshake()
    pcap = tmp_path / "reuse.pcap"
    w = PcapWriter(str(pcap), 1)
    for ts, frame in first.frames + again.frames + other.frames:
        w.write(ts, frame, len(frame))
    w.close()
    ends = (("127.0.0.1", "2049"), ("127.0.0.1", "705"))
    assert pc.tcp_reuse_starts(pcap) == {ends: ["2023-11-14T22:13:20.003Z"]}

    def nfs(start: str, port: int) -> dict[str, Any]:
        return ev(
            "", start, port, typ="nfs", source__ip="127.0.0.1", source__port=port,
            destination__ip="127.0.0.1", destination__port=2049,
        )  # fmt: skip

    docs = entry("general/tcp-port-reuse", protocol="*", kind="extra-event", connection="port-reused")
    wb = [
        nfs("2023-11-14T22:13:20.001Z", 705),
        nfs("2023-11-14T22:13:20.004Z", 705),
        nfs("2023-11-14T22:13:20.005Z", 706),
    ]
    r = pc.compare("reuse.pcap", [], wb, entries(docs), {"nfs"}, pcap)
    slugs = sorted((d.event.flat["event.start"], d.doc.slug if d.doc else None) for d in r.diffs)
    assert slugs == [
        ("2023-11-14T22:13:20.001Z", None),  # the first connection: not explained
        ("2023-11-14T22:13:20.004Z", "general/tcp-port-reuse"),
        ("2023-11-14T22:13:20.005Z", None),  # another port
    ]


# -- Packetbeat crashing on a capture -------------------------------------------------------

PANIC = """{"log.level":"info","message":"packetbeat start running."}
panic: runtime error: index out of range [7] with length 7

goroutine 119 [running]:
github.com/elastic/beats/v7/packetbeat/protos/thrift.(*thriftPlugin).readStruct(0x1, {0x2, 0x7, 0x660b})
	/root/go/pkg/mod/github.com/elastic/beats/v7@v7/packetbeat/protos/thrift/thrift.go:629 +0x3fe
github.com/elastic/beats/v7/packetbeat/protos/thrift.(*thriftPlugin).readListOrSet(0x1, {0x2, 0x3, 0x4})
github.com/elastic/beats/v7/packetbeat/protos/tcp.(*TCPStream).addPacket(0x1, 0x2, 0x3)
"""


def test_a_panic_in_a_decoder_is_read_from_packetbeats_stderr(tmp_path: Any) -> None:
    crash = pc.PacketbeatCrashed.parse(tmp_path / "x.pcap", PANIC)
    assert crash is not None
    assert (crash.protocol, crash.where) == ("thrift", "thrift.(*thriftPlugin).readStruct")
    assert crash.panic == "runtime error: index out of range [7] with length 7"
    assert pc.PacketbeatCrashed.parse(tmp_path / "x.pcap", "Exiting: bad config") is None


def test_a_crash_is_one_difference_documented_or_failing(tmp_path: Any) -> None:
    crash = pc.PacketbeatCrashed(tmp_path / "x.pcap", "thrift", "thrift.(*thriftPlugin).readStruct", "boom")
    undocumented = pc.crashed("x.pcap", crash, [])
    assert not undocumented.ok
    assert undocumented.counts("thrift").failures == 1
    assert "Packetbeat crashed in thrift.(*thriftPlugin).readStruct: boom" in pc.report(undocumented)
    doc = entries(
        entry("thrift/x", protocol="thrift", kind="packetbeat-crash", fields=["thrift.*readStruct"])
    )
    documented = pc.crashed("x.pcap", crash, doc)
    assert documented.ok and documented.diffs[0].doc is not None
    other = entries(
        entry("thrift/y", protocol="thrift", kind="packetbeat-crash", fields=["thrift.*readList"])
    )
    assert not pc.crashed("x.pcap", crash, other).ok


@pytest.mark.integration
def test_packetbeat_crashing_on_one_capture_leaves_the_others_compared(tmp_path: Any) -> None:
    """A Thrift call whose first segment ends right after a field inside a struct kills
    Packetbeat 9.3.0 (documented: thrift/packetbeat-panics-on-split-struct); the other
    capture of the same run is compared as usual, and wirebeat decodes the call."""
    import json
    import struct

    from benchmarks.synth import Conversation
    from capture import PcapWriter
    from tests.oracle.oracle import packetbeat

    def string(b: bytes) -> bytes:
        return struct.pack(">i", len(b)) + b

    head = struct.pack(">I", 0x80010001) + string(b"get") + struct.pack(">i", 1)
    head += bytes([15]) + struct.pack(">h", 1) + bytes([12]) + struct.pack(">i", 2)  # list<struct>, 2
    first = head + bytes([8]) + struct.pack(">h", 1) + struct.pack(">i", 7)  # struct 1, field 1: i32 7
    rest = bytes([0, 8]) + struct.pack(">h", 1) + struct.pack(">i", 8) + bytes([0, 0])
    conv = Conversation(("10.0.0.2", 40000), ("10.0.0.1", 9090)).handshake()
    conv.send(0, first).send(0, rest)
    crash = tmp_path / "split.pcap"
    w = PcapWriter(str(crash), 1)
    for ts, frame in conv.frames:
        w.write(ts, frame, len(frame))
    w.close()
    fine = SHARED_PCAPS / "http_basicauth.pcap"
    cfg = pc.with_protocols(pc.default_config(), [{"type": "thrift", "ports": [9090]}])
    jobs = [pc.Job(crash, cfg, "split"), pc.Job(fine, cfg, "fine")]
    total, per = pc.run_jobs(jobs, binary=packetbeat(), workdir=tmp_path / "work", cache=False)
    assert [d.kind for d in per["split"].diffs] == ["packetbeat-crash"]
    assert per["split"].diffs[0].doc is not None
    assert per["split"].diffs[0].doc.slug == "thrift/packetbeat-panics-on-split-struct"
    assert per["fine"].counts("http").paired > 0 and per["fine"].ok
    assert total.ok
    out = tmp_path / "wb"
    r = subprocess.run(
        [sys.executable, "-m", "shipper", "run", "-t", "-I", str(crash), "-E", "packetbeat.protocols=[]",
         "-E", "packetbeat.protocols.0.type=thrift", "-E", "packetbeat.protocols.0.ports=[9090]",
         "-E", f"output.file.path={out}", "-E", "output.file.filename=ev", "--path.data", str(tmp_path / "d")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    events = [json.loads(line) for p in out.glob("ev*") for line in p.read_text().splitlines()]
    thrift = [e for e in events if e["type"] == "thrift"]
    assert len(thrift) == 1, events
    assert thrift[0]["method"] == "get"
    assert thrift[0]["thrift"]["params"] == "(1: [(1: 7), (1: 8)])"


def test_cli_names_a_config_it_cannot_read(tmp_path: Any) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("a: [1,\n")
    (tmp_path / "x.pcap").write_bytes(b"")
    for cfg, message in ((tmp_path / "none.yml", "cannot read"), (bad, "not valid YAML")):
        r = subprocess.run(
            [str(ROOT / "scripts" / "compare-packetbeat"), "-c", str(cfg), str(tmp_path / "x.pcap")],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
