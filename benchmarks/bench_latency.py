"""Latency from "window closable" to its output being readable on a topic, at a steady rate.

    python -m benchmarks.bench_latency [--rate 20000] [--seconds 90] [--window-ms 1000] [--smoke]

A fresh worker reads a fresh 4-partition topic. A producer sends report events stamped with
the current wall-clock time at a steady ``--rate`` (set it to half the live maximum measured
by bench_live on the same machine), keyed by region so every partition gets data, with a
short burst on one city every 20 s so incidents open. With 1-second windows and 2 s of allowed
lateness, the window [t, t+1s) becomes closable at wall time t + 1 s + 2 s (an event stamped
with that time exists on every partition then). Measured per window: when its
``spikedetect.window/v1`` summary is readable on the windows topic, minus that moment; and
for every ``opened`` incident event, its arrival minus (detected_at + lateness). p50/p99.
Baseline in the same run: the same producer's own send->readable latency on the input topic
(the broker and client floor), measured with a consumer of the input topic.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.common import save
from spikedetect.core.timefmt import parse_ts_ms

REGIONS = [f"{c}/{s}/city{i}" for c in ("US", "IN", "GB", "BR") for s in ("A", "B", "C") for i in range(8)]


async def produce(bootstrap: str, topic: str, rate: float, seconds: float, stop: asyncio.Event) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    sent = 0
    t0 = time.time()
    rng = random.Random(1)
    try:
        while time.time() - t0 < seconds and not stop.is_set():
            now = time.time()
            due = int((now - t0) * rate) - sent
            burst = int(now - t0) % 20 < 3
            for _ in range(max(0, due)):
                region = "US/A/city0" if burst and rng.random() < 0.5 else rng.choice(REGIONS)
                value = orjson.dumps({"ts": int(time.time() * 1000), "service": "svc", "region": region,
                                      "category": "login", "source": "app"})
                await producer.send(topic, value, key=region.encode())
                sent += 1
            await asyncio.sleep(0.002)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def watch(bootstrap: str, topics: list[str], seconds: float, lateness_ms: int, window_ms: int,
                input_topic: str) -> dict[str, list[float]]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="latest")
    await consumer.start()
    lat: dict[str, list[float]] = {"window": [], "incident": [], "input": []}
    end = time.time() + seconds
    try:
        while time.time() < end:
            batch = await consumer.getmany(timeout_ms=200)
            now_ms = time.time() * 1000
            for tp, records in batch.items():
                for r in records:
                    if tp.topic == input_topic:
                        if random.random() < 0.01:
                            lat["input"].append(now_ms - orjson.loads(r.value)["ts"])
                        continue
                    e = orjson.loads(r.value)
                    if e.get("schema") == "spikedetect.window/v1":
                        lat["window"].append(now_ms - (e["ws_ms"] + window_ms + lateness_ms))
                    elif e.get("type") == "opened":
                        lat["incident"].append(now_ms - (parse_ts_ms(e["detected_at"]) + lateness_ms))
    finally:
        await consumer.stop()
    return lat


async def main_async(args: argparse.Namespace) -> dict:
    app = f"lat-{uuid.uuid4().hex[:8]}"
    topic = f"{app}-reports"
    admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1)])
    await admin.close()
    lateness = 2 * args.window_ms
    env = dict(os.environ, SPIKEDETECT_KAFKA=args.bootstrap, SPIKEDETECT_APP_ID=app, SPIKEDETECT_INPUT_TOPIC=topic,
               SPIKEDETECT_INCIDENTS_TOPIC=f"{app}-incidents", SPIKEDETECT_DLQ_TOPIC=f"{app}-dlq",
               SPIKEDETECT_WINDOWS_TOPIC=f"{app}-windows", SPIKEDETECT_WINDOW_MS=str(args.window_ms),
               SPIKEDETECT_IDLE_MS="60000", SPIKEDETECT_WEB_PORT=str(args.port), SPIKEDETECT_LOG_LEVEL="warn",
               SPIKEDETECT_MIN_EXCESS="5", SPIKEDETECT_DATADIR=tempfile.mkdtemp())
    log = Path(tempfile.mkdtemp()) / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "spikedetect", "worker"], env=env,
                              stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        await asyncio.sleep(10)  # worker up, topics created
        stop = asyncio.Event()
        warm = args.warmup
        watcher = asyncio.create_task(watch(args.bootstrap, [f"{app}-windows", f"{app}-incidents", topic],
                                            args.seconds + warm + 10, lateness, args.window_ms, topic))
        sent = await produce(args.bootstrap, topic, args.rate, args.seconds + warm, stop)
        lat = await watcher
    finally:
        worker.terminate()
        worker.wait(30)
    return {"sent": sent, "achieved_rate": sent / (args.seconds + args.warmup), "latency_ms": lat,
            "log": str(log)}


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default=os.environ.get("SPIKEDETECT_KAFKA", "127.0.0.1:9092"))
    ap.add_argument("--rate", type=float, default=20_000)
    ap.add_argument("--seconds", type=float, default=90)
    ap.add_argument("--warmup", type=float, default=40, help="seconds before measuring (baselines learn)")
    ap.add_argument("--window-ms", type=int, default=1000)
    ap.add_argument("--port", type=int, default=16177)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.rate, args.seconds, args.warmup = 500, 8, 2
    res = asyncio.run(main_async(args))
    lat = res["latency_ms"]
    skip = int(len(lat["window"]) * args.warmup / (args.seconds + args.warmup))
    windows = lat["window"][skip:]
    out = {name: {"n": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99)}
           for name, v in (("window_summary", windows), ("incident_opened", lat["incident"]),
                           ("input_topic_floor", lat["input"]))}
    print(f"sent {res['sent']:,} at {res['achieved_rate']:,.0f}/s")
    for name, row in out.items():
        print(f"{name:18s} n={row['n']:5d}  p50={row['p50_ms']}  p99={row['p99_ms']}  (ms)")
    if not args.smoke:
        print("saved", save("latency", {"args": vars(args), "achieved_rate": res["achieved_rate"], "results": out}))


if __name__ == "__main__":
    main()
