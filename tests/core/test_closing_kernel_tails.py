"""The compiled composition tails (spikedetect/kernel/_closing_tails.pxi: ``tails_move``,
``tails_score``) against :func:`spikedetect.core.composition.tails.score_tails`' numpy code:
the moved sums and all four outputs identical by bytes (``-0.0`` and inf included), on random
windows, several windows in a row, and edge values. A NaN compares as any NaN: its sign and
payload bits follow the operand order of the machine instruction, which a C compiler may swap in
a commutative operation (a NaN prints and compares alike whatever its bits).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core.composition import tails
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")

EDGE = [0.0, -0.0, 1.0, 3.0, 20.0, 1e-300, 5e-324, 0.005, 0.5, 2.0**53, 1e300, np.inf, -np.inf, np.nan]
counts = st.one_of(st.integers(0, 12).map(float), st.integers(0, 2000).map(float), st.sampled_from(EDGE),
                   st.floats(allow_nan=True, allow_infinity=True))
share = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, -0.0, 0.004, 0.005, 0.3, 1.0, np.nan]), st.floats())
acc_value = st.one_of(st.floats(0.0, 500.0), st.sampled_from(EDGE), st.floats())


def _run(kernel: Any, x: np.ndarray, shares: np.ndarray, acc: np.ndarray) -> list[bytes]:
    """One window of score_tails on copies laid out as the detector's (views of wider arrays)."""
    saved, tails._kernel = tails._kernel, kernel
    try:
        m, k = x.shape
        wide_s, wide_a = np.zeros((m + 2, 16)), np.zeros((m + 2, 16, 5))
        wide_s[:m, :k], wide_a[:m, :k] = shares, acc
        x = np.ascontiguousarray(x)
        with np.errstate(all="ignore"):
            t = tails.score_tails(x, x.sum(axis=1), wide_s[:m, :k], wide_a[:m, :k])
        return [_bits(a) for a in (t.used, t.score, t.qual, t.shifting, wide_a, wide_s)]
    finally:
        tails._kernel = saved


def _bits(a: np.ndarray) -> bytes:
    """The bytes of ``a`` with every NaN made the one NaN."""
    if a.dtype.kind == "f":
        a = np.where(np.isnan(a), np.nan, a)
    return a.tobytes()


def _same(x: np.ndarray, shares: np.ndarray, acc: np.ndarray) -> None:
    ref, got = _run(None, x, shares, acc), _run(KERNEL, x, shares, acc)
    names = ["used", "score", "qual", "shifting", "acc", "shares"]
    assert [n for n, a, b in zip(names, ref, got, strict=True) if a != b] == []


@needs_kernel
@settings(max_examples=400, deadline=None)
@given(st.integers(0, 6), st.integers(1, 16), st.data())
def test_score_tails_is_bit_identical_to_numpy(m: int, k: int, data: st.DataObject) -> None:
    x = np.array(data.draw(st.lists(counts, min_size=m * k, max_size=m * k))).reshape(m, k)
    shares = np.array(data.draw(st.lists(share, min_size=m * k, max_size=m * k))).reshape(m, k)
    acc = np.array(data.draw(st.lists(acc_value, min_size=m * k * 5, max_size=m * k * 5))).reshape(m, k, 5)
    _same(x, shares, acc)


@needs_kernel
def test_windows_of_a_shifting_mix_are_bit_identical() -> None:
    """Realistic windows: learned shares, a category rising over a few windows (the qualifying,
    shifting and CUSUM branches all taken), the sums carried from window to window."""
    rng = np.random.default_rng(7)
    m, k = 40, 9
    shares = rng.dirichlet(np.ones(k), size=m)
    shares[:, -1] = 0.0
    acc = [np.zeros((m, k, 5)), np.zeros((m, k, 5))]
    seen = {"qual": 0, "shifting": 0, "cand": 0}
    for w in range(30):
        lam = shares * rng.uniform(5, 400, size=(m, 1))
        lam[: w, 2] *= 1 + w / 3  # more and more rows shift towards column 2
        x = rng.poisson(lam).astype(float)
        x[:3, -1] = w  # a new category
        got = []
        for i, kernel in enumerate((None, KERNEL)):
            saved, tails._kernel = tails._kernel, kernel
            try:
                t = tails.score_tails(x, x.sum(axis=1), shares, acc[i])
            finally:
                tails._kernel = saved
            got.append([_bits(a) for a in (t.used, t.score, t.qual, t.shifting, acc[i])])
        assert got[0] == got[1]
        seen["qual"] += int(t.qual.sum())
        seen["shifting"] += int(t.shifting.sum())
        seen["cand"] += int((t.score > 0).sum())
    assert min(seen.values()) > 10, seen


@needs_kernel
def test_edge_windows_are_bit_identical() -> None:
    """Zero rows, signed zeros, NaN, inf and huge values in every input, and (0, k) windows."""
    for m, k in [(0, 1), (0, 16), (1, 1)]:
        _same(np.zeros((m, k)), np.zeros((m, k)), np.zeros((m, k, 5)))
    grid = np.array(EDGE)
    rng = np.random.default_rng(3)
    for _ in range(50):
        x = rng.choice(grid, size=(5, 7))
        _same(x, rng.choice(grid, size=(5, 7)), rng.choice(grid, size=(5, 7, 5)))
    for value in EDGE:
        _same(np.full((2, 3), value), np.full((2, 3), 0.2), np.full((2, 3, 5), value))
        _same(np.full((2, 3), 30.0), np.full((2, 3), value), np.full((2, 3, 5), 4.0))
