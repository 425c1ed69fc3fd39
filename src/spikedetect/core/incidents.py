"""The incident lifecycle of one key, as data.

Each closed window gives a key a *signal* (anomalous, extreme, elevated, calm). A
transition table maps (phase, signal) to the next phase and an action; hysteresis
comes from counting consecutive windows: K anomalous windows (or one extreme one)
open an incident, M calm windows close it, and anything in between keeps it open,
so a flapping outage stays one incident.

The events a consumer sees follow a second table, :data:`LIFECYCLE`: opened, then
updated any number of times, then closed. Anything else raises
:class:`~spikedetect.core.errors.IllegalTransition` and changes nothing.

>>> PHASES[("quiet", "anomalous")]
('pending', 'start')
>>> lifecycle_next(None, "opened")
'open'
>>> lifecycle_next("closed", "updated")
Traceback (most recent call last):
...
spikedetect.core.errors.IllegalTransition: an incident in state 'closed' cannot be 'updated'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from spikedetect.core.errors import IllegalTransition

SCHEMA = "spikedetect.incident/v1"
SIGNALS = ("calm", "elevated", "anomalous", "extreme")

# (phase, signal) -> (next phase, action). "advance" means: count the streak and decide
# by K (pending) or M (cooling) whether the phase moves on.
PHASES: dict[tuple[str, str], tuple[str, str]] = {
    ("quiet", "calm"): ("quiet", "none"),
    ("quiet", "elevated"): ("quiet", "none"),
    ("quiet", "anomalous"): ("pending", "start"),
    ("quiet", "extreme"): ("open", "start_open"),
    ("pending", "anomalous"): ("pending", "advance"),
    ("pending", "extreme"): ("open", "open"),
    ("pending", "elevated"): ("quiet", "abandon"),
    ("pending", "calm"): ("quiet", "abandon"),
    ("open", "anomalous"): ("open", "accumulate"),
    ("open", "extreme"): ("open", "accumulate"),
    ("open", "elevated"): ("open", "accumulate"),
    ("open", "calm"): ("cooling", "advance"),
    ("cooling", "calm"): ("cooling", "advance"),
    ("cooling", "elevated"): ("open", "resume"),
    ("cooling", "anomalous"): ("open", "resume"),
    ("cooling", "extreme"): ("open", "resume"),
}

# What consumers see: event type allowed from each incident state.
LIFECYCLE: dict[tuple[str | None, str], str] = {
    (None, "opened"): "open",
    ("open", "updated"): "open",
    ("open", "closed"): "closed",
}


def phase_next(phase: str, signal: str) -> tuple[str, str]:
    """Look up the transition table; an unknown pair is illegal."""
    try:
        return PHASES[(phase, signal)]
    except KeyError:
        raise IllegalTransition(f"no transition from phase {phase!r} on signal {signal!r}") from None


def lifecycle_next(state: str | None, event_type: str) -> str:
    """The incident's state after emitting ``event_type``; raises if not allowed."""
    try:
        return LIFECYCLE[(state, event_type)]
    except KeyError:
        raise IllegalTransition(f"an incident in state {state!r} cannot be {event_type!r}") from None


@dataclass(frozen=True)
class IncidentEvent:
    """One ``spikedetect.incident/v1`` event. ``to_json`` is byte-for-byte deterministic."""

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
    close_reason: str | None
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


@dataclass
class Tracker:
    """Hysteresis counters and incident accumulators of one key outside the quiet phase."""

    phase: str
    first_ws: int
    streak: int = 0
    state: str | None = None  # lifecycle state once opened
    incident_id: str = ""
    seq: int = 0
    last_emit_ws: int = 0
    last_active_end: int = 0
    peak_count: float = 0.0
    peak_ws: int = 0
    emitted_peak: float = 0.0
    total: float = 0.0
    expected_total: float = 0.0
    recent_obs: float = 0.0  # EW sums (half-life ~30 windows) of reports and expectation
    recent_exp: float = 0.0
    categories: dict[str, float] = field(default_factory=dict)
    sources: dict[str, float] = field(default_factory=dict)
    children: dict[str, list[float]] = field(default_factory=dict)  # child -> [reports, expected]

    def accumulate(self, ws: int, window_ms: int, observed: float, expected: float,
                   categories: dict[str, float], sources: dict[str, float],
                   children: dict[str, tuple[float, float]], max_breakdown: int) -> None:
        self.total += observed
        self.expected_total += expected
        self.recent_obs += (observed - self.recent_obs) / 43.0
        self.recent_exp += (expected - self.recent_exp) / 43.0
        if observed > self.peak_count:
            self.peak_count, self.peak_ws = observed, ws
        for name, n in categories.items():
            self.categories[name] = self.categories.get(name, 0.0) + n
        for name, n in sources.items():
            self.sources[name] = self.sources.get(name, 0.0) + n
        for child, (n, e) in children.items():
            acc = self.children.get(child)
            if acc is None:
                if len(self.children) >= max_breakdown * 8:
                    continue
                acc = self.children[child] = [0.0, 0.0]
            acc[0] += n
            acc[1] += e

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tracker:
        """Rebuild from :meth:`to_dict`. State read back is checked, not trusted: a missing,
        unknown or mistyped field raises TypeError or ValueError before it can misdirect a key."""
        t = cls(**data)
        if t.phase not in {p for p, _ in PHASES} or t.state not in (None, *LIFECYCLE.values()):
            raise ValueError(f"tracker phase {t.phase!r} / state {t.state!r} is not a known one")
        ints = (t.first_ws, t.streak, t.seq, t.last_emit_ws, t.last_active_end, t.peak_ws)
        if type(t.incident_id) is not str or any(type(v) is not int for v in ints):
            raise TypeError("tracker ids and window times must be a string and integers")
        sums = [*t.categories.values(), *t.sources.values(), *(x for c in t.children.values() for x in c)]
        numbers = [t.peak_count, t.emitted_peak, t.total, t.expected_total, t.recent_obs, t.recent_exp, *sums]
        if (any(type(v) not in (int, float) or not math.isfinite(v) for v in numbers)
                or any(type(k) is not str for d in (t.categories, t.sources, t.children) for k in d)
                or any(type(c) is not list or len(c) != 2 for c in t.children.values())):
            raise TypeError("tracker counts must be finite numbers keyed by name")
        return t
