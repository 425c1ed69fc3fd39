"""Stage-2 capacity: how many keys of one service one owner can close per 60 s window.

    python -m benchmarks.bench_owner_capacity [--keys 1000,10000,50000,100000,200000]
        [--reports 50000] [--windows 8] [--budget 0.5] [--smoke]

Today partials are routed by service, so a whole service's region tree lands on one owner
(one partition of the partials topic, one event loop). Each size N runs in a fresh
subprocess: one service whose N keys (leaves and every ancestor level) follow the
simulator's geography (:func:`spikedetect.sim.geo.build_population`: 17 countries, their
states and ~290 cities, Zipf-weighted), each city split into localities
(``CC/ST/City/Lnnnn``) until the tree has N keys. Every window, ``--reports`` reports are
drawn over the leaves by their population share (Poisson, a shared per-window gamma factor,
the simulator's normal category and source mix) and split over 4 input partitions (sources)
by region, as ``spikedetect produce`` keys them.

The owner's per-window work is replayed without Kafka, as ``stream/owner.py`` does it:

* **close**: ``Scorer.add_partial`` for the 4 partials, then ``close_ready`` (merge,
  expand, expect, score, evidence, calibration, incident steps, learn, composition and
  ingest-gap signals) and the outage grouper on its events;
* **write**: every key's state record serialised (``key_record_bytes``) into a plain dict
  under the owner's table key, plus the signals record and the grouper state of touched
  services. A live owner's Faust table also hands each record to its changelog producer;
  that part needs a broker and is not in this figure (docs/operations.md: 25-50k records/s).

Warm-up: 20 windows (levels learned), then every key's time-of-day profile is seeded from
its learned level and marked warm, as after weeks of learning (so keys are scored as
``learned``, not cold), then 4 more windows unmeasured. Measured: ``--windows`` quiet
windows, then ``--windows`` windows of an outage (every leaf of Brazil at 8x: thousands of
keys open and stay tracked, so incident steps and breakdowns are exercised). Reported per
phase: median close and write seconds per window, state bytes per key, RSS per key; then the
keys one owner can close per window within ``--budget`` of the window (default 50 %, so a
backlog is caught up at 2x real time) and within 1 s (the incident-latency target and how
long the worker's event loop, which also runs ingest, is held), interpolated between the
measured sizes' worse phase (extrapolated past the largest with its last per-key cost).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import subprocess
import sys
import time
import zlib
from typing import Any

import numpy as np

from benchmarks.common import median, save

SOURCES_N = 4
WINDOW_MS = 60_000
START_MS = 1_795_651_200_000  # a Monday 00:00 UTC
OUTAGE_COUNTRY, OUTAGE_FACTOR = "BR", 8.0
WARMUP, SETTLE = 20, 4


def geography(n_keys: int) -> tuple[list[str], np.ndarray, int]:
    """Leaf regions, their share of the service's reports, and the number of keys of the tree."""
    from spikedetect.core.regions import region_keys
    from spikedetect.sim.geo import build_population

    pop = build_population()
    share = pop.shares("instagram")
    base = [leaf.region for leaf in pop.leaves]
    base_keys = len({k for r in base for k in region_keys(r)})
    cities = [i for i, r in enumerate(base) if r.count("/") == 2]
    extra = max(0, n_keys - base_keys)
    # localities per city in proportion to its share (largest remainder)
    want = share[cities] / share[cities].sum() * extra
    alloc = np.floor(want).astype(int)
    alloc[np.argsort(-(want - alloc))[: extra - int(alloc.sum())]] += 1
    regions: list[str] = []
    shares: list[float] = []
    for i, r in enumerate(base):
        if i not in cities:
            regions.append(r)
            shares.append(float(share[i]))
    for i, k in zip(cities, alloc.tolist(), strict=True):
        if k == 0:
            regions.append(base[i])
            shares.append(float(share[i]))
            continue
        w = np.arange(1, k + 1, dtype=float) ** -0.9  # Zipf inside the city, like cities in a country
        w = w / w.sum() * share[i]
        regions.extend(f"{base[i]}/L{j:05d}" for j in range(k))
        shares.extend(w.tolist())
    keys = len({k for r in regions for k in region_keys(r)})
    return regions, np.asarray(shares), keys


def window_counts(rng: np.random.Generator, regions: list[str], shares: np.ndarray, reports: float,
                  boost: np.ndarray | None) -> list[dict[tuple[str, str, str], int]]:
    """One window's leaf counts, split into the partials of the 4 sources."""
    from spikedetect.sim.injection import CATEGORIES, NORMAL_MIX, SOURCES

    mean = shares * reports * rng.gamma(150.0, 1 / 150.0)
    if boost is not None:
        mean = mean * boost
    totals = rng.poisson(mean)
    hit = np.flatnonzero(totals)
    cells = np.outer(NORMAL_MIX.categories, NORMAL_MIX.sources).ravel()
    split = rng.multinomial(totals[hit], cells)
    parts: list[dict[tuple[str, str, str], int]] = [{} for _ in range(SOURCES_N)]
    n_src = len(SOURCES)
    for row, i in enumerate(hit.tolist()):
        region = regions[i]
        part = parts[zlib.crc32(region.encode()) % SOURCES_N]
        for c in np.flatnonzero(split[row]).tolist():
            part[(region, CATEGORIES[c // n_src], SOURCES[c % n_src])] = int(split[row, c])
    return parts


def measure_one(n_keys: int, reports: float, windows: int) -> dict[str, Any]:
    """One size, in this process (run in a fresh subprocess by :func:`main`)."""
    import psutil

    from spikedetect.core import DetectorConfig
    from spikedetect.core.counter import ClosedWindow
    from spikedetect.core.outages import OutageGrouper
    from spikedetect.core.scorer import Scorer
    from spikedetect.core.signal_events import merge_v2
    from spikedetect.core.state import dumps, key_record_bytes

    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss
    regions, shares, keys = geography(n_keys)
    rng = np.random.default_rng(17)
    boost = np.where([r.startswith(OUTAGE_COUNTRY + "/") or r == OUTAGE_COUNTRY for r in regions],
                     OUTAGE_FACTOR, 1.0)
    cfg = DetectorConfig()
    scorer = Scorer(cfg, sources=range(SOURCES_N))
    grouper = OutageGrouper()
    table: dict[str, bytes] = {}
    q = 0
    ws = START_MS

    def close_one(parts: list[dict[tuple[str, str, str], int]]) -> tuple[float, float, int]:
        nonlocal ws
        t0 = time.perf_counter()
        for src, part in enumerate(parts):
            scorer.add_partial(src, ClosedWindow(ws, {"svc": part}), ("svc", 0))
            scorer.set_watermark(src, ws + WINDOW_MS)
        outages, _regions = grouper.feed(scorer.close_ready(ws + WINDOW_MS))
        merge_v2(outages, scorer.signals.take() if scorer.signals is not None else [])
        t1 = time.perf_counter()
        for svc in sorted(grouper.touched):
            table[f"{q}|g|{svc}"] = dumps(grouper.export_service(svc))
        grouper.touched.clear()
        if scorer.signals is not None:
            table[f"{q}|sig"] = dumps(scorer.signals.to_dict())
        for sk in scorer.keyspace.keys:
            table[f"{q}|k|{sk[0]}|{sk[1]}"] = key_record_bytes(scorer, sk)
        t2 = time.perf_counter()
        ws += WINDOW_MS
        return t1 - t0, t2 - t1, len(_regions)

    for w in range(WARMUP + SETTLE):
        if w == WARMUP:  # as after weeks of learning: the time-of-day profile is warm
            cols, n = scorer.keyspace.baseline.cols, scorer.keyspace.size
            cols["prof"][:n] = cols["level"][:n, None]
            cols["prof_w"][:n] = np.maximum(cols["prof_w"][:n], 1e3)
        close_one(window_counts(rng, regions, shares, reports, None))
    phases: dict[str, dict[str, Any]] = {}
    for phase, b in (("quiet", None), ("outage", boost)):
        inputs = [window_counts(rng, regions, shares, reports, b) for _ in range(windows)]
        close_s, write_s, events = [], [], 0
        for parts in inputs:
            c, wr, ev = close_one(parts)
            close_s.append(c)
            write_s.append(wr)
            events += ev
        phases[phase] = {"close_s": close_s, "write_s": write_s, "region_events": events,
                         "open_incidents": len(scorer.open_incidents())}
    gc.collect()
    rss1 = proc.memory_info().rss
    state = sum(len(k) + len(v) for k, v in table.items() if "|k|" in k)
    size = scorer.keyspace.size
    return {"keys": size, "target_keys": n_keys, "planned_keys": keys, "leaves": len(regions),
            "reports_per_window": reports, "phases": phases, "state_bytes_per_key": state / size,
            "rss_before": rss0, "rss_after": rss1, "rss_per_key": (rss1 - rss0) / size}


def capacity(rows: list[dict[str, Any]], seconds: float) -> tuple[float, bool]:
    """Keys whose window (close + write, worse phase) takes ``seconds``: interpolated between the
    measured sizes, or extrapolated with the per-key cost of the two largest (then True)."""
    pts = sorted((float(r["keys"]), float(r["worst_s"])) for r in rows)
    if pts[0][1] >= seconds:
        return pts[0][0] * seconds / pts[0][1], False
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if y1 >= seconds:
            return x0 + (seconds - y0) * (x1 - x0) / max(y1 - y0, 1e-12), False
    (x0, y0), (x1, y1) = pts[-2:] if len(pts) > 1 else ((0.0, 0.0), pts[-1])
    return x1 + (seconds - y1) * (x1 - x0) / max(y1 - y0, 1e-12), True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", default="1000,10000,50000,100000,200000")
    ap.add_argument("--reports", type=float, default=50_000, help="reports per window for the service")
    ap.add_argument("--windows", type=int, default=8, help="measured windows per phase")
    ap.add_argument("--budget", type=float, default=0.5, help="share of the window closing may take")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child: one size
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(measure_one(args.one, args.reports, args.windows)))
        return
    if args.smoke:
        args.keys, args.reports, args.windows = "600,1200", 2_000.0, 2
    rows = []
    for n in (int(k) for k in args.keys.split(",")):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_owner_capacity", "--one", str(n),
                              "--reports", str(args.reports), "--windows", str(args.windows)],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        cells = []
        for phase, p in row["phases"].items():
            p["close_median_s"], p["write_median_s"] = median(p["close_s"]), median(p["write_s"])
            cells.append(f"{phase} close {p['close_median_s'] * 1e3:,.1f} ms + write {p['write_median_s'] * 1e3:,.1f} ms"
                         f" ({p['open_incidents']} open)")
        row["worst_s"] = max(p["close_median_s"] + p["write_median_s"] for p in row["phases"].values())
        rows.append(row)
        print(f"{row['keys']:>9,} keys ({row['leaves']:,} leaves, {row['reports_per_window']:,.0f} reports/window): "
              + "; ".join(cells) + f"; state {row['state_bytes_per_key']:,.0f} B/key, "
              f"RSS +{row['rss_per_key']:,.0f} B/key  ({time.perf_counter() - t0:.0f}s)")
    window_s = WINDOW_MS / 1000
    (at_budget, extra_b), (at_1s, extra_1) = capacity(rows, args.budget * window_s), capacity(rows, 1.0)
    big = max(rows, key=lambda r: r["keys"])
    print(f"per window at {big['keys']:,} keys: {big['worst_s'] / big['keys'] * 1e6:,.1f} us per key (close + write, "
          f"worse phase, median of {args.windows} windows); keys per owner within {args.budget:.0%} of a "
          f"{window_s:.0f} s window: {at_budget:,.0f}{' (extrapolated)' if extra_b else ''}; within 1 s: "
          f"{at_1s:,.0f}{' (extrapolated)' if extra_1 else ''}")
    if not args.smoke:
        print("saved", save("owner-capacity", {"args": vars(args), "results": rows, "keys_at_budget": at_budget,
                                               "keys_at_1s": at_1s}))


if __name__ == "__main__":
    main()
