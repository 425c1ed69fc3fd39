"""The learning half of a closed window in the compiled closing loops (kernel/_closing_learn.pxi)
against its numpy reference: ``Scorer._learn`` - calibration quantiles
(``evidence.learn_calibration``) and the seasonal baseline of the selected rows
(``SeasonalBaseline.learn_window``) - leaves identical bytes in every column, on random states,
masks, signals, parents and scores, NaN, inf and empty keyspaces included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import using_kernel

from spikedetect.core import evidence
from spikedetect.core.config import DetectorConfig
from spikedetect.core.detectors import seasonal
from spikedetect.core.detectors.base import PARENT_PRIOR
from spikedetect.core.scorer import Scorer
from spikedetect.core.window_scores import WindowScores
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")

KEYS = ["*", "US", "US/CA", "US/CA/LA", "US/NY", "DE", "DE/BY", "DE/BY/Munich", "FR", "FR/IDF"]
EDGE = [0.0, -0.0, 1e-300, 0.5, 1.0, 3.0, 1e7, np.inf, -np.inf, np.nan]
values = st.one_of(st.floats(0.0, 1e6), st.integers(0, 40).map(float), st.sampled_from(EDGE))
cal_q = st.one_of(st.floats(0.5, 300.0, width=32), st.sampled_from([0.5, 300.0, 2.0, 3.0, np.nan, 0.0]))
cal_n = st.one_of(st.integers(0, 100).map(float), st.sampled_from([0.0, 7.0, 8.0, 79.0, 80.0, 1e6, 0.3, np.nan]))
raws = st.one_of(st.floats(0.0, 50.0), st.sampled_from([0.0, 2.0, 3.0, 300.0, np.inf, np.nan, -1.0]))
row = st.fixed_dictionaries({
    "x": values, "q": st.lists(cal_q, min_size=8, max_size=8), "n": cal_n, "raw": st.lists(raws, min_size=4, max_size=4),
    "signal": st.integers(0, 3), "flags": st.lists(st.booleans(), min_size=5, max_size=5),
    "level": st.one_of(st.floats(0.0, 1e6), st.sampled_from([0.0, 1e-300])),
    "level_n": st.one_of(st.floats(0.0, 30.0, width=32), st.sampled_from([10.0, 1e6])),
    "prof_w": st.one_of(st.floats(0.0, 40.0, width=32), st.just(20.0)),
    "dow_w": st.one_of(st.floats(0.0, 2000.0, width=32), st.just(720.0)),
    "share_w": st.one_of(st.floats(0.0, 100.0, width=32), st.just(1e6))})


def _scorer(rows: list[dict[str, Any]], ws: int) -> tuple[Scorer, WindowScores, np.ndarray]:
    """A scorer whose keyspace holds len(rows) keys (parents included) and one scored window."""
    s = Scorer(DetectorConfig(elevated_learn_weight=0.25), signals=False)
    ks = s.keyspace
    for k in KEYS[: len(rows)]:
        ks.row("ig", k)
    n = ks.size
    c = ks.baseline.cols
    for r in range(n):
        d = rows[r % len(rows)] if rows else {}
        for col in ("level", "level_n", "share_w"):
            c[col][r] = d.get(col, 0.0)
        c["prof_w"][r] = d.get("prof_w", 0.0)
        c["dow_w"][r] = d.get("dow_w", 0.0)
        c["cal_q"][r], c["cal_q3"][r] = d.get("q", [2.0] * 8)[:4], d.get("q", [3.0] * 8)[4:]
        c["cal_n"][r] = d.get("n", 0.0)
        c["prof"][r] = (r + 1) * 1.5
    exp = ks.baseline.expect(np.arange(n), ws)
    pick = [rows[r % len(rows)] for r in range(n)] if rows else []
    flag = np.array([[d["flags"][j] for d in pick] for j in range(5)], dtype=bool).reshape(5, n)
    exp.source[flag[4]] = PARENT_PRIOR
    raw = np.array([d["raw"] for d in pick], dtype=np.float64).reshape(n, 4).T.copy()
    signal = np.array([d["signal"] for d in pick], dtype=np.int8)
    observed = np.array([d["x"] for d in pick], dtype=np.float64)
    w = WindowScores(observed, exp, flag[0], raw, raw[0], raw[0], signal, flag[1], flag[2])
    return s, w, flag[3]


def _learned(kernel: Any, rows: list[dict[str, Any]], ws: int) -> list[bytes]:
    with using_kernel((evidence, seasonal), kernel):
        s, w, not_quiet = _scorer(rows, ws)
        with np.errstate(all="ignore"):
            s._learn(ws, w, [], not_quiet)
    n = s.keyspace.size
    return [a[:n].tobytes() for a in s.keyspace.baseline.cols.values()] + [s.keyspace.closed_ws[:n].tobytes()]


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.lists(row, max_size=10), st.integers(0, 10**7).map(lambda m: m * 60_000))
def test_learning_a_window_is_bit_identical_to_numpy(rows: list[dict[str, Any]], ws: int) -> None:
    assert _learned(KERNEL, rows, ws) == _learned(None, rows, ws)


@needs_kernel
def test_calibration_edge_cases_are_bit_identical_to_numpy() -> None:
    """Every pair of edge quantile and score, and counts at the rate's corners (4/count = 0.5, 0.05)."""
    qs = np.array([0.5, 300.0, 2.0, 0.49999997, 300.00003, np.nan, 0.0, 1e-45], dtype=np.float32)
    scores = np.array([0.0, 2.0, 0.5, 300.0, np.inf, -np.inf, np.nan, 2.0000000001])
    counts = np.array([0.0, 7.0, 8.0, 9.0, 79.0, 80.0, 1e6, np.nan, 0.5], dtype=np.float32)
    q, raw = np.meshgrid(qs, scores)
    n = q.size
    out = []
    for kernel in (KERNEL, None):
        cols = {name: np.full((n, *shape), init, dtype=dtype)
                for name, (shape, dtype, init) in evidence.EVIDENCE_COLUMNS.items()}
        cols["cal_q"][:] = q.reshape(-1)[:, None]
        cols["cal_q3"][:] = q.reshape(-1)[::-1, None]
        cols["cal_n"][:] = np.resize(counts, n)
        learn = np.resize(np.array([True, True, False]), n)
        with using_kernel((evidence,), kernel), np.errstate(all="ignore"):
            evidence.learn_calibration(cols, n, learn, np.tile(raw.reshape(-1), (4, 1)))
            evidence.learn_calibration(cols, 0, learn[:0], np.zeros((4, 0)))
        out.append([a.tobytes() for a in cols.values()])
    assert out[0] == out[1]


def _calibrated(kernel: Any, q: np.ndarray, q3: np.ndarray, counts: np.ndarray, learn: np.ndarray,
                raw: np.ndarray) -> list[bytes]:
    n = len(counts)
    cols = {name: np.full((n + 2, *shape), init, dtype=dtype) for name, (shape, dtype, init) in evidence.EVIDENCE_COLUMNS.items()}
    cols["cal_q"][:n], cols["cal_q3"][:n], cols["cal_n"][:n] = q, q3, counts
    with using_kernel((evidence,), kernel), np.errstate(all="ignore"):
        evidence.learn_calibration(cols, n, learn, raw)
    return [a.tobytes() for a in cols.values()]


whole_counts = st.one_of(st.integers(0, 120), st.sampled_from([0, 1, 7, 8, 9, 78, 79, 80, 81, 999_999, 1_000_000]))


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(whole_counts, st.booleans(), st.lists(cal_q, min_size=8, max_size=8),
                          st.lists(raws, min_size=4, max_size=4)), min_size=1, max_size=40))
def test_calibration_of_whole_counts_is_bit_identical_to_numpy(rows: list[Any]) -> None:
    """Whole counts (every state learned here): the one-pass step with the exps looked up by count."""
    counts = np.array([r[0] for r in rows], dtype=np.float32)
    learn = np.array([r[1] for r in rows])
    q = np.array([r[2][:4] for r in rows], dtype=np.float32)
    q3 = np.array([r[2][4:] for r in rows], dtype=np.float32)
    raw = np.array([r[3] for r in rows], dtype=np.float64).T.copy()
    assert _calibrated(KERNEL, q, q3, counts, learn, raw) == _calibrated(None, q, q3, counts, learn, raw)


@needs_kernel
def test_calibration_takes_the_one_pass_step_for_whole_counts_only() -> None:
    """A learning row with a fractional (or NaN) count sends the window to the two-pass step,
    nothing written; one that does not learn does not matter."""
    assert KERNEL is not None
    n = 3
    q, raw, flags = np.full((n, 4), 2.0, dtype=np.float32), np.full((4, n), 5.0), np.ones(n, dtype=np.uint8)
    factors = evidence._rate_factors()
    for counts, taken in (([0.0, 79.0, 5e5], True), ([0.0, 0.5, 3.0], False), ([np.nan, 1.0, 2.0], False)):
        cal_n = np.array(counts, dtype=np.float32)
        qq, q3, nn = q.copy(), q.copy(), cal_n.copy()
        assert KERNEL.calibration_learn(qq, q3, nn, flags, raw, factors) is taken
        assert (qq.tobytes() != q.tobytes()) is taken and (nn.tobytes() != cal_n.tobytes()) is taken
    nn = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    assert KERNEL.calibration_learn(q.copy(), q.copy(), nn, np.array([0, 1, 1], dtype=np.uint8), raw, factors)
    assert nn.tolist() == [0.5, 2.0, 3.0]
