"""libbeat's processors: every processor with the example of libbeat's documentation for it
(same config, same input, same output; where the documentation only shows a config, the
input/output pairs of libbeat's own unit tests), plus the error cases: a bad config fails
at start-up with its key path, a failing event behaves as libbeat's (``fail_on_error``,
``ignore_missing``, ``error.message``, the chain's error rule)."""

from __future__ import annotations

import base64
import gzip
import re
from typing import Any

import pytest
import yaml

from protocols.stats import Counters
from shipper.agent.config import ConfigError
from shipper.pipeline.processors import REGISTRY, Context, ProcessorError, compile_list
from shipper.pipeline.processors.gofmt import format_float


def chain(cfg: str | list[Any], *, group: bool = False, ctx: Context | None = None) -> Any:
    cfgs = yaml.safe_load(cfg) if isinstance(cfg, str) else cfg
    p = compile_list(cfgs, "processors", ctx or Context(), group=group)
    assert p is not None
    return p


def run(cfg: str | list[Any], event: dict[str, Any], **kw: Any) -> Any:
    return chain(cfg, **kw)(event)


def fails(cfg: str | list[Any], event: dict[str, Any]) -> ProcessorError:
    with pytest.raises(ProcessorError) as info:
        run(cfg, event)
    return info.value


def bad(cfg: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        chain(cfg)
    assert info.value.path == where, info.value
    assert message in info.value.message, info.value


# -- the chain --------------------------------------------------------------------------------------


def test_every_processor_of_the_issue_is_registered() -> None:
    wanted = [
        "add_fields",
        "add_labels",
        "add_tags",
        "add_host_metadata",
        "add_observer_metadata",
        "add_locale",
        "add_id",
        "add_network_direction",
        "community_id",
        "registered_domain",
        "add_process_metadata",
        "drop_event",
        "drop_fields",
        "include_fields",
        "rename",
        "copy_fields",
        "replace",
        "convert",
        "truncate_fields",
        "decode_json_fields",
        "decode_base64_field",
        "decompress_gzip_field",
        "urldecode",
        "dissect",
        "fingerprint",
        "extract_array",
        "rate_limit",
        "translate_sid",
        "dns",
        "script",
        "detect_mime_type",
    ]
    assert set(wanted) <= set(REGISTRY)


def test_empty_lists_compile_to_nothing() -> None:
    assert compile_list([], "processors", Context(), group=False) is None
    assert compile_list(None, "processors", Context(), group=True) is None


def test_when_runs_the_processor_only_if_the_condition_holds() -> None:
    p = chain("- drop_event:\n    when.equals.http.response.status_code: 304")
    assert p({"http": {"response": {"status_code": 304}}}) is None
    assert p({"http": {"response": {"status_code": 200}}}) is not None


def test_if_then_else_doc_example() -> None:
    cfg = """
    - if:
        equals.type: http
      then:
        - add_tags: {tags: [web]}
        - drop_fields: {fields: [path]}
      else:
        add_tags: {tags: [other]}
    """
    assert run(cfg, {"type": "http", "path": "/"}) == {"type": "http", "tags": ["web"]}
    assert run(cfg, {"type": "dns", "path": "/"}) == {"type": "dns", "path": "/", "tags": ["other"]}
    # No else: the event passes unchanged.
    assert run("- if.has_fields: [x]\n  then: [{drop_event: {}}]", {"y": 1}) == {"y": 1}


def test_global_chain_stops_at_the_first_error_and_keeps_the_event() -> None:
    cfg = """
    - rename: {fields: [{from: missing, to: x}]}
    - add_tags: {tags: [after]}
    """
    with pytest.raises(ProcessorError) as info:
        run(cfg, {"a": 1})
    assert info.value.event == {"a": 1, "error": {"message": info.value.event["error"]["message"]}}
    assert "tags" not in info.value.event


def test_per_protocol_chain_goes_on_after_an_error() -> None:
    stats = Counters()
    cfg = """
    - rename: {fields: [{from: missing, to: x}]}
    - add_tags: {tags: [after]}
    """
    out = run(cfg, {"a": 1}, group=True, ctx=Context(stats=stats))
    assert out["tags"] == ["after"]
    assert out["error"]["message"].startswith("Failed to rename fields in processor: could not fetch value")
    assert stats["processors.errors"] == 1


@pytest.mark.parametrize(
    ("cfg", "where", "message"),
    [
        ("- drop_evnt: {}", "processors.0.drop_evnt", "the processor action drop_evnt does not exist"),
        ("- {drop_event: {}, add_tags: {tags: [a]}}", "processors.0", "exactly one action, but found 2"),
        ("- 5", "processors.0", "a processor must be a mapping"),
        (
            "- drop_event: {when: {equal: {a: 1}}}",
            "processors.0.drop_event.when",
            "missing or invalid condition",
        ),
        (
            "- drop_event: {when.regexp.a: '[a-'}",
            "processors.0.drop_event.when.regexp.a",
            "error parsing regexp",
        ),
        ("- if: {equals.a: 1}", "processors.0.then", "missing required field"),
        ("- if: {equals.a: 1}\n  then: [{nope: {}}]", "processors.0.then.0.nope", "does not exist"),
        ("- add_fields: {target: x}", "processors.0.add_fields", "missing fields option"),
        (
            "- add_fields: {fields: {a: 1}, extra: 1}",
            "processors.0.add_fields.extra",
            "unexpected extra option",
        ),
        (
            "- drop_fields: {fields: ['/(/']}",
            "processors.0.drop_fields.fields.0",
            "wrong configuration in drop_fields[0]",
        ),
        (
            "- replace: {fields: [{field: a, pattern: '(', replacement: b}]}",
            "processors.0.replace.fields.0.pattern",
            "error parsing regexp",
        ),
        (
            "- replace: {fields: [{field: a, pattern: b}]}",
            "processors.0.replace.fields.0",
            "missing replacement",
        ),
        (
            "- truncate_fields: {fields: [a]}",
            "processors.0.truncate_fields",
            "exactly one of max_bytes and max_characters",
        ),
        (
            "- truncate_fields: {fields: [a], max_bytes: -1}",
            "processors.0.truncate_fields.max_bytes",
            "requires value >= 0",
        ),
        (
            "- convert: {fields: [{from: a, type: number}]}",
            "processors.0.convert.fields.0.type",
            "invalid data type: number",
        ),
        ("- convert: {fields: [{from: a}]}", "processors.0.convert.fields.0", "must have a 'to' or a 'type'"),
        ("- dissect: {tokenizer: 'no keys'}", "processors.0.dissect.tokenizer", "invalid dissect tokenizer"),
        ("- dissect: {tokenizer: '%{a|number}'}", "processors.0.dissect.tokenizer", "invalid data type"),
        (
            "- dissect: {tokenizer: '%{&a}'}",
            "processors.0.dissect.tokenizer",
            "missing reference for key 'a'",
        ),
        (
            "- fingerprint: {fields: [a], method: crc}",
            "processors.0.fingerprint.method",
            "invalid fingerprinting method [crc]",
        ),
        (
            "- fingerprint: {fields: [a], encoding: b85}",
            "processors.0.fingerprint.encoding",
            "invalid encoding [b85]",
        ),
        (
            "- extract_array: {field: a, mappings: {x: -1}}",
            "processors.0.extract_array.mappings.x",
            "is not a positive integer",
        ),
        ("- rate_limit: {limit: 10/d}", "processors.0.rate_limit.limit", "unit component must be specified"),
        ("- rate_limit: {limit: ten/s}", "processors.0.rate_limit.limit", "not numeric"),
        ("- add_locale: {format: long}", "processors.0.add_locale.format", "not a valid format option"),
        ("- add_id: {type: uuid}", "processors.0.add_id.type", "invalid type [uuid]"),
        (
            "- add_network_direction: {source: s, destination: d, target: t}",
            "processors.0.add_network_direction",
            "missing internal_networks option",
        ),
        (
            "- add_network_direction: {source: s, destination: d, target: t, internal_networks: [privat]}",
            "processors.0.add_network_direction.internal_networks",
            "failed to parse CIDR",
        ),
        (
            "- registered_domain: {field: a}",
            "processors.0.registered_domain.target_field",
            "missing required field",
        ),
        ("- translate_sid: {field: a}", "processors.0.translate_sid", "at least one target field"),
        ("- dns: {type: MX, fields: {a: b}}", "processors.0.dns.type", "invalid dns lookup type 'mx'"),
        ("- script: {lang: lua, source: x}", "processors.0.script.lang", "not supported"),
        ("- script: {lang: javascript}", "processors.0.script", "javascript must be defined"),
        (
            "- script: {lang: javascript, source: 'function process(e) {'}",
            "processors.0.script",
            "failed to load the javascript",
        ),
        (
            "- script: {lang: javascript, source: 'var x = 1;'}",
            "processors.0.script.source",
            "process function not found",
        ),
        (
            "- add_process_metadata: {include_fields: [process.nope]}",
            "processors.0.add_process_metadata.include_fields",
            "field 'process.nope' not found",
        ),
        (
            "- add_host_metadata: {geo.location: 'north'}",
            "processors.0.add_host_metadata.geo.location",
            "Invalid lat,lon",
        ),
    ],
)
def test_bad_processor_configs_fail_with_their_key_path(cfg: str, where: str, message: str) -> None:
    bad(cfg, where, message)


def test_unsupported_cloud_processors_warn_and_do_nothing() -> None:
    ctx = Context()
    assert (
        compile_list(
            [{"add_cloud_metadata": None}, {"add_docker_metadata": None}, {"add_kubernetes_metadata": {}}],
            "processors",
            ctx,
            group=False,
        )
        is None
    )
    assert len(ctx.warnings) == 3
    assert (
        "processors.0.add_cloud_metadata: processor 'add_cloud_metadata' is not supported by wirebeat"
        in ctx.warnings[0]
    )


# -- adding -------------------------------------------------------------------------------------------


def test_add_fields_doc_examples() -> None:
    cfg = "- add_fields:\n    target: project\n    fields:\n      name: myproject\n      id: '574734885120952459'"
    assert run(cfg, {}) == {"project": {"name": "myproject", "id": "574734885120952459"}}
    meta = "- add_fields:\n    target: '@metadata'\n    fields:\n      op_type: index"
    assert run(meta, {"@metadata": {"beat": "packetbeat"}}) == {
        "@metadata": {"beat": "packetbeat", "op_type": "index"}
    }
    # Default target "fields"; an empty target writes at the root; existing values are overwritten.
    assert run("- add_fields: {fields: {a: 1}}", {"fields": {"b": 2}}) == {"fields": {"a": 1, "b": 2}}
    assert run("- add_fields: {target: '', fields: {a: {b: 1}}}", {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}


def test_add_fields_gives_every_event_its_own_copy() -> None:
    p = chain("- add_fields: {target: '', fields: {svc: {tags: [a]}}}")
    one, two = p({}), p({})
    one["svc"]["tags"].append("b")
    assert two["svc"]["tags"] == ["a"]


def test_add_labels_doc_example() -> None:
    cfg = """
    - add_labels:
        labels:
          number: 1
          with.dots: test
          nested:
            with.dots: nested
          array:
            - do
            - re
            - with.field: mi
    """
    # libbeat turns every label value into a string (its own tests; the doc's 1 is loose).
    assert run(cfg, {}) == {
        "labels": {
            "number": "1",
            "with.dots": "test",
            "nested.with.dots": "nested",
            "array.0": "do",
            "array.1": "re",
            "array.2.with.field": "mi",
        }
    }


def test_add_tags_doc_example() -> None:
    assert run("- add_tags:\n    tags: [web, production]\n    target: environment", {}) == {
        "environment": ["web", "production"]
    }
    assert run("- add_tags: {tags: [b]}", {"tags": ["a"]}) == {"tags": ["a", "b"]}
    assert run("- add_tags: {tags: [b]}", {"tags": "a"}) == {"tags": "a"}  # not a list: left alone


# -- dropping and keeping --------------------------------------------------------------------------------


def test_drop_event() -> None:
    assert run("- drop_event: {}", {"a": 1}) is None
    assert (
        run("- drop_event:\n    when.network.source.ip: private", {"source": {"ip": "8.8.8.8"}}) is not None
    )


def test_drop_fields_doc_example_with_regexp() -> None:
    evt = {
        "type": "http",
        "field1": 1,
        "field2": {"x": 1},
        "keep": 1,
        "http": {"request": {"headers": {"a": 1}}},
    }
    out = run(
        "- drop_fields:\n    fields: [field1, field2, '/^http\\.request\\./']\n    ignore_missing: false", evt
    )
    # Children are dropped before their parents (libbeat's key order): http.request stays.
    assert out == {"type": "http", "keep": 1, "http": {"request": {}}}


def test_drop_fields_errors_and_mandatory_fields() -> None:
    err = fails("- drop_fields: {fields: [nope, a]}", {"a": 1})
    assert str(err) == "failed to drop field [nope], error: key not found"
    assert err.event == {}  # what could be dropped was dropped
    assert run("- drop_fields: {fields: [nope, a], ignore_missing: true}", {"a": 1, "b": 2}) == {"b": 2}
    # type can never be dropped; @timestamp and @metadata are not fields.
    assert run("- drop_fields: {fields: [type], ignore_missing: true}", {"type": "dns"}) == {"type": "dns"}
    err = fails("- drop_fields: {fields: ['@timestamp']}", {"@timestamp": "t"})
    assert "unable to delete @timestamp" in str(err)


def test_include_fields() -> None:
    evt = {"@timestamp": "t", "@metadata": {"beat": "p"}, "type": "http", "http": {"a": 1, "b": 2}, "x": 1}
    out = run("- include_fields:\n    fields: [http.a, missing]", evt)
    assert out == {"@timestamp": "t", "@metadata": {"beat": "p"}, "type": "http", "http": {"a": 1}}


# -- moving ---------------------------------------------------------------------------------------------------


def test_rename_doc_example() -> None:
    cfg = "- rename:\n    fields:\n      - from: a.g\n        to: e.d\n    ignore_missing: false\n    fail_on_error: true"
    assert run(cfg, {"a": {"g": 1, "h": 2}}) == {"a": {"h": 2}, "e": {"d": 1}}
    # a → a.b: deleted first, so it works (libbeat's rule).
    assert run("- rename: {fields: [{from: a, to: a.b}]}", {"a": 1}) == {"a": {"b": 1}}


def test_rename_fail_on_error_restores_the_event() -> None:
    cfg = "- rename: {fields: [{from: a, to: b}, {from: c, to: d}]}"
    err = fails(cfg, {"a": 1, "c": 2, "d": 3})
    assert err.event == {
        "a": 1,
        "c": 2,
        "d": 3,
        "error": {
            "message": "Failed to rename fields in processor: target field d already exists, drop or rename this field first"
        },
    }
    # fail_on_error false: the failing pair is skipped, the others are done, no error.
    out = run(
        "- rename: {fields: [{from: a, to: b}, {from: c, to: d}], fail_on_error: false}",
        {"a": 1, "c": 2, "d": 3},
    )
    assert out == {"b": 1, "c": 2, "d": 3}
    assert run("- rename: {fields: [{from: x, to: y}], ignore_missing: true}", {"a": 1}) == {"a": 1}


def test_copy_fields_doc_example() -> None:
    cfg = "- copy_fields:\n    fields:\n      - from: message\n        to: event.original\n    fail_on_error: false\n    ignore_missing: true"
    out = run(cfg, {"message": "my-interesting-message"})
    assert out == {"message": "my-interesting-message", "event": {"original": "my-interesting-message"}}
    src = {"a": {"b": [1]}}
    out = run("- copy_fields: {fields: [{from: a, to: c}]}", src)
    out["c"]["b"].append(2)
    assert out["a"] == {"b": [1]}  # a deep copy
    err = fails("- copy_fields: {fields: [{from: a, to: a}]}", {"a": 1})
    assert "target field a already exists" in str(err)


def test_replace_doc_example() -> None:
    cfg = '- replace:\n    fields:\n      - field: "file.path"\n        pattern: "/usr/"\n        replacement: "/usr/local/"'
    assert run(cfg, {"file": {"path": "/usr/bin"}}) == {"file": {"path": "/usr/local/bin"}}
    # Go's replacement templates: $1, ${name}.
    cfg = r"- replace: {fields: [{field: a, pattern: '(\w+)@(\w+)', replacement: '$2 at ${1}'}]}"
    assert run(cfg, {"a": "me@home"}) == {"a": "home at me"}
    err = fails("- replace: {fields: [{field: a, pattern: x, replacement: y}]}", {"a": 5})
    assert (
        err.event["error"]["message"]
        == "Failed to replace fields in processor: key 'a' expected type string, but got int with value '5'"
    )


def test_truncate_fields_doc_example() -> None:
    cfg = "- truncate_fields:\n    fields:\n      - message\n    max_characters: 5\n    fail_on_error: false\n    ignore_missing: true"
    assert run(cfg, {"message": "hello world"}) == {"message": "hello", "log": {"flags": ["truncated"]}}
    assert run(cfg, {"message": "hi"}) == {"message": "hi"}
    assert run(cfg, {}) == {}
    # max_bytes counts UTF-8 bytes.
    assert run("- truncate_fields: {fields: [m], max_bytes: 3}", {"m": "héllo"})["m"] == "hé"
    err = fails("- truncate_fields: {fields: [m], max_bytes: 3}", {"m": 1})
    assert str(err) == "Failed to truncate fields: value cannot be truncated: 1"


# -- decoding --------------------------------------------------------------------------------------------------


def test_decode_json_fields_doc_example() -> None:
    cfg = """
    - decode_json_fields:
        fields: ["field1", "field2"]
        process_array: false
        max_depth: 1
        target: ""
        overwrite_keys: false
        add_error_key: true
    """
    err = fails(cfg, {"field1": '{"a": 1, "b": {"c": "d"}}', "field2": "not json", "a": 5})
    out = err.event
    assert out["a"] == 5  # not overwritten
    assert out["b"] == {"c": "d"}
    assert out["error"]["type"] == "json"
    assert out["error"]["field"] == "field2"
    assert out["error"]["message"].startswith("parsing input as JSON: ")


def test_decode_json_fields_in_place_depth_and_options() -> None:
    inner = '{"x": "{\\"y\\": 1}"}'
    assert run("- decode_json_fields: {fields: [m]}", {"m": inner}) == {"m": {"x": '{"y": 1}'}}
    assert run("- decode_json_fields: {fields: [m], max_depth: 2}", {"m": inner}) == {"m": {"x": {"y": 1}}}
    assert run("- decode_json_fields: {fields: [m], target: t}", {"m": "[1, 2]"}) == {
        "m": "[1, 2]",
        "t": [1, 2],
    }
    out = run(
        "- decode_json_fields: {fields: [m], target: '', overwrite_keys: true}", {"m": '{"a": 2}', "a": 1}
    )
    assert out["a"] == 2
    out = run("- decode_json_fields: {fields: [m], target: t, expand_keys: true}", {"m": '{"a.b": 1}'})
    assert out["t"] == {"a": {"b": 1}}
    out = run(
        "- decode_json_fields: {fields: [m], document_id: id, target: t}", {"m": '{"id": "k1", "v": 1}'}
    )
    assert out["t"] == {"v": 1} and out["@metadata"] == {"_id": "k1"}
    assert run("- decode_json_fields: {fields: [m]}", {"m": 5}) == {"m": 5}  # not a string: left alone


def test_decode_base64_field_doc_example() -> None:
    cfg = '- decode_base64_field:\n    field:\n      from: "field1"\n      to: "field2"\n    ignore_missing: false\n    fail_on_error: true'
    enc = base64.b64encode(b"correct data").decode()
    assert run(cfg, {"field1": enc}) == {"field1": enc, "field2": "correct data"}
    err = fails(cfg, {"field1": "bad data!"})
    assert err.event["error"]["message"].startswith(
        "failed to decode base64 fields in processor: error trying to decode bad data!"
    )
    assert "field2" not in err.event
    # No "to": decoded in place; padding is optional.
    assert run("- decode_base64_field: {field: {from: f}}", {"f": "aGk"}) == {"f": "hi"}


def test_decompress_gzip_field_doc_example() -> None:
    cfg = '- decompress_gzip_field:\n    field:\n      from: "field1"\n      to: "field2"\n    ignore_missing: false\n    fail_on_error: true'
    data = gzip.compress(b"decompressed data").decode("latin-1")
    assert run(cfg, {"field1": data}) == {"field1": data, "field2": "decompressed data"}
    err = fails(cfg, {"field1": "not gzip"})
    assert err.event["error"]["message"].startswith(
        "Failed to decompress field in decompress_gzip_field processor"
    )
    bomb = gzip.compress(b"\0" * (20 << 20)).decode("latin-1")
    err = fails(cfg, {"field1": bomb})
    assert "more than" in str(err)


def test_urldecode_doc_example() -> None:
    cfg = '- urldecode:\n    fields:\n      - from: "field1"\n        to: "field2"\n    ignore_missing: false\n    fail_on_error: true'
    assert run(cfg, {"field1": "correct%20data+here"}) == {
        "field1": "correct%20data+here",
        "field2": "correct data here",
    }
    err = fails(cfg, {"field1": "Hello%G0"})
    assert err.event["error"]["message"] == (
        'failed to decode fields in urldecode processor: error trying to URL-decode Hello%G0: invalid URL escape "%G0"'
    )


def test_convert_doc_example() -> None:
    cfg = """
    - convert:
        fields:
          - {from: "src_ip", to: "source.ip", type: "ip"}
          - {from: "src_port", to: "source.port", type: "integer"}
        ignore_missing: true
        fail_on_error: false
    """
    out = run(cfg, {"src_ip": "192.168.1.1", "src_port": "8080"})
    assert out == {"src_ip": "192.168.1.1", "src_port": "8080", "source": {"ip": "192.168.1.1", "port": 8080}}
    # A value that does not convert is skipped (fail_on_error false), a missing one too.
    assert run(cfg, {"src_ip": "nope", "src_port": "80"}) == {
        "src_ip": "nope",
        "src_port": "80",
        "source": {"port": 80},
    }


@pytest.mark.parametrize(
    ("typ", "value", "want"),
    [
        ("integer", "0x1F", 31),
        ("integer", 2.9, 2),
        ("integer", 2**31, -(2**31)),
        ("long", "-12", -12),
        ("float", "1.1", 1.1),
        ("double", 3, 3.0),
        ("string", 1.5, "1.5"),
        ("string", 1e21, "1e+21"),
        ("string", True, "true"),
        ("boolean", "T", True),
        ("boolean", "false", False),
        ("ip", "::1", "::1"),
    ],
)
def test_convert_types(typ: str, value: Any, want: Any) -> None:
    out = run(f"- convert: {{fields: [{{from: a, type: {typ}}}]}}", {"a": value})
    assert out["a"] == want and type(out["a"]) is type(want)


def test_convert_errors() -> None:
    err = fails("- convert: {fields: [{from: a, type: integer}]}", {"a": "x"})
    assert str(err).startswith(
        "failed in processor.convert: conversion of field [a] to type [integer] failed: unable to convert value [x]"
    )
    err = fails("- convert: {fields: [{from: a, to: b, type: ip}], tag: t1}", {})
    assert str(err).startswith(
        "failed in processor.convert with instance_id=t1: conversion of field [a] to type [ip] with target field [b] failed: field [a] is missing"
    )
    out = run("- convert: {fields: [{from: a, to: b, type: long}], mode: rename}", {"a": "5"})
    assert out == {"b": 5}


def test_dissect_doc_example() -> None:
    cfg = """
    - dissect:
        tokenizer: '"%{service.pid|integer} - %{service.name} - %{service.status}"'
        field: "message"
        target_prefix: ""
    """
    for line, pid, name, status in [
        ('"321 - App01 - WebServer is up and running"', 321, "App01", "WebServer is up and running"),
        ('"789 - App02 - Database is refreshing tables"', 789, "App02", "Database is refreshing tables"),
    ]:
        out = run(cfg, {"message": line})
        assert out["service"] == {"pid": pid, "name": name, "status": status}


def test_dissect_modifiers_like_libbeat() -> None:
    def d(tok: str, msg: str, **opts: Any) -> Any:
        o = {"tokenizer": tok, **opts}
        return run([{"dissect": o}], {"message": msg}).get("dissect")

    assert d("%{a} %{b}", "hello world") == {"a": "hello", "b": "world"}
    assert d("%{a} %{?skip} %{c}", "1 2 3") == {"a": "1", "c": "3"}
    assert d("%{+a} %{+a}", "hello world") == {"a": "hello world"}
    assert d("%{+a/2} %{+a/1}", "world hello") == {"a": "hello world"}
    assert d("%{*k} %{&k}", "name value") == {"name": "value"}
    assert d("%{a->} %{b}", "x     y") == {"a": "x", "b": "y"}
    assert d("%{a#3}%{b}", "abcdef") == {"a": "abc", "b": "def"}
    assert d("%{a}|%{b}", " x | y ", trim_values="all") == {"a": "x", "b": "y"}
    out = run("- dissect: {tokenizer: '%{a} %{b}'}", {"message": "nomatch"}, group=True)
    assert out["log"]["flags"] == ["dissect_parsing_error"]
    err = fails("- dissect: {tokenizer: '%{a}'}", {"message": "x", "dissect": {"a": 1}})
    assert "cannot override existing key with `dissect.a`" in str(err)


def test_extract_array_doc_example() -> None:
    cfg = """
    - extract_array:
        field: my_array
        mappings:
          source.ip: 0
          destination.ip: 1
          network.transport: 2
    """
    out = run(cfg, {"my_array": ["127.0.0.1", "8.8.8.8", "udp"]})
    assert out["source"] == {"ip": "127.0.0.1"}
    assert out["destination"] == {"ip": "8.8.8.8"}
    assert out["network"] == {"transport": "udp"}
    err = fails(cfg, {"my_array": ["1.1.1.1"]})
    assert str(err) == "index 1 exceeds length of 1 when processing mapping for field destination.ip"
    assert err.event == {"my_array": ["1.1.1.1"]}  # restored
    out = run("- extract_array: {field: a, mappings: {x: 0, y: 1}, omit_empty: true}", {"a": ["", "v"]})
    assert "x" not in out and out["y"] == "v"


def test_fingerprint_libbeat_vectors() -> None:
    assert run("- fingerprint:\n    fields: [message]", {"message": "hello world"})["fingerprint"] == (
        "50110bbfc1757f21caacc966b33f5ea2235c4176739447e0b3285dec4e1dd2a4"
    )
    evt = {"field1": "foo", "field2": "bar", "unused_field": "baz"}
    for method, want in {
        "md5": "4c45df4792f3ef850c928ec5f5232538",
        "sha1": "22f76427d626516d3f7a05785165b99617683b22",
        "sha256": "1208288932231e313b369bae587ff574cd3016a408e52e7128d7bee752674003",
        "sha384": "295adfe0bc03908948e4b0b6a54f441767867e426dda590430459c8a147fbba242a38cba282adee78335b9e08877b86c",
        "xxhash": "37bc50682fba6686",
    }.items():
        assert (
            run(f"- fingerprint: {{fields: [field1, field2], method: {method}}}", dict(evt))["fingerprint"]
            == want
        )
    nested = {"field1": "foo", "field2": "bar", "nested": {"field": "qux"}}
    for enc, want in {
        "base32": "JHYV67ADYYDLJPPUH5QEQGCCSVH7PNC2AIFCFIOQSEOXN4LQY6MA====",
        "base64": "SfFffAPGBrS99D9gSBhClU/3tFoCCiKh0JEddvFwx5g=",
    }.items():
        cfg = f"- fingerprint: {{fields: [field2, nested.field], encoding: {enc}}}"
        assert run(cfg, dict(nested))["fingerprint"] == want


def test_fingerprint_failures_drop_the_event_like_libbeat() -> None:
    err = fails("- fingerprint: {fields: [missing]}", {"a": 1})
    assert err.event is None
    assert "failed to find field [missing] in event" in str(err)
    assert run("- fingerprint: {fields: [missing]}", {"a": 1}, group=True) is None
    assert "fingerprint" in run("- fingerprint: {fields: [missing, a], ignore_missing: true}", {"a": 1})


def test_go_float_text() -> None:
    assert [format_float(f) for f in (1.5, 3.0, 1e6, 1e21, 1.25e-5, 0.0001, 123456789.0)] == [
        "1.5",
        "3",
        "1e+06",
        "1e+21",
        "1.25e-05",
        "0.0001",
        "1.23456789e+08",
    ]


# -- enrichment -------------------------------------------------------------------------------------------------


def test_add_network_direction_doc_example() -> None:
    cfg = "- add_network_direction:\n    source: source.ip\n    destination: destination.ip\n    target: network.direction\n    internal_networks: [ private ]"
    for s, d, want in [
        ("10.0.0.1", "10.0.0.2", "internal"),
        ("10.0.0.1", "8.8.8.8", "outbound"),
        ("8.8.8.8", "192.168.1.1", "inbound"),
        ("8.8.8.8", "1.1.1.1", "external"),
    ]:
        out = run(cfg, {"source": {"ip": s}, "destination": {"ip": d}})
        assert out["network"]["direction"] == want
    assert run(cfg, {"source": {"ip": "x"}, "destination": {"ip": "8.8.8.8"}}) == {
        "source": {"ip": "x"},
        "destination": {"ip": "8.8.8.8"},
    }


def test_community_id_doc_examples() -> None:
    # The Community ID spec's own vector (TCP 128.232.110.120:34855 → 66.35.250.204:80).
    evt = {
        "source": {"ip": "128.232.110.120", "port": 34855},
        "destination": {"ip": "66.35.250.204", "port": 80},
        "network": {"transport": "TCP"},
    }
    assert run("- community_id: ~", evt)["network"]["community_id"] == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert run("- community_id: {seed: 1}", {**evt, "network": {"transport": "tcp"}})["network"][
        "community_id"
    ] == ("1:3V71V58M3Ksw/yuFALMcW0LAHvc=")
    cfg = """
    - community_id:
        fields:
          source_ip: my_source_ip
          source_port: my_source_port
          destination_ip: my_dest_ip
          destination_port: my_dest_port
          iana_number: my_iana_number
          transport: my_transport
          icmp_type: my_icmp_type
          icmp_code: my_icmp_code
        target: network.community_id
    """
    custom = {
        "my_source_ip": "128.232.110.120",
        "my_source_port": 34855,
        "my_dest_ip": "66.35.250.204",
        "my_dest_port": 80,
        "my_iana_number": 6,
    }
    assert run(cfg, custom)["network"]["community_id"] == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    icmp = {
        "source": {"ip": "192.168.0.89"},
        "destination": {"ip": "192.168.0.1"},
        "network": {"transport": "icmp"},
        "icmp": {"type": 8, "code": 0},
    }
    assert run("- community_id: ~", icmp)["network"]["community_id"] == "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="
    # Missing data: the event is left alone; an existing target is kept.
    assert run("- community_id: ~", {"source": {"ip": "1.1.1.1"}}) == {"source": {"ip": "1.1.1.1"}}
    assert (
        run("- community_id: ~", {**evt, "network": {"transport": "tcp", "community_id": "x"}})["network"][
            "community_id"
        ]
        == "x"
    )


def test_registered_domain_doc_example() -> None:
    cfg = """
    - registered_domain:
        field: dns.question.name
        target_field: dns.question.registered_domain
        target_etld_field: dns.question.top_level_domain
        target_subdomain_field: dns.question.sudomain
        ignore_missing: true
        ignore_failure: true
    """
    out = run(cfg, {"dns": {"question": {"name": "www.google.co.uk"}}})
    assert out["dns"]["question"] == {
        "name": "www.google.co.uk",
        "registered_domain": "google.co.uk",
        "top_level_domain": "co.uk",
        "sudomain": "www",
    }
    assert run(cfg, {}) == {}
    assert run(cfg, {"dns": {"question": {"name": "co.uk"}}}) == {"dns": {"question": {"name": "co.uk"}}}
    err = fails("- registered_domain: {field: d, target_field: r}", {"d": "co.uk"})
    assert "cannot derive eTLD+1" in str(err)
    assert (
        run("- registered_domain: {field: d, target_field: r}", {"d": "foo.bar.example.com"})["r"]
        == "example.com"
    )


def test_add_id_doc_example() -> None:
    out = run("- add_id: ~", {"@metadata": {}})
    rid = out["@metadata"]["_id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{20}", rid)
    assert base64.urlsafe_b64decode(rid + "=" * (-len(rid) % 4)).__len__() == 15
    ids = {run("- add_id: {target_field: my_id}", {})["my_id"] for _ in range(200)}
    assert len(ids) == 200


def test_add_locale_doc_example(monkeypatch: pytest.MonkeyPatch) -> None:
    from shipper.pipeline.processors import transform

    monkeypatch.setattr(transform, "local_zone", lambda: ("EST", -5 * 3600))
    assert run("- add_locale: ~", {}) == {"event": {"timezone": "-05:00"}}
    assert run("- add_locale:\n    format: abbreviation", {}) == {"event": {"timezone": "EST"}}
    monkeypatch.setattr(transform, "local_zone", lambda: ("IST", 5 * 3600 + 1800))
    assert run("- add_locale: ~", {}) == {"event": {"timezone": "+05:30"}}


def test_translate_sid_well_known() -> None:
    cfg = """
    - translate_sid:
        field: winlog.event_data.MemberSid
        account_name_target: user.name
        domain_target: user.domain
        account_type_target: user.type
        ignore_missing: true
        ignore_failure: true
    """
    out = run(cfg, {"winlog": {"event_data": {"MemberSid": "S-1-5-32-544"}}})
    assert out["user"] == {"name": "Administrators", "domain": "BUILTIN", "type": "Alias"}
    assert run(cfg, {"winlog": {"event_data": {"MemberSid": "S-1-5-21-1-2-3-1001"}}})["winlog"]
    err = fails("- translate_sid: {field: s, account_name_target: n}", {"s": "S-1-5-21-1-2-3-1001"})
    assert "No mapping" in str(err)


def test_rate_limit_doc_examples() -> None:
    now = [0.0]
    ctx = Context(clock=lambda: now[0])
    p = chain('- rate_limit:\n    limit: "2/s"', ctx=ctx)
    got = [p({"n": i}) is not None for i in range(4)]
    assert got == [True, True, False, False]
    now[0] = 0.5  # one token back
    assert p({}) is not None and p({}) is None
    # Per field values: each key has its own bucket.
    p = chain('- rate_limit:\n    fields: [cloud.account.id]\n    limit: "1/m"', ctx=ctx)
    assert p({"cloud": {"account": {"id": "a"}}}) is not None
    assert p({"cloud": {"account": {"id": "a"}}}) is None
    assert p({"cloud": {"account": {"id": "b"}}}) is not None
    assert ctx.stats["processors.rate_limit.dropped"] == 4


def test_detect_mime_type_stock_config() -> None:
    cfg = "- detect_mime_type:\n    field: http.request.body.content\n    target: http.request.mime_type"

    def mime(body: str) -> Any:
        return run(cfg, {"http": {"request": {"body": {"content": body}}}})["http"]["request"].get(
            "mime_type"
        )

    assert mime("<html>Test</html>") == "text/html; charset=utf-8"
    assert mime('{"a": 1}') == "application/json"
    assert mime('{"a": "é"}') == "application/json"
    assert mime("<root><b>1</b></root>") == "text/xml"
    assert mime("<a href=x>link</a>") == "text/html; charset=utf-8"  # Go's sniffer: <A is HTML
    assert mime("plain words") == "text/plain; charset=utf-8"
    assert mime("\x89PNG\r\n\x1a\n....") == "image/png"
    assert mime("\x00\x01\x02\x03\x04") is None


# -- script --------------------------------------------------------------------------------------------------


def test_script_doc_examples() -> None:
    cfg = '- script:\n    lang: javascript\n    source: >\n      function process(event) {\n          event.Tag("js");\n      }'
    assert run(cfg, {"a": 1}) == {"a": 1, "tags": ["js"]}
    params = """
    - script:
        lang: javascript
        tag: my_filter
        params:
          threshold: 15
        source: >
          var params = {threshold: 42};
          function register(scriptParams) {
              params = scriptParams;
          }
          function process(event) {
              if (event.Get("severity") < params.threshold) {
                  event.Cancel();
              }
          }
    """
    p = chain(params)
    assert p({"severity": 10}) is None
    assert p({"severity": 20}) == {"severity": 20}


def test_script_test_function_and_event_api() -> None:
    src = """
    function process(event) {
        if (event.Get("event.code") === 1102) {
            event.Put("event.action", "cleared");
        }
        return event;
    }
    function test() {
        var event = process(new Event({event: {code: 1102}}));
        if (event.Get("event.action") !== "cleared") {
            throw "expected event.action === cleared";
        }
    }
    """
    p = chain([{"script": {"lang": "javascript", "source": src}}])
    assert p({"event": {"code": 1102}}) == {"event": {"code": 1102, "action": "cleared"}}
    broken = src.replace('"cleared");', '"other");')
    with pytest.raises(ConfigError, match=r"expected event\.action === cleared"):
        chain([{"script": {"lang": "javascript", "source": broken}}])
    api = """
    function process(e) {
        e.Put("a.b", 1);
        e.AppendTo("list", "x"); e.AppendTo("list", "y"); e.AppendTo("list", "x");
        e.Rename("old", "new");
        e.Delete("gone");
        if (e.Get("missing") !== null) throw "not null";
        e.Tag("t"); e.Tag("t");
    }
    """
    out = run(
        [{"script": {"lang": "javascript", "source": api}}], {"old": 5, "gone": 1, "@metadata": {"k": "v"}}
    )
    assert out == {"a": {"b": 1}, "list": ["x", "y"], "new": 5, "tags": ["t"], "@metadata": {"k": "v"}}


def test_script_exceptions_and_timeout() -> None:
    src = "function process(e) { throw new Error('boom'); }"
    err = fails([{"script": {"lang": "javascript", "source": src}}], {"a": 1})
    assert err.event["tags"] == ["_js_exception"]
    assert "boom" in err.event["error"]["message"]
    loop = "function process(e) { while (true) {} }"
    err = fails([{"script": {"lang": "javascript", "source": loop, "timeout": "100ms"}}], {"a": 1})
    assert "interrupted" in str(err)


def test_script_files(tmp_path: Any) -> None:
    (tmp_path / "a.js").write_text("function process(e) { e.Put('from_file', helper()); }")
    (tmp_path / "b.js").write_text("function helper() { return 7; }")
    ctx = Context(config_dir=str(tmp_path))
    assert chain([{"script": {"lang": "js", "files": ["*.js"]}}], ctx=ctx)({}) == {"from_file": 7}
    assert chain([{"script": {"lang": "js", "file": str(tmp_path / "a.js")}}], ctx=ctx) is not None
    with pytest.raises(ConfigError, match="no sources were found"):
        chain([{"script": {"lang": "js", "file": "nope.js"}}], ctx=ctx)


# -- this machine ------------------------------------------------------------------------------------------


def test_add_host_metadata_doc_example() -> None:
    import socket

    cfg = """
    - add_host_metadata:
        cache.ttl: 5m
        geo:
          name: nyc-dc1-rack1
          location: 40.7128, -74.0060
          continent_name: North America
          country_iso_code: US
          region_name: New York
          region_iso_code: NY
          city_name: New York
    """
    out = run(cfg, {"host": {"name": "beat-name"}})
    host = out["host"]
    assert host["hostname"] == socket.gethostname()
    assert host["name"] == socket.gethostname().lower()  # the processor's name wins, as in libbeat
    assert host["os"]["type"] == "linux" and host["os"]["kernel"]
    assert host["architecture"]
    assert host["geo"]["city_name"] == "New York" and host["geo"]["location"] == "40.7128, -74.0060"
    assert all(re.fullmatch(r"[0-9A-F]{2}(-[0-9A-F]{2}){5}", m) for m in host.get("mac", []))
    assert "127.0.0.1" not in host.get("ip", [])
    # netinfo off, a fixed name; replace_fields false keeps a host.* that has more than a name.
    out = run("- add_host_metadata: {netinfo.enabled: false, name: probe-7}", {})
    assert out["host"]["name"] == "probe-7" and "ip" not in out["host"]
    kept = {"host": {"name": "x", "id": "custom"}}
    assert run("- add_host_metadata: {replace_fields: false}", kept) == kept
    assert run("- add_host_metadata: {replace_fields: false}", {"host": {"name": "x"}})["host"]["hostname"]


def test_packetbeat_stock_host_condition() -> None:
    cfg = """
    - if.contains.tags: forwarded
      then:
        - drop_fields:
            fields: [host]
      else:
        - add_host_metadata: ~
    """
    assert "host" not in run(cfg, {"tags": ["forwarded"], "host": {"name": "b"}})
    assert "os" in run(cfg, {"host": {"name": "b"}})["host"]


def test_add_observer_metadata_doc_example() -> None:
    import socket

    cfg = """
    - add_observer_metadata:
        cache.ttl: 5m
        geo:
          name: nyc-dc1-rack1
          location: 40.7128, -74.0060
          city_name: New York
    """
    out = run(cfg, {})
    assert out["observer"]["hostname"] == socket.gethostname()
    assert out["observer"]["geo"]["name"] == "nyc-dc1-rack1"
    assert run(cfg, {"observer": {"x": 1}}) == {"observer": {"x": 1}}  # exists: kept
    assert (
        run("- add_observer_metadata: {overwrite: true}", {"observer": {"x": 1}})["observer"].get("x") is None
    )


def test_add_process_metadata_doc_example() -> None:
    import os
    import sys

    cfg = """
    - add_process_metadata:
        match_pids: [system.process.ppid]
        target: system.process.parent
    """
    out = run(cfg, {"system": {"process": {"ppid": os.getpid()}}})
    proc = out["system"]["process"]["parent"]["process"]
    assert proc["pid"] == os.getpid()
    assert proc["parent"]["pid"] == os.getppid()
    assert proc["executable"] == os.path.realpath(sys.executable)
    assert proc["args"][0].endswith(("python", "python3")) or "python" in proc["args"][0]
    assert proc["title"] == " ".join(proc["args"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", proc["start_time"])
    assert proc["owner"]["id"] == str(os.geteuid())
    # Defaults: process.pid; the target already holds it, so overwrite_keys is needed.
    err = fails("- add_process_metadata: {ignore_missing: false}", {"process": {"pid": os.getpid()}})
    assert "already exists and overwrite_keys is false" in str(err)
    out = run("- add_process_metadata: {overwrite_keys: true}", {"process": {"pid": os.getpid()}})
    assert out["process"]["name"]
    assert run("- add_process_metadata: ~", {"a": 1}) == {"a": 1}  # no pid field: ignored
    err = fails("- add_process_metadata: {ignore_missing: false}", {"a": 1})
    assert str(err) == "none of the fields in match_pids found in the event"
    err = fails("- add_process_metadata: {overwrite_keys: true}", {"process": {"pid": 2**22 + 12345}})
    assert str(err) == "process not found"
