"""Shared by the oracle generator and the oracle test: how the synthetic captures are built
and configured, and how events are normalised for comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.protocols.dns_captures import CAPTURES, SERVER
from tests.protocols.dns_wire import QR, RA, RD, A, Capture, a, message, question, rr

DATA = Path(__file__).resolve().parents[1] / "data" / "dns"
CONFIG = (
    "packetbeat.protocols:\n"
    "- type: dns\n"
    "  ports: [53]\n"
    "  include_authorities: true\n"
    "  include_additionals: true\n"
    "  send_request: true\n"
    "  send_response: true\n"
)
OPTIONS = {
    "ports": [53],
    "include_authorities": True,
    "include_additionals": True,
    "send_request": True,
    "send_response": True,
}
SENTINEL_ID = 0xFFFF
#: The shared captures with DNS in them.
SHARED_CAPTURES = (
    "dns_additional",
    "dns_mx",
    "dns_ns",
    "dns_tcp_axfr",
    "dns_txt",
    "dns_udp_edns_ds",
    "http_basicauth",
)
IGNORED = ("agent", "host", "ecs", "@metadata")


def build(name: str) -> Capture:
    """The capture with a sentinel exchange at its end (see gen_dns_oracle)."""
    cap = CAPTURES[name]()
    q = question("sentinel.example", A)
    cap.ts += 5_000_000_000
    cap.exchange(
        ("192.0.2.250", 65000),
        SERVER,
        message(SENTINEL_ID, RD, [q]),
        message(SENTINEL_ID, QR | RD | RA, [q], [rr("sentinel.example", A, a("192.0.2.250"))]),
    )
    return cap


def strip(evt: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in evt.items() if k not in IGNORED}


def drop_sentinel(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("dns", {}).get("id") != SENTINEL_ID]


def expected(name: str) -> list[dict[str, Any]]:
    return list(json.loads((DATA / f"{name}.json").read_text()))


def event_key(evt: dict[str, Any]) -> tuple[Any, ...]:
    client = evt.get("client", {})
    return (
        evt.get("@timestamp"),
        client.get("ip"),
        client.get("port"),
        evt.get("dns", {}).get("id"),
        evt.get("dns", {}).get("type"),
        evt.get("status"),
    )
