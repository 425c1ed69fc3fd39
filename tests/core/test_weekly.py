"""The week-profile baseline (``weekly``, the default of ``replay --series``): it fits a series
whose daily shape changes with the weekday, and chooses per key the profile that fits better."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikedetect.core.config import DetectorConfig, DetectorSpec
from spikedetect.core.detectors import make_baseline
from spikedetect.core.outage_events import OutageEvent
from spikedetect.core.signal_events import SignalEvent
from spikedetect.core.timefmt import parse_time_arg
from spikedetect.core.windows import DAY_MS
from spikedetect.replay.inputs import SeriesInput
from spikedetect.replay.series import SERIES_DETECTOR, SeriesData, replay_series

W = 1_800_000  # half-hour windows, like a taxi-rides series
HOUR = 3_600_000
START = 4 * DAY_MS  # a Monday (epoch day 4)


def _rate(ws: int) -> float:
    """Rides per window: a daily cycle, and weekend nights three times the weekday nights."""
    day, hour = ((ws // DAY_MS) + 3) % 7, (ws % DAY_MS) / HOUR
    base = 8000.0 + 6000.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
    night = 0 <= hour < 6
    return float(base * (3.0 if night and day in (5, 6) else 1.0))


def _series(weeks: int, seed: int = 3, party_at: int | None = None) -> SeriesData:
    """``weeks`` of windows with 5 % relative noise; ``party_at``: a weekday night from 01:00
    to 05:00 at the weekend-night level."""
    rng = np.random.default_rng(seed)
    rows = []
    for ws in range(START, START + weeks * 7 * DAY_MS, W):
        mean = _rate(ws)
        if party_at is not None and party_at <= ws < party_at + 4 * HOUR:
            mean *= 3.0
        rows.append((ws, float(round(mean * rng.normal(1.0, 0.05)))))
    return SeriesData(rows)


def _opened(data: SeriesData, detector: str) -> list[int]:
    cfg = DetectorConfig(window_ms=W, detector=DetectorSpec(detector))
    events: list[OutageEvent | SignalEvent] = []
    replay_series(data, cfg, on_incident=events.append, drops=False)
    return [parse_time_arg(e.opened_at) for e in events if e.type == "opened"]


PARTY = START + 5 * 7 * DAY_MS + 3 * DAY_MS + HOUR  # week 6, Thursday 01:00


def test_weekday_night_at_the_weekend_level_is_found_by_the_week_profile_only() -> None:
    data = _series(6, party_at=PARTY)
    weekly = _opened(data, "weekly")
    assert [t for t in weekly if PARTY - HOUR <= t < PARTY + 4 * HOUR], weekly
    assert not [t for t in weekly if t >= START + 4 * 7 * DAY_MS and not PARTY - HOUR <= t < PARTY + 4 * HOUR]
    # the daily profile times one weekday factor learns a noise wide enough to hide it
    seasonal = _opened(data, "seasonal")
    assert not [t for t in seasonal if PARTY - HOUR <= t < PARTY + 4 * HOUR], seasonal


def test_the_better_fitting_profile_is_chosen_per_key() -> None:
    """Both profiles warm: a key uses the week profile only where its learned variance is
    below the daily one's; on a tie the daily one stays."""
    bank = make_baseline(DetectorSpec("weekly"), W)
    rows = np.array([bank.add_row() for _ in range(3)])
    c = bank.cols
    c["prof"][rows], c["prof_w"][rows], c["wprof"][rows], c["wprof_w"][rows] = 100.0, 1e3, 300.0, 1e3
    c["wdisp_n"][rows] = 1e3
    c["alpha"][rows] = 0.1
    c["phi"][rows] = c["wphi"][rows] = 2.0
    c["walpha"][rows] = np.array([0.01, 0.1, 0.2])  # better, a tie, worse
    e = bank.expect(rows, START)
    assert e.aux["weekly"].tolist() == [True, False, False]
    assert e.mean.tolist() == [300.0, 100.0, 100.0]
    assert abs(e.phi[0] - (2.0 + 0.01 * 300.0)) < 1e-6  # the week profile's own noise
    c["wdisp_n"][rows] = 1.0  # its noise not learned for a day yet: not trusted
    assert not bank.expect(rows, START).aux["weekly"].any()


def test_a_level_shift_rebase_leaves_the_week_profile_alone() -> None:
    bank = make_baseline(DetectorSpec("weekly"), W)
    rows = np.array([bank.add_row()])
    bank.cols["wprof"][0] = 100.0
    bank.cols["prof"][0] = 100.0
    bank.rebase(rows, np.array([4.0]))
    assert float(bank.cols["prof"][0, 0]) == 400.0
    assert float(bank.cols["wprof"][0, 0]) == 100.0


def test_series_default_detector_is_weekly_unless_given(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("timestamp,value\n1795651200,1\n1795651260,2\n")
    inp = SeriesInput(str(path))
    assert inp.prepare({})["detector"] == SERIES_DETECTOR == "weekly"
    assert inp.prepare({"detector": "seasonal"})["detector"] == "seasonal"
