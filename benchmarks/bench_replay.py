"""Replay throughput: events/s through `spikedetect replay`'s core loop, from JSONL and gzip,
against reading + orjson-decoding the same file in the same run.

    python -m benchmarks.bench_replay [--days 3] [--repeats 5] [--kinds jsonl,jsonl.gz] [--count-only] [--smoke]

Baseline (same run, same file): read in 4 MiB blocks, split lines, orjson.loads every line.
Measured: the Replay driver (files -> batches -> Detector -> region incidents -> outage
grouping -> outage incidents), excluding output writing, counting with the compiled kernel
(spikedetect.kernel) when it is built, and the same replay with the pure-Python counter; with
--detector-only also the loop on the Detector alone (region incidents only, what replay did
before outages were grouped), and with --count-only counting alone (WindowCounter, compiled and
pure, no scoring), and with --signals-cost the replay without the composition / ingest-gap
signals (issue 18), and with --closing-cost the replay with the compiled closing loops off (NB
tails and seasonal steps in numpy, as SPIKEDETECT_PURE=1 does for them). Medians over --repeats,
alternating the baseline and the replays.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson

from benchmarks.common import median, save, simulated_file, timed
from spikedetect import kernel
from spikedetect.core import Detector, DetectorConfig, negbin, window_scores
from spikedetect.core.composition import shares
from spikedetect.core.counter import WindowCounter
from spikedetect.core.detectors import seasonal
from spikedetect.files.sources import BatchReader, iter_batches, open_binary
from spikedetect.gc_policy import tune_collector
from spikedetect.replay.runner import Replay


@contextlib.contextmanager
def as_the_cli() -> Iterator[None]:
    """The garbage collector as every ``spikedetect`` command sets it (:mod:`spikedetect.gc_policy`)."""
    old = tune_collector()
    try:
        yield
    finally:
        gc.set_threshold(*old)


def read_decode(path: Path) -> int:
    n = 0
    loads = orjson.loads
    with as_the_cli(), open_binary(path) as f:  # the baseline under the same collector setting
        for batch in iter_batches(f):
            for line in batch:
                loads(line)
            n += len(batch)
    return n


def replay(path: Path, config: DetectorConfig, *, pure: bool = False, signals: bool = True) -> int:
    """What ``spikedetect replay FILE`` does, less writing its outputs: FileInput's reader (the
    kernel's line spans when it is built; lists of bytes, as ``iter_batches``, when ``pure``)
    and line numbers, the Replay driver."""
    with as_the_cli():
        r = Replay(config, signals=signals)  # signals=False: the count detector alone, what replay did before issue 18
        if pure:
            r.pipeline.counters[0].use_kernel(None)
        with open_binary(path) as f:
            reader = BatchReader(f, str(path), spans=not pure)
            for batch in reader:
                r.feed(batch, line_numbers=reader.line_numbers)
        r.finish()
        return r.summary.incidents_opened


def replay_numpy_closing(path: Path, config: DetectorConfig) -> int:
    """:func:`replay` with the compiled closing loops switched off (the numpy reference)."""
    saved = negbin._kernel
    negbin._kernel = seasonal._kernel = shares._kernel = window_scores._kernel = None
    try:
        return replay(path, config)
    finally:
        negbin._kernel = seasonal._kernel = shares._kernel = window_scores._kernel = saved


def count_only(path: Path, config: DetectorConfig, *, pure: bool = False) -> int:
    """Counting alone (WindowCounter: decode, validate, dedupe, windows, closed windows handed
    out), no scoring: what the compiled kernel replaces."""
    with as_the_cli():
        c = WindowCounter(config, pure=pure)
        windows = 0
        with open_binary(path) as f:
            for batch in BatchReader(f, str(path), spans=not pure):
                c.feed_batch(batch)
                windows += len(c.take_closed())
        c.finish()
        return windows + len(c.take_closed())


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
    ap.add_argument("--kinds", default="jsonl,jsonl.gz", help="input formats, comma-separated")
    ap.add_argument("--no-pure", action="store_true", help="skip the pure-Python counter's replay")
    ap.add_argument("--detector-only", action="store_true", help="also time the Detector alone")
    ap.add_argument("--count-only", action="store_true", help="also time counting alone (compiled and pure)")
    ap.add_argument("--signals-cost", action="store_true",
                    help="also time the replay without the composition / ingest-gap signals")
    ap.add_argument("--closing-cost", action="store_true",
                    help="also time the replay with the compiled closing loops off (numpy closing)")
    ap.add_argument("--smoke", action="store_true", help="tiny run (CI keeps the script alive)")
    args = ap.parse_args()
    if args.smoke:
        args.days, args.repeats = 0.05, 1
    config = DetectorConfig(detector=args.detector)
    compiled = kernel.count is not None
    print(f"counting kernel: {'compiled' if compiled else 'pure Python (not built, or SPIKEDETECT_PURE set)'}; "
          f"closing loops: {'numpy' if negbin._kernel is None else 'compiled'}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            path = Path(tmp) / f"suite.{kind}"
            n = simulated_file(path, days=args.days)
            times: dict[str, list[float]] = {"read_decode": [], "replay": []}
            if compiled and not args.no_pure:
                times["replay_pure"] = []
            if args.detector_only:
                times["detector_only"] = []
            if args.signals_cost:
                times["replay_without_signals"] = []
            if args.closing_cost and negbin._kernel is not None:
                times["replay_numpy_closing"] = []
            if args.count_only:
                times["count"] = []
                if compiled:
                    times["count_pure"] = []
            opened: dict[str, int] = {}
            runs = {"read_decode": lambda p=path: read_decode(p), "replay": lambda p=path: replay(p, config),
                    "replay_pure": lambda p=path: replay(p, config, pure=True),
                    "replay_without_signals": lambda p=path: replay(p, config, signals=False),
                    "replay_numpy_closing": lambda p=path: replay_numpy_closing(p, config),
                    "detector_only": lambda p=path: detector_only(p, config),
                    "count": lambda p=path: count_only(p, config),
                    "count_pure": lambda p=path: count_only(p, config, pure=True)}
            for _ in range(args.repeats):
                for name, spent in times.items():
                    t, got = timed(runs[name])
                    spent.append(t)
                    opened[name] = got
            for prefix in ("replay", "count"):
                if len({v for k, v in opened.items() if k.startswith(prefix) and k != "replay_without_signals"}) > 1:
                    raise SystemExit(f"compiled and pure runs differ: {opened}")
            b = median(times["read_decode"])
            res: dict[str, object] = {"events": n, "counting": "compiled" if compiled else "pure",
                                      "incidents_opened": opened["replay"]}
            line = f"{kind:9s} {n:,} events: read+decode {n / b:,.0f}/s"
            for name, spent in times.items():
                m = median(spent)
                res[f"{name}_events_per_s"] = n / m
                res[f"{name}_seconds"] = spent
                if name != "read_decode":
                    res[f"{name}_ratio_to_read_decode"] = b / m
                    line += f", {name} {n / m:,.0f}/s (ratio {b / m:.2f})"
            if "detector_only" in opened:
                res["region_incidents_opened"] = opened["detector_only"]
            results[kind] = res
            print(f"{line}; {opened['replay']} outage incidents; median of {args.repeats}")
    if not args.smoke:
        print("saved", save(f"replay-{args.detector}", {"args": vars(args), "results": results}))


if __name__ == "__main__":
    main()
