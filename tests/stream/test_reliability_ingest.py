"""The ingest loop, driven directly with stand-ins for the Kafka clients, so the failures the
soaks found on the real broker are reproduced exactly and fast.

* A rebalance in the middle of a commit: found by the million-regions soak (uncapped keys),
  where the owners held the event loop long enough for the ingest consumer's session to
  expire; the ingest service crashed the worker with a KeyError on the revoked partition,
  and a CommitFailedError would have done the same.
* Idleness before the first fetch: found by the SIGKILL soak. A restarted worker whose first
  fetch took longer than idle_ms (table recovery on a busy machine) declared its partitions
  idle, pushed their watermarks ahead by the wall clock, and then skipped - as replays of
  closed windows - the records it re-read: reports silently missing, incidents lost.
* A stale end offset after a busy spell: the overload run lost the first window of one
  service. The owners held the event loop for seconds, the first fetch answer read after
  that predated the producer's records, and the partition was taken for idle; the owners
  closed its first window without it. Going idle now takes a second, later fetch answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from spikedetect.core.counter import WindowCounter
from spikedetect.stream.ingest import IngestService, SourceState
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.settings import Settings
from spikedetect.stream.wire import decode, partials_of

BASE = 1_795_651_200_000
MIN = 60_000
SETTINGS = Settings(input_topic="reports", commit_interval_ms=50, summary_interval_s=0, idle_ms=1000)


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def flush(self) -> None:
        await asyncio.sleep(0)

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> None:
        self.sent.append((topic, value))


class Consumer:
    """Commits succeed, fail, or lose partitions to a rebalance, as told."""

    def __init__(
        self, svc: IngestService, failures: int = 0, revoke: int | None = None, high: int | None = None
    ) -> None:
        self.svc, self.failures, self.revoke, self.high = svc, failures, revoke, high
        self.commits: list[dict[TopicPartition, Any]] = []
        self.polls = 0
        self.stalled_at_ms: int | None = None

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        await asyncio.sleep(0)
        if self.revoke is not None:  # the rebalance listener ran meanwhile: the partition is gone
            self.svc.sources.pop(self.revoke, None)
            self.revoke = None
        if self.failures:
            self.failures -= 1
            raise CommitFailedError("the group rebalanced")
        self.commits.append(offsets)

    async def getmany(self, **kwargs: Any) -> dict[TopicPartition, list[Any]]:
        await asyncio.sleep(0.01)
        return {}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high  # None: no fetch has answered since the assignment

    def last_poll_timestamp(self, tp: TopicPartition) -> int | None:
        """The wall time (ms) of the last fetch answer: a fetcher answering all along gives a
        newer one at each look; ``stalled_at_ms`` freezes it (an event loop too busy to read)."""
        if self.high is None:
            return None
        if self.stalled_at_ms is not None:
            return self.stalled_at_ms
        self.polls += 1
        return int(time.time() * 1000) + self.polls


async def idle_ticks(svc: IngestService) -> None:
    """Two looks at the partitions: going idle takes a second fetch answer to confirm."""
    await svc._idle_tick()
    await svc._idle_tick()


def service(**consumer: Any) -> tuple[IngestService, Consumer]:
    svc = IngestService(SETTINGS, Metrics())
    for p in (0, 1):
        st = SourceState(p, WindowCounter(SETTINGS.detector), next_offset=10 + p, dirty=True)
        svc.sources[p] = st
    svc.producer = Producer()  # type: ignore[assignment]
    fake = Consumer(svc, **consumer)
    svc.consumer = fake  # type: ignore[assignment]
    return svc, fake


async def test_a_partition_revoked_during_a_commit_does_not_crash_ingest() -> None:
    svc, fake = service(revoke=0)
    await svc.commit(force=True)
    assert [sorted(tp.partition for tp in c) for c in fake.commits] == [[0, 1]]
    assert 0 not in svc.sources and svc.sources[1].dirty is False


async def test_a_failed_commit_is_retried_at_the_next_interval_not_fatal() -> None:
    svc, fake = service(failures=2)
    task = asyncio.ensure_future(IngestService._consume(svc))  # the Service.task, run by hand
    try:
        for _ in range(200):
            await asyncio.sleep(0.02)
            if fake.commits:
                break
    finally:
        task.cancel()
    assert not task.done() or task.cancelled(), "the loop ended by itself"
    assert len(fake.commits) == 1 and fake.failures == 0
    assert all(not st.dirty for st in svc.sources.values())
    committed = fake.commits[0][TopicPartition("reports", 1)]
    assert committed.offset == 11  # the checkpoint survived the failed attempts unchanged


def restored_source(svc: IngestService, quiet_s: float) -> SourceState:
    """Partition 0 as a restarted worker has it: checkpoint restored, nothing fetched yet."""
    st = svc.sources[0]
    st.counter.restore_checkpoint({"max_ts_ms": 1_795_651_200_000, "floor_wm_ms": None})
    st.replay_until = st.next_offset = 10
    st.last_arrival = time.monotonic() - quiet_s
    return st


async def test_a_partition_is_not_idle_before_its_end_offset_is_known() -> None:
    svc, _ = service(high=None)
    st = restored_source(svc, quiet_s=30.0)  # far longer than idle_ms: the first fetch is slow
    wm = st.counter.watermark_ms
    await svc._idle_tick()
    assert not st.idle and st.counter.watermark_ms == wm, "the watermark moved before anything was read"


async def test_a_caught_up_quiet_partition_does_go_idle(caplog: pytest.LogCaptureFixture) -> None:
    """The control: once a fetch has shown the end (and it has been read), quiet means idle;
    going idle is logged once, not at every tick that moves the watermark."""
    svc, _ = service(high=10)
    st = restored_source(svc, quiet_s=30.0)
    wm = st.counter.watermark_ms
    with caplog.at_level(logging.INFO, logger="spikedetect.ingest"):
        await idle_ticks(svc)
        for _ in range(3):
            await svc._idle_tick()
    assert st.idle and st.counter.watermark_ms is not None and wm is not None and st.counter.watermark_ms > wm
    assert [r.getMessage()[:28] for r in caplog.records if "quiet for" in r.getMessage()] == [
        "input partition 0 quiet for "]


async def test_a_stale_fetch_answer_does_not_make_a_partition_idle() -> None:
    """The end offset is only as fresh as the last fetch answer read. Live, an event loop busy
    closing windows read one old answer (end = what was already read) after a long pause, the
    partition was taken for idle, and the owners closed its first window without its counts.
    Until a later answer confirms, a quiet-looking partition stays active."""
    svc, fake = service(high=10)
    st = restored_source(svc, quiet_s=30.0)
    fake.stalled_at_ms = int(time.time() * 1000)  # one answer read now, none after it
    wm = st.counter.watermark_ms
    for _ in range(5):
        await svc._idle_tick()
    assert not st.idle and st.counter.watermark_ms == wm
    fake.stalled_at_ms = None  # the fetcher answers again: still nothing new, so idle
    await idle_ticks(svc)
    assert st.idle and st.counter.watermark_ms != wm


async def test_an_idle_partition_moves_and_marks_only_on_fresh_fetch_answers() -> None:
    """Owners count an idle source's marks as confirmations (three since the watermark moved),
    so each must rest on a fetch answer newer than the previous mark's: with the fetcher
    stalled, an idle partition neither advances its wall-clock watermark nor sends marks."""
    svc, fake = service(high=10)
    svc.n_owners = 1
    st = restored_source(svc, quiet_s=30.0)
    await idle_ticks(svc)
    assert st.idle
    fake.stalled_at_ms = st.confirm_poll_ms  # no answer after the one the last tick used
    wm, sent = st.counter.watermark_ms, len(svc.producer.sent)  # type: ignore[attr-defined]
    st.last_mark_at = 0.0  # a heartbeat is due
    st.last_arrival -= 5.0  # and 5 s more of quiet would move the watermark
    for _ in range(5):
        await svc._idle_tick()
    assert st.counter.watermark_ms == wm and len(svc.producer.sent) == sent  # type: ignore[attr-defined]
    fake.stalled_at_ms = None
    await svc._idle_tick()
    assert st.counter.watermark_ms != wm and len(svc.producer.sent) > sent  # type: ignore[attr-defined]


async def test_records_after_a_first_answer_restart_the_confirmation() -> None:
    """A first caught-up answer, then a record: the next quiet spell needs two answers of its own."""
    svc, fake = service(high=10)
    st = restored_source(svc, quiet_s=30.0)
    await svc._idle_tick()
    assert not st.idle and st.confirm_poll_ms is not None
    report = orjson.dumps({"ts": 1_795_651_260_000, "service": "ig", "region": "US", "category": "x"})
    record = SimpleNamespace(offset=10, value=report, timestamp=1_795_651_260_000, key=None)
    await svc._process(TopicPartition("reports", 0), st, [record])
    fake.high, st.last_arrival = 11, time.monotonic() - 30.0
    assert st.confirm_poll_ms is None
    await svc._idle_tick()
    assert not st.idle
    await svc._idle_tick()
    assert st.idle


async def test_a_restarted_partition_is_behind_until_it_has_re_read_its_open_windows() -> None:
    """Found by the SIGKILL soak, at the end of the input: the killed worker had read up to
    offset 10 (the end), but its last windows were still open, so it committed 6 - where they
    start - with the metadata ``o=10``. The restarted worker took the recorded position for its
    own: end offset 10, nothing new, quiet - it went idle before the records 6..9 came back,
    pushed the watermark past their windows by the wall clock, and then skipped them as
    replays of closed windows. The owners closed the last windows without them."""
    svc, _ = service(high=60)
    svc.n_owners = 1
    ts = [BASE + i * 10_000 for i in range(60)]  # offsets 0..59, six reports a window
    reports = [orjson.dumps({"ts": t, "service": "ig", "region": "US", "category": "x"}) for t in ts]
    killed = SourceState(0, WindowCounter(SETTINGS.detector))
    for offset, report in enumerate(reports):
        killed.counter.feed_batch([report], [ts[offset]], position=offset)
    killed.counter.take_closed()
    killed.next_offset = 60
    committed, meta = killed.checkpoint()  # type: ignore[misc]
    assert 0 < committed < 60 and orjson.loads(meta)["o"] == 60
    open_ws = killed.counter.open_windows()
    st = svc.sources[0] = SourceState(0, WindowCounter(SETTINGS.detector))
    st.restore(committed, meta)
    st.last_arrival = time.monotonic() - 30.0  # the re-read records are slow to come back
    wm = st.counter.watermark_ms
    for _ in range(4):
        await svc._idle_tick()
    assert not st.idle and st.counter.watermark_ms == wm, "idle before re-reading what it must re-read"
    assert orjson.loads(st.checkpoint()[1])["o"] == 60  # type: ignore[index]
    records = [SimpleNamespace(offset=o, value=reports[o], timestamp=ts[o], key=None) for o in range(committed, 60)]
    await svc._process(TopicPartition("reports", 0), st, records)
    st.last_arrival = time.monotonic() - 600.0  # long enough for the idle watermark to pass them all
    await idle_ticks(svc)
    assert st.idle
    sent = [decode(v) for topic, v in svc.producer.sent]  # type: ignore[attr-defined]
    rebuilt = {m.ws_ms: sum(n for c in m.window.counts.values() for n in c.values())
               for sent_msg in sent for m in partials_of(sent_msg)}
    assert rebuilt == {ws: 6 for ws in open_ws}


async def test_a_revoked_partition_stops_reporting_its_lag() -> None:
    """After a rebalance the partition's lag belongs to its new reader; a stale gauge here
    would add a frozen number to every lag alert summed over workers."""
    svc, _ = service(high=50)
    await svc._idle_tick()  # sets the lag gauge of both partitions
    labels = lambda: {s.labels["partition"] for m in svc.metrics.lag.collect() for s in m.samples}  # noqa: E731
    assert labels() == {"0", "1"}
    await svc.on_revoked([TopicPartition("reports", 0)])
    assert labels() == {"1"}
