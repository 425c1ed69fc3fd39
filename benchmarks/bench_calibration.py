"""Per-key score calibration: the numpy bank (core/evidence.py) against River's streaming
quantiles, per key and closed window.

    python -m benchmarks.bench_calibration [--keys 10000] [--windows 50] [--repeats 3] [--smoke]

Both learn the same thing: for every key, the 99th and 99.9th percentiles of its scores on
four horizons (8 quantiles per key). numpy: ``evidence.learn_calibration`` on all keys of a
window at once. River: one ``stats.Quantile`` per quantile per key (P-square), updated one
score at a time; timed on a sample of keys and reported per key. Medians over --repeats.
"""

from __future__ import annotations

import argparse

import numpy as np
from river import stats

from benchmarks.common import median, save, timed
from spikedetect.core import evidence
from spikedetect.core.detectors import SeasonalBaseline


def numpy_bank(keys: int, windows: int, scores: np.ndarray) -> float:
    bank = SeasonalBaseline(60_000)
    for _ in range(keys):
        bank.add_row()
    learn = np.ones(keys, dtype=bool)
    t, _ = timed(lambda: [evidence.learn_calibration(bank.cols, keys, learn, scores[w]) for w in range(windows)])
    return t / (keys * windows)


def river_quantiles(keys: int, windows: int, scores: np.ndarray) -> float:
    qs = [[stats.Quantile(p) for p in (0.99, 0.999) for _ in range(4)] for _ in range(keys)]

    def run() -> None:
        for w in range(windows):
            s = scores[w]
            for k in range(keys):
                row = qs[k]
                for h in range(4):
                    x = float(s[h, k])
                    row[h].update(x)
                    row[4 + h].update(x)

    t, _ = timed(run)
    return t / (keys * windows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--windows", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.keys, args.windows, args.repeats = 200, 3, 1
    rng = np.random.default_rng(1)
    scores = rng.exponential(0.5, size=(args.windows, 4, args.keys))
    river_keys = max(1, args.keys // 10)
    np_us = median([numpy_bank(args.keys, args.windows, scores) for _ in range(args.repeats)]) * 1e6
    rv_us = median([river_quantiles(river_keys, args.windows, scores) for _ in range(args.repeats)]) * 1e6
    state = 4 * 2 * 4 + 4  # float32 q99 and q999 per horizon, and the count
    print(f"per key and window: numpy {np_us:.3f} us, River stats.Quantile x8 {rv_us:.2f} us "
          f"({rv_us / np_us:.0f}x); numpy state {state} B per key")
    if not args.smoke:
        print("saved", save("calibration", {"args": vars(args), "numpy_us": np_us, "river_us": rv_us,
                                            "numpy_state_bytes": state}))


if __name__ == "__main__":
    main()
