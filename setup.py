"""Builds the optional compiled kernels (Cython); everything else is in pyproject.toml.

Three extensions, each optional on its own: the counting kernel (``kernel/_count.pyx``), the
reader of Kafka record batches of stage 1 (``kernel/_records.pyx``) and the closing loops
(``kernel/_closing.pyx``, compiled with ``-ffp-contract=off`` so that no multiply-add is fused
and every value rounds as numpy's does). Without a C compiler (or with
SPIKEDETECT_PURE=1 at install time) a build is skipped with a warning and the pure-Python path
is installed: it is the reference the kernels are tested against and gives identical results,
only slower.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing when the extension cannot be compiled."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler/toolchain failure means "pure Python"
            _warn(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            _warn(exc, ext.name)


def _warn(exc: BaseException, name: str = "kernels") -> None:
    sys.stderr.write(f"WARNING: spikedetect's compiled {name} was not built ({exc}); "
                     "installing the pure-Python path (identical results, slower)\n")


def _extensions() -> list[Extension]:
    if os.environ.get("SPIKEDETECT_PURE", "") not in ("", "0"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        _warn(exc)
        return []
    exts = [Extension("spikedetect.kernel._count", ["src/spikedetect/kernel/_count.pyx"],
                      extra_compile_args=["-O3"]),
            Extension("spikedetect.kernel._records", ["src/spikedetect/kernel/_records.pyx"],
                      extra_compile_args=["-O3"]),
            Extension("spikedetect.kernel._closing", ["src/spikedetect/kernel/_closing.pyx"],
                      extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math"])]
    built: list[Extension] = []
    for ext in exts:  # one at a time: a Cython error leaves that one's pure path, not the other's
        try:
            built.extend(cythonize([ext], language_level=3, quiet=True))
        except Exception as exc:  # noqa: BLE001
            _warn(exc, ext.name)
    return built


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
