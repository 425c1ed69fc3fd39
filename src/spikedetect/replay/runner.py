"""The offline driver of a file: batches into the core's :class:`~spikedetect.core.pipeline.Pipeline`,
incidents and dead letters out to callbacks.

Replay never touches a wall clock (the progress bar and the summary's seconds aside), and
at the end of input it closes every window that holds data.

>>> from spikedetect.core import DetectorConfig
>>> r = Replay(DetectorConfig())
>>> r.feed([b'{"ts": 1795651200000, "service": "ig", "region": "US", "category": "feed"}', b"oops"])
>>> r.finish(); r.summary.events, r.summary.accepted, r.summary.rejected
(2, 1, 1)

Region incidents (``spikedetect.incident/v1``) are grouped into outage incidents
(``spikedetect.incident/v2``, :mod:`spikedetect.core.outages`): ``on_incident`` gets the
outage events, ``on_region`` the region events, each with its ``group_id``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from spikedetect.core import DetectorConfig, IncidentEvent
from spikedetect.core.pipeline import Output, Pipeline, V2Event
from spikedetect.core.scorer import WindowHook
from spikedetect.core.summary import Summary

OnOutage = Callable[[V2Event], None]
OnRegion = Callable[[IncidentEvent], None]
ReplaySummary = Summary  # the core's one summary type (its old name here)


def dead_letter_line(raw: bytes, reason: str, where: dict[str, Any]) -> bytes:
    """One JSONL dead letter: reason, origin and the original bytes (text when UTF-8)."""
    try:
        value: dict[str, str] = {"value": raw.decode("utf-8")}
    except UnicodeDecodeError:
        value = {"value_b64": base64.b64encode(raw).decode()}
    return orjson.dumps({"reason": reason, **where, **value})


class Delivery:
    """Hands a pipeline's outputs to a driver's callbacks: dead letters, region events, then
    the main stream (outage and signal events)."""

    def __init__(self, on_incident: OnOutage | None = None, on_region: OnRegion | None = None,
                 on_dead_letter: Callable[[bytes], None] | None = None) -> None:
        self.on_incident = on_incident
        self.on_region = on_region
        self.on_dead_letter = on_dead_letter

    def __call__(self, out: Output) -> Output:
        if self.on_dead_letter is not None:
            for origin, raw, reason in out.dead:
                self.on_dead_letter(dead_letter_line(raw, reason, origin))
        if self.on_region is not None:
            for r in out.incidents:
                self.on_region(r)
        if self.on_incident is not None:
            for e in out.events:
                self.on_incident(e)
        return out


class Replay:
    """One source (a file) through a :class:`Pipeline`; incidents and dead letters go to callbacks.

    ``on_window`` (or :meth:`watch_windows`) gets every closed window's scores; ``signals``
    turns the composition and ingest-gap signals off when False."""

    def __init__(self, config: DetectorConfig, *, on_incident: OnOutage | None = None,
                 on_dead_letter: Callable[[bytes], None] | None = None, source_name: str = "-",
                 on_region: OnRegion | None = None, on_window: WindowHook | None = None,
                 signals: bool = True) -> None:
        self.pipeline = Pipeline(config, sources=(0,), signals=signals, on_window=on_window)
        self.summary = self.pipeline.summary
        self._deliver = Delivery(on_incident, on_region, on_dead_letter)
        self.source_name = source_name
        self.last_reject_line = 0
        self._started = time.perf_counter()

    def watch_windows(self, hook: WindowHook) -> None:
        """Register a hook for every closed window's scores (:meth:`Pipeline.watch_windows`)."""
        self.pipeline.watch_windows(hook)

    def feed(self, values: Sequence[bytes], fallback_ts_ms: Sequence[int | None] | None = None,
             where: Iterable[dict[str, Any]] | None = None, line_numbers: Sequence[int] | None = None) -> None:
        base = self.summary.events
        places = list(where) if where is not None else None

        def origin(i: int) -> dict[str, Any]:
            if places:
                return places[i]
            return {"source": self.source_name, "line": line_numbers[i] if line_numbers is not None else base + i + 1}

        self._note(self._deliver(self.pipeline.feed(0, values, fallback_ts_ms, origin=origin)))

    def _note(self, out: Output) -> None:
        for origin, _, _ in out.dead:
            line = origin.get("line") if isinstance(origin, dict) else None
            if isinstance(line, int):
                self.last_reject_line = max(self.last_reject_line, line)

    def finish(self) -> None:
        self._note(self._deliver(self.pipeline.finish()))
        self.summary.seconds = time.perf_counter() - self._started
