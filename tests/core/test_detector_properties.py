"""Whole-detector properties: determinism, independence from the order of in-lateness events and
from batching, and snapshot/restore mid-stream equal to an uninterrupted run."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core.config import DetectorConfig
from spikedetect.core.detector import Detector
from spikedetect.core.detectors import DETECTORS
from spikedetect.core.detectors.base import LEARNED
from spikedetect.core.scorer import ClosedKeys

W = 1_000  # one-second windows keep the streams small; the seasonal slots warm in a few minutes
LATENESS = 2 * W
T0 = 1_795_651_200_000  # 2026-11-26T00:00:00Z: a slot boundary, so both neighbouring slots learn
N_WINDOWS = 420
SPIKE = range(300, 320)  # windows where Los Angeles reports 25x its usual rate
RATES = {"US/CA/Los Angeles": 4.0, "US/NY/New York": 3.0, "GB/England/London": 2.0}


@dataclass(frozen=True)
class Stream:
    ts: np.ndarray  # event time of each message, in stream order (sorted)
    raw: list[bytes]


@functools.cache
def stream(seed: int = 1) -> Stream:
    """Sorted by event time; ~1 in 20 messages re-delivered (same bytes) a little later."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, bytes]] = []
    n = 0
    for w in range(N_WINDOWS):
        ws = T0 + w * W
        for region, rate in RATES.items():
            spiking = region == "US/CA/Los Angeles" and w in SPIKE
            for _ in range(rng.poisson(rate * (25 if spiking else 1))):
                ts = ws + int(rng.integers(0, W))
                source = "app" if rng.random() < (0.75 if spiking else 0.4) else "web"
                obj = {
                    "ts": ts,
                    "service": "ig",
                    "region": region,
                    "category": "login" if spiking else "feed",
                    "source": source,
                    "event_id": f"e{n}",
                }
                n += 1
                rows.append((ts, orjson.dumps(obj)))
    rows.sort(key=lambda r: r[0])
    out: list[tuple[int, bytes]] = []
    for i, row in enumerate(rows):
        out.append(row)
        if rng.random() < 0.05 and i + 1 < len(rows):  # a re-delivery, still in the same window
            out.append(row)
    return Stream(np.array([r[0] for r in out]), [r[1] for r in out])


def config(detector: str = "seasonal") -> DetectorConfig:
    return DetectorConfig(window_ms=W, lateness_ms=LATENESS, detector=detector)


@dataclass
class Run:
    incidents: list[bytes]
    windows: dict[int, dict[tuple[str, str], float]]
    stats: dict[str, object]


def run(raws: list[bytes], batches: list[int] | None = None, cfg: DetectorConfig | None = None) -> Run:
    det = Detector(cfg or config())
    windows: dict[int, dict[tuple[str, str], float]] = {}

    def hook(ws: int, ck: ClosedKeys) -> None:
        windows[ws] = dict(zip(ck.keys, ck.observed.tolist(), strict=True))

    det.watch_windows(hook)
    incidents: list[bytes] = []
    cuts = [0, *(batches or []), len(raws)]
    for a, b in itertools.pairwise(cuts):
        incidents += [e.to_json() for e in det.feed_batch(raws[a:b]).incidents]
    incidents += [e.to_json() for e in det.flush()]
    return Run(incidents, windows, det.stats)


@functools.cache
def reference(detector: str = "seasonal") -> Run:
    return run(stream().raw, batches=list(range(500, len(stream().raw), 500)), cfg=config(detector))


def test_reference_stream_has_incidents() -> None:
    ref = reference()
    kinds = [orjson.loads(b)["type"] for b in ref.incidents]
    regions = {orjson.loads(b)["region"] for b in ref.incidents}
    assert kinds.count("opened") >= 1 and kinds.count("closed") >= 1
    assert "US/CA/Los Angeles" in regions
    assert ref.stats["duplicates"] > 0 and ref.stats["late"] == 0 and ref.stats["rejected"] == 0


def test_identical_input_gives_identical_output() -> None:
    raws = stream().raw
    a = run(raws, batches=[1000, 2000])
    b = run(raws, batches=[1000, 2000])
    assert a.incidents == b.incidents and a.incidents
    assert a.windows == b.windows


def jittered_order(ts: np.ndarray, seed: int, max_jitter_ms: int) -> list[int]:
    """A permutation in which every event's time is at least (max of the times before it) - max_jitter_ms.

    Sorting by ts + u with 0 <= u <= J gives ts_i + u_i >= ts_j + u_j for every j before i, so
    ts_i >= ts_j - J: no event falls behind the watermark by more than the allowed lateness.
    """
    rng = np.random.default_rng(seed)
    keys = ts + rng.integers(0, max_jitter_ms + 1, size=len(ts))
    return np.argsort(keys, kind="stable").tolist()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), jitter=st.integers(0, LATENESS), batch=st.integers(50, 3000))
def test_order_of_in_lateness_events_does_not_change_output(seed: int, jitter: int, batch: int) -> None:
    s = stream()
    order = jittered_order(s.ts, seed, jitter)
    displaced = s.ts[order]
    assert (displaced >= np.maximum.accumulate(displaced) - jitter).all()
    got = run([s.raw[i] for i in order], batches=list(range(batch, len(order), batch)))
    ref = reference()
    assert got.stats["late"] == 0
    assert got.incidents == ref.incidents
    assert got.windows == ref.windows


def test_events_beyond_lateness_are_late_not_reordered() -> None:
    # the negative control: move one event further back than the lateness allows
    s = stream()
    raws = list(s.raw)
    i = int(np.searchsorted(s.ts, T0 + 100 * W))  # first event of window 100
    moved = raws.pop(i)
    j = int(np.searchsorted(s.ts, T0 + 100 * W + LATENESS + 2 * W))  # well after the watermark passed it
    raws.insert(j, moved)
    got = run(raws)
    assert got.stats["late"] == 1
    assert got.windows != reference().windows


def snapshot_run(
    raws: list[bytes], split: int, cfg: DetectorConfig, batch: int = 700
) -> tuple[Run, Detector]:
    """Feed up to split, snapshot, restore into a new detector (through bytes), feed the rest."""
    det = Detector(cfg)
    incidents: list[bytes] = []
    cuts = [*range(0, split, batch), split]
    for a, b in itertools.pairwise(cuts):
        incidents += [e.to_json() for e in det.feed_batch(raws[a:b]).incidents]
    before = det
    det = Detector.restore(bytes(det.snapshot()), cfg)
    cuts = [*range(split, len(raws), batch), len(raws)]
    for a, b in itertools.pairwise(cuts):
        incidents += [e.to_json() for e in det.feed_batch(raws[a:b]).incidents]
    incidents += [e.to_json() for e in det.flush()]
    return Run(incidents, {}, det.stats), before


@pytest.mark.parametrize("detector", sorted(DETECTORS))
def test_snapshot_restore_mid_incident_equals_uninterrupted(detector: str) -> None:
    s = stream()
    cfg = config(detector)
    ref = reference(detector)
    assert any(orjson.loads(b)["type"] == "opened" for b in ref.incidents)
    split = int(np.searchsorted(s.ts, T0 + (SPIKE.start + 8) * W))  # in the middle of the spike
    got, before = snapshot_run(s.raw, split, cfg)
    # the preconditions that make this a real test: baselines learned, an incident open, windows open
    assert before.scorer.open_incidents()
    ks = before.scorer.keyspace
    rows = np.arange(ks.size)
    if detector in ("seasonal", "weekly"):  # warm() wants every slot of the day; these two have learned
        assert (ks.baseline.expect(rows, T0 + (SPIKE.start + 8) * W).source == LEARNED).all()
    else:
        assert ks.baseline.warm(rows).all()
    assert before.counter.open_windows()
    assert got.incidents == ref.incidents
    for key in ("accepted", "duplicates", "late", "rejected", "windows_closed", "keys"):
        assert got.stats[key] == ref.stats[key], key


@settings(max_examples=8, deadline=None)
@given(st.integers(1, len(stream().raw) - 1))
def test_snapshot_anywhere_equals_uninterrupted(split: int) -> None:
    got, _ = snapshot_run(stream().raw, split, config())
    assert got.incidents == reference().incidents
