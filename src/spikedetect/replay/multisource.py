"""Replay with several sources (e.g. the partitions of a Kafka topic), judged like the live pipeline.

The live pipeline counts each input partition on its own: a report is late only relative to
its own partition's watermark, and a window closes once every partition's watermark has
passed it. :class:`MultiSourceReplay` drives the core's pieces the same way - one
:class:`~spikedetect.core.counter.WindowCounter` per source and one
:class:`~spikedetect.core.scorer.Scorer` that merges their closed windows - so a topic
replay gives what the live workers gave. With a single source it is exactly
:class:`~spikedetect.replay.runner.Replay`.

>>> from spikedetect.core import DetectorConfig
>>> r = MultiSourceReplay(DetectorConfig(), sources=[0, 1])
>>> r.feed(0, [b'{"ts": 1795651800000, "service": "ig", "region": "US", "category": "feed"}'])
>>> r.feed(1, [b'{"ts": 1795651200000, "service": "ig", "region": "US", "category": "feed"}'])
>>> r.finish(); r.summary.accepted, r.summary.late   # ten minutes behind partition 0, not late in its own
(2, 0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from spikedetect.core import DetectorConfig, Scorer, WindowCounter
from spikedetect.core.scorer import WindowHook
from spikedetect.core.signal_events import SignalEvent
from spikedetect.replay.runner import IncidentSink, OnOutage, OnRegion, ReplaySummary, dead_letter_line


class MultiSourceReplay:
    """One WindowCounter per source feeding one Scorer; incidents and dead letters go to callbacks.

    Call :meth:`end_source` when a source has no more input (its open windows are closed
    and it stops holding the others back), and :meth:`finish` at the end of all input.
    """

    def __init__(
        self,
        config: DetectorConfig,
        sources: Iterable[Any],
        *,
        on_incident: OnOutage | None = None,
        on_dead_letter: Callable[[bytes], None] | None = None,
        on_window: WindowHook | None = None,
        on_region: OnRegion | None = None,
    ) -> None:
        self.config = config
        self.counters: dict[Any, WindowCounter] = {s: WindowCounter(config) for s in sources}
        self.scorer = Scorer(config, sources=list(self.counters))
        self.scorer.on_window = on_window
        self.summary = ReplaySummary()
        self._emit = IncidentSink(self.summary, on_incident, on_region)
        self.on_dead_letter = on_dead_letter
        self.ended: set[Any] = set()
        self._started = time.perf_counter()

    def feed(
        self,
        source: Any,
        values: Sequence[bytes],
        fallback_ts_ms: Sequence[int | None] | None = None,
        where: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Count a batch of raw messages of one source; close what every source has passed.

        ``fallback_ts_ms`` (the Kafka record times) is the event time of a message without
        ``ts``; ``where[i]`` names message i's origin in its dead letter.
        """
        counter = self.counters[source]
        base = self.summary.events

        def origin(i: int) -> dict[str, Any]:
            return where[i] if where is not None else {"source": str(source), "line": base + i + 1}

        res = counter.feed_batch(values, fallback_ts_ms, origin=origin)
        self.summary.events += len(values)
        for i, reason in res.rejects:
            self._dead_letter(values[i], reason, origin(i))
        self._drain_dead(counter)
        self._forward(source, idle=False)

    def _dead_letter(self, raw: bytes, reason: str, origin: dict[str, Any]) -> None:
        by = self.summary.rejected_by_reason
        by[reason] = by.get(reason, 0) + 1
        if self.on_dead_letter is not None:
            self.on_dead_letter(dead_letter_line(raw, reason, origin))

    def _drain_dead(self, counter: WindowCounter) -> None:
        for origin, raw, reason in counter.take_dead():
            self._dead_letter(raw, reason, origin)

    def end_source(self, source: Any) -> None:
        """No more input from ``source``: close its windows (like ``Detector.flush``) and let
        the scorer stop waiting for it."""
        if source in self.ended:
            return
        self.ended.add(source)
        counter = self.counters[source]
        counter.finish()
        self._drain_dead(counter)
        self._forward(source, idle=True)

    def finish(self) -> None:
        """End of all input: end every source, close every window that holds data, fill the summary."""
        for source in self.counters:
            self.end_source(source)
        self._emit(self.scorer.close_ready(), self._signals())
        s = self.summary
        s.accepted = s.rejected = s.late = s.duplicates = 0
        for counter in self.counters.values():
            st = counter.stats
            s.accepted += st.accepted
            s.rejected += st.rejected
            s.late += st.late
            s.duplicates += st.duplicates
        s.windows_closed = self.scorer.stats.windows_closed
        s.keys = self.scorer.keyspace.size
        s.seconds = time.perf_counter() - self._started

    def _signals(self) -> list[SignalEvent]:
        return self.scorer.signals.take() if self.scorer.signals is not None else []

    def _forward(self, source: Any, *, idle: bool) -> None:
        counter = self.counters[source]
        for window in counter.take_closed():
            self.scorer.add_partial(source, window)
        self.scorer.set_watermark(source, counter.watermark_ms, idle=idle)
        self._emit(self.scorer.close_ready(), self._signals())


__all__ = ["MultiSourceReplay"]
