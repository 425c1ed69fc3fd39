"""The negative-binomial tail sums two rows at a time (spikedetect/kernel/_closing_tail_pair.pxi): the
same bits as the scalar loop, row by row, for odd and even numbers of rows whose sums stop after
different numbers of terms (one lane going on after the other stopped), with Poisson rows, slow
tails that take all 48 terms, and NaN, infinite and signed-zero values. numpy's ``_tail_sum`` is
held to the kernel by test_closing_kernel.py.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import bits, switched

from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
pytestmark = pytest.mark.skipif(KERNEL is None or not KERNEL.TAIL_SSE2,
                                reason="no compiled closing loops, or no SSE2 (the scalar loop is all there is)")

EDGE = [0.0, -0.0, 1.0, 1e-300, 1e300, 2.0**51, float("inf"), -float("inf"), float("nan"), -1.0]


def sse2(on: bool) -> AbstractContextManager[None]:
    assert KERNEL is not None
    return switched(KERNEL.tail_sse2, on)


def tails(on: bool, k: np.ndarray, a: np.ndarray, b: np.ndarray, stepwise: bool = False) -> np.ndarray:
    assert KERNEL is not None
    out = np.full(len(k), -7.0)
    with sse2(on):
        KERNEL.tail_sum(k, a, b, stepwise, out)
    return out


def rows(seed: int, n: int, edge: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts above their means, as ``nb_prepare`` gathers them: (k, a, b) with a = q and
    b = r * q of a negative binomial (a = 0, b = the mean for a Poisson row)."""
    rng = np.random.default_rng(seed)
    mean = rng.uniform(0.01, 300.0, size=n)
    k = np.ceil(mean * rng.uniform(1.0, 3.0, size=n))
    phi = np.where(rng.random(n) < 0.3, 1.0, rng.uniform(1.0, 6.0, size=n))
    r = mean / np.maximum(phi - 1.0, 1e-4)
    q = np.where(phi <= 1.0001, 0.0, mean / (mean + r))
    b = np.where(phi <= 1.0001, mean, r * q)
    for arr in (k, q, b):
        pick = rng.random(n) < edge
        arr[pick] = rng.choice(EDGE, size=int(pick.sum()))
    return k, q, b


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 23), st.sampled_from([0.0, 0.0, 0.05, 0.3]))
def test_the_pairs_give_the_scalar_loops_bits(seed: int, n: int, edge: float) -> None:
    k, a, b = rows(seed, n, edge)
    assert bits(tails(True, k, a, b)) == bits(tails(False, k, a, b))


@pytest.mark.parametrize("first_fast", [True, False])
def test_a_lane_that_stopped_keeps_its_sum_while_the_other_goes_on(first_fast: bool) -> None:
    """One row's tail ends after the first 8 terms, its neighbour's needs all 48 (a slow ratio,
    then the geometric remainder): each gets the scalar loop's sum, and the two differ from
    what the other lane's number of groups would give."""
    fast, slow = (30.0, 0.0, 1.0), (400.0, 0.0, 399.0)  # Poisson: mean 1 at 30, mean 399 at 400
    k, a, b = (np.array(v) for v in zip(*((fast, slow) if first_fast else (slow, fast)), strict=True))
    on, off = tails(True, k, a, b), tails(False, k, a, b)
    assert on.tobytes() == off.tobytes()
    alone = [tails(False, k[i:i + 1], a[i:i + 1], b[i:i + 1])[0] for i in range(2)]
    assert list(on) == alone and on[0] != on[1]


def test_stepwise_rows_take_the_scalar_loop() -> None:
    """From 2**52 the reference steps k by adding 1 each term: the pair path is not used then,
    and the bits are the scalar loop's either way."""
    k = np.array([2.0**52, 2.0**52 + 2, 5.0])
    a, b = np.array([0.5, 0.5, 0.0]), np.array([2.0**51, 2.0**51, 1.0])
    assert tails(True, k, a, b, stepwise=True).tobytes() == tails(False, k, a, b, stepwise=True).tobytes()
