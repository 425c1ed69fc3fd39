"""The one driver of the core: counters (one per source) -> scorer -> outage grouper.

Every way of running the core goes through this module: :class:`~spikedetect.core.detector.Detector`
(one source), replay of files, topics (one source per partition) and count series, and the
live owner, which feeds it the :class:`~spikedetect.core.messages.Partial` and
:class:`~spikedetect.core.messages.Mark` messages the live ingest stage sends over Kafka.

* :meth:`Pipeline.feed` counts a batch of one source, hands its closed windows and its
  watermark to the scorer (as a ``Partial`` per window and a ``Mark``) and closes what
  every source has passed; :meth:`~Pipeline.end_source` ends one source's input,
  :meth:`~Pipeline.finish` all input (the end-of-input flush: every window that holds data).
* :meth:`Pipeline.apply` and :meth:`Pipeline.close` are the scorer side alone (pre-aggregated
  series, the live owner).
* Each call returns an :class:`Output`, and :attr:`Pipeline.summary` counts it.
* ``on_window`` (constructor) or :meth:`Pipeline.watch_windows` registers a hook that gets
  every closed window's scores (:class:`~spikedetect.core.scorer.ClosedKeys`).

>>> p = Pipeline(DetectorConfig(), sources=[0, 1])
>>> out = p.feed(0, [b'{"ts": 1795651800000, "service": "ig", "region": "US", "category": "feed"}', b"x"])
>>> out.accepted, out.dead
(1, [(1, b'x', 'not_json')])
>>> _ = p.feed(1, [b'{"ts": 1795651200000, "service": "ig", "region": "US", "category": "feed"}'])
>>> _ = p.finish(); p.summary.accepted, p.summary.late, p.summary.rejected_by_reason
(2, 0, {'not_json': 1})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import WindowCounter
from spikedetect.core.incidents import IncidentEvent
from spikedetect.core.messages import Mark, Message, Partial
from spikedetect.core.outage_events import OutageEvent
from spikedetect.core.outages import OutageGrouper
from spikedetect.core.scorer import ClosedKeys, PartialFate, Scorer, WindowHook
from spikedetect.core.signal_events import SignalEvent, merge_v2
from spikedetect.core.summary import Summary

V2Event = OutageEvent | SignalEvent  # the main stream: outages, composition shifts, ingest gaps


@dataclass
class Output:
    """What a call produced.

    ``incidents``: region incident events (``spikedetect.incident/v1``; with ``group_id`` when
    the pipeline groups outages); ``events``: the main stream, outage events and signal events
    merged window by window (without grouping: the signal events); ``dead``: dead letters as
    (origin, raw bytes, reason) - the batch's rejects first, then held reports rejected later
    (``ts_skewed``); ``rejects``: the batch's rejects as (index, reason)."""

    incidents: list[IncidentEvent] = field(default_factory=list)
    rejects: list[tuple[int, str]] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    events: list[V2Event] = field(default_factory=list)
    dead: list[tuple[Any, bytes, str]] = field(default_factory=list)

    def extend(self, other: Output) -> Output:
        """Append ``other`` (a later call's output) to this one."""
        self.incidents += other.incidents
        self.rejects += other.rejects
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.events += other.events
        self.dead += other.dead
        return self


class Pipeline:
    """One :class:`~spikedetect.core.counter.WindowCounter` per source feeding one
    :class:`~spikedetect.core.scorer.Scorer` (and, with ``outages``, an
    :class:`~spikedetect.core.outages.OutageGrouper`)."""

    def __init__(self, config: DetectorConfig, sources: Iterable[Any] = (0,), *,
                 signals: bool | tuple[str, ...] = True,
                 outages: bool = True, on_window: WindowHook | None = None) -> None:
        self.config = config
        self.counters: dict[Any, WindowCounter] = {s: WindowCounter(config) for s in sources}
        self.scorer = Scorer(config, sources=list(self.counters), signals=signals)
        self.grouper: OutageGrouper | None = OutageGrouper() if outages else None
        self.summary = Summary()
        self.ended: set[Any] = set()
        self._hooks: list[WindowHook] = []
        if on_window is not None:
            self.watch_windows(on_window)

    def watch_windows(self, hook: WindowHook) -> None:
        """Call ``hook(ws_ms, closed_keys)`` for every window closed from now on (after the
        hooks registered before it)."""
        self._hooks.append(hook)
        self.scorer.on_window = hook if len(self._hooks) == 1 else self._each_hook

    def _each_hook(self, ws_ms: int, closed: ClosedKeys) -> None:
        for hook in self._hooks:
            hook(ws_ms, closed)

    # -- the counter side ------------------------------------------------------------
    def feed(self, source: Any, values: Sequence[bytes], fallback_ts_ms: Sequence[int | None] | None = None,
             *, origin: Callable[[int], Any] | None = None) -> Output:
        """Count a batch of raw messages of one source; close what every source has passed.

        ``fallback_ts_ms[i]`` (a Kafka record time) is the event time of message i if it has
        no ``ts``; ``origin(i)`` names message i in its dead letter (default: ``i``; for a
        held report rejected later the counter's ``(position, i)``)."""
        res = self.counters[source].feed_batch(values, fallback_ts_ms, origin=origin)
        name = origin if origin is not None else int
        self.summary.events += len(values)
        out = Output(rejects=res.rejects, accepted=res.accepted, duplicates=res.duplicates,
                     dead=[(name(i), values[i], reason) for i, reason in res.rejects])
        return self._forward(source, out, idle=False)

    def advance_to(self, source: Any, ts_ms: int) -> Output:
        """Move a source's watermark without input (what the live idle timer does)."""
        self.counters[source].advance_to(ts_ms)
        return self._forward(source, Output(), idle=False)

    def flush(self, source: Any, *, idle: bool = False) -> Output:
        """Count the source's held reports that continue its stream and close every window of
        it that holds data (held reports no other report confirmed become dead letters);
        ``idle``: the source then stops holding the others back."""
        self.counters[source].finish()
        return self._forward(source, Output(), idle=idle)

    def end_source(self, source: Any) -> Output:
        """No more input from ``source`` (once; later calls do nothing)."""
        if source in self.ended:
            return Output()
        self.ended.add(source)
        return self.flush(source, idle=True)

    def finish(self) -> Output:
        """End of all input: end every source, close every window that holds data, and fill
        the summary's counts (``seconds`` is the driver's: the core has no clock)."""
        out = Output()
        for source in self.counters:
            out.extend(self.end_source(source))
        out.extend(self.close())
        s = self.summary
        stats = [c.stats for c in self.counters.values()]
        s.accepted = sum(st.accepted for st in stats)
        s.rejected = sum(st.rejected for st in stats)
        s.late = sum(st.late for st in stats)
        s.duplicates = sum(st.duplicates for st in stats)
        s.windows_closed = self.scorer.stats.windows_closed
        s.keys = self.scorer.keyspace.size
        return out

    def _forward(self, source: Any, out: Output, *, idle: bool) -> Output:
        counter = self.counters[source]
        out.dead += counter.take_dead()
        for window in counter.take_closed():  # the counter let go of them: the scorer keeps them uncopied
            self.scorer.add_partial(source, window, owned=True)
        self.apply(Mark(source, counter.watermark_ms, idle=idle))
        self.summary.count(out)  # its dead letters: the rest is counted by close()
        return out.extend(self.close())

    # -- the scorer side -------------------------------------------------------------
    @overload
    def apply(self, msg: Partial) -> PartialFate: ...
    @overload
    def apply(self, msg: Mark) -> None: ...

    def apply(self, msg: Message) -> PartialFate | None:
        """Hand a partial or a mark to the scorer (idempotent: a partial replaces the same
        (source, window, part), a mark only moves forward). For a partial, what became of it
        (kept, replayed or late: :data:`~spikedetect.core.scorer.PartialFate`)."""
        s = self.scorer
        if isinstance(msg, Partial):
            return s.add_partial(msg.source, msg.window, msg.part)
        if msg.n_sources > len(s.watermarks):
            s.expect_sources(range(msg.n_sources))
        s.set_watermark(msg.source, msg.wm_ms, idle=msg.idle)
        return None

    def close(self, until_ms: int | None = None) -> Output:
        """Close every window the marks allow (or up to ``until_ms``): region events, and the
        outage and signal events of the main stream."""
        regions = self.scorer.close_ready(until_ms)
        signals = self.scorer.signals.take() if self.scorer.signals is not None else []
        out = Output(incidents=regions, events=list(signals))
        if self.grouper is not None and (regions or signals):
            outages, out.incidents = self.grouper.feed(regions)
            out.events = merge_v2(outages, signals)
        self.summary.count(out)
        return out


__all__ = ["Mark", "Output", "Partial", "Pipeline", "V2Event"]
