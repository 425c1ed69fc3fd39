"""The region incident event, ``spikedetect.incident/v1``: what the incident machine emits,
and :class:`WindowView`: what it sees of a key in one closed window.

Event types and close reasons are :data:`EventType` and :data:`CloseReason`, so a typo is a
``mypy --strict`` error, not a silently different stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

SCHEMA = "spikedetect.incident/v1"

EventType = Literal["opened", "updated", "closed"]
CloseReason = Literal["recovered", "level_shift", "max_duration"]
IncidentState = Literal["open", "closed"]  # an incident's state once it has emitted an event


@dataclass(frozen=True)
class WindowView:
    """What one key saw in one closed window (input of :meth:`~spikedetect.core.incidents.IncidentMachine.step`)."""

    ws_ms: int
    observed: float
    expected: float
    score: float
    baseline: str
    categories: dict[str, float]
    sources: dict[str, float]
    children: dict[str, tuple[float, float]]  # child key -> (reports, expected)
    window_score: float | None = None  # this window's own score (None: ``score``)


@dataclass(frozen=True)
class IncidentEvent:
    """One ``spikedetect.incident/v1`` event. ``to_json`` is byte-for-byte deterministic."""

    type: EventType
    incident_id: str
    seq: int
    service: str
    region: str
    level: str
    window_ms: int
    opened_at: str
    detected_at: str
    closed_at: str | None
    close_reason: CloseReason | None
    observed: float
    expected: float
    score: float
    peak_count: float
    peak_at: str
    total_reports: float
    excess_reports: float
    categories: dict[str, float]
    sources: dict[str, float]
    children: list[dict[str, Any]]
    baseline: str
    detector: dict[str, str]
    schema: str = SCHEMA
    group_id: str | None = None  # the outage incident (spikedetect.incident/v2) it belongs to

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema, "type": self.type, "incident_id": self.incident_id, "seq": self.seq,
            "service": self.service, "region": self.region, "level": self.level,
            "window_ms": self.window_ms, "opened_at": self.opened_at, "detected_at": self.detected_at,
            "closed_at": self.closed_at, "close_reason": self.close_reason, "observed": self.observed,
            "expected": self.expected, "score": self.score, "peak_count": self.peak_count,
            "peak_at": self.peak_at, "total_reports": self.total_reports,
            "excess_reports": self.excess_reports, "categories": self.categories,
            "sources": self.sources, "children": self.children, "baseline": self.baseline,
            "detector": self.detector,
            **({"group_id": self.group_id} if self.group_id is not None else {}),
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)

    @property
    def kafka_key(self) -> bytes:
        return f"{self.service}|{self.region}".encode()
