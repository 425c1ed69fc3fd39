"""Memory and state per active key (10k, 100k, 1M keys), and changelog bytes per closed window.

    python -m benchmarks.bench_memory [--keys 10000,100000,1000000] [--detector seasonal] [--smoke]

Each size runs in a fresh subprocess: a Scorer (the owner's in-memory state) with N active
keys - every key reported in each of a few closed windows, so every baseline row is live -
plus, like the live owner's memory table, one serialised record per key. Baseline in the same
run: the same subprocess before any key exists. Reported:

* RSS per key = (RSS after - RSS before) / N (scorer + table copy, as in a live owner);
* serialised state per key = mean size of the per-key record the owner writes to its
  changelogged table (baseline row + incident tracker + bookkeeping), with every baseline
  column overwritten by non-round floats as after weeks of learning (sizes depend on it);
* changelog bytes per closed window = every key record written after one window closes;
* seconds to close one window at that size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from benchmarks.common import save

CHILD = r"""
import json, sys, time, gc
import psutil, orjson
from spikedetect.core import DetectorConfig
from spikedetect.core.counter import ClosedWindow
from spikedetect.core.scorer import Scorer
from spikedetect.core.state import key_record_bytes
n_keys, detector = int(sys.argv[1]), sys.argv[2]
proc = psutil.Process()
gc.collect()
rss0 = proc.memory_info().rss
# leaves: 4 levels: country/state/city; keys = leaves + states + countries + "*"
countries, states_per = 50, 20
leaves = max(1, n_keys - countries * states_per - countries - 1)
regions = [f"C{i % countries:02d}/S{(i // countries) % states_per:02d}/city{i}" for i in range(leaves)]
cfg = DetectorConfig(detector=detector)
s = Scorer(cfg)
W = cfg.window_ms
t_close = []
for w in range(3):
    ws = 1_795_651_200_000 + w * W
    counts = {(r, "login", "app"): 1 + (hash((r, w)) & 3) for r in regions}
    s.add_partial(0, ClosedWindow(ws, {"svc": counts}))
    s.set_watermark(0, ws + W)
    t = time.perf_counter(); s.close_ready(); t_close.append(time.perf_counter() - t)
# rows as after weeks of learning: every column holds non-round floats (serialised sizes depend on it)
import numpy as np
rng = np.random.default_rng(1)
for name, arr in s.keyspace.baseline.cols.items():
    if arr.dtype.kind == "f":
        arr[: s.keyspace.size] = rng.uniform(0.5, 50.0, arr[: s.keyspace.size].shape).astype(arr.dtype)
records = {f"0|k|{sk[0]}|{sk[1]}": key_record_bytes(s, sk) for sk in s.keyspace.keys}
gc.collect()
rss1 = proc.memory_info().rss
size = s.keyspace.size
rec_bytes = sum(len(k) + len(v) for k, v in records.items())
print(json.dumps({"keys": size, "rss_before": rss0, "rss_after": rss1,
                  "rss_per_key": (rss1 - rss0) / size, "state_bytes_per_key": rec_bytes / size,
                  "changelog_bytes_per_window": rec_bytes, "close_seconds": t_close[-1]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", default="10000,100000,1000000")
    ap.add_argument("--detector", default="seasonal")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    sizes = [2000] if args.smoke else [int(k) for k in args.keys.split(",")]
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), args.detector], capture_output=True,
                             text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{row['keys']:>9,} keys: RSS {row['rss_after'] / 2**20:,.0f} MiB (+{row['rss_per_key']:,.0f} B/key), "
              f"state {row['state_bytes_per_key']:,.0f} B/key, changelog {row['changelog_bytes_per_window'] / 2**20:,.1f}"
              f" MiB/window, close {row['close_seconds']:.3f} s  ({time.perf_counter() - t0:.0f}s)")
    if not args.smoke:
        print("saved", save(f"memory-{args.detector}", {"args": vars(args), "results": rows}))


if __name__ == "__main__":
    main()
