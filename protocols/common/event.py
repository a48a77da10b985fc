"""The common part of a transaction event (Packetbeat's ``pb.Fields``).

Protocols fill source/destination, timing, status and their own fields; the shipper's
envelope derives the rest (``network.bytes``, ``community_id``, ``direction``,
``client``/``server`` mirrors, ``event.duration``) at publish time.

Times are integer nanoseconds here; the envelope formats them.
"""

from __future__ import annotations

from typing import Any, Final

OK: Final = "OK"
ERROR: Final = "Error"


def transaction_event(
    proto: str,
    transport: str,
    status: str,
    ts: int,
    src: tuple[str, int],
    dst: tuple[str, int],
    start: int | None = None,
    end: int | None = None,
    src_bytes: int = 0,
    dst_bytes: int = 0,
) -> dict[str, Any]:
    """A new event dict with the fields every transaction carries (sizes only when known)."""
    event: dict[str, Any] = {}
    if start is not None:
        event["start"] = start
    if end is not None:
        event["end"] = end
    related_ip = [src[0]] if src[0] == dst[0] else [src[0], dst[0]]
    source: dict[str, Any] = {"ip": src[0], "port": src[1]}
    if src_bytes:
        source["bytes"] = src_bytes
    destination: dict[str, Any] = {"ip": dst[0], "port": dst[1]}
    if dst_bytes:
        destination["bytes"] = dst_bytes
    return {
        "@timestamp": ts,
        "type": proto,
        "status": status,
        "event": event,
        "network": {"transport": transport, "protocol": proto},
        "source": source,
        "destination": destination,
        "related": {"ip": related_ip},
    }


def add_related(evt: dict[str, Any], kind: str, *values: str) -> None:
    """Append to ``related.<kind>`` keeping first-seen order and no duplicates."""
    for v in values:
        if not v:
            continue
        lst = evt["related"].setdefault(kind, [])
        if v not in lst:
            lst.append(v)


def add_notes(evt: dict[str, Any], notes: list[str]) -> None:
    if notes:
        evt.setdefault("error", {}).setdefault("message", []).extend(notes)
