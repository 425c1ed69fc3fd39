"""Prometheus metrics of a worker (served at ``/metrics``).

One registry per worker process; stage 1 (ingest) and stage 2 (owner) update it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.consumed = _counter(r, "spikedetect_events_consumed",
                                 "Report messages read from the input topic")
        self.accepted = _counter(r, "spikedetect_events_accepted", "Reports counted in a window")
        self.rejected = _counter(r, "spikedetect_events_rejected", "Reports rejected by validation", "reason")
        self.late = _counter(r, "spikedetect_events_late", "Reports whose window had already closed")
        self.duplicate = _counter(r, "spikedetect_events_duplicate", "Reports dropped as repeated event_id")
        self.dead_lettered = _counter(r, "spikedetect_dead_letters", "Messages sent to the dead-letter topic",
                                      "reason")
        self.windows_closed = _counter(r, "spikedetect_windows_closed", "Windows closed and scored by owners")
        self.keys_scored = _counter(r, "spikedetect_keys_scored", "Key-windows scored")
        self.scoring_seconds = Histogram(
            "spikedetect_scoring_seconds",
            "Time to close and score one window",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.persists = _counter(r, "spikedetect_state_persists",
                                 "Owner state writes after closing (interval, bound, leave)", "reason")
        for reason in ("interval", "bound", "leave"):  # shown at 0 before the first write
            self.persists.labels(reason)
        self.persist_windows = Histogram(
            "spikedetect_persist_windows", "Windows closed since the previous owner state write, per write",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000), registry=r)
        self.persist_seconds = Histogram(
            "spikedetect_persist_seconds", "Time to queue one owner state write (every key record)",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=r)
        self.incidents = _counter(r, "spikedetect_incident_events", "Incident events published", "type")
        self.open_incidents = _gauge(r, "spikedetect_open_incidents", "Outage incidents currently open")
        self.lag = _gauge(r, "spikedetect_consumer_lag", "Input messages not yet read", "partition")
        self.watermark_delay = _gauge(r, "spikedetect_watermark_delay_seconds",
                                      "Wall clock minus the closing watermark of owned windows")
        self.late_partials = _counter(r, "spikedetect_late_partial_reports",
                                      "Reports that reached an owner after their window closed")
        self.keys = _gauge(r, "spikedetect_keys", "Keys (service x region level) known to this worker")
        self.ingest_restarts = _counter(r, "spikedetect_ingest_child_restarts",
                                        "Ingest child processes restarted after they exited (--ingest-processes)")

    def refresh(self, owners: Iterable[Any], now_s: float | None = None) -> None:
        """Recompute the gauges of this worker's owners (at scrape time, so a partition that moved
        away or an owner that stopped closing windows shows at once, not at its next message)."""
        owners = list(owners)
        self.open_incidents.set(sum(len(o.grouper.open_outages()) for o in owners))
        self.keys.set(sum(o.scorer.keyspace.size for o in owners))
        marks = [wm for wm in (o.scorer.closing_watermark() for o in owners) if wm is not None]
        if marks:
            now_s = time.time() if now_s is None else now_s
            self.watermark_delay.set(max(0.0, now_s - min(marks) / 1000.0))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _counter(registry: CollectorRegistry, name: str, doc: str, *labels: str) -> Counter:
    return Counter(name, doc, labels, registry=registry)


def _gauge(registry: CollectorRegistry, name: str, doc: str, *labels: str) -> Gauge:
    return Gauge(name, doc, labels, registry=registry)
