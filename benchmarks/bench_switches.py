"""Replay CPU seconds with a set of the compiled closing loops' SIMD paths on, then off, alternating
in one process, medians: what those paths give alone, with everything else the same.

    python -m benchmarks.bench_switches --file /tmp/sim8.jsonl --rounds 5              # the AVX quads
    python -m benchmarks.bench_switches --file /tmp/sim8.jsonl --rounds 5 --set sse2   # the SSE2 pairs

``avx``: the four-row paths (``learn_quad_avx``, ``tail_avx``, ``nb_avx``, ``calibration_avx``,
``record_avx``) against the SSE2 pairs they run before. ``sse2``: the pairs (``learn_pair_sse2``,
``tail_sse2``, ``calibration_sse2``, ``record_sse2``, ``trimmed_sse2``) against the scalar loops,
with the AVX paths off both ways. Each switch is the one its kernel's tests use to hold the paths
to each other (the same bits); the incidents each run opened must agree, or the script exits 1.
Where the CPU lacks the instructions a switch says off either way, and the ratio is ~1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_replay import replay
from benchmarks.common import save, simulated_file
from spikedetect.core import DetectorConfig
from spikedetect.kernel import closing

SETS = {"avx": ("learn_quad_avx", "tail_avx", "nb_avx", "calibration_avx", "record_avx"),
        "sse2": ("learn_pair_sse2", "tail_sse2", "calibration_sse2", "record_sse2", "trimmed_sse2")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", type=Path, help="input JSONL (default: a simulated one of --days)")
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", choices=sorted(SETS), default="avx")
    ap.add_argument("--smoke", action="store_true", help="tiny run, one round")
    a = ap.parse_args()
    kernel = closing  # the loops replay uses: None when not built or with SPIKEDETECT_PURE=1
    if kernel is None:
        print("no compiled closing loops (not built, or SPIKEDETECT_PURE=1): nothing to switch")
        return
    switches = [getattr(kernel, name) for name in SETS[a.set]]
    if a.set == "sse2":
        for name in SETS["avx"]:
            getattr(kernel, name)(False)
    before = [s() for s in switches]
    secs: dict[bool, list[float]] = {True: [], False: []}
    got: set[int] = set()
    with tempfile.TemporaryDirectory() as tmp:
        path = a.file or Path(tmp) / "switches.jsonl"
        if a.file is None:
            simulated_file(path, days=0.05 if a.smoke else a.days)
        try:
            for r in range(1 if a.smoke else a.rounds):
                for on in ((True, False) if r % 2 == 0 else (False, True)):
                    for s in switches:
                        s(on)
                    c0 = time.process_time()
                    got.add(replay(path, DetectorConfig()))
                    secs[on].append(time.process_time() - c0)
        finally:
            for s, b in zip(switches, before, strict=True):
                s(b)
    med = {on: statistics.median(v) for on, v in secs.items()}
    print(f"{a.set} paths ({', '.join(SETS[a.set])}); this CPU runs them: {all(before)}")
    print(f"replay {a.set} on {med[True]:.3f} s CPU, off {med[False]:.3f} s CPU (median of {len(secs[True])}): "
          f"on is {med[False] / med[True]:.3f}x off")
    save(f"switches-{a.set}", {"set": a.set, "seconds": {"on": secs[True], "off": secs[False]},
                               "incidents": sorted(got)})
    if len(got) > 1:
        print(f"the runs opened different numbers of incidents: {sorted(got)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
