"""Stage 1 on raw record batches (stream/ingest_raw.py) against aiokafka's records, on the broker.

One input topic gets uncompressed batches (keys, headers, null values, invalid, duplicate and
late reports), gzip batches, and transactions - one aborted, one committed. Stage 1 reads it
twice, with ``raw_batches`` on and off: the counts, the dead letters (key, value, headers) and
the partials sent must be the same, and the raw run must really have read batches raw.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
import pytest

from spikedetect import kafka_clients
from spikedetect.kernel import loader
from spikedetect.stream import ingest_raw
from spikedetect.stream.ingest import IngestService
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.settings import Settings
from spikedetect.stream.topics import ensure_topics, wanted_topics
from spikedetect.stream.wire import decode, partials_of

pytestmark = [pytest.mark.kafka, pytest.mark.skipif(loader.records is None, reason="compiled reader not built")]

BASE = 1_795_651_200_000
MIN = 60_000


def report(m: int, i: int, eid: str | None = None) -> bytes:
    return orjson.dumps({"ts": BASE + m * MIN + i * 7, "service": "ig", "region": ["US/CA", "GB"][i % 2],
                         "category": "feed", "event_id": eid or f"{m}-{i}"})


async def produce(bootstrap: str, topic: str) -> int:
    """Everything the input gets; returns how many records a read_committed consumer sees."""
    conn = Settings(bootstrap=bootstrap).connection()
    seen = 0
    for codec in (None, "gzip"):
        p = kafka_clients.producer(conn, compression_type=codec, linger_ms=50)
        await p.start()
        try:
            for m in range(0, 6) if codec is None else range(6, 9):
                for i in range(40):
                    await p.send(topic, report(m, i), key=b"k%d" % i, partition=i % 2,
                                 headers=[("h", b"v")] if i % 3 == 0 else [], timestamp_ms=BASE + m * MIN)
                seen += 40
            for value in (b"not json", None, report(1, 0, eid="5-0"), report(0, 3, eid="late")):
                await p.send(topic, value, key=b"odd", partition=0)
                seen += 1
            await p.flush()
        finally:
            await p.stop()
    return seen + await transactions(conn, topic)


async def transactions(conn: Any, topic: str) -> int:
    p = kafka_clients.producer(conn, transactional_id=f"raw-{uuid.uuid4().hex[:8]}")
    await p.start()
    try:
        for commit in (False, True):
            await p.begin_transaction()
            for i in range(30):
                await p.send(topic, report(9, i, eid=f"tx-{commit}-{i}"), partition=i % 2)
            await (p.commit_transaction() if commit else p.abort_transaction())
    finally:
        await p.stop()
    return 30


async def stage1(bootstrap: str, topic: str, raw: bool, want: int) -> dict[str, Any]:
    """Run stage 1 over the topic until it has read ``want`` records; what it did and sent."""
    s = Settings(bootstrap=bootstrap, app_id=f"{topic}-{raw}", input_topic=topic, dlq_topic=f"{topic}-dlq-{raw}",
                 raw_batches=raw, summary_interval_s=0, topic_partitions=2, partials_partitions=1)
    before = (ingest_raw.STATS.raw, ingest_raw.STATS.decompressed, ingest_raw.STATS.fallback)
    svc = IngestService(s, Metrics())
    await svc.start()
    try:
        deadline = time.monotonic() + 60
        while svc.totals.consumed < want and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
    finally:
        await svc.stop()
    now = (ingest_raw.STATS.raw, ingest_raw.STATS.decompressed, ingest_raw.STATS.fallback)
    return {"totals": vars(svc.totals), "stats": tuple(b - a for a, b in zip(before, now, strict=True)),
            "dlq": await read_all(bootstrap, s.dlq_topic, with_meta=True),
            # packs depend on fetch boundaries; the partials they carry must not
            "partials": sorted(repr(p) for m in map(decode, await read_all(bootstrap, s.partials_topic))
                               for p in partials_of(m))}


async def read_all(bootstrap: str, topic: str, with_meta: bool = False) -> list[Any]:
    c = kafka_clients.consumer(Settings(bootstrap=bootstrap).connection(), topic, auto_offset_reset="earliest",
                               group_id=None)
    await c.start()
    out: list[Any] = []
    try:
        while batch := await c.getmany(timeout_ms=1500):
            for recs in batch.values():
                out += [(r.key, r.value, r.headers) if with_meta else r.value for r in recs]
    finally:
        await c.stop()
    return sorted(out, key=repr)


async def test_raw_batches_give_what_aiokafka_records_give(kafka_bootstrap: str) -> None:
    topic = f"raw-{uuid.uuid4().hex[:8]}"
    admin = kafka_clients.admin(Settings(bootstrap=kafka_bootstrap).connection())
    await admin.start()
    try:
        await ensure_topics(admin, wanted_topics(Settings(input_topic=topic, topic_partitions=2)), 1)
    finally:
        await admin.close()
    want = await produce(kafka_bootstrap, topic)
    raw = await stage1(kafka_bootstrap, topic, True, want)
    records = await stage1(kafka_bootstrap, topic, False, want)
    assert raw["totals"]["consumed"] == want
    assert raw["totals"] == records["totals"]
    assert raw["dlq"] == records["dlq"] and len(raw["dlq"]) >= 3
    assert raw["partials"] == records["partials"] and raw["partials"]
    assert records["stats"] == (0, 0, 0)  # off: aiokafka's records, no raw batches
    raw_batches, decompressed, fallback = raw["stats"]
    assert raw_batches > 0 and decompressed > 0 and fallback == 0  # gzip: decompressed, then read raw
