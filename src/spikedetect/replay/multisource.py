"""Replay with several sources (e.g. the partitions of a Kafka topic), judged like the live pipeline.

The live pipeline counts each input partition on its own: a report is late only relative to
its own partition's watermark, and a window closes once every partition's watermark has
passed it. :class:`MultiSourceReplay` drives the core's pieces the same way - one
:class:`~spikedetect.core.counter.WindowCounter` per source and one
:class:`~spikedetect.core.scorer.Scorer` that merges their closed windows - so a topic
replay gives what the live workers gave. With a single source it is exactly
:class:`~spikedetect.replay.runner.Replay`.

>>> from spikedetect.core import DetectorConfig
>>> r = MultiSourceReplay(DetectorConfig(), sources=[0, 1])
>>> r.feed(0, [b'{"ts": 1795651800000, "service": "ig", "region": "US", "category": "feed"}'])
>>> r.feed(1, [b'{"ts": 1795651200000, "service": "ig", "region": "US", "category": "feed"}'])
>>> r.finish(); r.summary.accepted, r.summary.late   # ten minutes behind partition 0, not late in its own
(2, 0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from spikedetect.core import DetectorConfig, Scorer, WindowCounter
from spikedetect.core.pipeline import Output, Pipeline
from spikedetect.core.scorer import WindowHook
from spikedetect.replay.runner import Delivery, OnOutage, OnRegion


class MultiSourceReplay:
    """Several sources through one :class:`~spikedetect.core.pipeline.Pipeline`; incidents and
    dead letters go to callbacks.

    Call :meth:`end_source` when a source has no more input (its open windows are closed
    and it stops holding the others back), and :meth:`finish` at the end of all input.
    """

    def __init__(
        self,
        config: DetectorConfig,
        sources: Iterable[Any],
        *,
        on_incident: OnOutage | None = None,
        on_dead_letter: Callable[[bytes], None] | None = None,
        on_window: WindowHook | None = None,
        on_region: OnRegion | None = None,
    ) -> None:
        self.config = config
        self.pipeline = Pipeline(config, sources, on_window=on_window)
        self.summary = self.pipeline.summary
        self._deliver = Delivery(on_incident, on_region, on_dead_letter)
        self._started = time.perf_counter()

    @property
    def scorer(self) -> Scorer:
        return self.pipeline.scorer

    @property
    def counters(self) -> dict[Any, WindowCounter]:
        return self.pipeline.counters

    def feed(
        self,
        source: Any,
        values: Sequence[bytes],
        fallback_ts_ms: Sequence[int | None] | None = None,
        where: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Count a batch of raw messages of one source; close what every source has passed.

        ``fallback_ts_ms`` (the Kafka record times) is the event time of a message without
        ``ts``; ``where[i]`` names message i's origin in its dead letter.
        """
        base = self.summary.events

        def origin(i: int) -> dict[str, Any]:
            return where[i] if where is not None else {"source": str(source), "line": base + i + 1}

        self._deliver(self.pipeline.feed(source, values, fallback_ts_ms, origin=origin))

    def end_source(self, source: Any) -> Output:
        """No more input from ``source``: close its windows (like ``Detector.flush``) and let
        the scorer stop waiting for it."""
        return self._deliver(self.pipeline.end_source(source))

    def finish(self) -> None:
        """End of all input: end every source, close every window that holds data, fill the summary."""
        self._deliver(self.pipeline.finish())
        self.summary.seconds = time.perf_counter() - self._started


__all__ = ["MultiSourceReplay"]
