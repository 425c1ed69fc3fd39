"""Stage 1: read report events, count them per input partition, forward closed windows.

This is the per-event hot path of the live pipeline, so it reads with aiokafka
``getmany`` in batches instead of iterating Faust events one by one (Faust's per-event
stream machinery caps out near 56k events/s on this kind of machine), and with ``raw_batches``
(the default) its fetches are whole record batches read by a compiled reader instead of one
``ConsumerRecord`` per record (stream/ingest_raw.py).

Exactness without a changelog: each input partition (a *source*) keeps only counts
of its still-open windows. Its committed offset is the first offset that still feeds
an open window, and the commit's metadata records where processing had got to and the
watermark. After a crash or rebalance the new owner re-reads from the committed offset;
records before the recorded position are *replayed* (windows already closed are
skipped, open ones rebuilt exactly), then processing continues. Partials and marks are
re-sent identically and the owners treat them idempotently.

Once per ``summary_interval_s`` the service logs one ``summary`` line (rates and counts
since the previous one, the lag now, the open incidents of this worker's owners).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from spikedetect import kafka_clients
from spikedetect.stream import ingest_raw
from spikedetect.stream.faust_fixes import force_metadata_update
from spikedetect.stream.ingest_rebalance import Rebalance, assign, revoke
from spikedetect.stream.logs import log_every
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.outbox import input_dead_letter
from spikedetect.stream.settings import Settings
from spikedetect.stream.source_state import SourceState, Totals, idle_now
from spikedetect.stream.topics import ensure_topics, wanted_topics
from spikedetect.stream.wire import encode, encode_packs, encode_partials

log = logging.getLogger("spikedetect.ingest")

__all__ = ["IngestService", "SourceState", "Totals"]


class IngestService(Service):
    """Consumes the input topic in group ``<app_id>-ingest`` and feeds the owners."""

    def __init__(self, settings: Settings, metrics: Metrics, *,
                 open_incidents: Callable[[], int] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.metrics = metrics
        self.open_incidents = open_incidents  # for the summary line: incidents open at this worker's owners
        self.totals = Totals()
        self._summarised = (time.monotonic(), Totals())
        self.sources: dict[int, SourceState] = {}
        self.n_sources = 0
        self.n_owners = 0
        self._last_commit = time.monotonic()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.admin: AIOKafkaAdminClient | None = None
        self.caught_up = False
        self.batch_lock = asyncio.Lock()  # a rebalance waits for the batch in hand (ingest_rebalance.py)

    async def on_start(self) -> None:
        s = self.settings
        conn = s.connection()
        self.admin = kafka_clients.admin(conn)
        await self.admin.start()
        await ensure_topics(self.admin, wanted_topics(s), s.replication_factor)
        self.producer = kafka_clients.producer(conn, enable_idempotence=True, acks="all", linger_ms=20,
                                               max_batch_size=256 * 1024, max_request_size=4 * 1024 * 1024)
        await self.producer.start()
        raw = s.raw_batches and ingest_raw.install()  # see ingest_raw.py; off: aiokafka's records
        self.consumer = kafka_clients.consumer(
            conn, group_id=f"{s.app_id}-ingest", enable_auto_commit=False, auto_offset_reset="earliest",
            value_deserializer=ingest_raw.RAW_MARKER if raw else None,
            max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024,
            isolation_level="read_committed", session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(1000, s.session_timeout_ms // 3),
            max_poll_interval_ms=300_000,
        )
        self.consumer.subscribe([s.input_topic], listener=Rebalance(self))
        await self.consumer.start()
        parts = self.consumer.partitions_for_topic(s.input_topic) or set()
        if not parts:
            await force_metadata_update(self.consumer)
            parts = self.consumer.partitions_for_topic(s.input_topic) or set()
        self.n_sources = len(parts)
        self.n_owners = len(await self.producer.partitions_for(s.partials_topic))

    async def on_stop(self) -> None:
        try:
            await self.commit(force=True)
        except Exception:
            log.exception("final commit failed")
        for client in (self.consumer, self.producer, self.admin):
            if client is not None:
                await client.stop() if not isinstance(client, AIOKafkaAdminClient) else await client.close()

    # -- rebalancing (stream/ingest_rebalance.py) ---------------------------------------------
    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        await revoke(self, revoked)

    async def on_assigned(self, assigned: list[TopicPartition]) -> None:
        await assign(self, assigned)

    # -- the loop ------------------------------------------------------------------------
    @Service.task
    async def _consume(self) -> None:
        assert self.consumer is not None
        while not self.should_stop:
            try:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=self.settings.batch_max_records)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fetch failed; retrying")
                await asyncio.sleep(1.0)
                continue
            # the states the records were fetched for, before anything else can run: a rebalance
            # may replace them, and the new ones re-read from their checkpoints (ingest_rebalance.py)
            fetched_for = {tp: self.sources.get(tp.partition) for tp in batch}
            async with self.batch_lock:
                for tp in list(batch):
                    records = batch.pop(tp)  # freed once fed: raw chunks hold their fetch's bytes
                    st = fetched_for[tp]
                    if st is not None and st is self.sources.get(tp.partition) and records:
                        await self._process(tp, st, records)
                await self._idle_tick()
            try:
                await self.commit()
            except KafkaError as exc:
                # e.g. a rebalance or a broker restart while committing. Skipping a commit is
                # safe: the previous checkpoint stays valid (a restart would just re-read more),
                # and the sources stay dirty, so the next interval tries again.
                log.warning("commit failed (%s: %s); retrying at the next interval", type(exc).__name__, exc)

    async def _process(self, tp: TopicPartition, st: SourceState, records: Sequence[Any]) -> None:
        """Feed one partition's fetched items: raw batches (ingest_raw.py) or aiokafka's records."""
        if type(records[0]) is ingest_raw.RawChunk:
            for offsets, values, stamps, origin in ingest_raw.groups(records, self.settings.batch_max_records):
                await self._feed(tp, st, offsets, values, stamps, origin)
        else:
            await self._feed(tp, st, [r.offset for r in records],
                             [r.value if r.value is not None else b"" for r in records],
                             [r.timestamp for r in records], records.__getitem__)

    async def _feed(self, tp: TopicPartition, st: SourceState, offsets: list[int], values: list[bytes],
                    stamps: list[int], origin: Callable[[int], Any]) -> None:
        self.metrics.consumed.inc(len(offsets))
        self.totals.consumed += len(offsets)
        st.last_arrival = time.monotonic()
        st.confirm_poll_ms = None
        was_idle, st.idle = st.idle, False
        rejects, res = st.feed(offsets, values, stamps, origin)
        await self._dead_letter(tp, [(origin(i), reason) for i, reason in rejects])
        if res is not None:
            m = self.metrics
            m.accepted.inc(res.accepted)
            m.duplicate.inc(res.duplicates)
            self.totals.accepted += res.accepted
            self.totals.duplicates += res.duplicates
        st.next_offset = offsets[-1] + 1
        st.dirty = True
        await self._forward(st, force_mark=was_idle)

    async def _dead_letter(self, tp: TopicPartition, rejected: list[tuple[Any, str]]) -> None:
        """Send (record, reason) pairs to the dead-letter topic and count them."""
        assert self.producer is not None
        for rec, reason in rejected:
            key, headers = input_dead_letter(tp.topic, tp.partition, rec, reason)
            await self.producer.send(self.settings.dlq_topic, rec.value, key=key, headers=headers)
            if reason == "late":
                self.metrics.late.inc()
                self.totals.late += 1
            else:
                self.metrics.rejected.labels(reason).inc()
                self.totals.rejected += 1
            self.metrics.dead_lettered.labels(reason).inc()

    async def _forward(self, st: SourceState, *, force_mark: bool = False) -> None:
        """Send closed windows' partials, then a mark if the watermark crossed a window."""
        assert self.producer is not None
        s = self.settings
        dead = st.counter.take_dead()  # held reports never confirmed (ts_skewed): accepted when they came
        if dead:
            self.totals.accepted -= len(dead)
            await self._dead_letter(TopicPartition(s.input_topic, st.partition),
                                    [(rec, reason) for rec, _, reason in dead])
        closed = st.counter.take_closed()
        sends = (encode_packs(st.partition, closed) if s.partials_wire == 2  # per service, few messages
                 else (m for window in closed for m in encode_partials(st.partition, window)))
        for service, blob in sends:
            await self.producer.send(s.partials_topic, blob, key=service.encode())
        wm = st.counter.watermark_ms
        mark_ws = None if wm is None else wm - wm % s.detector.window_ms
        now = time.monotonic()
        heartbeat_s = 1.0 if st.idle else 5.0  # idle: owners wait on time, so tell them often
        if closed or force_mark or mark_ws != st.last_mark_ws or now - st.last_mark_at > heartbeat_s:
            blob = encode(st.mark(self.n_sources))  # after the partials: an owner waits for them
            for q in range(self.n_owners):
                await self.producer.send(s.partials_topic, blob, partition=q)
            st.last_mark_ws, st.last_mark_at = mark_ws, now

    @Service.task
    async def _summaries(self) -> None:
        await log_every(self, self.settings.summary_interval_s, self.summary, log)

    def summary(self) -> str:
        """One ``key=value`` line: what happened since the previous call, and the lag now."""
        now = time.monotonic()
        then, last = self._summarised
        lag = 0
        if self.consumer is not None:
            for st in self.sources.values():
                high = self.consumer.highwater(TopicPartition(self.settings.input_topic, st.partition))
                if high is not None:
                    lag += max(0, high - max(st.next_offset, 0))
        try:
            open_incidents = str(self.open_incidents()) if self.open_incidents is not None else "na"
        except Exception:  # noqa: BLE001 - a summary must never stop ingestion
            open_incidents = "na"
        self._summarised = (now, Totals(**vars(self.totals)))
        return self.totals.summary_since(last, now - then, lag=lag, open_incidents=open_incidents,
                                         partitions=len(self.sources))

    async def _idle_tick(self) -> None:
        """Advance the watermark of partitions that have been quiet for ``idle_ms``."""
        s = self.settings
        now = time.monotonic()
        assert self.consumer is not None
        for st in self.sources.values():
            tp = TopicPartition(s.input_topic, st.partition)
            high = self.consumer.highwater(tp)
            if high is not None and st.next_offset >= 0:
                self.metrics.lag.labels(str(st.partition)).set(max(0, high - st.next_offset))
            quiet_ms = (now - st.last_arrival) * 1000
            c = st.counter
            # A partition that has delivered nothing since its assignment (and had no checkpoint)
            # waits longer: a producer's first reports can reach it after the others' (see
            # docs/operations.md, "Idle input").
            never = c.watermark_ms is None and c.anchor_ms() is None
            wait_ms = s.idle_empty_wait_ms if never else s.idle_ms
            if not idle_now(st, high=high, poll_ms=self.consumer.last_poll_timestamp(tp), quiet_ms=quiet_ms,
                            wait_ms=wait_ms, wall_now_ms=time.time() * 1000):
                continue
            was_idle = st.go_idle(quiet_ms, s.idle_rate)
            if not was_idle:
                log.info("input partition %d quiet for %.1f s: its watermark follows the wall clock until reports "
                         "come (reports older than it then are late)", st.partition, quiet_ms / 1000)
            await self._forward(st, force_mark=not was_idle)

    async def commit(self, *, force: bool = False, only: set[int] | None = None) -> None:
        """Checkpoint every source: flush what was sent, then commit resume offset + metadata."""
        now = time.monotonic()
        if not force and (now - self._last_commit) * 1000 < self.settings.commit_interval_ms:
            return
        self._last_commit = now
        assert self.consumer is not None and self.producer is not None
        offsets = {}
        for p, st in self.sources.items():
            if (only is not None and p not in only) or not st.dirty:
                continue
            cp = st.checkpoint()
            if cp is not None:
                offsets[TopicPartition(self.settings.input_topic, p)] = OffsetAndMetadata(*cp)
        if not offsets:
            return
        await self.producer.flush()
        await self.consumer.commit(offsets)
        for tp in offsets:
            done = self.sources.get(tp.partition)
            if done is not None:  # None: revoked by a rebalance while this commit was under way
                done.dirty = False

