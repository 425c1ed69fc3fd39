"""Score incident events (``spikedetect.incident/v1`` or ``/v2``) against a simulation's ground truth.

Outage incidents (v2) are scored twice: their member regions as region incidents (the
rules below), and as groups (:mod:`~spikedetect.evaluate.groups`, in ``groups``).

Rules (also in docs/evaluation.md):

* Events are grouped by ``incident_id``; the latest event (highest ``seq``, then the
  last one read) describes the incident, its ``opened`` event gives ``detected_at``.
  An incident spans ``[opened_at, closed_at or the end of the truth]``.
* An incident **matches** an outage when the service is the same, its region is one of
  the outage's affected keys (the affected leaves and all their ancestors, ``"*"``
  included) and its span overlaps ``[start - 2 windows, end + 30 min]`` without having
  opened before that window: an incident already open before the outage began was not
  caused by it (otherwise a key stuck in alarm would "detect" every later outage). In
  short: it opened in ``[start - 2 windows, end + 30 min]``.
* An outage is **detected** when its first ``must_detect`` key has a matching incident.
  Its detection delay is that incident's ``detected_at`` minus the outage start; its
  close delay is the last ``closed_at`` of the matching incidents on that key minus the
  outage end (None while one is open). ``fragments`` counts those incidents (a flapping
  outage should make one).
* precision = matched incidents / incidents; false alarms per day = unmatched incidents /
  days of the truth; a trap alarm is an unmatched incident on one of a trap's keys whose
  span overlaps ``[trap start - 2 windows, trap end + 10 min]``.

>>> from spikedetect.sim.truth import GroundTruth, OutageTruth
>>> truth = GroundTruth(seed=1, start_ms=0, end_ms=86_400_000, outages=(
...     OutageTruth("o1", "single_city", "ig", 3_600_000, 7_200_000, ("US/CA/Los Angeles",), ("US/CA/Los Angeles",)),))
>>> ev = {"schema": "spikedetect.incident/v1", "type": "opened", "incident_id": "inc-1", "seq": 1,
...       "service": "ig", "region": "US/CA", "opened_at": 3_600_000, "detected_at": 3_720_000, "closed_at": None}
>>> r = evaluate([ev], truth)
>>> r.precision, r.recall, r.outages[0].detected
(1.0, 0.0, False)
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from spikedetect.core.regions import depth
from spikedetect.core.timefmt import format_ts_ms
from spikedetect.evaluate.groups import GroupSummary, score_groups, split_outages
from spikedetect.evaluate.incidents import Incident, collect_incidents
from spikedetect.evaluate.signals import SignalSummary, expected_signals, is_signal, score_signals
from spikedetect.sim.truth import GroundTruth, OutageTruth, TrapTruth

OUTAGE_BEFORE_WINDOWS = 2
OUTAGE_AFTER_MS = 30 * 60_000
TRAP_BEFORE_WINDOWS = 2
TRAP_AFTER_MS = 10 * 60_000
LEVELS = ("global", "country", "state", "city")


def level_of(key: str) -> str:
    """global, country, state or city (deeper paths count as city)."""
    return LEVELS[min(depth(key), 3)]


def _overlaps(span: tuple[int, int], lo: int, hi: int) -> bool:
    return span[0] <= hi and span[1] >= lo


@dataclass
class OutageScore:
    """How one outage was caught."""

    id: str
    kind: str
    service: str
    large: bool
    start: str
    end: str
    must_detect: list[str]
    detected: bool
    keys_found: list[str]
    keys_missed: list[str]
    recall: float
    level_hits: dict[str, list[int]]  # level -> [found, total] over must_detect keys
    detection_delay_s: float | None
    detection_delay_windows: float | None
    first_alarm_delay_s: float | None  # earliest detected_at of any matching incident
    close_delay_s: float | None
    fragments: int  # matching incidents on the first must_detect key
    incidents: list[str]


@dataclass
class TrapScore:
    """Unmatched incidents on a trap's keys during its span."""

    id: str
    kind: str
    service: str
    start: str
    end: str
    alarms: int
    incidents: list[str]


@dataclass
class EvaluationResult:
    """The score of a run; :meth:`to_dict` gives plain JSON-able data."""

    days: float
    incidents: int
    matched_incidents: int
    unmatched_incidents: int
    recall: float | None  # detected outages / outages
    key_recall: float | None  # must_detect keys found / must_detect keys, over all outages
    level_recall: dict[str, float | None]
    precision: float | None
    false_alarms_per_day: float
    trap_alarms: int
    median_detection_delay_windows: float | None  # over detected large outages
    median_detection_delay_s: float | None
    median_close_delay_s: float | None  # over detected outages whose incidents closed
    outages: list[OutageScore] = field(default_factory=list)
    traps: list[TrapScore] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    skipped_events: int = 0
    groups: GroupSummary | None = None  # outage incidents (v2 input) scored as groups
    signals: SignalSummary | None = None  # composition / ingest_gap incidents (issue 18), when any are due or seen

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _score_outage(outage: OutageTruth, matched: list[Incident], window_ms: int) -> OutageScore:
    found = {inc.region for inc in matched}
    must = list(outage.must_detect)
    hits = [k for k in must if k in found]
    levels: dict[str, list[int]] = {}
    for k in must:
        cell = levels.setdefault(level_of(k), [0, 0])
        cell[0] += k in found
        cell[1] += 1
    on_key = [inc for inc in matched if must and inc.region == must[0]]
    delay = close = None
    if on_key:
        delay = (min(inc.detected_at_ms for inc in on_key) - outage.start_ms) / 1000
        closes = [inc.closed_at_ms for inc in on_key]
        if all(c is not None for c in closes):
            close = (max(c for c in closes if c is not None) - outage.end_ms) / 1000
    first_alarm = min(((inc.detected_at_ms - outage.start_ms) / 1000 for inc in matched), default=None)
    return OutageScore(
        id=outage.id,
        kind=outage.kind,
        service=outage.service,
        large=outage.large,
        start=format_ts_ms(outage.start_ms),
        end=format_ts_ms(outage.end_ms),
        must_detect=must,
        detected=bool(on_key),
        keys_found=hits,
        keys_missed=[k for k in must if k not in found],
        recall=len(hits) / len(must) if must else 0.0,
        level_hits=levels,
        detection_delay_s=delay,
        detection_delay_windows=None if delay is None else delay / (window_ms / 1000),
        first_alarm_delay_s=first_alarm,
        close_delay_s=close,
        fragments=len(on_key),
        incidents=sorted(inc.incident_id for inc in matched),
    )


def _score_trap(trap: TrapTruth, unmatched: list[Incident], truth: GroundTruth) -> TrapScore:
    keys = set(trap.keys)
    lo, hi = trap.start_ms - TRAP_BEFORE_WINDOWS * truth.window_ms, trap.end_ms + TRAP_AFTER_MS
    hit = [
        inc.incident_id
        for inc in unmatched
        if inc.service == trap.service and inc.region in keys and _overlaps(inc.span(truth.end_ms), lo, hi)
    ]
    start, end = format_ts_ms(trap.start_ms), format_ts_ms(trap.end_ms)
    return TrapScore(trap.id, trap.kind, trap.service, start, end, len(hit), sorted(hit))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _match_outages(found: list[Incident], truth: GroundTruth) -> tuple[list[OutageScore], set[str]]:
    """Each outage's score, and the ids of the incidents any outage matched."""
    matched_ids: set[str] = set()
    scores = []
    for outage in truth.outages:
        keys = outage.affected_keys()
        lo = outage.start_ms - OUTAGE_BEFORE_WINDOWS * truth.window_ms
        hi = outage.end_ms + OUTAGE_AFTER_MS
        matched = [
            inc
            for inc in found
            if inc.service == outage.service and inc.region in keys and lo <= inc.opened_at_ms <= hi
        ]
        matched_ids.update(inc.incident_id for inc in matched)
        scores.append(_score_outage(outage, matched, truth.window_ms))
    return scores, matched_ids


def _level_recall(scores: list[OutageScore]) -> dict[str, float | None]:
    level_totals: dict[str, list[int]] = {lv: [0, 0] for lv in LEVELS}
    for score in scores:
        for lv, (hit, total) in score.level_hits.items():
            level_totals[lv][0] += hit
            level_totals[lv][1] += total
    return {lv: (h / t if t else None) for lv, (h, t) in level_totals.items()}


def _unmatched_rows(unmatched: list[Incident]) -> list[dict[str, Any]]:
    return [
        {"incident_id": i.incident_id, "service": i.service, "region": i.region, "opened_at": format_ts_ms(i.opened_at_ms)}
        for i in sorted(unmatched, key=lambda i: (i.opened_at_ms, i.incident_id))
    ]


def evaluate(incidents: Iterable[Mapping[str, Any]], truth: GroundTruth) -> EvaluationResult:
    """Score incident events (dicts of ``spikedetect.incident/v1`` or ``/v2``) against ``truth``."""
    events = [e for e in incidents if e.get("kind") != "drop"]  # a series' drops: no truth describes them
    signal_events = [e for e in events if is_signal(e)]
    region_events, outages = split_outages(e for e in events if not is_signal(e))
    found, skipped = collect_incidents(region_events)
    outage_scores, matched_ids = _match_outages(found, truth)
    unmatched = [inc for inc in found if inc.incident_id not in matched_ids]
    trap_scores = [_score_trap(trap, unmatched, truth) for trap in truth.traps]
    n_keys = sum(len(s.must_detect) for s in outage_scores)
    detected = [s for s in outage_scores if s.detected]
    median_delay_s = _median([s.detection_delay_s for s in detected if s.large and s.detection_delay_s is not None])
    return EvaluationResult(
        days=truth.days,
        incidents=len(found),
        matched_incidents=len(matched_ids),
        unmatched_incidents=len(unmatched),
        recall=len(detected) / len(outage_scores) if outage_scores else None,
        key_recall=sum(len(s.keys_found) for s in outage_scores) / n_keys if n_keys else None,
        level_recall=_level_recall(outage_scores),
        precision=len(matched_ids) / len(found) if found else None,
        false_alarms_per_day=len(unmatched) / truth.days if truth.days > 0 else float(len(unmatched)),
        trap_alarms=len({iid for t in trap_scores for iid in t.incidents}),
        median_detection_delay_windows=None if median_delay_s is None else median_delay_s / (truth.window_ms / 1000),
        median_detection_delay_s=median_delay_s,
        median_close_delay_s=_median([s.close_delay_s for s in detected if s.close_delay_s is not None]),
        outages=outage_scores,
        traps=trap_scores,
        unmatched=_unmatched_rows(unmatched),
        skipped_events=skipped,
        groups=score_groups(outages, truth) if outages else None,
        signals=score_signals(signal_events, truth) if signal_events or expected_signals(truth) else None,
    )
