"""Publishing outage incident events, the optional region events (idempotent producer, delivery
awaited) and owner dead letters."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from mode import Service

from spikedetect import kafka_clients
from spikedetect.core.signal_events import SignalEvent
from spikedetect.stream.live import LiveView
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.outbox import Outbox
from spikedetect.stream.settings import Settings

log = logging.getLogger("spikedetect.incidents")


class Publisher(Service):
    def __init__(self, settings: Settings, metrics: Metrics, live: LiveView, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.metrics = metrics
        self.live = live
        self.producer: AIOKafkaProducer | None = None
        self._ready = asyncio.Event()

    async def on_start(self) -> None:
        self.producer = kafka_clients.producer(self.settings.connection(), enable_idempotence=True, acks="all",
                                               linger_ms=5)
        await self.producer.start()
        self._ready.set()

    async def on_stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def publish(self, out: Outbox) -> None:
        """Send and wait until the broker has every message (the owner writes state only after)."""
        await self._ready.wait()
        assert self.producer is not None
        s = self.settings
        send = self.producer.send
        futures = [await send(s.incidents_topic, e.to_json(), key=e.kafka_key) for e in out.events]
        if s.regions_topic:
            futures += [await send(s.regions_topic, r.to_json(), key=r.kafka_key) for r in out.regions]
        futures += [await send(s.dlq_topic, body, headers=headers) for body, headers in out.dead]
        if s.windows_topic:
            futures += [await send(s.windows_topic, value, key=key) for key, value in out.windows]
        await asyncio.gather(*futures)
        for e in out.events:
            self.metrics.incidents.labels(e.type).inc()
            self.live.on_incident(e)
            if isinstance(e, SignalEvent):  # composition shift or ingest gap (issue 18)
                log.info("%s %s id=%s seq=%d service=%s region=%s score=%g opened_at=%s detected_at=%s at=%s%s",
                         e.kind, e.type, e.incident_id, e.seq, e.service, e.region, e.score, e.opened_at,
                         e.detected_at, e.updated_at, f" closed_at={e.closed_at}" if e.closed_at else "")
                continue
            log.info("incident %s id=%s seq=%d service=%s region=%s regions=%d countries=%s observed=%g "
                     "expected=%g score=%g peak=%g opened_at=%s detected_at=%s at=%s%s", e.type, e.incident_id,
                     e.seq, e.service, e.region, len(e.regions), ",".join(e.countries), e.observed, e.expected,
                     e.score, e.peak_count, e.opened_at, e.detected_at, e.updated_at,
                     f" closed_at={e.closed_at}" if e.closed_at else "")
