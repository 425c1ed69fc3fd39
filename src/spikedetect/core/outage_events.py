"""Outage incidents (``spikedetect.incident/v2``): the member and outage records, and the event.

An outage groups the region incidents (``spikedetect.incident/v1``) of one service that
overlap in time and sit in the same part of the region tree; :mod:`~spikedetect.core.outages`
decides the grouping. Everything here is plain data with checked JSON round trips, so an
owner's state read back from its table cannot misdirect anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from spikedetect.core.event_base import SCHEMA_V2, V2Event
from spikedetect.core.expand import keys_of
from spikedetect.core.incidents import IncidentEvent
from spikedetect.core.regions import GLOBAL, depth, level_name

__all__ = ["SCHEMA_V2", "Member", "Outage", "OutageEvent", "country_of", "highest", "is_under", "outage_event"]


def country_of(region: str) -> str | None:
    """The country code of a region; None for the global key."""
    return None if region == GLOBAL else region.split("/", 1)[0]


def is_under(region: str, ancestor: str) -> bool:
    """True when ``region`` lies strictly below ``ancestor`` in the region tree."""
    if region == ancestor:
        return False
    return ancestor == GLOBAL or region.startswith(ancestor + "/")


def highest(members: list[Member]) -> Member:
    """``min(members, key=(depth, -peak_count, region))``, the first of equals: the members at the
    smallest depth, then the rest of the key among those (no tuple built per member).

    >>> highest([Member("a", "US/CA", "", ""), Member("b", "DE", "", "", peak_count=2.0), Member("c", "US", "", "")]).region
    'DE'
    """
    depths = [depth(m.region) for m in members]
    top = min(depths)
    level = [m for m, d in zip(members, depths, strict=True) if d == top]
    return level[0] if len(level) == 1 else min(level, key=lambda m: (-m.peak_count, m.region))


def _round(x: float, digits: int = 3) -> float:
    r = round(float(x), digits)
    return float(int(r)) if r == int(r) else r


@dataclass
class Member:
    """The latest state of one region incident inside an outage (from its v1 events)."""

    incident_id: str
    region: str
    opened_at: str
    detected_at: str  # of its ``opened`` event: its first anomalous-enough window
    closed_at: str | None = None
    close_reason: str | None = None
    observed: float = 0.0
    expected: float = 0.0
    score: float = 0.0
    peak_count: float = 0.0
    peak_at: str = ""
    total_reports: float = 0.0
    excess_reports: float = 0.0
    categories: dict[str, float] = field(default_factory=dict)
    sources: dict[str, float] = field(default_factory=dict)
    baseline: str = ""

    @classmethod
    def from_event(cls, e: IncidentEvent) -> Member:
        m = cls(e.incident_id, e.region, e.opened_at, e.detected_at)
        m.update(e)
        return m

    def update(self, e: IncidentEvent) -> None:
        self.closed_at, self.close_reason = e.closed_at, e.close_reason
        self.observed, self.expected, self.score = e.observed, e.expected, e.score
        self.peak_count, self.peak_at = e.peak_count, e.peak_at
        self.total_reports, self.excess_reports = e.total_reports, e.excess_reports
        self.categories, self.sources, self.baseline = dict(e.categories), dict(e.sources), e.baseline

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def summary(self) -> dict[str, Any]:
        """The member as listed in an outage event's ``regions``."""
        return {"region": self.region, "level": level_name(self.region), "incident_id": self.incident_id,
                "opened_at": self.opened_at, "detected_at": self.detected_at, "closed_at": self.closed_at,
                "observed": self.observed, "expected": self.expected, "peak_count": self.peak_count}


@dataclass
class Outage:
    """One outage incident of a service while it is open."""

    incident_id: str
    service: str
    root: str
    window_ms: int
    detector: dict[str, str]
    members: dict[str, Member] = field(default_factory=dict)  # region incident id -> member
    state: str | None = None  # lifecycle state (incidents.LIFECYCLE) once emitted
    seq: int = 0
    last_emit_ms: int = 0
    dirty: bool = False
    countries: list[str] = field(default_factory=list)  # countries of members already published

    def any_open(self) -> bool:
        """Whether a member is still open (stops at the first; no list, no property call each)."""
        return any(m.closed_at is None for m in self.members.values())

    def member_countries(self) -> list[str]:
        # country_of of each member, inline (a call per member and window is most of the cost)
        return sorted({region.split("/", 1)[0] for m in self.members.values() if (region := m.region) != GLOBAL})

    def top_members(self) -> list[Member]:
        """Members with no member above them: their reports are the outage's, counted once."""
        regions = {m.region for m in self.members.values()}
        # a member is under another when one of its ancestors is a member (as is_under says)
        return [m for m in self.members.values() if regions.isdisjoint(keys_of(m.region)[1:])]

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["members"] = [dict(m.__dict__) for m in self.members.values()]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outage:
        """Rebuild from :meth:`to_dict`; raises TypeError or ValueError on anything unexpected."""
        d = dict(data)
        members = [Member(**m) for m in d.pop("members")]
        o = cls(**d)
        o.members = {m.incident_id: m for m in members}
        if o.state not in (None, "open") or type(o.seq) is not int or type(o.last_emit_ms) is not int:
            raise ValueError(f"outage state {o.state!r} / seq {o.seq!r} is not a known one")
        if type(o.incident_id) is not str or type(o.root) is not str or type(o.window_ms) is not int:
            raise TypeError("outage ids, root and window must be strings and an integer")
        numbers = [x for m in members for x in (m.observed, m.expected, m.score, m.peak_count,
                                                   m.total_reports, m.excess_reports)]
        if any(type(v) not in (int, float) or not math.isfinite(v) for v in numbers):
            raise TypeError("outage member counts must be finite numbers")
        return o


@dataclass(frozen=True, kw_only=True)
class OutageEvent(V2Event):
    """One outage incident event (``spikedetect.incident/v2``, no ``kind``): the fields of
    :class:`~spikedetect.core.event_base.V2Event` plus the outage's counts and members."""

    close_reason: str | None
    observed: float
    expected: float
    peak_count: float
    peak_at: str
    total_reports: float
    excess_reports: float
    categories: dict[str, float]
    sources: dict[str, float]
    countries: list[str]
    regions: list[dict[str, Any]]
    baseline: str
    merged_into: str | None = None  # set on the last event of an outage merged into another


def outage_event(o: Outage, kind: str, at_ms_text: str) -> OutageEvent:
    """The event an outage emits now (``at_ms_text``: end of the window that produced it)."""
    members = list(o.members.values())
    root = max((m for m in members if m.region == o.root), key=lambda m: m.opened_at)
    first = min(members, key=lambda m: (m.opened_at, m.detected_at, depth(m.region), m.region))
    top = o.top_members()
    total = sum(m.total_reports for m in top)
    cats: dict[str, float] = {}
    srcs: dict[str, float] = {}
    for m in top:
        for into, shares in ((cats, m.categories), (srcs, m.sources)):
            for name, share in shares.items():
                into[name] = into.get(name, 0.0) + share * m.total_reports
    closed = kind == "closed"
    last = max(members, key=lambda m: (m.closed_at or "", m.region))
    return OutageEvent(
        type=kind, incident_id=o.incident_id, seq=o.seq, service=o.service, region=o.root,
        level=level_name(o.root), window_ms=o.window_ms, opened_at=first.opened_at,
        detected_at=min(m.detected_at for m in members), updated_at=at_ms_text,
        closed_at=last.closed_at if closed else None, close_reason=last.close_reason if closed else None,
        observed=root.observed, expected=root.expected, score=root.score, peak_count=root.peak_count,
        peak_at=root.peak_at, total_reports=_round(total),
        excess_reports=_round(sum(m.excess_reports for m in top)),
        categories={k: round(v / total, 4) if total else 0.0 for k, v in sorted(cats.items())},
        sources={k: round(v / total, 4) if total else 0.0 for k, v in sorted(srcs.items())},
        countries=o.member_countries(),
        regions=[m.summary() for m in sorted(members, key=lambda m: (depth(m.region), m.region, m.opened_at))],
        baseline=root.baseline, detector=dict(o.detector),
    )
