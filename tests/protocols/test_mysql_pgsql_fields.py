"""Every MySQL/PostgreSQL field the events emit is declared in the protocol's fields.yml,
with a type that matches the emitted value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT, decode_file, shared_pcap

PY_TYPES = {"long": int, "keyword": str, "text": str}


def declared(proto: str) -> dict[str, str]:
    doc = yaml.safe_load(Path(ROOT / "protocols" / proto / "fields.yml").read_text())
    out: dict[str, str] = {}

    def walk(prefix: str, fields: list[dict[str, Any]]) -> None:
        for f in fields:
            name = f"{prefix}{f['name']}"
            assert f.get("description"), name
            if f["type"] == "group":
                walk(name + ".", f["fields"])
            else:
                out[name] = f["type"]

    (key,) = doc
    assert key["key"] == proto
    walk("", key["fields"])
    return out


def leaves(prefix: str, obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, dict):
            out.update(leaves(f"{prefix}{k}.", v))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize(
    ("proto", "captures"),
    [
        ("mysql", ["mysql_connection", "mysql_err_database_not_selected", "mysql_long_result"]),
        ("pgsql", ["pgsql_request_response", "pgsql_insert_error"]),
    ],
)
def test_emitted_fields_are_declared(proto: str, captures: list[str]) -> None:
    decl = declared(proto)
    seen: set[str] = set()
    for name in captures:
        for evt in decode_file(shared_pcap(name), {proto: {"send_request": True, "send_response": True}}):
            for field, value in leaves(f"{proto}.", evt[proto]).items():
                assert field in decl, f"{field} is not declared in protocols/{proto}/fields.yml"
                assert isinstance(value, PY_TYPES[decl[field]]), (field, value, decl[field])
                seen.add(field)
    assert seen == set(decl), f"declared but never seen: {set(decl) - seen}"
