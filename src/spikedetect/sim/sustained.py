"""Minute-count scenarios for evidence that adds up over windows (issue 14), fed straight to
the scorer: four days of one-minute windows with a daily cycle, one service, a small city,
a mid-size one and a busy one (Poisson counts). Used by tests/core/test_sustained.py (the
bounds) and benchmarks/bench_quality.py (the figures).

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import ClosedWindow
from spikedetect.core.scorer import Scorer
from spikedetect.core.timefmt import parse_ts_ms

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


def replay(rates: Rates, seed: int = 3, days: int = DAYS, config: DetectorConfig | None = None
           ) -> list[dict[str, Any]]:
    """Poisson minute counts with the given expected rates through a Scorer; incident events."""
    rng = np.random.default_rng(seed)
    ws = T0 + np.arange(days * DAY // W, dtype=np.int64) * W
    counts = {region: rng.poisson(lam) for region, lam in rates(ws).items()}
    scorer = Scorer(config or DetectorConfig(window_ms=W))
    events = []
    for i, start in enumerate(ws.tolist()):
        leaves = {(region, "login", "app"): float(c[i]) for region, c in counts.items() if c[i]}
        scorer.add_partial(0, ClosedWindow(start, {"svc": leaves}))  # type: ignore[dict-item]
        scorer.set_watermark(0, start + W)
        events += [e.to_dict() for e in scorer.close_ready()]
    return events


def opened(events: list[dict[str, Any]], region: str | None = None) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "opened" and (region is None or e["region"] == region)]


@dataclass
class Outcome:
    """One sustained scenario run: found (for outages) and how fast, or the alarms (for traps)."""

    name: str
    outage: bool
    found: bool = False
    delay_min: float | None = None
    incidents: int = 0
    incidents_per_key_max: int = 0
    closed_within_h: float | None = None
    notes: list[str] = field(default_factory=list)


def _detected_ms(event: dict[str, Any]) -> int:
    ts = parse_ts_ms(str(event["detected_at"]))
    if ts is None:
        raise ValueError(f"detected_at {event['detected_at']!r} is not an RFC 3339 time")
    return ts


def _constant(multiple: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda minutes: np.full_like(minutes, multiple)


def _delay(events: list[dict[str, Any]], region: str, at: int) -> float | None:
    got = opened(events, region)
    return (_detected_ms(got[0]) - at) / W if got else None


def run_all(seed: int = 3, only: int | None = None) -> list[Outcome]:
    """Every sustained scenario once (the cases of tests/core/test_sustained.py); ``only``: the
    first few small-city cases alone (a quick check)."""
    out: list[Outcome] = []
    cases = ((20, 30, 2), (20, 60, 10), (50, 30, 23), (30, 45, 5))
    for multiple, minutes, hour in cases[:only]:
        at = EVENT_DAY + hour * HOUR
        ev = replay(with_outage(SMALL, at, minutes, _constant(float(multiple))), seed)
        d = _delay(ev, SMALL, at)
        out.append(Outcome(f"small_city {multiple}x {minutes}min {hour:02d}:00", True, d is not None, d,
                           len(opened(ev))))
    if only is not None:
        return out
    at = EVENT_DAY + 9 * HOUR
    ev = replay(with_outage(MID, at, 45, lambda m: 1.0 + 14.0 * m / 45.0), seed)
    d = _delay(ev, MID, at)
    out.append(Outcome("ramp 1x-15x 45min", True, d is not None, d, len(opened(ev))))
    for factor in (2.0, 3.0):
        at = EVENT_DAY + 8 * HOUR
        ev = replay(shifted(factor, at), seed, days=DAYS + 1)
        per_key: dict[str, int] = {}
        for e in opened(ev):
            per_key[e["region"]] = per_key.get(e["region"], 0) + 1
        closes = [_detected_ms(e) - at for e in ev if e["type"] == "closed"]
        out.append(Outcome(f"level_shift x{factor:g}", False, bool(per_key), None, len(opened(ev)),
                           max(per_key.values(), default=0), max(closes, default=0) / HOUR,
                           sorted({str(e["close_reason"]) for e in ev if e["type"] == "closed"})))
    at = EVENT_DAY + 14 * HOUR + 7 * W
    ev = replay(with_outage(BUSY, at, 1, lambda m: np.full_like(m, 3.0)), seed)
    out.append(Outcome("one-window 3x burst (busy key)", False, incidents=len(opened(ev))))
    ev = replay(early_peak, seed)
    out.append(Outcome("daily peak 30 min early", False, incidents=len(opened(ev))))
    return out
