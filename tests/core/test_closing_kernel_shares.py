"""The compiled learning of a window whose members step in Python (spikedetect/kernel/
_closing_shares.pxi: ``composition_learn``) against the numpy code of ``ShareBank.learn``: shares
and reports learned identical by bytes, on random rows and edge values (the other windows learn
in the compiled window: test_closing_kernel_tails.py); and whole detectors, every loop compiled
or none, through a shift that opens and closes an incident: the same events and state after
every window.
"""

from __future__ import annotations

from functools import partial
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import bits

from spikedetect.core.composition import detector, fused, shares
from spikedetect.core.composition.detector import CompositionDetector
from spikedetect.core.composition.tails import Tails
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")

EDGE = [0.0, -0.0, 1.0, 0.5, 1999.0, 2000.0, 2001.0, 1e9, 2e9, 1e300, np.inf, -np.inf, np.nan]
reals = st.one_of(st.floats(0.0, 5000.0), st.sampled_from(EDGE), st.floats())
MODULES = (detector, fused, shares)


def _with(kernel: ModuleType | None, call: Any) -> Any:
    saved = [mod._kernel for mod in MODULES]
    for mod in MODULES:
        mod._kernel = kernel
    try:
        with np.errstate(all="ignore"):
            return call()
    finally:
        for mod, k in zip(MODULES, saved, strict=True):
            mod._kernel = k


def _bank(m: int, k: int, data: st.DataObject) -> CompositionDetector:
    det = CompositionDetector(60_000, {"name": "seasonal", "params_hash": "x"})
    for r in range(m):
        det.row(("ig", f"k{r}"))
    det.shares[:m, :k] = np.array(data.draw(st.lists(reals, min_size=m * k, max_size=m * k))).reshape(m, k)
    det.learned[:m] = data.draw(st.lists(reals, min_size=m, max_size=m))
    det.hits[:m] = data.draw(st.lists(st.integers(0, 5), min_size=m, max_size=m))
    return det


@needs_kernel
@settings(max_examples=400, deadline=None)
@given(st.integers(0, 6), st.integers(1, 16), st.data())
def test_learning_after_opening_is_bit_identical_to_numpy(m: int, k: int, data: st.DataObject) -> None:
    flags = [np.array(data.draw(st.lists(st.booleans(), min_size=m * k, max_size=m * k)), dtype=bool).reshape(m, k)
             for _ in range(3)]
    score = np.array(data.draw(st.lists(st.one_of(st.sampled_from([0.0, 7.0, 13.9, 14.0, 300.0, np.nan]), reals),
                                        min_size=m * k, max_size=m * k))).reshape(m, k)
    t = Tails(flags[0], score, flags[1], flags[2])
    x = np.array(data.draw(st.lists(reals, min_size=m * k, max_size=m * k))).reshape(m, k)
    n = np.array(data.draw(st.lists(reals, min_size=m, max_size=m)))
    held = np.array(data.draw(st.lists(st.booleans(), min_size=m, max_size=m)), dtype=bool)
    member = data.draw(st.lists(st.booleans(), min_size=m, max_size=m))
    base = _bank(m, k, data)
    got = []
    for kernel in (None, KERNEL):
        det = _copy(base, m)
        for r in np.flatnonzero(member).tolist():
            det.members[det.row_keys[r]] = None  # type: ignore[assignment]  # only membership counts here

        def step(det: CompositionDetector = det) -> list[bytes]:
            opened, weight = det._opening(t, n, held)
            out = [bits(opened), bits(weight), bits(det.hits[:m])]
            det._learn_window(x, n, weight)
            return [*out, bits(weight), bits(det.shares[:m]), bits(det.learned[:m])]
        got.append(_with(kernel, step))
    assert got[0] == got[1]


@needs_kernel
def test_learning_at_the_edges_is_bit_identical() -> None:
    """Every row learns (no flags), at each edge value of the reports learned (the cold/warm
    boundary 2000 and the 1e9 cap included) and of the window's total."""
    grid = np.array(np.meshgrid(EDGE, [0.0, -0.0, 1.0, 37.0, 1e6, np.inf, np.nan])).reshape(2, -1)
    m, k = grid.shape[1], 3
    base = CompositionDetector(60_000, {"name": "seasonal", "params_hash": "x"})
    for r in range(m):
        base.row(("ig", f"k{r}"))
    base.learned[:m] = grid[0]
    base.shares[:m, :k] = [0.5, 0.0, -0.0]
    with np.errstate(invalid="ignore"):
        x = np.outer(grid[1], [0.25, 0.75, 0.0])
    got = []
    for kernel in (None, KERNEL):
        det = _copy(base, m)

        def step(det: CompositionDetector = det) -> list[bytes]:
            weight = np.ones(m)
            det._learn_window(x, grid[1].copy(), weight)
            return [bits(det.shares[:m]), bits(det.learned[:m])]
        got.append(_with(kernel, step))
    assert got[0] == got[1]


def _copy(base: CompositionDetector, m: int) -> CompositionDetector:
    det = CompositionDetector(60_000, {"name": "seasonal", "params_hash": "x"})
    for sk in base.row_keys:
        det.row(sk)
    det.shares[:m], det.learned[:m], det.hits[:m] = base.shares[:m], base.learned[:m], base.hits[:m]
    return det


@needs_kernel
def test_detectors_through_a_shift_are_identical_window_by_window() -> None:
    """Three keys of one path and a few more, a category rising for 30 windows after 600 normal
    ones (opens and closes an incident), one key blocked for a while: events and state alike."""
    keys = [("ig", "*"), ("ig", "US"), ("ig", "US/CA"), ("ig", "DE"), ("ig", "DE/BY")]
    index = {sk: i for i, sk in enumerate(keys)}
    cats = ("direct_messages", "feed", "login", "server_connection", "profile", "notifications", "other")
    normal = np.array([0.20, 0.25, 0.15, 0.03, 0.11, 0.10, 0.16])
    shifted = normal * 0.8 / 0.97
    shifted[3] = 0.2
    dets = [CompositionDetector(60_000, {"name": "seasonal", "params_hash": "x"}) for _ in range(2)]
    rng = np.random.default_rng(5)
    opened = 0
    for i in range(700):
        leaf = {}
        for region, total in (("US/CA/LA", 80.0), ("DE/BY/München", 30.0)):
            mix = shifted if region.startswith("US") and 600 <= i < 630 else normal
            for c, got in zip(cats, rng.multinomial(rng.poisson(total), mix), strict=True):
                if got:
                    leaf[(region, c, "app")] = float(got)
        expected = np.array([110.0, 80.0, 80.0, 30.0, 30.0])
        blocked = np.array([False, False, False, 300 <= i < 320, 300 <= i < 320])
        runs = [_with(kernel, partial(det.close_window, i * 60_000, LeafWindow({"ig": leaf}), keys, index, expected, blocked))
                for kernel, det in zip((None, KERNEL), dets, strict=True)]
        assert repr(runs[0]) == repr(runs[1])
        opened += sum(ev.type == "opened" for ev in runs[0])
        states = [[bits(a) for a in (d.shares, d.acc, d.learned, d.hits)] + [repr(d.members)] for d in dets]
        assert states[0] == states[1], i
    assert opened == 1
