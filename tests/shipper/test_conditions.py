"""libbeat conditions: the documentation's examples (libbeat "Conditions"), libbeat's own
condition tests' events, and the errors a bad condition gives at start-up."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shipper.agent.config import ConfigError
from shipper.pipeline.conditions import compile_condition

#: The event libbeat's conditions_test.go checks its conditions against (httpEvent).
HTTP_EVENT: dict[str, Any] = {
    "@timestamp": "2015-06-11T09:51:23.642Z",
    "bytes_in": 126,
    "bytes_out": 28033,
    "client_ip": "127.0.0.1",
    "client_location": "",
    "client_port": 42840,
    "client_proc": "",
    "client_server": "mar.local",
    "http": {
        "code": 200,
        "content_length": 76985,
        "phrase": "OK",
        "request_headers": {"accept": "*/*", "user-agent": "curl/7.54.0"},
    },
    "method": "GET",
    "path": "/jszip.min.js",
    "port": 8000,
    "proc": "",
    "query": "GET /jszip.min.js",
    "real_ip": "",
    "responsetime": 30,
    "server": "mar.local",
    "status": "OK",
    "type": "http",
    "ip": "127.0.0.1",
    "direction": "in",
}


def cond(text: str) -> Any:
    return compile_condition(yaml.safe_load(text), "when")


def check(text: str, event: dict[str, Any]) -> bool:
    return cond(text)(event)


# -- the documentation's examples ---------------------------------------------------------------


def test_equals_doc_example() -> None:
    c = cond("equals:\n  http.response.code: 200")
    assert c({"http": {"response": {"code": 200}}})
    assert not c({"http": {"response": {"code": 404}}})
    # Integers only equal integers: the string "200" and the float 200.0 do not match.
    assert not c({"http": {"response": {"code": "200"}}})
    assert not c({"http": {"response": {"code": 200.0}}})
    assert not c({})


def test_equals_strings_and_booleans() -> None:
    assert check("equals: {type: http, status: OK}", HTTP_EVENT)
    assert not check("equals: {type: http, status: ok}", HTTP_EVENT)
    assert check("equals: {flag: true}", {"flag": True})
    assert not check("equals: {flag: true}", {"flag": 1})
    assert not check("equals: {n: 1}", {"n": True})


def test_contains_doc_example() -> None:
    c = cond('contains:\n  status: "Specific error"')
    assert c({"status": "A Specific error happened"})
    assert not c({"status": "specific error"})
    # A list matches when one of its strings does.
    assert check("contains: {tags: forwarded}", {"tags": ["beats_input", "forwarded"]})
    assert not check("contains: {tags: forwarded}", {"tags": ["beats_input"]})
    assert not check("contains: {n: '1'}", {"n": 1})


def test_regexp_doc_example() -> None:
    c = cond('regexp:\n  system.process.name: "^foo.*"')
    assert c({"system": {"process": {"name": "foobar"}}})
    assert not c({"system": {"process": {"name": "barfoo"}}})
    assert check("regexp: {http.request_headers.user-agent: 'curl.*'}", HTTP_EVENT)
    assert not check("regexp: {http.request_headers.user-agent: '^wget'}", HTTP_EVENT)


def test_range_doc_examples() -> None:
    assert check("range:\n  http.response.code:\n    gte: 400", {"http": {"response": {"code": 404}}})
    assert not check("range:\n  http.response.code:\n    gte: 400", {"http": {"response": {"code": 200}}})
    dotted = "range:\n  http.response.code.gte: 400"
    assert check(dotted, {"http": {"response": {"code": 500}}})
    both = "range:\n  system.cpu.user.pct.gte: 0.5\n  system.cpu.user.pct.lt: 0.8"
    assert check(both, {"system": {"cpu": {"user": {"pct": 0.5}}}})
    assert not check(both, {"system": {"cpu": {"user": {"pct": 0.8}}}})
    assert not check(both, {"system": {"cpu": {"user": {"pct": 0.2}}}})
    # Numeric strings count as numbers; anything else makes the range false.
    assert check("range: {n.gt: 1}", {"n": "2.5"})
    assert not check("range: {n.gt: 1}", {"n": "x"})
    assert not check("range: {n.gt: 1}", {"n": True})


def test_range_libbeat_cases() -> None:
    assert check("range: {http.code.gte: 200, http.code.lt: 300}", HTTP_EVENT)
    assert not check("range: {http.code.gt: 200}", HTTP_EVENT)
    assert check("range: {bytes_out.gte: 2800, bytes_out.lte: 30000}", HTTP_EVENT)
    assert check("range: {responsetime.lt: 31}", HTTP_EVENT)


def test_network_doc_examples() -> None:
    assert check("network:\n  source.ip: private", {"source": {"ip": "192.168.1.7"}})
    assert not check("network:\n  source.ip: private", {"source": {"ip": "8.8.8.8"}})
    assert check("network:\n  destination.ip: '192.168.1.0/24'", {"destination": {"ip": "192.168.1.200"}})
    assert not check("network:\n  destination.ip: '192.168.1.0/24'", {"destination": {"ip": "192.168.2.1"}})
    multi = "network:\n  destination.ip: ['192.168.1.0/24', '10.0.0.0/8', loopback]"
    for ip in ("192.168.1.1", "10.1.2.3", "127.0.0.1", "::1"):
        assert check(multi, {"destination": {"ip": ip}}), ip
    assert not check(multi, {"destination": {"ip": "172.16.0.1"}})
    both = "network:\n  source.ip: private\n  destination.ip: public"
    assert check(both, {"source": {"ip": "10.0.0.1"}, "destination": {"ip": "8.8.8.8"}})
    assert not check(both, {"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2"}})


@pytest.mark.parametrize(
    ("name", "inside", "outside"),
    [
        ("loopback", ["127.0.0.1", "127.9.9.9", "::1"], ["10.0.0.1", "::2"]),
        (
            "private",
            ["10.1.1.1", "172.16.0.1", "172.31.255.255", "192.168.0.1", "fd12::1"],
            ["172.32.0.1", "fc00::1", "8.8.8.8"],
        ),
        (
            "public",
            ["8.8.8.8", "2001:4860::8888", "224.1.1.1"],
            [
                "10.0.0.1",
                "127.0.0.1",
                "0.0.0.0",
                "255.255.255.255",
                "169.254.1.1",
                "224.0.0.251",
                "ff02::1",
                "fe80::1",
            ],
        ),
        ("multicast", ["224.0.0.1", "239.255.255.250", "ff02::fb"], ["192.168.1.1", "fe80::1"]),
        ("link_local_multicast", ["224.0.0.251", "ff02::1", "ff12::1"], ["239.1.1.1", "ff05::1"]),
        ("interface_local_multicast", ["ff01::1", "ff11::1"], ["ff02::1", "224.0.0.1"]),
        ("link_local_unicast", ["169.254.3.4", "fe80::1"], ["10.0.0.1", "fec0::1"]),
        ("unspecified", ["0.0.0.0", "::"], ["0.0.0.1"]),
        (
            "global_unicast",
            ["8.8.8.8", "10.0.0.1", "2001:db8::1"],
            ["127.0.0.1", "224.0.0.1", "169.254.1.1", "255.255.255.255", "0.0.0.0"],
        ),
        ("unicast", ["192.168.0.1"], ["ff02::1"]),
    ],
)
def test_named_networks(name: str, inside: list[str], outside: list[str]) -> None:
    c = cond(f"network: {{ip: {name}}}")
    for ip in inside:
        assert c({"ip": ip}), (name, ip)
    for ip in outside:
        assert not c({"ip": ip}), (name, ip)


def test_network_lists_mapped_and_bad_addresses() -> None:
    c = cond("network: {host.ip: '10.0.0.0/8'}")
    assert c({"host": {"ip": ["192.168.1.1", "10.0.0.9"]}})  # any address of a list
    assert not c({"host": {"ip": ["192.168.1.1"]}})
    assert c({"host": {"ip": "::ffff:10.1.2.3"}})  # IPv4-mapped is IPv4, as in Go
    assert not c({"host": {"ip": "not an ip"}})
    assert not c({"host": {"ip": 167772161}})
    assert not c({})


def test_has_fields_doc_example() -> None:
    c = cond("has_fields: ['http.response.code']")
    assert c({"http": {"response": {"code": 200}}})
    assert c({"http": {"response": {"code": None}}})  # present, even if null
    assert not c({"http": {"request": {}}})
    assert check("has_fields: [proc, type]", HTTP_EVENT)
    assert not check("has_fields: [cpu, type]", HTTP_EVENT)


def test_or_and_not_doc_examples() -> None:
    c = cond("or:\n  - equals:\n      http.response.code: 304\n  - equals:\n      http.response.code: 404")
    assert c({"http": {"response": {"code": 404}}})
    assert not c({"http": {"response": {"code": 200}}})
    c = cond("and:\n  - equals:\n      http.response.code: 200\n  - equals:\n      status: OK")
    assert c({"http": {"response": {"code": 200}}, "status": "OK"})
    assert not c({"http": {"response": {"code": 200}}, "status": "KO"})
    c = cond("not:\n  equals:\n    status: OK")
    assert c({"status": "KO"})
    assert not c({"status": "OK"})
    # Nested: Packetbeat's stock add_host_metadata condition.
    c = cond("not.contains.tags: forwarded")
    assert c({})
    assert c({"tags": ["other"]})
    assert not c({"tags": ["forwarded"]})


def test_dotted_keys_win_over_nesting() -> None:
    # mapstr: a key containing dots is found before the nested path is walked.
    assert check("equals: {a.b: 1}", {"a.b": 1})
    assert check("equals: {a.b.c: 1}", {"a": {"b.c": 1}})
    assert not check("equals: {a.b: 1}", {"a": 5})


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("equal: {a: 1}", "when", "missing or invalid condition"),
        ("{}", "when", "missing or invalid condition"),
        ("equals: {a: 1.5}", "when.equals.a", "only strings, ints, and booleans are allowed"),
        ("equals: 5", "when.equals", "wrong type, expect map"),
        ("regexp: {a: '(unclosed'}", "when.regexp.a", "error parsing regexp"),
        ("regexp: {a: '(?=x)'}", "when.regexp.a", "look-around"),
        ("regexp: {a: 5}", "when.regexp.a", "unexpected type"),
        ("range: {a.between: 5}", "when.range.a.between", "unexpected range operator between"),
        ("range: {a.gte: x}", "when.range.a.gte", "expected a number"),
        ("network: {ip: '10.0.0.1'}", "when.network.ip", "failed to parse CIDR"),
        ("network: {ip: 'privat'}", "when.network.ip", "failed to parse CIDR"),
        ("network: {ip: 5}", "when.network.ip", "only strings or []strings are allowed"),
        ("or: [{equals: {a: 1}}, {bogus: 1}]", "when.or.1", "missing or invalid condition"),
        ("not: {regexp: {a: '['}}", "when.not.regexp.a", "error parsing regexp"),
        ("[1, 2]", "when", "a condition must be a mapping"),
    ],
)
def test_bad_conditions_name_the_key(text: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        cond(text)
    assert info.value.path == where
    assert message in info.value.message


def test_several_kinds_in_one_mapping_warn() -> None:
    said: list[str] = []
    c = compile_condition({"equals": {"a": 1}, "contains": {"b": "x"}}, "when", said.append)
    assert c({"a": 1})  # libbeat uses the first kind only
    assert "only 'equals' is used" in said[0]


def test_go_regexp_dialect() -> None:
    assert check(r"regexp: {a: 'x\z'}", {"a": "abx"})
    assert not check("regexp: {a: 'x$'}", {"a": "abx\n"})  # Go's $ is the end of the text
    assert check("regexp: {a: '^[[:digit:]]+$'}", {"a": "123"})
    assert check(r"regexp: {a: '\Q1.5\E'}", {"a": "v1.5"})
    assert not check(r"regexp: {a: '\Q1.5\E'}", {"a": "v125"})
    assert check("regexp: {a: '(?<n>ab)c'}", {"a": "abc"})
