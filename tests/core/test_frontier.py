"""The robust event-time frontier (core/frontier.py): skewed clocks never make valid reports late.

Unit cases for the rule, its bound and the held reports, and two properties: the counter's
frontier is the reference rule, and injecting skewed reports (positions and amounts drawn by
Hypothesis) leaves every valid report counted exactly where it was, none late.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from typing import Any

import orjson
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import WindowCounter
from spikedetect.core.frontier import EVIDENCE_BLOCK, robust_frontier

BASE = 1_795_651_200_000  # 2026-11-26T00:00:00Z
MIN = 60_000
HOUR = 60 * MIN
CFG = DetectorConfig()  # 60 s windows, 2 windows of lateness, quorum 8


def rep(ts: int, i: int, region: str = "US/CA") -> bytes:
    return orjson.dumps({"ts": ts, "service": "ig", "region": region, "category": "login", "event_id": f"e{i}"})


def steady(n: int, step_ms: int = 500, start: int = BASE, jitter_ms: int = 0, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [start + i * step_ms - rng.randint(0, jitter_ms) for i in range(n)]


def run(values: list[bytes], cfg: DetectorConfig = CFG, batch: int = 50,
        fallback: list[int | None] | None = None) -> tuple[WindowCounter, Counter[tuple[int, Any]], dict[int, str]]:
    """Feed in batches, finish; (counter, counts per (window, leaf key), reason per rejected index)."""
    c = WindowCounter(cfg)
    counts: Counter[tuple[int, Any]] = Counter()
    reasons: dict[int, str] = {}
    for start in range(0, len(values), batch):
        fb = None if fallback is None else fallback[start:start + batch]
        res = c.feed_batch(values[start:start + batch], fb, origin=lambda i, s=start: s + i)
        reasons.update({start + i: why for i, why in res.rejects})
        for w in c.take_closed():
            for leaves in w.counts.values():
                for k, n in leaves.items():
                    counts[(w.ws_ms, k)] += n
    c.finish()
    for w in c.take_closed():
        for leaves in w.counts.values():
            for k, n in leaves.items():
                counts[(w.ws_ms, k)] += n
    reasons.update({origin: why for origin, _, why in c.take_dead()})
    return c, counts, reasons


# -- the rule ---------------------------------------------------------------------------------


def test_quorum_one_is_the_newest_event_time() -> None:
    c = WindowCounter(CFG.replace(watermark_quorum=1))
    c.feed_batch([rep(BASE + 5 * MIN, 0), rep(BASE, 1)])
    assert c.frontier_ms == BASE + 5 * MIN and c.watermark_ms == BASE + 3 * MIN


def test_frontier_waits_for_a_quorum() -> None:
    c = WindowCounter(CFG)
    c.feed_batch([rep(BASE + i * 1000, i) for i in range(7)])
    assert c.frontier_ms is None and c.watermark_ms is None  # 7 reports: no evidence yet
    c.feed_batch([rep(BASE + 7000, 7)])
    assert c.frontier_ms == BASE  # the 8th newest of the block
    c.feed_batch([rep(BASE + 8000, 8)])
    assert c.frontier_ms == BASE + 1000


def test_one_report_50_minutes_ahead_moves_nothing_and_is_ts_skewed() -> None:
    times = steady(600)
    clean = [rep(t, i) for i, t in enumerate(times)]
    skewed = [*clean[:300], rep(times[300] + 50 * MIN, 999), *clean[300:]]
    c0, want, reasons0 = run(clean)
    c1, got, reasons1 = run(skewed)
    assert reasons0 == {} and reasons1 == {300: "ts_skewed"}
    assert got == want
    assert c1.stats.as_dict() == {**c0.stats.as_dict(), "rejected": 1}


def test_a_bad_first_line_decides_nothing() -> None:
    times = steady(400)
    clean = [rep(t, i) for i, t in enumerate(times)]
    _, want, _ = run(clean)
    _, got, reasons = run([rep(BASE + 50 * MIN, 999), *clean])
    assert reasons == {0: "ts_skewed"} and got == want


def test_a_chain_of_skewed_reports_cannot_walk_event_time_forward() -> None:
    """Each skewed report is within max_future_skew_ms of the previous one: the old watermark
    walked forward by an hour per report; now none of them moves the frontier."""
    times = steady(1000)
    values = [rep(t, i) for i, t in enumerate(times)]
    for k in range(5):  # at 100, 300, 500, 700, 900: 50 min, 1 h 40, ... ahead
        values.insert(100 + 200 * k + k, rep(BASE + (k + 1) * 50 * MIN, 10_000 + k))
    c, _, reasons = run(values)
    # the first is held and never confirmed; the others are more than an hour ahead of the frontier
    assert [reasons[i] for i in sorted(reasons)] == ["ts_skewed"] + ["ts_too_far_future"] * 4
    assert c.stats.late == 0
    assert c.frontier_ms is not None and c.frontier_ms <= max(times)


def test_a_real_jump_in_event_time_is_confirmed_and_nothing_is_lost() -> None:
    before = steady(300)
    after = steady(300, start=BASE + 40 * MIN)  # the input resumes 37 minutes later
    values = [rep(t, i) for i, t in enumerate(before + after)]
    c, counts, reasons = run(values)
    assert reasons == {}
    assert sum(counts.values()) == 600
    assert c.frontier_ms is not None and c.frontier_ms > BASE + 40 * MIN


def test_ts_far_ahead_of_its_record_time_is_no_evidence() -> None:
    times = steady(200)
    values = [rep(t, i) for i, t in enumerate(times)]
    ahead = [rep(times[-1] + 30 * MIN + i, 500 + i) for i in range(10)]
    # ten reports agree on 30 min ahead, but their records were written "now": skewed by definition
    c, _, reasons = run(values + ahead, fallback=[*times, *[times[-1]] * 10])
    assert c.frontier_ms is not None and c.frontier_ms <= times[-1]
    assert set(reasons.values()) == {"ts_skewed"} and len(reasons) == 10
    # the same ten with record times that agree: a real jump, counted
    c, counts, reasons = run(values + ahead, fallback=[*times, *[times[-1] + 30 * MIN] * 10])
    assert reasons == {} and sum(counts.values()) == 210


def test_too_far_future_is_judged_from_the_frontier() -> None:
    c = WindowCounter(CFG)
    c.feed_batch([rep(t, i) for i, t in enumerate(steady(20))])
    front = c.frontier_ms
    assert front is not None
    res = c.feed_batch([rep(front + HOUR + 1, 100), rep(front + HOUR, 101)])
    assert res.rejects == [(0, "ts_too_far_future")]


def test_idle_advance_counts_a_held_report_before_its_window_closes() -> None:
    c = WindowCounter(CFG)
    c.feed_batch([rep(t, i) for i, t in enumerate(steady(20))])
    c.feed_batch([rep(BASE + 5 * MIN, 99)])  # 5 min ahead: held
    assert len(c.held) == 1
    c.advance_to(BASE + 10 * MIN)  # the idle timer: wall-clock time has passed
    assert len(c.held) == 0
    closed = {w.ws_ms: w.counts for w in c.take_closed()}
    assert closed[BASE + 5 * MIN] == {"ig": {("US/CA", "login", "unknown"): 1}}
    assert c.take_dead() == []


def test_settle_counts_a_continuing_tail_and_dead_letters_the_rest() -> None:
    c = WindowCounter(CFG)
    times = steady(40, step_ms=20_000)  # a slow source: 3 reports a minute, the frontier trails
    c.feed_batch([rep(t, i) for i, t in enumerate(times)])
    c.feed_batch([rep(times[-1] + 40 * MIN, 99)], origin=lambda i: "far")
    c.settle()
    assert [(o, why) for o, _, why in c.take_dead()] == [("far", "ts_skewed")]
    c.finish()
    assert sum(sum(n for leaves in w.counts.values() for n in leaves.values()) for w in c.take_closed()) == 40


def test_a_full_hold_buffer_dead_letters_the_furthest_ahead() -> None:
    c = WindowCounter(CFG)
    c.feed_batch([rep(t, i) for i, t in enumerate(steady(20))])
    c.held.limit = 2
    res = c.feed_batch([rep(BASE + 30 * MIN, 1), rep(BASE + 40 * MIN, 2), rep(BASE + 20 * MIN, 3),
                        rep(BASE + 50 * MIN, 4)], origin=lambda i: i)
    assert res.rejects == [(3, "ts_skewed")]  # nothing held is further ahead than the 4th
    assert [(o, why) for o, _, why in c.take_dead()] == [(1, "ts_skewed")]  # evicted for the 3rd
    assert sorted(h.ts_ms for h in c.held.items) == [BASE + 20 * MIN, BASE + 30 * MIN]
    assert c.stats.accepted + c.stats.rejected == 24


def test_state_round_trips_with_held_reports() -> None:
    a = WindowCounter(CFG)
    a.feed_batch([rep(t, i) for i, t in enumerate(steady(30))] + [rep(BASE + 20 * MIN, 99)])
    b = WindowCounter(CFG)
    b.restore(orjson.loads(orjson.dumps(a.snapshot())))
    more = [rep(t, 100 + i) for i, t in enumerate(steady(40, start=BASE + 15_000))]
    for c in (a, b):
        c.feed_batch(more)
        c.finish()
    assert a.take_closed() == b.take_closed()
    assert [why for _, _, why in a.take_dead()] == [why for _, _, why in b.take_dead()]
    ckpt = WindowCounter(CFG)
    ckpt.restore_checkpoint(a.checkpoint())
    assert ckpt.frontier_ms == a.frontier_ms and ckpt.watermark_ms == a.watermark_ms


def test_params_hash_is_unchanged_by_the_default_quorum() -> None:
    """The default quorum stays out of the hash, so outputs made before it existed keep theirs."""
    values = DetectorConfig().to_dict()
    for later in ("watermark_quorum", "sustained_sharp_ratio", "sustained_sharp_windows"):  # added since
        del values[later]
    before = hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
    assert DetectorConfig().params_hash == before
    assert DetectorConfig(watermark_quorum=1).params_hash != DetectorConfig().params_hash


# -- properties -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(BASE, BASE + HOUR), min_size=1, max_size=700), st.integers(1, 12))
def test_counter_frontier_is_the_reference_rule(times: list[int], quorum: int) -> None:
    c = WindowCounter(CFG.replace(watermark_quorum=quorum, lateness_ms=2 * HOUR))  # nothing late
    values = [orjson.dumps({"ts": t, "service": "s", "region": "US", "category": "x"}) for t in times]
    for start in range(0, len(values), 37):
        c.feed_batch(values[start:start + 37])
    assert c.frontier_ms == robust_frontier(times, quorum)


skews = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(1, HOUR)),  # (position per mille, amount ahead)
    min_size=1, max_size=24,
)


@settings(max_examples=100, deadline=None)
@given(skews, st.integers(2, 5), st.integers(0, 15_000), st.integers(1, 400), st.integers(0, 2**16))
# found by hypothesis: a first report an hour ahead kept the first quorum from forming (a quorum
# may not span more than max_future_skew_ms) until the first valid reports' deadlines had passed
@example(injected=[(0, 3586092)], rate_per_s=5, jitter_ms=13909, batch=1, seed=2)
def test_skewed_reports_never_make_valid_reports_late(
    injected: list[tuple[int, int]], rate_per_s: int, jitter_ms: int, batch: int, seed: int
) -> None:
    """Up to 24 reports ahead by up to an hour at any positions of a 1,500-report stream (fewer
    than the quorum in any block of 256): every valid report counted in its own window, none late;
    each skewed report counted in the window its ts names or dead-lettered as ts_skewed."""
    n = 1500
    times = steady(n, step_ms=1000 // rate_per_s, jitter_ms=jitter_ms, seed=seed)
    clean = [rep(t, i, region=f"US/R{i % 7}") for i, t in enumerate(times)]
    at = sorted((p * n // 10**6, amount) for p, amount in injected)
    for block in range(0, n + EVIDENCE_BLOCK, EVIDENCE_BLOCK // 2):  # the documented bound
        assume(sum(block <= p < block + EVIDENCE_BLOCK for p, _ in at) < CFG.watermark_quorum)
    values: list[bytes] = []
    skewed: dict[int, tuple[int, Any]] = {}  # index in values -> (window, leaf key)
    pos = 0
    for i, value in enumerate(clean):
        while pos < len(at) and at[pos][0] == i:
            ts = times[i] + jitter_ms + at[pos][1]  # ahead of the newest valid report so far
            skewed[len(values)] = (ts - ts % MIN, ("US/SKEW", "login", "unknown"))
            values.append(orjson.dumps({"ts": ts, "service": "ig", "region": "US/SKEW", "category": "login",
                                        "event_id": f"s{pos}"}))
            pos += 1
        values.append(value)
    _, want, reasons0 = run(clean, batch=batch)
    _, got, reasons = run(values, batch=batch)
    assert reasons0 == {}
    assert set(reasons) <= set(skewed)  # no valid report rejected (nor late)
    assert set(reasons.values()) <= {"ts_skewed", "ts_too_far_future"}
    counted = Counter(skewed[i] for i in skewed if i not in reasons)
    assert got == want + counted  # valid reports exactly where they were; skewed ones in their own window


def test_a_whole_source_ahead_only_moves_its_own_frontier() -> None:
    a, b = WindowCounter(CFG), WindowCounter(CFG)
    times = steady(600)
    for start in range(0, 600, 50):
        chunk = range(start, start + 50)
        ra = a.feed_batch([rep(times[i], i) for i in chunk])
        rb = b.feed_batch([rep(times[i] + 10 * MIN, i) for i in chunk])  # a producer 10 min ahead
        assert ra.rejects == [] and rb.rejects == []
    assert a.frontier_ms is not None and b.frontier_ms == a.frontier_ms + 10 * MIN


def test_a_dead_lettered_held_report_does_not_pin_the_resume_position() -> None:
    c = WindowCounter(CFG)
    c.feed_batch([rep(t, i) for i, t in enumerate(steady(20))], position=100)
    c.feed_batch([orjson.dumps({"ts": BASE + 30 * MIN, "service": "ig", "region": "US", "category": "x"})],
                 position=200)  # held, no event_id
    c.feed_batch([rep(t, 50 + i) for i, t in enumerate(steady(40, start=BASE + 10_000))], position=300)
    assert [why for _, _, why in c.take_dead()] == ["ts_skewed"]  # not confirmed in time
    c.advance_to(BASE + 40 * MIN)
    c.take_closed()
    assert c.resume_position() is None  # nothing open: the committed offset may move on


def test_reports_far_behind_the_first_frontier_are_late_not_counted_years_back() -> None:
    ancient = orjson.dumps({"ts": BASE - 400 * 86_400_000, "service": "ig", "region": "US", "category": "x"})
    c, counts, reasons = run([rep(BASE, 0), ancient, *[rep(t, 1 + i) for i, t in enumerate(steady(30))]])
    assert reasons == {1: "late"} and c.stats.late == 1
    assert min(ws for ws, _ in counts) == BASE
    # a source that never reaches the quorum: the median report stands in for the frontier
    c, counts, reasons = run([rep(BASE, 0), ancient, rep(BASE + 1000, 2), rep(BASE + 50 * MIN, 3)])
    assert reasons == {1: "late", 3: "ts_skewed"} and sum(counts.values()) == 2


def test_a_sparse_source_keeps_its_tail() -> None:
    """One report every 3-4 minutes: the frontier trails by ~25 minutes, and the last reports of the input
    can have no quorum after them; the end rule follows the source's own pace."""
    times = steady(300, step_ms=200_000, jitter_ms=20_000, seed=3)
    _, counts, reasons = run([rep(t, i) for i, t in enumerate(times)])
    assert reasons == {} and sum(counts.values()) == 300


def test_a_clock_hours_behind_gives_late_reports_and_changes_nothing_else() -> None:
    times = steady(600)
    clean = [rep(t, i) for i, t in enumerate(times)]
    _, want, _ = run(clean)
    behind = list(clean)
    for k, pos in enumerate((100, 250, 400, 550)):
        behind.insert(pos + k, rep(times[pos] - 3 * HOUR, 10_000 + k))
    c, got, reasons = run(behind)
    assert sorted(reasons.values()) == ["late"] * 4 and c.stats.late == 4
    assert got == want
