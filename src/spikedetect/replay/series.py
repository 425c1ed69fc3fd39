"""Pre-aggregated count series (``timestamp,value`` CSV) fed straight to the scorer.

Any labelled time series can be scored this way: each row is the total of one key
(``service``/``region``, by default ``series``/``*``) in one window. Values may be
non-integer (rates, measurements); the negative-binomial score rounds them up.

* ``timestamp`` is RFC 3339 (a missing offset means UTC) or epoch milliseconds.
* The window is the median spacing of the rows unless given; windows are aligned to the
  first row, rows falling in the same window are added, and a missing row is a window
  with 0 (that is what the detector sees when reports stop).
* Rows with an unreadable time or a value that is not a finite number >= 0 are skipped
  and counted as rejected (``bad_timestamp``, ``bad_value``).

>>> import io
>>> s = read_series(io.StringIO("timestamp,value\\n2026-11-26T00:01:00Z,2.5\\n1795651200000,3\\nx,1\\n"))
>>> s.rows, s.rejects, infer_window_ms(s.rows)
([(1795651200000, 3.0), (1795651260000, 2.5)], [(4, 'bad_timestamp', 'x,1')], 60000)
"""

from __future__ import annotations

import csv
import itertools
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

from spikedetect.core import ClosedWindow, DetectorConfig, IncidentEvent, Scorer
from spikedetect.core.scorer import WindowHook
from spikedetect.core.timefmt import parse_time_arg
from spikedetect.replay.runner import ReplaySummary

CATEGORY = "value"  # the category and source a series' counts are filed under
SOURCE = "series"


class SeriesError(ValueError):
    """The CSV cannot be used at all (no header, no rows, no spacing)."""


@dataclass
class SeriesData:
    """Valid rows sorted by time, and rejected rows as (line number, reason, raw text)."""

    rows: list[tuple[int, float]] = field(default_factory=list)
    rejects: list[tuple[int, str, str]] = field(default_factory=list)


def _parse_time(text: str) -> int | None:
    text = text.strip()
    try:
        return parse_time_arg(text) if text else None
    except ValueError:
        return None


def _parse_value(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def read_series(stream: TextIO) -> SeriesData:
    """Rows of a ``timestamp,value`` CSV (header required, other columns ignored)."""
    reader = csv.reader(stream)
    header = next(reader, None)
    names = [h.strip().lower() for h in header or []]
    if "timestamp" not in names or "value" not in names:
        raise SeriesError(f"the first line must be a header with 'timestamp' and 'value', got {header!r}")
    t_col, v_col = names.index("timestamp"), names.index("value")
    out = SeriesData()
    for row in reader:
        if not row or not any(cell.strip() for cell in row):
            continue
        line = reader.line_num
        ts = _parse_time(row[t_col]) if t_col < len(row) else None
        if ts is None:
            out.rejects.append((line, "bad_timestamp", ",".join(row)))
            continue
        value = _parse_value(row[v_col]) if v_col < len(row) else None
        if value is None:
            out.rejects.append((line, "bad_value", ",".join(row)))
            continue
        out.rows.append((ts, value))
    out.rows.sort(key=lambda r: r[0])
    return out


def infer_window_ms(rows: list[tuple[int, float]]) -> int:
    """The median spacing of distinct row times."""
    times = sorted({ts for ts, _ in rows})
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if not gaps:
        raise SeriesError("cannot infer the window from fewer than two distinct times; give --window-ms")
    return int(statistics.median(gaps))


def to_windows(rows: Iterable[tuple[int, float]], window_ms: int) -> list[tuple[int, float]]:
    """(window start, total) per window, oldest first; windows aligned to the first row.

    >>> to_windows([(30_000, 1.0), (90_000, 2.0), (100_000, 0.5)], 60_000)
    [(30000, 1.0), (90000, 2.5)]
    """
    totals: dict[int, float] = {}
    offset: int | None = None
    for ts, value in rows:
        if offset is None:
            offset = ts % window_ms
        ws = ts - (ts - offset) % window_ms
        totals[ws] = totals.get(ws, 0.0) + value
    return sorted(totals.items())


# -- model choice (kept apart from the CSV parsing above) ---------------------------------------

CONTINUOUS_UNITS = 1000.0  # a continuous series' median value is scored as about this many units


def choose_value_scale(rows: list[tuple[int, float]]) -> float:
    """1.0 when every value is a whole number (counts, the main target); otherwise a power of
    ten that makes the median positive value about :data:`CONTINUOUS_UNITS` units, so the
    count noise is negligible and the learned relative noise (variance ``alpha * mean**2``,
    gamma-like) describes the series.

    >>> choose_value_scale([(0, 3.0), (1, 0.0), (2, 12.0)]), choose_value_scale([(0, 0.25), (1, 0.5)])
    (1.0, 10000.0)
    """
    values = [v for _, v in rows]
    if all(float(v).is_integer() for v in values):
        return 1.0
    positive = sorted(v for v in values if v > 0)
    median = positive[len(positive) // 2] if positive else 1.0
    return float(10.0 ** math.ceil(math.log10(CONTINUOUS_UNITS / median)))


def model_name(config: DetectorConfig) -> str:
    """How the series' values are scored, for the summary."""
    if config.value_scale == 1.0:
        return "counts (negative binomial)"
    return f"continuous (values x {config.value_scale:g}, relative noise)"


def replay_series(
    data: SeriesData,
    config: DetectorConfig,
    *,
    service: str = "series",
    region: str = "*",
    on_incident: Callable[[IncidentEvent], None] | None = None,
    on_window: WindowHook | None = None,
) -> ReplaySummary:
    """Score the series one window at a time (the watermark moves with the rows)."""
    started = time.perf_counter()
    scorer = Scorer(config, sources=(0,))
    scorer.on_window = on_window
    summary = ReplaySummary(
        events=len(data.rows) + len(data.rejects), accepted=len(data.rows), rejected=len(data.rejects),
        model=model_name(config),
    )
    for _, reason, _ in data.rejects:
        summary.rejected_by_reason[reason] = summary.rejected_by_reason.get(reason, 0) + 1
    w = config.window_ms
    for ws, value in to_windows(data.rows, w):
        scorer.add_partial(0, ClosedWindow(ws, {service: {(region, CATEGORY, SOURCE): value}}))  # type: ignore[dict-item]
        scorer.set_watermark(0, ws + w)
        for event in scorer.close_ready():
            summary.incident_events += 1
            summary.incidents_opened += event.type == "opened"
            summary.incidents_closed += event.type == "closed"
            if on_incident is not None:
                on_incident(event)
    summary.windows_closed = scorer.stats.windows_closed
    summary.keys = scorer.keyspace.size
    summary.seconds = time.perf_counter() - started
    return summary


__all__ = ["SeriesData", "SeriesError", "choose_value_scale", "infer_window_ms", "model_name", "read_series",
           "replay_series", "to_windows"]
