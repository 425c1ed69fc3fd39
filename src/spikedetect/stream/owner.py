"""Stage 2: own the keys of some services, close windows, publish incidents.

One :class:`PartitionOwner` per assigned partition of the partials topic (services are
routed there by key). Its state lives in one Faust table, so every write of a
partition lands, in order, in one changelog partition:

* ``<q>|k|<service>|<region>`` -> the key's baseline row, incident tracker, last window applied
* ``<q>|g|<service>`` -> the service's outage grouper state (open outages, last window applied)
* ``<q>|p|<ws>|<source>|<service>|<chunk>`` -> a partial as received (until its window closes)
* ``<q>|m|<source>`` -> that source's latest mark
* ``<q>|meta`` -> the first window not yet closed

Closing a window: group its region incident events into outage events
(:mod:`spikedetect.core.outages`), publish both and wait for the broker's ack, then write
the grouper state of every service that had events, then every key, then the meta record,
then delete the window's partials. A crash at any point of that sequence leaves a
changelog prefix from which the next owner re-closes the window only for keys that had not
applied it, re-emitting identical region events (same ``incident_id``, ``seq`` and
``group_id``); the grouper re-emits the window's outage events identically unless its
state had been written, in which case they had been acknowledged already. Consumers
deduplicate on ``(incident_id, seq)``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from spikedetect.core.config import DetectorConfig
from spikedetect.core.errors import StateError
from spikedetect.core.incidents import IncidentEvent
from spikedetect.core.outage_events import OutageEvent
from spikedetect.core.outages import OutageGrouper
from spikedetect.core.scorer import ClosedKeys, Scorer
from spikedetect.core.state import dumps, import_key, key_record_bytes
from spikedetect.core.timefmt import format_ts_ms
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.wire import WireError, decode

log = logging.getLogger("spikedetect.owner")

# Table writes that may wait in Faust's producer buffer before an owner stops to let them out.
MAX_PENDING_WRITES = 10_000

DeadLetter = tuple[bytes, list[tuple[str, bytes]]]


# idle marks of a source an owner waits for after the watermark moved before it closes past it
# (see PartitionOwner._note_mark): the third rests on a fetch requested after the move
IDLE_CONFIRMATIONS = 3


@dataclass
class Outbox:
    """What closing windows produced, published (and acknowledged) before state is written."""

    events: list[OutageEvent] = field(default_factory=list)  # the main stream
    dead: list[DeadLetter] = field(default_factory=list)
    windows: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, spikedetect.window/v1)
    regions: list[IncidentEvent] = field(default_factory=list)  # region incidents, with group_id

    def __bool__(self) -> bool:
        return bool(self.events or self.dead or self.windows or self.regions)


Publish = Callable[[Outbox], Any]


def window_summaries(closed: ClosedKeys) -> list[tuple[bytes, bytes]]:
    """``spikedetect.window/v1`` messages: per service, every key with reports in the window."""
    by_service: dict[str, dict[str, list[float]]] = {}
    for i in np.flatnonzero(closed.observed > 0).tolist():
        svc, region = closed.keys[i]
        by_service.setdefault(svc, {})[region] = [float(closed.observed[i]), round(float(closed.expected[i]), 3),
                                                  round(float(closed.score[i]), 3)]
    start = format_ts_ms(closed.ws_ms)
    return [(f"{svc}|{closed.ws_ms}".encode(),
             orjson.dumps({"schema": "spikedetect.window/v1", "service": svc, "window_start": start,
                           "ws_ms": closed.ws_ms, "keys": keys}, option=orjson.OPT_SORT_KEYS))
            for svc, keys in sorted(by_service.items())]


class PartitionOwner:
    def __init__(self, partition: int, config: DetectorConfig, table: MutableMapping[str, bytes],
                 metrics: Metrics, on_window: Callable[[int, ClosedKeys], None] | None = None,
                 emit_windows: bool = False, idle_grace_ms: int = 0, idle_confirmations: int = 0) -> None:
        self.q = partition
        self.idle_grace_s = idle_grace_ms / 1000.0
        self._wm_history: deque[tuple[float, int]] = deque()
        # per idle source: the closing watermark as it stood when each of its latest
        # ``idle_confirmations`` idle marks arrived (see _closable)
        self.idle_confirmations = idle_confirmations
        self._idle_marks: dict[int, deque[int | None]] = {}
        self.config = config
        self.table = table
        self.metrics = metrics
        self.scorer = Scorer(config, sources=())
        self.scorer.on_window = self._on_window
        self.grouper = OutageGrouper()
        self._observer = on_window
        self._emit_windows = emit_windows
        self._outbox = Outbox()
        # Faust queues every table write in the app's producer buffer (None for a plain dict)
        self._writes = getattr(getattr(getattr(table, "app", None), "producer", None), "buffer", None)
        self.partial_keys: dict[int, set[str]] = {}
        self.open_ws: dict[int, int] = {}  # per source: the oldest window it still holds (latest mark)
        self.stale: list[str] = []
        self._rebuild()

    # -- recovery ------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Load this partition's keys, marks and pending partials from the table."""
        prefix = f"{self.q}|"
        meta: dict[str, Any] = {}
        partials: list[tuple[str, bytes]] = []
        s = self.scorer
        for key, value in list(self.table.items()):
            if not isinstance(key, str) or not key.startswith(prefix):
                continue
            if not isinstance(value, bytes | bytearray | memoryview | str):
                raise StateError(f"owner {self.q}: table value of {key!r} is a {type(value).__name__}")
            kind = key[len(prefix):len(prefix) + 1]
            try:
                if kind == "k":
                    _, _, svc, region = key.split("|", 3)
                    import_key(s, (svc, region), orjson.loads(value))
                elif kind == "g":
                    self.grouper.import_service(key.split("|", 2)[2], orjson.loads(value))
                elif key == f"{prefix}meta":  # before the marks: "meta" starts with "m" too
                    meta = orjson.loads(value)
                    int(meta.get("n_src", 0))
                    if not (meta.get("next_ws") is None or type(meta["next_ws"]) is int):
                        raise TypeError(f"next_ws is {meta['next_ws']!r}")
                elif kind == "m":
                    mark = orjson.loads(value)
                    wm = mark["wm"]
                    if not (wm is None or type(wm) is int):
                        raise TypeError(f"wm is {wm!r}")
                    src = int(key.rsplit("|", 1)[1])
                    s.set_watermark(src, wm, idle=bool(mark["idle"]))
                    if mark.get("open") is not None:
                        self.open_ws[src] = int(mark["open"])
                elif kind == "p":
                    partials.append((key, value))
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                # JSON that is not what this owner wrote: never guess, never run anything
                raise StateError(f"owner {self.q}: unreadable state record {key!r}: {exc}") from exc
        s.expect_sources(range(int(meta.get("n_src", 0))))
        s.next_ws = meta.get("next_ws")
        for key, value in partials:
            try:
                msg = decode(value)
            except WireError as exc:
                raise StateError(f"owner {self.q}: unreadable pending partial {key!r}: {exc}") from exc
            if s.next_ws is not None and msg.ws_ms < s.next_ws:
                self.stale.append(key)
                continue
            s.add_partial(msg.source, msg.window(), (msg.service, msg.chunk))
            self.partial_keys.setdefault(msg.ws_ms, set()).add(key)
        if s.keyspace.size or s.next_ws is not None:
            log.info("owner %s recovered %d keys, next window %s, %d pending partials",
                     self.q, s.keyspace.size, s.next_ws, len(partials) - len(self.stale))

    def _closable(self) -> int | None:
        """The watermark to close up to. While some source is idle - excluded because it has
        nothing to send - only a watermark that has stood for ``idle_grace`` of wall time is
        used, so a source that was idle a moment ago and is now reading new data (another
        worker's fetch is a few hundred ms behind) gets to report before windows close.
        Never past the oldest window a source still holds (its marks say which): an idle
        source's counts for it are still to come."""
        s = self.scorer
        wm = self._candidate()
        if wm is None:
            return None
        if self.idle_confirmations:
            for src in s.idle_sources:
                marks = self._idle_marks.get(src)
                if marks is None or len(marks) < self.idle_confirmations or marks[0] is None:
                    return None
                wm = min(wm, marks[0])
        now = time.monotonic()
        hist = self._wm_history
        if not hist or hist[-1][1] != wm:
            hist.append((now, wm))
        if not s.idle_sources or self.idle_grace_s <= 0:
            hist.clear()
            hist.append((now, wm))
            return wm
        while len(hist) > 1 and hist[1][0] <= now - self.idle_grace_s:
            hist.popleft()
        if hist[0][0] > now - self.idle_grace_s:
            return None
        return min(hist[0][1], wm)

    def _candidate(self) -> int | None:
        """The scorer's closing watermark, never past the oldest window a source still holds."""
        wm = self.scorer.closing_watermark()
        if wm is not None and self.open_ws:
            wm = min(wm, min(self.open_ws.values()))
        return wm

    def _note_mark(self, source: int, idle: bool) -> None:
        """Remember where the closing watermark stood when an idle source said so again.

        An idle source is left out of the closing watermark, but wall time alone does not show
        that it is still idle: while the event loop is busy no fetch is read, and a partition
        whose first records came meanwhile looks idle for seconds. Its ingest sends an idle mark
        only on a fetch answer newer than the previous mark's, so the ``idle_confirmations``-th
        idle mark after the watermark reached W rests on an answer requested after W's records
        were read: records in that partition older than W would have ended its idleness."""
        if not self.idle_confirmations:
            return
        if not idle:
            self._idle_marks.pop(source, None)
            return
        marks = self._idle_marks.get(source)
        if marks is None:
            marks = self._idle_marks[source] = deque(maxlen=self.idle_confirmations)
        marks.append(self._candidate())

    def _on_window(self, ws_ms: int, closed: ClosedKeys) -> None:
        if self._observer is not None:
            self._observer(ws_ms, closed)
        if self._emit_windows:
            self._outbox.windows.extend(window_summaries(closed))

    # -- messages --------------------------------------------------------------------
    async def handle(self, blob: bytes, publish: Publish) -> None:
        s = self.scorer
        t = self.table
        for key in self.stale:
            t.pop(key, None)
        self.stale.clear()
        try:
            msg = decode(blob)
        except WireError as exc:
            log.warning("owner %s ignores a foreign message: %s", self.q, exc)
            return
        if msg.kind == "partial":
            key = f"{self.q}|p|{msg.ws_ms}|{msg.source}|{msg.service}|{msg.chunk}"
            before = s.stats.replayed_partials + s.stats.late_partials
            s.add_partial(msg.source, msg.window(), (msg.service, msg.chunk))
            if s.stats.replayed_partials + s.stats.late_partials == before:
                t[key] = blob
                self.partial_keys.setdefault(msg.ws_ms, set()).add(key)
        else:
            if msg.n_sources > len(s.watermarks):
                s.expect_sources(range(msg.n_sources))
                t[f"{self.q}|meta"] = orjson.dumps({"next_ws": s.next_ws, "n_src": len(s.watermarks)})
            self._note_mark(msg.source, msg.idle)
            s.set_watermark(msg.source, msg.wm_ms, idle=msg.idle)
            if msg.open_ws is None:
                self.open_ws.pop(msg.source, None)
            else:
                self.open_ws[msg.source] = msg.open_ws
            t[f"{self.q}|m|{msg.source}"] = orjson.dumps({"wm": s.watermarks[msg.source], "idle": msg.idle,
                                                          "open": msg.open_ws})
        await self._close(publish)

    async def _close(self, publish: Publish) -> None:
        s = self.scorer
        before = s.next_ws
        windows_before = s.stats.windows_closed
        t0 = time.perf_counter()
        out = self._outbox
        until = self._closable()
        if until is not None:
            outages, regions = self.grouper.feed(s.close_ready(until))
            out.events.extend(outages)
            out.regions.extend(regions)
        out.dead.extend(_late_record(self.q, lp) for lp in s.late)
        late_reports = sum(lp.reports for lp in s.late)
        s.late.clear()
        if out:
            await publish(out)
        # counted with the dead letters, whether or not a window closes now (a late partial
        # arrives after its window closed, so it usually closes none)
        self.metrics.late_partials.inc(late_reports)
        self._outbox = Outbox()
        closed = s.stats.windows_closed - windows_before
        if s.next_ws == before and not closed:
            return
        t = self.table
        g = self.grouper
        for svc in sorted(g.touched):  # before the keys: see the module docstring
            t[f"{self.q}|g|{svc}"] = dumps(g.export_service(svc))
        g.touched.clear()
        for sk in s.keyspace.keys:
            t[f"{self.q}|k|{sk[0]}|{sk[1]}"] = key_record_bytes(s, sk)  # exact-size bytes
        for sk in s.retired:
            t.pop(f"{self.q}|k|{sk[0]}|{sk[1]}", None)
        s.retired.clear()
        t[f"{self.q}|meta"] = orjson.dumps({"next_ws": s.next_ws, "n_src": len(s.watermarks)})
        for ws in [w for w in self.partial_keys if s.next_ws is not None and w < s.next_ws]:
            for key in self.partial_keys.pop(ws):
                t.pop(key, None)
        log.debug("owner %s closed %d window(s) up to %s, next %s, wrote %d keys", self.q, closed, until,
                  s.next_ws, s.keyspace.size)
        m = self.metrics
        m.windows_closed.inc(closed)
        if closed:
            m.scoring_seconds.observe((time.perf_counter() - t0) / closed)
        m.keys_scored.inc(closed * s.keyspace.size)
        wm = s.closing_watermark()
        if wm is not None:
            m.watermark_delay.set(max(0.0, time.time() - wm / 1000.0))
        await self._drain()

    async def _drain(self) -> None:
        """Backpressure on table writes.

        Setting a Faust table key is synchronous: it queues a changelog message in the app's
        producer buffer, and Faust lets out only about 100 of them per stream event. Closing a
        window writes every key, so an owner working through a backlog queues writes faster
        than they leave, and the queue - memory - grows with the backlog. Wait here until it
        is short again (an owner that waits is an owner that lags: the lag is in Kafka)."""
        buf = self._writes
        if buf is None:
            return
        try:
            while buf.size > MAX_PENDING_WRITES:
                await buf.flush_atmost(buf.size - MAX_PENDING_WRITES // 2)
        except RuntimeError:  # "Producer not Running": stopping; the changelog keeps its prefix
            return


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

    def __init__(self, kafka_kwargs: dict[str, Any], group: str, topic: str, timeout_s: float = 120.0) -> None:
        self.kafka_kwargs, self.group, self.topic, self.timeout_s = kafka_kwargs, group, topic, timeout_s
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
        from aiokafka.admin import AIOKafkaAdminClient

        tp = TopicPartition(self.topic, q)
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(**self.kafka_kwargs)
            await self._admin.start()
        committed = (await self._admin.list_consumer_group_offsets(self.group, partitions=[tp])).get(tp)
        if committed is not None and committed.offset >= 0:
            return int(committed.offset)
        reader = await self._reader()
        return int((await reader.beginning_offsets([tp]))[tp])  # no commit yet: "earliest"

    async def _reader(self) -> Any:
        """A group-less consumer (created on first use) that reads committed records only."""
        if self._consumer is None:
            from aiokafka import AIOKafkaConsumer

            self._consumer = AIOKafkaConsumer(**self.kafka_kwargs, group_id=None, enable_auto_commit=False,
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


def _late_record(q: int, lp: Any) -> DeadLetter:
    body = {"reason": "late_partial", "owner_partition": q, "source_partition": lp.source,
            "ws_ms": lp.ws_ms, "reports": lp.reports}
    return orjson.dumps(body), [("spikedetect.reason", b"late_partial")]
