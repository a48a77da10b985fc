"""Recording what a real client sent and got back, and checking decoded events against it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import attrs

from capture import CaptureFile
from tests.helpers import make_decoder, need_tool


@attrs.define
class Expected:
    """One transaction as the client saw it. ``None`` fields are not checked."""

    query: str
    method: str
    status: str = "OK"
    num_rows: int | None = None
    num_fields: int | None = None
    affected_rows: int | None = None
    insert_id: int | None = None
    error_code: Any = None
    params: list[str] | None = None
    notes: list[str] | None = None


def method_of(sql: str) -> str:
    return sql.strip().split(None, 1)[0].upper()


def decode(path: Path, proto: str, port: int, **opts: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    dec = make_decoder({proto: {"ports": [port], **opts}})
    events: list[dict[str, Any]] = []
    for ts, lt, frame, _wl in CaptureFile(str(path)):
        events += dec.feed(ts, lt, frame)
    events += dec.flush()
    return events, dict(dec.stats)


def ssl_cert(tmp: Path) -> Path:
    subprocess.run(
        [
            need_tool("openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-days",
            "2",
            "-keyout",
            str(tmp / "key.pem"),
            "-out",
            str(tmp / "cert.pem"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )
    return tmp


def match(
    events: list[dict[str, Any]], expected: list[Expected], proto: str, extra_ok: tuple[str, ...] = ()
) -> int:
    """Walk the events (by start time) against the expectations, in order.

    An event that is not the next expectation must be a driver's own session set-up
    (a statement starting with one of ``extra_ok``) that succeeded. Returns how many of
    those were skipped; every expectation must be met.
    """
    events = sorted(events, key=lambda e: (e["event"]["start"], e["event"]["end"]))
    i = 0
    skipped = 0
    for evt in events:
        assert evt["event"]["end"] > evt["event"]["start"], evt
        assert evt["source"].get("bytes", 0) > 0, evt
        assert evt["destination"].get("bytes", 0) > 0, evt
        if i < len(expected) and evt["query"] == expected[i].query:
            check(evt, expected[i], proto)
            i += 1
            continue
        assert evt["query"].startswith(extra_ok) and evt["status"] == "OK", (
            f"unexpected event {evt['query']!r} while waiting for "
            f"{expected[i].query if i < len(expected) else None!r}"
        )
        skipped += 1
    assert i == len(expected), (
        f"missing transactions from {expected[i].query!r} on ({len(expected) - i} missing)"
    )
    return skipped


def check(evt: dict[str, Any], exp: Expected, proto: str) -> None:
    where = f"{exp.query!r}: {evt}"
    assert evt["type"] == proto, where
    assert evt["method"] == exp.method, where
    assert evt["status"] == exp.status, where
    obj = evt[proto]
    for name in ("num_rows", "num_fields", "affected_rows", "insert_id", "error_code"):
        want = getattr(exp, name)
        if want is not None:
            assert obj.get(name) == want, f"{name}: {obj.get(name)!r} != {want!r} for {where}"
    if exp.status == "OK":
        assert "error_code" not in obj, where
    if exp.params is not None:
        assert evt.get("params") == exp.params, where
    if exp.notes is not None:
        assert evt.get("error", {}).get("message", []) == exp.notes, where
