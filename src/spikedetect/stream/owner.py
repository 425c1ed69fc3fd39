"""Stage 2: own the keys of some services, close windows, publish incidents.

One :class:`PartitionOwner` per assigned partition of the partials topic (services are
routed there by key). Its state lives in one Faust table, so every write of a
partition lands, in order, in one changelog partition:

* ``<q>|k|<service>|<region>`` -> the key's baseline row, incident tracker, last window applied
* ``<q>|g|<service>`` -> the service's outage grouper state (open outages, last window applied)
* ``<q>|sig`` -> composition and ingest-gap state (:mod:`spikedetect.core.signals`, last window applied)
* ``<q>|p|<last ws>|<source>|<service>|<first ws>.<chunk>-<chunk>`` -> a pack of partials as kept
  until its last window closes (:mod:`~spikedetect.stream.owner_pending`; v1 partials: ``...|<chunk>``)
* ``<q>|m|<source>`` -> that source's latest mark
* ``<q>|meta`` -> the first window not yet closed

Closing a window: group its region incident events into outage events
(:mod:`spikedetect.core.outages`), publish both and wait for the broker's ack; what closing
changed is written later, in order (:mod:`spikedetect.stream.owner_persist`). A crash leaves a
changelog prefix from which the next owner re-closes the windows only for keys that had not
applied them, re-emitting identical region events (same ``incident_id``, ``seq``, ``group_id``);
the grouper re-emits a window's outage events identically unless its state had been written
(they were acknowledged then). Consumers deduplicate on ``(incident_id, seq)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import orjson

from spikedetect.core.config import DetectorConfig
from spikedetect.core.errors import StateError
from spikedetect.core.messages import Mark, Partial
from spikedetect.core.outages import OutageGrouper
from spikedetect.core.pipeline import Pipeline
from spikedetect.core.scorer import ClosedKeys
from spikedetect.core.state import import_key
from spikedetect.stream.close_gate import IDLE_CONFIRMATIONS, CloseGate
from spikedetect.stream.faust_fixes import make_commits_wait_for_table_writes, table_write_buffer
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.outbox import DeadLetter, Outbox, Publish, window_summaries
from spikedetect.stream.outbox import late_record as _late_record
from spikedetect.stream.owner_pending import PendingPartials
from spikedetect.stream.owner_persist import PersistCadence, TableWriter, write_state
from spikedetect.stream.skipguard import SkipGuard
from spikedetect.stream.wire import Pack, WireError, decode, encode_pack, partials_of

log = logging.getLogger("spikedetect.owner")

# Table writes that may wait in Faust's producer buffer before an owner stops to let them out.
MAX_PENDING_WRITES = 10_000


class PartitionOwner:
    """The scorer, outage grouper and table state of one partials partition (see the module)."""

    def __init__(self, partition: int, config: DetectorConfig, table: MutableMapping[str, bytes],
                 metrics: Metrics, on_window: Callable[[int, ClosedKeys], None] | None = None,
                 emit_windows: bool = False, idle_grace_ms: int = 0, idle_confirmations: int = 0,
                 persist_interval_ms: int = 0) -> None:
        self.q = partition
        self.config = config
        self.table = table
        self.metrics = metrics
        # the core's driver, scorer side: partials and marks in, events out
        self.pipeline = Pipeline(config, sources=(), on_window=self._on_window)
        self.scorer = self.pipeline.scorer
        assert self.pipeline.grouper is not None
        self.grouper: OutageGrouper = self.pipeline.grouper
        self.gate = CloseGate(self.scorer, idle_grace_ms, idle_confirmations)  # how far it may close
        self._observer = on_window
        self._emit_windows = emit_windows
        self._outbox = Outbox()
        # Faust queues every table write in the app's producer buffer (None for a plain dict)
        self._writes = table_write_buffer(table)
        self.cadence = PersistCadence(persist_interval_ms)  # when closing's state changes are written
        self.pending = PendingPartials()  # the partials messages kept in the table
        self.stale: list[str] = []
        self._rebuild()

    # -- recovery ------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Load this partition's keys, marks and pending partials from the table."""
        prefix = f"{self.q}|"
        meta: dict[str, Any] = {}
        partials: list[tuple[str, bytes]] = []
        for key, value in list(self.table.items()):
            if not isinstance(key, str) or not key.startswith(prefix):
                continue
            if not isinstance(value, bytes | bytearray | memoryview | str):
                raise StateError(f"owner {self.q}: table value of {key!r} is a {type(value).__name__}")
            try:
                if key == f"{prefix}meta":  # before the marks: "meta" starts with "m" too
                    meta = self._load_meta(value)
                elif key[len(prefix):len(prefix) + 1] == "p":
                    partials.append((key, value))
                else:
                    self._load_record(key, key[len(prefix):len(prefix) + 1], value)
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                # JSON that is not what this owner wrote: never guess, never run anything
                raise StateError(f"owner {self.q}: unreadable state record {key!r}: {exc}") from exc
        s = self.scorer
        s.expect_sources(range(int(meta.get("n_src", 0))))
        s.next_ws = meta.get("next_ws")
        self._restore_partials(partials)
        self.cadence.next_ws = s.next_ws
        self._recovered = True  # re-close what the recovered marks allow before any message: see handle

    @staticmethod
    def _load_meta(value: Any) -> dict[str, Any]:
        meta: dict[str, Any] = orjson.loads(value)
        int(meta.get("n_src", 0))
        if not (meta.get("next_ws") is None or type(meta["next_ws"]) is int):
            raise TypeError(f"next_ws is {meta['next_ws']!r}")
        return meta

    def _load_record(self, key: str, kind: str, value: Any) -> None:
        """One key (``k``), grouper (``g``), signals (``sig``) or mark (``m``) record."""
        s = self.scorer
        if kind == "k":
            _, _, svc, region = key.split("|", 3)
            import_key(s, (svc, region), orjson.loads(value))
        elif kind == "g":
            self.grouper.import_service(key.split("|", 2)[2], orjson.loads(value))
        elif key == f"{self.q}|sig":
            if s.signals is not None:
                s.signals.load(orjson.loads(value))
        elif kind == "m":
            mark = orjson.loads(value)
            wm = mark["wm"]
            if not (wm is None or type(wm) is int):
                raise TypeError(f"wm is {wm!r}")
            src = int(key.rsplit("|", 1)[1])
            s.set_watermark(src, wm, idle=bool(mark["idle"]))
            if mark.get("open") is not None:
                self.gate.open_ws[src] = int(mark["open"])

    def _restore_partials(self, partials: list[tuple[str, bytes]]) -> None:
        """Partials of windows still open go back into the scorer; entries with none are stale."""
        s = self.scorer
        for key, value in partials:
            try:
                msg = decode(value)
            except WireError as exc:
                raise StateError(f"owner {self.q}: unreadable pending partial {key!r}: {exc}") from exc
            if isinstance(msg, Mark):
                raise StateError(f"owner {self.q}: pending partial {key!r} is a {msg.kind}")
            last_ws = msg.last_ws if isinstance(msg, Pack) else msg.ws_ms
            if s.next_ws is not None and last_ws < s.next_ws:
                self.stale.append(key)
                continue
            for p in partials_of(msg):
                if s.next_ws is None or p.ws_ms >= s.next_ws:  # closed ones were written applied
                    self.pipeline.apply(p)
            self.pending.add(last_ws, key, len(value))
        if s.keyspace.size or s.next_ws is not None:
            log.info("owner %s recovered %d keys, next window %s, %d pending partials",
                     self.q, s.keyspace.size, s.next_ws, len(partials) - len(self.stale))

    def _on_window(self, ws_ms: int, closed: ClosedKeys) -> None:
        if self._observer is not None:
            self._observer(ws_ms, closed)
        if self._emit_windows:
            self._outbox.windows.extend(window_summaries(closed))

    # -- messages --------------------------------------------------------------------
    async def handle(self, blob: bytes, publish: Publish) -> None:
        if self._recovered:  # windows closed since the last state write first: a late partial stays late
            self._recovered = False
            await self._close(publish)
        t = self.table
        for key in self.stale:
            t.pop(key, None)
        self.stale.clear()
        try:
            msg = decode(blob)
        except WireError as exc:
            log.warning("owner %s ignores a foreign message: %s", self.q, exc)
            return
        if isinstance(msg, Mark):
            self._mark(msg)
        else:
            self._partials(msg, blob)
        await self._close(publish)

    def _partials(self, msg: Partial | Pack, blob: bytes) -> None:
        """Store partials in the scorer and those it kept (neither late nor replayed) in the table:
        a pack as one entry under its last window (re-encoded if only part of it is kept)."""
        kept = [p for p in partials_of(msg) if self.pipeline.apply(p) == "kept"]
        if not kept:
            return
        if isinstance(msg, Partial):
            key, last_ws = f"{self.q}|p|{msg.ws_ms}|{msg.source}|{msg.part[0]}|{msg.part[1]}", msg.ws_ms
        else:
            if len(kept) < len(msg.partials):  # a prefix came late or again: keep the rest only
                msg = Pack(msg.source, msg.service, tuple(kept))
                blob = encode_pack(msg)
            key, last_ws = f"{self.q}|p|{msg.name()}", msg.last_ws
        self.table[key] = blob
        self.pending.add(last_ws, key, len(blob))

    def _mark(self, msg: Mark) -> None:
        s = self.scorer
        t = self.table
        if msg.n_sources > len(s.watermarks):
            s.expect_sources(range(msg.n_sources))
            # the next window of the last state write, not the scorer's: the keys may lag it
            t[f"{self.q}|meta"] = orjson.dumps({"next_ws": self.cadence.next_ws, "n_src": len(s.watermarks)})
        self.gate.note_mark(msg.source, msg.idle)  # where the closing watermark stood before this mark
        self.pipeline.apply(msg)
        self.gate.holds(msg.source, msg.open_ws)
        t[f"{self.q}|m|{msg.source}"] = orjson.dumps({"wm": s.watermarks[msg.source], "idle": msg.idle,
                                                      "open": msg.open_ws})

    async def _close(self, publish: Publish) -> None:
        s = self.scorer
        before = s.next_ws
        windows_before = s.stats.windows_closed
        t0 = time.perf_counter()
        out = self._outbox
        until = self.gate.closable()
        self.cadence.unacked = True  # the scorer may be ahead of the broker's acks until publish returns
        if until is not None:
            closed = self.pipeline.close(until)
            out.events.extend(closed.events)
            out.regions.extend(closed.incidents)
        out.dead.extend(_late_record(self.q, lp) for lp in s.late)
        late_reports = sum(lp.reports for lp in s.late)
        if s.late:  # rare: an input partition stalled past idle_ms, or a source came back after it
            log.warning("owner %s: %d partial(s) with %s report(s) came after their window had closed; "
                        "dead-lettered as late", self.q, len(s.late), f"{late_reports:g}")
        s.late.clear()
        if out:
            await publish(out)
        self.cadence.unacked = False
        # counted with the dead letters, closing or not (a late partial usually closes nothing)
        self.metrics.late_partials.inc(late_reports)
        self._outbox = Outbox()
        n_closed = s.stats.windows_closed - windows_before
        if s.next_ws != before or n_closed:
            self.cadence.note_closed(n_closed, s.next_ws != before)
            log.debug("owner %s closed %d window(s) up to %s, next %s", self.q, n_closed, until, s.next_ws)
            self._observe(n_closed, time.perf_counter() - t0)
        reason = self.cadence.due(self.pending.closed_bytes(s.next_ws))
        if reason is not None:  # only here, after the publish: state never runs ahead of the acks
            self.persist(reason)
            await self._drain()

    def persist(self, reason: str = "leave", table: TableWriter | None = None) -> None:
        """Write what closing changed since the last write (:func:`write_state`), then delete
        the partials of the windows it records applied; nothing if nothing closed since.
        ``table``: where to write (on revoke or stop, a writer that needs no current event)."""
        if not self.cadence.dirty or self.cadence.unacked:  # (unacked: a revoke that did not wait for us)
            return
        t0 = time.perf_counter()
        s = self.scorer
        t = self.table if table is None else table
        write_state(self.q, s, self.grouper, t)
        self.pending.drop_closed(s.next_ws, t)
        (m := self.metrics).persists.labels(reason).inc()
        m.persist_windows.observe(self.cadence.windows)
        m.persist_seconds.observe(time.perf_counter() - t0)
        self.cadence.written(s.next_ws)

    def _observe(self, n_closed: int, seconds: float) -> None:
        s = self.scorer
        m = self.metrics
        m.windows_closed.inc(n_closed)
        if n_closed:
            m.scoring_seconds.observe(seconds / n_closed)
        m.keys_scored.inc(n_closed * s.keyspace.size)
        wm = s.closing_watermark()
        if wm is not None:
            m.watermark_delay.set(max(0.0, time.time() - wm / 1000.0))

    async def _drain(self) -> None:
        """Backpressure on table writes.

        Setting a Faust table key queues a changelog message in the producer buffer, and Faust
        lets out only ~100 of them per stream event; a state write writes every key, so a backlog
        queues writes faster than they leave. Wait until the queue (memory) is short again: an
        owner that waits lags, and the lag is in Kafka."""
        buf = self._writes
        if buf is None:
            return
        try:
            while buf.size > MAX_PENDING_WRITES:
                await buf.flush_atmost(buf.size - MAX_PENDING_WRITES // 2)
        except RuntimeError:  # "Producer not Running": stopping; the changelog keeps its prefix
            return


# re-exported: they lived here before stream/outbox.py, skipguard.py and faust_fixes.py
__all__ = ["IDLE_CONFIRMATIONS", "MAX_PENDING_WRITES", "DeadLetter", "Outbox", "PartitionOwner", "Publish", "SkipGuard",
           "make_commits_wait_for_table_writes", "window_summaries"]
