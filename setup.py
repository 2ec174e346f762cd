"""Build hook for the one compiled part: the engine's C loops (loaded with ctypes, no Python
API; see server/streamprint/engine/compiled.py). Everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "streamprint.engine._ckernels",
            sources=["server/streamprint/engine/_ckernels.c"],
            # the same operations in the same order as the numpy/scipy definitions: no fused
            # multiply-add, no reassociation (-O3 vectorises loops whose lanes are independent,
            # which keeps every value's operations and order)
            extra_compile_args=["-O3", "-std=c99", "-ffp-contract=off", "-fno-fast-math"],
        )
    ]
)
