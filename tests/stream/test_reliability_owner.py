"""Every partial an owner was sent is applied, and its effect is durable before its offset commits.

Both found by the SIGKILL soak, which lost partials for good after kills:

* Faust commits the partials topic's offsets after flushing its producer buffer, but the
  buffer's flush gives up when one message takes longer than 0.1 s to be handed to the Kafka
  client, so table writes could still be queued when the offsets of their events were
  committed. Driven here with a slow channel, so the race is exact.
* After a restart Faust's stream could start a partition past its committed offset and count
  the jump as acknowledged; the owner agent's SkipGuard reads what was skipped (real broker).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.transport.producer import ProducerBuffer

from spikedetect.kafka_clients import KafkaConnection
from spikedetect.stream.faust_fixes import make_commits_wait_for_table_writes
from spikedetect.stream.skipguard import SkipGuard


class SlowChannel:
    """Hands a message to the (imaginary) client in 0.15 s, like a full batch awaiting the broker."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(0.15)
        self.sent.append(fut)


async def test_the_commit_flush_waits_for_every_queued_table_write() -> None:
    make_commits_wait_for_table_writes()
    channel = SlowChannel()
    buf = ProducerBuffer()
    buf.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    await buf.start()
    try:
        for i in range(6):
            buf.put(SimpleNamespace(message=SimpleNamespace(channel=channel), i=i))  # type: ignore[arg-type]
        await buf.flush_atmost(None)  # Faust's own loop: gives up after 0.1 s without a send
        assert buf.size > 0, "the slow channel no longer reproduces the race"
        await buf.flush()
        assert buf.size == 0 and len(channel.sent) == 6, "flush returned with writes still queued"
    finally:
        await buf.stop()


async def test_the_patch_is_applied_once() -> None:
    make_commits_wait_for_table_writes()
    flush = ProducerBuffer.flush
    make_commits_wait_for_table_writes()
    assert ProducerBuffer.flush is flush


# -- offsets the stream skips ----------------------------------------------------------------
@pytest.mark.kafka
async def test_skip_guard_reads_what_the_stream_jumped_over(kafka_bootstrap: str, topic_name: str) -> None:
    """The SIGKILL soak showed Faust starting a partials partition past its committed offset
    after a restart (and acking the jump as a "gap"). The guard hands the owner what was
    skipped: from the committed offset for the first event, from the previous event after."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic_name, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(12):
            await producer.send_and_wait(topic_name, f"m{i}".encode(), partition=0)
    finally:
        await producer.stop()
    group = f"{topic_name}-group"
    tp = TopicPartition(topic_name, 0)
    committer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign([tp])
        await committer.commit({tp: 3})
    finally:
        await committer.stop()

    guard = SkipGuard(KafkaConnection(kafka_bootstrap), group, topic_name)
    fresh = SkipGuard(KafkaConnection(kafka_bootstrap), f"{group}-new", topic_name)
    try:
        await guard.assigned([0])
        assert guard.next_offset == {0: 3}
        assert await guard.missed(0, 7) == [b"m3", b"m4", b"m5", b"m6"]  # the first event came at 7
        assert await guard.missed(0, 8) == []  # in order
        assert await guard.missed(0, 5) == []  # a re-delivery: handled again, nothing missed
        assert await guard.missed(0, 11) == [b"m9", b"m10"]  # a jump within the run
        await fresh.assigned([0])  # no commit yet: from the start of the log
        assert await fresh.missed(0, 2) == [b"m0", b"m1"]
    finally:
        await guard.close()
        await fresh.close()
