"""Live-capture settings: the capture filter, interface checks, ``run_as``."""

from __future__ import annotations

import pytest

from shipper.agent.config import ConfigError
from shipper.agent.live import capture_filter, capture_type, check_interfaces
from shipper.agent.settings import Settings, build_settings


def settings(**tree: object) -> Settings:
    pb: dict[str, object] = {"protocols": [{"type": "http", "ports": [80, 8080]}], **tree}
    s, _warnings = build_settings({"packetbeat": pb})
    return s


def test_generated_filter_follows_the_protocols_and_with_vlans() -> None:
    s = settings(interfaces={"device": "lo", "with_vlans": True})
    iface = s.packetbeat.interfaces[0]
    assert (
        capture_filter(s, iface)
        == "tcp port 80 or tcp port 8080 or (vlan and (tcp port 80 or tcp port 8080))"
    )


def test_custom_filter_wins_and_flows_capture_everything() -> None:
    s = settings(interfaces={"device": "lo", "bpf_filter": "udp port 53", "with_vlans": True})
    assert capture_filter(s, s.packetbeat.interfaces[0]) == "udp port 53"
    s = settings(interfaces={"device": "lo"}, flows={"enabled": True})
    assert capture_filter(s, s.packetbeat.interfaces[0]) == ""


def test_capture_types() -> None:
    s = settings(interfaces=[{"device": "lo", "type": t} for t in ("af_packet",)])
    assert capture_type(s.packetbeat.interfaces[0]) == "af_packet"
    for t in ("pcap", "autodetect"):
        s = settings(interfaces={"device": "lo", "type": t})
        assert capture_type(s.packetbeat.interfaces[0]) == "pcap"


@pytest.mark.parametrize(
    ("iface", "extra", "key", "message"),
    [
        ({"device": "nosuch0"}, {}, "packetbeat.interfaces.0.device", "no such device 'nosuch0'"),
        (
            {"device": "lo", "bpf_filter": "tcp port"},
            {},
            "packetbeat.interfaces.0.bpf_filter",
            "syntax error",
        ),
        ({"device": "lo"}, {"run_as": "no-such-user-x"}, "packetbeat.run_as", "no such user"),
    ],
)
def test_check_interfaces_names_the_setting(iface: dict, extra: dict, key: str, message: str) -> None:
    s = settings(interfaces=iface, **extra)
    with pytest.raises(ConfigError) as err:
        check_interfaces(s)
    assert err.value.path == key and message in err.value.message


def test_out_of_range_interface_numbers_fail_when_the_config_is_loaded() -> None:
    for key, value in (("fanout_group", 70000), ("snaplen", 0), ("buffer_size_mb", -1)):
        with pytest.raises(ConfigError) as err:
            settings(interfaces=[{"device": "lo", key: value}])
        assert err.value.path == f"packetbeat.interfaces.0.{key}"
        assert "requires value" in err.value.message


def test_device_by_index_and_any_pass() -> None:
    from capture.devices import list_devices

    idx = next(d.index for d in list_devices() if d.name == "lo")
    check_interfaces(settings(interfaces=[{"device": str(idx)}, {"device": "any"}]))
