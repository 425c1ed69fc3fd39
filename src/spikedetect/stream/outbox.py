"""What closing windows produce for the publisher: the outbox, window summaries, late records.

An owner collects its outage and region incident events, dead letters and window summaries
in an :class:`Outbox`; the publisher sends them all and waits for the broker's acks before
the owner writes its state (see :mod:`spikedetect.stream.owner`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from spikedetect.core.incidents import IncidentEvent
from spikedetect.core.outage_events import OutageEvent
from spikedetect.core.scorer import ClosedKeys, LatePartial
from spikedetect.core.signal_events import SignalEvent
from spikedetect.core.timefmt import format_ts_ms

DeadLetter = tuple[bytes, list[tuple[str, bytes]]]


@dataclass
class Outbox:
    """What closing windows produced, published (and acknowledged) before state is written."""

    events: list[OutageEvent | SignalEvent] = field(default_factory=list)  # the main stream (v2)
    dead: list[DeadLetter] = field(default_factory=list)
    windows: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, spikedetect.window/v1)
    regions: list[IncidentEvent] = field(default_factory=list)  # region incidents, with group_id

    def __bool__(self) -> bool:
        return bool(self.events or self.dead or self.windows or self.regions)


Publish = Callable[[Outbox], Any]


def window_summaries(closed: ClosedKeys) -> list[tuple[bytes, bytes]]:
    """``spikedetect.window/v1`` messages: per service, every key with reports in the window."""
    by_service: dict[str, dict[str, list[float]]] = {}
    for i in np.flatnonzero(closed.observed > 0).tolist():
        svc, region = closed.keys[i]
        by_service.setdefault(svc, {})[region] = [float(closed.observed[i]), round(float(closed.expected[i]), 3),
                                                  round(float(closed.score[i]), 3)]
    start = format_ts_ms(closed.ws_ms)
    return [(f"{svc}|{closed.ws_ms}".encode(),
             orjson.dumps({"schema": "spikedetect.window/v1", "service": svc, "window_start": start,
                           "ws_ms": closed.ws_ms, "keys": keys}, option=orjson.OPT_SORT_KEYS))
            for svc, keys in sorted(by_service.items())]


def late_record(q: int, lp: LatePartial) -> DeadLetter:
    """The dead letter of a partial that came after its window closed (its reports are lost)."""
    body = {"reason": "late_partial", "owner_partition": q, "source_partition": lp.source,
            "ws_ms": lp.ws_ms, "reports": lp.reports}
    return orjson.dumps(body), [("spikedetect.reason", b"late_partial")]


def input_dead_letter(topic: str, partition: int, rec: Any, reason: str) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    """The key and headers of a rejected input record's dead letter (its value goes as it came)."""
    headers = [
        ("spikedetect.reason", reason.encode()),
        ("spikedetect.topic", topic.encode()),
        ("spikedetect.partition", str(partition).encode()),
        ("spikedetect.offset", str(rec.offset).encode()),
        ("spikedetect.timestamp", str(rec.timestamp).encode()),
    ]
    # a record with neither key nor value (a keyless tombstone) is legal Kafka, but aiokafka
    # refuses to send one: the dead letter keeps the null value and gets an empty key
    key = rec.key if rec.key is not None or rec.value is not None else b""
    return key, headers
