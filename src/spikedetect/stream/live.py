"""What this worker knows recently, for the HTTP API and the dashboard.

* incidents: every incident event seen (published here, or read from the incidents
  topic by :class:`~spikedetect.stream.follow.IncidentFollower`), grouped by incident,
  deduplicated on ``seq`` and bounded to the ``max_incidents`` most recently active;
* series: per owned partials partition, the last ``history`` closed windows of every key
  as compact float32 columns (observed, expected, score, baseline), so a key's recent
  history is a lookup, not a scan of a topic; the last ``breakdown_history`` windows also
  keep the merged leaf counts of each service, from which a key's categories, sources
  and child regions are computed on request.

>>> from spikedetect.core.scorer import ClosedKeys
>>> import numpy as np
>>> lv = LiveView(60_000)
>>> leaves = {"ig": {("US/CA", "feed", "app"): 3.0, ("US/NY", "login", "web"): 1.0}}
>>> ck = ClosedKeys(0, [("ig", "*"), ("ig", "US")], np.array([4.0, 4.0]), np.array([1.0, 1.0]),
...                 np.array([5.0, 5.0]), np.array([0, 0]), leaves)
>>> lv.hook(0)(0, ck)
>>> row = lv.series("ig", "US")["windows"][0]
>>> row["observed"], row["breakdown"]["categories"], [c["region"] for c in row["breakdown"]["children"]]
(4.0, {'feed': 3.0, 'login': 1.0}, ['US/CA', 'US/NY'])
>>> lv.series("ig", "GB") is None
True
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from spikedetect.core.detectors import BASELINE_SOURCES
from spikedetect.core.expand import LeafCounts, breakdown, fold
from spikedetect.core.incidents import IncidentEvent
from spikedetect.core.outage_events import OutageEvent
from spikedetect.core.scorer import ClosedKeys
from spikedetect.core.signal_events import SignalEvent
from spikedetect.core.timefmt import format_ts_ms, parse_ts_ms

WindowHook = Callable[[int, ClosedKeys], None]


@dataclass
class _Window:
    ws_ms: int
    index: dict[tuple[str, str], int]
    observed: np.ndarray
    expected: np.ndarray
    score: np.ndarray
    source: np.ndarray
    leaves: dict[str, dict[tuple[str, str, str], float]] | None
    n_leaves: int = 0


class _PartitionSeries:
    """The recent windows closed by one partition owner.

    Leaf counts are kept for at most ``breakdown_history`` of the newest windows and at
    most ``max_leaves`` leaf entries in all (older windows drop theirs first), so a
    partition with many regions, categories and sources keeps fewer breakdowns."""

    def __init__(self, history: int, breakdown_history: int, max_leaves: int) -> None:
        self.windows: deque[_Window] = deque(maxlen=history)
        self.breakdown_history = breakdown_history
        self.max_leaves = max_leaves
        self._with_leaves: deque[_Window] = deque()
        self._n_leaves = 0
        self._keys: list[tuple[str, str]] | None = None
        self._index: dict[tuple[str, str], int] = {}

    def add(self, closed: ClosedKeys) -> None:
        if self._keys != closed.keys:  # the keyspace only changes when keys appear or retire
            self._keys = list(closed.keys)
            self._index = {k: i for i, k in enumerate(self._keys)}
        while self.windows and self.windows[-1].ws_ms >= closed.ws_ms:
            self._drop_leaves(self.windows.pop())  # closed again (a new owner after a crash): replace
        leaves = closed.leaves or None
        w = _Window(
            closed.ws_ms,
            self._index,
            closed.observed.astype(np.float32),
            closed.expected.astype(np.float32),
            closed.score.astype(np.float32),
            closed.source.astype(np.int8),
            leaves,
            sum(len(leaf) for leaf in leaves.values()) if leaves else 0,
        )
        self.windows.append(w)
        if leaves:
            self._with_leaves.append(w)
            self._n_leaves += w.n_leaves
        while self._with_leaves and (
            len(self._with_leaves) > self.breakdown_history or self._n_leaves > self.max_leaves
        ):
            self._drop_leaves(self._with_leaves[0])

    def _drop_leaves(self, w: _Window) -> None:
        if w.leaves is not None:
            self._with_leaves.remove(w)
            self._n_leaves -= w.n_leaves
            w.leaves, w.n_leaves = None, 0


class LiveView:
    """Recent incidents and per-key window history of one worker."""

    def __init__(
        self,
        window_ms: int,
        *,
        history: int = 240,
        breakdown_history: int = 240,
        max_leaves: int = 400_000,
        max_incidents: int = 2000,
        max_breakdown: int = 8,
    ) -> None:
        self.window_ms = window_ms
        self.history = history
        self.breakdown_history = breakdown_history
        self.max_leaves = max_leaves
        self.max_incidents = max_incidents
        self.max_breakdown = max_breakdown
        self.incidents: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self.partitions: dict[int, _PartitionSeries] = {}
        # event time reached: the end of the newest window closed here or reported by an event
        self.clock_ms: int | None = None

    # -- feeds ---------------------------------------------------------------------
    def on_incident(self, event: OutageEvent | SignalEvent | IncidentEvent | dict[str, Any]) -> None:
        """Record an incident event (a repeat of a known ``(incident_id, seq)`` is ignored)."""
        e = event.to_dict() if isinstance(event, OutageEvent | SignalEvent | IncidentEvent) else event
        events = self.incidents.get(e["incident_id"])
        if events is None:
            events = self.incidents[e["incident_id"]] = []
        elif any(old["seq"] == e["seq"] for old in events):
            return  # re-emitted after recovery, or seen both from the publisher and the topic
        events.append(e)
        self._advance(_ms(e.get("updated_at") or e["detected_at"]))
        events.sort(key=lambda ev: ev["seq"])
        self.incidents.move_to_end(e["incident_id"])
        while len(self.incidents) > self.max_incidents:
            self.incidents.popitem(last=False)

    def hook(self, partition: int) -> WindowHook:
        """The ``on_window`` hook for the owner of one partials partition."""

        def on_window(ws_ms: int, closed: ClosedKeys) -> None:
            series = self.partitions.get(partition)
            if series is None:
                series = self.partitions[partition] = _PartitionSeries(
                    self.history, self.breakdown_history, self.max_leaves
                )
            series.add(closed)
            self._advance(ws_ms + self.window_ms)

        return on_window

    def _advance(self, ts_ms: int) -> None:
        if ts_ms and (self.clock_ms is None or ts_ms > self.clock_ms):
            self.clock_ms = ts_ms

    def drop_partition(self, partition: int) -> None:
        """Forget the windows of a partition this worker no longer owns."""
        self.partitions.pop(partition, None)

    # -- queries ---------------------------------------------------------------------
    def incident_list(
        self,
        *,
        state: str | None = None,
        service: str | None = None,
        region: str | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Latest event of each incident plus ``state``/``duration_ms``/``events``, filtered.

        ``since_ms`` keeps incidents active at or after it: open ones, and closed ones whose
        ``closed_at`` is not earlier. Most recently active first (``active_until``: the
        close time, or for an open incident the event time this worker has reached)."""
        out = []
        for events in self.incidents.values():
            last = events[-1]
            is_open = last["type"] != "closed"
            if (state == "open" and not is_open) or (state == "closed" and is_open):
                continue
            if (service is not None and last["service"] != service) or (
                region is not None and last["region"] != region
                and not any(m.get("region") == region for m in last.get("regions") or [])
            ):
                continue  # an outage matches a region filter by its root or any member region
            if (
                since_ms is not None
                and not is_open
                and _ms(last["closed_at"] or last["detected_at"]) < since_ms
            ):
                continue
            out.append(_summary(events, self.clock_ms))
        out.sort(key=lambda e: (e["active_until"], e["opened_at"], e["incident_id"]), reverse=True)
        return out if limit is None else out[:limit]

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        """One incident: its latest event, state and every event (oldest first)."""
        events = self.incidents.get(incident_id)
        if events is None:
            return None
        return {**_summary(events, self.clock_ms), "history": list(events)}

    def series(
        self, service: str, region: str, *, since_ms: int | None = None, until_ms: int | None = None
    ) -> dict[str, Any] | None:
        """Recent closed windows of one key, oldest first (None: no retained window has it)."""
        key = (service, region)
        rows: list[dict[str, Any]] = []
        seen = False
        for part in self.partitions.values():
            for w in part.windows:
                i = w.index.get(key)
                if i is None:
                    continue
                seen = True
                if (since_ms is not None and w.ws_ms < since_ms) or (
                    until_ms is not None and w.ws_ms >= until_ms
                ):
                    continue
                rows.append(self._row(w, i, service, region))
        if not seen:
            return None
        rows.sort(key=lambda r: r["ws_ms"])
        return {"service": service, "region": region, "window_ms": self.window_ms, "windows": rows}

    def _row(self, w: _Window, i: int, service: str, region: str) -> dict[str, Any]:
        row: dict[str, Any] = {
            "window_start": format_ts_ms(w.ws_ms),
            "ws_ms": w.ws_ms,
            "observed": float(w.observed[i]),
            "expected": round(float(w.expected[i]), 3),
            "score": round(float(w.score[i]), 3),
            "baseline": BASELINE_SOURCES[int(w.source[i])],
            "breakdown": None,
        }
        if w.leaves is not None:
            row["breakdown"] = self._breakdown(w, w.leaves.get(service, {}), service, region)
        return row

    def _breakdown(self, w: _Window, leaf: LeafCounts, service: str, region: str) -> dict[str, Any]:
        b = breakdown(leaf, {region}).get(region)
        if b is None:
            return {"categories": {}, "sources": {}, "children": []}
        children = []
        for child, n in sorted(b.children.items(), key=lambda kv: (-kv[1], kv[0]))[: self.max_breakdown]:
            ci = w.index.get((service, child))
            children.append(
                {
                    "region": child,
                    "reports": float(n),
                    "expected": round(float(w.expected[ci]), 3) if ci is not None else None,
                }
            )
        return {
            "categories": _ranked(fold(b.categories, self.max_breakdown)),
            "sources": _ranked(fold(b.sources, self.max_breakdown)),
            "children": children,
        }

    def open_count(self) -> int:
        return sum(1 for ev in self.incidents.values() if ev[-1]["type"] != "closed")


def _summary(events: list[dict[str, Any]], clock_ms: int | None) -> dict[str, Any]:
    """The latest event, with the incident's state, duration (so far, for an open one, in
    event time) and number of events."""
    last = events[-1]
    is_open = last["type"] != "closed"
    if is_open:
        end = max(_ms(last["detected_at"]), clock_ms or 0)
    else:
        end = _ms(last["closed_at"] or last["detected_at"])
    return {
        **last,
        "state": "open" if is_open else "closed",
        "duration_ms": max(0, end - _ms(last["opened_at"])),
        "active_until": format_ts_ms(end),
        "events": len(events),
    }


def _ranked(counts: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def _ms(ts: str) -> int:
    return parse_ts_ms(ts) or 0
