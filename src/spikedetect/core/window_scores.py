"""Scoring one closed window for every known key, before anything learns from it.

The steps, in order: the reports per key (each region's own, summed up the region tree),
the expectation per key (a cold key borrows its trusted parent's, scaled by its share), the
evidence over several windows (:mod:`~spikedetect.core.evidence`), one negative-binomial
tail for this window's counts and the candidates' sums, each key's calibration, the signal
per key (:meth:`~spikedetect.core.policy.IncidentPolicy.signals`), and muting: a key with no
history of its own, or relearning after a long incident, cannot open one.

Pure functions over the keyspace's arrays; :class:`~spikedetect.core.scorer.Scorer` calls
them in :meth:`~spikedetect.core.scorer.Scorer.close_ready`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spikedetect.core import evidence
from spikedetect.core import window_scores_compiled as compiled
from spikedetect.core.config import DetectorConfig
from spikedetect.core.detectors.base import FLOOR, LEARNED, PARENT_PRIOR, BoolArray, Expectation, FloatArray
from spikedetect.core.incidents import Tracker
from spikedetect.core.keyspace import Keyspace, ServiceKey
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.negbin import surprise
from spikedetect.core.policy import ANOMALOUS, ELEVATED, KEEP_SHORT_RATIO, IncidentPolicy
from spikedetect.kernel import closing as _kernel

IntArray = npt.NDArray[np.intp]


@dataclass
class Horizons:
    """The candidate rows' sums over the horizons > 1, each (H-1, len(rows))
    (see :func:`~spikedetect.core.evidence.horizon_sums`)."""

    rows: IntArray
    observed: FloatArray  # trimmed sum of reports
    trimmed_mean: FloatArray  # trimmed sum of expectations
    mean: FloatArray  # the mean the sum is scored against
    phi: FloatArray
    expected: FloatArray  # untrimmed sum of expectations
    block: FloatArray  # the five sums above as one (5, H-1, len(rows)) array


@dataclass
class WindowScores:
    """One closed window scored for every key, in keyspace row order."""

    observed: FloatArray
    exp: Expectation  # expected mean, overdispersion and source (parent priors applied)
    done: BoolArray  # rows that already applied this window (state restored mid-write)
    raw: FloatArray  # uncalibrated scores, (len(HORIZONS), n): what calibration learns from
    score1: FloatArray  # the calibrated one-window score
    score: FloatArray  # the score reported: this window's or the horizon's that judges the key
    signal: npt.NDArray[np.int8]  # calm / elevated / anomalous / extreme, after muting
    muted: BoolArray
    tracked: BoolArray  # rows with an open incident before this window

    @property
    def expected(self) -> FloatArray:
        return self.exp.mean


def observe(ks: Keyspace, window: LeafWindow, ws: int) -> FloatArray:
    """Reports per key in this window: each region's own reports (:meth:`LeafWindow.own_reports
    <spikedetect.core.leaf_window.LeafWindow.own_reports>`; new keys get rows first), then summed
    up the tree level by level (children into parents) with numpy, or in the compiled closing loops
    when they are built (:mod:`spikedetect.kernel`; the same bits)."""
    observed, rows = window.own_reports(ks)
    if not len(rows):
        return observed
    n = ks.size
    depth, parent = ks.depth[:n], ks.parent[:n]
    if _kernel is not None:
        _kernel.tree_sums_rows(observed, depth, parent, rows, ks.last_seen, ws)
        return observed
    for d in range(int(depth.max()), 0, -1):
        at = np.flatnonzero((depth == d) & (observed != 0))
        if len(at):
            observed += np.bincount(parent[at], weights=observed[at], minlength=n)
    ks.last_seen[:n][observed != 0] = ws
    return observed



def parent_prior(ks: Keyspace, exp: Expectation) -> None:
    """Cold keys whose share of a trusted parent is known borrow the parent's
    expectation scaled by that share (parents first, so chains work)."""
    if _kernel is not None:
        return compiled.parent_prior(_kernel, ks, exp)
    n = ks.size
    shares = ks.baseline.shares(np.arange(n))
    parent = ks.parent[:n]
    cold = (exp.source != LEARNED) & np.isfinite(shares) & (parent >= 0)
    if not cold.any():
        return
    depth = ks.depth[:n]
    floor = ks.baseline.floor_mean
    for d in range(1, int(depth[cold].max()) + 1):
        sel = np.flatnonzero(cold & (depth == d))
        if len(sel) == 0:
            continue
        par = parent[sel]
        trusted = (exp.source[par] == LEARNED) | (exp.source[par] == PARENT_PRIOR)
        sel, par = sel[trusted], par[trusted]
        exp.mean[sel] = np.maximum(shares[sel] * exp.mean[par], floor)
        exp.source[sel] = PARENT_PRIOR


def score_window(ks: Keyspace, config: DetectorConfig, policy: IncidentPolicy,
                 trackers: dict[ServiceKey, Tracker], ws: int, observed: FloatArray) -> WindowScores:
    """Score every key's ``observed`` reports in window ``ws``: expect, gather evidence, score,
    calibrate, give signals, mute. Records the window in the evidence rings; learns nothing."""
    n = ks.size
    exp = ks.baseline.expect(ks.all_rows(), ws)
    parent_prior(ks, exp)
    done = ks.closed_ws[:n] >= ws
    hz = gather_evidence(ks, config, ws, observed, exp, done)
    return score_rest(ks, config, policy, trackers, ws, observed, exp, done, hz)


def score_rest(ks: Keyspace, config: DetectorConfig, policy: IncidentPolicy, trackers: dict[ServiceKey, Tracker],
               ws: int, observed: FloatArray, exp: Expectation, done: BoolArray, hz: Horizons) -> WindowScores:
    """:func:`score_window` once the evidence is gathered (``hz``): score, calibrate, give
    signals, mute."""
    raw = raw_scores(observed, exp, hz)
    cal = evidence.calibrate(ks.baseline.cols, ks.size, raw, hz.rows)
    tracked = tracked_rows(ks, trackers)
    rates = excess_rates(ks, trackers, hz.rows, tracked, ws, config.window_ms)
    signal, score = give_signals(policy, observed, exp.mean, cal, hz, tracked, rates)
    # A key with no history of its own (floor baseline) or relearning after an incident
    # hit max_incident_ms cannot open one: its windows teach the baseline instead.
    signal, muted = mute(ks, exp, ws, signal)
    return WindowScores(observed, exp, done, raw, cal[0], score, signal, muted, tracked)


def tracked_rows(ks: Keyspace, trackers: dict[ServiceKey, Tracker]) -> BoolArray:
    """The rows with an open incident (before this window)."""
    tracked = np.zeros(ks.size, dtype=bool)
    if trackers:
        tracked[[ks.index[sk] for sk, t in trackers.items() if t.state == "open"]] = True
    return tracked


def mute(ks: Keyspace, exp: Expectation, ws: int, signal: npt.NDArray[np.int8]
         ) -> tuple[npt.NDArray[np.int8], BoolArray]:
    """The signals after muting, and the muted rows: those with no history of their own (floor
    baseline) or relearning until after ``ws`` cannot open an incident (``signal`` may change)."""
    if _kernel is not None:
        return signal, compiled.mute(_kernel, ks, exp, ws, signal)
    muted = (exp.source == FLOOR) | (ks.mute_until[:ks.size] > ws)
    return np.where(muted & (signal >= ANOMALOUS), ELEVATED, signal).astype(np.int8), muted


def gather_evidence(ks: Keyspace, config: DetectorConfig, ws: int, observed: FloatArray,
                    exp: Expectation, done: BoolArray) -> Horizons:
    """Record this window in the evidence rings of the rows that have not applied it yet, and
    return the candidate rows' sums over several windows."""
    n = ks.size
    cols = ks.baseline.cols
    pos = evidence.slot(ws, config.window_ms)
    # sums use the model's own estimate of a learned key (no floor: ten windows of 0.1 are
    # 1 report, not 5), with a small floor of their own
    own = exp.aux.get("own")
    if _kernel is None or own is None or not compiled.record(_kernel, cols, pos, observed, exp, own, done):
        expected, phi = exp.mean, exp.phi
        sum_mean = expected if own is None else np.where(exp.source == LEARNED,
                                                         np.maximum(own, evidence.MEAN_FLOOR), expected)
        evidence.record(cols, n, pos, observed, sum_mean, sum_mean * phi, ~done)
    return horizons(*evidence.horizon_block(cols, n, pos, 0.5 * config.min_excess))


def horizons(rows: IntArray, block: FloatArray) -> Horizons:
    """:class:`Horizons` of :func:`~spikedetect.core.evidence.horizon_block`'s rows and block."""
    return Horizons(rows, block[0], block[1], block[2], block[3], block[4], block)


def raw_scores(observed: FloatArray, exp: Expectation, hz: Horizons) -> FloatArray:
    """Uncalibrated scores, (len(HORIZONS), n): one surprise call for this window's counts and
    the candidates' sums (elementwise); rows that are not candidates score 0 on the sums."""
    if _kernel is not None and np.ndim(observed) == 1 and np.shape(observed) == np.shape(exp.mean) == np.shape(exp.phi):
        return compiled.raw_scores(_kernel, observed, exp, hz)
    n = len(observed)
    expected, phi = exp.mean, exp.phi
    raw = np.zeros((len(evidence.HORIZONS), n))
    if len(hz.rows):
        both = surprise(np.concatenate((observed, hz.observed.ravel())), np.concatenate((expected, hz.mean.ravel())),
                        np.concatenate((phi, hz.phi.ravel())))
        raw[0] = both[:n]
        raw[1:, hz.rows] = both[n:].reshape(hz.observed.shape)
    else:
        raw[0] = surprise(observed, expected, phi)
    return raw


def give_signals(policy: IncidentPolicy, observed: FloatArray, expected: FloatArray, cal: FloatArray,
                 hz: Horizons, tracked: BoolArray, rates: FloatArray) -> tuple[npt.NDArray[np.int8], FloatArray]:
    """Each key's signal (before muting) and its reported score from the calibrated scores
    ``cal`` (H, n): an open incident's key is judged on the horizon that keeps it open, any
    other on its best horizon."""
    if _kernel is not None:
        return compiled.give_signals(_kernel, policy, observed, expected, cal, hz, tracked, rates)
    cand = hz.rows
    excess_c, ratio_c = hz.observed - hz.trimmed_mean, hz.observed / hz.mean
    score1, score_c = cal[0], cal[1:][:, cand]
    keep = policy.keep_open_horizon(hz.expected, rates)
    signal = policy.signals(observed, expected, score1, (cand, score_c, excess_c, ratio_c, hz.expected),
                            tracked, keep)
    score = score1.copy()
    if len(cand):
        score[cand] = np.maximum(score1[cand], np.where(
            tracked[cand], np.take_along_axis(score_c, keep[None, :], 0)[0], score_c.max(axis=0)))
    return signal, score


def excess_rates(ks: Keyspace, trackers: dict[ServiceKey, Tracker], rows: IntArray, tracked: BoolArray,
                 ws: int, window_ms: int) -> FloatArray:
    """Per row, the excess reports per window of its open incident so far when the incident
    is sharp (:data:`~spikedetect.core.policy.KEEP_SHORT_RATIO`), else 0."""
    rate = np.zeros(len(rows))
    if not trackers:
        return rate
    keys = ks.keys
    at = tracked[rows].nonzero()[0]
    for j, r in zip(at.tolist(), rows[at].tolist(), strict=True):
        t = trackers[keys[r]]
        if t.total >= KEEP_SHORT_RATIO * t.expected_total:
            rate[j] = (t.total - t.expected_total) / max(1, (ws - t.first_ws) // window_ms)
    return rate
