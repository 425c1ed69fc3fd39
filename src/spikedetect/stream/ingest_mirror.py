"""The ingest totals of child processes, shown by the parent worker (``--ingest-processes N``).

Each ingest child keeps its own :class:`~spikedetect.stream.metrics.Metrics` and
:class:`Totals` and sends, every half second, a *snapshot* of them: its cumulative stage-1
counters, its lag per input partition and its totals, as JSON bytes (:func:`snapshot`). The
parent's :class:`IngestMirror` turns consecutive snapshots of one child into increments of the
worker's own counters, so ``/metrics`` and the summary line add up every child, past and present.

Snapshots are cumulative, so nothing depends on how many arrive: a late or skipped one only
delays the figures. A child that ended is :meth:`IngestMirror.forget`-ed once its pipe has
been read to the end; what it counted stays counted, its lag goes (another child reads its
partitions now). Chosen over ``prometheus_client``'s multiprocess mode, which is process-wide
(an environment variable set before the import), keeps files of dead processes to clean up,
and would not carry the :class:`Totals` of the summary line.

>>> from spikedetect.stream.metrics import Metrics
>>> child, parent = Metrics(), Metrics()
>>> mirror = IngestMirror(parent)
>>> child.consumed.inc(5)
>>> mirror.apply(1, snapshot(child, Totals(consumed=5), partitions=2))
>>> child.consumed.inc(3)
>>> mirror.apply(1, snapshot(child, Totals(consumed=8), partitions=2))
>>> [s.value for s in parent.consumed.collect()[0].samples if s.name.endswith("_total")]
[8.0]
>>> mirror.totals().consumed
8
"""

from __future__ import annotations

import threading
from dataclasses import fields
from typing import Any

import orjson

from spikedetect.stream.metrics import Metrics
from spikedetect.stream.source_state import Totals

# the counters stage 1 updates (attributes of Metrics); its one gauge is ``lag``
INGEST_COUNTERS = ("consumed", "accepted", "rejected", "late", "duplicate", "dead_lettered")

CounterKey = tuple[str, tuple[tuple[str, str], ...]]


def snapshot(metrics: Metrics, totals: Totals, *, partitions: int) -> bytes:
    """A child's cumulative stage-1 figures as JSON bytes (see the module docstring)."""
    counters = []
    for attr in INGEST_COUNTERS:
        for family in getattr(metrics, attr).collect():
            counters += [[attr, sorted(s.labels.items()), s.value] for s in family.samples
                         if s.name.endswith("_total")]
    lag = {s.labels["partition"]: s.value for family in metrics.lag.collect() for s in family.samples}
    return orjson.dumps({"counters": counters, "lag": lag, "partitions": partitions,
                         "totals": {f.name: getattr(totals, f.name) for f in fields(Totals)}})


def add_totals(a: Totals, b: Totals) -> Totals:
    """Field-wise sum.

    >>> add_totals(Totals(consumed=1, late=2), Totals(consumed=3)).consumed
    4
    """
    return Totals(**{f.name: getattr(a, f.name) + getattr(b, f.name) for f in fields(Totals)})


class IngestMirror:
    """The parent's view of its ingest children: applies their snapshots to its Metrics.

    Keyed by *incarnation* (one id per child process started); thread-safe, since the parent
    reads the children's pipes on a thread of its own."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._lock = threading.Lock()
        self._counters: dict[int, dict[CounterKey, float]] = {}
        self._totals: dict[int, Totals] = {}
        self._lag: dict[int, dict[str, float]] = {}
        self._partitions: dict[int, int] = {}
        self._gone = Totals()  # what children that ended had done
        self._lag_shown: set[str] = set()

    def apply(self, incarnation: int, blob: bytes) -> None:
        """Take one snapshot of a running child."""
        data: dict[str, Any] = orjson.loads(blob)
        with self._lock:
            before = self._counters.get(incarnation, {})
            now: dict[CounterKey, float] = {}
            for attr, labels, value in data["counters"]:
                key: CounterKey = (attr, tuple((str(k), str(v)) for k, v in labels))
                delta = value - before.get(key, 0.0)
                if delta > 0:
                    metric = getattr(self.metrics, attr)
                    (metric.labels(**dict(key[1])) if key[1] else metric).inc(delta)
                now[key] = max(value, before.get(key, 0.0))
            self._counters[incarnation] = now
            self._totals[incarnation] = Totals(**data["totals"])
            self._lag[incarnation] = {str(p): float(v) for p, v in data["lag"].items()}
            self._partitions[incarnation] = int(data["partitions"])
            self._show_lag()

    def forget(self, incarnation: int) -> None:
        """A child ended (its pipe read to the end): keep what it counted, drop its lag."""
        with self._lock:
            self._gone = add_totals(self._gone, self._totals.pop(incarnation, Totals()))
            self._counters.pop(incarnation, None)
            self._lag.pop(incarnation, None)
            self._partitions.pop(incarnation, None)
            self._show_lag()

    def totals(self) -> Totals:
        """Every child's totals added up, ended children included."""
        with self._lock:
            out = self._gone
            for t in self._totals.values():
                out = add_totals(out, t)
            return out

    def lag(self) -> int:
        """The input lag now, summed over the running children's partitions."""
        with self._lock:
            return int(sum(sum(lag.values()) for lag in self._lag.values()))

    def partitions(self) -> int:
        """Input partitions the running children read."""
        with self._lock:
            return sum(self._partitions.values())

    def _show_lag(self) -> None:
        """Set the lag gauge per partition; remove partitions no running child reports."""
        merged: dict[str, float] = {}
        for lag in self._lag.values():
            merged.update(lag)
        for p, value in merged.items():
            self.metrics.lag.labels(p).set(value)
        for p in self._lag_shown - merged.keys():
            self.metrics.lag.remove(p)
        self._lag_shown = set(merged)
