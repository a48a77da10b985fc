"""wirebeat.reference.yml: every setting the loader knows is in it, commented out with its
real default; every key in it is one the loader accepts; switched on it loads (one output
and one queue at a time), and used as it is it is a working config."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from protocols.registry import available, plugin_class
from shipper.agent.config import expand_dotted, to_plain
from shipper.agent.settings import OUTPUT_MODULES, build_settings, default_tree, load_settings
from tests.helpers import ROOT
from tests.shipper.config_keys import KNOWN_LISTS, commented_settings, known_keys, uncomment

REFERENCE = ROOT / "wirebeat.reference.yml"
TEXT = REFERENCE.read_text()
KNOWN = known_keys()
DOCUMENTED = commented_settings(TEXT, strict=True)
#: Keys shown with an example value rather than their (empty, invalid) default.
EXAMPLES = {
    "output.logstash.hosts": ["localhost:5044"],
    "output.redis.hosts": ["localhost:6379"],
    "output.kafka.hosts": ["localhost:9092"],
    "output.kafka.topic": "packetbeat",
}
IGNORED_NOTE = "accepted without effect"


def documented_keys() -> dict[str, str]:
    out = {}
    for key, value in DOCUMENTED:
        if any(other.startswith(key + ".") for other, _ in DOCUMENTED):
            continue  # a section header (output.kafka:, packetbeat.flows:)
        out[key] = value
    return out


def _field(key: str) -> Any:
    if key in KNOWN:
        return KNOWN[key][0]
    for k, (f, _d) in KNOWN.items():
        if key.startswith(k + ".") and k not in KNOWN_LISTS:
            return f
    return None


def test_every_documented_key_is_accepted() -> None:
    unknown = [k for k in documented_keys() if _field(k) is None and k not in KNOWN_LISTS]
    assert unknown == []


def test_every_known_key_is_documented() -> None:
    docs = documented_keys()
    lists = {k for k, v in docs.items() if v.startswith("[")}
    missing = [k for k in KNOWN if k not in docs and not any(k.startswith(p + ".") for p in lists)]
    assert missing == []
    assert len(KNOWN) > 450


def test_keys_without_effect_say_so() -> None:
    """A key the loader warns about ("accepted for compatibility and has no effect") has a
    comment saying so, and no other key claims it."""
    lines = TEXT.splitlines()
    said = set()
    for i, line in enumerate(lines):
        if IGNORED_NOTE in line.lower() or "refused at load time" in line:
            following = next(x for x in lines[i + 1 :] if not x.strip().startswith("# "))
            said.add(following.strip().lstrip("#").split(":")[0].rsplit(".", 1)[-1])
    ignored = {k.rsplit(".", 1)[1] for k, (f, _d) in KNOWN.items() if f.metadata.get("ignored")}
    assert ignored <= said


def test_as_is_it_is_the_default_config() -> None:
    """Used unchanged: no warning, console output, every protocol on its default ports."""
    settings, warnings = load_settings(str(REFERENCE), [], required=True)
    assert warnings == []
    assert settings.output == {}
    defaults, _ = build_settings(default_tree())
    assert settings.packetbeat.protocols == defaults.packetbeat.protocols
    assert sorted(settings.packetbeat.protocols) == sorted(available())


def variants() -> list[tuple[str, str, str]]:
    out = []
    for output in OUTPUT_MODULES:
        for queue in ("mem", "disk"):
            parts = ["random", "round_robin", "hash"] if output == "kafka" else [""]
            out += [(output, queue, p) for p in parts]
    return out


def switched_on(output: str, queue: str, partition: str, tmp: Path) -> dict[str, Any]:
    tree = expand_dotted(yaml.safe_load(uncomment(TEXT)))
    tree = copy.deepcopy(tree)
    tree["output"] = {output: tree["output"][output]}
    tree["queue"] = {queue: tree["queue"][queue]}
    if partition:
        tree["output"]["kafka"]["partition"] = {partition: tree["output"]["kafka"]["partition"][partition]}
    tree["path"]["data"] = str(tmp / "data")
    return tree


def _lookup(plain: Any, key: str) -> Any:
    parts = key.split(".")
    node = plain
    while parts:
        if isinstance(node, list):
            node = node[0]
        for n in range(len(parts), 0, -1):  # dotted names first (flush.min_events, 6_to_7)
            name = ".".join(parts[:n])
            if isinstance(node, dict) and name in node:
                node = node[name]
                parts = parts[n:]
                break
        else:
            raise KeyError(key)
    return node


@pytest.mark.parametrize(("output", "queue", "partition"), variants())
def test_switched_on_it_loads_with_the_documented_defaults(
    output: str, queue: str, partition: str, tmp_path: Path
) -> None:
    settings, warnings = build_settings(switched_on(output, queue, partition, tmp_path))
    assert [w for w in warnings if "has no effect" not in w] == []
    plain = to_plain(settings)
    plain["packetbeat"]["protocols"] = {k: to_plain(v) for k, v in settings.packetbeat.protocols.items()}
    wrong = []
    for key, (_f, default) in KNOWN.items():
        if key.startswith("output.") and not key.startswith(f"output.{output}."):
            continue
        if key.startswith("queue.") and not key.startswith(f"queue.{queue}."):
            continue
        if key.startswith("output.kafka.partition.") and not key.startswith(
            f"output.kafka.partition.{partition}."
        ):
            continue
        if any(key.startswith(p + ".") for p in KNOWN_LISTS):
            continue  # a list of sections, documented as []
        if key == "path.data":
            continue
        expected = EXAMPLES.get(key, default)
        if key.startswith("packetbeat.protocols.") and key.endswith(".ports"):
            expected = list(plugin_class(key.split(".")[2]).default_ports)
        if key == "packetbeat.flows.enabled":
            expected = True
        got = _lookup(plain, key)
        if attrs.has(type(got)):
            got = to_plain(got)
        if got != expected:
            wrong.append(f"{key}: documented {got!r}, default {expected!r}")
    assert wrong == []
