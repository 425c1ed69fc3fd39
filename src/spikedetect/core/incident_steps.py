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
from spikedetect.core.expand import Breakdown, Sums, children_cap
from spikedetect.core.incidents import IncidentEvent, Tracker, WindowView
from spikedetect.core.keyspace import Keyspace, ServiceKey
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.policy import ANOMALOUS, IncidentPolicy
from spikedetect.core.window_scores import WindowScores

_ANOMALOUS = np.int8(ANOMALOUS)  # the signals' type: no Python int to promote


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


def rows_to_step(ks: Keyspace, trackers: dict[ServiceKey, Tracker], w: WindowScores) -> npt.NDArray[np.intp]:
    """Rows whose incident state may change, ascending: tracked ones and new anomalies; rows
    that already applied this window (state restored from a crash mid-write) sit out."""
    step = w.signal >= _ANOMALOUS
    if trackers:
        step[np.fromiter(map(ks.index.__getitem__, trackers), dtype=np.intp, count=len(trackers))] = True
    rows = step.nonzero()[0]  # few rows: the done mask is read for those only
    return rows[~w.done[rows]] if len(rows) else rows


def step_incidents(ks: Keyspace, config: DetectorConfig, policy: IncidentPolicy,
                   trackers: dict[ServiceKey, Tracker], ws: int, w: WindowScores,
                   window: LeafWindow) -> Stepped:
    """Step every row of :func:`rows_to_step`, parents first, updating ``trackers`` in place."""
    out = Stepped()
    rows = rows_to_step(ks, trackers, w)
    if not len(rows):
        return out
    order = stepping_order(ks, rows)
    sks = list(map(ks.keys.__getitem__, order))
    signals = w.signal[np.array(order, dtype=np.intp)].tolist()
    details = _breakdowns(ks, config, policy, trackers, w, sks, signals, window)
    views = _views(ks, config, ws, w, order, sks, details)
    step, ended, events, pop = policy.step, out.ended, out.events, trackers.pop
    for r, sk, signal, view in zip(order, sks, signals, views, strict=True):
        before = pop(sk, None)
        tracker, evs = step(before, sk[0], sk[1], signal, view)
        if tracker is not None:
            trackers[sk] = tracker
        elif evs and evs[-1].type == "closed":
            ended.append(r)
            _after_close(ks, config, ws, r, evs[-1], before)
        if evs:
            events.extend(evs)
    out.stepped = order
    return out


def stepping_order(ks: Keyspace, rows: npt.NDArray[np.intp]) -> list[int]:
    """``rows`` parents first: by depth, then by key (keys are unique, so the row never decides);
    each depth's rows sorted on their own, by key alone.

    >>> from spikedetect.core.detectors import SeasonalBaseline
    >>> ks = Keyspace(SeasonalBaseline(60_000)); _ = ks.row("ig", "US/NY"), ks.row("ig", "DE/BY"), ks.row("ab", "FR")
    >>> [ks.keys[r] for r in stepping_order(ks, np.arange(ks.size))]
    [('ab', '*'), ('ig', '*'), ('ab', 'FR'), ('ig', 'DE'), ('ig', 'US'), ('ig', 'DE/BY'), ('ig', 'US/NY')]
    """
    by_depth: dict[int, list[int]] = {}
    for d, r in zip(ks.depth[rows].tolist(), rows.tolist(), strict=True):
        got = by_depth.get(d)
        if got is None:
            by_depth[d] = [r]
        else:
            got.append(r)
    order, key_of = [], ks.keys.__getitem__
    for d in sorted(by_depth):
        order += sorted(by_depth[d], key=key_of)
    return order


def _breakdowns(ks: Keyspace, config: DetectorConfig, policy: IncidentPolicy, trackers: dict[ServiceKey, Tracker],
                w: WindowScores, sks: list[ServiceKey], signals: list[int],
                window: LeafWindow) -> dict[str, dict[str, Breakdown]]:
    """Each service's breakdowns (by category, source and child) of the keys ``sks``. A key the
    machine will add this window to (a tracker whose pair TABLE steps) has its breakdown added
    into the tracker's sums here where the frame's sums allow it
    (:meth:`~spikedetect.core.leaf_window.LeafWindow.breakdown_into`: no dicts built to be added
    once and dropped) and is left out, so its view carries none; ``Tracker.accumulate`` adds the
    rest: the same sums, in the same order."""
    wanted: dict[str, set[str]] = {}
    aims: dict[str, dict[str, Sums]] = {}
    accumulates = policy.accumulates
    for (svc, key), signal in zip(sks, signals, strict=True):
        got = wanted.get(svc)
        if got is None:
            got = wanted[svc] = set()
            aims[svc] = {}
        got.add(key)
        t = trackers.get((svc, key))
        if t is not None and accumulates(t, signal):
            aims[svc][key] = (t.categories, t.sources, t.children)
    into = (ks.index, w.expected, config.value_scale, children_cap(config.max_breakdown))
    details: dict[str, dict[str, Breakdown]] = {}
    for svc, want in wanted.items():
        added = window.breakdown_into(svc, want, (aims[svc], svc, *into)) if aims[svc] else None
        details[svc] = window.breakdown(svc, want) if added is None else added
    return details


def _views(ks: Keyspace, config: DetectorConfig, ws: int, w: WindowScores, order: list[int], sks: list[ServiceKey],
           details: dict[str, dict[str, Breakdown]]) -> list[WindowView]:
    """What the incident machine sees of each row of ``order`` (keys ``sks``) in this window: its
    counts, expectation, scores, baseline and breakdown (``details``: by category, source and
    child, each child with its own expectation)."""
    index_get, expected_at, scale, names = ks.index.get, w.expected.item, config.value_scale, BASELINE_SOURCES
    make = tuple.__new__  # a WindowView of its fields in order, without the named tuple's Python __new__
    at, views = np.array(order, dtype=np.intp), []
    for (svc, key), observed, exp, score, source, score1 in zip(
            sks, w.observed[at].tolist(), w.expected[at].tolist(), w.score[at].tolist(), w.exp.source[at].tolist(),
            w.score1[at].tolist(), strict=True):
        b = details[svc].get(key)
        if b is None:  # no reports under the key this window, or added into its tracker already
            views.append(make(WindowView, (ws, observed, exp, score, names[source], {}, {}, {}, score1)))
            continue
        kids: dict[str, tuple[float, float]] = {}
        for child, cn in b.children.items():  # each child with its own expectation
            crow = index_get((svc, child))
            kids[child] = (cn * scale, expected_at(crow) if crow is not None else 0.0)
        views.append(make(WindowView, (ws, observed, exp, score, names[source], b.categories, b.sources, kids, score1)))
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

