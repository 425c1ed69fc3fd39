"""The scorer: closing windows across sources, partial and watermark semantics, scoring every
known key, score before learn, no learning from anomalies, retirement and per-key state."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import orjson
import pytest

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import ClosedWindow
from spikedetect.core.errors import StateError
from spikedetect.core.evidence import EVIDENCE_COLUMNS
from spikedetect.core.incidents import IncidentEvent, Tracker
from spikedetect.core.regions import depth, parent_key
from spikedetect.core.scorer import ClosedKeys, LatePartial, Scorer
from spikedetect.core.state import export_key, import_key
from spikedetect.core.timefmt import parse_ts_ms

W = 60_000
T0 = 1_795_651_200_000  # 2026-11-26T00:00:00Z
CFG = DetectorConfig(window_ms=W)


def cw(ws: int, regions: dict[str, float], service: str = "ig") -> ClosedWindow:
    return ClosedWindow(ws, {service: {(r, "login", "app"): n for r, n in regions.items()}})


class Recorder:
    """Collects what the scorer reports per closed window."""

    def __init__(self, scorer: Scorer) -> None:
        self.windows: dict[int, ClosedKeys] = {}
        scorer.on_window = self.hook

    def hook(self, ws: int, ck: ClosedKeys) -> None:
        assert ws not in self.windows, "a window closed twice"
        self.windows[ws] = ck

    def observed(self, ws: int) -> dict[tuple[str, str], float]:
        ck = self.windows[ws]
        return dict(zip(ck.keys, ck.observed.tolist(), strict=True))


def check_keyspace(scorer: Scorer) -> None:
    """Every row's parent pointer and depth match its key; baseline and keyspace agree in size."""
    ks = scorer.keyspace
    assert ks.baseline.size == ks.size == len(ks.index)
    for row, (svc, key) in enumerate(ks.keys):
        assert ks.index[(svc, key)] == row
        up = parent_key(key)
        assert ks.parent[row] == (-1 if up is None else ks.index[(svc, up)]), (svc, key)
        assert ks.depth[row] == depth(key)


def step(scorer: Scorer, source: Any, ws: int, regions: dict[str, float] | None) -> list[IncidentEvent]:
    """One source delivers a window (or nothing) and moves its watermark past it."""
    if regions is not None:
        scorer.add_partial(source, cw(ws, regions))
    scorer.set_watermark(source, ws + scorer.window_ms)
    return scorer.close_ready()


# -- closing across sources ---------------------------------------------------------------------------


def test_window_closes_only_when_every_source_passed_it() -> None:
    s = Scorer(CFG, sources=("a", "b"))
    rec = Recorder(s)
    s.add_partial("a", cw(T0, {"US": 3}))
    s.set_watermark("a", T0 + 5 * W)
    assert s.close_ready() == [] and rec.windows == {}
    s.add_partial("b", cw(T0, {"US": 2, "GB": 1}))
    s.set_watermark("b", T0 + W - 1)  # one millisecond short of the window's end
    s.close_ready()
    assert rec.windows == {}
    s.set_watermark("b", T0 + 3 * W)
    s.close_ready()
    assert sorted(rec.windows) == [T0, T0 + W, T0 + 2 * W]  # min(a, b) = T0 + 3W closes three
    assert rec.observed(T0) == {("ig", "*"): 6, ("ig", "US"): 5, ("ig", "GB"): 1}
    assert rec.observed(T0 + W) == {("ig", "*"): 0, ("ig", "US"): 0, ("ig", "GB"): 0}
    assert s.next_ws == T0 + 3 * W and s.stats.windows_closed == 3


def test_the_first_window_waits_for_older_windows_other_sources_still_hold() -> None:
    """Live, an owner's first partial was source 1's for T0 + 3W while the watermark stood
    before T0 + W: the first window was taken to be T0 + 3W at once, and source 2's T0 and
    source 3's T0 + W partials, which came later, were late. The first window is fixed only
    once it can close."""
    s = Scorer(CFG, sources=("a", "b"))
    rec = Recorder(s)
    s.set_watermark("a", T0 + W // 2)
    s.set_watermark("b", T0 + W // 2)
    s.add_partial("a", cw(T0 + 3 * W, {"US": 1}))
    assert s.close_ready() == [] and s.next_ws is None
    s.add_partial("b", cw(T0, {"US": 2}))  # an older window, still open: not late
    s.set_watermark("a", T0 + 4 * W)
    s.set_watermark("b", T0 + 4 * W)
    s.close_ready()
    assert s.stats.late_partials == 0 and s.late == []
    assert rec.observed(T0)[("ig", "US")] == 2 and rec.observed(T0 + 3 * W)[("ig", "US")] == 1


def test_source_order_does_not_matter() -> None:
    got = []
    for order in (("a", "b"), ("b", "a")):
        s = Scorer(CFG, sources=("a", "b"))
        rec = Recorder(s)
        parts = {"a": {"US/CA": 0.1, "US": 0.2}, "b": {"US/CA": 0.7, "GB": 3}}  # float sums: order-sensitive
        for src in order:
            s.add_partial(src, cw(T0, parts[src]))
            s.set_watermark(src, T0 + W)
        s.close_ready()
        got.append(rec.observed(T0))
    assert got[0] == got[1]


def test_redelivered_partial_changes_nothing() -> None:
    results = []
    for copies in (1, 3):
        s = Scorer(CFG, sources=("a", "b"))
        rec = Recorder(s)
        for _ in range(copies):
            s.add_partial("a", cw(T0, {"US": 3}))
            s.set_watermark("a", T0 + W)
        s.add_partial("b", cw(T0, {"US": 4}))
        s.set_watermark("b", T0 + W)
        s.close_ready()
        results.append(rec.observed(T0))
    assert results[0] == results[1] == {("ig", "*"): 7, ("ig", "US"): 7}


def test_a_newer_copy_of_a_partial_replaces_the_older() -> None:
    s = Scorer(CFG)
    rec = Recorder(s)
    assert s.add_partial(0, cw(T0, {"US": 3})) == "kept"
    assert s.add_partial(0, cw(T0, {"US": 5})) == "kept"  # its window is open: the copy is kept
    assert s.add_partial(0, cw(T0, {"GB": 2}), part=1) == "kept"  # another piece of the same window adds up
    step(s, 0, T0, None)
    assert rec.observed(T0) == {("ig", "*"): 7, ("ig", "US"): 5, ("ig", "GB"): 2}


def test_a_partial_is_copied_unless_owned_and_a_callers_later_change_never_reaches_it() -> None:
    """add_partial keeps a copy: the caller may change its dicts afterwards (an owner reuses
    decoded ones); ``owned=True`` (a counter's own closed windows) keeps them as they are."""
    for owned in (False, True):
        s = Scorer(CFG)
        rec = Recorder(s)
        window = cw(T0, {"US": 3, "GB": 1})
        assert s.add_partial(0, window, owned=owned) == "kept"
        kept = s.pending[T0].by_source[(0, 0)]
        assert (kept is window.counts) == owned and (kept["ig"] is window.counts["ig"]) == owned
        if not owned:  # the caller still holds its dicts: what it does to them later stays its own
            window.counts["ig"][("US", "login", "app")] = 40
            window.counts["ig"][("FR", "login", "app")] = 9
            window.counts["wa"] = {("US", "login", "app"): 5}
        step(s, 0, T0, None)
        assert rec.observed(T0) == {("ig", "*"): 4, ("ig", "US"): 3, ("ig", "GB"): 1}


def test_watermark_never_moves_back() -> None:
    s = Scorer(CFG, sources=("a",))
    s.set_watermark("a", T0 + 10 * W)
    s.set_watermark("a", T0 + 5 * W)
    s.set_watermark("a", None)
    assert s.watermarks["a"] == T0 + 10 * W
    assert s.closing_watermark() == T0 + 10 * W


def test_partial_for_closed_window_is_replayed_or_late_never_merged() -> None:
    s = Scorer(CFG, sources=("a", "b"))
    rec = Recorder(s)
    s.set_watermark("b", None, empty=True)  # b has no data: it does not hold windows open
    step(s, "a", T0, {"US": 3})
    step(s, "a", T0 + W, {"US": 3})
    assert sorted(rec.windows) == [T0, T0 + W]
    # a re-delivery from a, whose watermark passed the window: replayed, nothing else happens
    assert s.add_partial("a", cw(T0, {"US": 99})) == "replayed"
    assert s.stats.replayed_partials == 1 and s.late == [] and s.stats.late_partials == 0
    # b's watermark never passed it: reported as late with its report count, not merged
    assert s.add_partial("b", cw(T0, {"US": 4, "GB": 1})) == "late"
    assert s.late == [LatePartial("b", T0, 5.0)]
    assert (s.stats.late_partials, s.stats.late_partial_reports) == (1, 5.0)
    assert T0 not in s.pending
    assert s.add_partial("b", cw(T0 + 2 * W, {"US": 1})) == "kept"  # an open window: b's counts merge
    assert (s.stats.replayed_partials, s.stats.late_partials) == (1, 1)
    step(s, "a", T0 + 2 * W, {"US": 3})
    assert rec.observed(T0 + 2 * W)[("ig", "US")] == 4  # nothing else leaked into a later window
    assert rec.observed(T0)[("ig", "US")] == 3


def test_idle_source_stops_gating_until_it_is_active_again() -> None:
    s = Scorer(CFG, sources=("a", "b"))
    rec = Recorder(s)
    step(s, "a", T0, {"US": 1})
    assert rec.windows == {}  # b has said nothing yet: it holds the window
    s.set_watermark("b", None, idle=True)
    s.close_ready()
    assert sorted(rec.windows) == [T0]
    s.set_watermark("b", T0 + W)  # b active again: it gates once more
    step(s, "a", T0 + 3 * W, {"US": 1})
    assert sorted(rec.windows) == [T0]
    s.set_watermark("b", T0 + 4 * W)
    s.close_ready()
    assert sorted(rec.windows) == [T0, T0 + W, T0 + 2 * W, T0 + 3 * W]


def test_when_all_sources_are_idle_the_most_advanced_closes() -> None:
    s = Scorer(CFG, sources=("a", "b"))
    rec = Recorder(s)
    s.add_partial("a", cw(T0, {"US": 1}))
    s.set_watermark("a", T0 + 2 * W, idle=True)
    s.set_watermark("b", T0 + 4 * W, idle=True)
    assert s.closing_watermark() == T0 + 4 * W
    s.close_ready()
    assert sorted(rec.windows) == [T0, T0 + W, T0 + 2 * W, T0 + 3 * W]


# -- scoring every known key -----------------------------------------------------------------------------


def test_zero_report_windows_are_scored_for_every_known_key() -> None:
    s = Scorer(CFG)
    rec = Recorder(s)
    step(s, 0, T0, {"US/CA/Los Angeles": 5})
    s.add_partial(0, cw(T0, {"GB": 2}, service="fb"))  # too late for T0: it is closed
    step(s, 0, T0 + W, {"FR": 1})
    step(s, 0, T0 + 2 * W, None)  # a window with no reports at all
    assert rec.observed(T0) == {
        ("ig", "*"): 5,
        ("ig", "US"): 5,
        ("ig", "US/CA"): 5,
        ("ig", "US/CA/Los Angeles"): 5,
    }
    assert rec.observed(T0 + W) == {
        ("ig", "*"): 1,
        ("ig", "US"): 0,
        ("ig", "US/CA"): 0,
        ("ig", "US/CA/Los Angeles"): 0,
        ("ig", "FR"): 1,
    }
    assert set(rec.observed(T0 + 2 * W).values()) == {0.0} and len(rec.observed(T0 + 2 * W)) == 5
    ck = rec.windows[T0 + 2 * W]
    assert np.isfinite(ck.expected).all() and (ck.score == 0).all()


def test_parent_keys_are_created_with_children() -> None:
    s = Scorer(CFG)
    step(s, 0, T0, {"US/CA/Los Angeles/Venice": 1})
    assert set(s.keyspace.index) == {
        ("ig", "*"),
        ("ig", "US"),
        ("ig", "US/CA"),
        ("ig", "US/CA/Los Angeles"),
        ("ig", "US/CA/Los Angeles/Venice"),
    }
    check_keyspace(s)


def test_score_before_learn() -> None:
    s = Scorer(CFG)
    rec = Recorder(s)
    rng = np.random.default_rng(1)
    for i in range(120):
        ws = T0 + i * W
        twin = copy.deepcopy(s)  # the state before this window
        step(s, 0, ws, {"US/CA": float(rng.poisson(6)), "GB": float(rng.poisson(3))})
        if i == 0:
            continue  # keys are created by their first window
        rows = np.arange(twin.keyspace.size)
        exp = twin.keyspace.baseline.expect(rows, ws)
        twin._parent_prior(exp)
        ck = rec.windows[ws]
        assert ck.keys[: len(rows)] == twin.keyspace.keys
        np.testing.assert_array_equal(ck.expected[: len(rows)], exp.mean)
    # the very first window was scored against a cold model, not against itself
    first = rec.windows[T0]
    assert (first.expected == s.keyspace.baseline.floor_mean).all() and first.observed.max() > 1


def _model(s: Scorer, key: tuple[str, str]) -> bytes:
    """A key's baseline model state, without the evidence ring and score calibration (which
    record every window by design)."""
    state = export_key(s, key)["b"]
    return orjson.dumps({k: v for k, v in state.items() if k not in EVIDENCE_COLUMNS})


def test_anomalous_windows_do_not_teach_the_baseline() -> None:
    s = Scorer(CFG)
    for i in range(200):
        step(s, 0, T0 + i * W, {"US": 5, "GB": 5})
    keys = [("ig", "US"), ("ig", "GB"), ("ig", "*")]
    before = {k: _model(s, k) for k in keys}
    events = step(s, 0, T0 + 200 * W, {"US": 500, "GB": 5})
    assert {e.region for e in events if e.type == "opened"} == {"US", "*"}
    after = {k: _model(s, k) for k in keys}
    assert after[("ig", "US")] == before[("ig", "US")]
    assert after[("ig", "*")] == before[("ig", "*")]
    assert after[("ig", "GB")] != before[("ig", "GB")]  # the quiet key did learn
    # nor do the windows of the open incident, even calm ones
    step(s, 0, T0 + 201 * W, {"US": 5, "GB": 5})
    assert _model(s, ("ig", "US")) == before[("ig", "US")]


def test_calibration_does_not_learn_from_open_incidents() -> None:
    s = Scorer(CFG)
    for i in range(200):
        step(s, 0, T0 + i * W, {"US": 5, "GB": 5})
    step(s, 0, T0 + 200 * W, {"US": 500, "GB": 5})
    row = s.keyspace.index[("ig", "US")]
    cal = s.keyspace.baseline.cols["cal_q"][row].copy()
    for i in range(201, 204):
        step(s, 0, T0 + i * W, {"US": 500, "GB": 5})
    assert s.open_incidents() and (s.keyspace.baseline.cols["cal_q"][row] == cal).all()


# -- retirement ---------------------------------------------------------------------------------------------

HOUR = 3_600_000
HCFG = DetectorConfig(window_ms=HOUR, retire_after_ms=2 * HOUR, close_windows=10)  # retire check every window


def test_quiet_keys_are_retired() -> None:
    s = Scorer(HCFG)
    for i in range(2):
        step(s, 0, i * HOUR, {"US": 5, "GB": 5})
    for i in range(2, 4):
        step(s, 0, i * HOUR, {"US": 5})
        assert ("ig", "GB") in s.keyspace.index
    # GB last reported in window 1h; at window 4h its last report is older than 4h - 2h
    step(s, 0, 4 * HOUR, {"US": 5})
    assert ("ig", "GB") not in s.keyspace.index
    assert s.retired == [("ig", "GB")] and s.stats.keys_retired == 1
    assert set(s.keyspace.index) == {("ig", "*"), ("ig", "US")}
    check_keyspace(s)


def test_keys_with_an_incident_are_not_retired() -> None:
    s = Scorer(HCFG)
    events = []
    for i in range(-12, 1):  # GB needs a baseline of its own before it can open an incident
        events += step(s, 0, i * HOUR, {"US": 5, "GB": 5})
    events += step(s, 0, HOUR, {"US": 5, "GB": 500})
    assert {e.region for e in events if e.type == "opened"} >= {"GB"}
    closed_at = None
    for i in range(2, 14):
        evs = step(s, 0, i * HOUR, {"US": 5})
        if any(e.region == "GB" and e.type == "closed" for e in evs):
            closed_at = i
            break
        assert ("ig", "GB") in s.keyspace.index, f"retired at window {i} with an incident open"
    # ten calm windows (2h..11h) close it; the same window's retirement check then drops the key
    assert closed_at == 11
    assert ("ig", "GB") not in s.keyspace.index
    check_keyspace(s)


def test_ancestors_of_kept_keys_are_never_retired() -> None:
    s = Scorer(HCFG.replace(close_windows=50))
    cold = Scorer(HCFG)
    row = cold.keyspace.row("ig", "US/CA/Los Angeles")
    tracker = Tracker(
        phase="cooling",
        first_ws=9 * HOUR,
        state="open",
        incident_id="inc-la",
        seq=1,
        last_emit_ws=9 * HOUR,
        last_active_end=10 * HOUR,
        peak_count=300.0,
        total=300.0,
    )
    # a key imported alone (its ancestors are created empty, never seen) with an open incident
    import_key(
        s,
        ("ig", "US/CA/Los Angeles"),
        {"b": cold.keyspace.baseline.export_row(row), "t": tracker.to_dict(), "seen": 9 * HOUR},
    )
    for i in range(10, 18):  # from window 12h on, Los Angeles and its ancestors are all stale
        step(s, 0, i * HOUR, {"GB": 5})
        check_keyspace(s)
        assert ("ig", "US/CA/Los Angeles") in s.trackers
        assert ("ig", "US/CA") in s.keyspace.index and ("ig", "US") in s.keyspace.index
    assert s.stats.keys_retired == 0


# -- per-key state -----------------------------------------------------------------------------------------


def test_export_import_key_round_trip() -> None:
    s = Scorer(CFG)
    rng = np.random.default_rng(5)
    for i in range(150):
        step(s, 0, T0 + i * W, {"US/CA": float(rng.poisson(4)), "US/NY": float(rng.poisson(2))})
    step(s, 0, T0 + 150 * W, {"US/CA": 400.0})
    assert s.trackers  # an incident is open: the records carry trackers too
    records = {sk: orjson.loads(orjson.dumps(export_key(s, sk))) for sk in s.keyspace.keys}
    t = Scorer(CFG)
    for sk in reversed(list(records)):  # any order: ancestors are created on the way
        import_key(t, sk, records[sk])
    check_keyspace(t)
    assert {sk: orjson.loads(orjson.dumps(export_key(t, sk))) for sk in t.keyspace.keys} == records
    assert t.trackers.keys() == s.trackers.keys()
    # and both score the next windows identically
    ra, rb = Recorder(s), Recorder(t)
    t.next_ws = s.next_ws
    for i in range(151, 160):
        ea = step(s, 0, T0 + i * W, {"US/CA": 4.0})
        eb = step(t, 0, T0 + i * W, {"US/CA": 4.0})
        assert [e.to_json() for e in ea] == [e.to_json() for e in eb]
        oa = dict(zip(ra.windows[T0 + i * W].keys, ra.windows[T0 + i * W].expected.tolist(), strict=True))
        ob = dict(zip(rb.windows[T0 + i * W].keys, rb.windows[T0 + i * W].expected.tolist(), strict=True))
        assert oa == ob


@pytest.mark.parametrize(
    "mangle",
    [
        lambda r: {k: v for k, v in r.items() if k != "b"},
        lambda r: {k: v for k, v in r.items() if k != "seen"},
        lambda r: {**r, "seen": "yesterday"},
        lambda r: {**r, "t": {"phase": "open", "no_such_field": 1}},
        lambda r: {**r, "b": {**r["b"], "phi": float("nan")}},
    ],
    ids=["no-baseline", "no-seen", "bad-seen", "bad-tracker", "nan-state"],
)
def test_import_key_rejects_malformed_records(mangle: Any) -> None:
    s = Scorer(CFG)
    step(s, 0, T0, {"US": 3})
    record = orjson.loads(orjson.dumps(export_key(s, ("ig", "US"))))
    with pytest.raises(StateError):
        import_key(Scorer(CFG), ("ig", "US"), mangle(record))


# -- cold keys, relearning and partial trust -----------------------------------------------------------


def test_a_key_without_history_cannot_open_an_incident_and_learns_instead() -> None:
    s = Scorer(CFG)
    for i in range(30):  # "US" has a baseline of its own by now
        step(s, 0, i * W, {"US": 5})
    events = step(s, 0, 30 * W, {"US": 5, "GB": 400}) + step(s, 0, 31 * W, {"US": 5, "GB": 400})
    assert not [e for e in events if e.region == "GB"], "a brand-new key opened an incident"
    row = s.keyspace.index[("ig", "GB")]
    assert s.keyspace.baseline.cols["level"][row] == pytest.approx(400.0)  # its first windows taught it
    # the same jump on a key with history does open
    events = step(s, 0, 32 * W, {"US": 400}) + step(s, 0, 33 * W, {"US": 400})
    assert [e.type for e in events if e.region == "US"] == ["opened"]


def test_after_max_duration_the_key_relearns_before_it_can_open_again() -> None:
    cfg = CFG.replace(max_incident_ms=10 * W, relearn_ms=20 * W)
    s = Scorer(cfg)
    for i in range(30):
        step(s, 0, i * W, {"US": 5})
    events = []
    for i in range(30, 80):  # a lasting level shift, not an outage
        events += step(s, 0, i * W, {"US": 200})
    us = [e for e in events if e.region == "US"]
    closes = [e for e in us if e.type == "closed"]
    assert closes and closes[0].close_reason == "max_duration"
    first_close_ws = parse_ts_ms(closes[0].detected_at) - W
    reopened = [e for e in us if e.type == "opened" and parse_ts_ms(e.detected_at) > first_close_ws + W]
    # muted for relearn_ms: no new incident within 20 windows of the forced close
    assert all(parse_ts_ms(e.detected_at) - W >= first_close_ws + 20 * W for e in reopened)
    row = s.keyspace.index[("ig", "US")]
    assert s.keyspace.baseline.cols["level"][row] > 150, "the muted windows taught the new level"


def test_elevated_windows_teach_only_a_little() -> None:
    def after(value: float) -> tuple[float, float]:
        s = Scorer(CFG)
        rec = Recorder(s)
        for i in range(40):
            step(s, 0, i * W, {"US": 20})
        step(s, 0, 40 * W, {"US": value})
        ck = rec.windows[40 * W]
        score = float(ck.score[ck.keys.index(("ig", "US"))])
        return float(s.keyspace.baseline.cols["level"][s.keyspace.index[("ig", "US")]]), score

    base, _ = after(20)
    calm_level, calm_score = after(24)
    high_level, high_score = after(64)
    assert calm_score < CFG.close_threshold <= high_score < CFG.open_threshold  # calm, then elevated
    calm, elevated = calm_level - base, high_level - base
    full = (64 - 20) / (24 - 20) * calm  # what the elevated window would have taught at full weight
    assert elevated == pytest.approx(CFG.elevated_learn_weight * full, rel=0.05)
