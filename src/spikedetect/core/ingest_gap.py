"""Ingest gap: a service (or one of its sources, e.g. ``web``) that normally reports goes silent.

Per service, the global key's expected count (the count detector's own seasonal expectation,
computed before it learns) and each source's learned share of it (EWMA, weighted by reports)
give an expected count per window for the whole service (``"*"``) and for each source with a
share of at least ``MIN_SHARE``. A run of windows without a single report scores
``-log10 P(zero reports in all of them)``: with the key's overdispersion ``phi`` a window's
zero has probability ``phi ** (-mu / (phi - 1))`` (Poisson ``exp(-mu)`` at ``phi = 1``).
A run of at least ``MIN_WINDOWS`` windows scoring ``GAP_SCORE`` opens an ``ingest_gap``
incident for the service naming the silent sources (``["*"]``: every report stopped); it
grows when more sources go silent and closes with ``close_reason: "resumed"`` (``closed_at``
the start of the window they came back in) once every one of them has reported again. An
ingest gap is never an outage: low counts never open count incidents.

Score before learn: the source shares learn only from windows with reports, no open gap and
no source's silence scoring ``ELEVATED_SCORE``. Keys whose count model is not yet learned
(warming, floor) are not judged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from spikedetect.core.leaves import SOURCE
from spikedetect.core.regions import GLOBAL
from spikedetect.core.signal_events import SignalEvent, signal_id, signal_next
from spikedetect.core.timefmt import format_ts_ms
from spikedetect.kernel import closing as _kernel

if TYPE_CHECKING:
    from spikedetect.core.leaf_window import LeafWindow

LeafCounts = Mapping[tuple[str, str, str], float]
ALL = "*"  # the pseudo-source: every report of the service
GAP_SCORE = 8.0
ELEVATED_SCORE = 3.0
MIN_WINDOWS = 2
MIN_SHARE = 0.05
WARM_REPORTS = 300.0
LEARN_REPORTS = 300.0
MAX_RATE = 0.1
MAX_SOURCES = 8
_LN10 = math.log(10.0)
_CONSTS = (ALL, WARM_REPORTS, LEARN_REPORTS, MAX_RATE, MIN_SHARE, MAX_SOURCES, GAP_SCORE, ELEVATED_SCORE, MIN_WINDOWS,
           _LN10)  # gap_quiet_learn's constants


@dataclass
class Gap:
    incident_id: str
    opened_ws: int
    sources: list[str]
    state: str | None = None
    seq: int = 0
    resumed: list[str] = field(default_factory=list)
    expected: float = 0.0
    score: float = 0.0
    detected_ws: int = 0


@dataclass
class ServiceGaps:
    shares: dict[str, float] = field(default_factory=dict)
    learned: float = 0.0
    runs: dict[str, list[float]] = field(default_factory=dict)  # source -> [first ws, windows, -ln P0, mu]
    gap: Gap | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"shares": self.shares, "learned": self.learned, "runs": self.runs,
                "gap": None if self.gap is None else dict(self.gap.__dict__)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServiceGaps:
        g = d.get("gap")
        return cls({str(k): float(v) for k, v in d["shares"].items()}, float(d["learned"]),
                   {str(k): [float(x) for x in v] for k, v in d["runs"].items()}, None if g is None else Gap(**g))


def zero_log_prob(mu: float, phi: float) -> float:
    """``-ln P(0)`` of one window: negative binomial with mean ``mu`` and variance ``phi * mu``.

    >>> round(zero_log_prob(3.0, 1.0), 6), round(zero_log_prob(3.0, 2.0), 4)
    (3.0, 2.0794)
    """
    if phi <= 1.0001:
        return mu
    return mu * math.log(phi) / (phi - 1.0)


def source_sums(leaf: LeafCounts) -> dict[str, float]:
    """Reports per source in one service's leaf counts (in the compiled closing loops when they
    are built: the same sums, added in the same order).

    >>> source_sums({("US", "feed", "app"): 2, ("DE", "feed", "app"): 1, ("US", "feed", "web"): 4})
    {'app': 3.0, 'web': 4.0}
    """
    if _kernel is not None:
        compiled: dict[str, float] = _kernel.sums_by_part(leaf, 2, 0.0)
        return compiled
    by_src: dict[str, float] = {}
    for (_, _, src), n in leaf.items():
        by_src[src] = by_src.get(src, 0.0) + n
    return by_src


def _quiet(st: ServiceGaps, by_src: Mapping[str, float], judged: bool) -> bool:
    """Whether no silent run starts this window, the whole service having reported: its key is
    not judged, or each source with a share reported (or, its sources not warm, only the whole
    service is judged); ``"*"`` is no source of it."""
    if ALL in st.shares:
        return False
    if not judged or st.learned < WARM_REPORTS:
        return True
    get = by_src.get
    return all(get(s, 0.0) > 0 for s, share in st.shares.items() if share >= MIN_SHARE)


def _runs(st: ServiceGaps, by_src: Mapping[str, float], total: float, mu: float, ph: float, judged: bool,
          ws: int) -> tuple[dict[str, float], float]:
    """Move the silent runs of the whole service and of each source with a share by this
    window (``total`` reports, ``by_src`` per source; ``mu`` expected, overdispersion ``ph``):
    a source that reported, or is not judged, has none. The window's counts per source and the
    highest run score."""
    counts, means = {ALL: total}, {ALL: mu}
    for s, share in st.shares.items():
        if share >= MIN_SHARE:
            counts[s] = by_src.get(s, 0.0)
            if s != ALL:
                means[s] = mu * share
    warm = st.learned >= WARM_REPORTS
    top = 0.0
    for s, n in counts.items():
        if n > 0 or not judged or (s != ALL and not warm):
            st.runs.pop(s, None)
            continue
        run = st.runs.setdefault(s, [float(ws), 0.0, 0.0, 0.0])
        run[1] += 1.0
        run[2] += zero_log_prob(means[s], ph)
        run[3] += means[s]
        top = max(top, run[2] / _LN10)
    for s in [s for s in st.runs if s not in counts]:
        del st.runs[s]
    return counts, top


class IngestGapDetector:
    """Per service: silent runs of the whole service and of each source; pure."""

    def __init__(self, window_ms: int, detector: Mapping[str, str]) -> None:
        self.window_ms = window_ms
        self.detector = dict(detector)
        self.services: dict[str, ServiceGaps] = {}

    def close_window(self, ws: int, window: LeafWindow, index: Mapping[tuple[str, str], int],
                     observed: npt.NDArray[np.float64], expected: npt.NDArray[np.float64],
                     phi: npt.NDArray[np.float64], learned: npt.NDArray[np.bool_],
                     services: Sequence[str]) -> list[SignalEvent]:
        """One closed window (its leaves: :mod:`~spikedetect.core.leaf_window`) for every known
        service (``services``: those with a global key). With a frame and the compiled closing loops,
        the services whose steps open, grow or close no gap (quiet ones, and runs that start, go on or
        end without turning silent; no new source) go through one compiled pass (``gap_quiet_learn``:
        the same steps, the same bits) and only the others walk the steps below."""
        events: list[SignalEvent] = []
        order = sorted(set(services) | set(self.services))
        frame = window.frame
        if _kernel is not None and frame is not None:
            order = _kernel.gap_quiet_learn(order, self.services, index, GLOBAL, observed, expected, phi, learned,
                                            frame.parts[SOURCE], frame.counts, frame.starts, frame.services,
                                            frame.table.source_names, ws, _CONSTS)
        for svc in order:
            row = index.get((svc, GLOBAL))
            if row is None:
                self.services.pop(svc, None)  # retired
                continue
            st = self.services.get(svc)
            if st is None:
                st = self.services[svc] = ServiceGaps()
            by_src = window.source_sums(svc)
            total = float(observed[row])
            judged = bool(learned[row])
            if st.gap is None and not st.runs and total > 0 and _quiet(st, by_src, judged):
                self._learn(st, by_src, total)  # (no run starts, none is open: nothing else to do)
                continue
            counts, top = _runs(st, by_src, total, float(expected[row]), float(phi[row]), judged, ws)
            events.extend(self._step(svc, st, counts, ws))
            if st.gap is None and total > 0 and top < ELEVATED_SCORE:
                self._learn(st, by_src, total)
        return events

    def _step(self, svc: str, st: ServiceGaps, counts: Mapping[str, float], ws: int) -> list[SignalEvent]:
        silent = sorted(s for s, run in st.runs.items() if run[1] >= MIN_WINDOWS and run[2] / _LN10 >= GAP_SCORE)
        g = st.gap
        if g is None:
            if not silent:
                return []
            sources = [ALL] if ALL in silent else silent
            first = int(min(st.runs[s][0] for s in sources))
            g = st.gap = Gap(signal_id("ingest_gap", svc, ",".join(sources), first,
                                       self.detector.get("params_hash", "")), first, sources, detected_ws=ws)
            self._measure(st, g)
            return [self._emit(svc, g, "open", ws)]
        for s in g.sources:
            if s not in g.resumed and counts.get(s, 1.0) > 0:
                g.resumed.append(s)
        grown = [s for s in silent if s not in g.sources and ALL not in g.sources]
        if grown:
            g.sources = [ALL] if ALL in grown else sorted(set(g.sources) | set(grown))
            g.resumed = [s for s in g.resumed if s in g.sources]
        if all(s in g.resumed for s in g.sources):
            ev = self._emit(svc, g, "close", ws)
            st.gap = None
            return [ev]
        self._measure(st, g)
        return [self._emit(svc, g, "grow", ws)] if grown else []

    @staticmethod
    def _measure(st: ServiceGaps, g: Gap) -> None:
        runs = [st.runs[s] for s in g.sources if s in st.runs]
        if runs:
            g.expected = max(g.expected, max(r[3] for r in runs))
            g.score = max(g.score, min(300.0, max(r[2] for r in runs) / _LN10))

    def _emit(self, svc: str, g: Gap, trigger: str, ws: int) -> SignalEvent:
        g.state, kind = signal_next(g.state, trigger)
        g.seq += 1
        closed = kind == "closed"
        extra: dict[str, Any] = {"sources": list(g.sources), "observed": 0.0,
                                 "expected_reports": round(g.expected, 3),
                                 "missing_windows": ((ws if closed else ws + self.window_ms) - g.opened_ws) // self.window_ms}
        return SignalEvent(
            kind="ingest_gap", type=kind, incident_id=g.incident_id, seq=g.seq, service=svc, region=GLOBAL,
            level="global", window_ms=self.window_ms, opened_at=format_ts_ms(g.opened_ws),
            detected_at=format_ts_ms(g.detected_ws + self.window_ms), updated_at=format_ts_ms(ws + self.window_ms),
            closed_at=format_ts_ms(ws) if closed else None, close_reason="resumed" if closed else None,
            score=round(g.score, 3), detector=dict(self.detector), extra=extra)

    @staticmethod
    def _learn(st: ServiceGaps, by_src: Mapping[str, float], total: float) -> None:
        rate = total / (st.learned + total) if st.learned < WARM_REPORTS else min(MAX_RATE, 1 - math.exp(-total / LEARN_REPORTS))
        shares, keep, src = st.shares, 1.0 - rate, by_src.get
        # no new source (the usual window): the shares themselves, each updated in place
        for s in shares if by_src.keys() <= shares.keys() else set(shares) | set(by_src):
            shares[s] = keep * shares.get(s, 0.0) + rate * src(s, 0.0) / total
        st.learned = min(st.learned + total, 1e9)
        if len(st.shares) > MAX_SOURCES:
            for s in sorted(st.shares, key=lambda s: (st.shares[s], s))[: len(st.shares) - MAX_SOURCES]:
                del st.shares[s]

    # -- state -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {svc: st.to_dict() for svc, st in sorted(self.services.items())}

    def load(self, d: Mapping[str, Any]) -> None:
        self.services = {str(svc): ServiceGaps.from_dict(st) for svc, st in d.items()}
