"""Rebalances that come in the middle of the ingest loop (stream/ingest_rebalance.py), driven
with an in-memory input topic so each interleaving happens every time.

Found by the child-kill test of ``--ingest-processes`` (tests/stream/test_ingest_processes.py),
which failed about once in CI with the replay's incidents but a different score: a second ingest
process joined the group while reports flowed, and the first one's rebalance - revoke, then the
same partitions assigned back - ran while its loop was sending a window's partials. The loop
went on to count the rest of the batch, fetched before the rebalance, into the new states, whose
watermark moved past windows they had not re-read yet: those windows went out short, and the
records, read again, were dead-lettered as late. Each test compares the partials every source
sent with those of the same input read without a rebalance.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import orjson
from aiokafka import TopicPartition

from spikedetect.stream.ingest import IngestService
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.settings import Settings
from spikedetect.stream.wire import decode, partials_of

BASE = 1_795_651_200_000
MIN = 60_000
SETTINGS = Settings(input_topic="reports", commit_interval_ms=1, summary_interval_s=0, idle_ms=60_000)
PER_FETCH = 50  # records per partition and fetch


def reports(partition: int, minutes: int = 14, per_minute: int = 20) -> list[bytes]:
    """Minute after minute, shuffled within the minute (as the live tests' streams)."""
    rng = random.Random(partition)
    out = []
    for m in range(minutes):
        batch = [orjson.dumps({"ts": BASE + m * MIN + rng.randrange(MIN), "service": "ig",
                               "region": ["US/CA", "GB"][partition], "category": "feed",
                               "event_id": f"{partition}-{m}-{i}"}) for i in range(per_minute)]
        rng.shuffle(batch)
        out += batch
    return out


class Kafka:
    """The ingest service's consumer, admin and producer over two in-memory partitions, with
    aiokafka's rebalance order: revoke, positions reset to the committed offsets, assign."""

    def __init__(self, svc: IngestService) -> None:
        self.svc = svc
        self.log = {p: reports(p) for p in (0, 1)}
        self.position = {p: 0 for p in self.log}
        self.committed: dict[TopicPartition, Any] = {}
        self.rebalancing = False
        self.sent: list[bytes] = []
        self.on_send: Callable[[], Awaitable[None]] | None = None  # once, at the next partial
        self.on_fetch: dict[int, Callable[[], Awaitable[None]]] = {}  # at the n-th fetch
        self.fetches = 0
        self.assign_delay_s = 0.0
        self.rebalances: list[asyncio.Future[None]] = []  # those started by a hook

    # consumer
    async def getmany(self, **kwargs: Any) -> dict[TopicPartition, list[Any]]:
        await asyncio.sleep(0)
        self.fetches += 1
        hook = self.on_fetch.pop(self.fetches, None)
        if hook is not None:
            await hook()
        if self.rebalancing:
            return {}
        out = {}
        for p, values in self.log.items():
            start = self.position[p]
            got = values[start:start + PER_FETCH]
            if got:
                out[TopicPartition("reports", p)] = [SimpleNamespace(offset=start + i, value=v, timestamp=None, key=None)
                                                     for i, v in enumerate(got)]
                self.position[p] = start + len(got)
        return out

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position[tp.partition] = offset

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        await asyncio.sleep(0)
        self.committed.update(offsets)

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.log[tp.partition])

    def last_poll_timestamp(self, tp: TopicPartition) -> None:
        return None

    # admin
    async def list_consumer_group_offsets(self, group: str, partitions: list[TopicPartition]) -> dict[Any, Any]:
        await asyncio.sleep(self.assign_delay_s)
        return {tp: self.committed[tp] for tp in partitions if tp in self.committed}

    # producer
    async def send(self, topic: str, value: bytes, **kwargs: Any) -> None:
        if self.on_send is not None and partials_of(decode(value)):
            hook, self.on_send = self.on_send, None
            await hook()
        self.sent.append(value)

    async def flush(self) -> None:
        await asyncio.sleep(0)

    # the group
    async def rebalance(self) -> None:
        """Every partition revoked and assigned back, fetch positions at the committed offsets."""
        tps = [TopicPartition("reports", p) for p in self.log]
        self.rebalancing = True
        await self.svc.on_revoked(tps)
        for tp in tps:
            self.position[tp.partition] = self.committed[tp].offset if tp in self.committed else 0
        self.rebalancing = False  # aiokafka hands out the new assignment's records from here on
        await self.svc.on_assigned(tps)


def service(settings: Settings = SETTINGS) -> tuple[IngestService, Kafka]:
    svc = IngestService(settings, Metrics())
    kafka = Kafka(svc)
    svc.consumer = svc.admin = svc.producer = kafka  # type: ignore[assignment]
    svc.n_sources, svc.n_owners = 2, 1
    return svc, kafka


async def read_all(svc: IngestService, kafka: Kafka) -> dict[tuple[int, int], dict[str, Any]]:
    """Run the loop until both partitions are read, close every window; (source, window) ->
    its counts as the owners got them (a re-sent partial replaces the earlier copy)."""
    await kafka.rebalance()  # the first assignment
    task = asyncio.ensure_future(IngestService._consume(svc))
    try:
        for _ in range(300):  # until every record has been read (records lost: 3 s)
            await asyncio.sleep(0.01)
            if (not kafka.on_fetch and kafka.on_send is None and not kafka.rebalancing and svc.sources
                    and all(st.next_offset == len(kafka.log[p]) for p, st in svc.sources.items())):
                break
    finally:
        task.cancel()
    assert not task.done() or task.cancelled(), task.exception()
    assert all(r.done() and r.exception() is None for r in kafka.rebalances)
    for st in svc.sources.values():
        st.counter.finish()
        await svc._forward(st)
    got: dict[tuple[int, int], dict[str, Any]] = {}
    for msg in (p for blob in kafka.sent for p in partials_of(decode(blob))):
        got[(msg.source, msg.ws_ms)] = msg.window.counts
    return got


async def reference() -> dict[tuple[int, int], dict[str, Any]]:
    svc, kafka = service()
    return await read_all(svc, kafka)


async def test_v1_and_v2_partials_carry_the_same_counts() -> None:
    """``partials_wire=1`` (rolling upgrades) sends a message per window; 2 packs them."""
    v1, kafka1 = service(dataclasses.replace(SETTINGS, partials_wire=1))
    v2, kafka2 = service()
    want, got = await read_all(v1, kafka1), await read_all(v2, kafka2)
    assert want == got and len(want) > 4
    kinds = [{decode(blob).kind for blob in k.sent} for k in (kafka1, kafka2)]
    assert kinds == [{"partial", "mark"}, {"pack", "mark"}]
    assert len(kafka2.sent) < len(kafka1.sent)


async def test_a_rebalance_while_a_batch_is_being_sent_leaves_every_window_exact() -> None:
    svc, kafka = service()

    async def slow_send() -> None:  # the rebalance runs in aiokafka's task while a send waits
        kafka.rebalances.append(asyncio.ensure_future(kafka.rebalance()))
        await asyncio.sleep(0.05)

    async def arm() -> None:
        kafka.on_send = slow_send

    kafka.on_fetch[5] = arm  # some windows closed and committed by then (re-read after the rebalance)
    got = await read_all(svc, kafka)
    assert svc.totals.late == 0 and svc.totals.accepted >= sum(map(len, kafka.log.values()))
    assert got == await reference()


async def test_records_handed_out_before_their_state_exists_are_read_again() -> None:
    """aiokafka ends a reassignment before the listener's on_partitions_assigned has run (and
    that awaits the committed offsets), so a fetch can return the new assignment's records
    while the partition has no state yet. Dropped, they must be read again."""
    svc, kafka = service()

    async def rebalance_slowly() -> None:
        kafka.assign_delay_s = 0.1  # fetches go on while on_assigned waits for the offsets
        kafka.rebalances.append(asyncio.ensure_future(kafka.rebalance()))
        await asyncio.sleep(0)

    kafka.on_fetch[5] = rebalance_slowly
    got = await read_all(svc, kafka)
    assert kafka.fetches > 8  # records were handed out meanwhile
    assert svc.totals.late == 0
    assert got == await reference()
