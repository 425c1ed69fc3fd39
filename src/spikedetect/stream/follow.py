"""Follow the incidents topic into the worker's :class:`~spikedetect.stream.live.LiveView`.

Every worker publishes only the incidents of the services it owns, and after a
rebalance the new owner has not seen what the old one published. Following the
incidents topic (small: a few events per incident) gives every worker the same view
of every incident, so ``/incidents`` and ``/incidents/{id}`` can be answered by any
worker without fan-out. The publisher also feeds the view directly, so a worker's own
incidents show up before the round trip; duplicates are dropped on ``(incident_id, seq)``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from spikedetect import kafka_clients
from spikedetect.stream.faust_fixes import fetch_all_metadata
from spikedetect.stream.live import LiveView
from spikedetect.stream.settings import Settings

log = logging.getLogger("spikedetect.follow")

REQUIRED = ("incident_id", "seq", "type", "service", "region", "opened_at", "detected_at")


class IncidentFollower(Service):
    """Reads the incidents topic from ``lookback_ms`` ago, then follows it."""

    def __init__(
        self, settings: Settings, live: LiveView, *, lookback_ms: int = 7 * 86_400_000, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.live = live
        self.lookback_ms = lookback_ms
        self.consumer: AIOKafkaConsumer | None = None
        self.loaded = asyncio.Event()  # set once what was in the topic at start has been read
        self._catch_up: dict[TopicPartition, int] = {}

    async def on_start(self) -> None:
        self.consumer = kafka_clients.consumer(
            self.settings.connection(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def _assign(self) -> list[TopicPartition]:
        """Wait for the topic (the ingest stage creates it), assign every partition, seek."""
        c = self.consumer
        assert c is not None
        topic = self.settings.incidents_topic
        while not self.should_stop:
            cluster = await fetch_all_metadata(c)  # what consumer.topics() does
            parts = cluster.partitions_for_topic(topic)
            if parts:
                break
            await asyncio.sleep(1.0)
        tps = [TopicPartition(topic, p) for p in sorted(parts or ())]
        c.assign(tps)
        start_ms = int(time.time() * 1000) - self.lookback_ms
        found = await c.offsets_for_times(dict.fromkeys(tps, start_ms))
        ends = await c.end_offsets(tps)
        for tp in tps:
            at = found.get(tp)
            if at is None:
                c.seek(tp, ends[tp])
            else:
                c.seek(tp, at.offset)
        self._catch_up = {tp: end for tp, end in ends.items() if end > 0}
        return tps

    @Service.task
    async def _follow(self) -> None:
        c = self.consumer
        assert c is not None
        while not self.should_stop:
            try:
                await self._assign()
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cannot assign the incidents topic; retrying")
                await asyncio.sleep(2.0)
        while not self.should_stop:
            try:
                batch = await c.getmany(timeout_ms=500, max_records=5000)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("incident fetch failed; retrying")
                await asyncio.sleep(1.0)
                continue
            for records in batch.values():
                for rec in records:
                    self._add(rec.value)
            if not self.loaded.is_set():
                for tp, end in list(self._catch_up.items()):
                    if await c.position(tp) >= end:
                        del self._catch_up[tp]
                if not self._catch_up:
                    self.loaded.set()
                    log.info("incident view loaded: %d incidents", len(self.live.incidents))

    def _add(self, value: bytes | None) -> None:
        try:
            event = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            log.warning("ignoring a non-JSON message on the incidents topic")
            return
        if not isinstance(event, dict) or any(k not in event for k in REQUIRED):
            log.warning("ignoring a message that is not a spikedetect.incident/v2 (or v1) event")
            return
        self.live.on_incident(event)
