"""The single-process entry point: one source, counted, closed and scored in place.

Replay, tests and notebooks use this; the live pipeline drives the same
:class:`~spikedetect.core.counter.WindowCounter` and :class:`~spikedetect.core.scorer.Scorer`
split across Kafka partitions.

>>> d = Detector()
>>> out = d.feed({"ts": "2026-11-26T03:14:15Z", "service": "ig", "region": "US", "category": "feed"})
>>> out.accepted, out.incidents
(1, [])
>>> d.feed(b"not json").rejects
[(0, 'not_json')]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import WindowCounter
from spikedetect.core.incidents import IncidentEvent
from spikedetect.core.scorer import Scorer
from spikedetect.core.signal_events import SignalEvent
from spikedetect.core.state import dumps, loads, restore_scorer, snapshot_scorer

_SOURCE = 0


@dataclass
class Output:
    """What a call produced: incident events, rejected inputs (with reasons), counts."""

    incidents: list[IncidentEvent] = field(default_factory=list)
    rejects: list[tuple[int, str]] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0


class Detector:
    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self.counter = WindowCounter(self.config)
        self.scorer = Scorer(self.config, sources=(_SOURCE,))

    def feed(self, event: bytes | dict[str, Any]) -> Output:
        """One report (raw bytes or an already decoded object)."""
        raw = event if isinstance(event, bytes | bytearray) else orjson.dumps(event)
        return self.feed_batch([bytes(raw)])

    def feed_batch(self, values: Sequence[bytes], fallback_ts_ms: Sequence[int | None] | None = None,
                   origin: Callable[[int], Any] | None = None) -> Output:
        """A batch of raw messages; windows the watermark closes are scored at the end.
        ``origin(i)`` names message i if it is dead-lettered later (:meth:`take_dead`)."""
        res = self.counter.feed_batch(values, fallback_ts_ms, origin=origin)
        out = Output(rejects=res.rejects, accepted=res.accepted, duplicates=res.duplicates)
        out.incidents = self._close()
        return out

    def advance_to(self, ts_ms: int) -> list[IncidentEvent]:
        """Move the watermark without input (what the live idle timer does)."""
        self.counter.advance_to(ts_ms)
        return self._close()

    def flush(self) -> list[IncidentEvent]:
        """End of input: count the held reports that continue the stream, close every window
        that holds data. Held reports no other report confirmed are then in :meth:`take_dead`."""
        self.counter.finish()
        return self._close()

    def take_signals(self) -> list[SignalEvent]:
        """Composition and ingest-gap events of the windows closed since the last call."""
        return self.scorer.signals.take() if self.scorer.signals is not None else []

    def take_dead(self) -> list[tuple[Any, bytes, str]]:
        """Reports rejected after their batch: (origin, raw bytes, reason), e.g. ``ts_skewed``."""
        return self.counter.take_dead()

    def _close(self) -> list[IncidentEvent]:
        for window in self.counter.take_closed():
            self.scorer.add_partial(_SOURCE, window)
        self.scorer.set_watermark(_SOURCE, self.counter.watermark_ms)
        return self.scorer.close_ready()

    # -- state -----------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Everything needed to continue exactly where this detector is."""
        return dumps({"counter": self.counter.snapshot(), "scorer": snapshot_scorer(self.scorer)})

    @classmethod
    def restore(cls, blob: bytes, config: DetectorConfig | None = None) -> Detector:
        data = loads(blob)
        det = cls(config)
        det.counter.restore(data["counter"])
        det.scorer = restore_scorer(det.config, data["scorer"])
        return det

    @property
    def stats(self) -> dict[str, Any]:
        return {**self.counter.stats.as_dict(), **self.scorer.stats.__dict__,
                "open_incidents": len(self.scorer.open_incidents()), "keys": self.scorer.keyspace.size}
