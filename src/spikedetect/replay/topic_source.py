"""Reading a Kafka topic between two times or offsets, outside any consumer group.

The reader uses aiokafka with ``group_id=None``: partitions are assigned, not
subscribed, and nothing is committed, so the live workers' group is never joined or
moved. Where reading stops is fixed when it starts: the end offsets of that moment, or
the first offset at ``until`` (by Kafka record timestamp). Each partition is handed to
:class:`~spikedetect.replay.multisource.MultiSourceReplay` (the core's
:class:`~spikedetect.core.pipeline.Pipeline`) as its own source, with the
record timestamps as the event time of messages that have no ``ts``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from spikedetect import kafka_clients
from spikedetect.core import DetectorConfig
from spikedetect.kafka_clients import KafkaConnection
from spikedetect.replay.multisource import MultiSourceReplay
from spikedetect.stream.faust_fixes import fetch_all_metadata

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


@dataclass(frozen=True)
class TopicRange:
    """What to read: a topic, and optional bounds (times in epoch ms, offsets per partition).

    ``since_ms``/``until_ms`` select records by their Kafka timestamp, ``[since, until)``;
    ``from_offset``/``to_offset`` apply to every partition, ``[from, to)``. Both kinds
    may be combined; the narrower bound wins.
    """

    topic: str
    bootstrap: str | KafkaConnection = DEFAULT_BOOTSTRAP  # a connection: TLS/SASL as the worker has it
    since_ms: int | None = None
    until_ms: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None


@dataclass
class TopicBatch:
    """Records of one partition, in offset order."""

    partition: int
    values: list[bytes]
    timestamps: list[int | None]
    offsets: list[int]


Bounds = dict[int, tuple[int, int]]  # partition -> [start, end) offsets


def consumer_for(kafka: str | KafkaConnection) -> AIOKafkaConsumer:
    """A consumer that belongs to no group and never commits (what replay reads with)."""
    conn = kafka if isinstance(kafka, KafkaConnection) else KafkaConnection(kafka)
    return kafka_clients.consumer(
        conn, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        isolation_level="read_committed", max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )  # fmt: skip


async def resolve_bounds(consumer: AIOKafkaConsumer, rng: TopicRange) -> Bounds:
    """Start and end offset of every partition, fixed now."""
    cluster = await fetch_all_metadata(consumer)  # the consumer subscribes to nothing
    parts = cluster.partitions_for_topic(rng.topic)
    if not parts:
        raise ValueError(f"topic {rng.topic!r} does not exist or has no partitions")
    tps = [TopicPartition(rng.topic, p) for p in sorted(parts)]
    begin = await consumer.beginning_offsets(tps)
    end = await consumer.end_offsets(tps)
    since = (
        await consumer.offsets_for_times(dict.fromkeys(tps, rng.since_ms)) if rng.since_ms is not None else {}
    )
    until = (
        await consumer.offsets_for_times(dict.fromkeys(tps, rng.until_ms)) if rng.until_ms is not None else {}
    )
    bounds: Bounds = {}
    for tp in tps:
        lo, hi = begin[tp], end[tp]
        if rng.since_ms is not None:
            found = since.get(tp)
            lo = max(lo, found.offset if found is not None else hi)
        if rng.until_ms is not None:
            found = until.get(tp)
            hi = min(hi, found.offset if found is not None else hi)
        if rng.from_offset is not None:
            lo = max(lo, rng.from_offset)
        if rng.to_offset is not None:
            hi = min(hi, rng.to_offset)
        bounds[tp.partition] = (lo, max(lo, hi))
    return bounds


async def read_topic(
    rng: TopicRange,
    on_bounds: Callable[[Bounds], None],
    on_batch: Callable[[TopicBatch], None],
    *,
    max_records: int = 20_000,
) -> None:
    """Read every partition from its start to its end offset; ``on_bounds`` first, then batches.

    A partition is done once the consumer's position reaches its end offset (control
    records of transactions are skipped by the position, not delivered).
    """
    consumer = consumer_for(rng.bootstrap)
    await consumer.start()
    try:
        bounds = await resolve_bounds(consumer, rng)
        on_bounds(bounds)
        tps = {p: TopicPartition(rng.topic, p) for p in bounds}
        consumer.assign(list(tps.values()))
        todo = set()
        for p, (lo, hi) in bounds.items():
            consumer.seek(tps[p], lo)
            if lo < hi:
                todo.add(p)
        consumer.pause(*[tps[p] for p in bounds if p not in todo])
        while todo:
            got = await consumer.getmany(*[tps[p] for p in todo], timeout_ms=500, max_records=max_records)
            for tp, records in got.items():
                _hand_out(tp.partition, [r for r in records if r.offset < bounds[tp.partition][1]], on_batch)
            for p in list(todo):
                if await consumer.position(tps[p]) >= bounds[p][1]:
                    todo.discard(p)
                    consumer.pause(tps[p])
    finally:
        await consumer.stop()


def _hand_out(partition: int, records: list[Any], on_batch: Callable[[TopicBatch], None]) -> None:
    """The records of one partition in range as a batch (none: nothing)."""
    if records:
        on_batch(TopicBatch(partition, [r.value if r.value is not None else b"" for r in records],
                            [r.timestamp for r in records], [r.offset for r in records]))


class TopicReplay:
    """Hands topic batches to a :class:`MultiSourceReplay`, one source per non-empty partition;
    a partition ends as soon as its last record in range was fed."""

    def __init__(self, topic: str, bounds: Bounds, config: DetectorConfig, **callbacks: Any) -> None:
        self.topic = topic
        self.ends = {p: hi for p, (_, hi) in bounds.items()}
        self.total = sum(hi - lo for lo, hi in bounds.values())
        self.done = 0
        self.runner = MultiSourceReplay(config, [p for p, (lo, hi) in bounds.items() if lo < hi], **callbacks)

    def feed(self, b: TopicBatch) -> None:
        where = [{"topic": self.topic, "partition": b.partition, "offset": o} for o in b.offsets]
        self.runner.feed(b.partition, b.values, b.timestamps, where)
        if b.offsets[-1] + 1 >= self.ends[b.partition]:
            self.runner.end_source(b.partition)
        self.done += len(b.values)

    def finish(self) -> MultiSourceReplay:
        self.runner.finish()
        return self.runner


def replay_topic(
    rng: TopicRange,
    config: DetectorConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
    **callbacks: Any,
) -> MultiSourceReplay:
    """Replay a topic range through the core; returns the finished runner.

    ``callbacks`` go to :class:`MultiSourceReplay` (``on_incident``, ``on_dead_letter``,
    ``on_window``); ``progress(records_done, records_total)`` is called after every batch.
    """
    holder: list[TopicReplay] = []

    def start(bounds: Bounds) -> None:
        holder.append(TopicReplay(rng.topic, bounds, config, **callbacks))
        if progress is not None:
            progress(0, holder[0].total)

    def batch(b: TopicBatch) -> None:
        holder[0].feed(b)
        if progress is not None:
            progress(holder[0].done, holder[0].total)

    asyncio.run(read_topic(rng, start, batch))
    return holder[0].finish()


def load_topic(rng: TopicRange) -> tuple[Bounds, list[TopicBatch]]:
    """Read a topic range into memory once (for ``--sweep``, which replays it many times)."""
    bounds: Bounds = {}
    batches: list[TopicBatch] = []
    asyncio.run(read_topic(rng, bounds.update, batches.append))
    return bounds, batches


__all__ = [
    "DEFAULT_BOOTSTRAP",
    "Bounds",
    "TopicBatch",
    "TopicRange",
    "TopicReplay",
    "load_topic",
    "read_topic",
    "replay_topic",
    "resolve_bounds",
]
