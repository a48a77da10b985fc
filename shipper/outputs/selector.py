"""libbeat's output selectors (``libbeat/outputs/outil``): ``topic`` plus ``topics`` rules.

Each rule of ``topics`` is ``{topic: <format string>, mappings: {value: name}, default:
<name>, when: <condition>}``; rules are tried in order and the first that yields a
non-empty name wins, then the single ``topic``. A rule whose format string lacks a field
yields its ``default`` (or nothing, so the next rule is tried); ``mappings`` replaces the
formatted value by its mapping (``default`` when unmapped); ``when`` skips the rule for
events that fail the condition. Case is kept (Kafka topics are case-sensitive; the
Elasticsearch index selector lowercases, this one does not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shipper.outputs.conditions import Condition, compile_condition
from shipper.outputs.fmtstr import FieldMissing, FormatString, compile_format

Event = Mapping[str, Any]


class Rule:
    __slots__ = ("condition", "default", "fmt", "mappings")

    def __init__(
        self,
        fmt: FormatString,
        default: str = "",
        mappings: dict[str, str] | None = None,
        condition: Condition | None = None,
    ) -> None:
        self.fmt = fmt
        self.default = default
        self.mappings = mappings or None
        self.condition = condition

    def select(self, event: Event) -> str:
        if self.condition is not None and not self.condition.check(event):
            return ""
        try:
            name = self.fmt.run(event)
        except FieldMissing:
            return self.default
        if not name:
            return self.default
        if self.mappings is not None:
            return self.mappings.get(name) or self.default
        return name


class Selector:
    """``select(event)`` → the name, or "" when no rule applies."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.const: str | None = None
        if len(rules) == 1 and rules[0].fmt.is_const() and rules[0].condition is None:
            r = rules[0]
            name = r.fmt.run({}) or r.default
            self.const = (r.mappings.get(name) or r.default) if r.mappings else name
        self.select: Callable[[Event], str] = self._const if self.const is not None else self._select

    def _const(self, _event: Event) -> str:
        return self.const or ""

    def _select(self, event: Event) -> str:
        for r in self.rules:
            name = r.select(event)
            if name:
                return name
        return ""


def flatten_mappings(raw: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``mappings`` keys may contain dots, which the config loader expands into maps."""
    out: dict[str, str] = {}
    for k, v in raw.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_mappings(v, key + "."))
        elif isinstance(v, str | int | float) and not isinstance(v, bool):
            out[key] = str(v)
        else:
            raise ValueError(f"mappings.{key}: expected a string, got {v!r}")
    return out


def build_rule(
    topic: str, default: str = "", mappings: Mapping[str, Any] | None = None, when: Any = None
) -> Rule:
    """One rule; raises ValueError (format string, condition or mapping problems)."""
    fmt = compile_format(topic)
    cond = compile_condition(when) if when is not None else None
    return Rule(fmt, default, flatten_mappings(mappings) if mappings else None, cond)


def build_selector(single: str, rules: list[Rule]) -> Selector:
    """``topics`` rules first, then ``topic`` (libbeat's BuildSelectorFromConfig order)."""
    all_rules = list(rules)
    if single:
        all_rules.append(build_rule(single))
    return Selector(all_rules)
