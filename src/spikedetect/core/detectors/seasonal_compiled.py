"""The seasonal detector's per-key closing steps in the compiled closing loops.

:meth:`SeasonalBaseline.expect <spikedetect.core.detectors.seasonal.SeasonalBaseline.expect>`
and ``learn`` call these when :mod:`spikedetect.kernel` has the closing loops built (and
``SPIKEDETECT_PURE`` is not set): one loop over the rows in C instead of some forty numpy calls
per window, with the same operations in the same order, so the arrays are bit-identical to the
numpy code, which stays the reference (tests/core/test_closing_kernel.py).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from spikedetect.core.detectors.base import (
    FLOOR,
    LEARNED,
    WARMING,
    BoolArray,
    Expectation,
    FloatArray,
    IntArray,
)
from spikedetect.core.windows import DAY_MS

if TYPE_CHECKING:
    from spikedetect.core.detectors.seasonal import SeasonalBaseline


def expect(kernel: ModuleType, model: SeasonalBaseline, rows: IntArray, ws_ms: int) -> Expectation:
    """``model.expect(rows, ws_ms)`` computed by ``kernel.seasonal_expect``."""
    lo, hi, w_hi = model._slots(ws_ms)
    n = len(rows)
    mean, phi, tod, factor, own = (np.empty(n) for _ in range(5))
    source = np.empty(n, dtype=np.int8)
    warm = np.empty(n, dtype=np.bool_)
    kernel.seasonal_expect(model.cols, np.ascontiguousarray(rows, dtype=np.intp), lo, hi, w_hi, model._dow(ws_ms),
                           expect_params(model), mean, phi, source, tod, warm.view(np.uint8), factor, own)
    return Expectation(mean, phi, source, {"tod": tod, "warm": warm, "factor": factor, "own": own})


def expect_params(model: SeasonalBaseline) -> tuple[float, ...]:
    """``kernel.seasonal_expect``'s parameters of ``model``."""
    p = model.params
    return (p["warm_slot_weight"], 0.5 * DAY_MS / model.window_ms, p["warm_level_windows"], p["floor_mean"],
            p["cold_phi_factor"], LEARNED, WARMING, FLOOR)


def learn_params(model: SeasonalBaseline) -> tuple[float, ...]:
    """``kernel.seasonal_learn``'s (and ``seasonal_learn_window``'s) parameters of ``model``."""
    p = model.params
    return (p["floor_mean"], p["clip_sd"] ** 2, p["phi_max"], p["alpha_max"], model._a_phi, model._a_level,
            model._a_dow, model._a_slot, FLOOR)


def learn(kernel: ModuleType, model: SeasonalBaseline, rows: IntArray, ws_ms: int, observed: FloatArray,
          expected: Expectation, parent_observed: FloatArray, wt: FloatArray) -> bool:
    """``model.learn`` computed by ``kernel.seasonal_learn``; False (nothing learned) when ``rows``
    are not increasing - repeated rows are left to numpy's fancy-indexing rules."""
    rows = np.ascontiguousarray(rows, dtype=np.intp)
    if len(rows) > 1 and not bool((rows[1:] > rows[:-1]).all()):
        return False
    lo, hi, w_hi = model._slots(ws_ms)
    aux = expected.aux
    params = learn_params(model)

    def f64(a: object) -> FloatArray:
        return np.ascontiguousarray(a, dtype=np.float64)

    kernel.seasonal_learn(model.cols, rows, f64(observed), f64(expected.mean),
                          np.ascontiguousarray(expected.source, dtype=np.int8), f64(aux["tod"]),
                          np.ascontiguousarray(aux["warm"], dtype=np.bool_).view(np.uint8), f64(aux["factor"]),
                          f64(parent_observed), f64(wt), lo, hi, w_hi, model._dow(ws_ms), params)
    return True


def learn_window(kernel: ModuleType, model: SeasonalBaseline, learn: BoolArray, ws_ms: int, observed: FloatArray,
                 expected: Expectation, parent: IntArray, signal: npt.NDArray[np.int8], muted: BoolArray,
                 elevated_weight: float) -> bool:
    """``Scorer._learn``'s baseline step in one call: ``model.learn`` of the rows where ``learn``
    is set, each with its parent's ``observed`` reports (NaN without a parent) and weight 1.0
    when calm or ``muted``, else ``elevated_weight`` - read from the full arrays, no subsets.
    False (nothing learned) when an array is not of the kernel's type: numpy does it then."""
    n = len(learn)
    aux = expected.aux
    full = (observed, expected.mean, aux["tod"], aux["factor"])
    if not (all(a.dtype == np.float64 and a.shape == (n,) for a in full) and expected.source.dtype == np.int8
            and signal.dtype == np.int8 and len(parent) >= n):
        return False
    lo, hi, w_hi = model._slots(ws_ms)
    params = learn_params(model)

    def u8(a: BoolArray) -> npt.NDArray[np.uint8]:
        return np.ascontiguousarray(a, dtype=np.bool_).view(np.uint8)

    c = np.ascontiguousarray
    kernel.seasonal_learn_window(model.cols, u8(learn), c(parent[:n], dtype=np.intp), c(signal), u8(muted),
                                 float(elevated_weight), c(observed), c(expected.mean), c(expected.source),
                                 c(aux["tod"]), u8(aux["warm"]), c(aux["factor"]), lo, hi, w_hi, model._dow(ws_ms),
                                 params)
    return True
