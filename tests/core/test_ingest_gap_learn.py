"""The ingest-gap detector's bookkeeping against the formulas spelled out plainly: source
shares learned by EWMA (new sources join through the union of names, known ones are updated in
place) and the per-source expected counts of a window (a source literally named ``"*"`` takes
the service's count, never its mean)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core import ingest_gap
from spikedetect.core.ingest_gap import (
    ALL,
    LEARN_REPORTS,
    MAX_RATE,
    MAX_SOURCES,
    WARM_REPORTS,
    IngestGapDetector,
    ServiceGaps,
)
from spikedetect.core.leaf_window import LeafWindow


def _learn_plainly(st_: ServiceGaps, by_src: dict[str, float], total: float) -> None:
    rate = total / (st_.learned + total) if st_.learned < WARM_REPORTS else min(MAX_RATE, 1 - math.exp(-total / LEARN_REPORTS))
    for s in set(st_.shares) | set(by_src):
        st_.shares[s] = (1.0 - rate) * st_.shares.get(s, 0.0) + rate * by_src.get(s, 0.0) / total
    st_.learned = min(st_.learned + total, 1e9)
    if len(st_.shares) > MAX_SOURCES:
        for s in sorted(st_.shares, key=lambda s: (st_.shares[s], s))[: len(st_.shares) - MAX_SOURCES]:
            del st_.shares[s]


sources = st.sampled_from(["app", "web", "ios", "api", "unknown", *[f"s{i}" for i in range(8)]])
windows = st.lists(st.dictionaries(sources, st.one_of(st.integers(1, 500), st.floats(0.5, 1e4)), min_size=1, max_size=6),
                   min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(windows)
def test_shares_learn_as_the_plain_formula(by_window: list[dict[str, float]]) -> None:
    mine, plain = ServiceGaps(), ServiceGaps()
    for by_src in by_window:
        total = sum(by_src.values())
        IngestGapDetector._learn(mine, by_src, total)
        _learn_plainly(plain, by_src, total)
        assert repr(sorted(mine.shares.items())) == repr(sorted(plain.shares.items()))
        assert mine.learned == plain.learned


def test_a_source_named_like_the_service_takes_its_count_not_its_mean(monkeypatch: Any) -> None:
    det = IngestGapDetector(60_000, {"params_hash": "x"})
    det.services["svc"] = ServiceGaps({ALL: 0.5, "app": 0.45, "web": 0.01}, 1e6)
    means: list[float] = []
    monkeypatch.setattr(ingest_gap, "zero_log_prob", lambda mu, phi: means.append(mu) or 1.0)
    leaf = {("US", "c", "app"): 3}  # app reports; the source named "*" is silent
    det.close_window(0, LeafWindow({"svc": leaf}), {("svc", "*"): 0}, np.array([3.0]), np.array([100.0]), np.array([1.0]),
                     np.array([True]), ["svc"])
    assert means == [100.0]  # "*" counted its source's 0 reports, against the service's mean
    assert sorted(det.services["svc"].runs) == [ALL]


gap_windows = st.lists(
    st.tuples(st.dictionaries(st.sampled_from(["app", "web", "unknown", "*"]), st.sampled_from([0, 1, 7, 40, 0.5]),
                              max_size=4),
              st.sampled_from([0.5, 20.0, 60.0]), st.sampled_from([1.0, 2.5]), st.booleans() | st.just(True)),
    min_size=1, max_size=80)


def _fast_and_full(services: list[list[Any]]) -> tuple[list[bool], list[Any]]:
    """Two detectors through the same windows, one skipping quiet windows to learning
    (``_quiet``), one taking every window through the runs and the incident step: the same events
    and state after every window. What ``_quiet`` said, and the events."""
    fast, full = (IngestGapDetector(60_000, {"params_hash": "x"}) for _ in range(2))
    names = [f"s{i}" for i in range(len(services))]
    index = {(svc, ALL): i for i, svc in enumerate(names)}
    quiet, said, events = ingest_gap._quiet, [], []

    def counted(*a: Any) -> bool:
        said.append(quiet(*a))
        return said[-1]
    for w in range(2 * max(map(len, services)) + 3):  # each list twice, then normal windows
        per_service, observed, expected, phi, learned = {}, [], [], [], []
        for svc, windows_ in zip(names, services, strict=True):
            by_src, mu, ph, judged = windows_[w % len(windows_)] if w < 2 * len(windows_) else ({"app": 5}, 60.0, 1.0, True)
            per_service[svc] = {("US", "feed", src): n for src, n in by_src.items() if n}
            observed.append(float(sum(per_service[svc].values())))
            expected.append(mu)
            phi.append(ph)
            learned.append(judged)
        args = (LeafWindow(per_service), index, np.array(observed), np.array(expected), np.array(phi),
                np.array(learned), names)
        try:
            ingest_gap._quiet = lambda *a: False  # type: ignore[assignment]
            want = full.close_window(w * 60_000, *args)
            ingest_gap._quiet = counted
            got = fast.close_window(w * 60_000, *args)
        finally:
            ingest_gap._quiet = quiet
        assert repr(got) == repr(want), w
        assert repr(fast.to_dict()) == repr(full.to_dict()), w
        events.extend(got)
    return said, events


@settings(max_examples=200, deadline=None)
@given(st.lists(gap_windows, min_size=1, max_size=2))
def test_a_quiet_window_only_learns_as_the_full_steps_would(services: list[list[Any]]) -> None:
    """Through sources going silent, gaps opening and closing, a source named "*", windows not
    judged (:func:`_fast_and_full`)."""
    _fast_and_full(services)


def test_a_source_going_silent_between_quiet_windows() -> None:
    """Warm shares, then "web" silent for a while (a gap opens and closes), then quiet again."""
    normal = ({"app": 60, "web": 30, "unknown": 5}, 95.0, 1.0, True)
    silent = ({"app": 60, "unknown": 5}, 95.0, 1.0, True)
    said, events = _fast_and_full([[normal] * 30 + [silent] * 6 + [normal] * 10])
    assert said.count(True) > 60 and said.count(False) > 0
    assert {"opened", "closed"} <= {ev.type for ev in events}, events
