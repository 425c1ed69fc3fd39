"""Cost of closing windows: process CPU time inside ``Scorer.close_ready`` while the core
replays a simulated day, against the whole replay's CPU time in the same run.

    python -m benchmarks.bench_close [--days 1] [--repeats 3] [--smoke]

The input is the default ``suite`` scenario (seed 1, ~1,800 keys, 1,440 windows a day), fed in
batches of 20,000 reports to a :class:`~spikedetect.core.Detector`. Reported: medians over
--repeats of the CPU seconds spent closing windows (merge, score, evidence, calibration,
incident steps, learning) and of the whole replay (counting included), the closing share, and
the cost per closed window, and the CPU seconds spent in ``LeafWindow.breakdown`` and ``breakdown_into`` (the category,
source and child counts of keys whose incident state may change); then the median wall time of
one call of the per-key row loops (the seasonal ``expect`` and ``learn_window``, and
``gather_evidence``: the evidence rings' record and horizon sums), which are memory-bound - or,
where the seasonal path is fused (:mod:`spikedetect.core.window_fused`), of its three kernel
calls: scoring up to the tails' logs, after them, and learning. Last, the CPU microseconds a
window of each step of ``Scorer._close`` (the leaf window, observe, score, incident steps, learn,
signals), and of the incident steps per row they stepped. CPU time, not wall time, so other processes on a shared machine disturb it less (they
still do, through caches and shared cores).
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import median, save
from spikedetect.core import Detector, DetectorConfig, window_fused, window_scores
from spikedetect.core import scorer as scorer_module
from spikedetect.core.detectors.seasonal import SeasonalBaseline
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.scorer import Scorer
from spikedetect.sim.simulate import Simulation, SimulationConfig

LOOPS: tuple[tuple[object, str], ...] = (
    (SeasonalBaseline, "expect"), (window_scores, "gather_evidence"), (SeasonalBaseline, "learn_window"))
if window_fused._kernel is not None:  # the fused path's calls, where it runs
    LOOPS += ((window_fused._kernel, "fused_score_first"), (window_fused._kernel, "fused_score_second"),
              (window_fused._kernel, "fused_learn"))


# the steps of Scorer._close: (label, owner, attribute); module functions as the scorer module sees them
STEPS: tuple[tuple[str, object, str], ...] = (
    ("merge", Scorer, "_merge"), ("leaf window", LeafWindow, "of"), ("observe", scorer_module, "observe"),
    ("score", scorer_module, "score_window"), ("incident steps", scorer_module, "step_incidents"),
    ("learn", Scorer, "_learn"), ("signals and report", Scorer, "_report"))


def time_calls(owner: object, name: str, sink: list[float], clock: Callable[[], float] = time.perf_counter) -> None:
    """Wrap ``owner.name`` so each call's seconds (``clock``: wall by default) go to ``sink``. A
    class's staticmethod or classmethod stays one (the wrapper, of the same kind, calls the
    function inside it), so it is called as before."""
    held = inspect.getattr_static(owner, name)
    kind = type(held) if isinstance(owner, type) and isinstance(held, (staticmethod, classmethod)) else None
    original = held.__func__ if kind is not None else getattr(owner, name)

    def timed(*args: object, **kwargs: object) -> object:
        t = clock()
        try:
            return original(*args, **kwargs)
        finally:
            sink.append(clock() - t)

    setattr(owner, name, kind(timed) if kind is not None else timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.days, args.repeats = 0.05, 1
    lines = list(Simulation(SimulationConfig(seed=1, days=args.days, scenario="suite")).lines())
    spent = [0.0]
    close_ready = Scorer.close_ready

    def timed_close(self: Scorer, until_ms: int | None = None) -> list:  # type: ignore[type-arg]
        t = time.process_time()
        try:
            return close_ready(self, until_ms)
        finally:
            spent[0] += time.process_time() - t

    Scorer.close_ready = timed_close  # type: ignore[method-assign]
    in_breakdown: list[float] = []  # LeafWindow.breakdown(_into): the frame's arrays or the dicts' walk
    for name in ("breakdown", "breakdown_into"):
        time_calls(LeafWindow, name, in_breakdown, time.process_time)
    calls: dict[str, list[float]] = {name: [] for _, name in LOOPS}
    for owner, name in LOOPS:
        time_calls(owner, name, calls[name])
    steps: dict[str, list[float]] = {label: [] for label, _, _ in STEPS}
    for label, owner, name in STEPS:
        time_calls(owner, name, steps[label], time.process_time)
    stepped: list[int] = []  # rows the incident machine saw, per window (the last repeat)
    timed_steps = scorer_module.step_incidents

    def counted_steps(*a: Any) -> Any:
        got = timed_steps(*a)
        stepped.append(len(got.stepped))
        return got

    scorer_module.step_incidents = counted_steps
    total, closing, breakdowns, windows = [], [], [], 0
    for _ in range(args.repeats):
        spent[0] = 0.0
        in_breakdown.clear()
        stepped.clear()
        for sink in steps.values():
            sink.clear()
        t = time.process_time()
        det = Detector(DetectorConfig())
        for i in range(0, len(lines), 20_000):
            det.feed_batch(lines[i:i + 20_000])
        det.flush()
        total.append(time.process_time() - t)
        closing.append(spent[0])
        breakdowns.append(sum(in_breakdown))
        windows = det.scorer.stats.windows_closed
    t_all, t_close = median(total), median(closing)
    print(f"{len(lines):,} reports, {windows:,} windows, {det.scorer.keyspace.size:,} keys: replay {t_all:.2f} s CPU, "
          f"closing {t_close:.2f} s CPU ({t_close / t_all:.0%}), {t_close / max(windows, 1) * 1e3:.2f} ms per window "
          f"(median of {args.repeats}); breakdowns {median(breakdowns):.2f} s CPU")
    print("row loops, median per call: " + ", ".join(f"{name} {median(v) * 1e6:.1f} us" for name, v in calls.items()
                                                     if v))
    per_window = {label: sum(v) / max(windows, 1) * 1e6 for label, v in steps.items()}  # the last repeat's
    per_row = sum(steps["incident steps"]) / sum(stepped) * 1e6 if sum(stepped) else None
    print("steps of closing, CPU us per window (last repeat): "
          + ", ".join(f"{label} {us:.0f}" for label, us in per_window.items())
          + ("" if per_row is None else f"; incident steps {per_row:.2f} us per stepped row ({sum(stepped):,} rows)"))
    if not args.smoke:
        print("saved", save("close", {"args": vars(args), "replay_cpu_s": total, "close_cpu_s": closing,
                                      "breakdown_cpu_s": breakdowns, "windows": windows,
                                      "loop_median_us": {k: median(v) * 1e6 for k, v in calls.items() if v},
                                      "step_cpu_us_per_window": per_window, "stepped_rows": sum(stepped),
                                      "step_cpu_us_per_stepped_row": per_row}))


if __name__ == "__main__":
    main()
