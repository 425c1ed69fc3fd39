"""The single-process entry point: one source, counted, closed and scored in place.

Tests and notebooks use this: a :class:`~spikedetect.core.pipeline.Pipeline` with one source
and without outage grouping (region events only).

>>> d = Detector()
>>> out = d.feed({"ts": "2026-11-26T03:14:15Z", "service": "ig", "region": "US", "category": "feed"})
>>> out.accepted, out.incidents
(1, [])
>>> d.feed(b"not json").rejects
[(0, 'not_json')]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import WindowCounter
from spikedetect.core.incidents import IncidentEvent
from spikedetect.core.pipeline import Output, Pipeline
from spikedetect.core.scorer import Scorer, WindowHook
from spikedetect.core.signal_events import SignalEvent
from spikedetect.core.state import dumps, loads, restore_scorer, snapshot_scorer

_SOURCE = 0


class Detector:
    def __init__(self, config: DetectorConfig | None = None, *, on_window: WindowHook | None = None) -> None:
        self.config = config or DetectorConfig()
        self.pipeline = Pipeline(self.config, sources=(_SOURCE,), outages=False, on_window=on_window)
        self._signals: list[SignalEvent] = []
        self._dead: list[tuple[Any, bytes, str]] = []

    @property
    def counter(self) -> WindowCounter:
        return self.pipeline.counters[_SOURCE]

    @property
    def scorer(self) -> Scorer:
        return self.pipeline.scorer

    def watch_windows(self, hook: WindowHook) -> None:
        """Register a hook for every closed window's scores (see :meth:`Pipeline.watch_windows`)."""
        self.pipeline.watch_windows(hook)

    def feed(self, event: bytes | dict[str, Any]) -> Output:
        """One report (raw bytes or an already decoded object)."""
        raw = event if isinstance(event, bytes | bytearray) else orjson.dumps(event)
        return self.feed_batch([bytes(raw)])

    def feed_batch(self, values: Sequence[bytes], fallback_ts_ms: Sequence[int | None] | None = None,
                   origin: Callable[[int], Any] | None = None) -> Output:
        """A batch of raw messages; windows the watermark closes are scored at the end.
        ``origin(i)`` names message i if it is dead-lettered later (:meth:`take_dead`)."""
        return self._keep(self.pipeline.feed(_SOURCE, values, fallback_ts_ms, origin=origin))

    def advance_to(self, ts_ms: int) -> list[IncidentEvent]:
        """Move the watermark without input (what the live idle timer does)."""
        return self._keep(self.pipeline.advance_to(_SOURCE, ts_ms)).incidents

    def flush(self) -> list[IncidentEvent]:
        """End of input: count the held reports that continue the stream, close every window
        that holds data. Held reports no other report confirmed are then in :meth:`take_dead`."""
        return self._keep(self.pipeline.flush(_SOURCE)).incidents

    def _keep(self, out: Output) -> Output:
        """Keep what :meth:`take_signals` and :meth:`take_dead` hand out later."""
        self._signals += [e for e in out.events if isinstance(e, SignalEvent)]
        self._dead += out.dead[len(out.rejects):]  # the held reports rejected after their batch
        return out

    def take_signals(self) -> list[SignalEvent]:
        """Composition and ingest-gap events of the windows closed since the last call."""
        taken, self._signals = self._signals, []
        return taken

    def take_dead(self) -> list[tuple[Any, bytes, str]]:
        """Reports rejected after their batch: (origin, raw bytes, reason), e.g. ``ts_skewed``."""
        taken, self._dead = self._dead, []
        return taken

    # -- state -----------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Everything needed to continue exactly where this detector is."""
        return dumps({"counter": self.counter.snapshot(), "scorer": snapshot_scorer(self.scorer)})

    @classmethod
    def restore(cls, blob: bytes, config: DetectorConfig | None = None) -> Detector:
        data = loads(blob)
        det = cls(config)
        det.counter.restore(data["counter"])
        det.pipeline.scorer = restore_scorer(det.config, data["scorer"])
        return det

    @property
    def stats(self) -> dict[str, Any]:
        return {**self.counter.stats.as_dict(), **self.scorer.stats.__dict__,
                "open_incidents": len(self.scorer.open_incidents()), "keys": self.scorer.keyspace.size}
