"""The seasonal learn's SSE2 row pairs and AVX row quads (spikedetect/kernel/_closing_learn_pair.pxi,
_closing_learn_quad.pxi): two or four neighbouring learning rows at once leave every column of the
baseline in the bits the row-by-row loop leaves, for any mix of learning, warm, trusted and untrusted rows, rows with and without a
finite positive parent, calm and elevated weights, NaN, infinite, signed-zero and huge values,
one or two profile slots (and the same slot twice), and column arrays wider than the rows. The
row-by-row loop is held to numpy by test_closing_kernel_learn.py and the golden tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import bits, switched

from spikedetect.core.detectors.seasonal import SeasonalBaseline
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
pytestmark = pytest.mark.skipif(KERNEL is None or not KERNEL.LEARN_PAIR_SSE2,
                                reason="no compiled closing loops, or no SSE2 (the row-by-row loop is all there is)")

FLOOR_SRC = 2
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, 1e300, -3.0, 0.1, 1e6])


def sse2(on: bool) -> AbstractContextManager[None]:
    assert KERNEL is not None
    return switched(KERNEL.learn_pair_sse2, on)


@contextmanager
def rows_at_a_time(mode: str) -> Iterator[None]:
    """The learn's loop as ``mode`` says: "rows" one by one, "pairs" (SSE2), "quads" (AVX, the
    rest one by one) or "both" (quads, then pairs, then one by one)."""
    assert KERNEL is not None
    with sse2(mode in ("pairs", "both")), switched(KERNEL.learn_quad_avx, mode in ("quads", "both")):
        yield


def spiced(rng: np.random.Generator, a: np.ndarray, rate: float) -> np.ndarray:
    """``a`` with a ``rate`` share of its values replaced by special ones."""
    hit = rng.random(a.shape) < rate
    a[hit] = rng.choice(SPECIAL, size=int(hit.sum())).astype(a.dtype)
    return a


def columns(rng: np.random.Generator, cap: int, rate: float) -> dict[str, np.ndarray]:
    cols = {}
    for name, (shape, dtype, _) in SeasonalBaseline.COLUMNS.items():
        a = spiced(rng, rng.uniform(0.0, 40.0, size=(cap, *shape)).astype(dtype), rate)
        if name in ("prof_w", "dow_w", "level_n", "disp_n", "share_w"):  # weights: counts, some past 1e6
            a = spiced(rng, np.floor(rng.choice([0.0, 1.0, 5.0, 90.0, 1e6 - 1, 2e6], size=a.shape)).astype(dtype), rate)
        cols[name] = np.asfortranarray(a) if name in SeasonalBaseline.COLUMN_MAJOR else a
    return cols


def learned(mode: str, seed: int, n: int, rate: float, slots: tuple[int, int, float]) -> list[bytes]:
    """Every column's bytes after one ``seasonal_learn_window`` of ``n`` random rows (each NaN
    the one NaN: which of two NaN operands an addition keeps is the compiler's choice, see
    :func:`tests.core.kernels.bits`)."""
    assert KERNEL is not None
    rng = np.random.default_rng(seed)
    cols = columns(rng, n + int(rng.integers(0, 4)), rate)
    learn = (rng.random(n) < 0.8).view(np.uint8)
    parent = rng.integers(-1, n, size=n).astype(np.intp)
    signal = rng.choice(np.array([0, 0, 1, 2], dtype=np.int8), size=n)
    muted = (rng.random(n) < 0.2).view(np.uint8)
    x, mean, tod = (spiced(rng, rng.uniform(0.0, 50.0, size=n), rate) for _ in range(3))
    factor = spiced(rng, rng.uniform(0.25, 4.0, size=n), rate)
    source = rng.integers(0, 3, size=n).astype(np.int8)
    warm = (rng.random(n) < 0.6).view(np.uint8)
    lo, hi, w_hi = slots
    params = (0.1, 9.0, 50.0, 4.0, 0.01, 0.1, 0.02, 0.003, FLOOR_SRC)
    with rows_at_a_time(mode):
        KERNEL.seasonal_learn_window(cols, learn, parent, signal, muted, 0.25, x, mean, source, tod, warm, factor,
                                     lo, hi, w_hi, int(rng.integers(0, 7)), params)
    return [bits(cols[name]) for name in SeasonalBaseline.COLUMNS]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.sampled_from([0.0, 0.02, 0.3]),
       st.sampled_from([(3, 4, 0.25), (3, 4, 0.0), (3, 4, 1.0), (47, 0, 0.5), (5, 5, 0.5)]))
def test_the_sse2_pairs_give_the_row_by_row_bits(seed: int, n: int, rate: float,
                                                 slots: tuple[int, int, float]) -> None:
    with np.errstate(all="ignore"):
        assert learned("pairs", seed, n, rate, slots) == learned("rows", seed, n, rate, slots)


@pytest.mark.skipif(KERNEL is None or not KERNEL.LEARN_QUAD_AVX, reason="this CPU has no AVX: no quads to hold")
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.sampled_from([0.0, 0.02, 0.3]),
       st.sampled_from([(3, 4, 0.25), (3, 4, 0.0), (3, 4, 1.0), (47, 0, 0.5), (5, 5, 0.5)]),
       st.sampled_from(["quads", "both"]))
def test_the_avx_quads_give_the_row_by_row_bits(seed: int, n: int, rate: float, slots: tuple[int, int, float],
                                                mode: str) -> None:
    with np.errstate(all="ignore"):
        assert learned(mode, seed, n, rate, slots) == learned("rows", seed, n, rate, slots)


@pytest.mark.parametrize("mode", ["pairs", pytest.param("quads", marks=pytest.mark.skipif(
    KERNEL is None or not KERNEL.LEARN_QUAD_AVX, reason="this CPU has no AVX"))])
def test_the_pairs_and_quads_run_and_change_the_state(mode: str) -> None:
    """The comparisons above are not of two no-ops: runs of learning rows move every column."""
    assert KERNEL is not None
    rng = np.random.default_rng(5)
    n = 8
    cols = columns(rng, n, 0.0)
    start = {k: v.copy() for k, v in cols.items()}
    ones = np.ones(n, dtype=np.uint8)
    with rows_at_a_time(mode):
        KERNEL.seasonal_learn_window(cols, ones, np.zeros(n, dtype=np.intp), np.zeros(n, dtype=np.int8),
                                     np.zeros(n, dtype=np.uint8), 0.25, np.full(n, 30.0), np.full(n, 5.0),
                                     np.zeros(n, dtype=np.int8), np.full(n, 4.0), ones, np.ones(n), 3, 4, 0.5, 2,
                                     (0.1, 9.0, 50.0, 4.0, 0.01, 0.1, 0.02, 0.003, FLOOR_SRC))
    for name in SeasonalBaseline.COLUMNS:
        view = cols[name][:, (3, 4)] if name in ("prof", "prof_w") else cols[name][:, 2] if name.startswith("dow") \
            else cols[name]
        was = start[name][:, (3, 4)] if name in ("prof", "prof_w") else start[name][:, 2] if name.startswith("dow") \
            else start[name]
        assert (view != was).any(), name
