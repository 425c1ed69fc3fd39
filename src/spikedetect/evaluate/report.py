"""The data of ``spikedetect report``: per-incident count series, breakdowns, and the timeline.

:mod:`~spikedetect.evaluate.report_incidents` lists the incidents,
:mod:`~spikedetect.evaluate.report_series` replays the report events through the core for the
counts of the charted keys, and a ground truth tags each incident matched, trap or unmatched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from spikedetect.core import DetectorConfig
from spikedetect.core.timefmt import time_field_ms
from spikedetect.evaluate.report_incidents import latest_incidents
from spikedetect.evaluate.report_series import SeriesCollector, Slot, chart_span
from spikedetect.evaluate.score import evaluate
from spikedetect.files.faults import Fault
from spikedetect.files.progress import Update
from spikedetect.files.sources import BatchReader, count_bytes, open_binary
from spikedetect.replay.runner import Replay
from spikedetect.sim.truth import GroundTruth

CHILD_POINTS = 120
# what each incident's entry keeps of its latest event
FIELDS = (
    "incident_id", "service", "region", "level", "opened_at", "detected_at", "closed_at", "close_reason",
    "peak_count", "peak_at", "total_reports", "excess_reports", "categories", "sources", "children", "baseline",
    "kind", "group_id", "countries", "regions",
    "rose", "fell", "expected_categories",  # composition
    "missing_windows", "expected_reports",  # ingest_gap
)  # fmt: skip


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


def _slots(charted: list[dict[str, Any]], window_ms: int) -> list[tuple[Slot, list[Slot]]]:
    """Per charted incident, the series of its key and of its child regions."""
    slots = []
    for inc in charted:
        lo, hi = chart_span(inc, window_ms)
        main = Slot(inc["service"], inc["region"], lo, hi, window_ms)
        slots.append((main, [Slot(inc["service"], c, lo, hi, window_ms) for c in inc["child_regions"]]))
    return slots


def _replay(events_path: str, config: DetectorConfig, slots: list[Slot], progress: Update | None,
            faults: list[Fault] | None) -> tuple[dict[str, Any], SeriesCollector]:  # fmt: skip
    """Replay the report events, filling ``slots``; the replay's summary and the collector."""
    runner = Replay(config)
    collector = SeriesCollector(runner.pipeline.scorer, slots)
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
    return runner.summary.to_dict(), collector


def _entry(inc: dict[str, Any], tags: dict[str, str], end_ms: int) -> dict[str, Any]:
    item = {k: inc.get(k) for k in FIELDS}
    closed = time_field_ms(inc.get("closed_at"))
    item.update(opened_ms=time_field_ms(inc.get("opened_at")), until_ms=closed if closed is not None else end_ms,
                match=tags.get(inc["incident_id"]))  # fmt: skip
    return item


def _add_series(item: dict[str, Any], main: Slot, kids: list[Slot], end_ms: int, max_points: int) -> None:
    for slot in (main, *kids):
        slot.trim(end_ms)
    item["series"] = main.series(max_points)
    item["child_series"] = [{"region": k.key, **k.series(CHILD_POINTS)} for k in kids]


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
    slots = _slots(charted, w)
    summary, collector = _replay(events_path, config, [s for main, kids in slots for s in (main, *kids)],
                                 progress, faults)  # fmt: skip
    start = collector.first_ws if collector.first_ws is not None else 0
    end = (collector.last_ws + w) if collector.last_ws is not None else start + w
    tags = _matches(incidents, truth)
    hashes = sorted({str((i.get("detector") or {}).get("params_hash")) for i in incidents})
    out_incidents = [_entry(inc, tags, end) for inc in incidents]
    for item, (main, kids) in zip(out_incidents[: len(slots)], slots, strict=True):
        _add_series(item, main, kids, end, max_points)
    return {
        "format": "spikedetect.report/v1", "title": title, "window_ms": w, "start_ms": start, "end_ms": end,
        "config": {"detector": str(config.detector), "params_hash": config.params_hash,
                   "incident_params_hashes": hashes},
        "summary": summary, "incidents": out_incidents, "charted": len(charted),
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
