"""What a live run left on its topics: partials messages by type, changelog records (for bench_live)."""

from __future__ import annotations

from collections import Counter

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


async def topic_counts(bootstrap: str, app_id: str) -> dict[str, int]:
    """``partials_<type>`` (``p``: v1 per window, ``pk``: packs, ``m``: marks) on ``<app_id>-partials``,
    and ``changelog_records`` on the state table's changelog (end offsets: no transactions)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        out: dict[str, int] = {}
        log = f"{app_id}-state-changelog"
        parts = [TopicPartition(log, p) for p in consumer.partitions_for_topic(log) or ()]
        out["changelog_records"] = sum((await consumer.end_offsets(parts)).values()) if parts else 0
        topic = f"{app_id}-partials"
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        total = sum((await consumer.end_offsets(parts)).values()) if parts else 0
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        kinds: Counter[str] = Counter()
        while sum(kinds.values()) < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=20_000)).values():
                kinds.update(str(orjson.loads(r.value)["t"]) for r in records)
        out.update({f"partials_{k}": v for k, v in sorted(kinds.items())})
        return out
    finally:
        await consumer.stop()
