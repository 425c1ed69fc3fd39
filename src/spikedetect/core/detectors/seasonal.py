"""Seasonal profile baseline: the expected count for this time of day and day of week.

Downdetector's public recipe ("average reports for that time of day over the last
months") as an online model per key:

* a time-of-day profile of 48 half-hour slots, each an exponentially weighted mean of
  the counts seen around that time, read with linear interpolation between slot centres
  (so the expectation is smooth across the day);
* a day-of-week factor (weekends differ), learned as a ratio of weighted sums;
* a fast-moving level (EW mean over ~10 windows) used while the profile is still cold;
* noise: variance ``phi * mean + alpha * mean**2`` - a Poisson-like part for small counts
  (``phi``, clumping) and a relative part for large ones (``alpha``: 5 % noise on 20,000
  is far more than Poisson's). Both are learned from residuals clipped at 3 standard
  deviations of the current model, so one burst moves them by little, not for days.

A cold key borrows its parent's expectation scaled by its learned share of the parent,
or falls back to a conservative floor, and reports which it used.

>>> import numpy as np
>>> b = SeasonalBaseline(60_000)
>>> r = b.add_row()
>>> rows = np.array([r])
>>> for ws in range(0, 3 * 86_400_000, 60_000):            # three days of 5 reports/min
...     e = b.expect(rows, ws)
...     b.learn(rows, ws, np.array([5.0]), e, np.array([np.nan]))
>>> e = b.expect(rows, 3 * 86_400_000)
>>> round(float(e.mean[0]), 2), int(e.source[0])
(5.0, 0)
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from spikedetect.core.detectors import seasonal_compiled
from spikedetect.core.detectors.base import (
    FLOOR,
    LEARNED,
    WARMING,
    Baseline,
    BoolArray,
    Expectation,
    FloatArray,
    IntArray,
    half_life_alpha,
)
from spikedetect.core.errors import ConfigError
from spikedetect.core.windows import DAY_MS
from spikedetect.kernel import closing as _kernel

SLOTS = 48
_SLOT_MS = DAY_MS // SLOTS


class SeasonalBaseline(Baseline):
    name = "seasonal"
    COLUMNS: ClassVar[dict[str, tuple[tuple[int, ...], str, float]]] = {
        "prof": ((SLOTS,), "float64", 0.0),      # expected count per window, by half-hour slot
        "prof_w": ((SLOTS,), "float32", 0.0),    # weight learned per slot
        "dow_num": ((7,), "float64", 0.0),       # EW of observed counts per weekday
        "dow_den": ((7,), "float64", 0.0),       # EW of profile expectation per weekday
        "dow_w": ((7,), "float32", 0.0),
        "level": ((), "float64", 0.0),           # fast EW level (cold-start fallback)
        "level_n": ((), "float32", 0.0),
        "phi": ((), "float32", 2.0),
        "alpha": ((), "float32", 0.0),          # relative variance: var = phi mu + alpha mu^2
        "disp_n": ((), "float32", 0.0),         # windows that taught the noise model
        "share": ((), "float64", 0.0),           # EW share of the parent's reports
        "share_w": ((), "float32", 0.0),
    }
    # slot-major: a window reads and learns one or two slots (one weekday) of every row
    COLUMN_MAJOR: ClassVar[frozenset[str]] = frozenset({"prof", "prof_w", "dow_num", "dow_den", "dow_w"})
    PARAMS: ClassVar[dict[str, float]] = {
        "half_life_days": 14.0,
        "dow_half_life_weeks": 4.0,
        "level_half_life_windows": 10.0,
        "warm_slot_weight": 20.0,
        "warm_level_windows": 10.0,
        "floor_mean": 0.5,
        "phi_prior": 2.0,
        "phi_half_life_windows": 1440.0,
        "phi_max": 50.0,
        "alpha_max": 4.0,
        "clip_sd": 3.0,
        "cold_phi_factor": 2.0,
    }

    def validate_params(self) -> None:
        p = self.params
        for key in ("half_life_days", "dow_half_life_weeks", "level_half_life_windows",
                    "phi_half_life_windows", "floor_mean", "phi_max"):
            if p[key] <= 0:
                raise ConfigError(f"seasonal.{key} must be positive")
        if p["phi_prior"] < 1 or p["cold_phi_factor"] < 1:
            raise ConfigError("seasonal.phi_prior and cold_phi_factor must be >= 1")
        windows_per_slot = _SLOT_MS / self.window_ms
        self._a_slot = half_life_alpha(p["half_life_days"] * windows_per_slot)
        self._a_dow = half_life_alpha(p["dow_half_life_weeks"] * DAY_MS / self.window_ms)
        self._a_level = half_life_alpha(p["level_half_life_windows"])
        self._a_phi = half_life_alpha(p["phi_half_life_windows"])
        self._a_period_slot = self._a_slot  # a longer profile's rate (core/detectors/weekly.py)

    def initial(self, col: str) -> float:
        return self.params["phi_prior"] if col == "phi" else super().initial(col)

    def _slots(self, ws_ms: int, period_ms: int = DAY_MS) -> tuple[int, int, float]:
        """The two half-hour slots (of a day, or of ``period_ms``) around the window's centre and
        the weight of the later one."""
        centre = (ws_ms + self.window_ms // 2) % period_ms
        u = centre / _SLOT_MS - 0.5
        lo = math.floor(u)
        w_hi = u - lo
        n = period_ms // _SLOT_MS
        return lo % n, (lo + 1) % n, w_hi

    @staticmethod
    def _dow(ws_ms: int) -> int:
        return (ws_ms // DAY_MS + 3) % 7

    def _profile(self, rows: IntArray | slice, ws_ms: int) -> tuple[FloatArray, BoolArray, FloatArray]:
        lo, hi, w_hi = self._slots(ws_ms)
        c = self.cols
        prof, pw = c["prof"], c["prof_w"]
        tod = (1.0 - w_hi) * prof[rows, lo] + w_hi * prof[rows, hi]
        need = self.params["warm_slot_weight"]
        warm = (pw[rows, lo] >= need) & (pw[rows, hi] >= need)
        d = self._dow(ws_ms)
        num, den = c["dow_num"][rows, d], c["dow_den"][rows, d]
        dow_ok = (c["dow_w"][rows, d] >= 0.5 * DAY_MS / self.window_ms) & (den > 1e-9)
        factor = np.clip(np.where(dow_ok, num / np.where(den > 1e-9, den, 1.0), 1.0), 0.25, 4.0)
        return tod, warm, factor

    def expect(self, rows: IntArray, ws_ms: int) -> Expectation:
        if _kernel is not None:  # the compiled closing loops: the same bits (seasonal_compiled)
            return seasonal_compiled.expect(_kernel, self, rows, ws_ms)
        p = self.params
        c = self.cols
        rows = self.rows_index(rows)  # type: ignore[assignment]
        tod, warm, factor = self._profile(rows, ws_ms)
        level = c["level"][rows]
        level_ok = c["level_n"][rows] >= p["warm_level_windows"]
        floor = p["floor_mean"]
        mean = np.where(warm, tod * factor, np.where(level_ok, level, np.maximum(level, floor)))
        source = np.where(warm, LEARNED, np.where(level_ok, WARMING, FLOOR)).astype(np.int8)
        mean = np.maximum(mean, floor)
        phi = c["phi"][rows].astype(np.float64) + c["alpha"][rows].astype(np.float64) * mean
        phi = np.where(warm, phi, phi * p["cold_phi_factor"])
        # the model's own estimate without the floor, for sums over many windows
        own = np.where(warm, tod * factor, level)
        return Expectation(mean, phi, source, {"tod": tod, "warm": warm, "factor": factor, "own": own})

    def shares(self, rows: IntArray) -> FloatArray:
        c = self.cols
        return np.where(c["share_w"][rows] >= 1.0, c["share"][rows], np.nan)

    def learn(self, rows: IntArray, ws_ms: int, observed: FloatArray, expected: Expectation,
              parent_observed: FloatArray, weight: FloatArray | None = None) -> None:
        if len(rows) == 0:
            return
        wt = np.ones(len(rows)) if weight is None else np.asarray(weight, dtype=np.float64)
        if _kernel is not None and seasonal_compiled.learn(_kernel, self, rows, ws_ms, observed, expected,
                                                           parent_observed, wt):
            return
        c = self.cols
        x = observed.astype(np.float64)
        tod, warm, factor = expected.aux["tod"], expected.aux["warm"], expected.aux["factor"]
        idx = self.rows_index(rows)  # a slice (views) when every row learns
        self._learn_noise(idx, x, expected, wt)
        # fast level: cumulative mean at first, then EW
        n = c["level_n"][idx] + wt
        a_level = np.maximum(1.0 / np.maximum(n, 1.0), self._a_level) * wt
        c["level"][idx] += a_level * (x - c["level"][idx])
        c["level_n"][idx] = np.minimum(n, 1e6)
        # day-of-week ratio, once the time-of-day profile can be trusted
        tod_rows = rows[warm]
        if len(tod_rows):
            d = self._dow(ws_ms)
            w = c["dow_w"][tod_rows, d] + 1.0
            a = np.maximum(1.0 / w, self._a_dow) * wt[warm]
            c["dow_num"][tod_rows, d] += a * (x[warm] - c["dow_num"][tod_rows, d])
            c["dow_den"][tod_rows, d] += a * (tod[warm] - c["dow_den"][tod_rows, d])
            c["dow_w"][tod_rows, d] = np.minimum(w, 1e6)
        self._learn_profile(idx, ws_ms, x / factor, wt)
        self._learn_share(rows, x, parent_observed, wt)

    def learn_window(self, learn: BoolArray, ws_ms: int, observed: FloatArray, expected: Expectation,
                     parent: IntArray, signal: npt.NDArray[np.int8], muted: BoolArray, elevated_weight: float) -> bool:
        """:meth:`learn` of the rows where ``learn`` is set, with the scorer's parents and weights
        (:func:`~spikedetect.core.detectors.seasonal_compiled.learn_window`), in one compiled call;
        False (nothing learned) when the compiled loops are not built or this is a subclass."""
        if _kernel is None or type(self) is not SeasonalBaseline:
            return False
        return seasonal_compiled.learn_window(_kernel, self, learn, ws_ms, observed, expected, parent, signal, muted,
                                              elevated_weight)

    def _learn_profile(self, idx: IntArray | slice, ws_ms: int, y: FloatArray, wt: FloatArray,
                       names: tuple[str, str] = ("prof", "prof_w"), period_ms: int = DAY_MS) -> None:
        """The time-of-day profile, on weekday-neutral counts ``y``; both neighbouring slots learn.
        ``names`` and ``period_ms``: another profile (columns, period) learns the same way."""
        c = self.cols
        prof, prof_w = c[names[0]], c[names[1]]
        a_slot = self._a_slot if period_ms == DAY_MS else self._a_period_slot
        lo, hi, w_hi = self._slots(ws_ms, period_ms)
        for slot, part in ((lo, 1.0 - w_hi), (hi, w_hi)):
            if part <= 0.0:
                continue
            pw = prof_w[idx, slot] + part * wt
            a = part * np.maximum(1.0 / np.maximum(pw, 1e-9), a_slot) * wt
            prof[idx, slot] += a * (y - prof[idx, slot])
            prof_w[idx, slot] = np.minimum(pw, 1e6)

    def _learn_share(self, rows: IntArray, x: FloatArray, parent_observed: FloatArray, wt: FloatArray) -> None:
        """Each key's share of its parent's reports (for the children's cold start)."""
        c = self.cols
        has_parent = np.isfinite(parent_observed) & (parent_observed > 0)
        if has_parent.any():
            pr = rows[has_parent]
            sw = c["share_w"][pr] + 1.0
            a = np.maximum(1.0 / sw, self._a_level / 10.0) * wt[has_parent]
            c["share"][pr] += a * (x[has_parent] / parent_observed[has_parent] - c["share"][pr])
            c["share_w"][pr] = np.minimum(sw, 1e6)

    def _learn_noise(self, idx: IntArray | slice, x: FloatArray, expected: Expectation, wt: FloatArray) -> None:
        """Overdispersion from this window's residual against what was expected (score before
        learn). The squared residual is clipped at ``clip_sd`` standard deviations of the current
        model; the variance beyond Poisson is split between ``phi`` and ``alpha`` in proportion
        to their current shares at this mean (seeded so either can grow from zero)."""
        self._learn_noise_into(idx, x, expected, wt, ("phi", "alpha", "disp_n"))

    def _learn_noise_into(self, idx: IntArray | slice, x: FloatArray, expected: Expectation, wt: FloatArray,
                          names: tuple[str, str, str]) -> None:
        """:meth:`_learn_noise` into the columns ``names`` (phi, alpha, count): a model with a
        second expectation learns that one's noise the same way."""
        p, c = self.params, self.cols
        mu = np.maximum(expected.mean, p["floor_mean"])
        phi = c[names[0]][idx].astype(np.float64)
        alpha = c[names[1]][idx].astype(np.float64)
        var = phi * mu + alpha * mu * mu
        r2 = np.minimum((x - mu) ** 2, p["clip_sd"] ** 2 * var)
        extra = r2 - mu
        part_phi = np.maximum(phi - 1.0, 0.1) * mu
        part_alpha = np.maximum(alpha, 0.002) * mu * mu
        share = part_alpha / (part_phi + part_alpha)
        phi_obs = 1.0 + extra * (1.0 - share) / mu
        alpha_obs = extra * share / (mu * mu)
        trusted = (expected.source != FLOOR) & (wt >= 1.0)
        n = c[names[2]][idx] + trusted
        a = np.where(trusted, np.maximum(1.0 / np.maximum(n, 1.0), self._a_phi), 0.0)
        c[names[0]][idx] = np.clip(phi + a * (phi_obs - phi), 1.0, p["phi_max"])
        c[names[1]][idx] = np.clip(alpha + a * (alpha_obs - alpha), 0.0, p["alpha_max"])
        c[names[2]][idx] = np.minimum(n, 1e6)

    def rebase(self, rows: IntArray, ratio: FloatArray) -> None:
        """Adopt a new level (a permanent shift): scale the profile and the fast level by
        ``ratio`` and make the profile's slots quick to learn again."""
        c = self.cols
        c["prof"][rows] *= ratio[:, None]
        c["level"][rows] *= ratio
        c["prof_w"][rows] = np.minimum(c["prof_w"][rows], self.params["warm_slot_weight"])

    def warm(self, rows: IntArray) -> BoolArray:
        return np.asarray(self.cols["prof_w"][rows].min(axis=1) >= self.params["warm_slot_weight"])
