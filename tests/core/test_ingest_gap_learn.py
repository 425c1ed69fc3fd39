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
