"""What this worker has seen recently, for the HTTP API and the dashboard.

* incidents: every incident event this worker published, grouped by incident (bounded);
* series: the last ``history`` closed windows of every key this worker owns, as compact
  float32 columns (observed, expected, score) per window, so a key's recent history is
  a lookup, not a scan of the topic.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from spikedetect.core.incidents import IncidentEvent
from spikedetect.core.scorer import ClosedKeys
from spikedetect.core.timefmt import format_ts_ms


@dataclass
class _Window:
    ws_ms: int
    index: dict[tuple[str, str], int]
    observed: np.ndarray
    expected: np.ndarray
    score: np.ndarray
    source: np.ndarray


class LiveView:
    def __init__(self, window_ms: int, *, history: int = 120, max_incidents: int = 2000) -> None:
        self.window_ms = window_ms
        self.history = history
        self.max_incidents = max_incidents
        self.incidents: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self.windows: deque[_Window] = deque(maxlen=history)
        self._index: dict[tuple[str, str], int] = {}
        self._index_keys: list[tuple[str, str]] | None = None

    # -- feeds ---------------------------------------------------------------------
    def on_incident(self, event: IncidentEvent) -> None:
        events = self.incidents.setdefault(event.incident_id, [])
        if any(e["seq"] == event.seq for e in events):
            return  # a re-emitted event after recovery
        events.append(event.to_dict())
        events.sort(key=lambda e: e["seq"])
        self.incidents.move_to_end(event.incident_id)
        while len(self.incidents) > self.max_incidents:
            self.incidents.popitem(last=False)

    def on_window(self, ws_ms: int, closed: ClosedKeys) -> None:
        if self._index_keys is None or len(self._index_keys) != len(closed.keys) or self._index_keys != closed.keys:
            self._index_keys = list(closed.keys)
            self._index = {k: i for i, k in enumerate(self._index_keys)}
        self.windows.append(_Window(ws_ms, self._index, closed.observed.astype(np.float32),
                                    closed.expected.astype(np.float32), closed.score.astype(np.float32),
                                    closed.source.copy()))

    # -- queries ---------------------------------------------------------------------
    def incident_list(self, *, state: str | None = None, service: str | None = None,
                      region: str | None = None, since_ms: int | None = None) -> list[dict[str, Any]]:
        """Latest event of each incident, newest first, filtered."""
        out = []
        for events in self.incidents.values():
            last = events[-1]
            is_open = last["type"] != "closed"
            if (state == "open" and not is_open) or (state == "closed" and is_open):
                continue
            if (service and last["service"] != service) or (region and last["region"] != region):
                continue
            if since_ms is not None and _ms(last["detected_at"]) < since_ms:
                continue
            out.append({**last, "state": "open" if is_open else "closed"})
        out.sort(key=lambda e: (e["detected_at"], e["incident_id"]), reverse=True)
        return out

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        events = self.incidents.get(incident_id)
        if events is None:
            return None
        last = events[-1]
        return {**last, "state": "closed" if last["type"] == "closed" else "open", "events": list(events)}

    def series(self, service: str, region: str, *, since_ms: int | None = None,
               until_ms: int | None = None) -> list[dict[str, Any]] | None:
        """Recent closed windows of one key (None: this worker has never scored it)."""
        from spikedetect.core.detectors import BASELINE_SOURCES

        key = (service, region)
        rows = []
        seen = False
        for w in self.windows:
            i = w.index.get(key)
            if i is None:
                continue
            seen = True
            if (since_ms is not None and w.ws_ms < since_ms) or (until_ms is not None and w.ws_ms >= until_ms):
                continue
            rows.append({"window_start": format_ts_ms(w.ws_ms), "observed": float(w.observed[i]),
                         "expected": round(float(w.expected[i]), 3), "score": round(float(w.score[i]), 3),
                         "baseline": BASELINE_SOURCES[int(w.source[i])]})
        return rows if seen else None

    def open_count(self) -> int:
        return sum(1 for ev in self.incidents.values() if ev[-1]["type"] != "closed")


def _ms(ts: str) -> int:
    from spikedetect.core.timefmt import parse_ts_ms

    return parse_ts_ms(ts) or 0
