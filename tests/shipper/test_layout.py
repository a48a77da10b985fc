"""The package layout holds: imports go one way (DESIGN.md, ``shipper/README.md``).

Every module of ``capture/``, ``protocols/`` and ``shipper/`` is parsed with :mod:`ast` and
every import in it is checked, the ones inside functions included:

- ``capture/`` and ``protocols/`` never import ``shipper/``, nor each other;
- ``shipper/outputs/`` and ``shipper/pipeline/`` never import ``shipper/setup/`` (setup may
  use the outputs' HTTP client, never the reverse);
- ``shipper/agent/settings.py`` imports neither outputs nor setup; it finds each output's
  ``CONFIG`` by name (``OUTPUT_MODULES``), the one lookup by string allowed here;
- every ``shipper.*`` module named, in an import or in a string (``importlib`` lookups,
  ``_optional("shipper.agent.live", ...)``), exists: a stale path after a move would
  otherwise turn a feature off without a word.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("capture", "protocols", "shipper")

#: (importer, imported): a module under the first prefix may not import one under the second.
FORBIDDEN = [
    ("capture", "shipper"),
    ("protocols", "shipper"),
    ("capture", "protocols"),
    ("protocols", "capture"),
    ("shipper.outputs", "shipper.setup"),
    ("shipper.pipeline", "shipper.setup"),
    ("shipper.agent.settings", "shipper.outputs"),
    ("shipper.agent.settings", "shipper.setup"),
]

#: Module names given as strings (dynamic lookups) that FORBIDDEN would otherwise refuse.
DYNAMIC_ALLOWED = {
    # settings.OUTPUT_MODULES: ``output.<name>`` is validated against that output's CONFIG,
    # loaded by name so that settings never imports the outputs themselves.
    ("shipper.agent.settings", "shipper.outputs"),
}

_MODULE_STRING = re.compile(r"^(?:capture|protocols|shipper)(?:\.\w+)+$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_exists(name: str) -> bool:
    """A module of the tree: a .py file, a package, or a C extension's source (its .c file;
    the built module is not tracked)."""
    base = ROOT.joinpath(*name.split("."))
    return (
        base.with_suffix(".py").is_file()
        or (base / "__init__.py").is_file()
        or base.with_suffix(".c").is_file()
    )


def all_modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            found[module_name(path)] = path
    return found


MODULES = all_modules()


def imports_of(name: str, path: Path) -> tuple[set[str], set[str]]:
    """(modules imported by statements, module names written as strings)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    static: set[str] = set()
    strings: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            static.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            static.add(mod)
            # ``from shipper.setup import build`` imports the submodule shipper.setup.build.
            for alias in node.names:
                if module_exists(f"{mod}.{alias.name}"):
                    static.add(f"{mod}.{alias.name}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _MODULE_STRING.match(node.value)
        ):
            strings.add(node.value)
    return static, strings


IMPORTS = {name: imports_of(name, path) for name, path in MODULES.items()}


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_walk_sees_every_room() -> None:
    for room in ("shipper.agent", "shipper.pipeline", "shipper.outputs", "shipper.setup"):
        assert any(under(m, room) for m in MODULES), room
    # A lazy import inside a function counts too (beat.py imports setup.run on demand).
    assert "shipper.setup.run" in IMPORTS["shipper.agent.beat"][0]
    # Strings naming modules are seen (the CLI loads the live loop by name).
    assert "shipper.agent.live" in IMPORTS["shipper.agent.cli"][1]


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN)
def test_imports_go_one_way(importer: str, imported: str) -> None:
    bad = []
    for name, (static, strings) in IMPORTS.items():
        if not under(name, importer):
            continue
        bad += [f"{name} imports {m}" for m in sorted(static) if under(m, imported)]
        if (importer, imported) not in DYNAMIC_ALLOWED:
            bad += [f"{name} names {m!r}" for m in sorted(strings) if under(m, imported)]
    assert not bad, "\n".join(bad)


def test_setup_uses_outputs_client_only_one_way() -> None:
    # The allowed direction is really used (setup talks HTTP through outputs' client) ...
    assert any(
        under(m, "shipper.outputs") for n, (s, _) in IMPORTS.items() if under(n, "shipper.setup") for m in s
    )
    # ... and the HTTP client and TLS contexts live in outputs, not setup.
    assert module_exists("shipper.outputs.http")
    assert module_exists("shipper.outputs.tlsconfig")
    assert not module_exists("shipper.setup.http")


def test_settings_finds_outputs_only_by_name() -> None:
    from shipper.agent.settings import OUTPUT_MODULES

    _, strings = IMPORTS["shipper.agent.settings"]
    assert {m for m in strings if under(m, "shipper.outputs")} == set(OUTPUT_MODULES.values())
    for name, module in OUTPUT_MODULES.items():
        assert module == f"shipper.outputs.{name}"


def test_every_named_shipper_module_exists() -> None:
    missing = []
    for name, (static, strings) in IMPORTS.items():
        for m in sorted(static | strings):
            if m.split(".")[0] in PACKAGES and not module_exists(m):
                missing.append(f"{name}: {m}")
    assert not missing, "\n".join(missing)
