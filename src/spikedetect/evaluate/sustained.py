"""The sustained minute-count scenarios (:mod:`spikedetect.sim.sustained`) fed straight to the
scorer, and what each run found. Used by tests/core/test_sustained.py (the bounds) and
benchmarks/bench_quality.py (the figures)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import ClosedWindow
from spikedetect.core.scorer import Scorer
from spikedetect.core.timefmt import parse_ts_ms
from spikedetect.sim.sustained import (
    BUSY,
    DAYS,
    EVENT_DAY,
    HOUR,
    MID,
    SMALL,
    Rates,
    W,
    early_peak,
    minute_counts,
    shifted,
    with_outage,
)


def replay(rates: Rates, seed: int = 3, days: int = DAYS, config: DetectorConfig | None = None
           ) -> list[dict[str, Any]]:
    """Poisson minute counts with the given expected rates through a Scorer; incident events."""
    ws, counts = minute_counts(rates, seed, days)
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


def _small_cities(seed: int, only: int | None) -> list[Outcome]:
    out = []
    cases = ((20, 30, 2), (20, 60, 10), (50, 30, 23), (30, 45, 5))
    for multiple, minutes, hour in cases[:only]:
        at = EVENT_DAY + hour * HOUR
        ev = replay(with_outage(SMALL, at, minutes, _constant(float(multiple))), seed)
        d = _delay(ev, SMALL, at)
        out.append(Outcome(f"small_city {multiple}x {minutes}min {hour:02d}:00", True, d is not None, d,
                           len(opened(ev))))
    return out


def _level_shift(seed: int, factor: float) -> Outcome:
    at = EVENT_DAY + 8 * HOUR
    ev = replay(shifted(factor, at), seed, days=DAYS + 1)
    per_key: dict[str, int] = {}
    for e in opened(ev):
        per_key[e["region"]] = per_key.get(e["region"], 0) + 1
    closes = [_detected_ms(e) - at for e in ev if e["type"] == "closed"]
    return Outcome(f"level_shift x{factor:g}", False, bool(per_key), None, len(opened(ev)),
                   max(per_key.values(), default=0), max(closes, default=0) / HOUR,
                   sorted({str(e["close_reason"]) for e in ev if e["type"] == "closed"}))


def run_all(seed: int = 3, only: int | None = None) -> list[Outcome]:
    """Every sustained scenario once (the cases of tests/core/test_sustained.py); ``only``: the
    first few small-city cases alone (a quick check)."""
    out = _small_cities(seed, only)
    if only is not None:
        return out
    at = EVENT_DAY + 9 * HOUR
    ev = replay(with_outage(MID, at, 45, lambda m: 1.0 + 14.0 * m / 45.0), seed)
    d = _delay(ev, MID, at)
    out.append(Outcome("ramp 1x-15x 45min", True, d is not None, d, len(opened(ev))))
    out += [_level_shift(seed, factor) for factor in (2.0, 3.0)]
    at = EVENT_DAY + 14 * HOUR + 7 * W
    ev = replay(with_outage(BUSY, at, 1, lambda m: np.full_like(m, 3.0)), seed)
    out.append(Outcome("one-window 3x burst (busy key)", False, incidents=len(opened(ev))))
    ev = replay(early_peak, seed)
    out.append(Outcome("daily peak 30 min early", False, incidents=len(opened(ev))))
    return out
