"""``packetbeat.flows`` settings: parsing, Packetbeat's validation, the wiring to the decoder
and the envelope."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from protocols.flows import FlowConfig
from shipper.agent.beat import Beat
from shipper.agent.config import ConfigError
from shipper.agent.settings import load_settings

S = 1_000_000_000


def load(tmp_path: Path, text: str) -> tuple[object, list[str]]:
    path = tmp_path / "packetbeat.yml"
    path.write_text(textwrap.dedent(text))
    return load_settings(str(path), [], required=True)


def test_flows_section_is_read_without_warnings(tmp_path: Path) -> None:
    settings, warnings = load(
        tmp_path,
        """
        packetbeat.flows:
          timeout: 45s
          period: -1s
          enable_delta_flow_reports: true
          allow_mismatched_eth: true
          keep_null: true
          index: "flows-%{[agent.version]}"
          fields: {site: lab}
          fields_under_root: true
          tags: [flows]
          processors:
          - drop_fields: {fields: [source.mac]}
          max_flows: 500
        packetbeat.protocols:
        - type: icmp
          enabled: true
          transaction_timeout: 3s
        """,
    )
    assert warnings == []
    flows = settings.packetbeat.flows  # type: ignore[attr-defined]
    assert flows.flow_config() == FlowConfig(
        timeout_ns=45 * S, period_ns=-S, delta=True, allow_mismatched_eth=True, max_flows=500
    )
    beat = Beat(settings)  # type: ignore[arg-type]
    dec = beat.new_decoder()
    assert dec.flows is not None and dec.flows.tick_ns == 45 * S and not dec.flows.eth
    assert dec.registry.icmp_plugin is not None and dec.registry.icmp_plugin.timeout_ns == 3 * S
    env = beat.build_envelope()
    assert env.per_protocol["flow"] == {
        "index": "flows-%{[agent.version]}",
        "fields": {"site": "lab"},
        "fields_under_root": True,
        "tags": ["flows"],
    }
    # The flows' processors run on flow events (type: flow) only.
    assert env.processing is not None and set(env.processing.per_type) == {"flow"}


def test_flows_disabled_or_absent_means_no_flow_table(tmp_path: Path) -> None:
    settings, _ = load(tmp_path, "packetbeat.flows: {enabled: false}\n")
    assert Beat(settings).new_decoder().flows is None  # type: ignore[arg-type]
    settings, _ = load(tmp_path, "packetbeat.protocols: [{type: icmp}]\n")
    assert Beat(settings).new_decoder().flows is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "message", "path"),
    [
        ("timeout: 500ms", "timeout must be >= 1s", "packetbeat.flows"),
        ("period: 200ms", "period must be -1s", "packetbeat.flows"),
        ("period: -2s", "requires value >= -1", "packetbeat.flows.period"),
        ("max_flows: 0", "requires value >= 1", "packetbeat.flows.max_flows"),
    ],
)
def test_packetbeat_timing_rules_are_config_errors(
    tmp_path: Path, body: str, message: str, path: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load(tmp_path, f"packetbeat.flows: {{{body}}}\n")
    assert info.value.path == path
