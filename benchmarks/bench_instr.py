"""Instructions, not seconds: an A/B of two source trees' replay counted under Valgrind's
cachegrind, for changes too small to resolve by time on a noisy shared machine.

    python -m benchmarks.bench_instr --base /tmp/base --new . --file /tmp/sim3.jsonl [--what replay,read]

Each tree runs each ``what`` once under ``valgrind --tool=cachegrind --cache-sim=no`` (one fresh
process; ``PYTHONHASHSEED=0``, so dicts and sets are walked alike run to run), and once doing
nothing but the same imports; the difference is the instructions the work itself executed. The
count is repeatable to a few parts in 10,000 where CPU seconds on this machine move by 10-50 %
(RESULTS.md, section 2, "Eleventh session"), so it tells whether a change removed work. It is
not time: a cache miss or a stalled load costs one instruction here and hundreds of cycles
there, so memory-bound changes (most of the closing kernels) must still be timed (``bench_ab``).
Cachegrind runs ~25x slower than native: a 3-day file takes ~2 minutes a run. Needs
``valgrind`` on PATH (Debian's ``valgrind`` package); ``--smoke`` runs a tiny file, new tree
against itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import save, simulated_file, two_trees

# what one run does, in the tree under test (its own benchmarks.bench_replay); "none": imports only
CHILD = """
import sys
from pathlib import Path
from benchmarks.bench_replay import count_only, read_decode, replay
from spikedetect.core import DetectorConfig
what, path = sys.argv[1], Path(sys.argv[2])
if what == "read":
    read_decode(path)
elif what != "none":
    {"replay": replay, "count": count_only}[what](path, DetectorConfig())
"""

_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(tree: Path, what: str, path: Path) -> int:
    """Instructions cachegrind counted for one run of ``what`` in ``tree``."""
    env = dict(os.environ, PYTHONPATH=f"{tree}/src:{tree}", PYTHONHASHSEED="0")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                              f"--cachegrind-out-file={tmp}/cg.out", sys.executable, "-c", CHILD, what, str(path)],
                             cwd=tree, env=env, capture_output=True, text=True, check=True)
    found = _REFS.search(out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output: {out.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    ap, two = two_trees(__doc__, days=1.0, what="replay")
    a = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("bench_instr needs valgrind on PATH (Debian: apt install valgrind)")
    trees = two(a)
    counts: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = a.file or Path(tmp) / "instr.jsonl"
        if a.file is None:
            simulated_file(path, days=0.01 if a.smoke else a.days)
        for name, tree in trees.items():
            same = [other for other, t in trees.items() if t == tree and other in counts]
            if same:  # (--smoke: one tree twice; its counts are the same)
                counts[name] = counts[same[0]]
                continue
            idle = instructions(tree, "none", path)
            counts[name] = {what: instructions(tree, what, path) - idle for what in a.what.split(",")}
            counts[name]["imports"] = idle
    for what in counts["base"]:
        b, n = counts["base"][what], counts["new"][what]
        print(f"{what:8} base {b / 1e9:8.3f} G  new {n / 1e9:8.3f} G  new/base {n / b:.4f}")
    save("bench_instr", {"file": str(a.file), "counts": counts})


if __name__ == "__main__":
    main()
