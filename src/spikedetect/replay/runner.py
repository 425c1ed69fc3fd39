"""The offline driver: feed batches to the detection core, collect incidents and dead letters.

The same :class:`~spikedetect.core.detector.Detector` the tests use; replay never touches
a wall clock (the progress bar aside), and at the end of input it closes every window
that holds data.

>>> from spikedetect.core import DetectorConfig
>>> r = Replay(DetectorConfig())
>>> r.feed([b'{"ts": 1795651200000, "service": "ig", "region": "US", "category": "feed"}', b"oops"])
>>> r.finish(); r.summary.events, r.summary.accepted, r.summary.rejected
(2, 1, 1)

Region incidents (``spikedetect.incident/v1``) are grouped into outage incidents
(``spikedetect.incident/v2``, :mod:`spikedetect.core.outages`): ``on_incident`` gets the
outage events, ``on_region`` the region events, each with its ``group_id``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from spikedetect.core import Detector, DetectorConfig, IncidentEvent
from spikedetect.core.outage_events import OutageEvent
from spikedetect.core.outages import OutageGrouper
from spikedetect.core.signal_events import SignalEvent, merge_v2

V2Event = OutageEvent | SignalEvent  # the main stream: outages, composition shifts, ingest gaps
OnOutage = Callable[[V2Event], None]
OnRegion = Callable[[IncidentEvent], None]


@dataclass
class ReplaySummary:
    events: int = 0
    accepted: int = 0
    rejected: int = 0
    late: int = 0
    duplicates: int = 0
    incidents_opened: int = 0  # outage incidents (spikedetect.incident/v2)
    incidents_closed: int = 0
    incident_events: int = 0
    signals_opened: dict[str, int] = field(default_factory=dict)  # composition / ingest_gap incidents
    region_incidents_opened: int = 0  # region incidents (spikedetect.incident/v1)
    region_events: int = 0
    windows_closed: int = 0
    keys: int = 0
    seconds: float = 0.0
    model: str = ""  # how values were scored (series: counts or continuous)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)  # "late" included
    first_line_by_reason: dict[str, int] = field(default_factory=dict)  # input line of the first one
    faults: list[str] = field(default_factory=list)  # where the input ended early ("FILE:LINE: why")

    @property
    def reject_rate(self) -> float:
        """Share of the input rejected or late."""
        return (self.rejected + self.late) / self.events if self.events else 0.0

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


class IncidentSink:
    """Groups a driver's region events into outages, counts both streams and hands them out."""

    def __init__(self, summary: ReplaySummary, on_incident: OnOutage | None = None,
                 on_region: OnRegion | None = None) -> None:
        self.summary = summary
        self.grouper = OutageGrouper()
        self.on_incident = on_incident
        self.on_region = on_region

    def __call__(self, events: list[IncidentEvent], signals: Sequence[SignalEvent] = ()) -> None:
        if not events and not signals:
            return
        outages, regions = self.grouper.feed(events)
        s = self.summary
        for r in regions:
            s.region_events += 1
            s.region_incidents_opened += r.type == "opened"
            if self.on_region is not None:
                self.on_region(r)
        for e in merge_v2(outages, signals):
            if isinstance(e, SignalEvent):
                if e.type == "opened":
                    s.signals_opened[e.kind] = s.signals_opened.get(e.kind, 0) + 1
            else:
                s.incident_events += 1
                s.incidents_opened += e.type == "opened"
                s.incidents_closed += e.type == "closed"
            if self.on_incident is not None:
                self.on_incident(e)


class Replay:
    """Drive one Detector over batches; incidents and dead letters go to callbacks."""

    def __init__(self, config: DetectorConfig, *, on_incident: OnOutage | None = None,
                 on_dead_letter: Callable[[bytes], None] | None = None, source_name: str = "-",
                 on_region: OnRegion | None = None) -> None:
        self.detector = Detector(config)
        self.summary = ReplaySummary()
        self._emit = IncidentSink(self.summary, on_incident, on_region)
        self.on_dead_letter = on_dead_letter
        self.source_name = source_name
        self.last_reject_line = 0
        self._started = time.perf_counter()

    def feed(self, values: Sequence[bytes], fallback_ts_ms: Sequence[int | None] | None = None,
             where: Iterable[dict[str, Any]] | None = None, line_numbers: Sequence[int] | None = None) -> None:
        s = self.summary
        base = s.events
        places = list(where) if where is not None else None

        def origin(i: int) -> dict[str, Any]:
            if places:
                return places[i]
            return {"source": self.source_name, "line": line_numbers[i] if line_numbers is not None else base + i + 1}

        out = self.detector.feed_batch(values, fallback_ts_ms, origin)
        s.events += len(values)
        for i, reason in out.rejects:
            self._dead_letter(values[i], reason, origin(i))
        self._drain_dead()
        self._emit(out.incidents, self.detector.take_signals())

    def _dead_letter(self, raw: bytes, reason: str, origin: dict[str, Any]) -> None:
        by = self.summary.rejected_by_reason
        by[reason] = by.get(reason, 0) + 1
        line = origin.get("line")
        if isinstance(line, int):
            self.summary.first_line_by_reason.setdefault(reason, line)
            self.last_reject_line = max(self.last_reject_line, line)
        if self.on_dead_letter is not None:
            self.on_dead_letter(dead_letter_line(raw, reason, origin))

    def _drain_dead(self) -> None:
        """Held reports rejected after their batch (``ts_skewed``)."""
        for origin, raw, reason in self.detector.take_dead():
            self._dead_letter(raw, reason, origin)

    def finish(self) -> None:
        self._emit(self.detector.flush(), self.detector.take_signals())
        self._drain_dead()
        st = self.detector.stats
        s = self.summary
        s.accepted, s.late, s.duplicates = st["accepted"], st["late"], st["duplicates"]
        s.rejected = st["rejected"]
        s.windows_closed, s.keys = st["windows_closed"], st["keys"]
        s.seconds = time.perf_counter() - self._started
