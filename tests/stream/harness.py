"""Run real workers against the real broker: produce, start, kill, read topics, replay.

Also the tools of the reliability tests: a producer thread that keeps sending while
workers are killed, a sampler of a worker's resident memory, the ingest group's lag,
the worker's ``summary`` log lines, and replay of an in-memory list of lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from spikedetect.core import Detector, DetectorConfig, IncidentEvent
from spikedetect.core.outages import OutageGrouper
from spikedetect.core.timefmt import parse_ts_ms
from spikedetect.files.sources import iter_batches, open_binary
from spikedetect.stream.scrape import scrape

READ_BOUND_S = 120.0
"""The longest a read of a topic goes on while it has not reached the end offsets taken at its
start (a broker that slow fails the test that reads)."""


def input_end_ms(values: list[bytes]) -> int | None:
    """Where an input's last 60 s window ends: a robust newest event time of its last reports
    (a few skewed clocks far ahead do not move it); None without any time."""
    stamps: list[int] = []
    for v in values[-2000:]:
        try:
            t = parse_ts_ms(orjson.loads(v).get("ts", ""))
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            continue
        if t is not None:
            stamps.append(t)
    if not stamps:
        return None
    stamps.sort()
    last = stamps[max(0, len(stamps) - 1 - len(stamps) // 20 - 8)]
    return last - last % 60_000 + 60_000


def after_input(event: dict[str, Any], end_ms: int | None) -> bool:
    """An ingest gap detected after the input ended: live, the idle rule closes empty windows
    after the input's end and that silence is a gap; a replay ends with its input."""
    detected = parse_ts_ms(event.get("detected_at") or "")
    return (event.get("kind") == "ingest_gap" and end_ms is not None and detected is not None
            and detected > end_ms)


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
class Out:
    """One message to produce, with everything a test may want to pin down."""

    value: bytes | None
    key: bytes | None = None
    partition: int | None = None
    timestamp_ms: int | None = None


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
    input_end_ms: int | None = None  # end of the last window of what produce_file sent

    @property
    def topics(self) -> dict[str, str]:
        a = self.app_id
        return {
            "input": f"{a}-reports",
            "incidents": f"{a}-incidents",
            "dlq": f"{a}-dlq",
            "windows": f"{a}-windows",
            "regions": f"{a}-regions",
        }

    def env(self, web_port: int | None = None) -> dict[str, str]:
        t = self.topics
        env = dict(os.environ)
        env.update(
            {
                "SPIKEDETECT_KAFKA": self.bootstrap,
                "SPIKEDETECT_APP_ID": self.app_id,
                "SPIKEDETECT_INPUT_TOPIC": t["input"],
                "SPIKEDETECT_INCIDENTS_TOPIC": t["incidents"],
                "SPIKEDETECT_DLQ_TOPIC": t["dlq"],
                "SPIKEDETECT_WINDOWS_TOPIC": t["windows"],
                "SPIKEDETECT_REGIONS_TOPIC": t["regions"],
                "SPIKEDETECT_PARTIALS_PARTITIONS": str(self.partials_partitions),
                "SPIKEDETECT_TOPIC_PARTITIONS": str(self.input_partitions),
                "SPIKEDETECT_IDLE_MS": "1500",
                "SPIKEDETECT_IDLE_RATE": "2000",
                "SPIKEDETECT_SESSION_TIMEOUT_MS": "6000",
                "SPIKEDETECT_DATADIR": str(self.workdir / "data"),
                "SPIKEDETECT_WEB_PORT": str(web_port or free_port()),
            }
        )
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

    def produce(
        self,
        values: Iterable[bytes],
        *,
        key: Callable[[bytes], bytes | None] | None = None,
        timestamps: Iterable[int | None] | None = None,
    ) -> int:
        values = list(values)
        self._note_end(values)
        return asyncio.run(self._produce(values, key, None if timestamps is None else list(timestamps)))

    def _note_end(self, values: list[bytes]) -> None:
        """Remember where the input's last window ends (see :meth:`incidents`)."""
        end = input_end_ms(values)
        if end is not None:
            self.input_end_ms = max(self.input_end_ms or 0, end)

    def _input_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=True, linger_ms=10, max_request_size=4 * 1024 * 1024
        )

    async def _produce(self, values: list[bytes], key: Any, stamps: list[int | None] | None) -> int:
        producer = self._input_producer()
        await producer.start()
        try:
            for i, v in enumerate(values):
                await producer.send(
                    self.topics["input"],
                    v,
                    key=key(v) if key else None,
                    timestamp_ms=stamps[i] if stamps else None,
                )
            await producer.flush()
        finally:
            await producer.stop()
        return len(values)

    def produce_records(self, records: list[Out]) -> list[tuple[int, int]]:
        """Send every record (explicit partition and timestamp allowed); their (partition, offset)."""
        return asyncio.run(self._produce_records(records))

    async def _produce_records(self, records: list[Out]) -> list[tuple[int, int]]:
        producer = self._input_producer()
        await producer.start()
        try:
            topic = self.topics["input"]
            futures = []
            for r in records:
                if r.key is None and r.value is None:
                    # legal in Kafka (other clients send it), refused by aiokafka's send(): a batch of one
                    batch = producer.create_batch()
                    batch.append(key=None, value=None, timestamp=r.timestamp_ms)
                    partition = r.partition if r.partition is not None else 0
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                else:
                    futures.append(
                        await producer.send(
                            topic, r.value, key=r.key, partition=r.partition, timestamp_ms=r.timestamp_ms
                        )
                    )
            metas = await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return [(m.partition, m.offset) for m in metas]

    def produce_in_background(
        self,
        values: list[bytes],
        *,
        rate_per_s: float | None = None,
        key: Callable[[bytes], bytes | None] | None = None,
        chunk: int = 250,
    ) -> BackgroundProducer:
        """Start a thread that sends ``values`` (at ``rate_per_s``, or as fast as it can), keyed by
        ``key`` (default: the region, like :meth:`produce_file`)."""
        self._note_end(values)
        producer = BackgroundProducer(
            self.bootstrap,
            self.topics["input"],
            values,
            key=key or _region_key,
            rate_per_s=rate_per_s,
            chunk=chunk,
        )
        producer.start()
        return producer

    def lag(
        self,
        topic: str = "input",
        group: str | None = None,
        partitions: int | None = None,
    ) -> tuple[int, int]:
        """(end offsets, committed offsets of ``group``) summed over a topic's partitions.

        Default: the input topic and the ingest group; ``lag("partials", app_id)`` gives the
        owners' progress through the internal topic."""
        if topic == "partials":
            topic, partitions = f"{self.app_id}-partials", partitions or self.partials_partitions
        return asyncio.run(
            self._lag(
                self.topics.get(topic, topic),
                group or f"{self.app_id}-ingest",
                partitions or self.input_partitions,
            )
        )

    async def _lag(self, topic: str, group: str, partitions: int) -> tuple[int, int]:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await consumer.start()
        await admin.start()
        try:
            ends = await consumer.end_offsets(tps)
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        finally:
            await consumer.stop()
            await admin.close()
        done = sum(max(0, m.offset) for m in committed.values() if m is not None)
        return sum(ends.values()), done

    def delete_topics(self) -> None:
        """Drop every topic of this app id (big test topics should not outlive their test)."""
        asyncio.run(self._delete_topics())

    async def _delete_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(self.app_id)]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()

    def produce_file(self, path: Path) -> int:
        with open_binary(path) as f:
            lines = [line for batch in iter_batches(f) for line in batch]
        return self.produce(lines, key=_region_key)

    def read(self, topic: str, timeout_s: float = 3.0) -> list[Record]:
        return asyncio.run(self._read(self.topics.get(topic, topic), timeout_s))

    async def _read(self, topic: str, timeout_s: float) -> list[Record]:
        """Every record of ``topic``: at least up to the end offsets taken when reading starts.

        Past those offsets, reading goes on until ``timeout_s / 3`` passes without a new
        record (``timeout_s`` at first), for records still being written. A gap before the
        end offsets does not stop it (a slowed broker or test process), only ``READ_BOUND_S``.
        """
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await consumer.start()  # without a group, every partition is assigned once it starts
        out: list[Record] = []
        try:
            parts = sorted(consumer.assignment())
            ends = await consumer.end_offsets(parts) if parts else {}
            bound = time.monotonic() + READ_BOUND_S
            end = time.monotonic() + timeout_s
            behind = True
            while time.monotonic() < bound and (behind or time.monotonic() < end):
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    out += [Record(r.key, r.value, dict(r.headers), r.partition, r.offset) for r in records]
                    end = time.monotonic() + timeout_s / 3
                if behind:
                    behind = any([await consumer.position(tp) < ends[tp] for tp in parts])
        finally:
            await consumer.stop()
        return out

    # -- workers ------------------------------------------------------------------------
    def start_worker(self, web_port: int | None = None) -> subprocess.Popen[bytes]:
        log = self.workdir / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "spikedetect", "worker"],
            env=self.env(web_port),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
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

    def summaries(self) -> list[dict[str, str]]:
        """The ``summary`` lines every worker logged so far, as key=value dicts."""
        out = []
        for path in self.logs:
            for line in path.read_text(errors="replace").splitlines():
                if "logger=spikedetect.ingest msg=summary " in line:
                    body = line.split("msg=summary ", 1)[1]
                    out.append(dict(kv.split("=", 1) for kv in body.split() if "=" in kv))
        return out

    def crashes(self) -> list[str]:
        """Log lines where a service or agent of a worker crashed (Faust restarts a crashed agent
        after acking - losing - the event it failed on, so any such line is a defect)."""
        return [
            f"{p.name}: {line[:300]}"
            for p in self.logs
            for line in p.read_text(errors="replace").splitlines()
            if "Crashed reason=" in line or "We experienced a crash" in line
        ]

    # log lines that explain a live run diverging from a clean one (stalls, late reports, skips)
    NOTABLE = ("quiet for", "after their window had closed", "skipped offsets", "buffer full", "rebalanc")

    def notable(self, limit: int = 80) -> str:
        """The workers' :attr:`NOTABLE` log lines, oldest worker first (for a failure message)."""
        found = [f"{p.name}: {line[:220]}" for p in self.logs if p.exists()
                 for line in p.read_text(errors="replace").splitlines() if any(k in line for k in self.NOTABLE)]
        return "\n".join(found[:limit] + ([f"... {len(found) - limit} more"] if len(found) > limit else []))

    def keep(self, name: str, **streams: list[bytes]) -> Path:
        """Copy the workers' logs and ``streams`` (one JSON line per event) out of pytest's tmp
        dirs, which keep only the last few runs, to ``$SPIKEDETECT_KEEP_DIR`` (default
        /tmp/spikedetect-kept)/``name``-app id; returns that directory."""
        dest = Path(os.environ.get("SPIKEDETECT_KEEP_DIR", "/tmp/spikedetect-kept")) / f"{name}-{self.app_id}"
        dest.mkdir(parents=True, exist_ok=True)
        for p in self.logs:
            if p.exists():
                shutil.copy(p, dest / p.name)
        for stream, lines in streams.items():
            (dest / f"{stream}.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
        return dest

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(
            f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
            for p in self.logs
            if p.exists()
        )

    def wait_for_log(self, text: str, timeout_s: float = 120.0) -> None:
        """Wait until the newest worker has logged ``text`` (it must stay alive meanwhile)."""
        deadline = time.monotonic() + timeout_s
        while text not in self.logs[-1].read_text(errors="replace"):
            self.assert_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker did not log {text!r} within {timeout_s}s\n{self.log_tail()}")
            time.sleep(0.1)

    def metric(self, name: str, web_port: int) -> float | None:
        """A Prometheus metric of the worker serving ``web_port`` (summed over its labels);
        None while the worker's web server is not up yet or does not report it."""
        return scrape(name, web_port)

    def wait_for_metric(self, name: str, at_least: float, web_port: int, timeout_s: float) -> bool:
        """Wait until the newest worker's ``name`` reaches ``at_least``; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.assert_alive()
            value = self.metric(name, web_port)
            if value is not None and value >= at_least:
                return True
            time.sleep(0.2)
        return False

    def assert_alive(self) -> None:
        for proc in self.workers:
            if proc.returncode is None and proc.poll() is not None:
                raise AssertionError(f"worker exited with {proc.returncode}\n{self.log_tail()}")

    # -- results --------------------------------------------------------------------------
    def incidents(self, topic: str = "incidents") -> list[bytes]:
        """Incident events (outages; ``topic="regions"``: region incidents) deduplicated on
        (incident_id, seq), sorted by them. An ingest gap detected after the produced input
        ended is left out: live, the idle rule closes empty windows after the input's end and the
        silence is a gap; a replay ends with its input (docs/events.md)."""
        seen: dict[tuple[str, int], bytes] = {}
        for rec in self.read(topic):
            e = orjson.loads(rec.value)
            if after_input(e, self.input_end_ms):
                continue
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

    def wait_for_windows(
        self,
        want: dict[tuple[str, str, int], float],
        timeout_s: float = 120.0,
    ) -> dict[tuple[str, str, int], float]:
        """Window counts once every wanted (service, key, window) has been published (or the timeout).

        The last windows close only after the input has been idle for a while, so they can
        come after the last incident event."""
        deadline = time.monotonic() + timeout_s
        got = self.window_counts()
        while not want.keys() <= got.keys() and time.monotonic() < deadline:
            self.assert_alive()
            time.sleep(2.0)
            got = self.window_counts()
        return got

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
        raise AssertionError(
            f"only {len(got)} of {want} incident events after {timeout_s}s\n{self.log_tail()}"
        )


class BackgroundProducer(threading.Thread):
    """Sends messages from a thread in chunks, optionally paced at ``rate_per_s``.

    ``sent`` counts the messages handed to the client so far; :meth:`finish` waits for
    the end and re-raises anything the thread hit.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        values: list[bytes],
        *,
        key: Callable[[bytes], bytes | None] | None,
        rate_per_s: float | None,
        chunk: int,
    ) -> None:
        super().__init__(daemon=True, name="background-producer")
        self.bootstrap, self.topic, self.values = bootstrap, topic, values
        self.key, self.rate_per_s, self.chunk = key, rate_per_s, chunk
        self.sent = 0
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - handed to the test by finish()
            self.error = exc

    async def _run(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=True,
            linger_ms=10,
            max_request_size=4 * 1024 * 1024,
            request_timeout_ms=120_000,
        )
        await producer.start()
        t0 = time.monotonic()
        try:
            for start in range(0, len(self.values), self.chunk):
                for v in self.values[start : start + self.chunk]:
                    await producer.send(self.topic, v, key=self.key(v) if self.key else None)
                self.sent = min(len(self.values), start + self.chunk)
                if self.rate_per_s:
                    ahead_s = t0 + self.sent / self.rate_per_s - time.monotonic()
                    if ahead_s > 0:
                        await asyncio.sleep(ahead_s)
            await producer.flush()
        finally:
            self.seconds = time.monotonic() - t0
            await producer.stop()

    def finish(self, timeout_s: float = 300.0) -> None:
        self.join(timeout_s)
        if self.is_alive():
            raise AssertionError(f"the producer did not finish within {timeout_s}s ({self.sent} sent)")
        if self.error is not None:
            raise AssertionError(f"the producer failed after {self.sent} messages") from self.error


class RssSampler(threading.Thread):
    """Samples a process's resident set size every ``every_s`` until stopped or the process ends."""

    def __init__(self, pid: int, every_s: float = 0.25) -> None:
        super().__init__(daemon=True, name=f"rss-{pid}")
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, int]] = []  # (monotonic seconds, bytes)
        self._stop_event = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            proc = psutil.Process(self.pid)
            while not self._stop_event.is_set():
                self.samples.append((time.monotonic(), proc.memory_info().rss))
                self._stop_event.wait(self.every_s)
        except psutil.Error:
            pass  # the process ended (or was killed): the samples so far stand

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)

    @property
    def peak_mb(self) -> float:
        return max((rss for _, rss in self.samples), default=0) / 1e6

    def mb_at(self, t: float) -> float:
        """The first sample taken at or after monotonic time ``t``, in MB."""
        for at, rss in self.samples:
            if at >= t:
                return rss / 1e6
        return self.samples[-1][1] / 1e6 if self.samples else 0.0


def _region_key(line: bytes) -> bytes | None:
    try:
        return str(orjson.loads(line)["region"]).encode()
    except Exception:  # noqa: BLE001 - garbage lines go unkeyed
        return None


def replay_lines(
    lines: list[bytes],
    tmp_dir: Path,
    config: DetectorConfig | None = None,
    regions: list[bytes] | None = None,
) -> tuple[list[bytes], dict[tuple[str, str, int], float]]:
    """:func:`replay_file` of an in-memory list of lines (written to ``tmp_dir`` first)."""
    path = tmp_dir / f"replay-{uuid.uuid4().hex[:8]}.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    try:
        return replay_file(path, config, regions)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def replay_file(
    path: Path, config: DetectorConfig | None = None, regions: list[bytes] | None = None
) -> tuple[list[bytes], dict[tuple[str, str, int], float]]:
    """Offline result for a file: outage incident events sorted by (incident_id, seq), and window
    counts; the region incident events (with group_id), sorted the same way, go to ``regions``."""
    det = Detector(config or DetectorConfig())
    counts: dict[tuple[str, str, int], float] = {}

    def on_window(ws: int, closed: Any) -> None:
        for i, (svc, key) in enumerate(closed.keys):
            if closed.observed[i] > 0:
                counts[(svc, key, ws)] = float(closed.observed[i])

    det.watch_windows(on_window)
    events: list[IncidentEvent] = []
    with open_binary(path) as f:
        for batch in iter_batches(f):
            events += det.feed_batch(batch).incidents
    events += det.flush()
    signals = det.take_signals()  # composition shifts and ingest gaps (issue 18): the same stream
    outages, region_events = OutageGrouper().feed(events)
    if regions is not None:
        regions.extend(e.to_json() for e in sorted(region_events, key=lambda e: (e.incident_id, e.seq)))
    main = [*outages, *signals]
    return [e.to_json() for e in sorted(main, key=lambda e: (e.incident_id, e.seq))], counts


def count_diff(got: dict[Any, float], want: dict[Any, float], limit: int = 12) -> str:
    """A short description of how two window-count maps differ (for assertion messages)."""
    missing = sorted(k for k in want if k not in got)
    extra = sorted(k for k in got if k not in want)
    wrong = sorted(k for k in want if k in got and got[k] != want[k])
    parts = [
        f"{len(missing)} missing {missing[:limit]}",
        f"{len(extra)} unexpected {extra[:limit]}",
        f"{len(wrong)} wrong {[(k, got[k], want[k]) for k in wrong[:limit]]}",
    ]
    return "; ".join(parts)


def incident_diff(got: list[bytes], want: list[bytes], limit: int = 6) -> str:
    """How two deduplicated incident streams differ: missing, unexpected and changed events."""
    g = {(e["incident_id"], e["seq"]): e for e in map(orjson.loads, got)}
    w = {(e["incident_id"], e["seq"]): e for e in map(orjson.loads, want)}
    missing = sorted(w.keys() - g.keys())
    extra = sorted(g.keys() - w.keys())
    changed = [k for k in sorted(w.keys() & g.keys()) if g[k] != w[k]]

    def brief(e: dict[str, Any]) -> str:
        return f"{e['type']} {e['service']}/{e['region']} seq={e['seq']} at={e['detected_at']} obs={e['observed']}"

    lines = [f"{len(missing)} missing, {len(extra)} unexpected, {len(changed)} changed (of {len(w)})"]
    lines += [f"  missing {brief(w[k])}" for k in missing[:limit]]
    lines += [f"  unexpected {brief(g[k])}" for k in extra[:limit]]
    for k in changed[:limit]:
        fields = sorted(f for f in w[k] if g[k].get(f) != w[k][f])
        lines.append(
            f"  changed {brief(w[k])}: " + ", ".join(f"{f}: {g[k].get(f)!r} != {w[k][f]!r}" for f in fields)
        )
    return "\n".join(lines)
