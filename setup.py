"""The one optional C extension (``shipper/agent/_walk.c``); everything else is in
pyproject.toml. Without a C compiler the build goes on without it and wirebeat runs its
pure-Python path (the same results, slower with several workers)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "shipper.agent._walk", ["shipper/agent/_walk.c"], optional=True, extra_compile_args=["-O2"]
        ),
    ]
)
