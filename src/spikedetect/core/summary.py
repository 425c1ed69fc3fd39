"""What a run of the core did: one summary type for every driver, counted in one place.

:class:`~spikedetect.core.pipeline.Pipeline` counts each :class:`Output` into its summary
(:meth:`Summary.count`); a driver adds only what the core cannot know (``seconds`` - the
core has no clock -, ``model``, ``faults``).

>>> s = Summary(events=4, rejected=1, late=1)
>>> s.reject("late", {"line": 7}); s.reject("late", {"line": 9}); s.rejected_by_reason, s.first_line_by_reason
({'late': 2}, {'late': 7})
>>> s.reject_rate
0.5
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from spikedetect.core.signal_events import SignalEvent

if TYPE_CHECKING:
    from spikedetect.core.pipeline import Output


@dataclass
class Summary:
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

    def reject(self, reason: str, origin: Any = None) -> None:
        """Count one dead letter; ``origin`` with an int ``line`` is remembered per reason."""
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1
        line = origin.get("line") if isinstance(origin, dict) else None
        if isinstance(line, int):
            self.first_line_by_reason.setdefault(reason, line)

    def count(self, out: Output) -> None:
        """Count an output's dead letters, region events and main-stream (v2) events."""
        for origin, _, reason in out.dead:
            self.reject(reason, origin)
        for r in out.incidents:
            self.region_events += 1
            self.region_incidents_opened += r.type == "opened"
        for e in out.events:
            if isinstance(e, SignalEvent):
                if e.type == "opened":
                    self.signals_opened[e.kind] = self.signals_opened.get(e.kind, 0) + 1
            else:
                self.incident_events += 1
                self.incidents_opened += e.type == "opened"
                self.incidents_closed += e.type == "closed"


__all__ = ["Summary"]
