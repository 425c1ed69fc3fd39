"""The compiled closing loops (spikedetect/kernel/_closing.pyx) against their numpy references:
identical bytes on random inputs and edge cases (zeros, tiny and huge counts, NaN and inf).

The extension is loaded whatever SPIKEDETECT_PURE says, so both paths are compared in every
run; the tests skip only where it was not built (no C compiler at install time), and
test_closing_kernel_is_built_where_a_compiler_is fails if a build that should have worked did not.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core import negbin
from spikedetect.kernel import load_compiled, pure_forced

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")

EDGE = [0.0, -0.0, 1.0, 1e-300, 5e-324, 1e-9, 0.5, 2.0**52, 2.0**53 + 2.0, 1e300, np.inf, -np.inf, np.nan]
counts = st.one_of(st.integers(0, 50).map(float), st.integers(0, 10**7).map(float),
                   st.sampled_from([2.0**52 - 3.0, 2.0**52, 2.0**60, 1e17, 1e300]),
                   st.floats(allow_nan=True, allow_infinity=True))
odds = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.999999, 1.0, 1e-12]), st.floats())
means = st.one_of(st.floats(0.0, 1e6), st.floats(1e-9, 1e-3), st.sampled_from([0.0, 1e-9, 1e300]), st.floats())


def test_closing_kernel_is_built_where_a_compiler_is() -> None:
    has_compiler = shutil.which(sysconfig.get_config_var("CC").split()[0] or "cc") is not None
    has_headers = (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()
    if has_compiler and has_headers:
        assert KERNEL is not None, "a C compiler and Python.h are here, but the closing loops were not built"


def _compiled_tail_sum(xm: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    assert KERNEL is not None
    out = np.empty(len(xm))
    KERNEL.tail_sum(xm, a, b, negbin._stepwise(xm), out)
    return out


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(counts, odds, means), max_size=40))
def test_tail_sum_is_bit_identical_to_numpy(rows: list[tuple[float, float, float]]) -> None:
    xm, a, b = (np.array([r[i] for r in rows], dtype=np.float64) for i in range(3))
    with np.errstate(all="ignore"):
        want = negbin._tail_sum(xm.copy(), a.copy(), b.copy())
        got = _compiled_tail_sum(xm, a, b)
    assert got.tobytes() == want.tobytes()


@needs_kernel
def test_tail_sum_edge_cases_are_bit_identical() -> None:
    grid = np.array(np.meshgrid(EDGE, [0.0, 0.3, 0.999999, 1.0, np.nan], EDGE)).reshape(3, -1)
    for stop in (len(grid[0]), 7):  # the huge counts switch the whole call to one term at a time
        xm, a, b = (np.ascontiguousarray(v[:stop]) for v in grid)
        with np.errstate(all="ignore"):
            assert _compiled_tail_sum(xm, a, b).tobytes() == negbin._tail_sum(xm, a, b).tobytes()


@needs_kernel
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1e7), st.floats(0.0, 1e6), st.floats(0.0, 60.0)), max_size=60))
def test_surprise_is_bit_identical_with_and_without_the_kernel(rows: list[tuple[float, float, float]]) -> None:
    observed, mean, phi = (np.array([r[i] for r in rows], dtype=np.float64) for i in range(3))
    with np.errstate(all="ignore"):
        compiled = negbin.surprise(observed, mean, phi)
        poisson = negbin.log_sf(observed, mean, np.ones(len(rows)))
        saved, negbin._kernel = negbin._kernel, None
        try:
            pure = negbin.surprise(observed, mean, phi)
            pure_poisson = negbin.log_sf(observed, mean, np.ones(len(rows)))
        finally:
            negbin._kernel = saved
    assert compiled.tobytes() == pure.tobytes()
    assert poisson.tobytes() == pure_poisson.tobytes()


def test_the_pure_switch_selects_the_numpy_path() -> None:
    """SPIKEDETECT_PURE=1 (CI runs the suite both ways) leaves the closing path in numpy."""
    assert negbin._kernel is (None if pure_forced() else KERNEL)
