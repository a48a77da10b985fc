"""The compiled hot path, and running its source instead.

Where a C compiler is present, installing (``setup.py``) compiles the hot modules (its
``HOT_MODULES``: the TCP tracker, the HTTP parser and event building, the envelope) with
mypyc: each becomes an extension module next to its source, and their code lives in one
shared library, ``wirebeat__mypyc``; ``SOURCES_FILE`` lists them. Python imports an
extension before a source file of the same name, so the compiled code runs with nothing
else to do. The modules are plain typed Python, and their source is what runs when:

* ``WIREBEAT_PURE_PYTHON`` is set (tests compare the two: the same events, in the same
  order);
* nothing was compiled (no compiler when installing; the install goes on without it);
* a source file differs from what was compiled (an edit in a checkout not rebuilt yet: the
  build would run the old code), until ``python3 setup.py build_ext --inplace`` (or
  ``pip install -e .``) compiles it again. ``setup.py`` records the SHA-256 of each source
  it compiles in ``SOURCES_FILE``; hashing them at start-up takes about a millisecond.

Then ``install`` puts a finder first on ``sys.meta_path`` that loads these modules from
their ``.py`` files. It must run before any of them is imported: ``protocols`` and
``shipper`` import this module first thing.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TypeVar

#: Set (to anything): run without the optional C code (this and the record walker).
PURE_PYTHON_ENV = "WIREBEAT_PURE_PYTHON"

#: The shared library's module name (mypyc's ``group_name`` + ``__mypyc``).
GROUP_LIBRARY = "wirebeat__mypyc"
#: Written by ``setup.py`` when it compiles (relative to the repository root, or to
#: site-packages): each module it compiled, with the SHA-256 of the source it compiled.
SOURCES_FILE = "protocols/compiled_sources.json"

_ROOT = Path(__file__).resolve().parent.parent

#: The modules the build compiled (set by ``install``; none without a build).
MODULES: tuple[str, ...] = ()
#: Why the source runs, or None where the compiled modules do (set by ``install``).
REASON: str | None = None
#: The source runs because it differs from what was compiled (a checkout not rebuilt).
STALE = False
_installed = False


_T = TypeVar("_T")


def python_class(cls: _T) -> _T:
    """Keeps a class of a compiled module a Python class (mypyc compiles its methods but
    not the class): for a class that subclasses one from an interpreted module, or whose
    instances need ``__slots__`` or attributes added at run time. Changes nothing."""
    return cls


def _source(root: Path, name: str) -> Path:
    return root.joinpath(*name.split(".")).with_suffix(".py")


def _extension(base: Path) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        p = base.with_name(base.name + suffix)
        if p.exists():
            return p
    return None


def source_digest(path: Path) -> str:
    """SHA-256 of a source file (``setup.py`` records those it compiled)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def built_sources(root: Path = _ROOT) -> dict[str, str]:
    """What ``setup.py`` compiled: module name → SHA-256 of its source then ({} if nothing)."""
    try:
        built = json.loads((root / SOURCES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(built, dict):
        return {}
    return {str(k): str(v) for k, v in built.items()}


def source_reason(
    modules: dict[str, str], root: Path = _ROOT, environ: Mapping[str, str] = os.environ
) -> tuple[str | None, bool]:
    """(why the source runs, or None where the compiled ``modules`` can; whether the reason
    is a source that differs from the build). ``modules``: ``built_sources(root)``;
    ``root`` holds the packages and the shared library (a checkout, or site-packages)."""
    if environ.get(PURE_PYTHON_ENV):
        return f"{PURE_PYTHON_ENV} is set", False
    if not modules or _extension(root / GROUP_LIBRARY) is None:
        return "not compiled (installed without a C compiler, or not built)", False
    missing = [name for name in modules if _extension(root.joinpath(*name.split("."))) is None]
    if missing:
        return f"not compiled: {', '.join(missing)}", False
    # One stale module makes them all run as source: compiled modules call one another's
    # compiled code directly, so a compiled caller would still run the old callee.
    # (A module without its source can only run compiled.)
    changed = [
        name
        for name, digest in modules.items()
        if _source(root, name).exists() and digest != source_digest(_source(root, name))
    ]
    if changed:
        return (
            f"{', '.join(changed)} changed since the build "
            "(python3 setup.py build_ext --inplace compiles it again)"
        ), True
    return None, False


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the hot modules' ``.py`` files, ahead of their extension modules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, _source(_ROOT, fullname))


def install() -> None:
    """Decide once per process; where the source must run, make imports find it."""
    global MODULES, REASON, STALE, _installed
    if _installed:
        return
    _installed = True
    built = built_sources()
    MODULES = tuple(built)
    REASON, STALE = source_reason(built)
    if REASON is not None and MODULES:
        loaded = [name for name in MODULES if name in sys.modules]
        assert not loaded, f"imported before protocols.compiled: {loaded}"
        sys.meta_path.insert(0, _SourceFinder())


def status() -> str:
    """One line for the log: which code runs."""
    if REASON is None:
        return f"hot path compiled (mypyc, {len(MODULES)} modules)"
    return f"hot path in pure Python: {REASON}"


def running_compiled(name: str) -> bool:
    """The module ``name`` (imported) runs as compiled code."""
    mod = importlib.import_module(name)
    return not (mod.__file__ or "").endswith(".py")


install()
