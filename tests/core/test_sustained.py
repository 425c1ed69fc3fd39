"""Outages that only add up over several windows, level shifts and the traps next to them
(issue 14), on the minute-count scenarios of :mod:`spikedetect.sim.sustained`, run by
:mod:`spikedetect.evaluate.sustained`.

Bounds (default configuration): a single city at 20-50x a level under 0.3 reports/min for
30-60 min is found within 10 minutes, night-time included; a linear ramp from 1x to 15x over
45 min within 15 minutes of its start; a permanent shift of a service gives at most one
incident per key, closed (as a level shift) within 6 hours, and none after; a one-window 3x
burst on a busy key and a daily peak arriving 30 minutes early open nothing.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from spikedetect.core.timefmt import parse_ts_ms
from spikedetect.evaluate.sustained import opened, replay
from spikedetect.sim.sustained import (
    BUSY,
    DAYS,
    EVENT_DAY,
    HOUR,
    MID,
    RATES,
    SMALL,
    cycle,
    early_peak,
    normal,
    shifted,
    with_outage,
)


@functools.cache
def baseline_events(seed: int) -> list[dict[str, object]]:
    return replay(normal, seed)


def test_normal_traffic_opens_nothing() -> None:
    assert opened(baseline_events(3)) == []


@pytest.mark.parametrize(("multiple", "minutes", "at"), [
    (20, 30, EVENT_DAY + 2 * HOUR),  # night: the city's level is ~0.1 reports/min
    (20, 60, EVENT_DAY + 10 * HOUR),
    (50, 30, EVENT_DAY + 23 * HOUR),
    (30, 45, EVENT_DAY + 5 * HOUR),
])
def test_small_city_outage_found_within_ten_minutes(multiple: int, minutes: int, at: int) -> None:
    level = RATES[SMALL] * float(cycle(np.array([at]))[0])
    assert level < 0.3
    events = replay(with_outage(SMALL, at, minutes, lambda m: np.full_like(m, float(multiple))))
    found = opened(events, SMALL)
    assert len(found) == 1, found
    assert parse_ts_ms(str(found[0]["detected_at"])) - at <= 10 * 60_000
    assert {e["region"] for e in opened(events)} <= {SMALL, "IN/TG", "IN", "*"}


def test_linear_ramp_found_within_fifteen_minutes() -> None:
    at = EVENT_DAY + 9 * HOUR
    events = replay(with_outage(MID, at, 45, lambda m: 1.0 + 14.0 * m / 45.0))
    found = opened(events, MID)
    assert found, "the ramp was missed"
    assert parse_ts_ms(str(found[0]["detected_at"])) - at <= 15 * 60_000


@pytest.mark.parametrize("factor", [2.0, 3.0])
def test_permanent_level_shift_gives_at_most_one_incident_per_key_then_adopts_it(factor: float) -> None:
    """Doubling sits at the ``min_excess_ratio`` edge (it may open nothing); tripling opens
    incidents, which close as level shifts once the baseline has adopted the new level."""
    at = EVENT_DAY + 8 * HOUR
    events = replay(shifted(factor, at), days=DAYS + 1)
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
    events = replay(with_outage(BUSY, at, 1, lambda m: np.full_like(m, 3.0)))
    assert opened(events) == []


def test_daily_peak_thirty_minutes_early_opens_nothing() -> None:
    assert opened(replay(early_peak)) == []


@pytest.mark.parametrize("seed", [1, 3, 5])
def test_short_sharp_spike_closes_soon_after_it_ends(seed: int) -> None:
    """A ten-minute spike at 20x on a mid-size city: the incident closes within
    ``close_windows`` + 3 windows after the reports are back to normal, not when the spike has
    left the 30-window evidence sum (13 minutes after the end before this bound)."""
    at = EVENT_DAY + 11 * HOUR
    events = replay(with_outage(MID, at, 10, lambda m: np.full_like(m, 20.0)), seed)
    mine = [e for e in events if e["region"] == MID and e["type"] != "updated"]
    assert [e["type"] for e in mine] == ["opened", "closed"], mine
    end = at + 10 * 60_000
    assert parse_ts_ms(str(mine[1]["detected_at"])) - end <= (5 + 3) * 60_000
    assert parse_ts_ms(str(mine[1]["closed_at"])) >= parse_ts_ms(str(mine[0]["opened_at"]))
