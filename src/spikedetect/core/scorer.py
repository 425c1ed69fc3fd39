"""Closing windows for every known key: merge, score, step incidents, learn.

A scorer receives closed-window leaf counts ("partials") from one or more sources and
each source's watermark. A window closes once every expected source's watermark has
passed its end; then every known key is scored - zero-report keys included, since
zeros are what close incidents - before its baseline learns (score before learn), and
windows that are not normal never teach the baseline.

Partials are stored per (window, source) and replace each other, and watermarks only
move forward, so a re-delivered partial or mark changes nothing (at-least-once safe).
:meth:`Scorer.add_partial` says what became of a partial (:data:`PartialFate`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from spikedetect.core import evidence, window_fused
from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import ClosedWindow, LeafKey
from spikedetect.core.detectors import make_baseline
from spikedetect.core.detectors.base import LEARNED, BoolArray, Expectation, FloatArray
from spikedetect.core.expand import merge
from spikedetect.core.incident_steps import step_incidents
from spikedetect.core.incidents import IncidentEvent, Tracker
from spikedetect.core.keyspace import Keyspace, ServiceKey
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.leaves import LeafTable
from spikedetect.core.policy import ANOMALOUS, CALM, IncidentPolicy
from spikedetect.core.signals import Signals
from spikedetect.core.window_fused import score_window
from spikedetect.core.window_scores import WindowScores, observe, parent_prior

WindowHook = Callable[[int, "ClosedKeys"], None]

# What :meth:`Scorer.add_partial` did with a partial: "kept" for its open window (in pending),
# "replayed" (a re-delivery of a window closed after its source's watermark had passed it:
# ignored) or "late" (its window closed without it: reported in ``Scorer.late``, never merged)
PartialFate = Literal["kept", "replayed", "late"]


@dataclass
class ClosedKeys:
    """Everything scored in one closed window (for series views and metrics)."""

    ws_ms: int
    keys: list[ServiceKey]
    observed: FloatArray
    expected: FloatArray
    score: FloatArray
    source: npt.NDArray[Any]  # baseline source code per key (detectors.base)
    # merged leaf counts per service, (region, category, source) -> reports; read-only
    leaves: dict[str, dict[LeafKey, float]] = field(default_factory=dict)


@dataclass
class ScorerStats:
    windows_closed: int = 0
    keys_scored: int = 0
    keys_retired: int = 0
    late_partials: int = 0
    late_partial_reports: float = 0.0
    replayed_partials: int = 0


@dataclass
class LatePartial:
    """Counts that reached the scorer after their window closed (only possible after a source
    was treated as empty or idle); reported, never silently merged or dropped."""

    source: Any
    ws_ms: int
    reports: float


@dataclass
class _Pending:
    by_source: dict[tuple[Any, Any], dict[str, dict[LeafKey, float]]] = field(default_factory=dict)


class Scorer:
    """Closes windows for every known key once its sources' watermarks have passed them."""

    def __init__(self, config: DetectorConfig, sources: Iterable[Any] = (0,),
                 signals: bool | tuple[str, ...] = True, on_window: WindowHook | None = None) -> None:
        self.config = config
        self.window_ms = config.window_ms
        self.policy = IncidentPolicy(config)
        self.keyspace = Keyspace(make_baseline(config.detector, config.window_ms))
        self.leaves = LeafTable()  # each closed window's leaves as arrays (core.leaves)
        self.trackers: dict[ServiceKey, Tracker] = {}
        self.watermarks: dict[Any, int | None] = {s: None for s in sources}
        self.idle_sources: set[Any] = set()
        self.pending: dict[int, _Pending] = {}
        self.next_ws: int | None = None  # first window not yet closed
        self.stats = ScorerStats()
        self.late: list[LatePartial] = []
        self.retired: list[ServiceKey] = []  # keys retired since the driver last drained this
        self.on_window = on_window  # gets every closed window's scores (Pipeline.watch_windows)
        self._retire_every = max(1, 3_600_000 // self.window_ms)
        # composition shifts and ingest gaps (issue 18; a tuple: those kinds, e.g. Signals.SERIES);
        # their events wait in signals.events
        kinds = signals if isinstance(signals, tuple) else Signals.REPORTS
        self.signals: Signals | None = Signals(config, kinds) if signals else None

    # -- inputs ---------------------------------------------------------------------
    def expect_sources(self, sources: Iterable[Any]) -> None:
        """Declare the sources whose watermarks gate closing (e.g. all input partitions)."""
        for s in sources:
            self.watermarks.setdefault(s, None)

    def add_partial(self, source: Any, window: ClosedWindow, part: Any = 0, *, owned: bool = False) -> PartialFate:
        """Store a source's counts for a window, replacing an earlier copy of the same part, and
        say what became of them (:data:`PartialFate`; counted in :attr:`stats` besides).

        ``part`` names a piece when a source splits one window into several messages. The scorer
        keeps a copy of the counts, unless ``owned``: the caller hands them over and never touches
        them again (a window its own counter's ``take_closed`` just gave it, as
        :meth:`Pipeline._forward <spikedetect.core.pipeline.Pipeline._forward>` does), so they are
        kept as they are."""
        ws = window.ws_ms
        if self.next_ws is not None and ws < self.next_ws:
            wm = self.watermarks.get(source)
            if wm is not None and ws + self.window_ms <= wm:
                self.stats.replayed_partials += 1  # a re-delivery: the source had passed it
                return "replayed"
            n = float(sum(sum(c.values()) for c in window.counts.values()))
            self.stats.late_partials += 1
            self.stats.late_partial_reports += n
            self.late.append(LatePartial(source, ws, n))
            return "late"
        pend = self.pending.get(ws)
        if pend is None:
            pend = self.pending[ws] = _Pending()
        counts = cast(dict[str, dict[LeafKey, float]], window.counts)  # ints are read as numbers only
        pend.by_source[(source, part)] = counts if owned else {svc: dict(c) for svc, c in counts.items()}
        return "kept"

    def set_watermark(self, source: Any, wm_ms: int | None, *, idle: bool = False, empty: bool = False) -> None:
        """Move a source's watermark forward (never back).

        ``idle=True`` says the source has nothing to send right now (no data yet, or quiet
        and caught up): it stops holding windows open until it sends a non-idle mark.
        When every source is idle, the most advanced idle watermark closes windows, so
        incidents still close when reports stop entirely. ``empty`` is an alias of ``idle``.
        """
        self.watermarks.setdefault(source, None)
        if idle or empty:
            self.idle_sources.add(source)
        else:
            self.idle_sources.discard(source)
        old = self.watermarks[source]
        if wm_ms is not None and (old is None or wm_ms > old):
            self.watermarks[source] = wm_ms

    def closing_watermark(self) -> int | None:
        """Windows ending at or before this may close (None: not yet)."""
        active = [wm for s, wm in self.watermarks.items() if s not in self.idle_sources]
        if active:
            if any(wm is None for wm in active):
                return None
            return min(active)  # type: ignore[type-var]
        idle = [wm for s, wm in self.watermarks.items() if wm is not None]
        return max(idle) if idle else None

    # -- closing ----------------------------------------------------------------------
    def close_ready(self, until_ms: int | None = None) -> list[IncidentEvent]:
        """Close every window the sources allow (or up to ``until_ms``); return incident events."""
        wm = self.closing_watermark() if until_ms is None else until_ms
        if wm is None:
            return []
        if self.next_ws is None:
            # The first window: the oldest pending one, but only once it can close. Set earlier,
            # it would skip the older windows other sources have yet to send (live, the first
            # partial an owner got was a later window's: the first two windows went late).
            if not self.pending or min(self.pending) + self.window_ms > wm:
                return []
            self.next_ws = min(self.pending)
        events: list[IncidentEvent] = []
        while self.next_ws + self.window_ms <= wm:
            ws = self.next_ws
            if self.keyspace.size == 0 and ws not in self.pending:
                # nothing known yet: skip straight to the next window that has data
                later = [w for w in self.pending if w > ws]
                last_closable = (wm - self.window_ms) - (wm - self.window_ms) % self.window_ms
                self.next_ws = min(later) if later else last_closable + self.window_ms
                continue
            events.extend(self._close(ws))
            self.next_ws = ws + self.window_ms
        return events

    def _close(self, ws: int) -> list[IncidentEvent]:
        """Close window ``ws``: merge its partials, score every key, step the incidents, and only
        then learn (score before learn), feed the signals, report the window, retire keys."""
        window = LeafWindow.of(self.leaves, self.keyspace, self._merge(ws))
        observed = observe(self.keyspace, window, ws)
        if self.config.value_scale != 1.0:
            observed = observed * self.config.value_scale
        w = score_window(self.keyspace, self.config, self.policy, self.trackers, ws, observed)
        stepped = step_incidents(self.keyspace, self.config, self.policy, self.trackers, ws, w, window)
        not_quiet = stepped.not_quiet(self.keyspace.size)
        self._learn(ws, w, stepped.ended, not_quiet)
        self._report(ws, w, window, not_quiet)
        if (ws // self.window_ms) % self._retire_every == 0:
            self._retire(ws)
        return stepped.events

    def _merge(self, ws: int) -> dict[str, dict[LeafKey, float]]:
        """Take window ``ws``'s partials out of pending: leaf counts per service, the sources'
        parts merged in a fixed order (by source and part)."""
        pend = self.pending.pop(ws, None)
        per_service: dict[str, dict[LeafKey, float]] = {}
        if pend is not None and len(pend.by_source) == 1:  # one part (one source's replay): as it is
            (part,) = pend.by_source.values()
            return {svc: part[svc] for svc in sorted(part)}
        if pend is not None:
            parts = [part for _, part in sorted(pend.by_source.items(), key=lambda kv: repr(kv[0]))]
            for svc in sorted({svc for part in parts for svc in part}):
                mine = [part[svc] for part in parts if svc in part]
                per_service[svc] = mine[0] if len(mine) == 1 else merge(mine)
        return per_service

    def _learn(self, ws: int, w: WindowScores, ended: list[int], not_quiet: BoolArray) -> None:
        """Learn from the scored window: closed incidents' evidence resets, calibration learns
        from keys without an open incident (raw scores), and the baselines from windows that
        were normal, for keys that were and stay quiet. Calm windows teach fully, elevated ones
        only a little (a slow ramp must not become the baseline), anomalous ones not at all;
        keys without a baseline of their own learn everything."""
        if window_fused.learn(self.keyspace, self.config, ws, w, ended, not_quiet):
            return
        ks = self.keyspace
        n = ks.size
        cols = ks.baseline.cols
        if ended:
            evidence.reset(cols, np.array(ended, dtype=np.intp))
        evidence.learn_calibration(cols, n, ~(w.tracked | w.done), w.raw)
        learn_mask = ~(not_quiet | w.done) & (w.signal < ANOMALOUS)
        elw = self.config.elevated_learn_weight
        if not ks.baseline.learn_window(learn_mask, ws, w.observed, w.exp, ks.parent, w.signal, w.muted, elw):
            sel = np.arange(n)[learn_mask]
            if len(sel):
                parents = ks.parent[sel]
                parent_obs = np.where(parents >= 0, w.observed[np.maximum(parents, 0)], np.nan)
                weight = np.where((w.signal[sel] == CALM) | w.muted[sel], 1.0, elw)
                ks.baseline.learn(sel, ws, w.observed[sel], w.exp.subset(learn_mask), parent_obs, weight)
        np.maximum(ks.closed_ws[:n], ws, out=ks.closed_ws[:n])

    def _report(self, ws: int, w: WindowScores, window: LeafWindow, not_quiet: BoolArray) -> None:
        """Hand the closed window to the composition / ingest-gap signals and the window hook,
        and count it."""
        ks = self.keyspace
        source = w.exp.source
        if self.signals is not None:
            self.signals.close_window(ws, window, ks, w.observed, w.expected, w.exp.phi, source == LEARNED,
                                      w.tracked | not_quiet | (w.signal >= ANOMALOUS), w.tracked)
        if self.on_window is not None:
            self.on_window(ws, ClosedKeys(ws, list(ks.keys), w.observed, w.expected, w.score, source, window.per_service))
        self.stats.windows_closed += 1
        self.stats.keys_scored += ks.size

    def _parent_prior(self, exp: Expectation) -> None:
        """See :func:`~spikedetect.core.window_scores.parent_prior`."""
        parent_prior(self.keyspace, exp)

    def _retire(self, ws: int) -> None:
        """Forget keys without reports for ``retire_after_ms`` and without an incident."""
        ks = self.keyspace
        if ks.size == 0:
            return
        cutoff = ws - self.config.retire_after_ms
        stale = np.flatnonzero(ks.last_seen[: ks.size] < cutoff)
        if len(stale) == 0:
            return
        tracked = [ks.index[sk] for sk in self.trackers]
        gone = np.zeros(ks.size, dtype=bool)
        gone[stale] = True
        gone[tracked] = False
        parent = ks.parent[: ks.size]
        while True:  # every ancestor of a row that stays, stays (chains are at most five deep)
            needed = parent[~gone]
            needed = needed[needed >= 0]
            if not gone[needed].any():
                break
            gone[needed] = False
        doomed = np.flatnonzero(gone).tolist()
        self.retired.extend(ks.keys[r] for r in doomed)
        ks.remove(doomed)
        self.stats.keys_retired += len(doomed)

    # -- queries ------------------------------------------------------------------------
    def open_incidents(self) -> dict[ServiceKey, Tracker]:
        return {sk: t for sk, t in self.trackers.items() if t.state == "open"}
