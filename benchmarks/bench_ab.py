"""A/B of two source trees on one input file: replay (and read+decode, counting) CPU seconds,
base and new alternating, one fresh process per run, medians.

    git archive <commit> | tar -x -C /tmp/base   # and build its kernels: cd /tmp/base && make venv
    python -m benchmarks.bench_ab --base /tmp/base --new . --days 8 --rounds 3 --what read,replay

On a shared, noisy machine one run of each tree in turn (what ``bench_replay`` gives per tree)
can differ by 1.4x from the next; alternating the trees run by run and taking medians of CPU
seconds is what a small speed-up needs. Each run imports ``benchmarks.bench_replay`` of its own
tree (``PYTHONPATH=<tree>/src:<tree>``, with the kernels built in that tree), so any commit with
that module can be the base. The ratio to read+decode is each tree's own read median over its
replay median. The incidents each run opened must agree, or the script exits 1.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import simulated_file, two_trees

# what one run does, in the tree under test (its own benchmarks.bench_replay)
CHILD = """
import json, sys, time
from pathlib import Path
from benchmarks.bench_replay import count_only, read_decode, replay
from spikedetect.core import DetectorConfig
what, path = sys.argv[1], Path(sys.argv[2])
c0 = time.process_time()
got = read_decode(path) if what == "read" else {"replay": replay, "count": count_only}[what](path, DetectorConfig())
print(json.dumps({"s": time.process_time() - c0, "got": got}))
"""


def one_run(tree: Path, what: str, path: Path) -> tuple[float, int]:
    """CPU seconds and result of one run of ``what`` in ``tree``."""
    env = dict(os.environ, PYTHONPATH=f"{tree}/src:{tree}")
    out = subprocess.run([sys.executable, "-c", CHILD, what, str(path)], cwd=tree, env=env,
                         capture_output=True, text=True, check=True)
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return float(d["s"]), int(d["got"])


def main() -> None:
    ap, two = two_trees(__doc__, days=3.0, what="read,replay")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    trees = two(a)
    whats = a.what.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        path = a.file or Path(tmp) / "ab.jsonl"
        if a.file is None:
            simulated_file(path, days=0.05 if a.smoke else a.days)
        secs: dict[tuple[str, str], list[float]] = {}
        got: dict[str, set[int]] = {}
        for r in range(1 if a.smoke else a.rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for name in order:
                for what in whats:
                    s, n = one_run(trees[name], what, path)
                    secs.setdefault((name, what), []).append(s)
                    got.setdefault(what, set()).add(n)
    for (name, what), v in secs.items():
        print(f"{what:7} {name:4} median {statistics.median(v):.2f} s CPU (min {min(v):.2f}; "
              f"{', '.join(f'{x:.2f}' for x in v)})")
    for what in whats:
        if what == "read":
            continue
        ratios = {name: statistics.median(secs[(name, "read")]) / statistics.median(secs[(name, what)])
                  for name in trees if (name, "read") in secs}
        speed = statistics.median(secs[("base", what)]) / statistics.median(secs[("new", what)])
        print(f"{what}: new is {speed:.2f}x base" + "".join(f"; {n} ratio to read+decode {x:.3f}"
                                                            for n, x in ratios.items()))
    differ = [w for w, s in got.items() if len(s) > 1]
    if differ:
        sys.exit(f"the trees disagree on {differ}: {[sorted(got[w]) for w in differ]}")


if __name__ == "__main__":
    main()
