"""Live throughput on the real broker, against two baselines measured in the same run.

    python -m benchmarks.bench_live [--events 2000000] [--partitions 4] [--repeats 3] [--smoke]
                                    [--ingest-processes 0,1] [--persist-interval-ms 0,1000] [--raw-batches 0,1]
                                    [--partials-wire 1,2] [--worker-src base=/work/base/src,new=src] [--skip-floor]

1. Pre-fill an input topic (4 partitions) with simulated report events (keyed by region).
2. For each repeat, in this order, over the same topic:
   (a) raw aiokafka: one consumer, ``getmany`` + ``orjson.loads`` of every value, nothing else
       - the ceiling for a Python consumer;
   (b) a minimal Faust agent that only iterates the events (``benchmarks/faust_floor_app.py``)
       - the framework's floor;
   (c) one ``spikedetect worker`` (fresh app id) until it has consumed everything and closed
       every window (read from its /metrics); with ``--ingest-processes 0,1`` once per value
       (0: stage 1 in the worker's process, N: in N child processes), and with
       ``--persist-interval-ms 0,1000`` once per owner state-write interval (0: after every close),
       with ``--raw-batches 0,1`` once with stage 1 on aiokafka's records and once on raw record
       batches (stream/ingest_raw.py), every combination, alternating in each repeat; likewise
       ``--partials-wire 1,2`` (stage 1's messages: one per window, or packs) and ``--worker-src``
       (the worker's code from other trees, e.g. a base checkout: same topic, same run). After each
       worker run its partials topic's messages by type and its changelog's records are counted.
   Each is timed from process start (incl. start-up and group join) and from its first record
   to the end ("steady"); ratios use steady throughput.
A broker must answer at --bootstrap (``spikedetect kafka start``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.common import median, save
from benchmarks.topic_counts import topic_counts
from spikedetect.core import Detector, DetectorConfig
from spikedetect.sim.simulate import Simulation, SimulationConfig
from spikedetect.stream.scrape import scrape

HERE = Path(__file__).parent


async def prefill(bootstrap: str, topic: str, partitions: int, events: int, days: float) -> tuple[int, int]:
    """Produce simulated events; returns (count, windows a replay of them closes)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1024 * 1024,
                                compression_type=None, acks=1)
    await producer.start()
    det = Detector(DetectorConfig())
    n = 0
    sim = Simulation(SimulationConfig(seed=1, days=days, scale=max(0.05, events / 420_000 / days)))  # headroom; cut at events
    batch: list[bytes] = []
    for line in sim.lines():
        region = orjson.loads(line)["region"].encode()
        await producer.send(topic, line, key=region)
        batch.append(line)
        n += 1
        if len(batch) >= 20_000:
            det.feed_batch(batch)
            batch = []
        if n >= events:
            break
    det.feed_batch(batch)
    det.flush()
    await producer.flush()
    await producer.stop()
    return n, det.scorer.stats.windows_closed


async def raw_consume(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    if not parts:
        await consumer._client.force_metadata_update()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(parts)
    await consumer.seek_to_beginning(*parts)
    seen = 0
    first = None
    loads = orjson.loads
    while seen < n:
        batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
        for records in batch.values():
            if first is None and records:
                first = time.perf_counter()
            for r in records:
                loads(r.value)
            seen += len(records)
    end = time.perf_counter()
    await consumer.stop()
    return end - t0, end - (first or t0)


def cpu_s(proc: psutil.Process) -> tuple[float, float]:
    """CPU seconds (user + system) of a process and of its children now."""
    def one(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return 0.0
    return one(proc), sum(one(c) for c in proc.children(recursive=True))


def run_until(cmd: list[str], env: dict[str, str], done: callable, timeout_s: float, log: Path,  # type: ignore[valid-type]
              cpu: list[tuple[float, float]] | None = None) -> tuple[float, float]:
    """Start a process, poll ``done()`` -> (finished, first_record_time or None); with ``cpu``,
    append the CPU seconds of the process and of its children at the end."""
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    first = None
    try:
        while time.perf_counter() - t0 < timeout_s:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd} exited:\n{log.read_text()[-3000:]}")
            finished, started = done()
            if started and first is None:
                first = time.perf_counter()
            if finished:
                end = time.perf_counter()
                if cpu is not None:
                    cpu.append(cpu_s(psutil.Process(proc.pid)))
                return end - t0, end - (first or t0)
            time.sleep(0.2)
        raise RuntimeError(f"timeout after {timeout_s}s:\n{log.read_text()[-3000:]}")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def faust_floor(bootstrap: str, topic: str, n: int, tmp: Path) -> tuple[float, float]:
    out = tmp / f"floor-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, FLOOR_APP_ID=f"floor-{uuid.uuid4().hex[:8]}", FLOOR_TOPIC=topic, FLOOR_OUT=str(out),
               SPIKEDETECT_KAFKA=bootstrap, PYTHONPATH=str(HERE), FLOOR_DATADIR=str(tmp / "floor-data"))

    def done() -> tuple[bool, bool]:
        text = out.read_text() if out.exists() else ""
        count = int(text) if text.strip() else 0
        return count >= n, count > 0

    return run_until([sys.executable, "-m", "faust", "-A", "faust_floor_app", "worker", "-l", "warn",
                      "--without-web"], env, done, 1800, tmp / "floor.log")


def spikedetect_worker(bootstrap: str, topic: str, n: int, windows: int, tmp: Path, port: int,
                       ingest_processes: int = 0, cpu: list[tuple[float, float]] | None = None,
                       persist_interval_ms: int | None = None, extra_env: dict[str, str] | None = None,
                       counts: list[dict[str, int]] | None = None) -> tuple[float, float]:
    app = f"bench-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, SPIKEDETECT_KAFKA=bootstrap, SPIKEDETECT_APP_ID=app, SPIKEDETECT_INPUT_TOPIC=topic,
               SPIKEDETECT_INCIDENTS_TOPIC=f"{app}-incidents", SPIKEDETECT_DLQ_TOPIC=f"{app}-dlq",
               SPIKEDETECT_WEB_PORT=str(port), SPIKEDETECT_IDLE_MS="1000", SPIKEDETECT_IDLE_RATE="1000000",
               SPIKEDETECT_DATADIR=str(tmp / app), SPIKEDETECT_LOG_LEVEL="warn",
               SPIKEDETECT_INGEST_PROCESSES=str(ingest_processes))
    if persist_interval_ms is not None:
        env["SPIKEDETECT_PERSIST_INTERVAL_MS"] = str(persist_interval_ms)
    env.update(extra_env or {})

    def done() -> tuple[bool, bool]:
        consumed = (scrape("spikedetect_events_consumed_total", port) or 0.0)
        closed = (scrape("spikedetect_windows_closed_total", port) or 0.0)
        return consumed >= n and closed >= windows, consumed > 0

    took = run_until([sys.executable, "-m", "spikedetect", "worker"], env, done, 3600, tmp / f"{app}.log", cpu)
    if counts is not None:
        counts.append(asyncio.run(topic_counts(bootstrap, app)))
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default=os.environ.get("SPIKEDETECT_KAFKA", "127.0.0.1:9092"))
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--port", type=int, default=16166)
    ap.add_argument("--ingest-processes", default="0",
                    help="comma-separated values of the worker's --ingest-processes, each run per repeat")
    ap.add_argument("--persist-interval-ms", default="",
                    help="comma-separated values of the worker's --persist-interval-ms (empty: its default)")
    ap.add_argument("--raw-batches", default="",
                    help="comma-separated values (0,1) of the worker's --raw-batches (empty: its default)")
    ap.add_argument("--partials-wire", default="", help="comma-separated values of the worker's partials_wire")
    ap.add_argument("--worker-src", default="",
                    help="comma-separated label=src-dir: run the worker with PYTHONPATH=src-dir, each per repeat")
    ap.add_argument("--skip-floor", action="store_true", help="leave out (b), the Faust floor (~145 s a run)")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    persists = [int(v) for v in args.persist_interval_ms.split(",")] if args.persist_interval_ms else [None]
    wires = args.partials_wire.split(",") if args.partials_wire else [""]
    raws = args.raw_batches.split(",") if args.raw_batches else [""]
    srcs = [tuple(x.split("=", 1)) for x in args.worker_src.split(",")] if args.worker_src else [("", "")]
    variants = [(int(v), p, w, r, src) for v in args.ingest_processes.split(",") for p in persists
                for w in wires for r in raws for src in srcs]
    if args.smoke:
        args.events, args.days, args.repeats = 20_000, 0.1, 1
    topic = f"bench-reports-{uuid.uuid4().hex[:8]}"
    n, windows = asyncio.run(prefill(args.bootstrap, topic, args.partitions, args.events, args.days))
    print(f"pre-filled {topic}: {n:,} events over {args.partitions} partitions; {windows} windows")
    names = {(v, p, w, r, src): ("spikedetect" if v == 0 else f"spikedetect_ingest_procs_{v}")
             + ("" if p is None else f"_persist_{p}ms") + (f"_wire{w}" if w else "") + (f"_raw_{r}" if r else "")
             + (f"_{src[0]}" if src[0] else "") for v, p, w, r, src in variants}
    rows: dict[str, list[tuple[float, float]]] = {"raw_aiokafka": [], "faust_floor": []}
    rows.update({name: [] for name in names.values()})
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in names.values()}
    counts: dict[str, list[dict[str, int]]] = {name: [] for name in names.values()}
    if args.skip_floor:
        del rows["faust_floor"]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for i in range(args.repeats):
            rows["raw_aiokafka"].append(asyncio.run(raw_consume(args.bootstrap, topic, n)))
            if not args.skip_floor:
                rows["faust_floor"].append(faust_floor(args.bootstrap, topic, n, tmp))
            for j, v in enumerate(variants if i % 2 == 0 else variants[::-1]):
                port = args.port + i * len(variants) + j
                env = (({"SPIKEDETECT_PARTIALS_WIRE": v[2]} if v[2] else {}) | ({"SPIKEDETECT_RAW_BATCHES": v[3]} if v[3] else {})
                       | ({"PYTHONPATH": v[4][1]} if v[4][0] else {}))
                rows[names[v]].append(spikedetect_worker(args.bootstrap, topic, n, windows, tmp, port, v[0],
                                                        cpu[names[v]], v[1], env, counts[names[v]]))
            print(f"repeat {i + 1}: " + ", ".join(f"{k} {v[-1][1]:.1f}s steady / {v[-1][0]:.1f}s total"
                                                  for k, v in rows.items()))
    summary = {}
    ceiling = n / median([s for _, s in rows["raw_aiokafka"]])
    for name, runs in rows.items():
        steady = n / median([s for _, s in runs])
        total = n / median([t for t, _ in runs])
        summary[name] = {"steady_events_per_s": steady, "total_events_per_s": total,
                         "ratio_to_raw_aiokafka": steady / ceiling, "runs_total_steady_s": runs}
        print(f"{name:27s} steady {steady:>10,.0f} ev/s  from start {total:>10,.0f} ev/s  "
              f"ratio to raw aiokafka {steady / ceiling:.2f}")
    for name, runs in cpu.items():  # where the CPU went: the worker's process, its ingest children
        if runs:
            summary[name]["cpu_s_worker_children"] = runs
            print(f"{name:27s} CPU s (median): worker process {median([w for w, _ in runs]):.1f}, "
                  f"children {median([c for _, c in runs]):.1f}")
    for name, runs in counts.items():
        if runs:
            summary[name]["topic_counts"] = runs
            print(f"{name:27s} " + ", ".join(f"{k} {median([r.get(k, 0) for r in runs]):,.0f}" for k in sorted(
                {k for r in runs for k in r})) + " (medians)")
    if not args.smoke:
        print("saved", save("live", {"args": vars(args), "events": n, "windows": windows, "results": summary}))


if __name__ == "__main__":
    main()
