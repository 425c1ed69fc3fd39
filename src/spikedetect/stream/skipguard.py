"""The owner agent's guard against offsets that Faust's stream skips after a rebalance."""

from __future__ import annotations

import logging
import time
from typing import Any

from spikedetect import kafka_clients
from spikedetect.kafka_clients import KafkaConnection

log = logging.getLogger("spikedetect.owner")


class SkipGuard:
    """Makes the owner agent see every offset of its partials partitions, in order.

    After a rebalance Faust's stream can start a partition past its committed offset (its
    fetcher reads before the seek to the committed offsets lands), and Faust then counts the
    offsets it jumped over as acknowledged "gaps": the partials in them would be lost for good
    (the SIGKILL soak lost thousands of window counts this way). Before each event the agent
    asks :meth:`missed` for what came before it and was never delivered: from the committed
    offset for the first event of a new owner, from the last event otherwise. Those messages
    are read here, directly, and handled first; handling is idempotent, so reading a message
    twice is harmless. The committed offsets are read when partitions are assigned, before
    Faust fetches anything (and before it can commit its "gaps").
    """

    def __init__(self, connection: KafkaConnection, group: str, topic: str, timeout_s: float = 120.0) -> None:
        self.connection, self.group, self.topic, self.timeout_s = connection, group, topic, timeout_s
        self.next_offset: dict[int, int] = {}
        self._consumer: Any = None
        self._admin: Any = None

    async def assigned(self, partitions: list[int]) -> None:
        """Partitions assigned to this worker: each starts where the group committed it."""
        for q in partitions:
            self.next_offset.pop(q, None)
            try:
                self.next_offset[q] = await self._start_offset(q)
            except Exception:  # then the first event asks again
                log.warning("owner %s: could not read the committed offset yet", q, exc_info=True)

    async def missed(self, q: int, offset: int) -> list[bytes]:
        """The values of offsets before ``offset`` that the stream skipped (usually none)."""
        expected = self.next_offset.get(q)
        if expected is None:
            expected = await self._start_offset(q)
        self.next_offset[q] = max(expected, offset + 1)
        if offset <= expected:
            return []
        log.warning("owner %s: the stream skipped offsets %d..%d; reading them directly", q, expected, offset - 1)
        return await self._read(q, expected, offset)

    async def _start_offset(self, q: int) -> int:
        from aiokafka import TopicPartition

        tp = TopicPartition(self.topic, q)
        if self._admin is None:
            self._admin = kafka_clients.admin(self.connection)
            await self._admin.start()
        committed = (await self._admin.list_consumer_group_offsets(self.group, partitions=[tp])).get(tp)
        if committed is not None and committed.offset >= 0:
            return int(committed.offset)
        reader = await self._reader()
        return int((await reader.beginning_offsets([tp]))[tp])  # no commit yet: "earliest"

    async def _reader(self) -> Any:
        """A group-less consumer (created on first use) that reads committed records only."""
        if self._consumer is None:
            self._consumer = kafka_clients.consumer(self.connection, group_id=None, enable_auto_commit=False,
                                                    isolation_level="read_committed")
            await self._consumer.start()
        return self._consumer

    async def _read(self, q: int, start: int, end: int) -> list[bytes]:
        from aiokafka import TopicPartition

        tp = TopicPartition(self.topic, q)
        c = await self._reader()
        c.assign([tp])
        c.seek(tp, start)
        out: list[bytes] = []
        deadline = time.monotonic() + self.timeout_s
        nxt = start
        while nxt < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {self.topic}[{q}] offsets {nxt}..{end - 1}")
            for rec in (await c.getmany(tp, timeout_ms=1000)).get(tp, []):
                if nxt <= rec.offset < end and rec.value is not None:
                    out.append(rec.value)
                nxt = max(nxt, rec.offset + 1)
        return out

    async def close(self) -> None:
        for client in (self._consumer, self._admin):
            if client is not None:
                await (client.stop() if hasattr(client, "stop") else client.close())
