"""WindowCounter: lateness, deduplication, key limits, future skew, closing, state - and two
properties: every input is accounted for exactly once, and window counts equal a brute-force
recount over the events a simple model of lateness and deduplication accepts.

These tests pin the counting mechanics with the plain watermark (``watermark_quorum=1``: the
newest event time minus the lateness); the robust frontier is tested in test_frontier.py."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import WindowCounter
from spikedetect.core.detector import Detector
from spikedetect.core.expand import totals
from spikedetect.core.scorer import ClosedKeys

BASE = 1_795_651_200_000  # 2026-11-26T00:00:00Z, a multiple of every window used here
MIN = 60_000


def report(
    ts: int | str | None,
    region: str = "US/CA",
    *,
    service: str = "ig",
    category: str = "login",
    source: str | None = "app",
    event_id: Any = None,
) -> bytes:
    obj: dict[str, Any] = {"service": service, "region": region, "category": category}
    if ts is not None:
        obj["ts"] = ts
    if source is not None:
        obj["source"] = source
    if event_id is not None:
        obj["event_id"] = event_id
    return orjson.dumps(obj)


def reasons(res: Any) -> list[str | None]:
    """Per input of a one-or-more message batch: None (counted) or the reject reason."""
    return [dict(res.rejects).get(i) for i in range(res.accepted + res.duplicates + len(res.rejects))]


# -- lateness -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_offset_ms", "late"),
    [
        # newest event at BASE + 600000, lateness 120000 -> watermark BASE + 480000
        (419_999, True),  # window [360000, 420000): closed long ago
        (420_000, True),  # window [420000, 480000): its end equals the watermark -> closed
        (479_999, True),
        (480_000, False),  # window [480000, 540000) is still open
        (599_999, False),
        (600_001, False),
    ],
)
def test_late_is_judged_by_window_end_against_watermark(event_offset_ms: int, late: bool) -> None:
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=2 * MIN))
    assert c.feed_batch([report(BASE + 600_000)]).accepted == 1
    assert c.watermark_ms == BASE + 480_000
    res = c.feed_batch([report(BASE + event_offset_ms)])
    assert res.rejects == ([(0, "late")] if late else [])
    assert c.stats.late == int(late)
    assert c.stats.rejected == 0  # late is counted apart from invalid input


def test_late_with_zero_lateness() -> None:
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=0))
    c.feed_batch([report(BASE + MIN)])  # watermark BASE + MIN closes the window [BASE, BASE + MIN)
    assert c.feed_batch([report(BASE + MIN - 1)]).rejects == [(0, "late")]
    assert c.feed_batch([report(BASE + MIN)]).accepted == 1


def test_replaying_skips_late_silently() -> None:
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=0))
    c.feed_batch([report(BASE + 5 * MIN)])
    res = c.feed_batch([report(BASE), report(BASE + 5 * MIN)], replaying=True)
    assert res.rejects == [] and res.accepted == 1
    assert c.stats.late == 0 and c.stats.accepted == 2


def test_advance_to_moves_watermark_without_events_and_never_back() -> None:
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=2 * MIN))
    assert c.watermark_ms is None
    c.advance_to(BASE + 10 * MIN)
    assert c.watermark_ms == BASE + 10 * MIN
    c.advance_to(BASE + 3 * MIN)  # never back
    assert c.watermark_ms == BASE + 10 * MIN
    assert c.feed_batch([report(BASE + 9 * MIN)]).rejects == [(0, "late")]
    assert c.feed_batch([report(BASE + 10 * MIN)]).accepted == 1
    # events move it further than the floor once max_ts - lateness passes it
    c.feed_batch([report(BASE + 20 * MIN)])
    assert c.watermark_ms == BASE + 18 * MIN


def test_late_event_does_not_move_watermark() -> None:
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=0))
    c.feed_batch([report(BASE + 5 * MIN)])
    c.feed_batch([report(BASE)])
    assert c.max_ts_ms == BASE + 5 * MIN


# -- duplicates -----------------------------------------------------------------------------------


def test_duplicates_are_per_window_event_id() -> None:
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN))
    res = c.feed_batch(
        [
            report(BASE, event_id="a"),
            report(BASE + 1, event_id="a"),  # same window, same id: duplicate
            report(BASE + MIN, event_id="a"),  # another window: counted
            report(BASE + 2),  # no id: never a duplicate
            report(BASE + 2),
            report(BASE + 3, event_id=7),  # ints are ids too ("7")
            report(BASE + 4, event_id="7"),
        ]
    )
    assert (res.accepted, res.duplicates, res.rejects) == (5, 2, [])
    assert c.stats.duplicates == 2
    c.advance_to(BASE + 10 * MIN)
    first = c.take_closed()[0]
    assert first.ws_ms == BASE and first.counts["ig"][("US/CA", "login", "app")] == 4


def test_duplicate_does_not_move_watermark() -> None:
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=0))
    c.feed_batch([report(BASE, event_id="a")])
    c.feed_batch([report(BASE + MIN - 1, event_id="a")])
    assert c.max_ts_ms == BASE


# -- keys per service -----------------------------------------------------------------------------


def test_too_many_keys_per_service() -> None:
    cfg = DetectorConfig(watermark_quorum=1, window_ms=MIN, max_keys_per_service=2, retire_after_ms=3_600_000)
    c = WindowCounter(cfg)
    res = c.feed_batch(
        [
            report(BASE + 1, "US"),
            report(BASE + 2, "GB"),
            report(BASE + 3, "FR"),  # a third region for "ig": over the limit
            report(BASE + 4, "US", category="feed"),  # a known region is fine with any category/source
            report(BASE + 5, "GB", source="web"),
            report(BASE + 6, "FR", service="fb"),  # another service has its own budget
            report(BASE + 7, "DE"),
        ]
    )
    assert reasons(res) == [None, None, "too_many_keys", None, None, None, "too_many_keys"]
    assert c.stats.rejected == 2
    # the budget is per generation of retire_after_ms of event time: the first report counted in a
    # new hour starts a new generation and is part of its budget
    day = BASE + 3_600_000
    res = c.feed_batch(
        [report(day, "GB"), report(day + 1, "DE"), report(day + 2, "FR"), report(day + 3, "US")]
    )
    assert reasons(res) == [None, None, "too_many_keys", "too_many_keys"]


# -- future skew ----------------------------------------------------------------------------------


def test_too_far_future_relative_to_newest_accepted() -> None:
    skew = 3_600_000
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN, max_future_skew_ms=skew))
    assert c.feed_batch([report(BASE)]).accepted == 1  # the first event has nothing to compare with
    res = c.feed_batch([report(BASE + skew + 1), report(BASE + skew), report(BASE + 2 * skew)])
    # the second moved the newest accepted time, so the third is now exactly at the limit
    assert reasons(res) == ["ts_too_far_future", None, None]
    assert c.stats.rejected == 1


def test_too_far_future_relative_to_record_time() -> None:
    skew = 3_600_000
    cfg = DetectorConfig(watermark_quorum=1, window_ms=MIN, max_future_skew_ms=skew)
    # a fresh counter has no newest time: the record time is the reference
    assert reasons(WindowCounter(cfg).feed_batch([report(BASE + skew + 1)], [BASE])) == ["ts_too_far_future"]
    assert reasons(WindowCounter(cfg).feed_batch([report(BASE + skew)], [BASE])) == [None]
    # no ts: the record time is the event time; no ts and no record time: missing_ts
    c = WindowCounter(cfg)
    assert reasons(c.feed_batch([report(None), report(None)], [BASE + 7, None])) == [None, "missing_ts"]
    c.advance_to(BASE + skew)
    assert [(w.ws_ms, w.counts) for w in c.take_closed()] == [(BASE, {"ig": {("US/CA", "login", "app"): 1}})]


def test_record_time_ahead_of_stream_widens_the_limit() -> None:
    skew = 3_600_000
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN, max_future_skew_ms=skew))
    c.feed_batch([report(BASE)])
    res = c.feed_batch([report(BASE + 2 * skew)], fallback_ts_ms=[BASE + skew])
    assert res.accepted == 1


# -- closing and state ----------------------------------------------------------------------------


def test_take_closed_returns_closed_windows_oldest_first_once() -> None:
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=MIN))
    c.feed_batch(
        [report(BASE, "GB"), report(BASE + MIN + 1, "US", service="fb"), report(BASE + 2 * MIN, "US")]
    )
    assert c.open_windows() == [BASE, BASE + MIN, BASE + 2 * MIN]
    # watermark = BASE + 2 * MIN - MIN: only [BASE, BASE + MIN) is closed
    closed = c.take_closed()
    assert [w.ws_ms for w in closed] == [BASE]
    assert closed[0].counts == {"ig": {("GB", "login", "app"): 1}}
    assert c.take_closed() == []
    c.advance_to(BASE + 3 * MIN)
    closed = c.take_closed()
    assert [w.ws_ms for w in closed] == [BASE + MIN, BASE + 2 * MIN]
    assert closed[0].counts == {"fb": {("US", "login", "app"): 1}}
    assert c.open_windows() == []


def test_resume_position_is_oldest_open_window() -> None:
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=MIN))
    c.feed_batch([report(BASE)], position=100)
    c.feed_batch([report(BASE + 1), report(BASE + MIN)], position=200)
    assert c.resume_position() == 100
    c.feed_batch([report(BASE + 2 * MIN)], position=300)  # closes [BASE, BASE + MIN)
    c.take_closed()
    assert c.resume_position() == 201  # [BASE + MIN, ...) starts with message 1 of the batch at 200
    ckpt = c.checkpoint()
    fresh = WindowCounter(c.config)
    fresh.restore_checkpoint(ckpt)
    assert fresh.watermark_ms == c.watermark_ms


def test_snapshot_restore_continues_identically() -> None:
    cfg = DetectorConfig(watermark_quorum=1, window_ms=MIN, max_keys_per_service=3)
    first = [
        report(BASE + i * 7_000, r, event_id=f"e{i % 4}") for i, r in enumerate(["US", "GB", "US/CA"] * 5)
    ]
    later = [
        report(BASE + 100_000 + i * 5_000, r, event_id=f"e{i % 6}")
        for i, r in enumerate(["US", "FR", "GB"] * 4)
    ]
    a = WindowCounter(cfg)
    a.feed_batch(first)
    b = WindowCounter(cfg)
    b.restore(orjson.loads(orjson.dumps(a.snapshot())))
    ra, rb = a.feed_batch(later), b.feed_batch(later)
    assert (ra.accepted, ra.duplicates, ra.rejects) == (rb.accepted, rb.duplicates, rb.rejects)
    assert ra.duplicates > 0 and ("too_many_keys" in {r for _, r in ra.rejects})
    for c in (a, b):
        c.advance_to(BASE + 10 * MIN)
    assert a.take_closed() == b.take_closed()
    assert a.stats == b.stats


# -- properties -----------------------------------------------------------------------------------

W = 1_000
LATENESS = 2_000
REGIONS = {  # raw region -> normalised
    "US": "US",
    "us/CA": "US/CA",
    "US/CA/Los Angeles": "US/CA/Los Angeles",
    "US/NY": "US/NY",
    "GB/England/London": "GB/England/London",
}
GARBAGE = [b"{", b"[]", b"\xff", report(BASE, "US//CA"), report(BASE, "US", category=""), b'{"ts": 1}']


@dataclass(frozen=True)
class Ev:
    ts: int
    service: str
    region: str
    category: str
    source: str | None
    eid: str | None

    def raw(self) -> bytes:
        return report(
            self.ts,
            self.region,
            service=self.service,
            category=self.category,
            source=self.source,
            event_id=self.eid,
        )


events = st.builds(
    Ev,
    ts=st.integers(min_value=BASE, max_value=BASE + 30 * W),
    service=st.sampled_from(["ig", "fb"]),
    region=st.sampled_from(sorted(REGIONS)),
    category=st.sampled_from(["login", "Feed"]),
    source=st.sampled_from(["app", "web", None]),
    eid=st.one_of(st.none(), st.sampled_from([f"e{i}" for i in range(4)])),
)
items = st.lists(st.one_of(events, st.sampled_from(GARBAGE)), min_size=1, max_size=120)


def with_duplicates(seq: list[Any], data: st.DataObject) -> list[Any]:
    """Insert exact copies of some events (re-deliveries) at random later positions."""
    out = list(seq)
    for _ in range(data.draw(st.integers(0, 10))):
        i = data.draw(st.integers(0, len(out) - 1))
        j = data.draw(st.integers(i, len(out)))
        out.insert(j, out[i])
    return out


def split(seq: list[Any], data: st.DataObject) -> list[list[Any]]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(seq)), max_size=5)))
    bounds = [0, *cuts, len(seq)]
    return [seq[a:b] for a, b in itertools.pairwise(bounds)]


def model(seq: list[Any]) -> tuple[Counter[tuple[str, str, int]], dict[str, int]]:
    """Brute force: which events count, and the totals per (service, region key, window)."""
    max_ts: int | None = None
    ids: dict[int, set[str]] = {}
    totals_: Counter[tuple[str, str, int]] = Counter()
    tally = {"accepted": 0, "rejected": 0, "late": 0, "duplicates": 0}
    for it in seq:
        if not isinstance(it, Ev):
            tally["rejected"] += 1
            continue
        ws = it.ts - it.ts % W
        if max_ts is not None and ws + W <= max_ts - LATENESS:
            tally["late"] += 1
            continue
        if it.eid is not None:
            if it.eid in ids.setdefault(ws, set()):
                tally["duplicates"] += 1
                continue
            ids[ws].add(it.eid)
        tally["accepted"] += 1
        max_ts = it.ts if max_ts is None else max(max_ts, it.ts)
        parts = REGIONS[it.region].split("/")
        for key in ["/".join(parts[:n]) for n in range(1, len(parts) + 1)] + ["*"]:
            totals_[(it.service, key, ws)] += 1
    return totals_, tally


CFG = DetectorConfig(watermark_quorum=1, window_ms=W, lateness_ms=LATENESS)


@settings(max_examples=100, deadline=None)
@given(items, st.data())
def test_every_input_is_accounted_for_once(seq: list[Any], data: st.DataObject) -> None:
    seq = with_duplicates(seq, data)
    c = WindowCounter(CFG)
    seen = 0
    for batch in split([x.raw() if isinstance(x, Ev) else x for x in seq], data):
        res = c.feed_batch(batch)
        idx = [i for i, _ in res.rejects]
        assert idx == sorted(set(idx))  # each rejected input once, in order
        assert res.accepted + res.duplicates + len(res.rejects) == len(batch)
        seen += len(batch)
        c.take_closed()
    s = c.stats
    assert s.accepted + s.rejected + s.late + s.duplicates == seen == len(seq)
    _, tally = model(seq)
    assert s.as_dict() == tally


@settings(max_examples=100, deadline=None)
@given(items, st.data())
def test_window_counts_equal_brute_force_recount(seq: list[Any], data: st.DataObject) -> None:
    seq = with_duplicates(seq, data)
    expected, _ = model(seq)
    raws = [x.raw() if isinstance(x, Ev) else x for x in seq]
    batches = split(raws, data)

    # the counter's closed windows, expanded to every region level
    c = WindowCounter(CFG)
    got: Counter[tuple[str, str, int]] = Counter()
    closed_ws: list[int] = []
    for batch in batches:
        c.feed_batch(batch)
        closed = c.take_closed()
        closed_ws += [w.ws_ms for w in closed]
    c.advance_to(BASE + 10**6)
    closed = c.take_closed()
    closed_ws += [w.ws_ms for w in closed]
    assert closed_ws == sorted(set(closed_ws))  # each window closed once, in order
    c2 = WindowCounter(CFG)
    for batch in batches:
        c2.feed_batch(batch)
    c2.advance_to(BASE + 10**6)
    for w in c2.take_closed():
        for svc, leaf in w.counts.items():
            for key, n in totals(leaf).items():
                got[(svc, key, w.ws_ms)] += n
    assert got == expected

    # the scorer's observed counts for every key it knows, zero-report windows included
    det = Detector(CFG)
    scored: dict[int, dict[tuple[str, str], float]] = {}

    def hook(ws: int, ck: ClosedKeys) -> None:
        assert ws not in scored
        scored[ws] = dict(zip(ck.keys, ck.observed.tolist(), strict=True))

    det.watch_windows(hook)
    for batch in batches:
        det.feed_batch(batch)
    det.flush()
    windows = sorted({ws for _, _, ws in expected})
    if not windows:
        assert scored == {}
        return
    assert sorted(scored) == list(range(windows[0], windows[-1] + W, W))  # no gaps, none extra
    known = {(svc, key) for svc, key, _ in expected}
    for ws, observed in scored.items():
        assert set(observed) <= known
        for (svc, key), n in observed.items():
            assert n == expected.get((svc, key, ws), 0)
    last = scored[windows[-1]]
    assert set(last) == known  # by the last window every key is known (nothing retires this fast)
