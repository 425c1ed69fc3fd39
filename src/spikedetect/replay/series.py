"""Pre-aggregated count series (``timestamp,value`` CSV) fed straight to the scorer.

Any labelled time series can be scored this way: each row is the total of one key
(``service``/``region``, by default ``series``/``*``) in one window. Values may be
non-integer (rates, measurements); the negative-binomial score rounds them up.

* ``timestamp`` is RFC 3339 (a missing offset means UTC) or a number of seconds,
  milliseconds, microseconds or nanoseconds since the epoch, told apart by magnitude (under
  1e11 is seconds - up to the year 5138 -, under 1e14 milliseconds, ...). A byte-order mark
  is skipped.
* The window is the median spacing of the rows unless given; windows are aligned to the
  first row, rows falling in the same window are added, and a missing row is a window
  with 0 (that is what the detector sees when reports stop).
* Rows with an unreadable time or a value that is not a number >= 0 are skipped and counted
  as rejected (``bad_timestamp``, ``bad_value``), as are values that are NaN or infinite
  (``value_not_finite``) or above 1e12 (``value_too_large``: it would overflow the score).
* Duplicate timestamps (their values are added) and rows out of time order (sorted) are
  counted in ``notes``, with the first line of each.

>>> import io
>>> s = read_series(io.StringIO("timestamp,value\\n2026-11-26T00:01:00Z,2.5\\n1795651200000,3\\nx,1\\n"))
>>> s.rows, s.rejects, infer_window_ms(s.rows)
([(1795651200000, 3.0), (1795651260000, 2.5)], [(4, 'bad_timestamp', 'x,1')], 60000)
>>> read_series(io.StringIO("\\ufefftimestamp,value\\n1795651200,1\\n1795651200,2\\n1795651140,nan\\n")).notes
['timestamps read as epoch seconds (2 rows)', '1 duplicate timestamp (first at line 3): values added', \
'1 row rejected as value_not_finite (first at line 4)']
"""

from __future__ import annotations

import csv
import itertools
import math
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from spikedetect.core import ClosedWindow, DetectorConfig
from spikedetect.core.messages import Mark, Partial
from spikedetect.core.pipeline import Pipeline
from spikedetect.core.scorer import WindowHook
from spikedetect.core.signals import Signals
from spikedetect.core.summary import Summary
from spikedetect.core.timefmt import parse_time_arg
from spikedetect.replay.runner import Delivery, OnOutage, OnRegion

CATEGORY = "value"  # the category and source a series' counts are filed under
SOURCE = "series"


class SeriesError(ValueError):
    """The CSV cannot be used at all (no header, no rows, no spacing); ``line`` 0: the file as a whole."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class SeriesData:
    """Valid rows sorted by time, and rejected rows as (line number, reason, raw text)."""

    rows: list[tuple[int, float]] = field(default_factory=list)
    rejects: list[tuple[int, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what reading found and did, for the user


MAX_VALUE = 1e12
MAX_TS_MS = 253_402_300_799_999  # the end of the year 9999
# an epoch number under the first bound is seconds, under the next milliseconds, ...
_EPOCH_UNITS = ((1e11, 1000.0, "epoch seconds"), (1e14, 1.0, "epoch milliseconds"),
                (1e17, 1e-3, "epoch microseconds"), (math.inf, 1e-6, "epoch nanoseconds"))  # fmt: skip


def _parse_time(text: str) -> tuple[int, str] | None:
    """Epoch ms and the format it was read as."""
    text = text.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number) or number < 0:
            return None
        unit, name = next((u, n) for bound, u, n in _EPOCH_UNITS if number < bound)
        ms = round(number * unit)
        return (ms, name) if ms <= MAX_TS_MS else None
    try:
        return parse_time_arg(text), "RFC 3339"
    except (ValueError, OverflowError):
        return None


def _parse_value(text: str) -> float | str:
    """The value, or the reason it is rejected."""
    try:
        value = float(text)
    except ValueError:
        return "bad_value"
    if not math.isfinite(value):
        return "value_not_finite"
    if value < 0:
        return "bad_value"
    return value if value <= MAX_VALUE else "value_too_large"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def read_series(stream: TextIO) -> SeriesData:
    """Rows of a ``timestamp,value`` CSV (header required, other columns ignored)."""
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise SeriesError(f"not a CSV: {exc}", 1) from exc
    names = [h.strip().lstrip("\ufeff").strip().lower() for h in header or []]
    if "timestamp" not in names or "value" not in names:
        raise SeriesError(f"the first line must be a header naming 'timestamp' and 'value' columns, got {header!r}",
                          1)  # fmt: skip
    t_col, v_col = names.index("timestamp"), names.index("value")
    out = SeriesData()
    order = _Order()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise SeriesError(f"not a CSV: {exc}", reader.line_num) from exc
        if row and any(cell.strip() for cell in row):
            _read_row(row, reader.line_num, t_col, v_col, out, order)
    out.rows.sort(key=lambda r: r[0])
    out.notes += order.notes(out.rejects)
    return out


@dataclass
class _Order:
    """What reading found about the rows' times, for the notes."""

    formats: dict[str, int] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    last: int | None = None
    dup: int = 0
    first_dup: int = 0
    unsorted: int = 0
    first_unsorted: int = 0

    def add(self, ts: int, fmt: str, line: int) -> None:
        self.formats[fmt] = self.formats.get(fmt, 0) + 1
        if ts in self.seen:
            self.dup += 1
            self.first_dup = self.first_dup or line
        elif self.last is not None and ts < self.last:
            self.unsorted += 1
            self.first_unsorted = self.first_unsorted or line
        self.seen.add(ts)
        self.last = ts if self.last is None else max(self.last, ts)

    def notes(self, rejects: list[tuple[int, str, str]]) -> list[str]:
        notes = ["timestamps read as " + " and ".join(f"{f} ({_plural(n, 'row')})" for f, n in self.formats.items())]
        if self.dup:
            notes.append(f"{_plural(self.dup, 'duplicate timestamp')} (first at line {self.first_dup}): values added")
        if self.unsorted:
            notes.append(f"{_plural(self.unsorted, 'row')} out of time order (first at line {self.first_unsorted}): "
                         "rows sorted by time")  # fmt: skip
        by_reason: dict[str, list[int]] = {}
        for line, reason, _ in rejects:
            by_reason.setdefault(reason, []).append(line)
        for reason, lines in by_reason.items():
            notes.append(f"{_plural(len(lines), 'row')} rejected as {reason} (first at line {lines[0]})")
        return notes


def _read_row(row: list[str], line: int, t_col: int, v_col: int, out: SeriesData, order: _Order) -> None:
    """One non-blank row: a valid row, or a reject with its reason."""
    parsed = _parse_time(row[t_col]) if t_col < len(row) else None
    if parsed is None:
        out.rejects.append((line, "bad_timestamp", ",".join(row)))
        return
    value = _parse_value(row[v_col]) if v_col < len(row) else "bad_value"
    if isinstance(value, str):
        out.rejects.append((line, value, ",".join(row)))
        return
    order.add(parsed[0], parsed[1], line)
    out.rows.append((parsed[0], value))


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

# a series' default model: the seasonal one with a week profile beside the daily one, used per key
# where it fits better (core/detectors/weekly.py); report streams keep "seasonal"
SERIES_DETECTOR = "weekly"
CONTINUOUS_UNITS = 1000.0  # a continuous series' median value is scored as about this many units


def choose_value_scale(rows: list[tuple[int, float]]) -> float:
    """1.0 when every value is a whole number (counts, the main target); otherwise a power of
    ten that makes the median positive value about :data:`CONTINUOUS_UNITS` units, so the
    count noise is negligible and the learned relative noise (variance ``alpha * mean**2``,
    gamma-like) describes the series.

    >>> choose_value_scale([(0, 3.0), (1, 0.0), (2, 12.0)]), choose_value_scale([(0, 0.25), (1, 0.5)])
    (1.0, 10000.0)

    A median too small for that is scaled by the largest power of ten a float holds:

    >>> choose_value_scale([(0, 1.5e-308)]), choose_value_scale([(0, 6e-306)])
    (1e+308, 1e+308)
    """
    values = [v for _, v in rows]
    if all(float(v).is_integer() for v in values):
        return 1.0
    positive = sorted(v for v in values if v > 0)
    median = positive[len(positive) // 2] if positive else 1.0
    ratio = CONTINUOUS_UNITS / median  # infinite for a median below ~1e-305 (a subnormal float)
    top = sys.float_info.max_10_exp  # 10.0 ** 308, the largest power of ten a float holds
    return float(10.0 ** min(math.ceil(math.log10(ratio)) if ratio < math.inf else top, top))


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
    on_incident: OnOutage | None = None,
    on_window: WindowHook | None = None,
    on_region: OnRegion | None = None,
    drops: bool = True,
) -> Summary:
    """Score the series one window at a time (the watermark moves with the rows); ``drops``:
    also open ``drop`` incidents where the series falls well below its expectation."""
    started = time.perf_counter()
    # the scorer side alone: a series has no reports to count, no categories or producers, but a
    # metric series' drops are anomalies too (core/drops.py)
    pipe = Pipeline(config, sources=(0,), signals=Signals.SERIES if drops else False, on_window=on_window)
    deliver = Delivery(on_incident, on_region)
    for line, reason, _ in data.rejects:
        pipe.summary.reject(reason, {"line": line})
    w = config.window_ms
    for ws, value in to_windows(data.rows, w):
        pipe.apply(Partial(0, ClosedWindow(ws, {service: {(region, CATEGORY, SOURCE): value}})))  # type: ignore[dict-item]
        pipe.apply(Mark(0, ws + w))
        deliver(pipe.close())
    deliver(pipe.finish())
    summary = pipe.summary
    summary.events, summary.accepted, summary.rejected = len(data.rows) + len(data.rejects), len(data.rows), len(data.rejects)
    summary.model = model_name(config)
    summary.seconds = time.perf_counter() - started
    return summary


__all__ = ["SERIES_DETECTOR", "SeriesData", "SeriesError", "choose_value_scale", "infer_window_ms", "model_name", "read_series",
           "replay_series", "to_windows"]
