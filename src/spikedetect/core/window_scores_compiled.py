"""Scoring a closed window in the compiled closing loops (:mod:`spikedetect.kernel`).

:mod:`~spikedetect.core.window_scores` calls these when the closing loops are built (and
``SPIKEDETECT_PURE`` is not set): the parents' priors, the signals with their reported scores,
and the muting, each one loop over the rows in C instead of tens of numpy calls per window, with
the same operations in the same order, so the arrays are bit-identical to the numpy code, which
stays the reference (tests/core/test_closing_kernel_window.py).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from spikedetect.core import evidence, negbin
from spikedetect.core import policy as pol
from spikedetect.core.detectors.base import FLOOR, LEARNED, PARENT_PRIOR, BoolArray, Expectation, FloatArray
from spikedetect.core.detectors.seasonal import SeasonalBaseline
from spikedetect.core.evidence import HORIZONS, RING
from spikedetect.core.keyspace import Keyspace

if TYPE_CHECKING:
    from spikedetect.core.window_scores import Horizons

_WINDOWS = np.array(HORIZONS[1:], dtype=np.float64)  # windows summed per horizon row
# per ring position, the positions of the windows leaving each horizon > 1 (evidence.record's)
_LEAVING = [np.ascontiguousarray((pos - np.array(HORIZONS[1:])) % RING, dtype=np.intp) for pos in range(RING)]


def _f64(*arrays: npt.NDArray[np.float64]) -> bool:
    return all(a.dtype == np.float64 and a.ndim == 1 and a.flags.c_contiguous for a in arrays)


def record(kernel: ModuleType, cols: dict[str, npt.NDArray[np.float32]], pos: int, observed: FloatArray,
           exp: Expectation, own: FloatArray, done: BoolArray) -> bool:
    """``gather_evidence``'s ``evidence.record`` (the sums' means computed on the way) by
    ``kernel.evidence_record_window``; False, and nothing written, when it does not apply."""
    n = len(observed)
    if not (_f64(observed, exp.mean, own, exp.phi) and exp.source.dtype == np.int8 and len(done) == n
            and len(exp.mean) == n):
        return False
    if not kernel.evidence_record_window(cols["sum_x"], cols["ring_x"], cols["sum_m"], cols["ring_m"], cols["sum_v"],
                                         cols["ring_v"], observed, exp.mean, own, exp.source, exp.phi,
                                         done.view(np.uint8), LEARNED, evidence.MEAN_FLOOR, pos, _LEAVING[pos]):
        return False
    if pos == 0:  # once per lap, as evidence.record: the rows written here
        evidence._resum(cols, np.flatnonzero(~done))
    return True


def raw_scores(kernel: ModuleType, observed: FloatArray, exp: Expectation, hz: Horizons) -> FloatArray:
    """``window_scores.raw_scores`` by :func:`~spikedetect.core.negbin.nb_tails` (no concatenated
    copies)."""
    observed, mean, phi = (np.ascontiguousarray(a, dtype=np.float64) for a in (observed, exp.mean, exp.phi))
    raw = np.empty((len(HORIZONS), len(observed)))
    negbin.nb_tails(kernel, observed, mean, phi, hz.block, np.ascontiguousarray(hz.rows, dtype=np.intp), True, raw)
    return raw


def parent_prior(kernel: ModuleType, ks: Keyspace, exp: Expectation) -> None:
    """``window_scores.parent_prior`` by ``kernel.parent_prior`` (``exp`` changed in place); a
    seasonal baseline's shares are read from its columns there (``kernel.parent_prior_cols``)."""
    n = ks.size
    if exp.mean.dtype != np.float64 or exp.source.dtype != np.int8 or not (
            exp.mean.flags.c_contiguous and exp.source.flags.c_contiguous):
        raise TypeError("parent_prior needs a float64 mean and an int8 source, contiguous")
    bufs = _PRIOR.pop() if _PRIOR else None  # the kernel's scratch, kept between windows (a list's pop is atomic)
    if bufs is None or len(bufs[0]) < n:
        m = max(n, 2 * len(bufs[0]) if bufs is not None else 0)
        bufs = (np.empty(m, dtype=np.uint8), np.empty(m, dtype=np.intp), np.empty(m), np.empty(m))
    cold, sel, value, shares = bufs
    args = (ks.parent[:n], ks.depth[:n], ks.baseline.floor_mean, LEARNED, PARENT_PRIOR, exp.mean, exp.source, cold,
            sel, value)
    if isinstance(ks.baseline, SeasonalBaseline) and type(ks.baseline).shares is SeasonalBaseline.shares:
        cols = ks.baseline.cols
        kernel.parent_prior_cols(cols["share"], cols["share_w"], *args, shares[:n])
    else:
        kernel.parent_prior(np.ascontiguousarray(ks.baseline.shares(np.arange(n)), dtype=np.float64), *args)
    _PRIOR.append(bufs)


_PRIOR: list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.intp], FloatArray, FloatArray]] = []  # free scratch
_PARAMS: dict[int, tuple[object, tuple[float, ...]]] = {}  # id(config) -> (config, its params)


def _params(policy: pol.IncidentPolicy) -> tuple[float, ...]:
    """The kernel's rule parameters of ``policy`` (its config is frozen: kept per config)."""
    c = policy.config
    known = _PARAMS.get(id(c))
    if known is not None and known[0] is c:
        return known[1]
    if len(_PARAMS) > 64:
        _PARAMS.clear()
    params = (c.min_excess, 1.0 + c.min_excess_ratio, 0.5 * c.min_excess, c.close_threshold,
              2.0 * c.open_threshold, c.open_threshold, c.extreme_threshold, c.extreme_ratio, 2.0 * c.extreme_ratio,
              c.sustained_sharp_ratio, pol.KEEP_OPEN_EXPECTED, pol.KEEP_OPEN_EXCESS * c.min_excess, pol.CALM,
              pol.ELEVATED, pol.ANOMALOUS, pol.EXTREME)
    _PARAMS[id(c)] = (c, params)
    return params


def give_signals(kernel: ModuleType, policy: pol.IncidentPolicy, observed: FloatArray, expected: FloatArray,
                 cal: FloatArray, hz: Horizons, tracked: BoolArray, rates: FloatArray
                 ) -> tuple[npt.NDArray[np.int8], FloatArray]:
    """``window_scores.give_signals`` by ``kernel.window_signals``."""
    n = len(observed)
    sig, score = np.empty(n, dtype=np.int8), np.empty(n)
    sharp_rows = np.ascontiguousarray(policy._sharp_rows, dtype=np.bool_).view(np.uint8)
    kernel.window_signals(observed, expected, cal, hz.rows, hz.block, tracked.view(np.uint8), rates, _WINDOWS,
                          sharp_rows, _params(policy), sig, score)
    return sig, score


def mute(kernel: ModuleType, ks: Keyspace, exp: Expectation, ws: int, signal: npt.NDArray[np.int8]
         ) -> BoolArray:
    """``score_window``'s muting by ``kernel.mute``: ``signal`` changed in place, the muted rows
    returned."""
    muted = np.empty(len(signal), dtype=np.bool_)
    kernel.mute(signal, exp.source, ks.mute_until, ws, FLOOR, pol.ANOMALOUS, pol.ELEVATED, muted.view(np.uint8))
    return muted
