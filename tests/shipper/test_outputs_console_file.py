"""output.console (one JSON event per line on stdout) and output.file (ndjson files named
and rotated as libbeat 8.x does)."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols.stats import Counters
from shipper.outputs.base import (
    CodecSettings,
    EncodedEvent,
    JsonCodec,
    OutputContext,
    OutputError,
    encode_event,
)
from shipper.outputs.console import ConsoleConfig, ConsoleOutput
from shipper.outputs.file import FileConfig, FileOutput


def ctx(tmp_path: Path) -> OutputContext:
    return OutputContext(beat_name="tap", version="8.17.0", stats=Counters(), data_path=tmp_path / "data")


def event(i: int, pad: int = 200) -> dict[str, Any]:
    return {"seq": i, "type": "http", "@timestamp": "2023-11-14T22:13:20.000Z", "pad": "x" * pad}


def publish(out: Any, events: list[dict[str, Any]]) -> int:
    async def run() -> int:
        n: int = await out.publish(events)
        await out.close()
        return n

    return asyncio.run(run())


def today() -> set[str]:
    return {datetime.datetime.now().strftime("%Y%m%d")}


def ndjson_files(directory: Path, base: str = "packetbeat") -> list[tuple[int, Path]]:
    """The output files as (rotation index, path), oldest first."""
    pat = re.compile(re.escape(base) + r"-(\d{8})(?:-(\d+))?\.ndjson$")
    found = []
    for p in directory.iterdir():
        m = pat.match(p.name)
        assert m, f"unexpected file {p.name}"
        found.append((int(m.group(2) or 0), p))
    return sorted(found)


def seqs(path: Path) -> list[int]:
    return [json.loads(line)["seq"] for line in path.read_text().splitlines()]


@pytest.fixture
def umask022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


# -- console --------------------------------------------------------------------------------


def test_console_writes_one_json_event_per_line(tmp_path: Path) -> None:
    buf = io.BytesIO()
    out = ConsoleOutput(ConsoleConfig(), ctx(tmp_path), stream=buf)
    events = [event(i, pad=5) for i in range(3)]
    events[1]["body"] = "line1\nline2 <b>&"
    assert publish(out, events) == 3
    lines = buf.getvalue().decode().split("\n")
    assert lines[-1] == ""
    assert [json.loads(x) for x in lines[:-1]] == events
    # Keys in the event's own order (libbeat does not sort them either); no HTML escaping
    # by default.
    assert lines[0].startswith('{"seq":0,"type":"http","@timestamp":')
    assert "<b>&" in lines[1]


def test_console_pretty_and_escape_html(tmp_path: Path) -> None:
    buf = io.BytesIO()
    cfg = ConsoleConfig(codec=CodecSettings(JsonCodec(pretty=True, escape_html=True)))
    publish(ConsoleOutput(cfg, ctx(tmp_path), stream=buf), [{"a": "<x>&", "b": 1}])
    text = buf.getvalue().decode()
    assert text == '{\n  "a": "\\u003cx\\u003e\\u0026",\n  "b": 1\n}\n'
    assert json.loads(text) == {"a": "<x>&", "b": 1}


def test_encode_event_handles_bytes_sets_and_non_string_keys() -> None:
    data = encode_event({"raw": b"caf\xc3\xa9\xff", "tags": {"b"}, "codes": {404: 2}})
    assert json.loads(data) == {"raw": "café\ufffd", "tags": ["b"], "codes": {"404": 2}}


# -- file -----------------------------------------------------------------------------------


def test_file_default_name_and_path(tmp_path: Path) -> None:
    before = today()
    out = FileOutput(FileConfig(), ctx(tmp_path))
    publish(out, [event(0)])
    ((idx, path),) = ndjson_files(tmp_path / "data")
    assert idx == 0
    assert path.name in {f"packetbeat-{d}.ndjson" for d in before | today()}
    assert seqs(path) == [0]


def test_file_rotates_by_size_with_numbered_files_in_order(tmp_path: Path) -> None:
    cfg = FileConfig(path=str(tmp_path / "out"), filename="pb", rotate_every_kb=1, number_of_files=10)
    out = FileOutput(cfg, ctx(tmp_path))
    events = [event(i) for i in range(20)]
    line = len(encode_event(events[0])) + 1
    assert 250 < line < 340  # three lines fit in 1 KiB, four do not
    publish(out, events)
    files = ndjson_files(tmp_path / "out", "pb")
    assert [i for i, _ in files] == list(range(7))
    assert files[1][1].name == files[0][1].name.replace(".ndjson", "-1.ndjson")
    assert [s for _, p in files for s in seqs(p)] == list(range(20))
    for _, p in files:
        assert p.stat().st_size <= 1024
    assert [len(seqs(p)) for _, p in files] == [3, 3, 3, 3, 3, 3, 2]


def test_file_keeps_only_number_of_files(tmp_path: Path) -> None:
    cfg = FileConfig(path=str(tmp_path / "out"), rotate_every_kb=1, number_of_files=3)
    out = FileOutput(cfg, ctx(tmp_path))
    publish(out, [event(i) for i in range(20)])
    files = ndjson_files(tmp_path / "out")
    assert [i for i, _ in files] == [4, 5, 6]  # the oldest were removed
    assert [s for _, p in files for s in seqs(p)] == list(range(12, 20))


def test_file_rotates_on_startup_and_can_append_instead(tmp_path: Path) -> None:
    cfg = FileConfig(path=str(tmp_path / "out"))
    publish(FileOutput(cfg, ctx(tmp_path)), [event(0)])
    publish(FileOutput(cfg, ctx(tmp_path)), [event(1)])
    files = ndjson_files(tmp_path / "out")
    assert [(i, seqs(p)) for i, p in files] == [(0, [0]), (1, [1])]

    appending = FileConfig(path=str(tmp_path / "out"), rotate_on_startup=False)
    publish(FileOutput(appending, ctx(tmp_path)), [event(2)])
    files = ndjson_files(tmp_path / "out")
    assert [(i, seqs(p)) for i, p in files] == [(0, [0]), (1, [1, 2])]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644])
def test_file_permissions(tmp_path: Path, umask022: None, mode: int) -> None:
    cfg = FileConfig(path=str(tmp_path / "out"), permissions=mode)
    publish(FileOutput(cfg, ctx(tmp_path)), [event(0)])
    ((_, path),) = ndjson_files(tmp_path / "out")
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_file_default_permissions_are_0600(tmp_path: Path, umask022: None) -> None:
    publish(FileOutput(FileConfig(path=str(tmp_path / "out")), ctx(tmp_path)), [event(0)])
    ((_, path),) = ndjson_files(tmp_path / "out")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_with_an_unusable_directory_fails_at_startup(tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    with pytest.raises(OutputError) as info:
        FileOutput(FileConfig(path=str(blocker / "sub")), ctx(tmp_path))
    assert not info.value.retriable
    assert "Not a directory" in str(info.value)


def test_file_a_single_event_larger_than_the_limit_still_gets_written(tmp_path: Path) -> None:
    cfg = FileConfig(path=str(tmp_path / "out"), rotate_every_kb=1)
    publish(FileOutput(cfg, ctx(tmp_path)), [event(0, pad=10), event(1, pad=3000), event(2, pad=10)])
    files = ndjson_files(tmp_path / "out")
    assert [seqs(p) for _, p in files] == [[0], [1], [2]]


# -- the pipeline's encoded events ----------------------------------------------------------


def encoded(events: list[dict[str, Any]], meta: dict[str, Any]) -> list[EncodedEvent]:
    heads: dict[int, bytes] = {}
    shared = {id(meta): meta}
    return [EncodedEvent.from_event(dict(e, **{"@metadata": meta}), heads, shared) for e in events]


def test_encoded_events_are_written_as_plain_dicts_are(tmp_path: Path) -> None:
    meta = {"beat": "packetbeat", "type": "_doc", "version": "1"}
    plain = [dict(event(i), **{"@metadata": meta}) for i in range(20)]
    for name, events in (("plain", plain), ("encoded", encoded([event(i) for i in range(20)], meta))):
        cfg = FileConfig(path=str(tmp_path / name), filename="pb", rotate_every_kb=1, number_of_files=20)
        publish(FileOutput(cfg, ctx(tmp_path)), events)  # type: ignore[arg-type]
    for (_, a), (_, b) in zip(
        ndjson_files(tmp_path / "plain", "pb"), ndjson_files(tmp_path / "encoded", "pb"), strict=True
    ):
        assert a.read_bytes() == b.read_bytes()
    assert len(ndjson_files(tmp_path / "encoded", "pb")) > 5  # rotated within the batch


def test_shared_metadata_is_encoded_once_and_other_metadata_each_time() -> None:
    meta = {"beat": "packetbeat", "type": "_doc", "version": "1"}
    heads: dict[int, bytes] = {}
    shared = {id(meta): meta}
    a = EncodedEvent.from_event(dict(event(1), **{"@metadata": meta}), heads, shared)
    assert heads == {id(meta): b'{"@metadata":{"beat":"packetbeat","type":"_doc","version":"1"},'}
    changed = dict(meta, pipeline="p")  # what a processor that writes @metadata hands over
    b = EncodedEvent.from_event(dict(event(2), **{"@metadata": changed}), heads, shared)
    assert len(heads) == 1
    assert json.loads(a.json()) == dict(event(1), **{"@metadata": meta})
    assert json.loads(b.json()) == dict(event(2), **{"@metadata": changed})
    assert a.json() == encode_event(dict(event(1), **{"@metadata": meta}))
