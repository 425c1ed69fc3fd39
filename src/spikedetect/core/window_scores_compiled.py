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

from spikedetect.core import policy as pol
from spikedetect.core.detectors.base import FLOOR, LEARNED, PARENT_PRIOR, BoolArray, Expectation, FloatArray
from spikedetect.core.evidence import HORIZONS
from spikedetect.core.keyspace import Keyspace

if TYPE_CHECKING:
    from spikedetect.core.window_scores import Horizons

_WINDOWS = np.array(HORIZONS[1:], dtype=np.float64)  # windows summed per horizon row


def parent_prior(kernel: ModuleType, ks: Keyspace, exp: Expectation) -> None:
    """``window_scores.parent_prior`` by ``kernel.parent_prior`` (``exp`` changed in place)."""
    n = ks.size
    shares = np.ascontiguousarray(ks.baseline.shares(np.arange(n)), dtype=np.float64)
    if exp.mean.dtype != np.float64 or exp.source.dtype != np.int8 or not (
            exp.mean.flags.c_contiguous and exp.source.flags.c_contiguous):
        raise TypeError("parent_prior needs a float64 mean and an int8 source, contiguous")
    kernel.parent_prior(shares, ks.parent[:n], ks.depth[:n], ks.baseline.floor_mean, LEARNED, PARENT_PRIOR, exp.mean,
                        exp.source, np.empty(n, dtype=np.uint8), np.empty(n, dtype=np.intp), np.empty(n))


def _params(policy: pol.IncidentPolicy) -> tuple[float, ...]:
    c = policy.config
    return (c.min_excess, 1.0 + c.min_excess_ratio, 0.5 * c.min_excess, c.close_threshold, 2.0 * c.open_threshold,
            c.open_threshold, c.extreme_threshold, c.extreme_ratio, 2.0 * c.extreme_ratio, c.sustained_sharp_ratio,
            pol.KEEP_OPEN_EXPECTED, pol.KEEP_OPEN_EXCESS * c.min_excess, pol.CALM, pol.ELEVATED, pol.ANOMALOUS,
            pol.EXTREME)


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
