"""A level-shift rebase of the ``weekly`` baseline is on probation: a burst that closed as a
level shift and then died away has its rebase undone; a real shift keeps it."""

from __future__ import annotations

import numpy as np

from spikedetect.core.detectors.weekly import WeeklyBaseline
from spikedetect.core.windows import DAY_MS

W = 300_000  # five-minute windows, like the tweet series


def _after_rebase(ratio: float, level_after: float) -> float:
    """Five days at 50 a window, a rebase by ``ratio``, then a day at ``level_after``: the
    daily model's expectation at the end."""
    b = WeeklyBaseline(W)
    rows = np.array([b.add_row()])
    ws = 0
    for ws in range(0, 5 * DAY_MS, W):
        b.learn(rows, ws, np.array([50.0]), b.expect(rows, ws), np.array([np.nan]))
    b.rebase(rows, np.array([ratio]))
    for ws in range(5 * DAY_MS, 6 * DAY_MS, W):
        b.learn(rows, ws, np.array([level_after]), b.expect(rows, ws), np.array([np.nan]))
    return float(b.expect(rows, ws + W).aux["daily_mean"][0])


def test_a_burst_that_returns_has_its_rebase_undone() -> None:
    assert 45.0 < _after_rebase(4.0, 50.0) < 56.0


def test_a_real_shift_keeps_its_rebase() -> None:
    assert 180.0 < _after_rebase(4.0, 200.0) < 220.0
    assert 90.0 < _after_rebase(2.0, 100.0) < 110.0
