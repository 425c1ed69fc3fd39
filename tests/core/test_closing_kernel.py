"""The compiled closing loops (spikedetect/kernel/_closing.pyx) against their numpy references:
identical bytes on random inputs and edge cases (zeros, tiny and huge counts, NaN and inf).

The extension is loaded whatever SPIKEDETECT_PURE says, so both paths are compared in every
run; the tests skip only where it was not built (no C compiler at install time), and
test_closing_kernel_is_built_where_a_compiler_is fails if a build that should have worked did not.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core import leaf_window, negbin, window_scores
from spikedetect.core.composition import shares
from spikedetect.core.composition.shares import ShareBank
from spikedetect.core.config import DetectorConfig
from spikedetect.core.detectors import make_baseline, seasonal
from spikedetect.core.detectors.seasonal import SeasonalBaseline
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.kernel import load_compiled, pure_forced

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")

EDGE = [0.0, -0.0, 1.0, 1e-300, 5e-324, 1e-9, 0.5, 2.0**52, 2.0**53 + 2.0, 1e300, np.inf, -np.inf, np.nan]
counts = st.one_of(st.integers(0, 50).map(float), st.integers(0, 10**7).map(float),
                   st.sampled_from([2.0**52 - 3.0, 2.0**52, 2.0**60, 1e17, 1e300]),
                   st.floats(allow_nan=True, allow_infinity=True))
odds = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.999999, 1.0, 1e-12]), st.floats())
means = st.one_of(st.floats(0.0, 1e6), st.floats(1e-9, 1e-3), st.sampled_from([0.0, 1e-9, 1e300]), st.floats())


def test_closing_kernel_is_built_where_a_compiler_is() -> None:
    has_compiler = shutil.which(sysconfig.get_config_var("CC").split()[0] or "cc") is not None
    has_headers = (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()
    if has_compiler and has_headers:
        assert KERNEL is not None, "a C compiler and Python.h are here, but the closing loops were not built"


def _compiled_tail_sum(xm: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    assert KERNEL is not None
    out = np.empty(len(xm))
    KERNEL.tail_sum(xm, a, b, negbin._stepwise(xm), out)
    return out


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(counts, odds, means), max_size=40))
def test_tail_sum_is_bit_identical_to_numpy(rows: list[tuple[float, float, float]]) -> None:
    """Every number to the bit; a NaN only as a NaN: from a NaN input numpy passes on that NaN's
    sign (x86 keeps the first NaN operand's), the loop may not - a NaN's sign means nothing, and
    no output carries one (orjson writes null)."""
    xm, a, b = (np.array([r[i] for r in rows], dtype=np.float64) for i in range(3))
    with np.errstate(all="ignore"):
        want = negbin._tail_sum(xm.copy(), a.copy(), b.copy())
        got = _compiled_tail_sum(xm, a, b)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert got[~nan].tobytes() == want[~nan].tobytes()


@needs_kernel
def test_tail_sum_of_a_negative_nan_count_is_a_nan() -> None:
    """The example hypothesis found: numpy's NaN keeps the input's sign bit, the loop's need not."""
    xm, a, b = np.array([0.0, -np.nan]), np.array([0.0, np.nan]), np.array([0.0, 0.0])
    with np.errstate(all="ignore"):
        got, want = _compiled_tail_sum(xm, a, b), negbin._tail_sum(xm.copy(), a.copy(), b.copy())
    assert np.isnan(got[1]) and np.isnan(want[1]) and got[:1].tobytes() == want[:1].tobytes()


@needs_kernel
def test_tail_sum_edge_cases_are_bit_identical() -> None:
    grid = np.array(np.meshgrid(EDGE, [0.0, 0.3, 0.999999, 1.0, np.nan], EDGE)).reshape(3, -1)
    for stop in (len(grid[0]), 7):  # the huge counts switch the whole call to one term at a time
        xm, a, b = (np.ascontiguousarray(v[:stop]) for v in grid)
        with np.errstate(all="ignore"):
            assert _compiled_tail_sum(xm, a, b).tobytes() == negbin._tail_sum(xm, a, b).tobytes()


@needs_kernel
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1e7), st.floats(0.0, 1e6), st.floats(0.0, 60.0)), max_size=60))
def test_surprise_is_bit_identical_with_and_without_the_kernel(rows: list[tuple[float, float, float]]) -> None:
    observed, mean, phi = (np.array([r[i] for r in rows], dtype=np.float64) for i in range(3))
    with np.errstate(all="ignore"):
        compiled = negbin.surprise(observed, mean, phi)
        poisson = negbin.log_sf(observed, mean, np.ones(len(rows)))
        saved, negbin._kernel = negbin._kernel, None
        try:
            pure = negbin.surprise(observed, mean, phi)
            pure_poisson = negbin.log_sf(observed, mean, np.ones(len(rows)))
        finally:
            negbin._kernel = saved
    assert compiled.tobytes() == pure.tobytes()
    assert poisson.tobytes() == pure_poisson.tobytes()


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(counts, st.floats(-1.0, 1e4)), means,
                          st.one_of(st.floats(0.0, 100.0), st.sampled_from([1.0, 1.0001, 1.00010001, 1.5, np.nan]))),
                max_size=70))
def test_log_sf_edge_cases_are_bit_identical_with_and_without_the_kernel(rows: list[tuple[float, float, float]]
                                                                          ) -> None:
    """NaN, infinite, negative and huge counts and means; Poisson, NB and the boundary between."""
    observed, mean, phi = (np.array([r[i] for r in rows], dtype=np.float64) for i in range(3))
    with np.errstate(all="ignore"):
        compiled = [negbin.log_sf(observed, mean, p) for p in (phi, np.ones(len(rows)))]
        saved, negbin._kernel = negbin._kernel, None
        try:
            pure = [negbin.log_sf(observed, mean, p) for p in (phi, np.ones(len(rows)))]
        finally:
            negbin._kernel = saved
    assert [c.tobytes() for c in compiled] == [p.tobytes() for p in pure]


def test_the_pure_switch_selects_the_numpy_path() -> None:
    """SPIKEDETECT_PURE=1 (CI runs the suite both ways) leaves the closing path in numpy."""
    assert negbin._kernel is (None if pure_forced() else KERNEL)
    assert seasonal._kernel is negbin._kernel
    assert shares._kernel is window_scores._kernel is negbin._kernel


# -- the seasonal detector's expect and learn -----------------------------------------------------

COLUMN_VALUES = {
    "prof": st.one_of(st.floats(0.0, 1e6), st.sampled_from([0.0, 1e-300, 5e-324, 1e12])),
    "prof_w": st.one_of(st.floats(0.0, 100.0, width=32), st.sampled_from([19.999998, 20.0, 20.1, 0.7, 1e6])),
    "dow_num": st.one_of(st.floats(0.0, 1e6), st.sampled_from([0.0, 1e-10])),
    "dow_den": st.one_of(st.floats(0.0, 1e6), st.sampled_from([0.0, 1e-9, 2e-9])),
    "dow_w": st.one_of(st.floats(0.0, 2000.0, width=32), st.sampled_from([719.0, 720.0, 1e6])),
    "level": st.one_of(st.floats(0.0, 1e6), st.sampled_from([0.0, 0.3, 1e-300])),
    "level_n": st.one_of(st.floats(0.0, 30.0, width=32), st.sampled_from([0.7, 10.0, 1e6])),
    "phi": st.floats(1.0, 50.0, width=32),
    "alpha": st.one_of(st.floats(0.0, 4.0, width=32), st.just(0.0)),
    "disp_n": st.one_of(st.floats(0.0, 5000.0, width=32), st.just(1e6)),
    "share": st.floats(0.0, 1.0),
    "share_w": st.one_of(st.floats(0.0, 100.0, width=32), st.just(1e6)),
}
PARAMS = st.fixed_dictionaries({}, optional={
    "warm_slot_weight": st.sampled_from([20.0, 20.1, 0.7]), "warm_level_windows": st.sampled_from([10.0, 0.7]),
    "floor_mean": st.sampled_from([0.5, 0.3, 1e-9]), "cold_phi_factor": st.sampled_from([2.0, 1.3]),
    "clip_sd": st.sampled_from([3.0, 0.1]), "phi_max": st.sampled_from([50.0, 7.3]),
    "alpha_max": st.sampled_from([4.0, 0.01])})
observations = st.one_of(st.integers(0, 30).map(float), st.floats(0.0, 1e7), st.sampled_from([0.0, 1e-300, 1e15]))
parents = st.one_of(st.floats(0.0, 1e7), st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, 5e-324]))
weights = st.one_of(st.just(1.0), st.sampled_from([0.0, 0.25, 0.999999]), st.floats(0.0, 1.0))


def _model(params: dict[str, float], rows: list[dict[str, float]]) -> SeasonalBaseline:
    model = SeasonalBaseline(60_000, params)
    for values in rows:
        r = model.add_row()
        for col, v in values.items():
            model.cols[col][r] = v
    return model


def _run(kernel: ModuleType | None, model: SeasonalBaseline, windows: list[tuple[int, list[int], list[tuple]]]
         ) -> list[bytes]:
    saved, seasonal._kernel = seasonal._kernel, kernel
    out = []
    try:
        for ws, sel, obs in windows:
            exp = model.expect(np.arange(model.size), ws)
            out += [a.tobytes() for a in (exp.mean, exp.phi, exp.source, *exp.aux.values())]
            rows = np.array(sorted(set(sel)), dtype=np.intp)
            m = np.zeros(model.size, dtype=bool)
            m[rows] = True
            x, po, wt = (np.array([obs[i % len(obs)][j] for i in range(len(rows))]) for j in range(3))
            with np.errstate(all="ignore"):
                model.learn(rows, ws, x, exp.subset(m), po, wt if len(obs) % 2 else None)
    finally:
        seasonal._kernel = saved
    return out + [a[: model.size].tobytes() for a in model.cols.values()]


@needs_kernel
@settings(max_examples=150, deadline=None)
@given(PARAMS, st.lists(st.fixed_dictionaries({}, optional=COLUMN_VALUES), min_size=1, max_size=12),
       st.lists(st.tuples(st.integers(0, 10**9).map(lambda m: m * 60_000), st.lists(st.integers(0, 11)),
                          st.lists(st.tuples(observations, parents, weights), min_size=1, max_size=5)),
                min_size=1, max_size=6))
def test_seasonal_expect_and_learn_are_bit_identical_to_numpy(params: dict[str, float], rows: list[dict[str, float]],
                                                              windows: list[tuple[int, list[int], list[tuple]]]) -> None:
    windows = [(ws, [r for r in sel if r < len(rows)], obs) for ws, sel, obs in windows]
    pure = _run(None, _model(params, rows), windows)
    compiled = _run(KERNEL, _model(params, rows), windows)
    assert compiled == pure


@needs_kernel
def test_seasonal_days_of_learning_are_bit_identical_to_numpy() -> None:
    """Three days of windows for 40 keys of different sizes, weights and parents, from cold."""
    rng = np.random.default_rng(7)
    lam = rng.choice([0.01, 0.3, 3.0, 40.0, 20_000.0], size=40)
    states = []
    for kernel in (None, KERNEL):
        model = _model({}, [{}] * 40)
        saved, seasonal._kernel = seasonal._kernel, kernel
        try:
            draws = np.random.default_rng(3)
            for ws in range(0, 3 * 86_400_000, 60_000):
                exp = model.expect(np.arange(40), ws)
                keep = draws.random(40) < 0.9
                x = draws.poisson(lam).astype(np.float64)
                po = np.where(draws.random(40) < 0.8, x * 3.0, np.nan)
                rows = np.flatnonzero(keep)
                model.learn(rows, ws, x[keep], exp.subset(keep), po[keep], np.where(x[keep] > 30, 0.25, 1.0))
        finally:
            seasonal._kernel = saved
        states.append([a[:40].tobytes() for a in model.cols.values()] + [a.tobytes() for a in exp.aux.values()])
    assert states[0] == states[1]


# -- composition counts ---------------------------------------------------------------------------

REGION_KEYS = ["*", "US", "US/CA", "US/CA/LA", "US/NY", "DE", "DE/BY", "DE/BY/München"]
leaf_counts = st.dictionaries(
    st.tuples(st.sampled_from([*REGION_KEYS[1:], "FR/IDF", "US/CA/SF"]), st.sampled_from([f"c{i}" for i in range(20)]),
              st.sampled_from(["app", "web"])),
    st.one_of(st.integers(0, 10**6), st.floats(0.0, 1e6), st.sampled_from([2**60 + 1, 1e-300, -0.0, 0.5])),
    max_size=30)


@needs_kernel
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ig", "fb", "wa"]), st.sampled_from(REGION_KEYS)), unique=True, max_size=12),
       st.lists(st.dictionaries(st.sampled_from(["ig", "fb", "wa", "x"]), leaf_counts), min_size=1, max_size=3))
def test_share_counts_are_bit_identical_to_numpy(keys: list[tuple[str, str]],
                                                 windows: list[dict[str, dict[tuple[str, str, str], float]]]) -> None:
    banks = []
    for kernel in (None, KERNEL):
        bank = ShareBank()
        for sk in keys:
            bank.row(sk)
        saved, shares._kernel = shares._kernel, kernel
        try:
            got = [LeafWindow(per_service).share_counts(bank, len(keys)) for per_service in windows]
        finally:
            shares._kernel = saved
        banks.append(([(x.shape, x.flags.c_contiguous, x.tobytes()) for x in got], bank.cats))
    assert banks[0] == banks[1]


# -- observed reports per key ---------------------------------------------------------------------


@needs_kernel
@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["ig", "fb"]), leaf_counts), min_size=1, max_size=4))
def test_observe_is_bit_identical_to_numpy(windows: list[dict[str, dict[tuple[str, str, str], float]]]) -> None:
    """Own reports summed as Python numbers (ints past 2**53 included), then up the region tree."""
    results = []
    for kernel in (None, KERNEL):
        config = DetectorConfig()
        ks = Keyspace(make_baseline(config.detector, config.window_ms))
        saved = window_scores._kernel, leaf_window._kernel
        window_scores._kernel = leaf_window._kernel = kernel
        try:
            got = [window_scores.observe(ks, LeafWindow(per_service), i * 60_000).tobytes()
                   for i, per_service in enumerate(windows)]
        finally:
            window_scores._kernel, leaf_window._kernel = saved
        n = ks.size
        results.append((got, list(ks.keys), *(a[:n].tobytes() for a in (ks.last_seen, ks.depth, ks.parent))))
    assert results[0] == results[1]
