"""Stage-2 capacity, live cross-check: one real worker closing windows of one big service.

    python -m benchmarks.bench_owner_live [--keys 50000] [--windows 6] [--reports 50000] [--repeats 3] [--smoke]

The same service as ``bench_owner_capacity`` (the simulator's geography split into
localities until it has --keys keys): window 0 has one report from every leaf, so every key
exists from then on, windows 1..--windows are drawn as there (--reports per window, split
over the leaves by share). Every report is produced to a fresh 4-partition topic, keyed by
region, then reports of a window four later from 400 leaves (every partition's watermark moves
past the last window; idle_ms is 10 min, so no window closes by idleness); then one
``spikedetect worker`` (fresh app id, --repeats times) reads it. Reported from its /metrics once every
window is closed: ``spikedetect_scoring_seconds`` (the owner's time per closed window, as
``stream/owner.py`` observes it: scoring, publishing with acks awaited, the table writes of
every key and the wait for Faust's producer buffer) as sum / count, the median over the
workers, and the keys gauge.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.bench_live import run_until
from benchmarks.bench_owner_capacity import START_MS, WINDOW_MS, geography, window_counts
from benchmarks.common import median, save
from spikedetect.stream.scrape import scrape


async def produce(bootstrap: str, topic: str, regions: list[str], shares: np.ndarray, reports: float,
                  windows: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1 << 20)
    await producer.start()
    rng = np.random.default_rng(17)
    n = 0
    for w in range(windows + 1):
        ws = START_MS + w * WINDOW_MS
        if w == 0:
            cells = [(r, "login", "app", 1) for r in regions]
        else:
            cells = [(*k, c) for part in window_counts(rng, regions, shares, reports, None) for k, c in part.items()]
        for region, category, source, count in cells:
            for _ in range(count):
                value = orjson.dumps({"ts": ws + (n * 7919) % WINDOW_MS, "service": "svc", "region": region,
                                      "category": category, "source": source})
                await producer.send(topic, value, key=region.encode())
                n += 1
    # a later window on every partition moves the watermarks past the last window (no idle path)
    for region in regions[:400]:
        value = orjson.dumps({"ts": START_MS + (windows + 4) * WINDOW_MS, "service": "svc", "region": region,
                              "category": "login", "source": "app"})
        await producer.send(topic, value, key=region.encode())
    await producer.flush()
    await producer.stop()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default=os.environ.get("SPIKEDETECT_KAFKA", "127.0.0.1:9092"))
    ap.add_argument("--keys", type=int, default=50_000)
    ap.add_argument("--windows", type=int, default=6)
    ap.add_argument("--reports", type=float, default=50_000)
    ap.add_argument("--repeats", type=int, default=3, help="fresh workers reading the same topic")
    ap.add_argument("--port", type=int, default=16199)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.keys, args.windows, args.reports, args.repeats = 800, 2, 2_000.0, 1
    regions, shares, planned = geography(args.keys)
    topic = f"cap-{uuid.uuid4().hex[:8]}-reports"
    t0 = time.perf_counter()
    n = asyncio.run(produce(args.bootstrap, topic, regions, shares, args.reports, args.windows))
    print(f"produced {n:,} reports ({args.windows + 1} windows, {len(regions):,} leaves, {planned:,} keys) "
          f"in {time.perf_counter() - t0:.0f}s")
    runs = [one_worker(args, topic, 2 * planned) for _ in range(args.repeats)]
    per_window = median([r["per_window_s"] for r in runs])
    keys, windows, calls = runs[-1]["keys"], runs[-1]["windows"], runs[-1]["calls"]
    print(f"{keys:,.0f} keys live: {windows:.0f} windows closed in {calls:.0f} calls, scoring_seconds mean "
          f"{per_window * 1e3:,.1f} ms per window ({per_window / max(keys, 1) * 1e6:.1f} us per key; median of "
          f"{args.repeats}: " + ", ".join(f"{r['per_window_s']:.2f}" for r in runs) + f" s); {n:,} reports")
    if not args.smoke:
        print("saved", save("owner-live", {"args": vars(args), "reports": n, "per_window_s": per_window, "runs": runs}))


def one_worker(args: argparse.Namespace, topic: str, max_keys: int) -> dict[str, float]:
    """One fresh worker (new app id) reads the topic until every window is closed; its /metrics."""
    app = f"cap-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmpdir:
        log = Path(tmpdir) / "worker.log"
        env = dict(os.environ, SPIKEDETECT_KAFKA=args.bootstrap, SPIKEDETECT_APP_ID=app, SPIKEDETECT_INPUT_TOPIC=topic,
                   SPIKEDETECT_INCIDENTS_TOPIC=f"{app}-incidents", SPIKEDETECT_DLQ_TOPIC=f"{app}-dlq",
                   SPIKEDETECT_WEB_PORT=str(args.port), SPIKEDETECT_IDLE_MS="600000",
                   SPIKEDETECT_MAX_KEYS_PER_SERVICE=str(max_keys), SPIKEDETECT_SESSION_TIMEOUT_MS="60000",
                   SPIKEDETECT_DATADIR=str(Path(tmpdir) / app), SPIKEDETECT_LOG_LEVEL="warn")
        seen: dict[str, float] = {}

        def done() -> tuple[bool, bool]:
            for name in ("windows_closed_total", "scoring_seconds_sum", "scoring_seconds_count", "keys"):
                seen[name] = scrape(f"spikedetect_{name}", args.port) or 0.0
            return seen["windows_closed_total"] >= args.windows + 1, seen["keys"] > 0

        wall, _ = run_until([sys.executable, "-m", "spikedetect", "worker"], env, done, 1800, log)
    calls = seen["scoring_seconds_count"]
    return {"keys": seen["keys"], "windows": seen["windows_closed_total"], "calls": calls, "wall_s": wall,
            "scoring_seconds_sum": seen["scoring_seconds_sum"],
            "per_window_s": seen["scoring_seconds_sum"] / max(calls, 1)}

if __name__ == "__main__":
    main()
