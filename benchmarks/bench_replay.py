"""Replay throughput: events/s through `spikedetect replay`'s core loop, from JSONL and gzip,
against reading + orjson-decoding the same file in the same run.

    python -m benchmarks.bench_replay [--days 3] [--repeats 5] [--smoke]

Baseline (same run, same file): read in 4 MiB blocks, split lines, orjson.loads every line.
Measured: the Replay driver (files -> batches -> Detector -> incident events), excluding
output writing. Medians over --repeats, alternating baseline and replay.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import orjson

from benchmarks.common import median, save, simulated_file, timed
from spikedetect.core import DetectorConfig
from spikedetect.replay.runner import Replay
from spikedetect.replay.sources import iter_batches, open_binary


def read_decode(path: Path) -> int:
    n = 0
    loads = orjson.loads
    with open_binary(path) as f:
        for batch in iter_batches(f):
            for line in batch:
                loads(line)
            n += len(batch)
    return n


def replay(path: Path, config: DetectorConfig) -> int:
    r = Replay(config)
    with open_binary(path) as f:
        for batch in iter_batches(f):
            r.feed(batch)
    r.finish()
    return r.summary.incidents_opened


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
            base, run = [], []
            incidents = 0
            for _ in range(args.repeats):
                t, _ = timed(lambda p=path: read_decode(p))
                base.append(t)
                t, incidents = timed(lambda p=path: replay(p, config))
                run.append(t)
            b, r = median(base), median(run)
            results[kind] = {"events": n, "read_decode_events_per_s": n / b, "replay_events_per_s": n / r,
                             "ratio_to_read_decode": b / r, "incidents_opened": incidents,
                             "replay_seconds": run, "read_decode_seconds": base}
            print(f"{kind:9s} {n:,} events: read+decode {n / b:,.0f}/s, replay {n / r:,.0f}/s, "
                  f"ratio {b / r:.2f} (median of {args.repeats})")
    if not args.smoke:
        print("saved", save(f"replay-{args.detector}", {"args": vars(args), "results": results}))


if __name__ == "__main__":
    main()
