"""Recovery: a worker restarted with state for ~100k keys - seconds until it processes again.

    python -m benchmarks.bench_recovery [--keys 100000] [--repeats 3] [--smoke]

1. Produce three windows in which each of ~--keys leaf regions (50 countries x 20 states x
   cities) reports once, and let one worker close them, so its state table holds a record
   for every key (~--keys keys).
2. For each repeat: SIGKILL the worker, start a new one, produce one more window of reports
   (and a later event that makes the window closable), and time (a) until the new worker's
   /metrics answers with recovered state (keys gauge back at the full count) and (b) until it
   has closed that new window ("ready and processing again").
Baseline in the same run: the same restart with an empty state (a fresh app id), (b) only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.common import median, save
from spikedetect.stream.scrape import scrape

T0 = 1_795_651_200_000
W = 60_000


async def produce_window(bootstrap: str, topic: str, leaves: list[str], ws: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1 << 20)
    await producer.start()
    for i, region in enumerate(leaves):
        value = orjson.dumps({"ts": ws + (i % W), "service": "svc", "region": region, "category": "login"})
        await producer.send(topic, value, key=region.encode())
    await producer.flush()
    await producer.stop()


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "spikedetect", "worker"], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def wait(cond, timeout: float, what: str, log: Path) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if cond():
            return time.perf_counter() - t0
        time.sleep(0.2)
    raise RuntimeError(f"{what}: timeout after {timeout}s\n{log.read_text()[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default=os.environ.get("SPIKEDETECT_KAFKA", "127.0.0.1:9092"))
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--port", type=int, default=16188)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.keys, args.repeats = 3000, 1
    n_leaves = max(10, args.keys - 50 * 20 - 50 - 1)
    countries = [chr(65 + c // 26) + chr(65 + c % 26) for c in range(50)]  # "AA", "AB", ...
    leaves = [f"{countries[i % 50]}/S{(i // 50) % 20:02d}/city{i}" for i in range(n_leaves)]
    tmp = Path(tempfile.mkdtemp())
    log = tmp / "worker.log"

    def env_for(app: str) -> dict[str, str]:
        return dict(os.environ, SPIKEDETECT_KAFKA=args.bootstrap, SPIKEDETECT_APP_ID=app,
                    SPIKEDETECT_INPUT_TOPIC=f"{app}-reports", SPIKEDETECT_INCIDENTS_TOPIC=f"{app}-incidents",
                    SPIKEDETECT_DLQ_TOPIC=f"{app}-dlq", SPIKEDETECT_WEB_PORT=str(args.port),
                    SPIKEDETECT_IDLE_MS="600000", SPIKEDETECT_MAX_KEYS_PER_SERVICE=str(args.keys * 2),
                    SPIKEDETECT_SESSION_TIMEOUT_MS="6000", SPIKEDETECT_DATADIR=str(tmp / app),
                    SPIKEDETECT_LOG_LEVEL="warn")

    def create(app: str) -> None:
        async def go() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
            await admin.start()
            await admin.create_topics([NewTopic(f"{app}-reports", 4, 1)])
            await admin.close()
        asyncio.run(go())

    app = f"rec-{uuid.uuid4().hex[:8]}"
    create(app)
    for w in range(3):
        asyncio.run(produce_window(args.bootstrap, f"{app}-reports", leaves, T0 + w * W))
    asyncio.run(produce_window(args.bootstrap, f"{app}-reports", leaves[:200], T0 + 5 * W))  # closes 0..2
    worker = start(env_for(app), log)
    wait(lambda: (scrape("spikedetect_windows_closed_total", args.port) or 0) >= 3, 1800, "initial state", log)
    keys = scrape("spikedetect_keys", args.port) or 0
    print(f"state built: {keys:,.0f} keys; log {log}")
    ready, processing, base = [], [], []
    next_ws = T0 + 6 * W
    for i in range(args.repeats):
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        t0 = time.perf_counter()
        worker = start(env_for(app), log)
        asyncio.run(produce_window(args.bootstrap, f"{app}-reports", leaves[:500], next_ws))
        asyncio.run(produce_window(args.bootstrap, f"{app}-reports", leaves[:200], next_ws + 3 * W))
        next_ws += 4 * W
        wait(lambda: (scrape("spikedetect_keys", args.port) or 0) >= keys * 0.99, 1800, "recovered", log)
        ready.append(time.perf_counter() - t0)
        before = 3 + 4 * i
        wait(lambda b=before: (scrape("spikedetect_windows_closed_total", args.port) or 0) > 0, 1800,
             "processing", log)
        processing.append(time.perf_counter() - t0)
        # baseline: a fresh app with no state, same restart
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        fresh = f"rec-{uuid.uuid4().hex[:8]}"
        create(fresh)
        t1 = time.perf_counter()
        worker_b = start(env_for(fresh), log)
        asyncio.run(produce_window(args.bootstrap, f"{fresh}-reports", leaves[:500], T0))
        asyncio.run(produce_window(args.bootstrap, f"{fresh}-reports", leaves[:200], T0 + 3 * W))
        wait(lambda: (scrape("spikedetect_windows_closed_total", args.port) or 0) > 0, 600, "baseline", log)
        base.append(time.perf_counter() - t1)
        worker_b.send_signal(signal.SIGKILL)
        worker_b.wait()
        worker = start(env_for(app), log)
        print(f"repeat {i + 1}: recovered {ready[-1]:.1f}s, processing {processing[-1]:.1f}s, "
              f"empty-state baseline {base[-1]:.1f}s")
    worker.send_signal(signal.SIGKILL)
    result = {"keys": keys, "ready_s": median(ready), "processing_s": median(processing),
              "baseline_empty_s": median(base), "runs": {"ready": ready, "processing": processing, "base": base}}
    print(f"{keys:,.0f} keys: recovered in {result['ready_s']:.1f}s, processing again in "
          f"{result['processing_s']:.1f}s (median); empty-state restart {result['baseline_empty_s']:.1f}s")
    if not args.smoke:
        print("saved", save("recovery", result))


if __name__ == "__main__":
    main()
