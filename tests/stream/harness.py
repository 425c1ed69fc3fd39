"""Run real workers against the real broker: produce, start, kill, read topics, replay."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from spikedetect.core import Detector, DetectorConfig, IncidentEvent
from spikedetect.replay.sources import iter_batches, open_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Record:
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    partition: int
    offset: int


@dataclass
class LiveRun:
    """One app id with its own topics; workers are subprocesses of ``spikedetect worker``."""

    bootstrap: str
    workdir: Path
    input_partitions: int = 4
    partials_partitions: int = 4
    extra: dict[str, str] = field(default_factory=dict)
    app_id: str = field(default_factory=lambda: f"sd-{uuid.uuid4().hex[:10]}")
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def topics(self) -> dict[str, str]:
        a = self.app_id
        return {"input": f"{a}-reports", "incidents": f"{a}-incidents", "dlq": f"{a}-dlq",
                "windows": f"{a}-windows"}

    def env(self, web_port: int | None = None) -> dict[str, str]:
        t = self.topics
        env = dict(os.environ)
        env.update({
            "SPIKEDETECT_KAFKA": self.bootstrap, "SPIKEDETECT_APP_ID": self.app_id,
            "SPIKEDETECT_INPUT_TOPIC": t["input"], "SPIKEDETECT_INCIDENTS_TOPIC": t["incidents"],
            "SPIKEDETECT_DLQ_TOPIC": t["dlq"], "SPIKEDETECT_WINDOWS_TOPIC": t["windows"],
            "SPIKEDETECT_PARTIALS_PARTITIONS": str(self.partials_partitions),
            "SPIKEDETECT_TOPIC_PARTITIONS": str(self.input_partitions),
            "SPIKEDETECT_IDLE_MS": "1500", "SPIKEDETECT_IDLE_RATE": "2000",
            "SPIKEDETECT_SESSION_TIMEOUT_MS": "6000", "SPIKEDETECT_DATADIR": str(self.workdir / "data"),
            "SPIKEDETECT_WEB_PORT": str(web_port or free_port()),
        })
        env.update(self.extra)
        return env

    # -- topics ------------------------------------------------------------------------
    def create_input(self) -> None:
        asyncio.run(self._create({self.topics["input"]: self.input_partitions}))

    async def _create(self, topics: dict[str, int]) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(n, p, 1) for n, p in topics.items()])
        finally:
            await admin.close()

    def produce(self, values: Iterable[bytes], *, key: Callable[[bytes], bytes | None] | None = None,
                timestamps: Iterable[int | None] | None = None) -> int:
        return asyncio.run(self._produce(list(values), key, None if timestamps is None else list(timestamps)))

    async def _produce(self, values: list[bytes], key: Any, stamps: list[int | None] | None) -> int:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True, linger_ms=10,
                                    max_request_size=4 * 1024 * 1024)
        await producer.start()
        try:
            for i, v in enumerate(values):
                await producer.send(self.topics["input"], v, key=key(v) if key else None,
                                    timestamp_ms=stamps[i] if stamps else None)
            await producer.flush()
        finally:
            await producer.stop()
        return len(values)

    def produce_file(self, path: Path) -> int:
        with open_binary(path) as f:
            lines = [line for batch in iter_batches(f) for line in batch]
        return self.produce(lines, key=_region_key)

    def read(self, topic: str, timeout_s: float = 3.0) -> list[Record]:
        return asyncio.run(self._read(self.topics.get(topic, topic), timeout_s))

    async def _read(self, topic: str, timeout_s: float) -> list[Record]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=self.bootstrap, group_id=None,
                                    auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024)
        await consumer.start()
        out: list[Record] = []
        try:
            end = time.monotonic() + timeout_s
            while time.monotonic() < end:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    out += [Record(r.key, r.value, dict(r.headers), r.partition, r.offset) for r in records]
                    end = time.monotonic() + timeout_s / 3
        finally:
            await consumer.stop()
        return out

    # -- workers ------------------------------------------------------------------------
    def start_worker(self, web_port: int | None = None) -> subprocess.Popen[bytes]:
        log = self.workdir / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        proc = subprocess.Popen([sys.executable, "-m", "spikedetect", "worker"], env=self.env(web_port),
                                stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.workdir)
        self.workers.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.workers:
            self.kill(proc, signal.SIGTERM)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
                         for p in self.logs if p.exists())

    def assert_alive(self) -> None:
        for proc in self.workers:
            if proc.returncode is None and proc.poll() is not None:
                raise AssertionError(f"worker exited with {proc.returncode}\n{self.log_tail()}")

    # -- results --------------------------------------------------------------------------
    def incidents(self) -> list[bytes]:
        """Incident events deduplicated on (incident_id, seq), sorted by them."""
        seen: dict[tuple[str, int], bytes] = {}
        for rec in self.read("incidents"):
            e = orjson.loads(rec.value)
            key = (e["incident_id"], e["seq"])
            assert seen.get(key, rec.value) == rec.value, f"two different events share {key}"
            seen[key] = rec.value
        return [seen[k] for k in sorted(seen)]

    def window_counts(self) -> dict[tuple[str, str, int], float]:
        """Observed reports per (service, key, window) from the windows topic."""
        out: dict[tuple[str, str, int], float] = {}
        for rec in self.read("windows"):
            w = orjson.loads(rec.value)
            for region, (observed, _, _) in w["keys"].items():
                key = (w["service"], region, w["ws_ms"])
                assert out.get(key, observed) == observed, f"re-emitted window disagrees at {key}"
                out[key] = observed
        return out

    def wait_for_incidents(self, want: int, timeout_s: float = 180.0, settle_s: float = 4.0) -> list[bytes]:
        deadline = time.monotonic() + timeout_s
        got: list[bytes] = []
        while time.monotonic() < deadline:
            self.assert_alive()
            got = self.incidents()
            if len(got) >= want:
                time.sleep(settle_s)
                return self.incidents()
            time.sleep(2.0)
        raise AssertionError(f"only {len(got)} of {want} incident events after {timeout_s}s\n{self.log_tail()}")


def _region_key(line: bytes) -> bytes | None:
    try:
        return str(orjson.loads(line)["region"]).encode()
    except Exception:  # noqa: BLE001 - garbage lines go unkeyed
        return None


def replay_file(path: Path, config: DetectorConfig | None = None) -> tuple[list[bytes], dict[tuple[str, str, int], float]]:
    """Offline result for a file: incident events sorted by (incident_id, seq), and window counts."""
    det = Detector(config or DetectorConfig())
    counts: dict[tuple[str, str, int], float] = {}

    def on_window(ws: int, closed: Any) -> None:
        for i, (svc, key) in enumerate(closed.keys):
            if closed.observed[i] > 0:
                counts[(svc, key, ws)] = float(closed.observed[i])

    det.scorer.on_window = on_window
    events: list[IncidentEvent] = []
    with open_binary(path) as f:
        for batch in iter_batches(f):
            events += det.feed_batch(batch).incidents
    events += det.flush()
    return [e.to_json() for e in sorted(events, key=lambda e: (e.incident_id, e.seq))], counts
