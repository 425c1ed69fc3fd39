"""Hand-built scenario streams: three days of one-minute windows with a daily cycle, run through
the Detector as a replay would (feed_batch + flush)."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pytest

from spikedetect.core.config import DetectorConfig
from spikedetect.core.detector import Detector
from spikedetect.core.timefmt import format_ts_ms, parse_ts_ms

W = 60_000
DAY = 86_400_000
T0 = 1_795_651_200_000  # 2026-11-26T00:00:00Z, the quiet hour of the cycle below
DAYS = 3
RATES = {  # mean reports per minute over a day
    "US/CA/Los Angeles": 3.0,
    "US/CA/San Francisco": 2.0,
    "US/NY/New York": 3.0,
    "GB/England/London": 2.0,
}
CITY = "US/CA/Los Angeles"
AFFECTED = {CITY, "US/CA", "US", "*"}
SPIKE_START = T0 + 2 * DAY + 14 * 3_600_000  # day 3, 14:00 - near the daily peak
SPIKE_MINUTES = 20
SPIKE_FACTOR = 50
SPIKE_APP_SHARE = 0.75
CFG = DetectorConfig(window_ms=W)


def cycle(ws: np.ndarray) -> np.ndarray:
    """Daily multiplier: 0.2 at midnight UTC, 1.8 at noon."""
    return 1.0 - 0.8 * np.cos(2 * np.pi * (ws % DAY) / DAY)


@dataclass
class Scenario:
    raw: list[bytes] = field(default_factory=list)
    # (window start, region, category, source) -> reports, for recounting what incidents report
    counts: Counter[tuple[int, str, str, str]] = field(default_factory=Counter)
    events: list[dict[str, Any]] = field(default_factory=list)


def build(spike_windows: list[int], seed: int) -> Scenario:
    """Reports for every minute of three days; extra spike reports in the given windows (indexes)."""
    rng = np.random.default_rng(seed)
    n = DAYS * DAY // W
    ws = T0 + np.arange(n, dtype=np.int64) * W
    spiking = np.zeros(n, dtype=bool)
    spiking[spike_windows] = True
    rows: list[tuple[int, bytes]] = []
    sc = Scenario()
    eid = 0
    for region, rate in RATES.items():
        base = rng.poisson(rate * cycle(ws))
        extra = (
            np.where(spiking, rng.poisson(rate * (SPIKE_FACTOR - 1) * cycle(ws)), 0) if region == CITY else 0
        )
        for w in np.flatnonzero(base + extra):
            for k in range(int(base[w] + (extra[w] if region == CITY else 0))):
                in_spike = k >= base[w]
                category = "login" if in_spike else ("feed", "login", "messages")[int(rng.integers(0, 3))]
                source = "app" if rng.random() < (SPIKE_APP_SHARE if in_spike else 0.4) else "web"
                ts = int(ws[w]) + int(rng.integers(0, W))
                obj = {
                    "ts": format_ts_ms(ts),
                    "service": "ig",
                    "region": region,
                    "category": category,
                    "source": source,
                    "event_id": f"r{eid}",
                }
                eid += 1
                sc.counts[(int(ws[w]), region, category, source)] += 1
                # a little disorder, always within the allowed lateness (two windows)
                rows.append((ts + int(rng.integers(0, W)), orjson.dumps(obj)))
    rows.sort(key=lambda r: r[0])
    sc.raw = [r[1] for r in rows]
    det = Detector(CFG)
    for i in range(0, len(sc.raw), 5_000):
        out = det.feed_batch(sc.raw[i : i + 5_000])
        assert not out.rejects
        sc.events += [orjson.loads(e.to_json()) for e in out.incidents]
    sc.events += [orjson.loads(e.to_json()) for e in det.flush()]
    assert det.stats["accepted"] == sum(sc.counts.values())
    return sc


def spike_index(offset_minutes: int = 0) -> int:
    return (SPIKE_START - T0) // W + offset_minutes


@functools.cache
def normal() -> Scenario:
    return build([], seed=11)


@functools.cache
def spike() -> Scenario:
    return build([spike_index(i) for i in range(SPIKE_MINUTES)], seed=11)


FLAP = [1, 1, 1, 0, 0, 0] * 4  # three minutes on, three off (< close_windows), four times


@functools.cache
def flapping() -> Scenario:
    return build([spike_index(i) for i, on in enumerate(FLAP) if on], seed=11)


def by_region(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        out.setdefault(e["region"], []).append(e)
    return out


def ms(text: str) -> int:
    value = parse_ts_ms(text)
    assert value is not None
    return value


def test_normal_daily_cycle_opens_nothing() -> None:
    sc = normal()
    # the cycle is real: the busiest hour has several times the reports of the quietest
    hourly = Counter()
    for (ws, *_), n in sc.counts.items():
        hourly[(ws - T0) // 3_600_000 % 24] += n
    assert max(hourly.values()) > 4 * min(hourly.values())
    assert sc.events == []


def test_spike_opens_one_incident_per_affected_key_and_closes_after_recovery() -> None:
    sc = spike()
    events = by_region(sc.events)
    assert set(events) == AFFECTED  # nothing for San Francisco, New York, London, GB, ...
    spike_end = SPIKE_START + SPIKE_MINUTES * W
    for region, evs in events.items():
        types = [e["type"] for e in evs]
        assert types[0] == "opened" and types[-1] == "closed", region
        assert types.count("opened") == 1 and types.count("closed") == 1, region
        assert len({e["incident_id"] for e in evs}) == 1
        assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
        opened, closed = evs[0], evs[-1]
        assert ms(opened["opened_at"]) == SPIKE_START, region
        assert closed["close_reason"] == "recovered"
        # closed_at is the end of the last non-calm window: the spike's end, give or take a window
        assert spike_end <= ms(closed["closed_at"]) <= spike_end + 2 * W, region
        assert ms(closed["detected_at"]) - ms(closed["closed_at"]) >= (CFG.close_windows - 1) * W
        assert closed["level"] == {"*": "global", "US": "country", "US/CA": "state", CITY: "city"}[region]
        assert closed["baseline"] == "learned"
        assert closed["peak_count"] >= SPIKE_FACTOR * RATES[CITY] * 0.5


def test_detection_delay_is_at_most_two_windows() -> None:
    for region, evs in by_region(spike().events).items():
        assert ms(evs[0]["detected_at"]) - SPIKE_START <= 2 * W, region


def test_incident_shares_reflect_the_injected_mix() -> None:
    sc = spike()
    closed = {e["region"]: e for e in sc.events if e["type"] == "closed"}
    for region, ev in closed.items():
        # the incident accumulated every window from opened_at to the window that closed it
        first, end = ms(ev["opened_at"]), ms(ev["detected_at"])
        cats: Counter[str] = Counter()
        srcs: Counter[str] = Counter()
        for (ws, reg, cat, src), n in sc.counts.items():
            if first <= ws < end and (region == "*" or reg == region or reg.startswith(region + "/")):
                cats[cat] += n
                srcs[src] += n
        total = sum(srcs.values())
        assert ev["total_reports"] == total
        assert ev["sources"] == {k: round(v / total, 4) for k, v in sorted(srcs.items())}
        assert ev["categories"] == {k: round(v / total, 4) for k, v in sorted(cats.items())}
        assert ev["sources"]["app"] == pytest.approx(SPIKE_APP_SHARE, abs=0.04)
        assert ev["categories"]["login"] > 0.9
    # the state's children list the city first, as the source of the excess
    assert closed["US/CA"]["children"][0]["region"] == CITY
    assert closed["US"]["children"][0]["region"] == "US/CA"


def test_flapping_signal_stays_one_incident_per_key() -> None:
    events = by_region(flapping().events)
    assert set(events) == AFFECTED  # every on-phase is the same 50x spike
    for region, evs in events.items():
        types = [e["type"] for e in evs]
        assert types.count("opened") == 1 and types.count("closed") == 1, (region, types)
        assert types[-1] == "closed"
        assert len({e["incident_id"] for e in evs}) == 1
        assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
        last_on_end = SPIKE_START + (max(i for i, on in enumerate(FLAP) if on) + 1) * W
        assert last_on_end <= ms(evs[-1]["closed_at"]) <= last_on_end + 2 * W
        assert ms(evs[0]["opened_at"]) == SPIKE_START
