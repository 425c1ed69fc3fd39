"""Builds the optional compiled counting kernel (Cython); everything else is in pyproject.toml.

Without a C compiler (or with SPIKEDETECT_PURE=1 at install time) the build is skipped with a
warning and the pure-Python counter is installed: it is the reference the kernel is tested
against and gives identical results, only slower.
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
            _warn(exc)


def _warn(exc: BaseException) -> None:
    sys.stderr.write(f"WARNING: spikedetect's compiled counting kernel was not built ({exc}); "
                     "installing the pure-Python counter (identical results, slower)\n")


def _extensions() -> list[Extension]:
    if os.environ.get("SPIKEDETECT_PURE", "") not in ("", "0"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        _warn(exc)
        return []
    ext = Extension("spikedetect.kernel._count", ["src/spikedetect/kernel/_count.pyx"],
                    extra_compile_args=["-O3"])
    try:
        return list(cythonize([ext], language_level=3, quiet=True))
    except Exception as exc:  # noqa: BLE001 - a Cython error also leaves the pure path
        _warn(exc)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
