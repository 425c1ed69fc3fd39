"""Stepping the incident machine for one closed window: the keys whose incident state may
change (the tracked ones and new anomalies), each with a view of its window (counts,
expectation, score and the breakdown by category, source and child region).

An incident that closes resets its key's evidence; one that hit ``max_incident_ms`` mutes
its key for ``relearn_ms``, and one that closed as a level shift rebases its baseline to the
new level. :class:`~spikedetect.core.scorer.Scorer` calls :func:`step_incidents` after
:func:`~spikedetect.core.window_scores.score_window` and before anything learns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from spikedetect.core.config import DetectorConfig
from spikedetect.core.detectors import BASELINE_SOURCES
from spikedetect.core.detectors.base import BoolArray
from spikedetect.core.expand import Breakdown
from spikedetect.core.incidents import IncidentEvent, Tracker, WindowView
from spikedetect.core.keyspace import Keyspace, ServiceKey
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.policy import ANOMALOUS, IncidentPolicy
from spikedetect.core.window_scores import WindowScores


@dataclass
class Stepped:
    """What stepping the incidents of one window gave."""

    events: list[IncidentEvent] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)  # rows whose incident closed: their evidence resets
    stepped: list[int] = field(default_factory=list)  # rows the machine saw (not quiet this window)

    def not_quiet(self, n: int) -> BoolArray:
        """Mask of the ``n`` rows: the ones the incident machine saw this window."""
        mask = np.zeros(n, dtype=bool)
        if self.stepped:  # most windows step nothing: no fancy index of an empty list
            mask[self.stepped] = True
        return mask


def rows_to_step(ks: Keyspace, trackers: dict[ServiceKey, Tracker], w: WindowScores) -> set[int]:
    """Rows whose incident state may change: tracked ones and new anomalies; rows that already
    applied this window (state restored from a crash mid-write) sit out."""
    done = w.done
    anomalous = np.flatnonzero(w.signal >= ANOMALOUS)  # few rows: the done mask is read for those only
    rows = set(anomalous[~done[anomalous]].tolist()) if len(anomalous) else set()
    rows.update(r for r in (ks.index[sk] for sk in trackers) if not done[r])
    return rows


def step_incidents(ks: Keyspace, config: DetectorConfig, policy: IncidentPolicy,
                   trackers: dict[ServiceKey, Tracker], ws: int, w: WindowScores,
                   window: LeafWindow) -> Stepped:
    """Step every row of :func:`rows_to_step`, parents first, updating ``trackers`` in place."""
    out = Stepped()
    step_rows = rows_to_step(ks, trackers, w)
    if not step_rows:
        return out
    details = _breakdowns(ks, step_rows, window)
    keys = ks.keys
    rows = list(step_rows)
    # parents first: by depth, then key (keys are unique, so the row never decides)
    order = [r for _, _, r in sorted(zip(ks.depth[rows].tolist(), [keys[r] for r in rows], rows, strict=True))]
    at = np.array(order, dtype=np.intp)
    signals = w.signal[at].tolist()
    views = _views(ks, config, ws, w, at, order, details)
    for r, signal, view in zip(order, signals, views, strict=True):
        sk = keys[r]
        before = trackers.pop(sk, None)
        out.stepped.append(r)
        tracker, evs = policy.step(before, sk[0], sk[1], signal, view)
        if tracker is not None:
            trackers[sk] = tracker
        elif evs and evs[-1].type == "closed":
            out.ended.append(r)
            _after_close(ks, config, ws, r, evs[-1], before)
        out.events.extend(evs)
    return out


def _breakdowns(ks: Keyspace, rows: set[int], window: LeafWindow) -> dict[str, dict[str, Breakdown]]:
    """Per service, the breakdown of this window's leaf counts for the keys in ``rows``."""
    wanted: dict[str, set[str]] = {}
    for r in rows:
        svc, key = ks.keys[r]
        wanted.setdefault(svc, set()).add(key)
    return {svc: window.breakdown(svc, keys) for svc, keys in wanted.items()}


def _views(ks: Keyspace, config: DetectorConfig, ws: int, w: WindowScores, at: npt.NDArray[np.intp],
           order: list[int], details: dict[str, dict[str, Breakdown]]) -> list[WindowView]:
    """What the incident machine sees of each row of ``order`` (``at``: the same rows) in this
    window: its counts, expectation, scores, baseline and breakdown."""
    expected, scale, index_get = w.expected, config.value_scale, ks.index.get
    columns = zip(w.observed[at].tolist(), expected[at].tolist(), w.score[at].tolist(),
                  w.exp.source[at].tolist(), w.score1[at].tolist(), strict=True)
    views = []
    for r, (observed, exp, score, source, score1) in zip(order, columns, strict=True):
        svc, key = ks.keys[r]
        b = details[svc].get(key)
        children: dict[str, tuple[float, float]] = {}
        if b is not None:
            for child, cn in b.children.items():
                crow = index_get((svc, child))
                children[child] = (cn * scale, float(expected[crow]) if crow is not None else 0.0)
        views.append(WindowView(ws, observed, exp, score, BASELINE_SOURCES[source],
                                b.categories if b else {}, b.sources if b else {}, children, score1))
    return views


def _after_close(ks: Keyspace, config: DetectorConfig, ws: int, r: int, closed: IncidentEvent,
                 before: Tracker | None) -> None:
    """A closed incident's effect on its key's model: a time-limited one mutes the key while
    it relearns; a level shift rebases the baseline to the level the incident ended at."""
    if closed.close_reason == "max_duration":
        ks.mute_until[r] = ws + config.relearn_ms
    elif closed.close_reason == "level_shift" and before is not None:
        ratio = before.recent_obs / max(before.recent_exp, 1e-9)
        ks.baseline.rebase(np.array([r]), np.array([float(np.clip(ratio, 1.0, 100.0))]))

