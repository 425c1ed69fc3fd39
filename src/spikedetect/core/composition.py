"""Composition shift: a category's share of a key's reports moves while the total is normal.

Per (service, region key) that is busy enough (``MIN_EXPECTED`` reports expected in the
window), each category's expected share is learned (EWMA, weighted by reports; a key is
judged only once it has learned ``WARM_REPORTS``). Each closed window, every category's count
is scored against ``n * share`` conditioned on the key's total ``n``: ``-log10`` of the
Poisson upper tail (conservative against the binomial), on this window and on two leaky sums
(decay 0.6 and 0.9: about 2.5 and 10 windows), and a CUSUM of the log-likelihood ratio of a
share ``CUSUM_RATIO`` times the expected one (in log10 units), so a shift accumulates across
windows as the count detector's horizons do. The CUSUM qualifies with a leaky sum's excess. A category *qualifies* when a score reaches ``OPEN_SCORE``
with at least ``MIN_EXCESS`` reports over expectation, twice the expected count and a share
``MIN_SHARE_RISE`` above its expected one; two qualifying windows in a row (one at twice the
score) open a member. Keys whose total is not normal (an open count incident, or an
anomalous window) neither open nor learn: that is an outage, reported as one.

Score before learn: windows of an open member, and windows where a category qualifies, never
teach the shares; the others teach fully, so the normal drift of a mix over the day is followed
(shares learn over an hour at least, ``MAX_RATE``: slower than the 10-window evidence). A member closes after ``CLOSE_WINDOWS``
windows in which none of its risen categories scores ``CLOSE_SCORE`` (with 1.5x its expected
count) on the window or the short sum; after ``LEVEL_SHIFT_WINDOWS`` it closes as
``level_shift`` and the key adopts the new shares. ``closed_at`` is the end of the last window
whose own count of a risen category was raised (twice expected, two reports over it). Members of one service are grouped into
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
WARM_REPORTS = 2000.0  # reports learned before a key is judged
LEARN_REPORTS = 1000.0  # learning weight of a window: 1 - exp(-n / LEARN_REPORTS), at most MAX_RATE
MAX_RATE = 1 / 60  # shares learn over an hour at least: slower than the 10-window evidence
P_FLOOR = 0.005  # the smallest expected share (a new category is not infinitely surprising)
DECAY = (0.6, 0.9)  # leaky sums: ~2.5 and ~10 windows
OPEN_SCORE = 7.0
CLOSE_SCORE = 3.0
CLOSE_RATIO = 1.5
CUSUM_RATIO = 3.0  # the CUSUM looks for a share this many times the expected one
_LN_RATIO = math.log(CUSUM_RATIO)
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
    last_own_ws: int = 0  # the last window whose own count of a risen category was raised
    calm: int = 0
    score: float = 0.0


@dataclass
class KeyState:
    shares: dict[str, float] = field(default_factory=dict)
    acc: dict[str, list[float]] = field(default_factory=dict)  # category -> [S, E short; S, E long; CUSUM]
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


class CompositionDetector:
    """Learns category shares per busy key and publishes composition incidents; pure.

    Keys' shares and leaky sums are rows of numpy arrays (one column per category seen, at most
    ``MAX_CATEGORIES``; later ones share the last column, ``"~more"``), so a window is a few
    vector operations; only keys with an open member or a new one go through Python."""

    def __init__(self, window_ms: int, detector: Mapping[str, str]) -> None:
        self.window_ms = window_ms
        self.detector = dict(detector)
        self.cats: dict[str, int] = {}
        self.rows: dict[ServiceKey, int] = {}
        self.row_keys: list[ServiceKey] = []
        self.shares = np.zeros((16, MAX_CATEGORIES))
        self.acc = np.zeros((16, MAX_CATEGORIES, 5))  # S short, E short, S long, E long, CUSUM
        self.learned = np.zeros(16)
        self.hits = np.zeros(16, dtype=np.int64)
        self.members: dict[ServiceKey, Member] = {}
        self.groups: dict[str, Group] = {}
        self._paths: dict[tuple[str, str], list[int]] = {}  # (service, region) -> rows on its path

    @property
    def keys(self) -> dict[ServiceKey, KeyState]:
        """Every key's state as plain data (tests, snapshots)."""
        return {sk: self._key_state(sk) for sk in self.row_keys}

    def _col(self, cat: str) -> int:
        col = self.cats.get(cat)
        if col is None:
            col = len(self.cats) if len(self.cats) < MAX_CATEGORIES - 1 else MAX_CATEGORIES - 1
            if col < MAX_CATEGORIES - 1:
                self.cats[cat] = col
            else:
                self.cats.setdefault("~more", col)
        return col

    def _row(self, sk: ServiceKey) -> int:
        got = self.rows.get(sk)
        if got is not None:
            return got
        r = len(self.row_keys)
        if r >= len(self.learned):
            grow = 2 * len(self.learned)
            self.shares = np.concatenate([self.shares, np.zeros_like(self.shares)])
            self.acc = np.concatenate([self.acc, np.zeros_like(self.acc)])
            self.learned = np.resize(self.learned, grow)
            self.hits = np.resize(self.hits, grow)
        self.shares[r], self.acc[r], self.learned[r], self.hits[r] = 0.0, 0.0, 0.0, 0
        self.rows[sk] = r
        self.row_keys.append(sk)
        self._paths.clear()
        return r

    def _remove(self, sk: ServiceKey) -> None:
        r = self.rows.pop(sk)
        self._paths.clear()
        last = len(self.row_keys) - 1
        if r != last:
            moved = self.row_keys[last]
            self.shares[r], self.acc[r] = self.shares[last], self.acc[last]
            self.learned[r], self.hits[r] = self.learned[last], self.hits[last]
            self.row_keys[r] = moved
            self.rows[moved] = r
        self.row_keys.pop()
        if sk in self.members:
            self.members.pop(sk)
            g = self.groups.get(sk[0])
            if g is not None and sk[1] in g.members:
                g.members[sk[1]]["closed_at"] = g.members[sk[1]]["detected_at"]
                g.members[sk[1]]["close_reason"] = "recovered"

    def close_window(self, ws: int, per_service: Mapping[str, LeafCounts], keys: Sequence[ServiceKey],
                     index: Mapping[ServiceKey, int], expected: npt.NDArray[np.float64],
                     blocked: npt.NDArray[np.bool_]) -> list[SignalEvent]:
        """Score, step and learn one closed window. ``blocked``: keys whose total is not normal."""
        for sk in [sk for sk in self.row_keys if sk not in index]:
            self._remove(sk)  # the key was retired
        for r in np.flatnonzero(expected[: len(keys)] >= MIN_EXPECTED).tolist():
            self._row(keys[r])
        m = len(self.row_keys)
        if m == 0:
            return []
        x = self._counts(per_service, m)
        n = x.sum(axis=1)
        k = x.shape[1]  # categories seen so far
        shares, acc = self.shares[:m, :k], self.acc[:m, :k]
        p = np.maximum(shares, P_FLOOR)
        e1 = n[:, None] * p
        acc[:, :, 0] = DECAY[0] * acc[:, :, 0] + x
        acc[:, :, 1] = DECAY[0] * acc[:, :, 1] + e1
        acc[:, :, 2] = DECAY[1] * acc[:, :, 2] + x
        acc[:, :, 3] = DECAY[1] * acc[:, :, 3] + e1
        # CUSUM of the log-likelihood ratio "share x CUSUM_RATIO" vs "share": a step accumulates
        # from its first window on, without the old windows a leaky sum still holds
        acc[:, :, 4] = np.maximum(0.0, acc[:, :, 4] + x * _LN_RATIO - e1 * (CUSUM_RATIO - 1.0))
        cusum = acc[:, :, 4] / _LN10
        used = (shares > 0) | (x > 0)
        obs = np.stack([x, acc[:, :, 0], acc[:, :, 2]])
        mean = np.stack([e1, acc[:, :, 1], acc[:, :, 3]])
        total = np.stack([n[:, None] * np.ones_like(p), acc[:, :, 1] / p, acc[:, :, 3] / p])
        raw = np.zeros(obs.shape)
        # only clear excesses are scored (below them no score would matter: see the rules above)
        cand = used[None] & (obs >= mean + 1.5) & (obs >= 1.2 * mean)
        if cand.any():
            raw[cand] = -log_sf(obs[cand], mean[cand], np.ones(int(cand.sum()))) / _LN10
        score = raw.max(axis=0) * used  # (m, C)
        excess = obs - mean
        horizon_ok = ((raw >= OPEN_SCORE) & (excess >= MIN_EXCESS) & (obs >= MIN_RATIO * mean)
                      & (excess >= MIN_SHARE_RISE * np.maximum(total, 1e-9)))
        long_ok = ((excess[1:] >= MIN_EXCESS) & (obs[1:] >= CLOSE_RATIO * mean[1:])
                   & (excess[1:] >= MIN_SHARE_RISE * np.maximum(total[1:], 1e-9))).any(axis=0)
        qual = (horizon_ok.any(axis=0) | ((cusum >= OPEN_SCORE) & long_ok)) & used  # (m, C)
        shifting = ((raw >= CLOSE_SCORE) & (obs >= CLOSE_RATIO * mean) & (excess >= MIN_EXCESS / 2)).any(axis=0) \
            | (cusum >= CLOSE_SCORE)
        krow = np.array([index[sk] for sk in self.row_keys], dtype=np.intp)
        block = blocked[krow]
        warm = self.learned[:m] >= WARM_REPORTS
        has_member = np.array([sk in self.members for sk in self.row_keys], dtype=bool) if self.members else \
            np.zeros(m, dtype=bool)
        rising = qual.any(axis=1) & warm & ~block & ~has_member
        hits = self.hits[:m]
        hits[:] = np.where(rising, hits + 1, 0)
        strong = (qual & (score >= 2 * OPEN_SCORE)).any(axis=1)
        opening = rising & ((hits >= 2) | strong) & (n > 0)
        names = self._names()[:k]
        events: list[SignalEvent] = []
        touched: set[str] = set()
        for r in np.flatnonzero(has_member | opening).tolist():
            sk = self.row_keys[r]
            sc = {names[c]: float(score[r, c]) for c in np.flatnonzero(used[r]).tolist()}
            xr = {names[c]: float(x[r, c]) for c in np.flatnonzero(x[r]).tolist()}
            touched.add(sk[0])
            if sk in self.members:
                self._step_member(sk, r, xr, float(n[r]), sc, ws)
            else:
                rose = [names[c] for c in np.flatnonzero(qual[r]).tolist()]
                first = ws - (int(hits[r]) - 1) * self.window_ms if hits[r] >= 2 else ws
                self.members[sk] = Member(first, ws, sorted(rose, key=lambda c: (-sc[c], c)),
                                          score=max(sc.values(), default=0.0))
                self._account(sk, r, xr, float(n[r]))
                self._join(sk, ws)
        # an outage's mix is the outage's: its evidence never carries over
        if block.any():
            acc[block, :, 0], acc[block, :, 2], acc[block, :, 4] = acc[block, :, 1], acc[block, :, 3], 0.0
        # learn: keys without a member, with a normal total and reports; elevated windows a tenth
        member_now = np.array([sk in self.members for sk in self.row_keys], dtype=bool) if self.members else \
            np.zeros(m, dtype=bool)
        # a window where some category qualifies does not teach; others teach fully (a share that
        # drifts over the day is followed, and a lag cannot freeze the shares as a 'tenth' would)
        weight = np.where((qual | shifting).any(axis=1) & warm, 0.0, 1.0)
        weight[member_now | block | (n <= 0) | has_member] = 0.0
        self._learn(x, n, weight)
        for svc in sorted(touched):
            events.extend(self._emit_group(svc, ws))
        return events

    def _counts(self, per_service: Mapping[str, LeafCounts], m: int) -> npt.NDArray[np.float64]:
        """Reports per tracked key (row) and category (column) in this window."""
        rr: list[int] = []
        cc: list[int] = []
        vv: list[float] = []
        rows, paths = self.rows, self._paths
        for svc in sorted({svc for svc, _ in self.row_keys}):
            by_rc: dict[tuple[str, str], float] = {}
            for (region, cat, _), cnt in per_service.get(svc, {}).items():
                by_rc[(region, cat)] = by_rc.get((region, cat), 0.0) + cnt
            for (region, cat), cnt in by_rc.items():
                path = paths.get((svc, region))
                if path is None:
                    path = paths[(svc, region)] = [rows[(svc, key)] for key in keys_of(region) if (svc, key) in rows]
                if path:
                    col = self._col(cat)
                    rr.extend(path)
                    cc.extend([col] * len(path))
                    vv.extend([cnt] * len(path))
        x = np.zeros((m, max(len(self.cats), 1)))
        if rr:
            np.add.at(x, (np.array(rr), np.array(cc)), np.array(vv))
        return x

    def _names(self) -> list[str]:
        names = [""] * MAX_CATEGORIES
        for cat, col in self.cats.items():
            names[col] = cat
        return names

    def _learn(self, x: npt.NDArray[np.float64], n: npt.NDArray[np.float64], weight: npt.NDArray[np.float64]) -> None:
        m = len(n)
        learned = self.learned[:m]
        sel = weight > 0
        if not sel.any():
            return
        nn = np.where(sel, n, 1.0)
        rate = np.where(learned < WARM_REPORTS, nn / (learned + nn),
                        np.minimum(MAX_RATE, 1.0 - np.exp(-nn / LEARN_REPORTS)) * weight)
        rate = np.where(sel, rate, 0.0)
        k = x.shape[1]
        self.shares[:m, :k] += rate[:, None] * (x / nn[:, None] - self.shares[:m, :k])
        self.learned[:m] = np.minimum(learned + n * weight, 1e9)

    # -- members ---------------------------------------------------------------------
    def _account(self, sk: ServiceKey, r: int, x: Mapping[str, float], n: float) -> None:
        m = self.members[sk]
        for c, col in self.cats.items():
            share = float(self.shares[r, col])
            if share > 0 or c in x:
                m.obs[c] = m.obs.get(c, 0.0) + x.get(c, 0.0)
                m.exp[c] = m.exp.get(c, 0.0) + n * share

    def _step_member(self, sk: ServiceKey, r: int, x: Mapping[str, float], n: float, sc: Mapping[str, float],
                     ws: int) -> None:
        m = self.members[sk]
        self._account(sk, r, x, n)
        raised = False
        for c in m.rose:
            col = self.cats[c]
            p = max(float(self.shares[r, col]), P_FLOOR)
            pairs = ((x.get(c, 0.0), n * p), (float(self.acc[r, col, 0]), float(self.acc[r, col, 1])))
            if sc.get(c, 0.0) >= CLOSE_SCORE and any(o >= CLOSE_RATIO * e and o > e for o, e in pairs):
                raised = True
            if x.get(c, 0.0) >= max(MIN_RATIO * n * p, n * p + 2.0):  # this window on its own
                m.last_own_ws = ws
        m.score = max(m.score, max(sc.values(), default=0.0))
        if raised:
            m.last_raised_ws, m.calm = ws, 0
        else:
            m.calm += 1
        reason: SignalCloseReason | None = None
        if (ws - m.opened_ws) // self.window_ms >= LEVEL_SHIFT_WINDOWS:
            reason = "level_shift"
            total = sum(m.obs.values())
            if total > 0:  # the key adopts the shares it has had since the shift began
                self.shares[r] = 0.0
                for c, v in m.obs.items():
                    self.shares[r, self.cats[c]] = v / total
        elif m.calm >= CLOSE_WINDOWS:
            reason = "recovered"
        summary = self.groups[sk[0]].members[sk[1]]
        summary.update(self._summary(m))
        if reason is not None:
            summary["closed_at"] = format_ts_ms(max(m.last_own_ws, m.opened_ws) + self.window_ms)
            summary["close_reason"] = reason
            del self.members[sk]
            self.hits[r] = 0
            self.acc[r, :, 0], self.acc[r, :, 2], self.acc[r, :, 4] = self.acc[r, :, 1], self.acc[r, :, 3], 0.0

    @staticmethod
    def _summary(m: Member) -> dict[str, Any]:
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

    def _join(self, sk: ServiceKey, ws: int) -> None:
        m = self.members[sk]
        svc, key = sk
        g = self.groups.get(svc)
        if g is None:
            g = self.groups[svc] = Group(signal_id("composition", svc, key, m.opened_ws,
                                                   self.detector.get("params_hash", "")), root=key)
        g.members[key] = {"region": key, "level": level_name(key), "opened_at": format_ts_ms(m.opened_ws),
                          "detected_at": format_ts_ms(ws + self.window_ms), "closed_at": None,
                          "close_reason": None, **self._summary(m)}
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

    # -- state -----------------------------------------------------------------------
    def _key_state(self, sk: ServiceKey) -> KeyState:
        r = self.rows[sk]
        cols = [(c, col) for c, col in self.cats.items()
                if self.shares[r, col] > 0 or self.acc[r, col].any()]
        return KeyState({c: float(self.shares[r, col]) for c, col in cols},
                        {c: self.acc[r, col].tolist() for c, col in cols},
                        float(self.learned[r]), int(self.hits[r]), self.members.get(sk))

    def export_key(self, sk: ServiceKey) -> dict[str, Any] | None:
        """One key's state as plain JSON data (None: the key is not tracked)."""
        return self._key_state(sk).to_dict() if sk in self.rows else None

    def import_key(self, sk: ServiceKey, d: Mapping[str, Any]) -> None:
        st = KeyState.from_dict(d)
        r = self._row(sk)
        self.shares[r], self.acc[r] = 0.0, 0.0
        for c, share in st.shares.items():
            self.shares[r, self._col(c)] = share
        for c, a in st.acc.items():
            self.acc[r, self._col(c)] = a
        self.learned[r], self.hits[r] = st.learned, st.hits
        if st.member is not None:
            self.members[sk] = st.member
        else:
            self.members.pop(sk, None)

    def to_dict(self, with_keys: bool = True) -> dict[str, Any]:
        keys = [[svc, key, self._key_state((svc, key)).to_dict()] for svc, key in self.row_keys] if with_keys else []
        return {"keys": keys, "groups": {svc: dict(g.__dict__) for svc, g in sorted(self.groups.items())}}

    def load(self, d: Mapping[str, Any]) -> None:
        for svc, key, st in d.get("keys", []):
            self.import_key((str(svc), str(key)), st)
        self.groups = {str(svc): Group(**g) for svc, g in d["groups"].items()}
