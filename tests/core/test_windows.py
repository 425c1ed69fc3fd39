"""Pure window maths: table-driven, plus a property check against the standard library calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core.windows import (
    DAY_MS,
    WEEK_MS,
    closable_windows,
    day_of_week,
    is_closed,
    time_of_day_ms,
    watermark,
    window_end,
    window_start,
)

MIN = 60_000


@pytest.mark.parametrize(
    ("ts_ms", "window_ms", "expected"),
    [
        (0, MIN, 0),
        (1, MIN, 0),
        (59_999, MIN, 0),
        (60_000, MIN, 60_000),
        (125_000, MIN, 120_000),
        (-1, MIN, -60_000),  # floor, not truncation towards zero
        (-60_000, MIN, -60_000),
        (-60_001, MIN, -120_000),
        (1_795_662_855_123, MIN, 1_795_662_840_000),  # 2026-11-26T03:14:15.123Z -> 03:14:00
        (1_795_662_855_123, 1_000, 1_795_662_855_000),
        (1_795_662_855_123, DAY_MS, 1_795_651_200_000),  # -> 2026-11-26T00:00:00Z
        (7, 5, 5),
        (-7, 5, -10),
    ],
)
def test_window_start(ts_ms: int, window_ms: int, expected: int) -> None:
    ws = window_start(ts_ms, window_ms)
    assert ws == expected
    assert ws <= ts_ms < window_end(ws, window_ms)


@pytest.mark.parametrize(
    ("ws_ms", "window_ms", "wm_ms", "closed"),
    [
        (0, MIN, MIN, True),  # the end itself closes the window
        (0, MIN, MIN - 1, False),  # one millisecond before does not
        (0, MIN, MIN + 1, True),
        (0, MIN, 0, False),
        (120_000, MIN, 180_000, True),
        (120_000, MIN, 179_999, False),
        (-60_000, MIN, 0, True),
        (-60_000, MIN, -1, False),
    ],
)
def test_is_closed_boundaries(ws_ms: int, window_ms: int, wm_ms: int, closed: bool) -> None:
    assert is_closed(ws_ms, window_ms, wm_ms) is closed


@pytest.mark.parametrize(
    ("first_ws", "window_ms", "wm_ms", "expected"),
    [
        (0, MIN, 185_000, [0, 60_000, 120_000]),
        (0, MIN, 180_000, [0, 60_000, 120_000]),  # 120000's end == wm: closed
        (0, MIN, 179_999, [0, 60_000]),
        (0, MIN, 59_999, []),
        (0, MIN, -5, []),
        (120_000, MIN, 100_000, []),  # watermark behind the first window
        (-120_000, MIN, 0, [-120_000, -60_000]),
    ],
)
def test_closable_windows(first_ws: int, window_ms: int, wm_ms: int, expected: list[int]) -> None:
    got = list(closable_windows(first_ws, window_ms, wm_ms))
    assert got == expected
    assert all(is_closed(ws, window_ms, wm_ms) for ws in got)
    nxt = got[-1] + window_ms if got else first_ws
    assert not is_closed(nxt, window_ms, wm_ms)


@pytest.mark.parametrize(
    ("max_ts_ms", "lateness_ms", "expected"),
    [(1_000_000, 120_000, 880_000), (1_000_000, 0, 1_000_000), (0, 5, -5)],
)
def test_watermark(max_ts_ms: int, lateness_ms: int, expected: int) -> None:
    assert watermark(max_ts_ms, lateness_ms) == expected


@pytest.mark.parametrize(
    ("ts_ms", "dow"),
    [
        (0, 3),  # 1970-01-01 was a Thursday
        (DAY_MS - 1, 3),
        (DAY_MS, 4),  # Friday
        (4 * DAY_MS, 0),  # 1970-01-05: Monday
        (3 * DAY_MS + 1, 6),  # Sunday
        (-1, 2),  # 1969-12-31 23:59:59.999: Wednesday
        (-DAY_MS, 2),
        (-DAY_MS - 1, 1),
        (1_795_651_200_000, 3),  # 2026-11-26: a Thursday
        (1_795_651_200_000 + 3 * DAY_MS, 6),  # 2026-11-29: Sunday
        (1_795_651_200_000 + WEEK_MS, 3),
    ],
)
def test_day_of_week(ts_ms: int, dow: int) -> None:
    assert day_of_week(ts_ms) == dow


@pytest.mark.parametrize(
    ("ts_ms", "tod"),
    [(0, 0), (DAY_MS - 1, DAY_MS - 1), (DAY_MS, 0), (-1, DAY_MS - 1), (1_795_662_855_123, 11_655_123)],
)
def test_time_of_day(ts_ms: int, tod: int) -> None:
    assert time_of_day_ms(ts_ms) == tod


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(10**13), max_value=10**13), st.sampled_from([1, 7, 1_000, MIN, DAY_MS]))
def test_window_maths_agrees_with_calendar(ts_ms: int, window_ms: int) -> None:
    ws = window_start(ts_ms, window_ms)
    assert ws % window_ms == 0 and ws <= ts_ms < ws + window_ms
    dt = _EPOCH + timedelta(milliseconds=ts_ms)
    assert day_of_week(ts_ms) == dt.weekday()
    midnight = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    assert time_of_day_ms(ts_ms) == (dt - midnight) // timedelta(milliseconds=1)
