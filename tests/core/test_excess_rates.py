"""``window_scores.excess_rates``: the excess per window of each open, sharp incident, at the
position of its row in ``rows`` (any order), 0 for the rest."""

from __future__ import annotations

import numpy as np

from spikedetect.core.detectors import SeasonalBaseline
from spikedetect.core.incidents import Phase, Tracker
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.window_scores import excess_rates, tracked_rows

WINDOW_MS = 60_000


def test_excess_rates_at_each_rows_position() -> None:
    ks = Keyspace(SeasonalBaseline(WINDOW_MS))
    ca, ny, tx = ks.row("ig", "US/CA"), ks.row("ig", "US/NY"), ks.row("ig", "US/TX")
    top = ks.index[("ig", "*")]
    trackers = {
        ("ig", "US/CA"): Tracker(Phase.OPEN, first_ws=0, state="open", total=60.0, expected_total=10.0),  # sharp
        ("ig", "US/NY"): Tracker(Phase.OPEN, first_ws=0, state="open", total=12.0, expected_total=10.0),  # mild
        ("ig", "US/TX"): Tracker(Phase.PENDING, first_ws=0, total=90.0, expected_total=1.0),  # not open
    }
    tracked = tracked_rows(ks, trackers)
    assert np.flatnonzero(tracked).tolist() == sorted([ca, ny])
    rows = np.array([tx, top, ny, ca], dtype=np.intp)  # not in row order
    rate = excess_rates(ks, trackers, rows, tracked, 5 * WINDOW_MS, WINDOW_MS)
    assert rate.tolist() == [0.0, 0.0, 0.0, (60.0 - 10.0) / 5]
    assert excess_rates(ks, trackers, rows[::-1].copy(), tracked, 5 * WINDOW_MS, WINDOW_MS).tolist() == [
        (60.0 - 10.0) / 5, 0.0, 0.0, 0.0]
    assert not excess_rates(ks, {}, rows, np.zeros(ks.size, dtype=bool), 0, WINDOW_MS).any()
