"""The compiled loops of one closed window's evidence rings and scores
(spikedetect/kernel/_closing_record.pxi) against their numpy references, by bytes:
:func:`spikedetect.core.window_scores.gather_evidence` (the sums' means, ``evidence.record`` and
its once-a-lap resum, the horizon sums) and :func:`~spikedetect.core.window_scores.raw_scores`
(``surprise`` of the counts and the candidates' sums), with NaN, infinite, signed-zero, huge and
Poisson-boundary values.
"""

from __future__ import annotations

from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.columns import stored
from tests.core.kernels import bits, using_kernel

from spikedetect.core import evidence, leaf_window, negbin, window_scores
from spikedetect.core.config import DetectorConfig
from spikedetect.core.detectors import make_baseline
from spikedetect.core.detectors.base import Expectation
from spikedetect.core.evidence import EVIDENCE_COLUMNS, HORIZONS
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")
EDGE = [0.0, -0.0, 0.02, 1.0, 1.0001, 1.00011, 2.0, 8.0, 1e-9, 1e-300, 5e-324, 3.4e38, 1e300, 2.0**53,
        float("inf"), -float("inf"), float("nan"), -1.0]
MODULES = (window_scores, leaf_window, evidence, negbin)
H = len(HORIZONS)
W = DetectorConfig().window_ms


def _both(call: Any) -> list[Any]:
    """``call()`` on the numpy path (every module's), then with the compiled loops."""
    out = []
    for kernel in (None, KERNEL):
        with using_kernel(MODULES, kernel), np.errstate(all="ignore"):
            out.append(call())
    return out


def _draw(rng: np.random.Generator, shape: tuple[int, ...], edge: float, scale: float = 20.0) -> np.ndarray:
    v = rng.random(shape) * scale
    if rng.random() < 0.5:
        v = np.round(v)
    pick = rng.random(shape) < edge
    v[pick] = rng.choice(EDGE, size=int(pick.sum()))
    return v


def _expectation(rng: np.random.Generator, n: int, edge: float) -> Expectation:
    kind = rng.random(n)
    phi = np.where(kind < 0.3, 1.0, np.where(kind < 0.5, rng.choice([1.0001, 1.00011, 0.5], size=n),
                                             _draw(rng, (n,), edge, 4.0) + 1.0))
    return Expectation(_draw(rng, (n,), edge), phi, rng.integers(0, 4, size=n).astype(np.int8),
                       {"own": _draw(rng, (n,), edge, 3.0)})


def _bytes(*arrays: np.ndarray) -> list[bytes]:
    return [np.ascontiguousarray(a).tobytes() + repr(a.shape).encode() + a.dtype.str.encode() for a in arrays]


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40), st.lists(st.integers(0, 29), min_size=1, max_size=4), st.sampled_from([0.0, 0.02, 0.2]),
       st.integers(0, 2**32 - 1))
def test_gather_evidence_is_bit_identical(n: int, slots: list[int], edge: float, seed: int) -> None:
    """Windows at random ring positions (a lap's 0 included), rows done and not."""
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        base = {name: (rng.random((n + 2, *shape)) * 30).astype(dtype) for name, (shape, dtype, _) in
                EVIDENCE_COLUMNS.items()}
    windows = [(s * W, _draw(rng, (n,), edge, 40.0), _expectation(rng, n, edge), rng.random(n) < 0.2) for s in slots]

    def run() -> list[bytes]:
        cols = stored({k: v.copy() for k, v in base.items()})
        ks = SimpleNamespace(size=n, baseline=SimpleNamespace(cols=cols))
        got = []
        for ws, observed, exp, done in windows:
            hz = window_scores.gather_evidence(ks, DetectorConfig(), ws, observed, exp, done)  # type: ignore[arg-type]
            got += _bytes(hz.rows, hz.block, *cols.values())
        return got

    got = _both(run)
    assert got[0] == got[1]


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40), st.sampled_from([0.0, 0.05, 0.3]), st.integers(0, 2**32 - 1))
def test_raw_scores_is_bit_identical(n: int, edge: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    observed, exp = _draw(rng, (n,), edge, 60.0), _expectation(rng, n, edge)
    rows = np.flatnonzero(rng.random(n) < 0.5)
    block = _draw(rng, (5, H - 1, len(rows)), edge, 200.0)
    block[3] = np.where(rng.random(block[3].shape) < 0.3, 1.0, block[3])
    hz = window_scores.Horizons(rows, block[0], block[1], block[2], block[3], block[4], block)
    got = _both(lambda: _bytes(window_scores.raw_scores(observed, exp, hz)))
    assert got[0] == got[1]


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 300), st.sampled_from([0.0, 0.02, 0.3]), st.sampled_from([1.0, 0.5, 0.01]),
       st.integers(0, 2**32 - 1))
def test_the_lap_resum_is_bit_identical(n: int, edge: float, share: float, seed: int) -> None:
    """numpy's summation order for the gathered rings: column after column from 0.0, pairwise for
    a single row (signed zeros, huge and infinite float32 values, NaN)."""
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        cols = {name: (rng.random((n + 2, *shape)) * 10.0 ** rng.integers(-3, 9, size=(n + 2, *shape))).astype(dtype)
                for name, (shape, dtype, _) in EVIDENCE_COLUMNS.items()}
    for name in ("ring_x", "ring_m", "ring_v"):
        pick = rng.random(cols[name].shape) < edge
        cols[name][pick] = rng.choice([0.0, -0.0, -0.0, 1e-45, 3.4e38, np.inf, -np.inf, np.nan], size=int(pick.sum()))
    rows = np.flatnonzero(rng.random(n + 2) < share)

    def run() -> list[bytes]:
        mine = stored({k: v.copy() for k, v in cols.items()})
        evidence._resum(mine, rows)
        return _bytes(*mine.values())

    got = _both(run)
    assert got[0] == got[1]


@needs_kernel
@pytest.mark.parametrize("rows", [[0], [0, 1], [1, 2, 3]])
def test_the_lap_resum_of_negative_zeros(rows: list[int]) -> None:
    """Rings of -0.0 only: numpy's sums start from 0.0 (one row or many)."""
    cols = {name: np.full((4, *shape), -0.0, dtype=dtype) for name, (shape, dtype, _) in EVIDENCE_COLUMNS.items()}
    cols["ring_v"][:, ::7] = 1e-45

    def run() -> list[bytes]:
        mine = stored({k: v.copy() for k, v in cols.items()})
        evidence._resum(mine, np.array(rows, dtype=np.intp))
        return _bytes(*mine.values())

    got = _both(run)
    assert got[0] == got[1]


@needs_kernel
@pytest.mark.parametrize("rows", [[0, 1, 2, 3, 4], [1, 2, 3], [1, 3, 4], [2]])
@pytest.mark.parametrize("bad", [None, np.nan, np.inf])
@pytest.mark.parametrize("ring", ["ring_x", "ring_m", "ring_v"])
def test_the_lap_resum_declines_a_nan_sum_and_writes_nothing(rows: list[int], bad: float | None, ring: str) -> None:
    """The kernel declines, every sum left as it was, where a row's sum over the longest horizon
    comes out NaN: a NaN read anywhere in it, of any ring, or infinities of both signs. Finite
    rings it sums itself, as numpy does (contiguous rows, others, a single row); a NaN past the
    longest horizon it does not read."""
    assert KERNEL is not None
    rng = np.random.default_rng(7)
    idx = np.array(rows, dtype=np.intp)
    names = ("ring_x", "ring_m", "ring_v", "sum_x", "sum_m", "sum_v")
    for pos in (0, 29, 20, 1):  # the newest window, the one before, within the lap, the oldest
        cols = stored({name: rng.random((5, *shape)).astype(dtype) for name, (shape, dtype, _) in
                       EVIDENCE_COLUMNS.items()})
        if bad is not None:
            cols[ring][rows[-1], pos] = bad
            cols[ring][rows[-1], 15] = -bad  # NaN, or the other infinity
        before = {k: cols[k].tobytes() for k in names}
        ref = stored({k: v.copy() for k, v in cols.items()})
        with using_kernel(MODULES, None), np.errstate(invalid="ignore"):
            evidence._resum(ref, idx)
        assert bool(KERNEL.evidence_resum(*(cols[k] for k in names), idx, evidence._LONG)) is (bad is None)
        want = before if bad is not None else {k: ref[k].tobytes() for k in names}
        assert {k: cols[k].tobytes() for k in names} == want
    cols = stored({name: rng.random((5, *shape)).astype(dtype) for name, (shape, dtype, _) in EVIDENCE_COLUMNS.items()})
    cols[ring][rows[-1], 20] = np.nan  # the 11th newest: past horizons of 3 and 10
    assert KERNEL.evidence_resum(*(cols[k] for k in names), idx, np.array([3, 10], dtype=np.intp))


REGIONS = ["US/CA/LA", "US/CA", "US/NY", "DE/BY/München", "FR/IDF", "US/CA/SF"]
counts = st.one_of(st.integers(-3, 10**6), st.floats(-1e6, 1e6), st.sampled_from(EDGE))
leaves = st.dictionaries(st.tuples(st.sampled_from(REGIONS), st.sampled_from(["a", "b"]), st.sampled_from(["app"])),
                         counts, max_size=12)


@needs_kernel
@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["ig", "fb"]), leaves), min_size=1, max_size=4))
def test_observe_marks_the_same_keys_seen(windows: list[dict[str, dict[tuple[str, str, str], float]]]) -> None:
    """Negative, NaN, infinite and signed-zero counts: the tree sums and the keys marked seen."""
    def run() -> list[Any]:
        config = DetectorConfig()
        ks = Keyspace(make_baseline(config.detector, config.window_ms))
        got = [bits(window_scores.observe(ks, LeafWindow(per_service), i * W)) for i, per_service in enumerate(windows)]
        return [got, list(ks.keys), ks.last_seen[:ks.size].tobytes()]

    got = _both(run)
    assert got[0] == got[1]


@needs_kernel
def test_the_kernels_check_their_bounds() -> None:
    assert isinstance(KERNEL, ModuleType)
    work = np.zeros(KERNEL.NB_WORK * (2 + 3 * 1))
    consts = negbin._CONSTS
    with pytest.raises(IndexError):  # a gathered position past the counts and sums
        KERNEL.nb_finish(np.array([7], dtype=np.intp), work, 1, True, np.array([0], dtype=np.intp), consts, 2.3,
                         300.0, True, np.zeros((H, 2)))
    with pytest.raises(IndexError):  # a candidate row past the rows
        KERNEL.nb_finish(np.zeros(0, dtype=np.intp), work, 0, True, np.array([2], dtype=np.intp), consts, 2.3, 300.0,
                         True, np.zeros((H, 2)))
    with pytest.raises(ValueError):  # scratch too small
        KERNEL.nb_prepare(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros((5, H - 1, 0)), np.zeros(2, dtype=np.intp),
                          np.zeros(KERNEL.NB_WORK * 2 - 1))
