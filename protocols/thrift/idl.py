"""Method → (service, parameter names, exception names) from Thrift IDL files.

The files are parsed once, when the plugin is built, with thriftpy2 (imported only
then). Like Packetbeat's ``thrift_idl.go``, a method belongs to the service that defines
it (not to services extending that one), and the first definition of a name wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs


@attrs.frozen
class IdlMethod:
    service: str
    params: dict[int, str]
    exceptions: dict[int, str]


class IdlError(ValueError):
    """An IDL file cannot be read."""


def load_idl(files: list[str]) -> dict[str, IdlMethod]:
    if not files:
        return {}
    try:
        import thriftpy2
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise IdlError("thrift idl_files need the thriftpy2 package") from exc
    methods: dict[str, IdlMethod] = {}
    seen: set[int] = set()
    for name in files:
        path = Path(name)
        try:
            module = thriftpy2.load(str(path), include_dirs=[str(path.parent)])
        except Exception as exc:
            raise IdlError(f"error parsing Thrift IDL file {name}: {exc}") from exc
        _collect(module, methods, seen)
    return methods


def _collect(module: Any, methods: dict[str, IdlMethod], seen: set[int]) -> None:
    if id(module) in seen:
        return
    seen.add(id(module))
    meta = getattr(module, "__thrift_meta__", {})
    for inc in meta.get("includes", []):
        _collect(inc, methods, seen)
    for service in meta.get("services", []):
        inherited: set[str] = set()
        for base in service.__mro__[1:]:
            inherited.update(getattr(base, "thrift_services", ()))
        for method in service.thrift_services:
            if method in inherited or method in methods:
                continue
            args = getattr(service, method + "_args", None)
            result = getattr(service, method + "_result", None)
            methods[method] = IdlMethod(
                service=service.__name__,
                params=_names(args),
                exceptions={k: v for k, v in _names(result).items() if k != 0},
            )


def _names(cls: Any) -> dict[int, str]:
    spec = getattr(cls, "thrift_spec", None) or {}
    return {int(fid): str(entry[1]) for fid, entry in spec.items()}
