"""Incident policy: signals from scores, one key's step through the transition table,
and the incident events that step emits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spikedetect.core.config import DetectorConfig
from spikedetect.core.expand import fold
from spikedetect.core.incidents import IncidentEvent, Tracker, lifecycle_next, phase_next
from spikedetect.core.regions import level_name
from spikedetect.core.timefmt import format_ts_ms

CALM, ELEVATED, ANOMALOUS, EXTREME = range(4)
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


def _num(x: float, digits: int = 3) -> float:
    """Round for output; whole numbers stay whole so output is stable and readable."""
    r = round(float(x), digits)
    return float(int(r)) if r == int(r) else r


class IncidentPolicy:
    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.window_ms = config.window_ms
        self.detector = {"name": config.detector.name, "params_hash": config.params_hash}

    def signals(self, observed: npt.NDArray[np.float64], expected: npt.NDArray[np.float64],
                score: npt.NDArray[np.float64]) -> npt.NDArray[np.int8]:
        """Vectorised signal per key: calm / elevated / anomalous / extreme."""
        c = self.config
        excess = observed - expected
        big_enough = (excess >= c.min_excess) & (observed >= expected * (1.0 + c.min_excess_ratio))
        sig = np.where(score >= c.close_threshold, ELEVATED, CALM)
        sig = np.where(excess < 0.5 * c.min_excess, CALM, sig)
        sig = np.where(big_enough & (score >= c.open_threshold), ANOMALOUS, sig)
        sig = np.where(big_enough & (score >= c.extreme_threshold), EXTREME, sig)
        return sig.astype(np.int8)

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
        if signal != 0:
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
        total = t.total or 1.0
        cats = fold(t.categories, c.max_breakdown)
        srcs = fold(t.sources, c.max_breakdown)
        ranked = sorted(t.children.items(), key=lambda kv: (-(kv[1][0] - kv[1][1]), kv[0]))
        children = [
            {"region": child, "reports": _num(n), "expected": _num(e), "excess": _num(n - e)}
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
            observed=_num(view.observed),
            expected=_num(view.expected),
            score=_num(view.score),
            peak_count=_num(t.peak_count),
            peak_at=format_ts_ms(t.peak_ws),
            total_reports=_num(t.total),
            excess_reports=_num(t.total - t.expected_total),
            categories={k: round(v / total, 4) for k, v in sorted(cats.items())},
            sources={k: round(v / total, 4) for k, v in sorted(srcs.items())},
            children=children,
            baseline=view.baseline,
            detector=dict(self.detector),
        )
