"""When evidence opens an incident at once (EXTREME) instead of after two windows in a row
(ANOMALOUS): the one-window rules and the long-horizon rule of core/policy.py, table-driven."""

from __future__ import annotations

import numpy as np
import pytest

from spikedetect.core.config import DetectorConfig
from spikedetect.core.policy import (
    ANOMALOUS,
    CALM,
    EXTREME,
    IncidentPolicy,
)

CFG = DetectorConfig()  # open 6, extreme 60, extreme_ratio 10, min_excess 8, sustained sharp 5x over 10


@pytest.mark.parametrize(("observed", "expected", "score", "want"), [
    (22.0, 0.5, 6.8, EXTREME),     # 44x, a clear score: one window is enough (PFE, 7 Apr 23:42)
    (22.0, 1.0, 6.0, EXTREME),     # 22x at the open threshold
    (22.0, 1.2, 9.0, ANOMALOUS),   # 18x: under twice extreme_ratio, needs 2 x open_threshold
    (22.0, 2.0, 12.0, EXTREME),    # 11x at twice the open threshold (the rule before)
    (22.0, 0.5, 5.9, CALM),        # 44x but under the open threshold (and over close: elevated)
    (9.0, 0.3, 7.0, EXTREME),      # 30x with min_excess reports over expectation
    (7.0, 0.2, 9.0, CALM),         # 35x, but fewer than min_excess reports over expectation
    (300.0, 100.0, 30.0, ANOMALOUS),  # a 3x burst on a busy key never opens alone
    (300.0, 100.0, 60.0, EXTREME),    # ... unless its score is extreme
])
def test_one_window_opens_alone_only_beyond_doubt(observed: float, expected: float, score: float,
                                                   want: int) -> None:
    sig = IncidentPolicy(CFG).signals(np.array([observed]), np.array([expected]), np.array([score]))
    got = int(sig[0])
    if want == CALM:
        assert got < ANOMALOUS
    else:
        assert got == want


def _horizons(row: int, h_score: float, h_excess: float, h_ratio: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Evidence for one key (row 0) on the horizon row ``row`` (0: 3 windows, 1: 10, 2: 30);
    the other horizons quiet."""
    shape = (3, 1)
    score, excess, ratio = np.zeros(shape), np.zeros(shape), np.ones(shape)
    score[row], excess[row], ratio[row] = h_score, h_excess, h_ratio
    return np.array([0]), score, excess, ratio, np.full(shape, 2.0)


@pytest.mark.parametrize(("row", "ratio", "want"), [
    (1, 20.0, EXTREME),                 # a small city at 20x its night level over 10 windows
    (1, CFG.sustained_sharp_ratio, EXTREME),
    (1, 4.9, ANOMALOUS),                # under sustained_sharp_ratio
    (2, 6.0, EXTREME),                  # over 30 windows
    (1, 3.0, ANOMALOUS),                # a level shift at 2-3x: two windows in a row, as before
    (0, 20.0, ANOMALOUS),               # 3 windows are not long enough to stand alone
])
def test_long_sustained_evidence_opens_at_once(row: int, ratio: float, want: int) -> None:
    assert CFG.sustained_sharp_windows == 10
    one = np.array([1.0])
    sig = IncidentPolicy(CFG).signals(one, np.array([0.5]), np.array([1.0]),
                                      horizons=_horizons(row, 8.0, 12.0, ratio))
    assert int(sig[0]) == want


def test_an_open_incident_is_not_reopened_by_the_long_rule() -> None:
    tracked = np.array([True])
    sig = IncidentPolicy(CFG).signals(np.array([1.0]), np.array([0.5]), np.array([1.0]),
                                      horizons=_horizons(1, 8.0, 12.0, 20.0), tracked=tracked)
    assert int(sig[0]) < ANOMALOUS


@pytest.mark.parametrize(("changes", "row", "ratio", "want"), [
    ({"sustained_sharp_ratio": 25.0}, 1, 20.0, ANOMALOUS),  # the ratio is the config's
    ({"sustained_sharp_ratio": 2.5}, 1, 3.0, EXTREME),
    ({"sustained_sharp_windows": 30}, 1, 20.0, ANOMALOUS),  # 10 windows are no longer long enough
    ({"sustained_sharp_windows": 30}, 2, 20.0, EXTREME),
    ({"sustained_sharp_windows": 3}, 0, 20.0, EXTREME),
    ({"sustained_sharp_windows": 31}, 2, 20.0, ANOMALOUS),  # beyond the longest horizon: off
])
def test_the_long_rule_follows_the_config(changes: dict[str, float], row: int, ratio: float, want: int) -> None:
    cfg = CFG.replace(**changes)
    sig = IncidentPolicy(cfg).signals(np.array([1.0]), np.array([0.5]), np.array([1.0]),
                                      horizons=_horizons(row, 8.0, 12.0, ratio))
    assert int(sig[0]) == want


def test_a_changed_long_rule_is_a_different_detector() -> None:
    """A changed setting enters params_hash (the default stays out of it: test_frontier's
    hash test and the goldens' incident ids check that)."""
    assert DetectorConfig.from_mapping({"sustained_sharp_ratio": "5.5"}).params_hash != CFG.params_hash
    assert CFG.replace(sustained_sharp_windows=30).params_hash != CFG.params_hash
