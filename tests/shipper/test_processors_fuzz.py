"""No event, however odd, makes a processor chain raise: every processor and condition on
random JSON-like events (hypothesis), through the pipeline's error handling."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.stats import Counters
from shipper.pipeline.processors import Context, Processing

CHAIN = yaml.safe_load(
    r"""
- drop_event.when.or:
    - network.a.b: [private, '10.0.0.0/8']
    - regexp.a.c: '^x+$'
    - range.a.b.gt: 5
    - equals.b: 1
    - contains.c: z
    - has_fields: [zz]
- add_fields: {target: a.b, fields: {x: 1}}
- add_labels: {labels: {k: v}}
- add_tags: {tags: [t], target: a}
- drop_fields: {fields: [b, '/^c/'], ignore_missing: true}
- include_fields.when.equals.only: true
  include_fields.fields: [a]
- rename: {fields: [{from: a, to: a.b}, {from: b, to: c.d}]}
- copy_fields: {fields: [{from: a.b, to: e}]}
- replace: {fields: [{field: a, pattern: 'x', replacement: y}]}
- truncate_fields: {fields: [a, b], max_bytes: 2}
- convert: {fields: [{from: a, type: integer}, {from: b, to: f, type: ip}]}
- extract_array: {field: a, mappings: {g: 1}}
- decode_json_fields: {fields: [a, b], target: "", overwrite_keys: true, expand_keys: true, add_error_key: true}
- decode_base64_field: {field: {from: a, to: h}}
- decompress_gzip_field: {field: {from: b, to: i}}
- urldecode: {fields: [{from: a, to: j}]}
- dissect: {tokenizer: '%{k} %{+k} %{l|integer}', field: a}
- fingerprint: {fields: [a, b]}
- community_id: {fields: {source_ip: a, destination_ip: b, transport: c}}
- registered_domain: {field: a, target_field: m}
- add_network_direction: {source: a, destination: b, target: n, internal_networks: [private]}
- translate_sid: {field: a, account_name_target: o}
- detect_mime_type: {field: a, target: p}
- script:
    lang: javascript
    source: >
      function process(e) { e.Put("q", e.Get("a")); if (e.Get("cancel") === true) e.Cancel(); }
"""
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["10.1.2.3", "x.co.uk", "xxx", "8.8.8.8", "S-1-5-18", "%zz", "aGk=", '{"a.b": 1}']),
)
keys = st.sampled_from(["a", "b", "c", "a.b", "only", "cancel", "e", "@metadata", "error", "tags", "type"])
values = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(keys, kids, max_size=3), max_leaves=10
)
events = st.dictionaries(keys, values, max_size=6)

PROC = Processing.build(CHAIN, {"x": ("packetbeat.protocols.x.processors", CHAIN)}, Context(stats=Counters()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_no_event_makes_the_chain_raise(evt: dict[str, Any]) -> None:
    assert PROC is not None
    out = PROC.client("x", evt)
    if out is not None:
        PROC.run_global(out)
