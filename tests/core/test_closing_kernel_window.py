"""The compiled loops that score a closed window (spikedetect/kernel/_closing_window.pxi and
_closing_signals.pxi) against their numpy references, by bytes: the candidate rows and trimmed
sums (:func:`spikedetect.core.evidence.horizon_block`), calibration with candidate rows
(:func:`~spikedetect.core.evidence.calibrate`), the parents' priors, the signals with their
reported scores and the muting (:mod:`spikedetect.core.window_scores`), on random inputs with
NaN, infinite, signed-zero, huge and boundary values.
"""

from __future__ import annotations

from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.columns import stored

from spikedetect.core import evidence, window_scores
from spikedetect.core.config import DetectorConfig, DetectorSpec
from spikedetect.core.detectors import make_baseline
from spikedetect.core.detectors.base import Expectation
from spikedetect.core.evidence import EVIDENCE_COLUMNS, HORIZONS
from spikedetect.core.policy import IncidentPolicy
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")

EDGE = [0.0, -0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0, 30.0, 1e-9, 1e-300, 5e-324, 3.4e38, 1e300, float("inf"),
        -float("inf"), float("nan"), -1.0]
H = len(HORIZONS)


def _both(module: Any, call: Any) -> list[Any]:
    """``call()`` with ``module``'s numpy path, then with the compiled loops."""
    out = []
    for kernel in (None, KERNEL):
        saved, module._kernel = module._kernel, kernel
        try:
            with np.errstate(all="ignore"):
                out.append(call())
        finally:
            module._kernel = saved
    return out


def _draw(rng: np.random.Generator, shape: tuple[int, ...], edge: float, scale: float = 20.0) -> np.ndarray:
    """Random values, a share ``edge`` of them taken from :data:`EDGE`."""
    v = rng.random(shape) * scale
    pick = rng.random(shape) < edge
    v[pick] = rng.choice(EDGE, size=int(pick.sum()))
    return v


def _cols(rng: np.random.Generator, n: int, edge: float) -> dict[str, np.ndarray]:
    with np.errstate(all="ignore"):
        cols = {name: _draw(rng, (n + 2, *shape), edge).astype(dtype) for name, (shape, dtype, _) in
                EVIDENCE_COLUMNS.items()}
        cols["sum_x"] = cols["sum_m"] + _draw(rng, cols["sum_m"].shape, edge, 40.0) - 5.0  # many candidates
    return stored(cols)


def _bytes(*arrays: np.ndarray) -> list[bytes]:
    return [np.ascontiguousarray(a).tobytes() + repr(a.shape).encode() + a.dtype.str.encode() for a in arrays]


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40), st.integers(0, 29), st.sampled_from([0.0, 0.01, 0.2]), st.integers(0, 2**32 - 1))
def test_horizon_block_is_bit_identical(n: int, pos: int, edge: float, seed: int) -> None:
    cols = _cols(np.random.default_rng(seed), n, edge)
    got = _both(evidence, lambda: _bytes(*evidence.horizon_block(cols, n, pos, 4.0)))
    assert got[0] == got[1]


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40), st.sampled_from([0.0, 0.05, 0.3]), st.integers(0, 2**32 - 1))
def test_calibrate_is_bit_identical(n: int, edge: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cols = _cols(rng, n, edge)
    raw = _draw(rng, (H, n), edge)
    rows = np.flatnonzero(rng.random(n) < 0.5)
    got = _both(evidence, lambda: _bytes(evidence.calibrate(cols, n, raw, rows)))
    assert got[0] == got[1]


def _keyspace(rng: np.random.Generator, n: int, edge: float) -> Any:
    """A keyspace's parent tree (parents before children), depths, shares and mute times."""
    parent = np.array([-1 if i == 0 or rng.random() < 0.15 else int(rng.integers(0, i)) for i in range(n)], dtype=np.intp)
    depth = np.zeros(n, dtype=np.int8)
    for i in range(n):
        depth[i] = depth[parent[i]] + 1 if parent[i] >= 0 else 0
    shares = _draw(rng, (n,), edge, 1.0)
    shares[rng.random(n) < 0.2] = np.nan
    baseline = SimpleNamespace(shares=lambda rows: shares[rows].copy(), floor_mean=0.5)
    return SimpleNamespace(size=n, parent=parent, depth=depth, baseline=baseline,
                           mute_until=rng.integers(0, 4, size=n + 3).astype(np.int64) * 60_000)


def _expectation(rng: np.random.Generator, n: int, edge: float) -> Expectation:
    return Expectation(_draw(rng, (n,), edge), _draw(rng, (n,), edge), rng.integers(0, 4, size=n).astype(np.int8))


def _prior_bytes(ks: Any, exp: Expectation) -> list[bytes]:
    e = Expectation(exp.mean.copy(), exp.phi.copy(), exp.source.copy())
    window_scores.parent_prior(ks, e)
    return _bytes(e.mean, e.source)


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40), st.sampled_from([0.0, 0.05, 0.3]), st.integers(0, 2**32 - 1))
def test_parent_prior_is_bit_identical(n: int, edge: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ks = _keyspace(rng, n, edge)
    exp = _expectation(rng, n, edge)
    got = _both(window_scores, lambda: _prior_bytes(ks, exp))
    assert got[0] == got[1]


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40), st.sampled_from(["seasonal", "weekly"]), st.sampled_from([0.0, 0.05, 0.3]),
       st.integers(0, 2**32 - 1))
def test_parent_prior_of_a_baselines_shares_is_bit_identical(n: int, name: str, edge: float, seed: int) -> None:
    """A seasonal baseline's shares (a weekly one's are the same) read from its columns in the
    kernel: weights around the float32 threshold of 1, NaN and edge shares."""
    rng = np.random.default_rng(seed)
    ks = _keyspace(rng, n, edge)
    ks.baseline = make_baseline(DetectorSpec.parse(name), DetectorConfig().window_ms)
    for _ in range(n + 2):
        ks.baseline.add_row()
    cols = ks.baseline.cols
    cols["share"][:] = _draw(rng, cols["share"].shape, edge, 1.0)
    cols["share_w"][:] = rng.choice(np.array([0.0, 0.5, np.nextafter(1, 0), 1.0, 1.0000001, 3.0, np.nan],
                                             dtype=np.float32), size=cols["share_w"].shape)
    exp = _expectation(rng, n, edge)
    got = _both(window_scores, lambda: _prior_bytes(ks, exp))
    assert got[0] == got[1]


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40), st.integers(0, 3), st.sampled_from([0.0, 0.05, 0.3]), st.integers(0, 2**32 - 1))
def test_mute_is_bit_identical(n: int, ws_min: int, edge: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ks, exp = _keyspace(rng, n, edge), _expectation(rng, n, edge)
    signal = rng.integers(0, 4, size=n).astype(np.int8)
    got = _both(window_scores, lambda: _bytes(*window_scores.mute(ks, exp, ws_min * 60_000, signal.copy())))
    assert got[0] == got[1]


CONFIGS = [DetectorConfig(), DetectorConfig(min_excess=3.0, min_excess_ratio=0.5, sustained_sharp_windows=3,
                                            open_threshold=4.0, extreme_ratio=3.0)]


@needs_kernel
@settings(max_examples=400, deadline=None)
@given(st.integers(0, 40), st.sampled_from([0.0, 0.05, 0.3]), st.sampled_from(CONFIGS), st.integers(0, 2**32 - 1))
def test_give_signals_is_bit_identical(n: int, edge: float, config: DetectorConfig, seed: int) -> None:
    """Scores around the thresholds, sums around min_excess and KEEP_OPEN_EXPECTED, open and free
    rows, sharp and mild excess rates."""
    rng = np.random.default_rng(seed)
    policy = IncidentPolicy(config)
    observed, expected = _draw(rng, (n,), edge, 40.0), _draw(rng, (n,), edge)
    cal = _draw(rng, (H, n), edge, 70.0)
    rows = np.flatnonzero(rng.random(n) < 0.6)
    block = _draw(rng, (5, H - 1, len(rows)), edge, 60.0)
    _at_thresholds(rng, config, block)
    hz = window_scores.Horizons(rows, block[0], block[1], block[2], block[3], block[4], block)
    tracked = rng.random(n) < 0.4
    rates = _draw(rng, (len(rows),), edge, 3.0)
    got = _both(window_scores, lambda: _bytes(*window_scores.give_signals(policy, observed, expected, cal, hz,
                                                                           tracked, rates)))
    assert got[0] == got[1]


def _at_thresholds(rng: np.random.Generator, config: DetectorConfig, block: np.ndarray) -> None:
    """Some sums exactly at the ratio thresholds (whole numbers: the ratio is exact) and at the
    excess thresholds."""
    hit = rng.random(block.shape[1:]) < 0.3
    mean = rng.integers(1, 20, size=block.shape[1:]).astype(np.float64)
    ratio = rng.choice([1.0 + config.min_excess_ratio, config.sustained_sharp_ratio], size=block.shape[1:])
    block[2] = np.where(hit, mean, block[2])
    block[0] = np.where(hit, mean * ratio, block[0])
    excess = rng.choice([config.min_excess, 0.5 * config.min_excess], size=block.shape[1:])
    block[1] = np.where(hit & (rng.random(hit.shape) < 0.5), block[0] - excess, block[1])


@needs_kernel
def test_the_kernels_check_their_bounds() -> None:
    """Rows out of range raise instead of reading or writing past an array."""
    assert isinstance(KERNEL, ModuleType)
    with pytest.raises(IndexError):
        KERNEL.calibrate_rows(np.zeros((H, 2)), np.zeros((2, H), np.float32), np.zeros((2, H), np.float32), 2,
                              np.array([2], dtype=np.intp), 2.0, np.zeros((H, 2)))
    with pytest.raises(IndexError):
        KERNEL.horizon_trimmed(*(np.zeros((2, 30), np.float32, order="F") for _ in range(3)), np.zeros((2, H - 1)),
                               np.array([5], dtype=np.intp), 0, np.array([3, 10, 30], dtype=np.intp),
                               np.zeros((5, H - 1, 1)))
