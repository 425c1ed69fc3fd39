"""The compiled composition window (spikedetect/core/composition/fused.py over
spikedetect/kernel/_closing_tails.pxi: ``composition_front``, ``composition_back``) against the
numpy code of ``CompositionDetector._window`` (``score_tails``, ``_opening``, the members'
steps, ``forget_evidence``, ``ShareBank.learn``): the moved sums, shares, reports learned, hits,
members, incidents and services touched identical by bytes (``-0.0`` and inf included), on
random windows (blocked rows, rows with an open member, counts not whole), several windows in a
row, and edge values. A NaN compares as any NaN: its sign and payload bits follow the operand
order of the machine instruction, which a C compiler may swap in a commutative operation.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import bits

from spikedetect.core.composition import detector, fused, shares
from spikedetect.core.composition.detector import CompositionDetector
from spikedetect.core.composition.members import KeyWindow
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")
MODULES = (detector, fused, shares)

EDGE = [0.0, -0.0, 1.0, 3.0, 20.0, 1e-300, 5e-324, 0.005, 0.5, 2.0**53, 1e300, np.inf, -np.inf, np.nan]
counts = st.one_of(st.integers(0, 12).map(float), st.integers(0, 2000).map(float), st.sampled_from(EDGE),
                   st.floats(allow_nan=True, allow_infinity=True))
share = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, -0.0, 0.004, 0.005, 0.3, 1.0, np.nan]), st.floats())
acc_value = st.one_of(st.floats(0.0, 500.0), st.sampled_from(EDGE), st.floats())
learned_value = st.one_of(st.sampled_from([0.0, 1999.0, 2000.0, 2001.0, 1e9, np.inf, np.nan]), st.floats(0.0, 5000.0))


def _detector(m: int, k: int) -> CompositionDetector:
    det = CompositionDetector(60_000, {"name": "seasonal", "params_hash": "x"})
    for c in range(k):
        det.col(f"c{c}")
    for r in range(m):
        det.row(("ig" if r % 2 else "fb", f"k{r}"))
    return det


def _open_member(det: CompositionDetector, r: int, k: int) -> None:
    """An open member on row ``r`` (its first category risen), as a window 10 windows ago opened it."""
    names = det.names()[:k]
    kw = KeyWindow(0, {names[0]: 9.0}, 9.0, {names[0]: 8.0}, det.shares[r], det.acc[r], det.cats)
    det.book.open(det.row_keys[r], 0, [names[0]], kw)


def _state(det: CompositionDetector, touched: set[str]) -> list[Any]:
    m = len(det.row_keys)
    return [bits(det.acc[:m]), bits(det.shares[:m]), bits(det.learned[:m]), bits(det.hits[:m]),
            repr(det.members), repr(det.groups), sorted(touched)]


def _run(kernel: ModuleType | None, det: CompositionDetector, ws: int, x: np.ndarray, block: np.ndarray) -> list[Any]:
    saved = [mod._kernel for mod in MODULES]
    for mod in MODULES:
        mod._kernel = kernel
    try:
        with np.errstate(all="ignore"):
            touched = det._window(ws, np.ascontiguousarray(x), block.copy())
    finally:
        for mod, was in zip(MODULES, saved, strict=True):
            mod._kernel = was
    return _state(det, touched)


def _pair(m: int, k: int, shares_: np.ndarray, acc: np.ndarray, learned: np.ndarray, hits: np.ndarray,
          members: list[int]) -> list[CompositionDetector]:
    dets = []
    for _ in range(2):
        det = _detector(m, k)
        det.shares[:m, :k], det.acc[:m, :k], det.learned[:m], det.hits[:m] = shares_, acc, learned, hits
        for r in members:
            _open_member(det, r, k)
        dets.append(det)
    return dets


def _same(dets: list[CompositionDetector], ws: int, x: np.ndarray, block: np.ndarray) -> list[Any]:
    ref, got = _run(None, dets[0], ws, x, block), _run(KERNEL, dets[1], ws, x, block)
    names = ["acc", "shares", "learned", "hits", "members", "groups", "touched"]
    assert [n for n, a, b in zip(names, ref, got, strict=True) if a != b] == []
    return ref


@needs_kernel
@settings(max_examples=400, deadline=None)
@given(st.integers(1, 6), st.integers(1, 16), st.data())
def test_a_window_is_bit_identical_to_numpy(m: int, k: int, data: st.DataObject) -> None:
    def draw(strategy: Any, size: int) -> np.ndarray:
        return np.array(data.draw(st.lists(strategy, min_size=size, max_size=size)))
    x = draw(counts, m * k).reshape(m, k)
    acc = draw(acc_value, m * k * 5).reshape(m, k, 5)
    hits = draw(st.integers(0, 5), m).astype(np.int64)
    block = draw(st.booleans(), m).astype(bool)
    members = data.draw(st.lists(st.integers(0, m - 1), unique=True, max_size=2))
    dets = _pair(m, k, draw(share, m * k).reshape(m, k), acc, draw(learned_value, m), hits, members)
    _same(dets, 60_000 * 10, x, block)


@needs_kernel
def test_windows_of_a_shifting_mix_are_bit_identical() -> None:
    """Realistic windows: learned shares, a category rising over a few windows (the qualifying,
    shifting, opening and CUSUM branches all taken, members opened, stepped and closed), blocked
    rows, the sums carried from window to window."""
    rng = np.random.default_rng(7)
    m, k = 40, 9
    mix = rng.dirichlet(np.ones(k), size=m)
    mix[:, -1] = 0.0
    dets = _pair(m, k, mix, np.zeros((m, k, 5)), np.full(m, 5000.0), np.zeros(m, dtype=np.int64), [])
    seen = {"opened": 0, "stepped": 0, "learned": 0}
    for w in range(60):
        lam = mix * rng.uniform(5, 400, size=(m, 1))
        lam[: w % 30, 2] *= 1 + (w % 30) / 3  # more and more rows shift towards column 2, twice
        x = rng.poisson(lam).astype(float)
        x[:3, -1] = w % 7  # a new category
        if w == 45:
            x[5, 1] += 0.5  # a count not whole: numpy's sums
        block = rng.random(m) < 0.1
        members_before = len(dets[0].members)
        learned_before = dets[0].learned[:m].copy()
        _same(dets, w * 60_000, x, block)
        seen["opened"] += max(0, len(dets[0].members) - members_before)
        seen["stepped"] += members_before
        seen["learned"] += int((dets[0].learned[:m] != learned_before).sum())
    assert min(seen.values()) > 5, seen


@needs_kernel
def test_edge_windows_are_bit_identical() -> None:
    """Signed zeros, NaN, inf and huge values in every input, blocked rows and members."""
    grid = np.array(EDGE)
    rng = np.random.default_rng(3)
    for i in range(60):
        m, k = 5, 7
        dets = _pair(m, k, rng.choice(grid, size=(m, k)), rng.choice(grid, size=(m, k, 5)),
                     rng.choice([0.0, 2000.0, 1e9, np.nan, np.inf], size=m), rng.integers(0, 3, size=m),
                     [1] if i % 2 else [])
        _same(dets, 600_000, rng.choice(grid, size=(m, k)), rng.random(m) < 0.3)
    for value in EDGE:
        _same(_pair(2, 3, np.full((2, 3), 0.2), np.full((2, 3, 5), value), np.full(2, 3000.0),
                    np.ones(2, dtype=np.int64), []), 600_000, np.full((2, 3), value), np.array([False, True]))
        _same(_pair(2, 3, np.full((2, 3), value), np.full((2, 3, 5), 4.0), np.full(2, value),
                    np.ones(2, dtype=np.int64), [0]), 600_000, np.full((2, 3), 30.0), np.array([True, False]))


@needs_kernel
def test_totals_of_counts_not_whole_are_numpys() -> None:
    """A row's total is numpy's pairwise sum: the compiled window adds counts itself only when every
    count is whole (any order then gives the same total), else it takes numpy's."""
    rng = np.random.default_rng(11)
    m, k = 8, 16
    x = rng.uniform(0, 50, size=(m, k)).round(1)
    assert sum(sum(row.tolist()) != total for row, total in zip(x, x.sum(axis=1), strict=True)) >= 3
    big = np.ones((m, k))
    big[0, :2] = 2.0**52  # whole, but past 2**53 in sum
    assert sum(big[0].tolist()) != big.sum(axis=1)[0]
    mix = rng.dirichlet(np.ones(k), size=m)
    dets = _pair(m, k, mix, np.zeros((m, k, 5)), np.full(m, 5000.0), np.zeros(m, dtype=np.int64), [])
    for w, counts_ in enumerate((x, big, x)):
        _same(dets, w * 60_000, counts_, np.zeros(m, dtype=bool))


@needs_kernel
def test_rows_added_past_the_arrays_are_worked_on_in_the_new_arrays() -> None:
    """The compiled window holds the bank's arrays between windows, viewed once: when rows are
    added past them (the arrays are replaced, twice as long) it views and works on the new ones."""
    rng = np.random.default_rng(5)
    k = 6
    dets = _pair(10, k, rng.dirichlet(np.ones(k), size=10), np.zeros((10, k, 5)), np.full(10, 5000.0),
                 np.zeros(10, dtype=np.int64), [])
    for w in range(8):
        if w == 4:
            for det in dets:
                arrays = det.shares, det.acc, det.learned, det.hits
                for r in range(10, 30):
                    det.row(("ig", f"new{r}"))
                assert all(a is not b for a, b in zip(arrays, (det.shares, det.acc, det.learned, det.hits), strict=True))
        m = len(dets[0].row_keys)
        _same(dets, w * 60_000, rng.poisson(40.0, size=(m, k)).astype(float), rng.random(m) < 0.1)
        assert dets[1]._fused._arrays.builds == (1 if w < 4 else 2)  # (the scratch still fits 30 rows)
    assert dets[0].learned[10:30].min() > 0  # the new rows learned


@needs_kernel
def test_the_passes_refuse_a_hold_without_arrays() -> None:
    """Before its first ``take`` (or after one that failed) the hold views nothing: both passes
    raise rather than read views that are not there."""
    arrays = KERNEL.CompositionArrays(fused._FRONT, fused._BACK)
    x = np.zeros((1, 1))
    with pytest.raises(ValueError, match="no arrays viewed"):
        KERNEL.composition_front(arrays, x, False)
    with pytest.raises(ValueError, match="no arrays viewed"):
        KERNEL.composition_back(arrays, x, np.zeros(1, dtype=np.uint8), 0)
    det = _detector(2, 1)
    with pytest.raises(ValueError, match="do not fit"):
        arrays.take((det.shares, det.acc[:1], det.learned, det.hits, np.zeros(8), np.zeros(8, dtype=np.uint8),
                     np.zeros(8, dtype=np.intp), np.zeros((1, 8))))
    with pytest.raises(ValueError, match="no arrays viewed"):
        KERNEL.composition_front(arrays, x, False)
    assert arrays.builds == 0
