"""Scoring outage incidents (``spikedetect.incident/v2``) as groups.

Rules (also in docs/evaluation.md):

* The latest event (highest ``seq``) of an outage incident describes it; its ``regions``
  are its members. Each member counts as a region incident for the key-level scores, so
  v1 and v2 streams of one run score the same there.
* An outage incident **overlaps** a true outage when the service is the same and one of its
  members lies on the outage's affected keys and opened in ``[start - 2 windows, end + 30 min]``.
  The global key counts only for an incident whose members are all global: a global member
  that joined a single-country outage does not tie it to an outage in another country.
* Per true outage: ``found`` (an overlapping incident), ``incidents`` (how many overlap:
  one is right), ``delay_s`` (the earliest ``detected_at`` among them minus the start),
  ``regions_covered`` (share of ``must_detect`` keys among their members), ``events``
  (their events) against the budget ``2 + minutes / 5``.

>>> ev = {"schema": "spikedetect.incident/v2", "type": "opened", "incident_id": "out-1", "seq": 1,
...       "service": "ig", "regions": [{"region": "US", "incident_id": "inc-1", "opened_at": 0,
...       "detected_at": 120_000, "closed_at": None}]}
>>> regions, groups = split_outages([ev])
>>> regions[0]["region"], groups[0].members[0]["region"]
('US', 'US')
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spikedetect.core.outage_events import SCHEMA_V2
from spikedetect.core.regions import GLOBAL
from spikedetect.core.timefmt import time_field_ms
from spikedetect.sim.truth import GroundTruth, OutageTruth

V1 = "spikedetect.incident/v1"
BEFORE_WINDOWS = 2
AFTER_MS = 30 * 60_000


@dataclass
class OutageIncident:
    """An outage incident after its latest event."""

    incident_id: str
    service: str
    region: str
    members: list[dict[str, Any]]
    events: int
    merged_into: str | None = None  # it was merged into this outage incident (counted as part of it)

    def detected_at_ms(self) -> int | None:
        times = [t for m in self.members if (t := time_field_ms(m.get("detected_at"))) is not None]
        return min(times) if times else None


def split_outages(events: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[OutageIncident]]:
    """v2 events -> (v1-like region incident events of their members, the outage incidents).
    Events of other schemas are passed through in the first list unchanged."""
    passthrough: list[dict[str, Any]] = []
    latest: dict[str, tuple[float, Mapping[str, Any]]] = {}
    counts: dict[str, int] = {}
    for n, ev in enumerate(events):
        if ev.get("schema") != SCHEMA_V2:
            passthrough.append(dict(ev))
            continue
        iid = str(ev.get("incident_id") or "")
        seq = ev.get("seq")
        order = float(seq) if isinstance(seq, int | float) else float(n)
        if iid and (iid not in latest or order >= latest[iid][0]):
            latest[iid] = (order, ev)
        counts[iid] = counts.get(iid, 0) + 1
    outages: list[OutageIncident] = []
    regions: list[dict[str, Any]] = []
    for iid, (_, ev) in latest.items():
        members = [dict(m) for m in ev.get("regions") or [] if isinstance(m, Mapping) and m.get("region")]
        into = ev.get("merged_into")
        outages.append(OutageIncident(iid, str(ev.get("service", "")), str(ev.get("region", "")), members,
                                      counts[iid], into if isinstance(into, str) else None))
        if into is not None and into in latest:
            continue  # its members went on in the outage it merged into: listed there
        for i, m in enumerate(members):
            regions.append({"schema": V1, "type": "opened", "seq": 1, "service": ev.get("service"),
                            "incident_id": m.get("incident_id") or f"{iid}#{i}", "region": m["region"],
                            "opened_at": m.get("opened_at"), "detected_at": m.get("detected_at"),
                            "closed_at": m.get("closed_at")})
    return passthrough + regions, outages


@dataclass
class GroupScore:
    """How one true outage was caught as a group."""

    id: str
    kind: str
    service: str
    minutes: float
    found: bool
    incidents: list[str]
    delay_s: float | None
    regions_covered: float
    keys_listed: int  # affected keys (leaves and ancestors) listed among the members
    affected_keys: int
    events: int
    event_budget: float


@dataclass
class GroupSummary:
    outages: int = 0
    found: int = 0
    one_incident: int = 0  # true outages overlapped by exactly one outage incident
    over_budget: int = 0
    incidents: int = 0
    unmatched_incidents: int = 0
    median_delay_s: float | None = None
    mean_regions_covered: float | None = None
    scores: list[GroupScore] = field(default_factory=list)


def _overlaps(inc: OutageIncident, outage: OutageTruth, lo: int, hi: int) -> bool:
    keys = outage.affected_keys()
    only_global = all(m["region"] == GLOBAL for m in inc.members)
    for m in inc.members:
        if m["region"] == GLOBAL and not only_global:
            continue
        opened = time_field_ms(m.get("opened_at"))
        if m["region"] in keys and opened is not None and lo <= opened <= hi:
            return True
    return False


def score_groups(outages: list[OutageIncident], truth: GroundTruth) -> GroupSummary:
    """Score the outage incidents of a run against every true outage."""
    out = GroupSummary(outages=len(truth.outages), incidents=len(outages))
    matched: set[str] = set()
    for o in truth.outages:
        lo, hi = o.start_ms - BEFORE_WINDOWS * truth.window_ms, o.end_ms + AFTER_MS
        hits = [inc for inc in outages if inc.service == o.service and _overlaps(inc, o, lo, hi)]
        # a merged incident is part of the one it merged into (its events count, it is not another page)
        merged_to = {inc.merged_into for inc in hits if inc.merged_into is not None}
        hits += [inc for inc in outages if inc.incident_id in merged_to and inc not in hits]
        matched.update(inc.incident_id for inc in hits)
        listed = {m["region"] for inc in hits for m in inc.members}
        must = list(o.must_detect)
        detected = [t for inc in hits if (t := inc.detected_at_ms()) is not None]
        minutes = (o.end_ms - o.start_ms) / 60_000
        out.scores.append(GroupScore(
            id=o.id, kind=o.kind, service=o.service, minutes=round(minutes, 2), found=bool(hits),
            incidents=sorted(inc.incident_id for inc in hits if inc.merged_into is None),
            delay_s=(min(detected) - o.start_ms) / 1000 if detected else None,
            regions_covered=sum(k in listed for k in must) / len(must) if must else 0.0,
            keys_listed=len(listed & o.affected_keys()), affected_keys=len(o.affected_keys()),
            events=sum(inc.events for inc in hits), event_budget=2 + minutes / 5,
        ))
    s = out.scores
    out.found = sum(g.found for g in s)
    out.one_incident = sum(len(g.incidents) == 1 for g in s)
    out.over_budget = sum(g.found and g.events > g.event_budget for g in s)
    out.unmatched_incidents = len([inc for inc in outages if inc.incident_id not in matched])
    delays = [g.delay_s for g in s if g.delay_s is not None]
    out.median_delay_s = statistics.median(delays) if delays else None
    out.mean_regions_covered = statistics.mean(g.regions_covered for g in s) if s else None
    return out


__all__ = ["GroupScore", "GroupSummary", "OutageIncident", "score_groups", "split_outages"]
