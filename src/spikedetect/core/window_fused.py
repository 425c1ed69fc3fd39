"""The seasonal closing path in three compiled calls: scoring a window, then learning from it.

With the compiled closing loops built, :func:`score_window` runs
:func:`~spikedetect.core.window_scores.score_window`'s steps for a baseline that is exactly a
:class:`~spikedetect.core.detectors.seasonal.SeasonalBaseline` in two kernel calls (the logs of the
tails are numpy's: its own float64 loops of log and log1p, called by the first on the values a ufunc
call would get), and :func:`learn` runs ``Scorer._learn`` in one. The
kernel keeps typed views of the baseline's columns and the keyspace's arrays between windows
(``kernel.SeasonalViews``, one per keyspace, in ``Keyspace.views``), rebuilt whenever one of
those arrays was replaced. The steps are the per-step loops' own, in the same order: the same bits
(tests/core/test_window_fused.py). Any other baseline, pure mode, or a step that declines (NaN
in the rings, a calibration count that is not whole) takes the per-step path from there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikedetect.core import evidence, negbin
from spikedetect.core import policy as pol
from spikedetect.core import window_scores_compiled as compiled
from spikedetect.core.config import DetectorConfig
from spikedetect.core.detectors import seasonal_compiled
from spikedetect.core.detectors.base import FLOOR, LEARNED, PARENT_PRIOR, BoolArray, Expectation, FloatArray
from spikedetect.core.detectors.seasonal import SeasonalBaseline
from spikedetect.core.incidents import Tracker
from spikedetect.core.keyspace import Keyspace, ServiceKey
from spikedetect.core.window_scores import (
    WindowScores,
    excess_rates,
    gather_evidence,
    horizons,
    score_rest,
    tracked_rows,
)
from spikedetect.core.window_scores import score_window as score_window_steps
from spikedetect.kernel import closing as _kernel

_LONG = np.array(evidence.HORIZONS[1:], dtype=np.intp)
_CONSTS = (*negbin._CONSTS, negbin._LN10, negbin.MAX_SCORE, evidence.CAL_INITIAL)


def _views(ks: Keyspace) -> Any:
    """The keyspace's ``kernel.SeasonalViews`` (made on first use, kept in ``ks.views``)."""
    v = ks.views
    if v is None:
        assert _kernel is not None
        v = ks.views = _kernel.SeasonalViews()
    return v


def _applies(ks: Keyspace, observed: FloatArray) -> bool:
    return (_kernel is not None and type(ks.baseline) is SeasonalBaseline and ks.size > 0
            and observed.dtype == np.float64 and observed.shape == (ks.size,) and observed.flags.c_contiguous)


def score_window(ks: Keyspace, config: DetectorConfig, policy: pol.IncidentPolicy,
                 trackers: dict[ServiceKey, Tracker], ws: int, observed: FloatArray) -> WindowScores:
    """:func:`~spikedetect.core.window_scores.score_window`, fused where it applies."""
    if not _applies(ks, observed):
        return score_window_steps(ks, config, policy, trackers, ws, observed)
    assert _kernel is not None
    model = ks.baseline
    assert isinstance(model, SeasonalBaseline)
    n, cols, v = ks.size, model.cols, _views(ks)
    lo, hi, w_hi = model._slots(ws)
    pos = evidence.slot(ws, config.window_ms)
    min_excess = 0.5 * config.min_excess
    (stage, mean, phi, source, tod, warm, factor, own, done, k, _, prepared) = _kernel.fused_score_first(
        v, cols, ks.parent, ks.depth, ks.closed_ws, ks.mute_until, observed, ws,
        (lo, hi, w_hi, model._dow(ws), seasonal_compiled.expect_params(model)),
        (model.floor_mean, LEARNED, PARENT_PRIOR),
        (LEARNED, evidence.MEAN_FLOOR, pos, compiled._LEAVING[pos], _LONG, min_excess), negbin.UFUNC_LOOPS)
    exp = Expectation(mean, phi, source, {"tod": tod, "warm": warm, "factor": factor, "own": own})
    if stage:  # a step declined: the per-step code from there
        if stage == 1:  # the record: all of gathering the evidence
            hz = gather_evidence(ks, config, ws, observed, exp, done)
        else:
            if stage == 2:  # the lap's resum of the rows just recorded
                evidence._resum(cols, np.flatnonzero(~done))
            hz = horizons(*evidence.horizon_block(cols, n, pos, min_excess))
        return score_rest(ks, config, policy, trackers, ws, observed, exp, done, hz)
    tracked = tracked_rows(ks, trackers)
    rates = excess_rates(ks, trackers, v.cand[:k], tracked, ws, config.window_ms)
    signals = (compiled._WINDOWS, policy._sharp_rows, compiled._params(policy), FLOOR, pol.ANOMALOUS, pol.ELEVATED)
    raw, cal, signal, score, muted = _kernel.fused_score_second(v, prepared, _CONSTS, tracked, rates, signals, ws)
    _kernel.fused_keep(v, (observed, mean, source, tod, warm, factor, done, raw, signal, muted, tracked))
    return WindowScores(observed, exp, done, raw, cal[0], score, signal, muted, tracked)


def learn(ks: Keyspace, config: DetectorConfig, ws: int, w: WindowScores, ended: list[int],
          not_quiet: BoolArray) -> bool:
    """``Scorer._learn`` in one compiled call, for the window :func:`score_window` scored last: the
    ended incidents' evidence reset, calibration, the baseline, ``closed_ws``. False, and nothing
    learned, where it does not apply (the caller learns step by step then)."""
    v = ks.views
    # fused_learn refuses any arrays but those of the window it last scored, which passed _applies
    # then; _applies again sees what the kernel cannot: the keyspace since (rows added or
    # removed, another baseline) and the fused path switched off
    if v is None or not _applies(ks, w.observed) or not (
            not_quiet.dtype == np.bool_ and not_quiet.flags.c_contiguous and not_quiet.shape == (ks.size,)):
        return False
    assert _kernel is not None
    model = ks.baseline
    assert isinstance(model, SeasonalBaseline)
    exp = w.exp
    aux = exp.aux
    objs = (w.observed, exp.mean, exp.source, aux.get("tod"), aux.get("warm"), aux.get("factor"), w.done, w.raw,
            w.signal, w.muted, w.tracked)
    lo, hi, w_hi = model._slots(ws)
    done: int = _kernel.fused_learn(
        v, model.cols, ks.parent, ks.depth, ks.closed_ws, ks.mute_until, objs,
        np.array(ended, dtype=np.intp) if ended else None, not_quiet, evidence._rate_factors(), pol.ANOMALOUS,
        float(config.elevated_learn_weight), (lo, hi, w_hi, model._dow(ws), seasonal_compiled.learn_params(model)), ws)
    return done == 1
