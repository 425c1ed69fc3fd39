"""Closing windows for every known key: merge, score, step incidents, learn.

A scorer receives closed-window leaf counts ("partials") from one or more sources and
each source's watermark. A window closes once every expected source's watermark has
passed its end; then every known key is scored - zero-report keys included, since
zeros are what close incidents - before its baseline learns (score before learn), and
windows that are not normal never teach the baseline.

Partials are stored per (window, source) and replace each other, and watermarks only
move forward, so a re-delivered partial or mark changes nothing (at-least-once safe).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from spikedetect.core import evidence
from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import ClosedWindow, LeafKey
from spikedetect.core.detectors import BASELINE_SOURCES, make_baseline
from spikedetect.core.detectors.base import FLOOR, LEARNED, PARENT_PRIOR, Expectation, FloatArray
from spikedetect.core.expand import breakdown, merge
from spikedetect.core.incidents import IncidentEvent, Tracker
from spikedetect.core.keyspace import Keyspace, ServiceKey
from spikedetect.core.negbin import surprise
from spikedetect.core.policy import ANOMALOUS, CALM, ELEVATED, KEEP_SHORT_RATIO, IncidentPolicy, WindowView
from spikedetect.core.signals import Signals

WindowHook = Callable[[int, "ClosedKeys"], None]


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
    def __init__(self, config: DetectorConfig, sources: Iterable[Any] = (0,), signals: bool = True,
                 on_window: WindowHook | None = None) -> None:
        self.config = config
        self.window_ms = config.window_ms
        self.policy = IncidentPolicy(config)
        self.keyspace = Keyspace(make_baseline(config.detector, config.window_ms))
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
        # composition shifts and ingest gaps (issue 18); their events wait in signals.events
        self.signals: Signals | None = Signals(config) if signals else None

    # -- inputs ---------------------------------------------------------------------
    def expect_sources(self, sources: Iterable[Any]) -> None:
        """Declare the sources whose watermarks gate closing (e.g. all input partitions)."""
        for s in sources:
            self.watermarks.setdefault(s, None)

    def add_partial(self, source: Any, window: ClosedWindow, part: Any = 0) -> None:
        """Store a source's counts for a window, replacing an earlier copy of the same part.

        ``part`` names a piece when a source splits one window into several messages."""
        ws = window.ws_ms
        if self.next_ws is not None and ws < self.next_ws:
            wm = self.watermarks.get(source)
            if wm is not None and ws + self.window_ms <= wm:
                self.stats.replayed_partials += 1  # a re-delivery: the source had passed it
                return
            n = float(sum(sum(c.values()) for c in window.counts.values()))
            self.stats.late_partials += 1
            self.stats.late_partial_reports += n
            self.late.append(LatePartial(source, ws, n))
            return
        pend = self.pending.get(ws)
        if pend is None:
            pend = self.pending[ws] = _Pending()
        pend.by_source[(source, part)] = {svc: dict(c) for svc, c in window.counts.items()}

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
        pend = self.pending.pop(ws, None)
        per_service: dict[str, dict[LeafKey, float]] = {}
        if pend is not None:
            parts = [part for _, part in sorted(pend.by_source.items(), key=lambda kv: repr(kv[0]))]
            for svc in sorted({svc for part in parts for svc in part}):
                mine = [part[svc] for part in parts if svc in part]
                per_service[svc] = mine[0] if len(mine) == 1 else merge(mine)
        observed = self._observe(per_service, ws)
        if self.config.value_scale != 1.0:
            observed = observed * self.config.value_scale
        ks = self.keyspace
        n = ks.size
        baseline = ks.baseline
        all_rows = np.arange(n)
        exp = baseline.expect(all_rows, ws)
        self._parent_prior(exp)
        expected, phi, source = exp.mean, exp.phi, exp.source
        # evidence over several windows, and each key's calibration of its scores
        cols = baseline.cols
        pos = evidence.slot(ws, self.window_ms)
        done = ks.closed_ws[:n] >= ws  # rows that already applied this window (state restored mid-write)
        # sums use the model's own estimate of a learned key (no floor: ten windows of 0.1 are
        # 1 report, not 5), with a small floor of their own
        own = exp.aux.get("own")
        sum_mean = expected if own is None else np.where(source == LEARNED, np.maximum(own, evidence.MEAN_FLOOR), expected)
        evidence.record(cols, n, pos, observed, sum_mean, sum_mean * phi, ~done)
        cand, tx, tm, mean_h, phi_h, expected_c = evidence.horizon_sums(cols, n, pos, 0.5 * self.config.min_excess)
        # one surprise call for this window's counts and the candidates' sums (elementwise)
        raw = np.zeros((len(evidence.HORIZONS), n))
        if len(cand):
            both = surprise(np.concatenate((observed, tx.ravel())), np.concatenate((expected, mean_h.ravel())),
                            np.concatenate((phi, phi_h.ravel())))
            raw[0] = both[:n]
            raw[1:, cand] = both[n:].reshape(tx.shape)
        else:
            raw[0] = surprise(observed, expected, phi)
        excess_c, ratio_c = tx - tm, tx / mean_h
        cal = evidence.calibrate(cols, n, raw, cand)
        score1, score_h = cal[0], cal[1:]
        tracked = np.zeros(n, dtype=bool)
        tracked[[ks.index[sk] for sk, t in self.trackers.items() if t.state == "open"]] = True
        score_c = score_h[:, cand]
        keep = self.policy.keep_open_horizon(expected_c, self._excess_rates(cand, tracked, ws))
        signal = self.policy.signals(observed, expected, score1, (cand, score_c, excess_c, ratio_c, expected_c),
                                     tracked, keep)
        score = score1.copy()
        if len(cand):
            score[cand] = np.maximum(score1[cand], np.where(
                tracked[cand], np.take_along_axis(score_c, keep[None, :], 0)[0], score_c.max(axis=0)))
        # A key with no history of its own (floor baseline) or relearning after an incident
        # hit max_incident_ms cannot open one: its windows teach the baseline instead.
        muted = (source == FLOOR) | (ks.mute_until[:n] > ws)
        signal = np.where(muted & (signal >= ANOMALOUS), ELEVATED, signal).astype(np.int8)
        # keys whose incident state may change: tracked ones and new anomalies
        # rows that already applied this window (state restored from a crash mid-write) sit out
        step_rows = set(np.flatnonzero((signal >= ANOMALOUS) & ~done).tolist())
        step_rows.update(r for r in (ks.index[sk] for sk in self.trackers) if not done[r])
        events: list[IncidentEvent] = []
        ended: list[int] = []  # rows whose incident closed: their accumulated evidence resets
        not_quiet = np.zeros(n, dtype=bool)
        if step_rows:
            wanted: dict[str, set[str]] = {}
            for r in step_rows:
                svc, key = ks.keys[r]
                wanted.setdefault(svc, set()).add(key)
            details = {svc: breakdown(per_service.get(svc, {}), keys) for svc, keys in wanted.items()}
            for r in sorted(step_rows, key=lambda r: (ks.depth[r], ks.keys[r])):
                sk = ks.keys[r]
                b = details[sk[0]].get(sk[1])
                children: dict[str, tuple[float, float]] = {}
                if b is not None:
                    for child, cn in b.children.items():
                        crow = ks.index.get((sk[0], child))
                        children[child] = (cn * self.config.value_scale,
                                           float(expected[crow]) if crow is not None else 0.0)
                view = WindowView(ws, float(observed[r]), float(expected[r]), float(score[r]),
                                  BASELINE_SOURCES[source[r]],
                                  b.categories if b else {}, b.sources if b else {}, children,
                                  float(score1[r]))
                before = self.trackers.pop(sk, None)
                not_quiet[r] = True
                tracker, evs = self.policy.step(before, sk[0], sk[1], int(signal[r]), view)
                if tracker is not None:
                    self.trackers[sk] = tracker
                elif evs and evs[-1].type == "closed":
                    ended.append(r)
                    if evs[-1].close_reason == "max_duration":
                        ks.mute_until[r] = ws + self.config.relearn_ms
                    elif evs[-1].close_reason == "level_shift" and before is not None:
                        ratio = before.recent_obs / max(before.recent_exp, 1e-9)
                        baseline.rebase(np.array([r]), np.array([float(np.clip(ratio, 1.0, 100.0))]))
                events.extend(evs)
        evidence.reset(cols, np.array(ended, dtype=np.intp))
        # calibration learns from keys without an open incident (raw scores)
        evidence.learn_calibration(cols, n, ~tracked & ~done, raw)
        # learn: windows that were normal, for keys that were and stay quiet. Calm windows
        # teach fully, elevated ones only a little (a slow ramp must not become the baseline),
        # anomalous ones not at all; keys without a baseline of their own learn everything.
        learn_mask = ~not_quiet & (signal < ANOMALOUS) & ~done
        sel = all_rows[learn_mask]
        if len(sel):
            parents = ks.parent[sel]
            parent_obs = np.where(parents >= 0, observed[np.maximum(parents, 0)], np.nan)
            weight = np.where((signal[sel] == CALM) | muted[sel], 1.0, self.config.elevated_learn_weight)
            baseline.learn(sel, ws, observed[sel], exp.subset(learn_mask), parent_obs, weight)
        ks.closed_ws[:n] = np.maximum(ks.closed_ws[:n], ws)
        if self.signals is not None:
            self.signals.close_window(ws, per_service, ks, observed, expected, phi, source == LEARNED,
                                      tracked | not_quiet | (signal >= ANOMALOUS), tracked)
        if self.on_window is not None:
            self.on_window(ws, ClosedKeys(ws, list(ks.keys), observed, expected, score, source, per_service))
        st = self.stats
        st.windows_closed += 1
        st.keys_scored += n
        if (ws // self.window_ms) % self._retire_every == 0:
            self._retire(ws)
        return events

    def _excess_rates(self, rows: npt.NDArray[np.intp], tracked: npt.NDArray[np.bool_], ws: int) -> FloatArray:
        """Per row, the excess reports per window of its open incident so far when the incident
        is sharp (:data:`~spikedetect.core.policy.KEEP_SHORT_RATIO`), else 0."""
        rate = np.zeros(len(rows))
        keys = self.keyspace.keys
        for j in np.flatnonzero(tracked[rows]).tolist():
            t = self.trackers[keys[int(rows[j])]]
            if t.total >= KEEP_SHORT_RATIO * t.expected_total:
                rate[j] = (t.total - t.expected_total) / max(1, (ws - t.first_ws) // self.window_ms)
        return rate

    def _observe(self, per_service: dict[str, dict[LeafKey, float]], ws: int) -> FloatArray:
        """Reports per key in this window: each region's own reports, then summed up the tree
        level by level (children into parents) with numpy; new keys get rows first."""
        ks = self.keyspace
        index = ks.index
        own: dict[tuple[str, str], float] = {}
        for svc, leaf in per_service.items():
            by_region: dict[str, float] = {}
            for (region, _, _), count in leaf.items():
                by_region[region] = by_region.get(region, 0) + count
            for region, count in by_region.items():
                sk = (svc, region)
                if sk not in index:
                    ks.row(svc, region)
                own[sk] = count
        n = ks.size
        observed = np.zeros(n)
        if not own:
            return observed
        rows = np.fromiter(map(index.__getitem__, own), dtype=np.intp, count=len(own))
        observed[rows] = np.fromiter(own.values(), dtype=np.float64, count=len(own))
        depth, parent = ks.depth[:n], ks.parent[:n]
        for d in range(int(depth.max()), 0, -1):
            at = np.flatnonzero((depth == d) & (observed != 0))
            if len(at):
                observed += np.bincount(parent[at], weights=observed[at], minlength=n)
        ks.last_seen[:n][observed != 0] = ws
        return observed

    def _parent_prior(self, exp: Expectation) -> None:
        """Cold keys whose share of a trusted parent is known borrow the parent's
        expectation scaled by that share (parents first, so chains work)."""
        ks = self.keyspace
        n = ks.size
        shares = ks.baseline.shares(np.arange(n))
        parent = ks.parent[:n]
        cold = (exp.source != LEARNED) & np.isfinite(shares) & (parent >= 0)
        if not cold.any():
            return
        depth = ks.depth[:n]
        floor = ks.baseline.floor_mean
        for d in range(1, int(depth[cold].max()) + 1):
            sel = np.flatnonzero(cold & (depth == d))
            if len(sel) == 0:
                continue
            par = parent[sel]
            trusted = (exp.source[par] == LEARNED) | (exp.source[par] == PARENT_PRIOR)
            sel, par = sel[trusted], par[trusted]
            exp.mean[sel] = np.maximum(shares[sel] * exp.mean[par], floor)
            exp.source[sel] = PARENT_PRIOR

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
