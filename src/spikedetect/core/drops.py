"""Drops: a metric series that falls well below its expectation (the lower tail), for ``--series``.

The count detector is one-sided by design: fewer problem reports than usual is good news,
and a report stream that stops is an ingest gap (:mod:`~spikedetect.core.ingest_gap`). A
metric series an analyst backtests with ``replay --series`` (rides, requests, orders) is
different: traffic that collapses on a holiday or in a blizzard is an anomaly worth seeing.
So the series driver turns this detector on (it is off for report streams).

Per judged key (a learned count model), the last :data:`RING` windows (observed, expected,
variance - the count detector's own expectation, before it learns) are summed over
:data:`HORIZONS` (3, 10 and 30 windows; one window of a noisy series is never enough). A
sum is scored on the lower tail: ``-log10 P(X <= observed)`` for a gamma with the summed
mean and variance (:func:`lower_tail_score`), only when
the horizon expects at least :data:`MIN_EXPECTED` units. Scores are calibrated per key and
horizon exactly like the count detector's (:func:`~spikedetect.core.evidence.calibrate`:
learned 99th / 99.9th percentiles of quiet scores, a log-linear tail through both), so a
series whose weekly cycle the profile fits poorly does not cry wolf at every weekend night.

A ``drop`` incident opens when a horizon's calibrated score reaches the count detector's
``open_threshold`` and its sum is at most :data:`MAX_RATIO` of the expectation (a drop of at
least 40 %), and closes (``close_reason: "recovered"``) once every horizon scores under
``close_threshold``; then the key's ring forgets the drop (its counts become its
expectations), like the count detector's reset. While a count incident is open on the key
and for :data:`COOLDOWN_MS` after, drops are not judged (the expectation is unsettled after
a spike or a level-shift rebase) and calibration does not learn. Events are ``kind: "drop"``
signal incidents with ``direction: "drop"``.

The state is a few dozen floats per judged key, updated in a Python loop: meant for the few
keys of a series, not for every key of a report stream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from spikedetect.core.evidence import CAL_INITIAL, CAL_P, CAL_P3, CAL_RATE
from spikedetect.core.regions import level_name
from spikedetect.core.signal_events import SignalEvent, signal_id, signal_next
from spikedetect.core.timefmt import format_ts_ms

HORIZONS = (3, 10, 30)  # windows summed
RING = max(HORIZONS)
MIN_EXPECTED = 100.0  # a horizon is scored only when it expects at least this many units
MAX_RATIO = 0.6  # observed sum at most this share of the expected sum: a drop of >= 40 %
COOLDOWN_MS = 90 * 60_000  # after a count incident on the key, drops are not judged
REBASED_MS = 86_400_000  # ... and for a day after one that lasted level_shift_ms (a rebased level),
# or while the rebased profile relearns, if longer: its slots learn at 1 / (warm_slot_weight + 1) per
# visit, so half of a wrong rebase is gone after ~14.5 visits of each of the 48 slots (~700 windows:
# 2.4 days of 5-minute windows, 14.5 days of half-hour ones)
REBASED_WINDOWS = 700
MAX_SCORE = 300.0
_LN10 = math.log(10.0)


def lower_tail_score(observed: float, mean: float, var: float) -> float:
    """``-log10 P(X <= observed)`` for a gamma with this mean and variance (the relative
    noise ``alpha * mean**2`` the count model learns for large counts is gamma-like), taken with
    Wilson-Hilferty's normal approximation at ``observed + 0.5`` (a count's continuity
    correction); 0 at or above the median. For Poisson-like counts it is a little lighter than
    the exact tail (60 where 100 is expected: 5.7 against 5.0); calibration absorbs that.

    >>> lower_tail_score(100.0, 100.0, 100.0), round(lower_tail_score(60.0, 100.0, 100.0), 2)
    (0.0, 5.66)
    >>> round(lower_tail_score(60.0, 100.0, 400.0), 2), lower_tail_score(0.0, 1e6, 1e6)
    (1.91, 300.0)
    """
    if mean <= 0 or var <= 0 or observed >= mean:
        return 0.0
    c = var / (9.0 * mean * mean)  # 1 / (9 * shape)
    z = (math.cbrt(max(observed + 0.5, 1e-9) / mean) - (1.0 - c)) / math.sqrt(c)
    if z >= 0:
        return 0.0
    p = 0.5 * math.erfc(-z / math.sqrt(2.0))
    if p > 0:
        return min(-math.log10(p), MAX_SCORE)
    # far tail: log of the normal tail's asymptote
    return min((0.5 * z * z + math.log(-z * math.sqrt(2.0 * math.pi))) / _LN10, MAX_SCORE)


@dataclass
class Drop:
    incident_id: str
    opened_ws: int
    detected_ws: int
    state: str | None = None
    seq: int = 0
    score: float = 0.0
    observed: float = 0.0  # the horizon sums that opened it (or its deepest since)
    expected: float = 0.0
    horizon: int = 0


@dataclass
class KeyDrops:
    """One key's ring (observed, expected, variance per window; newest last), calibration and
    open drop."""

    ring: list[list[float]] = field(default_factory=list)
    cal_q: list[float] = field(default_factory=lambda: [CAL_INITIAL] * len(HORIZONS))
    cal_q3: list[float] = field(default_factory=lambda: [CAL_INITIAL + 1.0] * len(HORIZONS))
    cal_n: float = 0.0
    busy_ws: int | None = None  # the last window with a count incident open on the key
    busy_from: int | None = None  # the first window of the count incident open now
    mute_until: int = 0  # no drops judged before this (after a level-shift rebase)
    drop: Drop | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ring": self.ring, "cal_q": self.cal_q, "cal_q3": self.cal_q3, "cal_n": self.cal_n,
                "busy_ws": self.busy_ws, "busy_from": self.busy_from, "mute_until": self.mute_until, "drop": None if self.drop is None else dict(self.drop.__dict__)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KeyDrops:
        g = d.get("drop")
        busy, since = d.get("busy_ws"), d.get("busy_from")
        return cls([[float(v) for v in w] for w in d["ring"]], [float(q) for q in d["cal_q"]],
                   [float(q) for q in d["cal_q3"]], float(d["cal_n"]), None if busy is None else int(busy),
                   None if since is None else int(since), int(d.get("mute_until", 0)),
                   None if g is None else Drop(**g))


class DropDetector:
    """Lower-tail evidence per key over several horizons; pure."""

    def __init__(self, window_ms: int, detector: Mapping[str, str], open_threshold: float,
                 close_threshold: float, level_shift_ms: int, value_scale: float = 1.0) -> None:
        self.window_ms = window_ms
        self.value_scale = value_scale  # events report sums in the series' own units
        self.level_shift_ms = level_shift_ms
        self.detector = dict(detector)
        self.open_threshold = open_threshold
        self.close_threshold = close_threshold
        self.keys: dict[tuple[str, str], KeyDrops] = {}

    def close_window(self, ws: int, keys: Sequence[tuple[str, str]], index: Mapping[tuple[str, str], int],
                     observed: npt.NDArray[np.float64], expected: npt.NDArray[np.float64],
                     phi: npt.NDArray[np.float64], learned: npt.NDArray[np.bool_],
                     incident: npt.NDArray[np.bool_]) -> list[SignalEvent]:
        """One closed window for every key (``incident``: keys with an open count incident)."""
        events: list[SignalEvent] = []
        for sk in [sk for sk in self.keys if sk not in index]:
            del self.keys[sk]  # retired
        for r in np.flatnonzero(learned | incident).tolist():
            sk = keys[r]
            st = self.keys.setdefault(sk, KeyDrops())
            if incident[r]:
                st.busy_ws = ws
                st.busy_from = ws if st.busy_from is None else st.busy_from
            elif st.busy_from is not None:  # a count incident ended; a long one rebased the level
                # it began up to two windows before it was open here (two anomalous windows open it)
                if ws - st.busy_from + 2 * self.window_ms >= self.level_shift_ms:
                    st.mute_until = ws + max(REBASED_MS, REBASED_WINDOWS * self.window_ms)
                st.busy_from = None
            if not learned[r]:
                continue
            mu = float(expected[r])
            st.ring.append([float(observed[r]), mu, mu * float(phi[r])])
            del st.ring[:-RING]
            raw, ratio, sums = self._raw(st)
            cal = [_mapped(s, q, q3) for s, q, q3 in zip(raw, st.cal_q, st.cal_q3, strict=True)]
            cooling = st.busy_ws is not None and ws - st.busy_ws < COOLDOWN_MS
            events.extend(self._step(sk, st, ws, cal, ratio, sums, cooling or ws < st.mute_until))
            if st.drop is None and not cooling:
                _learn(st, raw)
        return events

    @staticmethod
    def _raw(st: KeyDrops) -> tuple[list[float], list[float], list[tuple[float, float]]]:
        raw, ratio, sums = [], [], []
        for h in HORIZONS:
            if len(st.ring) < h:
                raw.append(0.0)
                ratio.append(1.0)
                sums.append((0.0, 0.0))
                continue
            x = sum(w[0] for w in st.ring[-h:])
            m = sum(w[1] for w in st.ring[-h:])
            v = sum(w[2] for w in st.ring[-h:])
            raw.append(lower_tail_score(x, m, v) if m >= MIN_EXPECTED else 0.0)
            ratio.append(x / m if m > 0 else 1.0)
            sums.append((x, m))
        return raw, ratio, sums

    def _step(self, sk: tuple[str, str], st: KeyDrops, ws: int, cal: list[float], ratio: list[float],
              sums: list[tuple[float, float]], cooling: bool) -> list[SignalEvent]:
        g = st.drop
        if g is None:
            hot = [k for k in range(len(HORIZONS)) if cal[k] >= self.open_threshold and ratio[k] <= MAX_RATIO]
            if not hot or cooling:
                return []
            k = max(hot, key=lambda k: cal[k])
            h = HORIZONS[k]
            first = ws - (h - 1) * self.window_ms
            g = st.drop = Drop(signal_id("drop", sk[0], sk[1], first, self.detector.get("params_hash", "")),
                               first, ws, score=cal[k], observed=sums[k][0], expected=sums[k][1], horizon=h)
            return [self._emit(sk, g, "open", ws)]
        top = max(range(len(HORIZONS)), key=lambda k: cal[k])
        if cal[top] > g.score:
            g.score, g.observed, g.expected, g.horizon = cal[top], sums[top][0], sums[top][1], HORIZONS[top]
        if max(cal) < self.close_threshold:
            ev = self._emit(sk, g, "close", ws)
            st.drop = None
            for w in st.ring:  # the drop's windows cannot open a second one
                w[0] = w[1]
            return [ev]
        return []

    def _emit(self, sk: tuple[str, str], g: Drop, trigger: str, ws: int) -> SignalEvent:
        g.state, kind = signal_next(g.state, trigger)
        g.seq += 1
        closed = kind == "closed"
        extra: dict[str, Any] = {"direction": "drop", "observed": round(g.observed / self.value_scale, 3),
                                 "expected_reports": round(g.expected / self.value_scale, 3),
                                 "horizon_windows": g.horizon}
        return SignalEvent(
            kind="drop", type=kind, incident_id=g.incident_id, seq=g.seq, service=sk[0], region=sk[1],
            level=level_name(sk[1]), window_ms=self.window_ms, opened_at=format_ts_ms(g.opened_ws),
            detected_at=format_ts_ms(g.detected_ws + self.window_ms), updated_at=format_ts_ms(ws + self.window_ms),
            closed_at=format_ts_ms(ws) if closed else None, close_reason="recovered" if closed else None,
            score=round(g.score, 3), detector=dict(self.detector), extra=extra)

    # -- state -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"keys": [[svc, key, st.to_dict()] for (svc, key), st in sorted(self.keys.items())]}

    def load(self, d: Mapping[str, Any]) -> None:
        self.keys = {(str(svc), str(key)): KeyDrops.from_dict(st) for svc, key, st in d.get("keys", [])}


def _mapped(raw: float, q99: float, q999: float) -> float:
    """The count detector's calibration map (:func:`spikedetect.core.evidence.calibrate`)."""
    return min(raw, max(CAL_INITIAL + (raw - q99) / max(q999 - q99, 0.25), 0.0))


def _learn(st: KeyDrops, raw: list[float]) -> None:
    """The count detector's log-domain stochastic quantiles
    (:func:`spikedetect.core.evidence.learn_calibration`), on this key's drop scores."""
    st.cal_n = min(st.cal_n + 1.0, 1e6)
    rate = min(max(4.0 / st.cal_n, CAL_RATE), 0.5)
    for qs, p in ((st.cal_q, CAL_P), (st.cal_q3, CAL_P3)):
        for k, s in enumerate(raw):
            qs[k] = min(max(qs[k] * math.exp((p if s > qs[k] else p - 1.0) * rate), 0.5), 300.0)
