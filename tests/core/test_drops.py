"""Drops of a metric series below its expectation (core/drops.py), on by default for ``--series``."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from spikedetect.core import DetectorConfig, Scorer
from spikedetect.core.counter import ClosedWindow
from spikedetect.core.drops import DropDetector, lower_tail_score
from spikedetect.core.signal_events import SignalEvent
from spikedetect.core.signals import Signals
from spikedetect.replay.series import SeriesData, choose_value_scale, replay_series

WINDOW_MS = 5 * 60_000
DAY_WINDOWS = 86_400_000 // WINDOW_MS


def _series(days: int, seed: int, drop: tuple[int, int, float] | None = None) -> SeriesData:
    """A count series with a strong daily cycle (night trough at a fifth of the day's peak) and
    relative noise; ``drop``: (first window, windows, factor) multiplied into it."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(days * DAY_WINDOWS):
        phase = 2 * math.pi * (i % DAY_WINDOWS) / DAY_WINDOWS
        level = 200.0 * (0.6 - 0.4 * math.cos(phase)) * rng.gamma(50.0, 1 / 50.0)
        if drop is not None and drop[0] <= i < drop[0] + drop[1]:
            level *= drop[2]
        rows.append((1_700_006_400_000 + i * WINDOW_MS, float(rng.poisson(level))))
    return SeriesData(rows=rows)


def _drops(data: SeriesData, drops: bool = True) -> list[SignalEvent]:
    events: list[SignalEvent] = []

    def keep(e: object) -> None:
        if isinstance(e, SignalEvent):
            events.append(e)

    replay_series(data, DetectorConfig(window_ms=WINDOW_MS), on_incident=keep, drops=drops)
    return [e for e in events if e.kind == "drop"]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_sustained_drop_on_a_series_opens_one_drop_incident_that_closes(seed: int) -> None:
    start = 10 * DAY_WINDOWS + DAY_WINDOWS // 2  # midday of day 11, for 4 hours at 30 %
    events = _drops(_series(12, seed, (start, 48, 0.3)))
    opened = [e for e in events if e.type == "opened"]
    assert len(opened) == 1
    e = opened[0].to_dict()
    assert e["direction"] == "drop" and e["kind"] == "drop" and e["incident_id"].startswith("drp-")
    first_ms = 1_700_006_400_000 + start * WINDOW_MS
    detected_ms = _ms(e["detected_at"])
    assert first_ms < detected_ms <= first_ms + 12 * WINDOW_MS  # within an hour of its start
    assert e["observed"] < 0.6 * e["expected_reports"]
    assert e["detector"]["model"] == "counts"
    closed = [x for x in events if x.type == "closed"]
    assert len(closed) == 1 and closed[0].close_reason == "recovered"
    assert _ms(closed[0].to_dict()["updated_at"]) <= first_ms + (48 + 36) * WINDOW_MS


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_daily_trough_and_noise_open_no_drop(seed: int) -> None:
    assert _drops(_series(12, seed)) == []


def test_drops_can_be_turned_off_and_report_streams_have_none() -> None:
    start = 10 * DAY_WINDOWS + DAY_WINDOWS // 2
    data = _series(12, 1, (start, 48, 0.3))
    assert _drops(data, drops=False) == []
    scorer = Scorer(DetectorConfig(window_ms=WINDOW_MS))  # report streams: composition and gaps only
    assert scorer.signals is not None and "drop" not in scorer.signals.kinds
    for ws, value in data.rows:
        scorer.add_partial(0, ClosedWindow(ws, {"svc": {("*", "other", "web"): value}}))  # type: ignore[dict-item]
        scorer.set_watermark(0, ws + WINDOW_MS)
        scorer.close_ready()
    assert [e for e in scorer.signals.take() if e.kind == "drop"] == []


def test_lower_tail_score_falls_as_the_count_rises_and_is_zero_at_the_mean() -> None:
    for mean, var in ((20.0, 20.0), (500.0, 2000.0), (20_000.0, 0.1 * 20_000.0**2)):
        scores = [lower_tail_score(x, mean, var) for x in np.linspace(0, mean, 41)]
        assert all(a >= b for a, b in itertools.pairwise(scores))
        assert scores[-1] == 0.0 and scores[0] > 2.0


def test_drop_state_round_trips() -> None:
    signals = Signals(DetectorConfig(window_ms=WINDOW_MS), kinds=Signals.SERIES)
    det = signals.drops
    keys, index = [("s", "*")], {("s", "*"): 0}
    for i in range(40):
        det.close_window(i * WINDOW_MS, keys, index, np.array([100.0 if i < 35 else 10.0]), np.array([100.0]),
                         np.array([1.0]), np.array([True]), np.array([False]))
    copy = DropDetector(WINDOW_MS, {}, 6.0, 3.0, 3 * 3_600_000)
    copy.load(signals.to_dict()["drops"])
    assert copy.to_dict() == det.to_dict() and det.keys[("s", "*")].drop is not None


def _ms(text: str) -> int:
    from spikedetect.core.timefmt import parse_time_arg

    return parse_time_arg(text)


def test_no_drop_is_judged_for_a_day_after_a_level_shift_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3x burst held for 4 hours closes as a level shift (the profile is rebased to 3x); when the
    series returns to its level, the rebased expectation is a guess, not a drop."""
    start = 10 * DAY_WINDOWS + DAY_WINDOWS // 2
    data = _series(12, 1, (start, 48, 3.0))
    end_ms = 1_700_006_400_000 + (start + 48) * WINDOW_MS

    def drops_within_a_day() -> list[SignalEvent]:
        return [e for e in _drops(data) if e.type == "opened" and _ms(e.detected_at) < end_ms + 86_400_000 - 3_600_000]

    assert drops_within_a_day() == []
    monkeypatch.setattr("spikedetect.core.drops.REBASED_MS", 0)
    monkeypatch.setattr("spikedetect.core.drops.REBASED_WINDOWS", 0)
    assert drops_within_a_day() != []  # without the rule, the rebased level opens a drop


@pytest.mark.parametrize(("window_ms", "muted_ms"), [(60_000, 86_400_000), (5 * 60_000, 700 * 5 * 60_000),
                                                     (1_800_000, 700 * 1_800_000)])
def test_drops_stay_muted_while_the_rebased_profile_relearns(window_ms: int, muted_ms: int) -> None:
    """After a level-shift close, no drop is judged for a day, or for the ~700 windows the rebased
    daily profile needs to shed half of a wrong rebase when that is longer (2.4 days of 5-minute
    windows, 14.5 days of half-hour ones: AAPL's tweets read as drops for three days after a
    three-hour burst was rebased)."""
    det = DropDetector(window_ms, {}, 6.0, 3.0, level_shift_ms=3 * 3_600_000)
    keys, index = [("s", "*")], {("s", "*"): 0}
    one, yes, no = np.ones(1), np.ones(1, dtype=bool), np.zeros(1, dtype=bool)
    ws = 0
    for ws in range(0, 3 * 3_600_000 + window_ms, window_ms):  # a count incident held past level_shift_ms
        det.close_window(ws, keys, index, one, one, one, no, yes)
    ws += window_ms
    det.close_window(ws, keys, index, one, one, one, yes, no)  # it closed
    assert det.keys[("s", "*")].mute_until == ws + muted_ms


def test_a_continuous_series_reports_its_drop_in_its_own_units() -> None:
    start = 10 * DAY_WINDOWS + DAY_WINDOWS // 2
    data = _series(12, 1, (start, 48, 0.3))
    data.rows = [(ts, v / 1000.0 + 0.0005) for ts, v in data.rows]  # latency-like: non-integer, ~0.2
    events: list[SignalEvent] = []
    config = DetectorConfig(window_ms=WINDOW_MS, value_scale=choose_value_scale(data.rows))
    assert config.value_scale > 1.0
    replay_series(data, config, on_incident=lambda e: events.append(e) if isinstance(e, SignalEvent) else None)
    opened = [e.to_dict() for e in events if e.kind == "drop" and e.type == "opened"]
    assert len(opened) == 1 and opened[0]["detector"]["model"] == "continuous"
    per_window = opened[0]["expected_reports"] / opened[0]["horizon_windows"]
    assert 0.01 < per_window < 1.0  # the series' units (values ~0.2), not the scaled ones
