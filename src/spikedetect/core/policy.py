"""Incident policy: signals from scores, one key's step through the transition table,
and the incident events that step emits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spikedetect.core.config import DetectorConfig
from spikedetect.core.evidence import HORIZONS
from spikedetect.core.expand import fold
from spikedetect.core.incidents import IncidentEvent, Tracker, lifecycle_next, phase_next
from spikedetect.core.regions import level_name
from spikedetect.core.timefmt import format_ts_ms

CALM, ELEVATED, ANOMALOUS, EXTREME = range(4)
KEEP_OPEN_EXPECTED = 30.0  # reports a horizon must expect to judge whether an incident goes on
# A sharp incident (reports at >= KEEP_SHORT_RATIO times expected so far) is judged on the shortest
# horizon over which its excess adds up to KEEP_OPEN_EXCESS * min_excess reports
KEEP_SHORT_RATIO = 5.0
KEEP_OPEN_EXCESS = 2.0
SIGNAL_NAMES = ("calm", "elevated", "anomalous", "extreme")


@dataclass(frozen=True)
class WindowView:
    """What one key saw in one closed window (input of :meth:`IncidentPolicy.step`)."""

    ws_ms: int
    observed: float
    expected: float
    score: float
    baseline: str
    categories: dict[str, float]
    sources: dict[str, float]
    children: dict[str, tuple[float, float]]  # child key -> (reports, expected)
    window_score: float | None = None  # this window's own score (None: ``score``)


def _num(x: float, digits: int = 3) -> float:
    """Round for output; whole numbers stay whole so output is stable and readable."""
    r = round(float(x), digits)
    return float(int(r)) if r == int(r) else r


class IncidentPolicy:
    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.window_ms = config.window_ms
        self.detector = {"name": config.detector.name, "params_hash": config.params_hash,
                         "model": "counts" if config.value_scale == 1.0 else "continuous"}
        self.unit = 1.0 / config.value_scale  # events report values in input units
        self.horizon_signal = ANOMALOUS

    def signals(self, observed: npt.NDArray[np.float64], expected: npt.NDArray[np.float64],
                score: npt.NDArray[np.float64],
                horizons: tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64],
                                npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None,
                tracked: npt.NDArray[np.bool_] | None = None,
                keep: npt.NDArray[np.intp] | None = None) -> npt.NDArray[np.int8]:
        """Vectorised signal per key: calm / elevated / anomalous / extreme.

        ``score`` is the one-window score; ``horizons`` are the rows with evidence over several
        windows and, for them, (score, excess, observed/expected, expected sum) of the sums
        (shape (H, len(rows)), see :mod:`~spikedetect.core.evidence`).
        Sustained excess can open an incident for keys not ``tracked`` (no incident open); an
        open incident is kept open by the shorter horizons (the last 10 windows) only, so it
        closes soon after the reports return to normal.
        Every path needs the same evidence: a score over ``open_threshold``, at least
        ``min_excess`` reports over expectation and ``1 + min_excess_ratio`` times it.
        ``keep``: per horizon row, the horizon that judges an open incident (default
        :meth:`keep_open_horizon` of the expected sums)."""
        c = self.config
        excess = observed - expected
        big_enough = (excess >= c.min_excess) & (observed >= expected * (1.0 + c.min_excess_ratio))
        sig = np.where(score >= c.close_threshold, ELEVATED, CALM)
        sig = np.where(excess < 0.5 * c.min_excess, CALM, sig)
        sig = np.where(big_enough & (score >= c.open_threshold), ANOMALOUS, sig)
        if horizons is not None and len(horizons[0]):
            rows, h_score, h_excess, h_ratio, h_expected = horizons
            free = np.ones(len(rows), dtype=bool) if tracked is None else ~tracked[rows]
            h_big = (h_excess >= c.min_excess) & (h_ratio >= 1.0 + c.min_excess_ratio)
            h_anom = (h_big & (h_score >= c.open_threshold)).any(axis=0) & free
            h_raised = (h_score >= c.close_threshold) & (h_excess >= 0.5 * c.min_excess)
            # an open incident stays open while the last few windows (not only this one) are raised,
            # so a small key's outage is not closed by a few windows of 1 or 2 reports
            keep = self.keep_open_horizon(h_expected) if keep is None else keep
            h_elev = np.where(free, h_raised.any(axis=0), np.take_along_axis(h_raised, keep[None, :], 0)[0])
            part = sig[rows]
            part = np.where(h_elev & (part < ELEVATED), ELEVATED, part)
            sig[rows] = np.where(h_anom & (part < ANOMALOUS), self.horizon_signal, part)
        # one window alone opens an incident when it is beyond doubt: an extreme score, or a
        # clear score at many times the expected count (a 3x burst on a busy key is neither)
        sharp = (score >= 2.0 * c.open_threshold) & (observed >= expected * c.extreme_ratio)
        sig = np.where(big_enough & ((score >= c.extreme_threshold) | sharp), EXTREME, sig)
        return sig.astype(np.int8)

    def keep_open_horizon(self, expected: npt.NDArray[np.float64],
                          excess_rate: npt.NDArray[np.float64] | None = None) -> npt.NDArray[np.intp]:
        """Per key, the index of the shortest horizon expecting at least KEEP_OPEN_EXPECTED
        reports, or over which a sharp open incident's excess per window (``excess_rate``, 0 for
        the others, see :data:`KEEP_SHORT_RATIO`) adds up to ``KEEP_OPEN_EXCESS * min_excess``
        reports (the longest when none does), shape (n,).

        A horizon longer than needed keeps a short spike in the sum long after the reports are
        back to normal, and the close comes that much later; a mild incident (a level shift at
        2-3x on a small key) keeps the long horizon, or its noisy windows would close it early."""
        enough = expected >= KEEP_OPEN_EXPECTED
        if excess_rate is not None:
            windows = np.array(HORIZONS[1:], dtype=np.float64)[:, None]
            enough = enough | (excess_rate[None, :] * windows >= KEEP_OPEN_EXCESS * self.config.min_excess)
        first = np.argmax(enough, axis=0)
        return np.where(enough.any(axis=0), first, len(expected) - 1).astype(np.intp)

    def incident_id(self, service: str, key: str, first_ws: int) -> str:
        blob = f"{service}|{key}|{first_ws}|{self.detector['params_hash']}".encode()
        return "inc-" + hashlib.sha256(blob).hexdigest()[:20]

    def step(self, tracker: Tracker | None, service: str, key: str, signal: int,
             view: WindowView) -> tuple[Tracker | None, list[IncidentEvent]]:
        """Advance one key by one window; returns its tracker (None when quiet) and events."""
        c = self.config
        w = self.window_ms
        ws = view.ws_ms
        phase = tracker.phase if tracker is not None else "quiet"
        nxt, action = phase_next(phase, SIGNAL_NAMES[signal])
        if action == "none":
            return None, []
        if action == "abandon":
            return None, []
        events: list[IncidentEvent] = []
        if tracker is None:
            tracker = Tracker(phase="pending", first_ws=ws)
        t = tracker
        t.accumulate(ws, w, view.observed, view.expected, view.categories, view.sources, view.children,
                     c.max_breakdown)
        own = view.score if view.window_score is None else view.window_score
        if signal != 0 and (own >= c.close_threshold or not t.last_active_end):
            # evidence of earlier windows alone does not extend it, but an incident opened on
            # evidence over several windows is active from its first window on (never 1970)
            t.last_active_end = ws + w
        if action in ("start", "start_open", "advance", "open") and phase in ("quiet", "pending"):
            t.streak += 1
            if action in ("start_open", "open") or t.streak >= c.open_windows:
                t.phase = "open"
                t.streak = 0
                t.incident_id = self.incident_id(service, key, t.first_ws)
                events.append(self._emit(t, "opened", service, key, view))
            else:
                t.phase = "pending"
            return t, events
        if action == "accumulate" or action == "resume":
            t.phase, t.streak = "open", 0
            if t.peak_ws == ws and t.peak_count > t.emitted_peak and ws - t.last_emit_ws >= c.update_every_windows * w:
                events.append(self._emit(t, "updated", service, key, view))
        elif action == "advance":  # calm while open or cooling
            t.phase = nxt
            t.streak += 1
            if t.streak >= c.close_windows:
                events.append(self._emit(t, "closed", service, key, view, reason="recovered"))
                return None, events
        if t.state == "open" and t.phase == "open" and signal != 0 and ws + w - t.first_ws >= c.level_shift_ms:
            # still raised after this long: the key's level has changed; its baseline adopts it
            events.append(self._emit(t, "closed", service, key, view, reason="level_shift"))
            return None, events
        if ws + w - t.first_ws >= c.max_incident_ms:
            events.append(self._emit(t, "closed", service, key, view, reason="max_duration"))
            return None, events
        return t, events

    def _emit(self, t: Tracker, kind: str, service: str, key: str, view: WindowView,
              reason: str | None = None) -> IncidentEvent:
        t.state = lifecycle_next(t.state, kind)
        t.seq += 1
        t.last_emit_ws = view.ws_ms
        t.emitted_peak = max(t.emitted_peak, t.peak_count)
        c = self.config
        u = self.unit
        total = (t.total * u) or 1.0  # categories and sources are kept in input units
        cats = fold(t.categories, c.max_breakdown)
        srcs = fold(t.sources, c.max_breakdown)
        ranked = sorted(t.children.items(), key=lambda kv: (-(kv[1][0] - kv[1][1]), kv[0]))
        children = [
            {"region": child, "reports": _num(n * u), "expected": _num(e * u), "excess": _num((n - e) * u)}
            for child, (n, e) in ranked[: c.top_children]
        ]
        return IncidentEvent(
            type=kind,
            incident_id=t.incident_id,
            seq=t.seq,
            service=service,
            region=key,
            level=level_name(key),
            window_ms=self.window_ms,
            opened_at=format_ts_ms(t.first_ws),
            detected_at=format_ts_ms(view.ws_ms + self.window_ms),
            closed_at=format_ts_ms(t.last_active_end) if kind == "closed" else None,
            close_reason=reason,
            observed=_num(view.observed * u),
            expected=_num(view.expected * u),
            score=_num(view.score),
            peak_count=_num(t.peak_count * u),
            peak_at=format_ts_ms(t.peak_ws),
            total_reports=_num(t.total * u),
            excess_reports=_num((t.total - t.expected_total) * u),
            categories={k: round(v / total, 4) for k, v in sorted(cats.items())},
            sources={k: round(v / total, 4) for k, v in sorted(srcs.items())},
            children=children,
            baseline=view.baseline,
            detector=dict(self.detector),
        )
