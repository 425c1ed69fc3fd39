"""Swapping the compiled loops in or out of core modules for one test, and comparing what they give."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


@contextmanager
def using_kernel(modules: Iterable[Any], kernel: Any) -> Iterator[None]:
    """Set ``kernel`` (a compiled module, or None for the numpy path) as each module's
    ``_kernel`` for the block, whatever ``SPIKEDETECT_PURE`` chose, and restore them after."""
    modules = tuple(modules)
    saved = [m._kernel for m in modules]
    for m in modules:
        m._kernel = kernel
    try:
        yield
    finally:
        for m, k in zip(modules, saved, strict=True):
            m._kernel = k


@contextmanager
def switched(switch: Any, on: bool) -> Iterator[None]:
    """A kernel's on/off switch (``calibration_sse2``, ``record_sse2``: called with a value it
    sets, without one it says) set to ``on`` for the block, and restored after."""
    before = switch()
    switch(on)
    try:
        yield
    finally:
        switch(before)


def bits(a: np.ndarray) -> bytes:
    """The bytes of ``a``, every NaN made the one NaN: which NaN a sum of two NaNs gives follows
    the operand order, which a C compiler may swap and numpy's SIMD loops choose per CPU."""
    return (np.where(np.isnan(a), np.nan, a) if a.dtype.kind == "f" else a).tobytes()
