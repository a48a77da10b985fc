"""The compiled hot path (``protocols/compiled.py``): where the build has it, the hot
modules run compiled; ``WIREBEAT_PURE_PYTHON``, a missing build or a source edited after
the build run their source instead. That both give the same events, in the same order, on
every shared capture (one process and two workers) is ``test_workers.py``'s
``test_two_workers_equal_one``."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from protocols import compiled
from tests.helpers import IN_CI, ROOT, need

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _import_files(env: dict[str, str]) -> dict[str, str]:
    code = (
        "import importlib, json, protocols.compiled as c\n"
        "print(json.dumps({'status': c.status(), "
        "**{m: importlib.import_module(m).__file__ for m in c.MODULES}}))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    files: dict[str, str] = json.loads(r.stdout)
    return files


#: The tests of the hot modules, run again on their source (``test_the_hot_path_tests_pass_in_pure_python``).
HOT_PATH_TESTS = (
    "tests/protocols/test_compiled.py::test_this_process",
    "tests/protocols/test_tcp.py",
    "tests/protocols/test_tcp_snaplen.py",
    "tests/protocols/test_http_parser.py",
    "tests/protocols/test_http_segments.py",
    "tests/protocols/test_http_reorder.py",
    "tests/protocols/test_http_messages.py",
    "tests/protocols/test_http_pcaps.py",
    "tests/protocols/test_decoder_properties.py",
    "tests/protocols/test_decoder_limits.py",
    "tests/protocols/test_conn_memory.py",
    "tests/shipper/test_envelope.py",
    "tests/protocols/test_flows.py",
    "tests/protocols/test_icmp_flows_packetbeat.py",
    "tests/protocols/test_dns_unit.py",
    "tests/protocols/test_dns_pcaps.py",
    "tests/protocols/test_dns_oracle.py",
)


def test_this_process() -> None:
    """The hot modules run compiled, as ``pip install -e .`` builds them, unless
    ``WIREBEAT_PURE_PYTHON`` is set: then they run from source."""
    if os.environ.get(compiled.PURE_PYTHON_ENV):
        assert compiled.REASON == "WIREBEAT_PURE_PYTHON is set"
        assert not any(compiled.running_compiled(name) for name in compiled.MODULES)
        return
    if compiled.REASON is not None:
        need(f"the compiled hot path ({compiled.status()}; needs a C compiler and mypyc)")
    assert compiled.status() == f"hot path compiled (mypyc, {len(compiled.MODULES)} modules)"
    for name in compiled.MODULES:
        assert compiled.running_compiled(name), name
        assert (importlib.import_module(name).__file__ or "").endswith(SUFFIX), name


def test_pure_python_runs_the_source() -> None:
    files = _import_files({**os.environ, compiled.PURE_PYTHON_ENV: "1"})
    assert files.pop("status") == "hot path in pure Python: WIREBEAT_PURE_PYTHON is set"
    if compiled.REASON is None:
        assert set(files) == set(compiled.MODULES)
    for name, f in files.items():
        assert Path(f) == ROOT.joinpath(*name.split(".")).with_suffix(".py"), name


@pytest.mark.timeout(900)
def test_the_hot_path_tests_pass_in_pure_python() -> None:
    """The pure-Python path is kept working: the hot modules' own tests pass on their source
    too (the rest of the suite runs them compiled)."""
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *HOT_PATH_TESTS],
        cwd=ROOT,
        env={**os.environ, compiled.PURE_PYTHON_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout, r.stdout[-2000:]
    if IN_CI:
        assert " skipped" not in r.stdout, r.stdout[-2000:]


#: Modules for the made-up trees below.
NAMES = ("protocols.tcp", "protocols.http.fields", "shipper.pipeline.envelope")


def _tree(tmp: Path, *, group: bool = True, exts: bool = True, digests: bool = True) -> Path:
    """A root laid out as a checkout or site-packages is: sources, extension modules next to
    them, the shared library and the digests ``setup.py`` writes."""
    tmp.mkdir(parents=True, exist_ok=True)
    if group:
        (tmp / f"{compiled.GROUP_LIBRARY}{SUFFIX}").write_bytes(b"")
    recorded = {}
    for name in NAMES:
        src = tmp.joinpath(*name.split(".")).with_suffix(".py")
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(f"# {name}\n")
        if exts:
            src.with_name(src.stem + SUFFIX).write_bytes(b"")
        recorded[name] = compiled.source_digest(src)
    if digests:
        (tmp / compiled.SOURCES_FILE).write_text(json.dumps(recorded))
    return tmp


def test_reasons(tmp_path: Path) -> None:
    root = _tree(tmp_path / "ok")
    built = compiled.built_sources(root)
    assert list(built) == list(NAMES)
    assert compiled.source_reason(built, root, {}) == (None, False)
    assert compiled.source_reason(built, root, {compiled.PURE_PYTHON_ENV: "1"}) == (
        "WIREBEAT_PURE_PYTHON is set",
        False,
    )
    none = _tree(tmp_path / "none", group=False, exts=False, digests=False)
    assert compiled.built_sources(none) == {}
    assert compiled.source_reason({}, none, {}) == (
        "not compiled (installed without a C compiler, or not built)",
        False,
    )
    # The compiler failed: setup.py recorded the modules, the extensions are not there.
    half = _tree(tmp_path / "half", group=False, exts=False)
    assert compiled.source_reason(compiled.built_sources(half), half, {}) == (
        "not compiled (installed without a C compiler, or not built)",
        False,
    )
    half = _tree(tmp_path / "half2", exts=False)
    assert compiled.source_reason(compiled.built_sources(half), half, {}) == (
        f"not compiled: {', '.join(NAMES)}",
        False,
    )


def test_a_source_edited_after_the_build_runs_as_source(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    fields = root / "protocols" / "http" / "fields.py"
    fields.write_text(fields.read_text() + "# edited\n")
    reason, stale = compiled.source_reason(compiled.built_sources(root), root, {})
    assert stale
    assert reason == (
        "protocols.http.fields changed since the build "
        "(python3 setup.py build_ext --inplace compiles it again)"
    )


def test_an_edited_checkout_runs_its_source_and_says_so(tmp_path: Path) -> None:
    """A copy of the checkout with its build, one hot source edited: the edit runs (not the
    stale build), and a replay warns on start."""
    if compiled.REASON is not None:
        need(f"the compiled hot path ({compiled.status()})")
    copy = tmp_path / "checkout"
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in names.stdout.splitlines():
        if name.startswith(("protocols/", "shipper/", "capture/", "samples/sample.pcap", "setup.py")):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    built = [ROOT / f"{compiled.GROUP_LIBRARY}{SUFFIX}", ROOT / compiled.SOURCES_FILE]
    assert "protocols.common.event" in compiled.MODULES
    built += [ROOT.joinpath(*m.split(".")).with_name(m.rsplit(".", 1)[1] + SUFFIX) for m in compiled.MODULES]
    for f in built:
        shutil.copy2(f, copy / f.relative_to(ROOT))
    env = {k: v for k, v in os.environ.items() if k != compiled.PURE_PYTHON_ENV}
    env["PYTHONPATH"] = str(copy)
    run = [sys.executable, "-m", "shipper", "-e", "-t", "-I", "samples/sample.pcap"]
    r = subprocess.run([*run, "-E", "logging.level=info"], cwd=copy, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"hot path compiled (mypyc, {len(compiled.MODULES)} modules)" in r.stderr
    event = copy / "protocols" / "common" / "event.py"
    source = event.read_text()
    assert "event: dict[str, Any] = {}" in source
    event.write_text(
        source.replace("event: dict[str, Any] = {}", 'event: dict[str, Any] = {"edited": True}', 1)
    )
    r = subprocess.run(run, cwd=copy, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    warnings = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    assert any(
        w["log.level"] == "warning"
        and w["message"].startswith("hot path in pure Python: protocols.common.event changed since the build")
        for w in warnings
    ), r.stderr[-2000:]
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events and all(e["event"].get("edited") is True for e in events if e.get("type") != "flow")
