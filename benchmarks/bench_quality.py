"""Detection quality of every shipped detector on the scenario suite (several seeds).

    python -m benchmarks.bench_quality [--seeds 1,2,3,4,5] [--days 3] [--smoke]

For each seed: simulate the default ``suite`` scenario (all outage kinds and traps) and the
``quiet`` scenario (traps only), replay each through the core with every detector in
``DETECTORS`` at default settings, and evaluate against the ground truth. One table per
detector, pooled over seeds: outages detected, must-detect keys found, precision, false
alarms per day, trap alarms, median detection delay of large outages, median close delay.
"""

from __future__ import annotations

import argparse
import statistics

from rich.console import Console
from rich.table import Table

from benchmarks.common import save
from spikedetect.core import DETECTORS, Detector, DetectorConfig
from spikedetect.evaluate.score import evaluate
from spikedetect.evaluate.sustained import Outcome, run_all
from spikedetect.sim.simulate import Simulation, SimulationConfig


def run(lines: list[bytes], detector: str) -> list[dict]:
    det = Detector(DetectorConfig(detector=detector))
    events = []
    for i in range(0, len(lines), 20_000):
        events += det.feed_batch(lines[i:i + 20_000]).incidents
    events += det.flush()
    return [e.to_dict() for e in events]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    seeds = [1] if args.smoke else [int(s) for s in args.seeds.split(",")]
    days = 0.3 if args.smoke else args.days
    pooled: dict[str, dict] = {name: {"outages": 0, "detected": 0, "keys": 0, "keys_found": 0, "incidents": 0,
                                      "matched": 0, "false": 0, "days": 0.0, "traps": 0, "delays": [],
                                      "closes": [], "per_kind": {}} for name in DETECTORS}
    for seed in seeds:
        for scenario in ("suite", "quiet"):
            sim = Simulation(SimulationConfig(seed=seed, days=days, scenario=scenario))
            lines = list(sim.lines())
            for name in DETECTORS:
                r = evaluate(run(lines, name), sim.truth)
                p = pooled[name]
                p["outages"] += len(r.outages)
                p["detected"] += sum(o.detected for o in r.outages)
                p["keys"] += sum(len(o.must_detect) for o in r.outages)
                p["keys_found"] += sum(len(o.keys_found) for o in r.outages)
                p["incidents"] += r.incidents
                p["matched"] += r.matched_incidents
                p["false"] += r.unmatched_incidents
                p["days"] += r.days
                p["traps"] += r.trap_alarms
                p["delays"] += [o.detection_delay_windows for o in r.outages
                                if o.large and o.detection_delay_windows is not None]
                p["closes"] += [o.close_delay_s for o in r.outages if o.close_delay_s is not None]
                for o in r.outages:
                    k = p["per_kind"].setdefault(o.kind, [0, 0])
                    k[0] += o.detected
                    k[1] += 1
            print(f"seed {seed} {scenario}: {len(lines):,} events", flush=True)
    console = Console()
    summary = {}
    for name, p in pooled.items():
        row = {
            "outages_detected": f"{p['detected']}/{p['outages']}",
            "recall": p["detected"] / p["outages"] if p["outages"] else None,
            "key_recall": p["keys_found"] / p["keys"] if p["keys"] else None,
            "precision": p["matched"] / p["incidents"] if p["incidents"] else None,
            "false_alarms_per_day": p["false"] / p["days"] if p["days"] else 0.0,
            "trap_alarms": p["traps"],
            "median_detection_delay_windows_large": statistics.median(p["delays"]) if p["delays"] else None,
            "median_close_delay_min": statistics.median(p["closes"]) / 60 if p["closes"] else None,
            "detected_by_kind": {k: f"{d}/{n}" for k, (d, n) in sorted(p["per_kind"].items())},
        }
        summary[name] = row
        table = Table(title=f"detector {name} (seeds {','.join(map(str, seeds))}, {days:g} days each)",
                      show_header=False, title_justify="left")
        for key, value in row.items():
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            table.add_row(key, shown)
        console.print(table)
    summary["sustained"] = sustained(seeds, console, args.smoke)
    if not args.smoke:
        print("saved", save("quality", {"args": vars(args), "results": summary}))


def sustained(seeds: list[int], console: Console, smoke: bool) -> list[dict[str, object]]:
    """The minute-count scenarios of issue 14 (sim/sustained.py, run by evaluate/sustained.py), default detector, per seed."""
    table = Table(title=f"sustained scenarios, seasonal (seeds {','.join(map(str, seeds))})", title_justify="left")
    for col in ("scenario", "found", "delays (min)", "incidents", "max per key", "closed within (h)", "close reasons"):
        table.add_column(col)
    rows: dict[str, list[Outcome]] = {}
    for seed in seeds:
        for o in run_all(seed, only=1 if smoke else None):
            rows.setdefault(o.name, []).append(o)
    out = []
    for name, runs in rows.items():
        delays = [o.delay_min for o in runs if o.delay_min is not None]
        found = f"{sum(o.found for o in runs)}/{len(runs)}" if runs[0].outage else "-"
        closes = [o.closed_within_h for o in runs if o.closed_within_h is not None]
        reasons = sorted({r for o in runs for r in o.notes})
        table.add_row(name, found, ",".join(f"{d:g}" for d in delays) or "-", str(sum(o.incidents for o in runs)),
                      str(max(o.incidents_per_key_max for o in runs)), f"{max(closes):.1f}" if closes else "-",
                      ",".join(reasons) or "-")
        out.append({"scenario": name, "found": found, "delays_min": delays,
                    "incidents": sum(o.incidents for o in runs), "closed_within_h": max(closes) if closes else None,
                    "close_reasons": reasons})
    Console(width=max(console.width, 150)).print(table)  # wide enough for the scenario names
    return out


if __name__ == "__main__":
    main()
