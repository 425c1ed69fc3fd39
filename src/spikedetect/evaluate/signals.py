"""Score composition and ingest-gap incidents (issue 18) against a simulation's ground truth.

Rules (also in docs/evaluation.md):

* Signal events are v2 events with a ``kind`` (``composition``, ``ingest_gap``); they are
  grouped by ``incident_id`` (the latest ``seq`` describes the incident, its ``opened`` event
  gives ``detected_at``), and never count as outage incidents.
* A signal incident **matches** a :class:`~spikedetect.sim.truth.SignalTruth` of the same
  kind and service when it opened in ``[start - 2 windows, end + 30 min]``. Each truth key is
  found when a matching incident lists it (composition: a member region; ingest gap: ``"*"``),
  with that member's detection delay; a gap's ``sources`` must be the silent ones.
* A trap of kind ``producer_gap`` expects one ingest gap of its service (every source).
* A composition incident that matches no signal but opened within a true outage's span (as
  above) on one of its affected keys is ``explained``: the outage's own mix, often seen before
  its counts rise (a slow ramp). It is neither matched nor false.
* An unmatched signal incident overlapping a trap's span on one of its keys is a trap alarm;
  every unmatched one is a false signal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from spikedetect.core.timefmt import parse_ts_ms
from spikedetect.sim.truth import GroundTruth, SignalTruth

SIGNAL_KINDS = ("composition", "ingest_gap")
BEFORE_WINDOWS = 2
AFTER_MS = 30 * 60_000
TRAP_AFTER_MS = 10 * 60_000


def is_signal(event: Mapping[str, Any]) -> bool:
    return event.get("kind") in SIGNAL_KINDS


@dataclass(frozen=True)
class SignalIncident:
    incident_id: str
    kind: str
    service: str
    opened_at_ms: int
    closed_at_ms: int | None
    members: dict[str, int]  # region -> detected_at ms
    sources: tuple[str, ...]
    events: int


@dataclass
class SignalScore:
    id: str
    kind: str
    service: str
    keys: list[str]
    detected: bool
    keys_found: list[str]
    delay_s: dict[str, float]  # per key found: its detection delay
    incidents: list[str]
    events: int
    sources_ok: bool


@dataclass
class SignalSummary:
    expected: list[SignalScore] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    explained: list[dict[str, Any]] = field(default_factory=list)  # composition shifts of a true outage's mix
    trap_alarms: int = 0
    false_signals: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect_signals(events: Iterable[Mapping[str, Any]]) -> list[SignalIncident]:
    latest: dict[str, tuple[int, Mapping[str, Any]]] = {}
    opened: dict[str, int] = {}
    counts: dict[str, int] = {}
    for ev in events:
        if not is_signal(ev):
            continue
        iid = str(ev.get("incident_id"))
        seq = int(ev.get("seq") or 0)
        counts[iid] = counts.get(iid, 0) + 1
        if iid not in latest or seq >= latest[iid][0]:
            latest[iid] = (seq, ev)
        if ev.get("type") == "opened":
            opened[iid] = parse_ts_ms(str(ev.get("detected_at"))) or 0
    out: list[SignalIncident] = []
    for iid, (_, ev) in latest.items():
        detected = opened.get(iid, parse_ts_ms(str(ev.get("detected_at"))) or 0)
        members = {str(m["region"]): parse_ts_ms(str(m["detected_at"])) or detected for m in ev.get("regions") or []}
        if not members:
            members = {str(ev.get("region")): detected}
        closed = ev.get("closed_at")
        out.append(SignalIncident(iid, str(ev["kind"]), str(ev.get("service")), parse_ts_ms(str(ev.get("opened_at"))) or 0,
                                  parse_ts_ms(str(closed)) if closed else None, members,
                                  tuple(ev.get("sources") or ()), counts[iid]))
    return sorted(out, key=lambda i: (i.opened_at_ms, i.incident_id))


def expected_signals(truth: GroundTruth) -> list[SignalTruth]:
    """The truth's signals, and one ingest gap (every source) per ``producer_gap`` trap."""
    implied = [SignalTruth(t.id, "ingest_gap", t.service, t.start_ms, t.end_ms, ("*",), ("*",), description=t.description)
               for t in truth.traps if t.kind == "producer_gap"]
    return sorted([*truth.signals, *implied], key=lambda s: (s.start_ms, s.id))


def score_signals(events: Iterable[Mapping[str, Any]], truth: GroundTruth) -> SignalSummary:
    incidents = collect_signals(events)
    summary = SignalSummary()
    matched: set[str] = set()
    for want in expected_signals(truth):
        lo, hi = want.start_ms - BEFORE_WINDOWS * truth.window_ms, want.end_ms + AFTER_MS
        mine = [i for i in incidents if i.kind == want.kind and i.service == want.service and lo <= i.opened_at_ms <= hi]
        matched.update(i.incident_id for i in mine)
        delay: dict[str, float] = {}
        for i in mine:
            for key, at in i.members.items():
                if key in want.keys:
                    d = (at - want.start_ms) / 1000
                    delay[key] = min(delay.get(key, d), d)
        sources_ok = want.kind != "ingest_gap" or any(set(i.sources) == set(want.sources) for i in mine)
        summary.expected.append(SignalScore(
            want.id, want.kind, want.service, list(want.keys), bool(want.keys) and want.keys[0] in delay,
            [k for k in want.keys if k in delay], delay, [i.incident_id for i in mine],
            sum(i.events for i in mine), sources_ok))
    rest = [i for i in incidents if i.incident_id not in matched]
    for i in list(rest):
        for o in truth.outages:  # an outage's own mix, seen before (or beside) its counts: not false
            lo, hi = o.start_ms - BEFORE_WINDOWS * truth.window_ms, o.end_ms + AFTER_MS
            if (i.kind == "composition" and i.service == o.service and lo <= i.opened_at_ms <= hi
                    and set(i.members) & o.affected_keys()):
                summary.explained.append({"incident_id": i.incident_id, "outage": o.id, "regions": sorted(i.members),
                                          "delay_s": (min(i.members.values()) - o.start_ms) / 1000})
                rest.remove(i)
                break
    for i in rest:
        end = i.closed_at_ms if i.closed_at_ms is not None else truth.end_ms
        hit = [t.id for t in truth.traps if t.service == i.service and set(i.members) & set(t.keys)
               and i.opened_at_ms <= t.end_ms + TRAP_AFTER_MS and end >= t.start_ms - BEFORE_WINDOWS * truth.window_ms]
        summary.trap_alarms += bool(hit)
        summary.unmatched.append({"incident_id": i.incident_id, "kind": i.kind, "service": i.service,
                                  "regions": sorted(i.members), "traps": hit})
    summary.false_signals = len(rest)
    return summary
