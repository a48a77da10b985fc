"""Every numeric setting, swept: 0, -1, the largest int64, beyond int64 and a wrong type,
each given as ``test config -E key=value``. Each answer is either ``Config OK`` or one
``Exiting:`` line that names the key; never a traceback. A value `test config` accepts
must also survive a real replay (what used to pass the check and crash at run time:
``tcp.max_connections: 0`` was a KeyError in the TCP table).

The sweep runs the CLI's ``main`` in-process (``python -m shipper`` is that same call);
a few cases also go through a real subprocess to show the two agree.
"""

from __future__ import annotations

import io
import types
import typing
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Union

import attrs
import pytest
import yaml

from protocols.common.config import ByteSize, Duration
from protocols.registry import available, plugin_class
from shipper.agent import cli
from shipper.agent.beat import Beat
from shipper.agent.settings import (
    OUTPUT_MODULES,
    DiskQueueSettings,
    FlowsSettings,
    InterfaceSettings,
    MemQueueSettings,
    Settings,
    default_tree,
    output_module,
)
from tests.helpers import shared_pcap
from tests.shipper.shiprun import wirebeat

NUMERIC = (int, float, Duration, ByteSize)
#: Sections the loader builds by hand (they are swept through their own classes below).
SPECIAL = {"packetbeat", "output", "queue", "raw"}
#: Per output, what it needs besides the swept key to be a complete config.
OUTPUT_BASE = {
    "logstash": ["output.logstash.hosts=[localhost]"],
    "redis": ["output.redis.hosts=[localhost]"],
    "kafka": ["output.kafka.hosts=[localhost]", "output.kafka.topic=t"],
}
#: What the sweep feeds each numeric setting.
VALUES = ["0", "-1", str((1 << 63) - 1), str(1 << 70), "[1, 2]", "abc"]
#: Settings that only matter to live capture, setup or network outputs: swept through
#: `test config` (which builds the output client) but not replayed.
NOT_REPLAYED = ("packetbeat.interfaces.", "setup.", "http.", "output.", "migration.", "queue.disk.")


def _numeric(tp: Any) -> str | None:
    """'scalar', 'list' or None."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        kinds = {_numeric(a) for a in typing.get_args(tp) if a is not type(None)}
        return next((k for k in kinds if k), None)
    if tp in NUMERIC:
        return "scalar"
    if typing.get_origin(tp) is list and typing.get_args(tp) and typing.get_args(tp)[0] in NUMERIC:
        return "list"
    return None


def _walk(cls: type, prefix: str) -> Iterator[tuple[str, str]]:
    hints = typing.get_type_hints(cls)
    for f in attrs.fields(cls):  # type: ignore[arg-type]
        if f.metadata.get("internal") or f.metadata.get("ignored"):
            continue
        key = f.metadata.get("key", f.name)
        path = f"{prefix}{key}"
        if not prefix and key in SPECIAL:
            continue
        tp = hints[f.name]
        kind = _numeric(tp)
        if kind:
            yield path, kind
            continue
        nested = [a for a in (typing.get_args(tp) or (tp,)) if isinstance(a, type) and attrs.has(a)]
        for sub in nested:
            yield from _walk(sub, f"{path}.")


def numeric_options() -> list[tuple[str, str, list[str]]]:
    """(key, kind, extra -E overrides) for every numeric setting of every section."""
    out: list[tuple[str, str, list[str]]] = []
    for key, kind in _walk(Settings, ""):
        out.append((key, kind, []))
    for cls, prefix in (
        (InterfaceSettings, "packetbeat.interfaces."),
        (FlowsSettings, "packetbeat.flows."),
        (MemQueueSettings, "queue.mem."),
        (DiskQueueSettings, "queue.disk."),
    ):
        out += [(k, kind, []) for k, kind in _walk(cls, prefix)]
    pb = attrs.fields_dict(Settings)["packetbeat"].default
    out += [
        (k, kind, [])
        for k, kind in _walk(type(pb), "packetbeat.")
        if not k.startswith("packetbeat.interfaces")
    ]
    for name in OUTPUT_MODULES:
        base = OUTPUT_BASE.get(name, [])
        out += [(k, kind, base) for k, kind in _walk(output_module(name).CONFIG, f"output.{name}.")]
    for name in available():
        cls = plugin_class(name).config_class
        out += [(k, kind, []) for k, kind in _walk(cls, f"packetbeat.protocols.{name}.")]
    return sorted(set((k, kind, tuple(extra)) for k, kind, extra in out))  # type: ignore[misc]


OPTIONS = numeric_options()


def test_the_sweep_covers_every_section() -> None:
    keys = {k for k, _, _ in OPTIONS}
    for expected in (
        "packetbeat.tcp.max_connections",
        "packetbeat.interfaces.snaplen",
        "packetbeat.shutdown_timeout",
        "queue.mem.events",
        "queue.mem.flush.timeout",
        "queue.disk.max_size",
        "logging.metrics.period",
        "logging.files.keepfiles",
        "output.logstash.worker",
        "output.logstash.backoff.init",
        "output.elasticsearch.compression_level",
        "output.redis.db",
        "output.file.rotate_every_kb",
        "packetbeat.protocols.http.ports",
        "packetbeat.protocols.http.transaction_timeout",
    ):
        assert expected in keys, expected
    assert len(keys) > 60


class Answer:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def __repr__(self) -> str:
        return f"Answer({self.code}, {self.stdout!r}, {self.stderr!r})"


class _Stdout(io.StringIO):
    """stdout with a binary ``buffer`` (the console output writes bytes there)."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = io.BytesIO()


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Answer:
    """``wirebeat ARGV`` in this process: its exit code, stdout and stderr."""
    monkeypatch.setattr(cli, "setup_logs", lambda *_a, **_k: None)  # keep pytest's logging
    monkeypatch.setattr(Beat, "install_signals", lambda self: None)
    monkeypatch.setattr(Beat, "tune_gc", staticmethod(lambda: None))
    out, err = _Stdout(), io.StringIO()
    code: Any = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            cli.main(argv)
        except SystemExit as exc:
            code = exc.code
    return Answer(int(code or 0), out.getvalue(), err.getvalue())


def shipped_config(tmp_path: Path) -> Path:
    """A config file with what a config that says nothing gets (`test config` needs a file)."""
    path = tmp_path / "wirebeat.yml"
    path.write_text(yaml.safe_dump(default_tree()))
    return path


def _value(kind: str, raw: str) -> str:
    return f"[{raw}]" if kind == "list" and raw not in ("abc", "[1, 2]") else raw


def _check_answer(key: str, ans: Answer) -> None:
    assert "Traceback" not in ans.stderr, ans
    if ans.code == 0:
        assert ans.stderr == "", ans
        return
    lines = ans.stderr.splitlines()
    assert ans.code == 1 and len(lines) == 1, ans
    assert lines[0].startswith("Exiting: "), ans
    assert "internal error" not in lines[0], ans
    assert key.rsplit(".", 1)[1] in lines[0], ans  # the error names the setting


@pytest.mark.parametrize(("key", "kind", "extra"), OPTIONS, ids=[o[0] for o in OPTIONS])
def test_every_numeric_setting_is_accepted_or_refused_in_one_line(
    key: str, kind: str, extra: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = ["-c", str(shipped_config(tmp_path))]
    paths += ["--path.data", str(tmp_path / "data"), "--path.logs", str(tmp_path / "logs")]
    base = [a for e in extra for a in ("-E", e)]
    accepted = []
    for raw in VALUES:
        value = _value(kind, raw)
        ans = run_cli(["test", "config", *base, "-E", f"{key}={value}", *paths], monkeypatch)
        _check_answer(key, ans)
        if ans.code == 0:
            accepted.append(value)
    if key.startswith(NOT_REPLAYED):
        return
    # What `test config` accepts must not crash a run: replay a capture with each value.
    pcap = str(shared_pcap("http_post"))
    for value in accepted:
        out = tmp_path / f"out-{len(value)}-{abs(hash(value))}"
        ans = run_cli(
            [
                "-t",
                "-I",
                pcap,
                "-E",
                f"output.file.path={out}",
                "-E",
                "packetbeat.shutdown_timeout=1s",
                *base,
                "-E",
                f"{key}={value}",
                *paths,
            ],
            monkeypatch,
        )
        assert ans.code == 0, (key, value, ans)
        assert "Traceback" not in ans.stderr and "internal error" not in ans.stderr, (key, value, ans)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        (
            "packetbeat.tcp.max_connections=0",
            "requires value >= 1 accessing 'packetbeat.tcp.max_connections' (got 0, from -E)",
        ),
        (
            "packetbeat.tcp.max_connections=-1",
            "requires value >= 1 accessing 'packetbeat.tcp.max_connections' (got -1, from -E)",
        ),
        (
            "queue.mem.events=99999999999999999999999",
            "integer out of range (64 bits) accessing 'queue.mem.events'",
        ),
        (
            "output.file.number_of_files=1",
            "requires value between 2 and 1024 accessing 'output.file.number_of_files' (got 1, from -E)",
        ),
        (
            "packetbeat.protocols.thrift.idl_files=[/no/such.thrift]",
            "idl_files.0: file '/no/such.thrift' does not exist",
        ),
    ],
)
def test_the_cli_itself_gives_the_one_line(override: str, fragment: str, tmp_path: Path) -> None:
    assert "thrift" not in override or "thrift" in available()
    run = wirebeat("test", "config", "-c", shipped_config(tmp_path), "-E", override, tmp=tmp_path)
    assert run.rc == 1, run
    assert run.stderr.splitlines() == [run.stderr.strip()], run
    assert run.stderr.startswith("Exiting: ") and fragment in run.stderr, run
    assert run.stdout == ""


#: Numeric settings without a range, and why none applies.
UNBOUNDED = {
    # libbeat: <= 0 sends the queue's batches unsplit.
    "bulk_max_size": "<= 0: batches unsplit (libbeat)",
    # Packetbeat: <= 0 (or -1) stores every document/value/byte.
    "max_docs": "<= 0: no limit (Packetbeat)",
    "max_doc_length": "<= 0: no limit (Packetbeat)",
    "maxvalues": "-1: all values (Packetbeat)",
    "maxbytespervalue": "<= 0: no limit (Packetbeat)",
    "max_body_length": "<= 0: no limit",
}


def _ranged(cls: type, prefix: str, seen: set[type]) -> Iterator[str]:
    if cls in seen:
        return
    seen.add(cls)
    hints = typing.get_type_hints(cls)
    for f in attrs.fields(cls):  # type: ignore[arg-type]
        key = f"{prefix}{f.metadata.get('key', f.name)}"
        tp = hints[f.name]
        if _numeric(tp) and f.validator is None and f.name not in UNBOUNDED:
            yield key
        for sub in typing.get_args(tp) or (tp,):
            if isinstance(sub, type) and attrs.has(sub):
                yield from _ranged(sub, f"{key}.", seen)


def test_every_numeric_setting_has_a_range_or_a_reason() -> None:
    """The audit behind the sweep: a new numeric option without a validator fails here
    until it gets its range (libbeat's where libbeat has one) or a line in UNBOUNDED."""
    seen: set[type] = set()
    missing = list(_ranged(Settings, "", seen))
    for cls, prefix in (
        (InterfaceSettings, "packetbeat.interfaces."),
        (FlowsSettings, "packetbeat.flows."),
        (MemQueueSettings, "queue.mem."),
        (DiskQueueSettings, "queue.disk."),
        (type(attrs.fields_dict(Settings)["packetbeat"].default), "packetbeat."),
    ):
        missing += _ranged(cls, prefix, seen)
    for name in OUTPUT_MODULES:
        missing += _ranged(output_module(name).CONFIG, f"output.{name}.", seen)
    for name in available():
        missing += _ranged(plugin_class(name).config_class, f"packetbeat.protocols.{name}.", seen)
    assert missing == []
