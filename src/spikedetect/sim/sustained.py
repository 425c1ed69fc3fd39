"""Minute-count scenarios for evidence that adds up over windows (issue 14): four days of
one-minute windows with a daily cycle, one service, a small city, a mid-size one and a busy
one (Poisson counts). :mod:`spikedetect.evaluate.sustained` feeds them straight to the scorer
(tests/core/test_sustained.py checks the bounds, benchmarks/bench_quality.py the figures).

* ``small_city``: a city at 20-50x a level under 0.3 reports/min for 30-60 min (bound: found
  within 10 minutes, night-time included);
* ``ramp``: a mid-size city growing linearly from 1x to 15x over 45 min (within 15 minutes);
* ``level_shift``: the service's rate triples for good (at most one incident per key, closed
  within 6 hours, none after);
* ``burst``: one window at 3x on the busy city; ``early_peak``: the daily peak 30 min early
  (no incident).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

W = 60_000
HOUR = 3_600_000
DAY = 86_400_000
T0 = 1_795_651_200_000  # 2026-11-26T00:00:00Z
DAYS = 4
EVENT_DAY = T0 + 3 * DAY  # three days of history first
SMALL, MID, BUSY = "IN/TG/Hyderabad", "IN/MH/Mumbai", "US/CA/Los Angeles"
RATES = {SMALL: 0.2, "IN/TG/Warangal": 0.4, MID: 4.0, BUSY: 40.0}  # mean reports/min over a day

Rates = Callable[[np.ndarray], dict[str, np.ndarray]]


def cycle(ws: np.ndarray, shift_ms: Any = 0) -> np.ndarray:
    """Daily multiplier between 0.4 (04:00 UTC) and 1.6 (16:00 UTC), ``shift_ms`` later."""
    out: np.ndarray = 1.0 - 0.6 * np.cos(2 * np.pi * ((ws - 4 * HOUR - shift_ms) % DAY) / DAY)
    return out


def normal(ws: np.ndarray) -> dict[str, np.ndarray]:
    return {region: rate * cycle(ws) for region, rate in RATES.items()}


def with_outage(region: str, start: int, minutes: int, multiple: Callable[[np.ndarray], np.ndarray]) -> Rates:
    """Normal rates, with ``region`` multiplied by ``multiple(minutes since start)`` for a while."""
    def rates(ws: np.ndarray) -> dict[str, np.ndarray]:
        out = normal(ws)
        inside = (ws >= start) & (ws < start + minutes * W)
        out[region] = np.where(inside, out[region] * multiple((ws - start) / W), out[region])
        return out

    return rates


def shifted(factor: float, at: int) -> Rates:
    def rates(ws: np.ndarray) -> dict[str, np.ndarray]:
        return {region: lam * np.where(ws >= at, factor, 1.0) for region, lam in normal(ws).items()}

    return rates


def early_peak(ws: np.ndarray) -> dict[str, np.ndarray]:
    shift = np.where(ws >= EVENT_DAY, -30 * 60_000, 0)
    return {region: rate * cycle(ws, shift) for region, rate in RATES.items()}


def minute_counts(rates: Rates, seed: int = 3, days: int = DAYS) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The window starts from ``T0`` and each region's Poisson counts with the given expected rates."""
    rng = np.random.default_rng(seed)
    ws = T0 + np.arange(days * DAY // W, dtype=np.int64) * W
    return ws, {region: rng.poisson(lam) for region, lam in rates(ws).items()}
