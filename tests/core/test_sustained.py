"""Outages that only add up over several windows, level shifts and the traps next to them
(issue 14), on minute counts fed straight to the scorer: four days of one-minute windows
with a daily cycle, one service, a small city, a mid-size one and a busy one.

Bounds (default configuration): a single city at 20-50x a level under 0.3 reports/min for
30-60 min is found within 10 minutes, night-time included; a linear ramp from 1x to 15x over
45 min within 15 minutes of its start; a permanent doubling of a service gives at most one
incident per key, closed (as a level shift) within 6 hours, and none after; a one-window 3x
burst on a busy key and a daily peak arriving 30 minutes early open nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytest

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


def cycle(ws: np.ndarray, shift_ms: int = 0) -> np.ndarray:
    """Daily multiplier between 0.4 (04:00 UTC) and 1.6 (16:00 UTC)."""
    return 1.0 - 0.6 * np.cos(2 * np.pi * ((ws - 4 * HOUR - shift_ms) % DAY) / DAY)


def normal(ws: np.ndarray) -> dict[str, np.ndarray]:
    return {region: rate * cycle(ws) for region, rate in RATES.items()}


def replay(rates: Rates, seed: int = 3, days: int = DAYS) -> list[dict[str, object]]:
    """Poisson minute counts with the given expected rates through a Scorer; incident events."""
    rng = np.random.default_rng(seed)
    ws = T0 + np.arange(days * DAY // W, dtype=np.int64) * W
    counts = {region: rng.poisson(lam) for region, lam in rates(ws).items()}
    scorer = Scorer(DetectorConfig(window_ms=W))
    events = []
    for i, start in enumerate(ws.tolist()):
        leaves = {(region, "login", "app"): float(c[i]) for region, c in counts.items() if c[i]}
        scorer.add_partial(0, ClosedWindow(start, {"svc": leaves}))  # type: ignore[dict-item]
        scorer.set_watermark(0, start + W)
        events += [e.to_dict() for e in scorer.close_ready()]
    return events


@functools.cache
def baseline_events(seed: int) -> list[dict[str, object]]:
    return replay(normal, seed)


def opened(events: list[dict[str, object]], region: str | None = None) -> list[dict[str, object]]:
    return [e for e in events if e["type"] == "opened" and (region is None or e["region"] == region)]


def test_normal_traffic_opens_nothing() -> None:
    assert opened(baseline_events(3)) == []


def _with_outage(region: str, start: int, minutes: int, multiple: Callable[[np.ndarray], np.ndarray]) -> Rates:
    def rates(ws: np.ndarray) -> dict[str, np.ndarray]:
        out = normal(ws)
        inside = (ws >= start) & (ws < start + minutes * 60_000)
        out[region] = np.where(inside, out[region] * multiple((ws - start) / 60_000), out[region])
        return out

    return rates


@pytest.mark.parametrize(("multiple", "minutes", "at"), [
    (20, 30, EVENT_DAY + 2 * HOUR),  # night: the city's level is ~0.09 reports/min
    (20, 60, EVENT_DAY + 10 * HOUR),
    (50, 30, EVENT_DAY + 23 * HOUR),
    (30, 45, EVENT_DAY + 5 * HOUR),
])
def test_small_city_outage_found_within_ten_minutes(multiple: int, minutes: int, at: int) -> None:
    level = RATES[SMALL] * float(cycle(np.array([at]))[0])
    assert level < 0.3
    events = replay(_with_outage(SMALL, at, minutes, lambda m: np.full_like(m, float(multiple))))
    found = opened(events, SMALL)
    assert len(found) == 1, found
    assert parse_ts_ms(str(found[0]["detected_at"])) - at <= 10 * 60_000
    assert {e["region"] for e in opened(events)} <= {SMALL, "IN/TG", "IN", "*"}


def test_linear_ramp_found_within_fifteen_minutes() -> None:
    at = EVENT_DAY + 9 * HOUR
    events = replay(_with_outage(MID, at, 45, lambda m: 1.0 + 14.0 * m / 45.0))
    found = opened(events, MID)
    assert found, "the ramp was missed"
    assert parse_ts_ms(str(found[0]["detected_at"])) - at <= 15 * 60_000


@pytest.mark.parametrize("factor", [2.0, 3.0])
def test_permanent_level_shift_gives_at_most_one_incident_per_key_then_adopts_it(factor: float) -> None:
    """Doubling sits at the ``min_excess_ratio`` edge (it may open nothing); tripling opens
    incidents, which close as level shifts once the baseline has adopted the new level."""
    at = EVENT_DAY + 8 * HOUR

    def shifted(ws: np.ndarray) -> dict[str, np.ndarray]:
        return {region: lam * np.where(ws >= at, factor, 1.0) for region, lam in normal(ws).items()}

    events = replay(shifted, days=DAYS + 1)
    per_key: dict[object, int] = {}
    for e in opened(events):
        per_key[e["region"]] = per_key.get(e["region"], 0) + 1
        assert at <= parse_ts_ms(str(e["opened_at"])) < at + 6 * HOUR
    assert not per_key or max(per_key.values()) == 1, per_key
    closes = [e for e in events if e["type"] == "closed"]
    assert len(closes) == len(per_key)
    for e in closes:
        assert parse_ts_ms(str(e["detected_at"])) - at <= 6 * HOUR
    if factor >= 3.0:
        assert per_key, "a tripled service opened nothing"
        assert {e["close_reason"] for e in closes} >= {"level_shift"}


def test_one_window_burst_on_a_busy_key_opens_nothing() -> None:
    at = EVENT_DAY + 14 * HOUR + 7 * 60_000
    events = replay(_with_outage(BUSY, at, 1, lambda m: np.full_like(m, 3.0)))
    assert opened(events) == []


def test_daily_peak_thirty_minutes_early_opens_nothing() -> None:
    def early(ws: np.ndarray) -> dict[str, np.ndarray]:
        shift = np.where(ws >= EVENT_DAY, 30 * 60_000, 0)
        return {region: rate * cycle(ws, -shift) for region, rate in RATES.items()}  # type: ignore[arg-type]

    assert opened(replay(early)) == []
