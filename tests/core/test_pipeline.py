"""core/pipeline.py, the one driver of counter -> scorer -> outage grouper: batching, sources,
the end-of-input flush, hooks and the summary do not change what comes out."""

from __future__ import annotations

import functools
import zlib
from typing import Any

import numpy as np
import orjson

from spikedetect.core import ClosedKeys, ClosedWindow, DetectorConfig, Mark, Output, Partial, Pipeline
from spikedetect.core.detector import Detector
from spikedetect.core.signal_events import SignalEvent

W = 1_000  # one-second windows keep the stream small (as in test_detector_properties)
T0 = 1_795_651_200_000
N_WINDOWS = 400
SPIKE = range(300, 320)  # Los Angeles at 25x its rate: one incident
RATES = {"US/CA/Los Angeles": 4.0, "US/NY/New York": 3.0, "GB/England/London": 2.0}


@functools.cache
def reports(seed: int = 3) -> tuple[bytes, ...]:
    """Sorted by event time, ~1 in 20 re-delivered, and a few lines that are not reports."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, bytes]] = []
    for w in range(N_WINDOWS):
        for region, rate in RATES.items():
            spiking = region.endswith("Angeles") and w in SPIKE
            for _ in range(rng.poisson(rate * (25 if spiking else 1))):
                ts = T0 + w * W + int(rng.integers(0, W))
                rows.append((ts, orjson.dumps({"ts": ts, "service": "ig", "region": region,
                                               "category": "login" if spiking else "feed",
                                               "event_id": f"e{len(rows)}"})))
    rows.sort(key=lambda r: r[0])
    out: list[bytes] = []
    for i, (_, raw) in enumerate(rows):
        out.append(raw)
        if rng.random() < 0.05:
            out.append(raw)  # a re-delivery
        if i % 997 == 0:
            out.append(b"not json")
    return tuple(out)


def config() -> DetectorConfig:
    return DetectorConfig(window_ms=W, lateness_ms=2 * W)


def dump(out: Output) -> tuple[list[bytes], list[bytes], list[tuple[Any, bytes, str]]]:
    return [e.to_json() for e in out.incidents], [e.to_json() for e in out.events], out.dead


def summary(p: Pipeline) -> dict[str, Any]:
    d = p.summary.to_dict()
    d.pop("seconds"), d.pop("events_per_s")
    return d


def run(batch: int, sources: int = 1, **kw: Any) -> tuple[Output, Pipeline]:
    """Feed every report in batches of ``batch``; with several sources, a report goes to the source
    its bytes hash to (so a re-delivery meets its first copy), in stream order."""
    p = Pipeline(config(), sources=range(sources), **kw)
    total = Output()
    values = reports()
    for i in range(0, len(values), batch):
        chunk = values[i:i + batch]
        for s in range(sources):
            mine = [v for v in chunk if zlib.crc32(v) % sources == s]
            if mine:
                total.extend(p.feed(s, mine))
    total.extend(p.finish())
    return total, p


def test_the_stream_has_incidents_and_dead_letters() -> None:
    out, p = run(len(reports()))
    assert any(e.type == "opened" for e in out.incidents)  # the spike opened a region incident
    assert any(e.type == "opened" for e in out.events)  # and an outage
    assert p.summary.rejected_by_reason == {"not_json": sum(v == b"not json" for v in reports())}
    assert p.summary.duplicates > 0


def test_one_call_many_batches_and_two_sources_give_the_same_output() -> None:
    whole, p1 = run(len(reports()))
    batched, p2 = run(97)
    split, p3 = run(250, sources=2)
    ids = lambda d: [(i, r) for _, i, r in d]  # noqa: E731 - origins are batch indexes: compare bytes
    assert dump(batched)[:2] == dump(whole)[:2] == dump(split)[:2]
    assert ids(batched.dead) == ids(whole.dead) == ids(split.dead)
    assert summary(p1) == summary(p2) == summary(p3)


def test_finish_flushes_every_window_with_data_once() -> None:
    p = Pipeline(config())
    closed: list[int] = []
    p.watch_windows(lambda ws, _: closed.append(ws))
    p.feed(0, list(reports()))
    last = T0 + (N_WINDOWS - 1) * W
    assert closed and closed[-1] < last  # the newest windows wait for the watermark
    p.finish()
    assert closed[-1] == last and closed == sorted(set(closed))
    assert p.summary.windows_closed == len(closed)
    assert dump(p.finish()) == ([], [], [])  # nothing is closed twice


def test_every_registered_hook_gets_every_window() -> None:
    first: list[int] = []
    second: list[tuple[int, int]] = []

    def keys(ws: int, ck: ClosedKeys) -> None:
        second.append((ws, len(ck.keys)))

    _, p = run(500, on_window=lambda ws, _: first.append(ws))
    q = Pipeline(config(), on_window=lambda ws, _: first.append(ws))
    q.watch_windows(keys)
    q.feed(0, list(reports()))
    q.finish()
    assert len(first) == p.summary.windows_closed + q.summary.windows_closed
    assert first[:p.summary.windows_closed] == first[p.summary.windows_closed:] == [ws for ws, _ in second]
    assert all(n > 0 for _, n in second)


def test_the_summary_counts_what_the_outputs_hold() -> None:
    out, p = run(300)
    s = p.summary
    assert s.region_events == len(out.incidents) and s.incident_events == len(out.events)
    assert s.region_incidents_opened == sum(e.type == "opened" for e in out.incidents)
    assert s.incidents_opened == sum(e.type == "opened" for e in out.events)
    assert s.incidents_closed == sum(e.type == "closed" for e in out.events)
    assert sum(s.rejected_by_reason.values()) == len(out.dead)
    assert s.events == len(reports()) and s.accepted + s.rejected + s.duplicates + s.late == s.events


def test_the_scorer_side_alone_gives_what_the_whole_pipeline_gives() -> None:
    """Stage 1 (counters) and stage 2 (scorer) apart, as live: Partial and Mark between them."""
    whole, _ = run(400)
    counting = Pipeline(config())
    scoring = Pipeline(config(), sources=())
    got = Output()
    values = reports()
    counter = counting.counters[0]
    for i in range(0, len(values), 400):
        counter.feed_batch(values[i:i + 400])
        for window in counter.take_closed():
            scoring.apply(Partial(0, window))
        scoring.apply(Mark(0, counter.watermark_ms, n_sources=1))
        got.extend(scoring.close())
    counter.finish()
    for window in counter.take_closed():
        scoring.apply(Partial(0, window))
    scoring.apply(Mark(0, counter.watermark_ms, idle=True))
    got.extend(scoring.close())
    assert dump(got)[:2] == dump(whole)[:2]


def test_the_detector_is_the_pipeline_without_grouping() -> None:
    out, _ = run(500, outages=False)
    det = Detector(config())
    events = []
    values = reports()
    for i in range(0, len(values), 500):
        events += det.feed_batch(list(values[i:i + 500])).incidents
    events += det.flush()
    assert [e.to_json() for e in events] == [e.to_json() for e in out.incidents]
    assert all(e.group_id is None for e in events)
    assert [e.to_json() for e in out.events] == [e.to_json() for e in det.take_signals()]
    assert all(isinstance(e, SignalEvent) for e in out.events)


def test_apply_says_what_became_of_a_partial() -> None:
    """The scorer side tells kept partials from re-deliveries and late ones (the live owner
    stores only the kept), counting the same in the scorer's stats."""
    p = Pipeline(config(), sources=())
    window = ClosedWindow(T0, {"ig": {("US", "feed", "app"): 2}})
    p.apply(Mark(0, None, idle=True, n_sources=2))
    assert p.apply(Partial(1, window)) == "kept"
    assert p.apply(Partial(1, window)) == "kept"  # its window is still open: the copy replaces it
    p.apply(Mark(1, T0 + 2 * W))
    assert p.close().incidents == [] and p.scorer.next_ws == T0 + 2 * W
    assert p.apply(Partial(1, window)) == "replayed"  # source 1's mark had passed it
    assert p.apply(Partial(0, window)) == "late"  # source 0 was idle: T0 closed without it
    assert p.apply(Partial(0, ClosedWindow(T0 + 2 * W, {"ig": {("US", "feed", "app"): 1}}))) == "kept"
    st = p.scorer.stats
    assert (st.replayed_partials, st.late_partials, st.late_partial_reports) == (1, 1, 2.0)


def test_the_pipeline_hands_its_counters_windows_over_uncopied_and_apply_copies() -> None:
    """_forward gives the scorer a closed window's dicts as the counter let go of them (nothing
    else holds them: the counter's later counting makes new ones); apply, the live owner's way in,
    keeps a copy, so a caller's later change to its partial never reaches a pending window."""
    p = Pipeline(config(), sources=[0, 1])  # source 1 says nothing: source 0's windows stay pending
    p.feed(0, list(reports()[:200]))
    counter, pending = p.counters[0], p.scorer.pending
    assert len(pending) > 5
    handed = {id(d) for pend in pending.values() for part in pend.by_source.values() for d in part.values()}
    open_dicts = {id(d) for c in counter._counts.values() for d in [c, *c.values()]}
    assert handed and not handed & open_dicts
    before = {ws: repr(pend.by_source) for ws, pend in pending.items()}
    p.feed(0, list(reports()[200:260]))  # counting goes on in other dicts
    assert {ws: repr(pend.by_source) for ws, pend in pending.items() if ws in before} == \
        {ws: r for ws, r in before.items() if ws in pending}
    scoring = Pipeline(config(), sources=())
    window = ClosedWindow(T0 + 10 * W, {"ig": {("US", "feed", "app"): 2}})
    assert scoring.apply(Partial(0, window)) == "kept"
    window.counts["ig"][("US", "feed", "app")] = 7
    assert scoring.scorer.pending[T0 + 10 * W].by_source[(0, 0)] == {"ig": {("US", "feed", "app"): 2}}
