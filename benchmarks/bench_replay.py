"""Replay throughput: events/s through `spikedetect replay`'s core loop, from JSONL and gzip,
against reading + orjson-decoding the same file in the same run.

    python -m benchmarks.bench_replay [--days 3] [--repeats 5] [--smoke]

Baseline (same run, same file): read in 4 MiB blocks, split lines, orjson.loads every line.
Measured: the Replay driver (files -> batches -> Detector -> region incidents -> outage
grouping -> outage incidents), excluding output writing; and, to show what grouping costs,
the same loop on the Detector alone (region incidents only, what replay did before outages
were grouped), and the replay without the composition / ingest-gap signals (issue 18). Medians over --repeats, alternating baseline and the two replays.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import orjson

from benchmarks.common import median, save, simulated_file, timed
from spikedetect.core import Detector, DetectorConfig
from spikedetect.files.sources import iter_batches, open_binary
from spikedetect.replay.runner import Replay


def read_decode(path: Path) -> int:
    n = 0
    loads = orjson.loads
    with open_binary(path) as f:
        for batch in iter_batches(f):
            for line in batch:
                loads(line)
            n += len(batch)
    return n


def replay(path: Path, config: DetectorConfig, signals: bool = True) -> int:
    r = Replay(config)
    if not signals:  # the count detector alone: what replay did before issue 18
        r.detector.scorer.signals = None
    with open_binary(path) as f:
        for batch in iter_batches(f):
            r.feed(batch)
    r.finish()
    return r.summary.incidents_opened


def detector_only(path: Path, config: DetectorConfig) -> int:
    d = Detector(config)
    opened = 0
    with open_binary(path) as f:
        for batch in iter_batches(f):
            opened += sum(e.type == "opened" for e in d.feed_batch(batch).incidents)
    return opened + sum(e.type == "opened" for e in d.flush())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--detector", default="seasonal")
    ap.add_argument("--smoke", action="store_true", help="tiny run (CI keeps the script alive)")
    args = ap.parse_args()
    if args.smoke:
        args.days, args.repeats = 0.05, 1
    config = DetectorConfig(detector=args.detector)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("jsonl", "jsonl.gz"):
            path = Path(tmp) / f"suite.{kind}"
            n = simulated_file(path, days=args.days)
            base, run, ungrouped, bare = [], [], [], []
            incidents = regions = 0
            for _ in range(args.repeats):
                t, _ = timed(lambda p=path: read_decode(p))
                base.append(t)
                t, incidents = timed(lambda p=path: replay(p, config))
                run.append(t)
                t, regions = timed(lambda p=path: detector_only(p, config))
                ungrouped.append(t)
                t, _ = timed(lambda p=path: replay(p, config, signals=False))
                bare.append(t)
            b, r, u, v = median(base), median(run), median(ungrouped), median(bare)
            results[kind] = {"events": n, "read_decode_events_per_s": n / b, "replay_events_per_s": n / r,
                             "ratio_to_read_decode": b / r, "incidents_opened": incidents,
                             "region_incidents_opened": regions, "detector_only_events_per_s": n / u,
                             "replay_seconds": run, "read_decode_seconds": base, "detector_only_seconds": ungrouped,
                             "replay_without_signals_events_per_s": n / v, "replay_without_signals_seconds": bare}
            print(f"{kind:9s} {n:,} events: read+decode {n / b:,.0f}/s, replay {n / r:,.0f}/s, "
                  f"ratio {b / r:.2f}; detector alone {n / u:,.0f}/s, replay/detector time {r / u:.3f} "
                  f"({incidents} outage / {regions} region incidents; median of {args.repeats}); without the "
                  f"composition / ingest-gap signals {n / v:,.0f}/s, replay/that time {r / v:.3f}")
    if not args.smoke:
        print("saved", save(f"replay-{args.detector}", {"args": vars(args), "results": results}))


if __name__ == "__main__":
    main()
