"""The data of ``spikedetect report``: per-incident count series, breakdowns, and the timeline.

The report events are replayed through the core (:class:`~spikedetect.replay.runner.Replay`)
with a ``Scorer.on_window`` hook that keeps, for the keys that had incidents and the child
regions their events list, the observed count, the expected count and a band around it in
a span around each incident. Nothing else is kept, so memory stays small.

The band is ``expected ± 2·sqrt(phi·expected)`` (clipped at 0): about two standard
deviations of the negative binomial the score uses, with ``phi`` the key's learned
overdispersion where the model stores one (the seasonal model's ``phi``, read just after
the window was scored) and 1 (Poisson) otherwise. It is a guide for the eye; incidents open
on the score, not on the band.

Long spans are downsampled to at most ``max_points`` buckets: observed is the bucket's
maximum (spikes stay visible), expected the mean, the band the outer envelope.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikedetect.core import ClosedKeys, DetectorConfig, Scorer
from spikedetect.core.timefmt import time_field_ms
from spikedetect.files.faults import Fault
from spikedetect.files.progress import Update
from spikedetect.files.sources import BatchReader, count_bytes, open_binary
from spikedetect.replay.evaluate import evaluate
from spikedetect.replay.evaluate_signals import SIGNAL_KINDS
from spikedetect.replay.runner import Replay
from spikedetect.replay.truth import GroundTruth

PAD_BEFORE_WINDOWS = 60
PAD_AFTER_WINDOWS = 30
CHILD_POINTS = 120
MAX_CHILD_SERIES = 12  # member regions charted under an outage
V1, V2 = "spikedetect.incident/v1", "spikedetect.incident/v2"


def latest_incidents(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One dict per incident (its latest event by ``seq``), with ``detected_at`` from its first
    event and ``child_regions``: every child region any of its events listed.

    Outage incidents (``spikedetect.incident/v2``) come first (``kind: "outage"``, their
    members as ``child_regions``; composition and ingest-gap incidents keep their ``kind``), then region incidents (``kind: "region"``, with the
    ``group_id`` of their outage): the v1 events given, and every member of an outage that
    no v1 event describes. Each part is sorted by opening."""
    latest: dict[str, Mapping[str, Any]] = {}
    first: dict[str, Mapping[str, Any]] = {}
    children: dict[str, list[str]] = {}
    for ev in events:
        iid = ev.get("incident_id")
        if not iid or ev.get("schema", V1) not in (V1, V2):
            continue
        if not ev.get("service") or not ev.get("region"):  # incomplete (as evaluate skips it)
            continue
        seq = ev.get("seq", 0)
        if iid not in latest or seq >= latest[iid].get("seq", 0):
            latest[iid] = ev
        if iid not in first or seq < first[iid].get("seq", 0):
            first[iid] = ev
        known = children.setdefault(iid, [])
        listed = ev.get("regions") if ev.get("schema") == V2 else ev.get("children")
        known += [c["region"] for c in listed or [] if c.get("region") and c["region"] not in known]
    outages, regions = [], []
    for iid, ev in latest.items():
        inc = dict(ev)
        inc["detected_at"] = first[iid].get("detected_at", ev.get("detected_at"))
        inc["child_regions"] = children[iid]
        if ev.get("schema") == V2 and ev.get("kind") in SIGNAL_KINDS:  # composition, ingest_gap (issue 18)
            inc["child_regions"] = [r for r in children[iid] if r != ev.get("region")][:MAX_CHILD_SERIES]
            outages.append(inc)
        elif ev.get("schema") == V2:
            inc["kind"] = "outage"
            inc["child_regions"] = [r for r in children[iid] if r != ev.get("region")][:MAX_CHILD_SERIES]
            outages.append(inc)
            for m in ev.get("regions") or []:
                rid = m.get("incident_id")
                if rid and rid not in latest and m.get("region"):
                    regions.append({**m, "schema": V1, "service": ev.get("service"), "group_id": iid,
                                    "kind": "region", "child_regions": [], "detector": ev.get("detector")})
        else:
            inc["kind"] = "region"
            regions.append(inc)

    def order(e: dict[str, Any]) -> tuple[int, str, str]:
        return (time_field_ms(e.get("opened_at")) or 0, e.get("service", ""), e.get("region", ""))

    return sorted(outages, key=order) + sorted(regions, key=order)


@dataclass
class Slot:
    """One series to keep: a key over ``[lo_ms, hi_ms)`` (``hi_ms`` None: to the end of the data)."""

    service: str
    key: str
    lo_ms: int
    hi_ms: int | None
    window_ms: int
    obs: np.ndarray = field(init=False)
    exp: np.ndarray = field(init=False)
    phi: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = 64 if self.hi_ms is None else max(1, (self.hi_ms - self.lo_ms) // self.window_ms)
        self.obs, self.exp, self.phi = (np.full(n, np.nan) for _ in range(3))

    def put(self, ws: int, observed: float, expected: float, phi: float) -> None:
        i = (ws - self.lo_ms) // self.window_ms
        if i >= len(self.obs):  # open-ended: grow
            n = max(2 * len(self.obs), i + 1)
            self.obs, self.exp, self.phi = (np.concatenate([a, np.full(n - len(a), np.nan)])
                                            for a in (self.obs, self.exp, self.phi))  # fmt: skip
        self.obs[i], self.exp[i], self.phi[i] = observed, expected, phi

    def trim(self, end_ms: int) -> None:
        """Drop what lies past the end of the data."""
        n = max(1, (end_ms - self.lo_ms) // self.window_ms)
        self.obs, self.exp, self.phi = self.obs[:n], self.exp[:n], self.phi[:n]
        self.hi_ms = self.lo_ms + len(self.obs) * self.window_ms

    def series(self, max_points: int) -> dict[str, Any]:
        """``t0``, ``step`` (ms) and ``obs``/``exp``/``lo``/``hi`` lists (None where not scored)."""
        half = 2.0 * np.sqrt(self.phi * self.exp)
        lo, hi = np.maximum(self.exp - half, 0.0), self.exp + half
        k = max(1, math.ceil(len(self.obs) / max_points))
        cols: dict[str, tuple[np.ndarray, Callable[[np.ndarray], Any]]] = {
            "obs": (self.obs, np.nanmax), "exp": (self.exp, np.nanmean), "lo": (lo, np.nanmin), "hi": (hi, np.nanmax)
        }  # fmt: skip
        out: dict[str, Any] = {"t0": self.lo_ms, "step": k * self.window_ms}
        for name, (arr, agg) in cols.items():
            pad = (-len(arr)) % k
            blocks = np.concatenate([arr, np.full(pad, np.nan)]).reshape(-1, k)
            vals = [agg(b) if not np.all(np.isnan(b)) else math.nan for b in blocks]
            out[name] = [None if math.isnan(v) else round(float(v), 2) for v in vals]
        return out


class SeriesCollector:
    """A ``Scorer.on_window`` hook that fills :class:`Slot` arrays."""

    def __init__(self, scorer: Scorer, slots: list[Slot]) -> None:
        self.scorer = scorer
        self.slots = sorted(slots, key=lambda s: s.lo_ms)
        self.first_ws: int | None = None
        self.last_ws: int | None = None

    def __call__(self, ws: int, closed: ClosedKeys) -> None:
        if self.first_ws is None:
            self.first_ws = ws
        self.last_ws = ws
        ks = self.scorer.keyspace
        phi_col = ks.baseline.cols.get("phi")
        for slot in self.slots:
            if slot.lo_ms > ws:
                break
            if slot.hi_ms is not None and ws >= slot.hi_ms:
                continue
            row = ks.index.get((slot.service, slot.key))
            if row is not None:
                phi = max(1.0, float(phi_col[row])) if phi_col is not None else 1.0
                slot.put(ws, float(closed.observed[row]), float(closed.expected[row]), phi)


def chart_span(inc: Mapping[str, Any], window_ms: int) -> tuple[int, int | None]:
    """Chart start and end in ms (window-aligned; end None for an incident still open)."""
    opened = time_field_ms(inc.get("opened_at")) or 0
    closed = time_field_ms(inc.get("closed_at"))
    length = (closed if closed is not None else time_field_ms(inc.get("detected_at")) or opened) - opened
    lo = opened - max(PAD_BEFORE_WINDOWS * window_ms, length)
    if closed is None:
        return lo - lo % window_ms, None
    hi = closed + max(PAD_AFTER_WINDOWS * window_ms, length // 2)
    return lo - lo % window_ms, hi - hi % window_ms + window_ms


def _matches(incidents: list[dict[str, Any]], truth: GroundTruth | None) -> dict[str, str]:
    if truth is None:
        return {}
    res = evaluate(incidents, truth)
    tag = {iid: "trap:" + t.id for t in res.traps for iid in t.incidents}
    for o in res.outages:
        tag.update({iid: o.id for iid in o.incidents})
    for g in res.groups.scores if res.groups is not None else []:
        tag.update({iid: g.id for iid in g.incidents})
    for sig in res.signals.expected if res.signals is not None else []:
        tag.update({iid: sig.id for iid in sig.incidents})
    return {inc["incident_id"]: tag.get(inc["incident_id"], "unmatched") for inc in incidents}


def build_report(
    events_path: str,
    incident_events: Iterable[Mapping[str, Any]],
    config: DetectorConfig,
    truth: GroundTruth | None = None,
    *,
    max_incidents: int = 200,
    max_points: int = 400,
    title: str = "spikedetect report",
    progress: Update | None = None,
    faults: list[Fault] | None = None,
) -> dict[str, Any]:
    """Replay ``events_path`` and return the report's data (JSON-able); a read fault ends the events
    early and is added to ``faults``; ``progress(bytes read, bytes total, events)`` after each batch."""
    incidents = latest_incidents(incident_events)
    w = config.window_ms
    charted = incidents[:max_incidents]
    slots: list[tuple[Slot, list[Slot]]] = []
    for inc in charted:
        lo, hi = chart_span(inc, w)
        main = Slot(inc["service"], inc["region"], lo, hi, w)
        slots.append((main, [Slot(inc["service"], c, lo, hi, w) for c in inc["child_regions"]]))
    runner = Replay(config)
    collector = SeriesCollector(runner.pipeline.scorer, [s for main, kids in slots for s in (main, *kids)])
    runner.watch_windows(collector)
    with open_binary(events_path) as stream:
        reader = BatchReader(stream, "<stdin>" if events_path == "-" else events_path)
        total = count_bytes(events_path)
        for batch in reader:
            runner.feed(batch, line_numbers=reader.line_numbers)
            if progress is not None:
                progress(reader.position(), total, runner.summary.events)
    runner.finish()
    if reader.fault is not None and faults is not None:
        faults.append(reader.fault)
    start = collector.first_ws if collector.first_ws is not None else 0
    end = (collector.last_ws + w) if collector.last_ws is not None else start + w
    tags = _matches(incidents, truth)
    hashes = sorted({str((i.get("detector") or {}).get("params_hash")) for i in incidents})
    out_incidents = []
    for n, inc in enumerate(incidents):
        item = {
            k: inc.get(k)
            for k in (
                "incident_id",
                "service",
                "region",
                "level",
                "opened_at",
                "detected_at",
                "closed_at",
                "close_reason",
                "peak_count",
                "peak_at",
                "total_reports",
                "excess_reports",
                "categories",
                "sources",
                "children",
                "baseline",
                "kind",
                "group_id",
                "countries",
                "regions",
                "rose",  # composition
                "fell",
                "expected_categories",
                "missing_windows",  # ingest_gap
                "expected_reports",
            )
        }
        closed = time_field_ms(inc.get("closed_at"))
        item.update(opened_ms=time_field_ms(inc.get("opened_at")), until_ms=closed if closed is not None else end,
                    match=tags.get(inc["incident_id"]))  # fmt: skip
        if n < len(slots):
            main, kids = slots[n]
            for slot in (main, *kids):
                slot.trim(end)
            item["series"] = main.series(max_points)
            item["child_series"] = [{"region": k.key, **k.series(CHILD_POINTS)} for k in kids]
        out_incidents.append(item)
    return {
        "format": "spikedetect.report/v1", "title": title, "window_ms": w, "start_ms": start, "end_ms": end,
        "config": {"detector": str(config.detector), "params_hash": config.params_hash,
                   "incident_params_hashes": hashes},
        "summary": runner.summary.to_dict(), "incidents": out_incidents, "charted": len(charted),
        "truth": _truth_data(truth),
    }  # fmt: skip


def _truth_data(truth: GroundTruth | None) -> dict[str, Any] | None:
    if truth is None:
        return None
    return {
        "outages": [{"id": o.id, "kind": o.kind, "service": o.service, "start_ms": o.start_ms, "end_ms": o.end_ms,
                     "key": o.must_detect[0] if o.must_detect else ""} for o in truth.outages],
        "traps": [{"id": t.id, "kind": t.kind, "service": t.service, "start_ms": t.start_ms, "end_ms": t.end_ms,
                   "key": ",".join(t.keys[:3])} for t in truth.traps],
    }  # fmt: skip


__all__ = ["SeriesCollector", "Slot", "build_report", "chart_span", "latest_incidents"]
