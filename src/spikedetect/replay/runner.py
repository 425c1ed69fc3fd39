"""The offline driver: feed batches to the detection core, collect incidents and dead letters.

The same :class:`~spikedetect.core.detector.Detector` the tests use; replay never touches
a wall clock (the progress bar aside), and at the end of input it closes every window
that holds data.

>>> from spikedetect.core import DetectorConfig
>>> r = Replay(DetectorConfig())
>>> r.feed([b'{"ts": 1795651200000, "service": "ig", "region": "US", "category": "feed"}', b"oops"])
>>> r.finish(); r.summary.events, r.summary.accepted, r.summary.rejected
(2, 1, 1)
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from spikedetect.core import Detector, DetectorConfig, IncidentEvent


@dataclass
class ReplaySummary:
    events: int = 0
    accepted: int = 0
    rejected: int = 0
    late: int = 0
    duplicates: int = 0
    incidents_opened: int = 0
    incidents_closed: int = 0
    incident_events: int = 0
    windows_closed: int = 0
    keys: int = 0
    seconds: float = 0.0
    model: str = ""  # how values were scored (series: counts or continuous)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_s": round(self.events_per_s)}


def dead_letter_line(raw: bytes, reason: str, where: dict[str, Any]) -> bytes:
    """One JSONL dead letter: reason, origin and the original bytes (text when UTF-8)."""
    try:
        value: dict[str, str] = {"value": raw.decode("utf-8")}
    except UnicodeDecodeError:
        value = {"value_b64": base64.b64encode(raw).decode()}
    return orjson.dumps({"reason": reason, **where, **value})


class Replay:
    """Drive one Detector over batches; incidents and dead letters go to callbacks."""

    def __init__(self, config: DetectorConfig, *, on_incident: Callable[[IncidentEvent], None] | None = None,
                 on_dead_letter: Callable[[bytes], None] | None = None, source_name: str = "-") -> None:
        self.detector = Detector(config)
        self.summary = ReplaySummary()
        self.on_incident = on_incident
        self.on_dead_letter = on_dead_letter
        self.source_name = source_name
        self._started = time.perf_counter()

    def feed(self, values: Sequence[bytes], fallback_ts_ms: Sequence[int | None] | None = None,
             where: Iterable[dict[str, Any]] | None = None) -> None:
        s = self.summary
        base = s.events
        out = self.detector.feed_batch(values, fallback_ts_ms)
        s.events += len(values)
        if out.rejects:
            places = list(where) if where is not None else None
            for i, reason in out.rejects:
                s.rejected_by_reason[reason] = s.rejected_by_reason.get(reason, 0) + 1
                if self.on_dead_letter is not None:
                    origin = places[i] if places else {"source": self.source_name, "line": base + i + 1}
                    self.on_dead_letter(dead_letter_line(values[i], reason, origin))
        self._emit(out.incidents)

    def finish(self) -> None:
        self._emit(self.detector.flush())
        st = self.detector.stats
        s = self.summary
        s.accepted, s.late, s.duplicates = st["accepted"], st["late"], st["duplicates"]
        s.rejected = st["rejected"]
        s.windows_closed, s.keys = st["windows_closed"], st["keys"]
        s.seconds = time.perf_counter() - self._started

    def _emit(self, events: list[IncidentEvent]) -> None:
        s = self.summary
        for e in events:
            s.incident_events += 1
            s.incidents_opened += e.type == "opened"
            s.incidents_closed += e.type == "closed"
            if self.on_incident is not None:
                self.on_incident(e)
