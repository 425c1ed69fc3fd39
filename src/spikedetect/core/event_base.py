"""What every incident event shares, on both streams: the region incidents
(``spikedetect.incident/v1``, :class:`~spikedetect.core.incident_event.IncidentEvent`) and the
main stream (``spikedetect.incident/v2``): outage incidents
(:class:`~spikedetect.core.outage_events.OutageEvent`) and the signals of issue 18
(:class:`~spikedetect.core.signal_events.SignalEvent`).

One lifecycle (``opened`` -> ``updated`` -> ``closed``), one dedup key ``(incident_id, seq)``
and one deterministic serialisation: sorted keys, so the bytes depend only on the values.
v2 events add ``updated_at`` and are keyed ``service|incident_id`` on Kafka (an incident's
events stay in order on one partition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

SCHEMA_V2 = "spikedetect.incident/v2"


@dataclass(frozen=True, kw_only=True)
class EventBase:
    """The fields of every incident event; subclasses add theirs (keyword-only, so order is free)."""

    type: str
    incident_id: str
    seq: int
    service: str
    region: str
    level: str
    window_ms: int
    opened_at: str
    detected_at: str
    closed_at: str | None
    score: float
    detector: dict[str, str]
    schema: str

    def to_dict(self) -> dict[str, Any]:
        """The event's JSON object (its fields; a subclass may leave out or flatten in more)."""
        return dict(self.__dict__)

    def to_json(self) -> bytes:
        """Byte-for-byte deterministic JSON (sorted keys)."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, kw_only=True)
class V2Event(EventBase):
    """The fields of every event of the v2 stream."""

    updated_at: str
    schema: str = SCHEMA_V2

    @property
    def kafka_key(self) -> bytes:
        """``service|incident_id``: every event of one incident on one partition, in order."""
        return f"{self.service}|{self.incident_id}".encode()
