"""The optional compiled code; everything else is in pyproject.toml.

* ``shipper/agent/_walk.c``: the replay's record walker (C).
* The hot path, ``HOT_MODULES`` below, compiled with mypyc from their typed Python.

Both are optional extensions: without a C compiler the build goes on without them and
wirebeat runs its pure-Python path (the same events, more CPU); ``protocols/compiled.py``
says how the modules are found. ``WIREBEAT_PURE_PYTHON`` set at build time skips mypyc.
"""

import hashlib
import json
import os
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent


#: Compiled by mypyc, as one group (protocols/compiled.py finds them, or their source).
HOT_MODULES = [
    "protocols.tcp",
    "protocols.http.parser",
    "protocols.http.fields",
    "protocols.http.transactions",
    "protocols.flows.report",
    "protocols.flows.table",
    "protocols.dns.parser",
    "protocols.dns.fields",
    "protocols.common.event",
    "protocols.common.digits",
    "shipper.pipeline.envelope",
]


def compiled_hot_path() -> list[Extension]:
    if os.environ.get("WIREBEAT_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("wirebeat: mypyc is not installed: the hot path stays pure Python")
        return []
    paths = [str(Path(*m.split(".")).with_suffix(".py")) for m in HOT_MODULES]
    exts = mypycify(paths, opt_level="3", group_name="wirebeat")
    # What was compiled, for protocols/compiled.py to tell a build from an edited source.
    digests = {
        m: hashlib.sha256((ROOT / p).read_bytes()).hexdigest()
        for m, p in zip(HOT_MODULES, paths, strict=True)
    }
    (ROOT / "protocols" / "compiled_sources.json").write_text(json.dumps(digests, indent=1) + "\n")
    for ext in exts:
        ext.optional = True
    return exts


setup(
    ext_modules=[
        Extension(
            "shipper.agent._walk", ["shipper/agent/_walk.c"], optional=True, extra_compile_args=["-O2"]
        ),
        *compiled_hot_path(),
    ]
)
