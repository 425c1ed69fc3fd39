"""Composition shift: a category's share of a key's reports moves while the total is normal.

Per (service, region key) that is busy enough (``MIN_EXPECTED`` reports expected in the
window), each category's expected share is learned (EWMA, weighted by reports; a key is
judged only once it has learned ``WARM_REPORTS``). Each closed window, every category's count
is scored against ``n * share`` conditioned on the key's total ``n``: ``-log10`` of the
Poisson upper tail (conservative against the binomial), on this window and on two leaky sums
(decay 0.6 and 0.9: about 2.5 and 10 windows), so a shift accumulates across windows as the
count detector's horizons do. A category *qualifies* when a score reaches ``OPEN_SCORE``
with at least ``MIN_EXCESS`` reports over expectation, twice the expected count and a share
``MIN_SHARE_RISE`` above its expected one; two qualifying windows in a row (one at twice the
score) open a member. Keys whose total is not normal (an open count incident, or an
anomalous window) neither open nor learn: that is an outage, reported as one.

Score before learn: windows of an open member never teach the shares, windows with a
category score of ``ELEVATED_SCORE`` teach a tenth. A member closes after ``CLOSE_WINDOWS``
windows in which none of its risen categories scores ``CLOSE_SCORE`` (with 1.5x its expected
count) on the window or the short sum; after ``LEVEL_SHIFT_WINDOWS`` it closes as
``level_shift`` and the key adopts the new shares. Members of one service are grouped into
one incident while any is open (the root is the highest member), like outages.

State per key is bounded: at most ``MAX_CATEGORIES`` categories (the smallest share is
dropped), five floats each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from spikedetect.core.expand import keys_of
from spikedetect.core.negbin import log_sf
from spikedetect.core.regions import depth, level_name
from spikedetect.core.signal_events import SignalCloseReason, SignalEvent, signal_id, signal_next
from spikedetect.core.timefmt import format_ts_ms

ServiceKey = tuple[str, str]
LeafCounts = Mapping[tuple[str, str, str], float]

MIN_EXPECTED = 3.0  # reports a key must expect in a window to be judged (small keys are not)
WARM_REPORTS = 300.0  # reports learned before a key is judged
LEARN_REPORTS = 300.0  # learning weight of a window: 1 - exp(-n / LEARN_REPORTS), at most MAX_RATE
MAX_RATE = 0.1
ELEVATED_WEIGHT = 0.1
P_FLOOR = 0.005  # the smallest expected share (a new category is not infinitely surprising)
DECAY = (0.6, 0.9)  # leaky sums: ~2.5 and ~10 windows
OPEN_SCORE = 8.0
ELEVATED_SCORE = 3.0
CLOSE_SCORE = 3.0
CLOSE_RATIO = 1.5
MIN_EXCESS = 8.0
MIN_RATIO = 2.0
MIN_SHARE_RISE = 0.05
CLOSE_WINDOWS = 3
LEVEL_SHIFT_WINDOWS = 180
UPDATE_EVERY_WINDOWS = 5
MAX_CATEGORIES = 16
SHARE_NOTE = 0.02  # rose / fell: a share this far from its expected one over the incident
_LN10 = math.log(10.0)


@dataclass
class Member:
    """An open composition shift on one key."""

    opened_ws: int
    detected_ws: int
    rose: list[str]
    obs: dict[str, float] = field(default_factory=dict)  # reports per category since it opened
    exp: dict[str, float] = field(default_factory=dict)  # expected reports per category
    last_raised_ws: int = 0
    calm: int = 0
    score: float = 0.0


@dataclass
class KeyState:
    shares: dict[str, float] = field(default_factory=dict)
    acc: dict[str, list[float]] = field(default_factory=dict)  # category -> [S short, E short, S long, E long]
    learned: float = 0.0
    hits: int = 0
    member: Member | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"shares": self.shares, "acc": self.acc, "learned": self.learned, "hits": self.hits,
                "member": None if self.member is None else dict(self.member.__dict__)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KeyState:
        m = d.get("member")
        return cls({str(k): float(v) for k, v in d["shares"].items()},
                   {str(k): [float(x) for x in v] for k, v in d["acc"].items()},
                   float(d["learned"]), int(d["hits"]), None if m is None else Member(**m))


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


def category_counts(leaf: LeafCounts, wanted: set[str]) -> dict[str, dict[str, float]]:
    """Reports per category for each key in ``wanted`` (one pass over the leaf counts)."""
    by_rc: dict[tuple[str, str], float] = {}
    for (region, cat, _), n in leaf.items():
        by_rc[(region, cat)] = by_rc.get((region, cat), 0.0) + n
    out: dict[str, dict[str, float]] = {}
    paths: dict[str, list[str]] = {}
    for (region, cat), n in by_rc.items():
        path = paths.get(region)
        if path is None:
            path = paths[region] = [k for k in keys_of(region) if k in wanted]
        for key in path:
            c = out.setdefault(key, {})
            c[cat] = c.get(cat, 0.0) + n
    return out


class CompositionDetector:
    """Learns category shares per busy key and publishes composition incidents; pure."""

    def __init__(self, window_ms: int, detector: Mapping[str, str]) -> None:
        self.window_ms = window_ms
        self.detector = dict(detector)
        self.keys: dict[ServiceKey, KeyState] = {}
        self.groups: dict[str, Group] = {}

    def close_window(self, ws: int, per_service: Mapping[str, LeafCounts], keys: Sequence[ServiceKey],
                     expected: npt.NDArray[np.float64], blocked: npt.NDArray[np.bool_]) -> list[SignalEvent]:
        """Score, step and learn one closed window. ``blocked``: keys whose total is not normal."""
        busy = np.flatnonzero(expected[: len(keys)] >= MIN_EXPECTED).tolist()
        rows: dict[ServiceKey, int] = {keys[r]: r for r in busy}
        if len(rows) < len(busy) + len(self.keys):
            index = {sk: i for i, sk in enumerate(keys)}
            for sk in [sk for sk in self.keys if sk not in rows]:
                if sk in index:
                    rows[sk] = index[sk]
                else:
                    self._drop(sk)  # the key was retired
        wanted: dict[str, set[str]] = {}
        for svc, key in rows:
            wanted.setdefault(svc, set()).add(key)
        counts = {svc: category_counts(per_service.get(svc, {}), w) for svc, w in wanted.items()}
        order = sorted(rows, key=lambda sk: (sk[0], depth(sk[1]), sk[1]))
        judged: list[tuple[ServiceKey, KeyState, dict[str, float], float, list[str]]] = []
        for sk in order:
            st = self.keys.setdefault(sk, KeyState())
            x = counts[sk[0]].get(sk[1], {})
            n = sum(x.values())
            cats = sorted(set(st.shares) | set(x))
            for c in cats:
                p = max(st.shares.get(c, 0.0), P_FLOOR)
                a = st.acc.setdefault(c, [0.0, 0.0, 0.0, 0.0])
                xc = x.get(c, 0.0)
                a[0], a[1] = DECAY[0] * a[0] + xc, DECAY[0] * a[1] + n * p
                a[2], a[3] = DECAY[1] * a[2] + xc, DECAY[1] * a[3] + n * p
            judged.append((sk, st, x, n, cats))
        scores = self._scores(judged)
        events: list[SignalEvent] = []
        touched: set[str] = set()
        for (sk, st, x, n, cats), sc in zip(judged, scores, strict=True):
            warm = st.learned >= WARM_REPORTS
            block = bool(blocked[rows[sk]])
            top = max(sc.values(), default=0.0)
            if st.member is not None:
                touched.add(sk[0])
                self._step_member(sk, st, x, n, cats, sc, ws)
            elif warm and not block:
                rising = [c for c in cats if self._qualifies(st, c, x, n, sc[c])]
                st.hits = st.hits + 1 if rising else 0
                strong = any(sc[c] >= 2 * OPEN_SCORE for c in rising)
                if rising and (st.hits >= 2 or strong) and n > 0:
                    first = ws - (st.hits - 1) * self.window_ms if st.hits >= 2 else ws
                    st.member = Member(first, ws, sorted(rising, key=lambda c: (-sc[c], c)), score=top)
                    self._account(st, x, n, cats)
                    self._join(sk, st, ws)
                    touched.add(sk[0])
            else:
                st.hits = 0
            if block:  # an outage's mix is the outage's: its evidence never carries over
                for a in st.acc.values():
                    a[0], a[2] = a[1], a[3]
            if st.member is None and not block and n > 0:
                weight = 1.0 if top < ELEVATED_SCORE else ELEVATED_WEIGHT if top < OPEN_SCORE else 0.0
                self._learn(st, x, n, weight)
        for svc in sorted(touched):
            events.extend(self._emit_group(svc, ws))
        return events

    # -- scoring ----------------------------------------------------------------------
    def _scores(self, judged: list[tuple[ServiceKey, KeyState, dict[str, float], float, list[str]]]
                ) -> list[dict[str, float]]:
        """Per judged key, each category's best score over the window and both leaky sums."""
        obs: list[float] = []
        mean: list[float] = []
        for _, st, x, n, cats in judged:
            for c in cats:
                a = st.acc[c]
                obs += [x.get(c, 0.0), a[0], a[2]]
                mean += [n * max(st.shares.get(c, 0.0), P_FLOOR), a[1], a[3]]
        if not obs:
            return [{} for _ in judged]
        raw = -log_sf(np.array(obs), np.array(mean), np.ones(len(obs))) / _LN10
        best = raw.reshape(-1, 3).max(axis=1).tolist()
        out: list[dict[str, float]] = []
        i = 0
        for _, _, _, _, cats in judged:
            out.append(dict(zip(cats, best[i:i + len(cats)], strict=True)))
            i += len(cats)
        return out

    @staticmethod
    def _qualifies(st: KeyState, c: str, x: Mapping[str, float], n: float, score: float) -> bool:
        if score < OPEN_SCORE:
            return False
        a = st.acc[c]
        p = max(st.shares.get(c, 0.0), P_FLOOR)
        horizons = ((x.get(c, 0.0), n * p, n), (a[0], a[1], a[1] / p), (a[2], a[3], a[3] / p))
        return any(s - e >= MIN_EXCESS and s >= MIN_RATIO * e and total > 0 and (s - e) / total >= MIN_SHARE_RISE
                   for s, e, total in horizons)

    # -- members ---------------------------------------------------------------------
    def _account(self, st: KeyState, x: Mapping[str, float], n: float, cats: list[str]) -> None:
        m = st.member
        assert m is not None
        for c in cats:
            m.obs[c] = m.obs.get(c, 0.0) + x.get(c, 0.0)
            m.exp[c] = m.exp.get(c, 0.0) + n * st.shares.get(c, 0.0)

    def _step_member(self, sk: ServiceKey, st: KeyState, x: Mapping[str, float], n: float, cats: list[str],
                     sc: Mapping[str, float], ws: int) -> None:
        m = st.member
        assert m is not None
        self._account(st, x, n, cats)
        raised = False
        for c in m.rose:
            a = st.acc.get(c, [0.0, 0.0, 0.0, 0.0])
            p = max(st.shares.get(c, 0.0), P_FLOOR)
            one = (x.get(c, 0.0), n * p)
            if sc.get(c, 0.0) >= CLOSE_SCORE and any(s >= CLOSE_RATIO * e and s > e for s, e in (one, (a[0], a[1]))):
                raised = True
        m.score = max(m.score, max(sc.values(), default=0.0))
        if raised:
            m.last_raised_ws, m.calm = ws, 0
        else:
            m.calm += 1
        reason: SignalCloseReason | None = None
        if (ws - m.opened_ws) // self.window_ms >= LEVEL_SHIFT_WINDOWS:
            reason = "level_shift"
            total = sum(m.obs.values())
            if total > 0:
                st.shares = {c: v / total for c, v in m.obs.items() if v > 0}
        elif m.calm >= CLOSE_WINDOWS:
            reason = "recovered"
        group = self.groups[sk[0]]
        summary = group.members[sk[1]]
        summary.update(self._summary(st, ws))
        if reason is not None:
            summary["closed_at"] = format_ts_ms(max(m.last_raised_ws, m.detected_ws) + self.window_ms)
            summary["close_reason"] = reason
            st.member, st.hits = None, 0
            for a in st.acc.values():  # the shift's evidence is forgotten with it
                a[0], a[2] = a[1], a[3]

    def _summary(self, st: KeyState, ws: int) -> dict[str, Any]:
        m = st.member
        assert m is not None
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

    def _join(self, sk: ServiceKey, st: KeyState, ws: int) -> None:
        m = st.member
        assert m is not None
        svc, key = sk
        g = self.groups.get(svc)
        if g is None:
            g = self.groups[svc] = Group(signal_id("composition", svc, key, m.opened_ws,
                                                   self.detector.get("params_hash", "")), root=key)
        g.members[key] = {"region": key, "level": level_name(key), "opened_at": format_ts_ms(m.opened_ws),
                          "detected_at": format_ts_ms(ws + self.window_ms), "closed_at": None,
                          "close_reason": None, **self._summary(st, ws)}
        g.dirty = True

    def _emit_group(self, svc: str, ws: int) -> list[SignalEvent]:
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
        r = g.members[root]
        closed = kind == "closed"
        last = max(g.members.values(), key=lambda s: (s["closed_at"] or "", s["region"]))
        extra = {k: r[k] for k in ("total_reports", "categories", "expected_categories", "rose", "fell")}
        extra["regions"] = [dict(s) for s in sorted(g.members.values(), key=lambda s: (depth(s["region"]), s["region"]))]
        ev = SignalEvent(
            kind="composition", type=kind, incident_id=g.incident_id, seq=g.seq, service=svc, region=root,
            level=level_name(root), window_ms=self.window_ms,
            opened_at=min(s["opened_at"] for s in g.members.values()),
            detected_at=min(s["detected_at"] for s in g.members.values()),
            updated_at=format_ts_ms(ws + self.window_ms),
            closed_at=last["closed_at"] if closed else None, close_reason=last["close_reason"] if closed else None,
            score=float(r["score"]), detector=dict(self.detector), extra=extra)
        if closed:
            del self.groups[svc]
        return [ev]

    # -- learning ---------------------------------------------------------------------
    @staticmethod
    def _learn(st: KeyState, x: Mapping[str, float], n: float, weight: float) -> None:
        if weight <= 0:
            return
        if st.learned < WARM_REPORTS:
            rate = n / (st.learned + n)
        else:
            rate = min(MAX_RATE, 1.0 - math.exp(-n / LEARN_REPORTS)) * weight
        for c in set(st.shares) | set(x):
            st.shares[c] = (1.0 - rate) * st.shares.get(c, 0.0) + rate * x.get(c, 0.0) / n
        st.learned = min(st.learned + n * weight, 1e9)
        if len(st.shares) > MAX_CATEGORIES:
            for c in sorted(st.shares, key=lambda c: (st.shares[c], c))[: len(st.shares) - MAX_CATEGORIES]:
                del st.shares[c]
                st.acc.pop(c, None)
        for c in [c for c in st.acc if c not in st.shares]:
            del st.acc[c]

    def _drop(self, sk: ServiceKey) -> None:
        st = self.keys.pop(sk)
        g = self.groups.get(sk[0])
        if st.member is not None and g is not None and sk[1] in g.members:
            g.members[sk[1]]["closed_at"] = g.members[sk[1]]["detected_at"]
            g.members[sk[1]]["close_reason"] = "recovered"

    # -- state -----------------------------------------------------------------------
    def export_key(self, sk: ServiceKey) -> dict[str, Any] | None:
        st = self.keys.get(sk)
        return None if st is None else st.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {"keys": [[svc, key, st.to_dict()] for (svc, key), st in self.keys.items()],
                "groups": {svc: dict(g.__dict__) for svc, g in self.groups.items()}}

    def load(self, d: Mapping[str, Any]) -> None:
        self.keys = {(str(svc), str(key)): KeyState.from_dict(st) for svc, key, st in d["keys"]}
        self.groups = {str(svc): Group(**g) for svc, g in d["groups"].items()}
