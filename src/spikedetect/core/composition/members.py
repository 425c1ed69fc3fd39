"""Composition members and incidents: the small state machine over the qualifying keys.

A *member* is an open composition shift on one key. It closes after ``CLOSE_WINDOWS``
windows in which none of its risen categories scores ``CLOSE_SCORE`` (with 1.5x its expected
count) on the window or the short sum; after ``LEVEL_SHIFT_WINDOWS`` it closes as
``level_shift`` and the key adopts the new shares. ``closed_at`` is the end of the last window
whose own count of a risen category was raised (twice expected, two reports over it). Members
of one service are grouped into one incident while any is open (the root is the highest
member), like outages; the incident's lifecycle is :func:`~spikedetect.core.signal_events.signal_next`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from spikedetect.core.composition.tails import CLOSE_RATIO, CLOSE_SCORE, MIN_RATIO, P_FLOOR
from spikedetect.core.keyspace import ServiceKey
from spikedetect.core.regions import depth, level_name
from spikedetect.core.signal_events import SignalCloseReason, SignalEvent, SignalType, signal_id, signal_next
from spikedetect.core.timefmt import format_ts_ms

CLOSE_WINDOWS = 3
LEVEL_SHIFT_WINDOWS = 180
UPDATE_EVERY_WINDOWS = 5
SHARE_NOTE = 0.02  # rose / fell: a share this far from its expected one over the incident


@dataclass
class Member:
    """An open composition shift on one key."""

    opened_ws: int
    detected_ws: int
    rose: list[str]
    obs: dict[str, float] = field(default_factory=dict)  # reports per category since it opened
    exp: dict[str, float] = field(default_factory=dict)  # expected reports per category
    last_raised_ws: int = 0
    last_own_ws: int = 0  # the last window whose own count of a risen category was raised
    calm: int = 0
    score: float = 0.0


@dataclass
class Group:
    """One composition incident of a service: its members' last summaries."""

    incident_id: str
    seq: int = 0
    state: str | None = None
    root: str = ""
    last_emit_ws: int = 0
    dirty: bool = False
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # region -> summary


@dataclass
class KeyWindow:
    """One busy key's closed window as its member sees it."""

    ws: int
    x: dict[str, float]  # reports per category (the non-zero ones)
    n: float  # the key's reports
    scores: dict[str, float]  # score per category the key uses
    shares: npt.NDArray[np.float64]  # the key's row of learned shares, by column (a view)
    acc: npt.NDArray[np.float64]  # the key's leaky sums, (columns, 5) (a view)
    cats: Mapping[str, int]  # category -> column


def account(m: Member, kw: KeyWindow) -> None:
    """Add the window's reports and expected reports per category to the member's totals."""
    for c, col in kw.cats.items():
        share = float(kw.shares[col])
        if share > 0 or c in kw.x:
            m.obs[c] = m.obs.get(c, 0.0) + kw.x.get(c, 0.0)
            m.exp[c] = m.exp.get(c, 0.0) + kw.n * share


def summary(m: Member) -> dict[str, Any]:
    """A member's mix over its incident: shares seen and expected, which rose and which fell."""
    total = sum(m.obs.values())
    exp_total = sum(m.exp.values()) or 1.0
    obs_share = {c: v / total for c, v in m.obs.items()} if total else {}
    exp_share = {c: v / exp_total for c, v in m.exp.items()}
    diff = {c: obs_share.get(c, 0.0) - exp_share.get(c, 0.0) for c in set(obs_share) | set(exp_share)}
    rose = sorted((c for c, d in diff.items() if d >= SHARE_NOTE), key=lambda c: (-diff[c], c))
    fell = sorted((c for c, d in diff.items() if d <= -SHARE_NOTE), key=lambda c: (diff[c], c))
    return {"total_reports": round(total, 3), "score": round(min(m.score, 300.0), 3),
            "categories": {c: round(v, 4) for c, v in sorted(obs_share.items())},
            "expected_categories": {c: round(v, 4) for c, v in sorted(exp_share.items()) if round(v, 4) > 0},
            "rose": rose or list(m.rose), "fell": fell}


def still_raised(m: Member, kw: KeyWindow) -> bool:
    """Whether a risen category is still raised (on the window or the short sum); notes the
    window as the member's last own one when a risen category's count alone is raised."""
    raised = False
    for c in m.rose:
        col = kw.cats[c]
        p = max(float(kw.shares[col]), P_FLOOR)
        x, n = kw.x.get(c, 0.0), kw.n
        pairs = ((x, n * p), (float(kw.acc[col, 0]), float(kw.acc[col, 1])))
        if kw.scores.get(c, 0.0) >= CLOSE_SCORE and any(o >= CLOSE_RATIO * e and o > e for o, e in pairs):
            raised = True
        if x >= max(MIN_RATIO * n * p, n * p + 2.0):  # this window on its own
            m.last_own_ws = kw.ws
    return raised


class MemberBook:
    """The open members per key and the composition incidents per service."""

    def __init__(self, window_ms: int, detector: Mapping[str, str]) -> None:
        self.window_ms = window_ms
        self.detector = dict(detector)
        self.members: dict[ServiceKey, Member] = {}
        self.groups: dict[str, Group] = {}

    def open(self, sk: ServiceKey, first_ws: int, rose: list[str], kw: KeyWindow) -> None:
        """A new member on ``sk`` (qualifying since ``first_ws``), joined to its service's incident."""
        m = self.members[sk] = Member(first_ws, kw.ws, rose, score=max(kw.scores.values(), default=0.0))
        account(m, kw)
        svc, key = sk
        g = self.groups.get(svc)
        if g is None:
            g = self.groups[svc] = Group(signal_id("composition", svc, key, m.opened_ws,
                                                   self.detector.get("params_hash", "")), root=key)
        g.members[key] = {"region": key, "level": level_name(key), "opened_at": format_ts_ms(m.opened_ws),
                          "detected_at": format_ts_ms(kw.ws + self.window_ms), "closed_at": None,
                          "close_reason": None, **summary(m)}
        g.dirty = True

    def step(self, sk: ServiceKey, kw: KeyWindow) -> SignalCloseReason | None:
        """One more window of ``sk``'s open member; the reason when it closes. A level shift
        writes the member's mix into the key's shares (``kw.shares``)."""
        m = self.members[sk]
        account(m, kw)
        raised = still_raised(m, kw)
        m.score = max(m.score, max(kw.scores.values(), default=0.0))
        if raised:
            m.last_raised_ws, m.calm = kw.ws, 0
        else:
            m.calm += 1
        reason: SignalCloseReason | None = None
        if (kw.ws - m.opened_ws) // self.window_ms >= LEVEL_SHIFT_WINDOWS:
            reason = "level_shift"
            total = sum(m.obs.values())
            if total > 0:  # the key adopts the shares it has had since the shift began
                kw.shares[:] = 0.0
                for c, v in m.obs.items():
                    kw.shares[kw.cats[c]] = v / total
        elif m.calm >= CLOSE_WINDOWS:
            reason = "recovered"
        member_summary = self.groups[sk[0]].members[sk[1]]
        member_summary.update(summary(m))
        if reason is not None:
            member_summary["closed_at"] = format_ts_ms(max(m.last_own_ws, m.opened_ws) + self.window_ms)
            member_summary["close_reason"] = reason
            del self.members[sk]
        return reason

    def forget(self, sk: ServiceKey) -> None:
        """The key was retired: its member, if any, ends as recovered when it was detected."""
        if sk in self.members:
            self.members.pop(sk)
            g = self.groups.get(sk[0])
            if g is not None and sk[1] in g.members:
                g.members[sk[1]]["closed_at"] = g.members[sk[1]]["detected_at"]
                g.members[sk[1]]["close_reason"] = "recovered"

    def emit(self, svc: str, ws: int) -> list[SignalEvent]:
        """The service's incident event for this window, if its state or root changed or an
        update is due; a closed incident is forgotten."""
        g = self.groups.get(svc)
        if g is None:
            return []
        root = min(g.members.values(), key=lambda s: (depth(s["region"]), s["opened_at"], s["region"]))["region"]
        open_members = [s for s in g.members.values() if s["closed_at"] is None]
        if g.state is None:
            trigger = "open"
        elif not open_members:
            trigger = "close"
        elif root != g.root or (g.dirty and (ws - g.last_emit_ws) // self.window_ms >= UPDATE_EVERY_WINDOWS):
            trigger = "grow"
        else:
            return []
        g.state, kind = signal_next(g.state, trigger)
        g.root, g.seq, g.last_emit_ws, g.dirty = root, g.seq + 1, ws, False
        if kind == "closed":
            del self.groups[svc]
        return [self._event(svc, g, kind, ws)]

    def _event(self, svc: str, g: Group, kind: SignalType, ws: int) -> SignalEvent:
        """The incident event of ``g`` rooted at its root member."""
        r = g.members[g.root]
        closed = kind == "closed"
        last = max(g.members.values(), key=lambda s: (s["closed_at"] or "", s["region"]))
        extra = {k: r[k] for k in ("total_reports", "categories", "expected_categories", "rose", "fell")}
        extra["regions"] = [dict(s) for s in sorted(g.members.values(), key=lambda s: (depth(s["region"]), s["region"]))]
        return SignalEvent(
            kind="composition", type=kind, incident_id=g.incident_id, seq=g.seq, service=svc, region=g.root,
            level=level_name(g.root), window_ms=self.window_ms,
            opened_at=min(s["opened_at"] for s in g.members.values()),
            detected_at=min(s["detected_at"] for s in g.members.values()),
            updated_at=format_ts_ms(ws + self.window_ms),
            closed_at=last["closed_at"] if closed else None, close_reason=last["close_reason"] if closed else None,
            score=float(r["score"]), detector=dict(self.detector), extra=extra)
