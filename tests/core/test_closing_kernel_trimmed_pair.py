"""The horizons' trimmed sums two candidates at a time (spikedetect/kernel/_closing_trimmed_pair.pxi):
the same output bits as the scalar loops - and the same answer, with the same part of the output
written, when a ring value is not finite - for odd and even numbers of candidates in any order
(repeats too), any horizons and ring positions across the lap.
numpy's ``horizon_block`` is held to the kernel by test_closing_kernel_window.py.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import switched

from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
pytestmark = pytest.mark.skipif(KERNEL is None or not KERNEL.TRIMMED_SSE2,
                                reason="no compiled closing loops, or no SSE2 (the scalar loops are all there is)")

RING = 30


def sse2(on: bool) -> AbstractContextManager[None]:
    assert KERNEL is not None
    return switched(KERNEL.trimmed_sse2, on)


def trimmed(on: bool, seed: int, k: int, horizons: list[int], pos: int, bad: float | None) -> tuple[bool, bytes]:
    """The answer and the output's bytes (a NaN sentinel where nothing was written)."""
    assert KERNEL is not None
    rng = np.random.default_rng(seed)
    n = k + 5
    rings = [np.asfortranarray(rng.uniform(0.0, 40.0, size=(n, RING)).astype(np.float32)) for _ in range(3)]
    rings[1][rng.random((n, RING)) < 0.3] = 0.0  # some excess over a zero mean
    if bad is not None:
        rings[int(rng.integers(0, 3))][int(rng.integers(0, n)), int(rng.integers(0, RING))] = bad
    sum_m = rng.uniform(0.0, 100.0, size=(n, len(horizons) + 1))
    cand = rng.integers(0, n, size=k).astype(np.intp)
    out = np.full((5, len(horizons), k), np.nan)
    with sse2(on):
        ok = KERNEL.horizon_trimmed(*rings, sum_m, cand, pos, np.array(horizons, dtype=np.intp), out)
    return bool(ok), out.tobytes()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 21),
       st.sampled_from([[3, 10, 30], [1], [2, 2, 7], [30], [5, 4], [1, 3, 10, 30]]), st.integers(0, RING - 1),
       st.sampled_from([None, None, np.nan, np.inf, -np.inf]))
def test_the_pairs_give_the_scalar_loops_bits(seed: int, k: int, horizons: list[int], pos: int,
                                              bad: float | None) -> None:
    on = trimmed(True, seed, k, horizons, pos, bad)
    assert on == trimmed(False, seed, k, horizons, pos, bad)
    if bad is None:
        assert on[0]
