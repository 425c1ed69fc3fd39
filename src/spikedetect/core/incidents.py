"""The incident lifecycle of one key, as one typed table.

Each closed window gives a key a :class:`Signal`. :data:`TABLE` maps (:class:`Phase`, signal)
to an :class:`Action`, each one small handler of :class:`IncidentMachine` that sets the next phase
from the key's counters: K anomalous windows (or one extreme one) open an incident, M calm ones
close it, anything between keeps it open (a flapping outage stays one incident). A pair the table
does not hold raises :class:`~spikedetect.core.errors.IllegalTransition` before anything changes.

The events a consumer sees follow a second table, :data:`LIFECYCLE`: opened, then updated any
number of times, then closed; anything else raises and changes nothing.

>>> TABLE[(Phase.QUIET, Signal.ANOMALOUS)]
<Action.COUNT: 'count'>
>>> lifecycle_next(None, "opened")
'open'
>>> lifecycle_next("closed", "updated")
Traceback (most recent call last):
...
spikedetect.core.errors.IllegalTransition: an incident in state 'closed' cannot be 'updated'
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from spikedetect.core.config import DetectorConfig
from spikedetect.core.errors import IllegalTransition
from spikedetect.core.expand import add_breakdown, children_cap, fold
from spikedetect.core.incident_event import (
    SCHEMA,
    CloseReason,
    EventType,
    IncidentEvent,
    IncidentState,
    TimeTexts,
    WindowView,
    num,
    round_float,
)
from spikedetect.core.regions import level_name


class Phase(StrEnum):
    """Where a key is between windows (serialised with its tracker as the plain string)."""

    QUIET = "quiet"  # no tracker
    PENDING = "pending"  # anomalous, not yet K windows in a row
    OPEN = "open"
    COOLING = "cooling"  # open, the last windows calm


class Signal(IntEnum):
    """What one closed window says about a key; ordered, so ``>= ANOMALOUS`` reads as it says."""

    CALM = 0
    ELEVATED = 1
    ANOMALOUS = 2
    EXTREME = 3


class Action(StrEnum):
    """What a (phase, signal) pair does; each is one handler of :class:`IncidentMachine`."""

    IGNORE = "ignore"  # quiet and not anomalous: nothing to track
    ABANDON = "abandon"  # pending and no longer anomalous: forget it, no event
    COUNT = "count"  # anomalous before an incident: one more window towards K
    OPEN = "open"  # extreme before an incident: open at once
    KEEP = "keep"  # raised while open or cooling: (back to) open, an update on a new peak
    COOL = "cool"  # calm while open or cooling: one more window towards M


TABLE: dict[tuple[Phase, Signal], Action] = {
    (Phase.QUIET, Signal.CALM): Action.IGNORE,
    (Phase.QUIET, Signal.ELEVATED): Action.IGNORE,
    (Phase.QUIET, Signal.ANOMALOUS): Action.COUNT,
    (Phase.QUIET, Signal.EXTREME): Action.OPEN,
    (Phase.PENDING, Signal.CALM): Action.ABANDON,
    (Phase.PENDING, Signal.ELEVATED): Action.ABANDON,
    (Phase.PENDING, Signal.ANOMALOUS): Action.COUNT,
    (Phase.PENDING, Signal.EXTREME): Action.OPEN,
    (Phase.OPEN, Signal.CALM): Action.COOL,
    (Phase.OPEN, Signal.ELEVATED): Action.KEEP,
    (Phase.OPEN, Signal.ANOMALOUS): Action.KEEP,
    (Phase.OPEN, Signal.EXTREME): Action.KEEP,
    (Phase.COOLING, Signal.CALM): Action.COOL,
    (Phase.COOLING, Signal.ELEVATED): Action.KEEP,
    (Phase.COOLING, Signal.ANOMALOUS): Action.KEEP,
    (Phase.COOLING, Signal.EXTREME): Action.KEEP,
}

# What consumers see: the incident's state after each event type allowed from a state.
LIFECYCLE: dict[tuple[IncidentState | None, EventType], IncidentState] = {
    (None, "opened"): "open",
    ("open", "updated"): "open",
    ("open", "closed"): "closed",
}
_BY_INT: dict[tuple[Phase, int], Action] = {(phase, int(signal)): a for (phase, signal), a in TABLE.items()}


def action_for(phase: Phase, signal: int) -> Action:
    """Look up the transition table; a pair it does not hold is illegal."""
    if type(signal) is int:  # the scorer's plain ints: no Signal to build
        action = _BY_INT.get((phase, signal))
        if action is not None:
            return action
    try:
        return TABLE[(phase, Signal(signal))]
    except (KeyError, ValueError):
        raise IllegalTransition(f"no transition from phase {phase!r} on signal {signal!r}") from None


def lifecycle_next(state: IncidentState | None, event_type: EventType) -> IncidentState:
    """The incident's state after emitting ``event_type``; raises if not allowed."""
    try:
        return LIFECYCLE[(state, event_type)]
    except KeyError:
        raise IllegalTransition(f"an incident in state {state!r} cannot be {event_type!r}") from None


@dataclass
class Tracker:
    """Hysteresis counters and incident accumulators of one key outside the quiet phase."""

    phase: Phase
    first_ws: int
    streak: int = 0
    state: IncidentState | None = None  # lifecycle state once opened
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

    def accumulate(self, ws: int, view: WindowView, max_breakdown: int) -> None:
        observed, expected = view.observed, view.expected
        self.total += observed
        self.expected_total += expected
        self.recent_obs += (observed - self.recent_obs) / 43.0
        self.recent_exp += (expected - self.recent_exp) / 43.0
        if observed > self.peak_count:
            self.peak_count, self.peak_ws = observed, ws
        if view.categories or view.sources or view.children:  # empty: added already (breakdown_into)
            add_breakdown(self.categories, self.sources, self.children, view.categories, view.sources,
                          view.children, children_cap(max_breakdown))

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "phase": str(self.phase)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tracker:
        """Rebuild from :meth:`to_dict`. State read back is checked, not trusted: a missing,
        unknown or mistyped field raises TypeError or ValueError before it can misdirect a key."""
        t = cls(**data)
        if t.phase not in set(Phase) or t.state not in (None, *LIFECYCLE.values()):
            raise ValueError(f"tracker phase {t.phase!r} / state {t.state!r} is not a known one")
        t.phase = Phase(t.phase)
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


Outcome = tuple[Tracker | None, list[IncidentEvent]]  # the key's tracker (None: quiet) and its events
Handler = Callable[[Tracker, str, str, WindowView], Outcome]


class IncidentMachine:
    """Steps one key at a time through :data:`TABLE` and emits its incident events."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.window_ms = config.window_ms
        self.detector = {"name": config.detector.name, "params_hash": config.params_hash,
                         "model": "counts" if config.value_scale == 1.0 else "continuous"}
        self.unit = 1.0 / config.value_scale  # events report values in input units
        self.handlers: dict[Action, Handler | None] = {
            Action.IGNORE: None, Action.ABANDON: None,  # nothing tracked, nothing said
            Action.COUNT: self._count, Action.OPEN: self._open, Action.KEEP: self._keep, Action.COOL: self._cool,
        }
        self._times = TimeTexts()
        self._by_pair = {(p, int(s)): self.handlers[a] for (p, s), a in TABLE.items()}  # TABLE, as handlers

    def incident_id(self, service: str, key: str, first_ws: int) -> str:
        blob = f"{service}|{key}|{first_ws}|{self.detector['params_hash']}".encode()
        return "inc-" + hashlib.sha256(blob).hexdigest()[:20]

    def accumulates(self, tracker: Tracker, signal: int) -> bool:
        """Whether :meth:`step` adds this window to ``tracker`` (TABLE's action for the pair has a
        handler); False for a pair TABLE does not hold (step raises for it)."""
        try:
            return self._by_pair.get((tracker.phase, signal)) is not None
        except TypeError:  # an unhashable signal: step raises for it
            return False

    def step(self, tracker: Tracker | None, service: str, key: str, signal: int, view: WindowView) -> Outcome:
        """Advance one key by one window; returns its tracker (None when quiet) and events."""
        phase = tracker.phase if tracker is not None else Phase.QUIET
        try:
            handler = self._by_pair[(phase, signal)]
        except (KeyError, TypeError):  # a pair TABLE does not hold: action_for raises
            handler = self.handlers[action_for(phase, signal)]
        if handler is None:
            return None, []
        t = tracker if tracker is not None else Tracker(phase=Phase.PENDING, first_ws=view.ws_ms)
        t.accumulate(view.ws_ms, view, self.config.max_breakdown)
        own = view.score if view.window_score is None else view.window_score
        if signal and (own >= self.config.close_threshold or not t.last_active_end):
            # earlier windows' evidence alone does not extend it; opened on it, it is active from its first window
            t.last_active_end = view.ws_ms + self.window_ms
        return handler(t, service, key, view)

    def _count(self, t: Tracker, service: str, key: str, view: WindowView) -> Outcome:
        t.streak += 1
        if t.streak >= self.config.open_windows:
            return self._open(t, service, key, view)
        t.phase = Phase.PENDING
        return t, []

    def _open(self, t: Tracker, service: str, key: str, view: WindowView) -> Outcome:
        t.phase, t.streak = Phase.OPEN, 0
        t.incident_id = self.incident_id(service, key, t.first_ws)
        return t, [self._emit(t, "opened", service, key, view)]

    def _keep(self, t: Tracker, service: str, key: str, view: WindowView) -> Outcome:
        c, ws = self.config, view.ws_ms
        t.phase, t.streak = Phase.OPEN, 0
        events = []
        if t.peak_ws == ws and t.peak_count > t.emitted_peak and ws - t.last_emit_ws >= c.update_every_windows * self.window_ms:
            events.append(self._emit(t, "updated", service, key, view))
        if t.state == "open" and ws + self.window_ms - t.first_ws >= c.level_shift_ms:
            # still raised after this long: the key's level has changed; its baseline adopts it
            return None, [*events, self._emit(t, "closed", service, key, view, reason="level_shift")]
        return self._time_limit(t, service, key, view, events)

    def _cool(self, t: Tracker, service: str, key: str, view: WindowView) -> Outcome:
        t.phase = Phase.COOLING
        t.streak += 1
        if t.streak >= self.config.close_windows:
            return None, [self._emit(t, "closed", service, key, view, reason="recovered")]
        return self._time_limit(t, service, key, view, [])

    def _time_limit(self, t: Tracker, service: str, key: str, view: WindowView,
                    events: list[IncidentEvent]) -> Outcome:
        """The backstop for incidents that flap: closed after ``max_incident_ms``."""
        if view.ws_ms + self.window_ms - t.first_ws >= self.config.max_incident_ms:
            return None, [*events, self._emit(t, "closed", service, key, view, reason="max_duration")]
        return t, events

    def _emit(self, t: Tracker, kind: EventType, service: str, key: str, view: WindowView,
              reason: CloseReason | None = None) -> IncidentEvent:
        t.state = lifecycle_next(t.state, kind)
        t.seq += 1
        t.last_emit_ws = view.ws_ms
        t.emitted_peak = max(t.emitted_peak, t.peak_count)
        c, u = self.config, self.unit
        total = (t.total * u) or 1.0  # categories and sources are kept in input units
        ranked = sorted(t.children.items(), key=lambda kv: (-(kv[1][0] - kv[1][1]), kv[0]))
        children = [
            {"region": child, "reports": num(n * u), "expected": num(e * u), "excess": num((n - e) * u)}
            for child, (n, e) in ranked[: c.top_children]
        ]
        return IncidentEvent(
            type=kind, incident_id=t.incident_id, seq=t.seq, service=service, region=key,
            level=level_name(key), window_ms=self.window_ms, opened_at=self._times[t.first_ws],
            detected_at=self._times[view.ws_ms + self.window_ms],
            closed_at=self._times[t.last_active_end] if kind == "closed" else None, close_reason=reason,
            observed=num(view.observed * u), expected=num(view.expected * u), score=num(view.score),
            peak_count=num(t.peak_count * u), peak_at=self._times[t.peak_ws], total_reports=num(t.total * u),
            excess_reports=num((t.total - t.expected_total) * u),
            categories={k: round_float(v / total, 4) for k, v in sorted(fold(t.categories, c.max_breakdown).items())},
            sources={k: round_float(v / total, 4) for k, v in sorted(fold(t.sources, c.max_breakdown).items())},
            children=children, baseline=view.baseline, detector=dict(self.detector),
        )


__all__ = [
    "LIFECYCLE", "SCHEMA", "TABLE", "Action", "CloseReason", "EventType", "IncidentEvent", "IncidentMachine",
    "IncidentState", "Phase", "Signal", "Tracker", "WindowView", "action_for", "lifecycle_next",
]
