"""Every access to private internals of Faust and aiokafka, in one place.

``grep -rn "faust_fixes" src`` lists every use. Each fix here reaches into a library's
internals, which a release may change without notice, so each has its own test
(tests/stream/test_faust_fixes.py) and the versions it was tested with are declared in
pyproject.toml, ``[tool.spikedetect.tested-versions]``: the test fails when an installed
version is outside that range (then re-check each fix below and widen the range).

* :func:`make_commits_wait_for_table_writes`: ``faust.transport.producer.ProducerBuffer``
  (``_send_pending``, ``flush``, ``flush_atmost``, ``size``) - a patch, see its docstring.
* :func:`table_write_buffer`: ``table.app.producer.buffer``, Faust's queue of table writes.
* :func:`partition_writer`: ``table.data`` (the local store) and ``table.send_changelog``, to
  write a table outside of a stream event (Faust takes the partition from the current event).
* :func:`fetch_all_metadata`, :func:`force_metadata_update`: ``AIOKafkaConsumer._client``,
  for metadata of topics the consumer is not subscribed to.
"""

from __future__ import annotations

import asyncio
from typing import Any


def make_commits_wait_for_table_writes() -> None:
    """Make Faust's producer flush wait until every queued table write has gone out.

    Before committing the offsets of processed events, Faust flushes its producer buffer -
    but ``ProducerBuffer.flush`` returns as soon as one message takes longer than 0.1 s to be
    handed to the Kafka client (a full batch waiting for the broker), leaving table writes
    queued while the offsets of the events that made them are committed. A crash then loses
    those writes for good: the next owner neither finds them in the changelog nor re-reads
    the events (the SIGKILL soak lost pending partials this way). Patched once per process:
    flush until the queue is empty and no message is being handed over.
    """
    from faust.transport.producer import ProducerBuffer

    if getattr(ProducerBuffer, "_waits_for_every_write", False):
        return
    send_pending = ProducerBuffer._send_pending

    async def _send_pending(self: Any, fut: Any) -> None:
        self._handing_over = getattr(self, "_handing_over", 0) + 1
        try:
            await send_pending(self, fut)
        finally:
            self._handing_over -= 1

    async def flush(self: Any) -> None:
        while self.size or getattr(self, "_handing_over", 0):
            if self.size:
                await self.flush_atmost(None)  # raises when the producer is not running
            else:
                await asyncio.sleep(0.002)

    ProducerBuffer._send_pending = _send_pending  # type: ignore[method-assign]
    ProducerBuffer.flush = flush  # type: ignore[method-assign]
    ProducerBuffer._waits_for_every_write = True  # type: ignore[attr-defined]


def table_write_buffer(table: Any) -> Any | None:
    """Faust's producer buffer, where every write to ``table`` queues (``size``,
    ``flush_atmost(n)``); None for a plain mapping (tests) or a table without an app."""
    return getattr(getattr(getattr(table, "app", None), "producer", None), "buffer", None)


class _PartitionWriter:
    """What ``table[key] = value`` and ``table.pop(key)`` do (local store, then changelog), with
    the changelog partition given instead of taken from the current event."""

    def __init__(self, table: Any, partition: int) -> None:
        self.table = table
        self.partition = partition

    def __setitem__(self, key: str, value: bytes) -> None:
        self.table.data[key] = value
        self.table.send_changelog(self.partition, key, value)

    def pop(self, key: str, default: Any = None, /) -> Any:
        data = self.table.data
        if key not in data:
            return default
        value = data[key]
        del data[key]
        self.table.send_changelog(self.partition, key, None, value_serializer="raw")
        return value


def partition_writer(table: Any, partition: int) -> Any:
    """A writer into ``partition`` of a Faust table that works outside of a stream event (on
    revoke, on stop); a plain mapping (tests) is returned as it is."""
    if not hasattr(table, "send_changelog"):
        return table
    return _PartitionWriter(table, partition)


async def fetch_all_metadata(consumer: Any) -> Any:
    """The cluster metadata of every topic (what ``consumer.topics()`` does, but returning
    the ``ClusterMetadata``, with partitions), for a consumer subscribed to nothing."""
    return await consumer._client.fetch_all_metadata()


async def force_metadata_update(consumer: Any) -> None:
    """Refresh the consumer's metadata now (a topic created a moment ago)."""
    await consumer._client.force_metadata_update()
