"""One outage, one incident: group a service's region incidents into outage incidents.

:class:`OutageGrouper` consumes the per-region events (``spikedetect.incident/v1``) in the
order the scorer emits them - window by window - and publishes one outage incident
(``spikedetect.incident/v2``) per group. The grouping rule (also in docs/events.md):

* A region incident that opens joins an **open** outage of its service (one that still has
  an open member) when that outage has a member in the **same country**; otherwise, when an
  open outage has the global key ``*`` open, it joins that one (a widespread outage takes in
  every country while the global key is affected); otherwise it starts a new outage. So two
  single-city outages in different countries stay two incidents, a city outage that spreads
  to its country stays one.
* The global key itself, opening while outages are open, joins the one with the largest
  member peak (the outage that explains it). When the open outages together explain less
  than ``explain_share`` of the global key's peak excess (the outage is wider than what has
  opened so far), every other open outage of the service is **merged** into it: its members move over, and it publishes a last ``closed`` event with
  ``close_reason: "merged"`` and ``merged_into`` naming the outage that goes on (several
  countries can trip in the window before the global key does; once it does, they are one
  outage).
* The **root** is the highest member, moved down a single chain while a lone member child
  explains at least ``explain_share`` of its parent's peak excess (peak minus expected): a
  state incident that is a near-copy of its one city gives the city as root. After the outage opened, the root only
  ever moves up (to an ancestor), and an ``updated`` event says so at once.
* Within a window, closes and updates are applied before openings (a region that opens after
  its outage's last member recovered does not overlap it), and openings go parents first.
* Events: ``opened`` at the end of the window its first members opened in; ``updated`` at
  most once per ``update_every_ms`` of event time after the outage grew (a member opened or
  reached a new peak; recoveries wait for the next event), and at once when the root moves
  up or a new country joins; ``closed`` when its last member closes. The
  lifecycle is :data:`OUTAGE_TRANSITIONS`.
* Ids are a hash of service, root and first window at opening, and the detector's
  params_hash: live and replay agree.

Re-delivery: a window already applied (``applied_ms``) is skipped - a re-close after a crash
re-emits region events of that window only for keys that had not written their state, and
those only get their ``group_id`` again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from spikedetect.core.errors import IllegalTransition
from spikedetect.core.incidents import IncidentEvent
from spikedetect.core.outage_events import (
    Member,
    Outage,
    OutageEvent,
    country_of,
    highest,
    is_under,
    outage_event,
)
from spikedetect.core.regions import GLOBAL, depth
from spikedetect.core.timefmt import parse_ts_ms

UPDATE_EVERY_MS = 5 * 60_000
EXPLAIN_SHARE = 0.6
RECENT_MS = 3 * 3_600_000

# (state, trigger) -> (next state, event). "change" is rate-limited; the others emit at once.
OUTAGE_TRANSITIONS: dict[tuple[str | None, str], tuple[str, str | None]] = {
    (None, "members_opened"): ("open", "opened"),
    ("open", "change"): ("open", "updated"),
    ("open", "root_moved"): ("open", "updated"),
    ("open", "country_joined"): ("open", "updated"),
    ("open", "all_closed"): ("closed", "closed"),
    ("open", "merged"): ("closed", "closed"),
}


def outage_next(state: str | None, trigger: str) -> tuple[str, str | None]:
    try:
        return OUTAGE_TRANSITIONS[(state, trigger)]
    except KeyError:
        raise IllegalTransition(f"an outage in state {state!r} cannot take {trigger!r}") from None


@dataclass
class ServiceOutages:
    """The grouper state of one service: what an owner writes to its table."""

    applied_ms: int | None = None  # end of the last window applied
    open: list[Outage] = field(default_factory=list)  # in creation order
    recent: dict[str, list[Any]] = field(default_factory=dict)  # closed member id -> [group id, closed ms]

    def to_dict(self) -> dict[str, Any]:
        return {"applied_ms": self.applied_ms, "open": [o.to_dict() for o in self.open], "recent": self.recent}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceOutages:
        applied = data["applied_ms"]
        if applied is not None and type(applied) is not int:
            raise TypeError(f"applied_ms is {applied!r}")
        recent = dict(data["recent"])
        if any(type(v) is not list or len(v) != 2 or type(v[0]) is not str or type(v[1]) is not int
               for v in recent.values()):
            raise TypeError("recent members must map to [group id, closed ms]")
        return cls(applied, [Outage.from_dict(o) for o in data["open"]], recent)


class OutageGrouper:
    """Groups region incident events into outage events; pure and deterministic."""

    def __init__(self, update_every_ms: int = UPDATE_EVERY_MS, explain_share: float = EXPLAIN_SHARE,
                 recent_ms: int = RECENT_MS) -> None:
        self.update_every_ms = update_every_ms
        self.explain_share = explain_share
        self.recent_ms = recent_ms
        self.services: dict[str, ServiceOutages] = {}
        self.touched: set[str] = set()  # services whose state changed since the driver last drained it

    # -- feeding -------------------------------------------------------------------
    def feed(self, events: Sequence[IncidentEvent]) -> tuple[list[OutageEvent], list[IncidentEvent]]:
        """Region events in emission order -> (outage events, the region events with ``group_id``)."""
        outages: list[OutageEvent] = []
        regions: list[IncidentEvent] = []
        i = 0
        while i < len(events):
            at = events[i].detected_at
            j = i
            by_service: dict[str, list[IncidentEvent]] = {}
            while j < len(events) and events[j].detected_at == at:
                by_service.setdefault(events[j].service, []).append(events[j])
                j += 1
            for svc in sorted(by_service):
                outages.extend(self._apply(svc, by_service[svc], at))
            regions.extend(e.with_group(self.group_of(e.service, e.incident_id)) for e in events[i:j])
            i = j
        return outages, regions

    def group_of(self, service: str, region_incident_id: str) -> str | None:
        st = self.services.get(service)
        if st is None:
            return None
        for o in st.open:
            if region_incident_id in o.members:
                return o.incident_id
        hit = st.recent.get(region_incident_id)
        return str(hit[0]) if hit is not None else None

    def _apply(self, svc: str, batch: list[IncidentEvent], at: str) -> list[OutageEvent]:
        """Apply one window's region events of a service: members move on, opening regions join
        an outage or start one (parents first), then every open outage says what changed."""
        st = self.services.setdefault(svc, ServiceOutages())
        t = parse_ts_ms(at)
        if t is None:
            raise ValueError(f"region event with an unreadable detected_at {at!r}")
        if st.applied_ms is not None and t <= st.applied_ms:
            return []  # this window was applied before a crash: its region events only get their group_id
        st.applied_ms = t
        self.touched.add(svc)
        opening = self._update_members(st, batch)
        fresh: list[Outage] = []
        out: list[OutageEvent] = []  # merges first
        for e in sorted(opening, key=lambda e: (depth(e.region), e.region)):
            o = self._choose(st, e.region)
            if o is None:
                o = Outage("", svc, e.region, e.window_ms, dict(e.detector))
                st.open.append(o)
                fresh.append(o)
            o.members[e.incident_id] = Member.from_event(e)
            o.dirty = True
            if e.region == GLOBAL:
                out.extend(self._merge_into(st, o, at, t))
        for o in list(st.open):
            ev = self._step_outage(st, o, any(o is f for f in fresh), at, t)
            if ev is not None:
                out.append(ev)
        cutoff = t - self.recent_ms
        for rid in [rid for rid, (_, closed) in st.recent.items() if closed < cutoff]:
            del st.recent[rid]
        return out

    @staticmethod
    def _update_members(st: ServiceOutages, batch: list[IncidentEvent]) -> list[IncidentEvent]:
        """Region events of known members update them; the others that are not closes are
        returned (opened, or a region incident whose opening this state never saw)."""
        opening: list[IncidentEvent] = []
        for e in batch:
            owner = next((o for o in st.open if e.incident_id in o.members), None)
            if owner is not None:
                owner.members[e.incident_id].update(e)
                owner.dirty = owner.dirty or e.type == "updated"  # a new peak; a recovery waits for the next event
            elif e.type != "closed":
                opening.append(e)
        return opening

    def _step_outage(self, st: ServiceOutages, o: Outage, fresh: bool, at: str, t: int) -> OutageEvent | None:
        """The event an open outage emits this window, if any: opened (``fresh``), closed (no
        open member left), its root moved up, a new country, or a due update."""
        if fresh:
            o.root = self._root(o)
            o.incident_id = _outage_id(o.service, o.root, min(m.opened_at for m in o.members.values()), o.detector)
            return self._emit(o, "members_opened", at, t)
        if not o.any_open():
            ev = self._emit(o, "all_closed", at, t)
            st.open.remove(o)
            for m in o.members.values():
                st.recent[m.incident_id] = [o.incident_id, t]
            return ev
        root = self._root(o)
        if root != o.root and is_under(o.root, root):
            o.root = root
            return self._emit(o, "root_moved", at, t)
        if set(o.member_countries()) - set(o.countries):
            return self._emit(o, "country_joined", at, t)
        if o.dirty and t - o.last_emit_ms >= self.update_every_ms:
            return self._emit(o, "change", at, t)
        return None

    def _emit(self, o: Outage, trigger: str, at: str, t: int) -> OutageEvent:
        state, kind = outage_next(o.state, trigger)
        assert kind is not None
        o.state, o.seq, o.last_emit_ms, o.dirty = state, o.seq + 1, t, False
        o.countries = o.member_countries()
        return outage_event(o, kind, at)

    def _merge_into(self, st: ServiceOutages, o: Outage, at: str, t: int) -> list[OutageEvent]:
        """Every other open outage of the service joins ``o`` (its global key just opened);
        a published one closes with ``close_reason: "merged"``."""
        out: list[OutageEvent] = []
        others = [x for x in st.open if x is not o and x.any_open()]
        glob = next(m for m in o.members.values() if m.region == GLOBAL and m.is_open)
        below = [m for x in [o, *others] for m in x.members.values() if m.region != GLOBAL]
        explained = sum(_peak_excess(m) for m in below if not any(is_under(m.region, n.region) for n in below))
        if explained >= self.explain_share * _peak_excess(glob):
            return out  # the open outages explain the global key: they stay apart (twin cities)
        for other in others:
            if other.state is not None:  # published: tell its consumers where it went
                state, kind = outage_next(other.state, "merged")
                assert kind is not None
                other.state, other.seq, other.last_emit_ms = state, other.seq + 1, t
                ev = outage_event(other, kind, at)
                out.append(replace(ev, closed_at=at, close_reason="merged", merged_into=o.incident_id))
            o.members.update(other.members)
            o.dirty = True
            st.open.remove(other)
        return out

    def _choose(self, st: ServiceOutages, region: str) -> Outage | None:
        """The open outage a newly opened region incident joins (None: it starts a new one)."""
        live = [o for o in st.open if o.any_open()]
        if region == GLOBAL:
            if not live:
                return None
            return min(live, key=lambda o: -max((m.peak_count for m in o.members.values()), default=0.0))
        country = country_of(region)
        for o in live:
            if any(country_of(m.region) == country for m in o.members.values()):
                return o
        for o in live:
            if any(m.region == GLOBAL and m.is_open for m in o.members.values()):
                return o
        return None

    def _root(self, o: Outage) -> str:
        """The highest member, moved down a single chain while one child explains its peak."""
        members = list(o.members.values())
        r = highest(members)
        while True:
            top, below = r.region == GLOBAL, r.region + "/"  # is_under, inline: a call per member is most of it
            under = [m for m in members if m.region != GLOBAL and (top or m.region.startswith(below))]
            if not under:
                return r.region
            h = highest(under)  # never the global key: it is under r
            below = h.region + "/"
            one_chain = all(m.region == h.region or m.region.startswith(below) for m in under)
            if not (one_chain and _peak_excess(h) >= self.explain_share * _peak_excess(r)):
                return r.region
            r = h

    # -- state -----------------------------------------------------------------------
    def export_service(self, service: str) -> dict[str, Any]:
        return self.services.get(service, ServiceOutages()).to_dict()

    def import_service(self, service: str, data: dict[str, Any]) -> None:
        """Load a service's state from :meth:`export_service`; raises ValueError on bad data."""
        try:
            self.services[service] = ServiceOutages.from_dict(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"bad outage state for {service!r}: {exc}") from exc

    def open_outages(self) -> list[Outage]:
        return [o for st in self.services.values() for o in st.open]


def _peak_excess(m: Member) -> float:
    """Reports above expectation in the member's largest window (its latest expectation)."""
    return max(m.peak_count - m.expected, 0.0)


def _outage_id(service: str, root: str, first_opened_at: str, detector: dict[str, str]) -> str:
    blob = f"outage|{service}|{root}|{first_opened_at}|{detector.get('params_hash', '')}".encode()
    return "out-" + hashlib.sha256(blob).hexdigest()[:20]
