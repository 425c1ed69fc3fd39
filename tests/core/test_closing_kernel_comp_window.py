"""The composition window in one call (``composition_window``, spikedetect/kernel/_closing_comp_window.pxi)
against the same window in the passes one by one (``composition_front``, ``negbin.nb_tails``,
numpy's exp, ``composition_back``): the same rows that step, scratch (totals, weights, scores,
flags, the candidates' tails) and bank (moved sums, shares, reports learned, hits), by bytes.
The one call takes its logs and exp with numpy's own float64 loops (taken from the ufuncs), so
windows with many candidates over a wide range of counts and means check those loops' bits
against numpy's calls. That the window is numpy's (``CompositionDetector._window``' reference
code) is test_closing_kernel_tails.py's, which runs through the one call whenever counts are whole.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core import negbin
from spikedetect.core.composition import fused
from spikedetect.core.composition.detector import CompositionDetector
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")


def _bank(m: int, k: int, rng: np.random.Generator, wide: bool) -> CompositionDetector:
    det = CompositionDetector(60_000, {"name": "seasonal", "params_hash": "x"})
    for c in range(k):
        det.col(f"c{c}")
    for r in range(m):
        det.row(("ig", f"k{r}"))
    det.shares[:m, :k] = rng.dirichlet(np.ones(k), size=m)
    det.shares[: m // 3, 0] = 0.0
    scale = rng.uniform(0.0, 1e5 if wide else 50.0, size=(m, k, 1))
    det.acc[:m, :k] = rng.uniform(0.0, 1.0, size=(m, k, 5)) * scale
    det.learned[:m] = rng.choice([0.0, 500.0, 2000.0, 5000.0], size=m)
    det.hits[:m] = rng.integers(0, 3, size=m)
    return det


def _scratch(m: int, k: int) -> fused.FusedWindow:
    """A window's scratch, zeros (what neither way writes compares equal)."""
    fw = fused.FusedWindow()
    fw._fit(m, k)
    for a in (fw.f, fw.b, fw.idx, fw.tail):
        a[...] = 0
    return fw


def _one_call(det: CompositionDetector, x: np.ndarray, held: np.ndarray) -> tuple[int, fused.FusedWindow]:
    fw = _scratch(*x.shape)
    steps = KERNEL.composition_window(fw._hold(KERNEL, det), x, held)
    return steps, fw


def _passes(det: CompositionDetector, x: np.ndarray, held: np.ndarray) -> tuple[int, fused.FusedWindow]:
    """The window as FusedWindow ran it before the one call (five calls, numpy's between them)."""
    m, k = x.shape
    fw = _scratch(m, k)
    arrays, f = fw._hold(KERNEL, det), fw.f
    got = KERNEL.composition_front(arrays, x, False)
    assert got >= 0
    if got:
        cells, at = 3 * m * k, 4 * m
        negbin.nb_tails(KERNEL, f[at:at + got], f[at + cells:at + cells + got], fw.ones[:got], fused._NO_SUMS,
                        fused._NO_ROWS, False, fw.tail[:, :got])
    np.exp(f[m:2 * m], out=f[2 * m:3 * m])
    return KERNEL.composition_back(arrays, x, held, got), fw


def _state(det: CompositionDetector, fw: fused.FusedWindow, steps: int, m: int, k: int) -> list[Any]:
    cells, mk = 3 * m * k, m * k
    return [steps, fw.f[:4 * m + 4 * cells].tobytes(), fw.b[:3 * mk].tobytes(), fw.idx[:cells + steps].tobytes(),
            det.acc[:m].tobytes(), det.shares[:m].tobytes(), det.learned[:m].tobytes(), det.hits[:m].tobytes()]


def _same(seed: int, m: int, k: int, wide: bool) -> int:
    """One random window both ways; returns how many candidates it had."""
    rng = np.random.default_rng(seed)
    dets = [_bank(m, k, rng, wide) for _ in range(2)]
    for det in dets[1:]:
        det.shares[:], det.acc[:], det.learned[:], det.hits[:] = dets[0].shares, dets[0].acc, dets[0].learned, dets[0].hits
    lam = rng.uniform(0.0, 2e4 if wide else 300.0, size=(m, 1)) * rng.dirichlet(np.ones(k), size=m)
    lam[:, 0] *= rng.choice([1.0, 3.0, 30.0], size=m)  # risen: candidates in each horizon
    x = rng.poisson(lam).astype(float)
    held = rng.choice(np.array([0, 0, 0, 1, 2, 3], dtype=np.uint8), size=m)
    with np.errstate(all="ignore"):
        got_one, fw_one = _one_call(dets[0], x, held)
        got_passes, fw_passes = _passes(dets[1], x, held)
    assert got_one >= 0
    one, passes = _state(dets[0], fw_one, got_one, m, k), _state(dets[1], fw_passes, got_passes, m, k)
    names = ["steps", "f", "b", "idx", "acc", "shares", "learned", "hits"]
    assert [n for n, a, b in zip(names, one, passes, strict=True) if a != b] == []
    return int(np.count_nonzero(fw_passes.f[4 * m + 2 * 3 * m * k:4 * m + 3 * 3 * m * k]))


@needs_kernel
@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.integers(1, 12), st.booleans())
def test_one_call_is_the_passes_bit_for_bit(seed: int, m: int, k: int, wide: bool) -> None:
    _same(seed, m, k, wide)


@needs_kernel
def test_many_candidates_over_a_wide_range_are_the_passes() -> None:
    """Thousands of candidates' logs (counts and means from a few to 10**5) taken by numpy's loops
    from the kernel, the same bits as numpy's calls."""
    assert sum(_same(seed, 120, 9, seed % 2 == 0) for seed in range(40)) > 5_000


@needs_kernel
def test_counts_not_whole_are_left_to_the_passes() -> None:
    """A count not whole: -1 and nothing moved (numpy's sums are to be given, the passes one by one)."""
    rng = np.random.default_rng(2)
    det = _bank(4, 3, rng, False)
    before = det.acc.tobytes(), det.shares.tobytes(), det.learned.tobytes(), det.hits.tobytes()
    x = np.full((4, 3), 2.0)
    x[1, 2] = 0.5
    assert _one_call(det, x, np.zeros(4, dtype=np.uint8))[0] == -1
    assert (det.acc.tobytes(), det.shares.tobytes(), det.learned.tobytes(), det.hits.tobytes()) == before


@needs_kernel
def test_the_one_call_refuses_what_does_not_fit() -> None:
    """Without arrays viewed it raises; a ufunc loop that is not float64 one-in one-out is refused."""
    window = KERNEL.CompositionWindow(fused._FRONT, fused._BACK, fused._LOOPS, fused._NB)
    with pytest.raises(ValueError, match="no arrays viewed"):
        KERNEL.composition_window(window, np.zeros((1, 1)), np.zeros(1, dtype=np.uint8))
    rest = fused._LOOPS[1:]
    for loops in (((np.add, np.add.types.index("dd->d")), *rest), ((np.log, np.log.types.index("f->f")), *rest),
                  (("log", 0), *rest)):
        with pytest.raises(ValueError, match="no float64 loop"):
            KERNEL.CompositionWindow(fused._FRONT, fused._BACK, loops, fused._NB)
