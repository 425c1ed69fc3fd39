"""The end of the negative-binomial tails four gathered rows at a time in AVX
(spikedetect/kernel/_closing_nb_quad.pxi): ``nb_finish`` writes the bits of its row-by-row loop,
as log tails and as surprises laid out by horizon, for windows of only Poisson rows and of mixed
ones, counts below and above the lgamma shift at 8, any number of gathered rows (so that some go
one by one after the fours), candidates' horizon sums, and NaN, infinite and signed-zero values.
The row-by-row loop is held to numpy by test_closing_kernel.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import bits, switched

from spikedetect.core import negbin
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
pytestmark = pytest.mark.skipif(KERNEL is None or not KERNEL.NB_AVX,
                                reason="no compiled closing loops, or this CPU has no AVX (the row-by-row loop is all "
                                       "there is)")

EDGE = [0.0, -0.0, 1.0, 7.0, 8.0, 1e-300, 1e300, float("inf"), -float("inf"), float("nan")]
H = 4  # the window's horizon and three longer ones


def counts(rng: np.random.Generator, n: int, poisson: bool, edge: float) -> tuple[np.ndarray, ...]:
    """Counts around and above their means (``observed``, ``mean``, ``phi``), some edge values."""
    mean = rng.uniform(0.01, 60.0, size=n)
    observed = np.floor(mean * rng.uniform(0.2, 4.0, size=n))
    phi = np.ones(n) if poisson else np.where(rng.random(n) < 0.3, 1.0, rng.uniform(1.0, 6.0, size=n))
    for arr in (observed, mean, phi):
        pick = rng.random(n) < edge
        arr[pick] = rng.choice(EDGE, size=int(pick.sum()))
    return observed, mean, phi


def tails(on: bool, observed: np.ndarray, mean: np.ndarray, phi: np.ndarray, sums: np.ndarray, rows: np.ndarray,
          as_surprise: bool) -> np.ndarray:
    assert KERNEL is not None
    out = np.full((H if as_surprise else 1, len(observed)), -7.0)
    with switched(KERNEL.nb_avx, on), np.errstate(all="ignore"):
        negbin.nb_tails(KERNEL, observed, mean, phi, sums, rows, as_surprise, out)
    return out


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 30), st.integers(0, 5), st.booleans(),
       st.sampled_from([0.0, 0.0, 0.05, 0.3]))
def test_the_fours_give_the_row_by_row_bits(seed: int, n: int, k: int, poisson: bool, edge: float) -> None:
    rng = np.random.default_rng(seed)
    observed, mean, phi = counts(rng, n, poisson, edge)
    k = min(k, n)
    rows = np.sort(rng.choice(n, size=k, replace=False)).astype(np.intp) if k else np.zeros(0, dtype=np.intp)
    sums = np.zeros((5, H - 1, k))
    for h in range(H - 1):  # horizon sums: h + 2 windows' worth of counts like the window's
        sums[0, h], sums[2, h], sums[3, h] = (v[rows] * (h + 2) for v in counts(rng, n, poisson, edge))
    assert bits(tails(True, observed, mean, phi, sums, rows, True)) == \
        bits(tails(False, observed, mean, phi, sums, rows, True))
    no_sums = np.zeros((5, 0, 0))
    no_rows = np.zeros(0, dtype=np.intp)
    assert bits(tails(True, observed, mean, phi, no_sums, no_rows, False)) == \
        bits(tails(False, observed, mean, phi, no_sums, no_rows, False))


def test_the_fours_run_on_poisson_and_overdispersed_rows() -> None:
    """The comparison above is not of two copies of one loop's output left in place: eight rows
    above their means, Poisson and overdispersed, below and above the lgamma shift, each get a
    tail below zero, the one the row alone gets."""
    observed = np.array([3.0, 12.0, 40.0, 9.0, 2.0, 30.0, 15.0, 100.0])
    mean = np.array([1.0, 4.0, 20.0, 3.0, 0.5, 10.0, 5.0, 60.0])
    phi = np.array([1.0, 2.0, 1.0, 3.5, 1.0, 1.5, 2.5, 1.0])
    no_sums, no_rows = np.zeros((5, 0, 0)), np.zeros(0, dtype=np.intp)
    got = tails(True, observed, mean, phi, no_sums, no_rows, False)[0]
    alone = [tails(False, observed[i:i + 1], mean[i:i + 1], phi[i:i + 1], no_sums, no_rows, False)[0, 0]
             for i in range(8)]
    assert (got < 0).all() and got.tolist() == alone
