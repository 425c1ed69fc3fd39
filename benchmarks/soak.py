"""Long reliability soaks on the real broker (the CI versions live in tests/stream/test_reliability_*).

    python -m benchmarks.soak [--kills 20] [--minutes 15] [--seed N] [--days 2] [--scale 0.02]
    python -m benchmarks.soak --cardinality 1000000 [--max-keys 1000] [--max-depth 3]

Kill soak (default): a simulated scenario ("widespread") is produced from a background
thread, paced so that production spans about two thirds of ``--minutes``, while the worker
is SIGKILLed ``--kills`` times at seeded random moments and restarted at once. Afterwards
the deduplicated incident stream must equal the offline replay, every window count must
equal the replay's, and no worker may have logged a crash. Prints the kill points, each
worker life's peak RSS, and saves benchmarks/out/soak.json.

Cardinality soak (``--cardinality N``): N distinct regions in each of two services, with
``max_keys_per_service``/``max_region_depth`` capped; the excess must be dead-lettered with
``too_many_keys``/``region_too_deep`` exactly as a brute-force count says, admitted reports
counted exactly, the worker must live, and its peak RSS is reported (saved as
benchmarks/out/soak-cardinality.json). ``--max-keys 0`` leaves the default cap (100,000)
to show what an uncapped attack costs.

Exit status 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from tests.stream.harness import LiveRun, RssSampler, count_diff, incident_diff, replay_lines

from benchmarks.common import save
from spikedetect.sim.simulate import SimulationConfig, generate


def kill_soak(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict[str, Any]:
    cfg = SimulationConfig(
        seed=args.sim_seed,
        days=args.days,
        scale=args.scale,
        peak_scale=args.scale * 2.5,
        scenario="widespread",
    )
    lines = list(generate(cfg))
    t0 = time.perf_counter()
    want, want_counts = replay_lines(lines, workdir)
    print(f"{len(lines)} reports, {len(want)} incident events offline ({time.perf_counter() - t0:.1f}s)")
    duration_s = args.minutes * 60
    rng = random.Random(args.seed)
    kill_at = sorted(rng.uniform(3.0, duration_s) for _ in range(args.kills))
    print(f"seed {args.seed}: SIGKILL at {[round(t, 1) for t in kill_at]} s")
    run = LiveRun(
        bootstrap, workdir, extra={"SPIKEDETECT_IDLE_MS": "5000", "SPIKEDETECT_SUMMARY_INTERVAL_S": "10"}
    )
    run.create_input()
    lives: list[dict[str, Any]] = []
    start = time.monotonic()
    producer = run.produce_in_background(lines, rate_per_s=len(lines) / (0.65 * duration_s))
    worker = run.start_worker()
    rss = RssSampler(worker.pid)
    try:
        for i, at in enumerate(kill_at):
            time.sleep(max(0.0, start + at - time.monotonic()))
            run.assert_alive()
            rss.stop()
            run.kill(worker)
            lives.append(
                {
                    "kill": i + 1,
                    "at_s": round(at, 1),
                    "produced": producer.sent,
                    "peak_rss_mb": round(rss.peak_mb),
                }
            )
            print(
                f"kill {i + 1:3d} at {at:7.1f}s: {producer.sent}/{len(lines)} produced, "
                f"peak RSS of that life {rss.peak_mb:.0f} MB"
            )
            worker = run.start_worker()
            rss = RssSampler(worker.pid)
        producer.finish(timeout_s=duration_s + 600)
        got = run.wait_for_incidents(len(want), timeout_s=600, settle_s=10)
        counts = run.wait_for_windows(want_counts, timeout_s=300)
        rss.stop()
        lives.append({"kill": None, "peak_rss_mb": round(rss.peak_mb)})
    finally:
        run.stop_all()
    elapsed = time.monotonic() - start
    crashes = run.crashes()
    ok = got == want and counts == want_counts and not crashes
    if got != want:
        print("INCIDENTS DIFFER:", incident_diff(got, want))
    if counts != want_counts:
        print("WINDOW COUNTS DIFFER:", count_diff(counts, want_counts))
    for line in crashes[:10]:
        print("CRASH:", line)
    print(
        f"{'OK' if ok else 'FAILED'}: {args.kills} kills in {elapsed:.0f}s, {len(want)} incident events, "
        f"{len(want_counts)} window counts; peak RSS {max(life['peak_rss_mb'] for life in lives)} MB"
    )
    return {
        "mode": "kills",
        "ok": ok,
        "kills": args.kills,
        "seed": args.seed,
        "minutes": args.minutes,
        "reports": len(lines),
        "incident_events": len(want),
        "elapsed_s": round(elapsed, 1),
        "lives": lives,
        "crashes": crashes[:20],
    }


def cardinality_soak(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict[str, Any]:
    from tests.stream.test_reliability_overload import cardinality_stream, expected_cardinality

    max_keys = args.max_keys or 100_000
    stream = cardinality_stream(args.cardinality)
    reasons, want_counts = expected_cardinality(stream, max_keys, args.max_depth)
    n_keys = len({(s, k) for s, k, _ in want_counts})
    print(
        f"{len(stream)} reports over {args.cardinality} regions per service; expected {n_keys} keys, {reasons}"
    )
    extra = {"SPIKEDETECT_MAX_REGION_DEPTH": str(args.max_depth), "SPIKEDETECT_SUMMARY_INTERVAL_S": "10"}
    if args.max_keys:
        extra["SPIKEDETECT_MAX_KEYS_PER_SERVICE"] = str(args.max_keys)
    run = LiveRun(bootstrap, workdir, extra=extra)
    run.create_input()
    start = time.monotonic()
    try:
        worker = run.start_worker()
        run.wait_for_log("ingest assigned partitions", timeout_s=180)
        rss = RssSampler(worker.pid)
        time.sleep(1.0)
        baseline = rss.mb_at(0)
        run.produce_records(stream)
        print(f"produced in {time.monotonic() - start:.0f}s; waiting for the windows")
        counts = run.wait_for_windows(want_counts, timeout_s=args.minutes * 60)
        n_dead = sum(reasons.values())
        dead = run.read("dlq")
        deadline = time.monotonic() + 300
        while len(dead) < n_dead and time.monotonic() < deadline:
            time.sleep(5)
            dead = run.read("dlq")
        alive = worker.poll() is None
        rss.stop()
    finally:
        run.stop_all()
        run.delete_topics()
    got_reasons: dict[str, int] = {}
    for d in dead:
        r = d.headers["spikedetect.reason"].decode()
        got_reasons[r] = got_reasons.get(r, 0) + 1
    crashes = run.crashes()
    ok = alive and not crashes and got_reasons == reasons and counts == want_counts
    if counts != want_counts:
        print("WINDOW COUNTS DIFFER:", count_diff(counts, want_counts))
    print(
        f"{'OK' if ok else 'FAILED'}: dead letters {got_reasons} (want {reasons}); worker RSS {baseline:.0f} MB "
        f"before, peak {rss.peak_mb:.0f} MB; {time.monotonic() - start:.0f}s"
    )
    return {
        "mode": "cardinality",
        "ok": ok,
        "regions_per_service": args.cardinality,
        "max_keys_per_service": max_keys,
        "max_region_depth": args.max_depth,
        "keys": n_keys,
        "dead_letters": got_reasons,
        "rss_before_mb": round(baseline),
        "rss_peak_mb": round(rss.peak_mb),
        "crashes": crashes[:20],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--minutes", type=float, default=15.0)
    p.add_argument("--seed", type=int, default=int(os.environ.get("SPIKEDETECT_SOAK_SEED", "20261127")))
    p.add_argument("--sim-seed", type=int, default=5)
    p.add_argument("--days", type=float, default=2.0)
    p.add_argument("--scale", type=float, default=0.02)
    p.add_argument(
        "--cardinality", type=int, default=0, help="distinct regions per service (cardinality soak)"
    )
    p.add_argument(
        "--max-keys", type=int, default=1000, help="max_keys_per_service (0: the default, 100,000)"
    )
    p.add_argument("--max-depth", type=int, default=3, help="max_region_depth")
    p.add_argument("--bootstrap", default=os.environ.get("SPIKEDETECT_KAFKA", "127.0.0.1:9092"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="spikedetect-soak-") as tmp:
        if args.cardinality:
            result = cardinality_soak(args, args.bootstrap, Path(tmp))
            path = save("soak-cardinality", result)
        else:
            result = kill_soak(args, args.bootstrap, Path(tmp))
            path = save("soak", result)
    print(f"saved {path}")
    print(orjson.dumps({k: v for k, v in result.items() if k not in ("lives", "crashes")}).decode())
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
