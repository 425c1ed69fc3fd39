"""The negative-binomial tail sums four rows at a time in AVX and two in SSE2
(spikedetect/kernel/_closing_tail_pair.pxi): the same bits as the scalar loop, row by row, for any
number of rows whose sums stop after different numbers of terms (lanes going on after others
stopped), with Poisson rows, slow
tails that take all 48 terms, and NaN, infinite and signed-zero values. numpy's ``_tail_sum`` is
held to the kernel by test_closing_kernel.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


AVX = KERNEL is not None and KERNEL.TAIL_AVX
MODES = ["pairs", *(["quads", "both"] if AVX else [])]  # quads only where this CPU has AVX


@contextmanager
def rows_at_a_time(mode: str) -> Iterator[None]:
    """The tail loop as ``mode`` says: "rows" one by one, "pairs" (SSE2), "quads" (AVX, the rest
    one by one) or "both" (quads, then pairs, then one by one)."""
    assert KERNEL is not None
    with switched(KERNEL.tail_sse2, mode in ("pairs", "both")), switched(KERNEL.tail_avx, mode in ("quads", "both")):
        yield


def tails(mode: str, k: np.ndarray, a: np.ndarray, b: np.ndarray, stepwise: bool = False) -> np.ndarray:
    assert KERNEL is not None
    out = np.full(len(k), -7.0)
    with rows_at_a_time(mode):
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
@given(st.integers(0, 2**32 - 1), st.integers(0, 23), st.sampled_from([0.0, 0.0, 0.05, 0.3]),
       st.sampled_from(MODES))
def test_the_pairs_and_quads_give_the_scalar_loops_bits(seed: int, n: int, edge: float, mode: str) -> None:
    k, a, b = rows(seed, n, edge)
    assert bits(tails(mode, k, a, b)) == bits(tails("rows", k, a, b))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("slow_at", [0, 1, 2, 3])
def test_a_lane_that_stopped_keeps_its_sum_while_another_goes_on(mode: str, slow_at: int) -> None:
    """One row's tail needs all 48 terms (a slow ratio, then the geometric remainder), its
    neighbours' end after the first 8: each gets the scalar loop's sum, and the slow one differs
    from what the other lanes' number of groups would give."""
    fast, slow = (30.0, 0.0, 1.0), (400.0, 0.0, 399.0)  # Poisson: mean 1 at 30, mean 399 at 400
    k, a, b = (np.array(v) for v in zip(*(slow if i == slow_at else fast for i in range(4)), strict=True))
    on, off = tails(mode, k, a, b), tails("rows", k, a, b)
    assert on.tobytes() == off.tobytes()
    alone = [tails("rows", k[i:i + 1], a[i:i + 1], b[i:i + 1])[0] for i in range(4)]
    assert list(on) == alone and on[slow_at] != on[(slow_at + 1) % 4]


def test_stepwise_rows_take_the_scalar_loop() -> None:
    """From 2**52 the reference steps k by adding 1 each term: the pair path is not used then,
    and the bits are the scalar loop's either way."""
    k = np.array([2.0**52, 2.0**52 + 2, 5.0])
    a, b = np.array([0.5, 0.5, 0.0]), np.array([2.0**51, 2.0**51, 1.0])
    for mode in MODES:
        assert tails(mode, k, a, b, stepwise=True).tobytes() == tails("rows", k, a, b, stepwise=True).tobytes()
