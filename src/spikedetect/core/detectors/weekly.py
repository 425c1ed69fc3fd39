"""Seasonal baseline with a week-long profile beside the daily one, chosen per key by fit.

The ``seasonal`` model multiplies one time-of-day profile by one factor per weekday. That
fits report streams and most metric series, but not a series whose *shape* changes with the
weekday: taxi rides on a Saturday night run at three times a Tuesday night's, while Saturday
as a whole is not busier. Its learned noise then grows to cover the misfit (a relative noise
of 30 %), and a New Year's night at 3x the usual Thursday night looks ordinary.

``weekly`` keeps everything ``seasonal`` learns and adds a profile of 7 x 48 half-hour slots
over the week (read with linear interpolation like the daily one) with its own noise model
(``wphi``, ``walpha``, learned from its own residuals exactly as the daily one is). Once a
week slot has :attr:`weekly_warm_weeks` weeks behind it and its noise has been learned for a
day, each key uses whichever of the two expectations its learned noise says fits better (the
smaller variance at the current mean), so a series that the daily profile describes well
(tweets: the week profile would only be noisier) keeps it. About 2.7 KB more state per key:
``replay --series`` uses it by default; report streams keep ``seasonal``.

A level-shift close rebases the daily model only (the inherited ``rebase``): a few raised
hours on a series with long windows close as a "level shift" too (a New Year's night at 4x),
and scaling a whole week by that ratio would hide the next two weeks; after a real shift the
week profile's own noise grows and the fit hands the key to the rebased daily model until the
week profile has learned the new level.

>>> import numpy as np
>>> b = WeeklyBaseline(1_800_000)
>>> rows = np.array([b.add_row()])
>>> day = lambda ws: (ws // 86_400_000 + 3) % 7
>>> for ws in range(0, 35 * 86_400_000, 1_800_000):   # five weeks: Saturdays 5x busier at night
...     x = 50.0 if day(ws) == 5 and (ws // 3_600_000) % 24 < 6 else 10.0
...     e = b.expect(rows, ws)
...     b.learn(rows, ws, np.array([x]), e, np.array([np.nan]))
>>> sat_night = 37 * 86_400_000 + 3 * 3_600_000   # a Saturday, 03:00
>>> round(float(b.expect(rows, sat_night).mean[0]), 1), bool(b.expect(rows, sat_night).aux["weekly"][0])
(50.0, True)
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from spikedetect.core.detectors.base import (
    LEARNED,
    BoolArray,
    Expectation,
    FloatArray,
    IntArray,
    half_life_alpha,
)
from spikedetect.core.detectors.seasonal import SLOTS, SeasonalBaseline
from spikedetect.core.errors import ConfigError
from spikedetect.core.windows import DAY_MS, WEEK_MS

WEEK_SLOTS = 7 * SLOTS
_SLOT_MS = DAY_MS // SLOTS


class WeeklyBaseline(SeasonalBaseline):
    name = "weekly"
    COLUMNS: ClassVar[dict[str, tuple[tuple[int, ...], str, float]]] = {
        **SeasonalBaseline.COLUMNS,
        "wprof": ((WEEK_SLOTS,), "float32", 0.0),    # expected count per window, by half-hour of the week
        "wprof_w": ((WEEK_SLOTS,), "float32", 0.0),  # weight learned per week slot
        "wphi": ((), "float32", 2.0),                # the week profile's own noise model
        "walpha": ((), "float32", 0.0),
        "wdisp_n": ((), "float32", 0.0),
    }
    COLUMN_MAJOR: ClassVar[frozenset[str]] = SeasonalBaseline.COLUMN_MAJOR | {"wprof", "wprof_w"}
    PARAMS: ClassVar[dict[str, float]] = {
        **SeasonalBaseline.PARAMS,
        "weekly_half_life_weeks": 2.0,
        "weekly_warm_weeks": 3.0,
        "weekly_noise_days": 1.0,
    }

    def validate_params(self) -> None:
        super().validate_params()
        p = self.params
        for key in ("weekly_half_life_weeks", "weekly_warm_weeks", "weekly_noise_days"):
            if p[key] <= 0:
                raise ConfigError(f"weekly.{key} must be positive")
        windows_per_slot = _SLOT_MS / self.window_ms
        self._a_period_slot = half_life_alpha(p["weekly_half_life_weeks"] * windows_per_slot)
        self._w_need = p["weekly_warm_weeks"] * windows_per_slot
        self._w_noise_need = p["weekly_noise_days"] * DAY_MS / self.window_ms

    def initial(self, col: str) -> float:
        return self.params["phi_prior"] if col == "wphi" else super().initial(col)

    def _week(self, rows: IntArray | slice, ws_ms: int) -> tuple[FloatArray, BoolArray]:
        """The week profile's expectation and where it is warm (its slots and its noise)."""
        lo, hi, w_hi = self._slots(ws_ms, WEEK_MS)
        c = self.cols
        wp, ww = c["wprof"], c["wprof_w"]
        week = (1.0 - w_hi) * wp[rows, lo].astype(np.float64) + w_hi * wp[rows, hi].astype(np.float64)
        warm = (ww[rows, lo] >= self._w_need) & (ww[rows, hi] >= self._w_need)
        return week, warm & (c["wdisp_n"][rows] >= self._w_noise_need)

    def expect(self, rows: IntArray, ws_ms: int) -> Expectation:
        daily = super().expect(rows, ws_ms)
        c = self.cols
        idx = self.rows_index(rows)
        week, week_warm = self._week(idx, ws_ms)
        mu = daily.mean
        var_d = c["phi"][idx].astype(np.float64) * mu + c["alpha"][idx].astype(np.float64) * mu * mu
        wphi, walpha = c["wphi"][idx].astype(np.float64), c["walpha"][idx].astype(np.float64)
        wmean = np.maximum(week, self.params["floor_mean"])
        # the better fit: the smaller learned variance, both taken at the same mean (on a tie the
        # daily profile stays)
        use = week_warm & (daily.source == LEARNED) & (wphi * mu + walpha * mu * mu < var_d)
        aux = {**daily.aux, "daily_mean": daily.mean, "week": week, "week_warm": week_warm, "weekly": use}
        if not use.any():
            return Expectation(daily.mean, daily.phi, daily.source, aux)
        aux["own"] = np.where(use, week, daily.aux["own"])
        return Expectation(np.where(use, wmean, daily.mean), np.where(use, wphi + walpha * wmean, daily.phi),
                           daily.source, aux)

    def learn(self, rows: IntArray, ws_ms: int, observed: FloatArray, expected: Expectation,
              parent_observed: FloatArray, weight: FloatArray | None = None) -> None:
        if len(rows) == 0:
            return
        wt = np.ones(len(rows)) if weight is None else np.asarray(weight, dtype=np.float64)
        x = observed.astype(np.float64)
        idx = self.rows_index(rows)
        # the week profile's noise, from its own residuals where its slots are warm
        lo, hi, _ = self._slots(ws_ms, WEEK_MS)
        ww = self.cols["wprof_w"]
        slots_warm = (ww[idx, lo] >= self._w_need) & (ww[idx, hi] >= self._w_need)
        wexp = Expectation(np.asarray(expected.aux["week"]), expected.phi, expected.source)
        self._learn_noise_into(idx, x, wexp, np.where(slots_warm, wt, 0.0), ("wphi", "walpha", "wdisp_n"))
        self._learn_profile(idx, ws_ms, x, wt, ("wprof", "wprof_w"), WEEK_MS)
        # everything the daily model learns, against its own expectation
        daily = Expectation(np.asarray(expected.aux["daily_mean"]), expected.phi, expected.source, expected.aux)
        super().learn(rows, ws_ms, observed, daily, parent_observed, weight)
