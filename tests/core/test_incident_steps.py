"""Which rows :func:`~spikedetect.core.incident_steps.step_incidents` steps in a window (the
stepping itself is held to the references by tests/test_golden.py and the replays' cmp)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect import kernel
from spikedetect.core import Detector, DetectorConfig
from spikedetect.core.detectors import SeasonalBaseline
from spikedetect.core.incident_steps import Stepped, rows_to_step, stepping_order
from spikedetect.core.incidents import TABLE, Action, Phase, Signal, Tracker
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.policy import ANOMALOUS, CALM, ELEVATED, EXTREME, IncidentPolicy
from spikedetect.sim.simulate import Simulation, SimulationConfig


def _window(n: int, signal: dict[int, int], done: set[int]) -> Any:
    sig = np.full(n, CALM, dtype=np.int8)
    for r, s in signal.items():
        sig[r] = s
    return SimpleNamespace(signal=sig, done=np.isin(np.arange(n), sorted(done)))


def test_the_tracked_rows_and_new_anomalies_are_stepped_once_ascending_but_not_the_done() -> None:
    ks = Keyspace(SeasonalBaseline(60_000))
    for key in ("US/CA/LA", "US/NY/NYC", "DE/BY"):
        ks.row("ig", key)
    n = ks.size
    trackers = {ks.keys[r]: Tracker(phase=Phase.OPEN, first_ws=0) for r in (6, 2, 4, 7)}
    w = _window(n, {2: ANOMALOUS, 3: EXTREME, 5: ELEVATED, 1: ANOMALOUS, 7: CALM}, done={4, 1})
    rows = rows_to_step(ks, trackers, w)
    assert rows.tolist() == [2, 3, 6, 7]  # tracked or anomalous, once each, not done; ascending
    assert rows_to_step(ks, {}, w).tolist() == [2, 3]
    assert rows_to_step(ks, {}, _window(n, {}, set())).tolist() == []
    assert w.signal.tolist().count(ANOMALOUS) == 2  # the window's signals are read, not changed


def test_the_rows_stepped_are_the_not_quiet_mask() -> None:
    out = Stepped(stepped=[3, 1])
    assert np.flatnonzero(out.not_quiet(5)).tolist() == [1, 3]
    assert not Stepped().not_quiet(4).any()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ig", "ab", "fb"]), st.sampled_from(
    ["US", "US/CA", "US/CA/LA", "US/NY", "DE", "DE/BY", "D", "D/E", "U", "US/C", "*"])), min_size=1, max_size=30),
       st.data())
def test_rows_are_stepped_parents_first_then_by_key(keys: list[tuple[str, str]], data: st.DataObject) -> None:
    ks = Keyspace(SeasonalBaseline(60_000))
    for svc, key in keys:
        ks.row(svc, key)
    rows = sorted(data.draw(st.sets(st.integers(0, ks.size - 1), min_size=1)))
    want = [r for _, _, r in sorted(zip(ks.depth[rows].tolist(), [ks.keys[r] for r in rows], rows, strict=True))]
    assert stepping_order(ks, np.array(rows, dtype=np.intp)) == want


def test_only_pairs_the_table_steps_accumulate() -> None:
    """``accumulates``: TABLE's pairs with a handler (not ignore or abandon); False for a pair
    TABLE does not hold (step raises for it, adding nothing)."""
    policy = IncidentPolicy(DetectorConfig())
    for phase in (Phase.PENDING, Phase.OPEN, Phase.COOLING):
        t = Tracker(phase=phase, first_ws=0)
        for signal in (CALM, ELEVATED, ANOMALOUS, EXTREME):
            assert policy.accumulates(t, signal) == (TABLE[(phase, Signal(signal))] not in (Action.IGNORE, Action.ABANDON))
        assert not policy.accumulates(t, 7) and not policy.accumulates(t, [1])  # type: ignore[arg-type]


@pytest.mark.skipif(kernel.closing is None, reason="the core runs without the compiled closing loops (not built, "
                    "or SPIKEDETECT_PURE=1): no frames, so breakdown_into always declines")
def test_breakdowns_added_into_trackers_step_as_the_views_did(monkeypatch: pytest.MonkeyPatch) -> None:
    """A simulated day with incidents, the trackers' breakdowns added straight into their sums
    (``breakdown_into``) and through their views (it declined): the same events, the same trackers."""
    lines = list(Simulation(SimulationConfig(seed=3, days=1, scenario="suite")).lines())
    runs, calls = [], []
    real = LeafWindow.breakdown_into
    for declined in (False, True):
        def into(self: LeafWindow, *args: Any, declined: bool = declined) -> Any:
            got = None if declined else real(self, *args)
            calls.append(got is not None)
            return got
        monkeypatch.setattr(LeafWindow, "breakdown_into", into)
        det = Detector(DetectorConfig())
        events = [e.to_json() for i in range(0, len(lines), 50_000) for e in det.feed_batch(lines[i:i + 50_000]).incidents]
        events += [e.to_json() for e in det.flush()]
        runs.append((events, repr(sorted(det.scorer.trackers.items()))))
    assert sum(calls) > 100 and runs[0][0] and runs[0] == runs[1]
