"""Region incident events (``spikedetect.incident/v1``) grouped into incidents: the state of each
after its latest event, with the detection time of its first.

>>> evs = [{"incident_id": "a", "seq": 1, "type": "opened", "service": "ig", "region": "US",
...         "opened_at": 60_000, "detected_at": 120_000, "closed_at": None},
...        {"incident_id": "a", "seq": 2, "type": "closed", "service": "ig", "region": "US",
...         "opened_at": 60_000, "detected_at": 300_000, "closed_at": 240_000}, {"schema": "other"}]
>>> incidents, skipped = collect_incidents(evs)
>>> incidents[0].detected_at_ms, incidents[0].closed_at_ms, incidents[0].events, skipped
(120000, 240000, 2, 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from spikedetect.core.timefmt import time_field_ms

INCIDENT_SCHEMA = "spikedetect.incident/v1"


@dataclass(frozen=True)
class Incident:
    """The state of one incident after its latest event."""

    incident_id: str
    service: str
    region: str
    opened_at_ms: int
    detected_at_ms: int  # of its "opened" event (or its earliest event)
    closed_at_ms: int | None
    events: int

    def span(self, data_end_ms: int) -> tuple[int, int]:
        end = self.closed_at_ms if self.closed_at_ms is not None else max(data_end_ms, self.opened_at_ms)
        return self.opened_at_ms, end


def collect_incidents(events: Iterable[Mapping[str, Any]]) -> tuple[list[Incident], int]:
    """Group incident events by id; returns the incidents (first-seen order) and how many events were skipped."""
    latest: dict[str, tuple[tuple[float, int], Mapping[str, Any]]] = {}
    first: dict[str, tuple[int, int, int]] = {}  # id -> (is-not-opened, seq, detected_at)
    counts: dict[str, int] = {}
    skipped = 0
    for n, ev in enumerate(events):
        iid, schema = ev.get("incident_id"), ev.get("schema", INCIDENT_SCHEMA)
        opened, detected = time_field_ms(ev.get("opened_at")), time_field_ms(ev.get("detected_at"))
        if (
            schema != INCIDENT_SCHEMA
            or not iid
            or opened is None
            or not ev.get("service")
            or not ev.get("region")
        ):
            skipped += 1
            continue
        seq = ev.get("seq")
        order = (float(seq) if isinstance(seq, int | float) else float(n), n)
        if iid not in latest or order >= latest[iid][0]:
            latest[iid] = (order, ev)
        cand = (int(ev.get("type") != "opened"), int(order[0]), detected if detected is not None else opened)
        first[iid] = min(first.get(iid, cand), cand)
        counts[iid] = counts.get(iid, 0) + 1
    incidents = []
    for iid, (_, ev) in latest.items():
        incidents.append(
            Incident(
                incident_id=str(iid),
                service=str(ev["service"]),
                region=str(ev["region"]),
                opened_at_ms=time_field_ms(ev["opened_at"]) or 0,
                detected_at_ms=first[iid][2],
                closed_at_ms=time_field_ms(ev.get("closed_at")),
                events=counts[iid],
            )
        )
    return incidents, skipped
