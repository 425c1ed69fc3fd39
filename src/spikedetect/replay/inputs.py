"""What ``spikedetect replay`` reads: a JSONL file, a Kafka topic range, or a count series.

Each input can be run more than once (``--sweep`` runs one replay per setting): files
are re-read (stdin is kept in memory), a topic range is read into memory on the first
run, a series is parsed once.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from spikedetect.core import DetectorConfig, IncidentEvent
from spikedetect.replay.runner import Replay, ReplaySummary
from spikedetect.replay.series import (
    SeriesData,
    choose_value_scale,
    infer_window_ms,
    read_series,
    replay_series,
)
from spikedetect.replay.sources import count_bytes, iter_batches, open_binary
from spikedetect.replay.topic_source import (
    Bounds,
    TopicBatch,
    TopicRange,
    TopicReplay,
    load_topic,
    replay_topic,
)

OnIncident = Callable[[IncidentEvent], None]
OnDead = Callable[[bytes], None]


class Progress:
    """A rich progress bar on stderr (a no-op when disabled); ``update(done, total)``."""

    def __init__(self, enabled: bool, label: str, unit: str = "events") -> None:
        self.enabled = enabled
        self.label = label
        self.unit = unit

    def __enter__(self) -> Callable[[int, int | None, int], None]:
        if not self.enabled:
            return lambda *_: None
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn(self.label), BarColumn(), TextColumn("{task.fields[n]:,} " + self.unit),
                            TimeRemainingColumn(), transient=True)  # fmt: skip
        self.bar.__enter__()
        task = self.bar.add_task(self.label, total=None, n=0)

        def update(done: int, total: int | None, n: int) -> None:
            self.bar.update(task, completed=done, total=total, n=n)

        return update

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


@dataclass
class FileInput:
    """Report events in JSONL (``.gz`` ok; ``-`` is stdin, kept in memory to allow re-runs)."""

    path: str
    batch_size: int = 20_000
    _cached: list[list[bytes]] | None = field(default=None, repr=False)

    def prepare(self, values: dict[str, Any]) -> dict[str, Any]:
        return values

    def run(
        self,
        config: DetectorConfig,
        *,
        on_incident: OnIncident | None = None,
        on_dead_letter: OnDead | None = None,
        progress: bool = False,
    ) -> ReplaySummary:
        runner = Replay(config, on_incident=on_incident, on_dead_letter=on_dead_letter, source_name=self.path)
        if self.path == "-":
            if self._cached is None:
                with open_binary("-") as stream:
                    self._cached = list(iter_batches(stream, self.batch_size))
            for batch in self._cached:
                runner.feed(batch)
        else:
            with open_binary(self.path) as stream, Progress(progress, "replay", "events") as update:
                # a plain file's size is the total; gzip's uncompressed size is unknown
                total = None if isinstance(cast(object, stream), gzip.GzipFile) else count_bytes(self.path)
                done = 0
                for batch in iter_batches(stream, self.batch_size):
                    runner.feed(batch)
                    done += sum(len(x) + 1 for x in batch)
                    update(done if total else 0, total, runner.summary.events)
        runner.finish()
        return runner.summary


@dataclass
class TopicInput:
    """A Kafka topic between two times or offsets, one source per partition."""

    range: TopicRange
    _loaded: tuple[Bounds, list[TopicBatch]] | None = field(default=None, repr=False)
    keep_in_memory: bool = False

    def prepare(self, values: dict[str, Any]) -> dict[str, Any]:
        return values

    def run(
        self,
        config: DetectorConfig,
        *,
        on_incident: OnIncident | None = None,
        on_dead_letter: OnDead | None = None,
        progress: bool = False,
    ) -> ReplaySummary:
        callbacks = {"on_incident": on_incident, "on_dead_letter": on_dead_letter}
        if self.keep_in_memory:
            if self._loaded is None:
                self._loaded = load_topic(self.range)
            bounds, batches = self._loaded
            driver = TopicReplay(self.range.topic, bounds, config, **callbacks)
            for b in batches:
                driver.feed(b)
            return driver.finish().summary
        with Progress(progress, f"topic {self.range.topic}", "records") as update:
            runner = replay_topic(
                self.range, config, progress=lambda done, total: update(done, total, done), **callbacks
            )
        return runner.summary


@dataclass
class SeriesInput:
    """A ``timestamp,value`` CSV scored as the total of one key."""

    path: str
    service: str = "series"
    region: str = "*"
    _data: SeriesData | None = field(default=None, repr=False)

    @property
    def data(self) -> SeriesData:
        if self._data is None:
            if self.path == "-":
                self._data = read_series(sys.stdin)
            else:
                with open(self.path, encoding="utf-8", newline="") as f:
                    self._data = read_series(f)
        return self._data

    def prepare(self, values: dict[str, Any]) -> dict[str, Any]:
        """Fill in the window from the rows' spacing and the value model from the values,
        unless they were given."""
        if values.get("window_ms") is None:
            values = {**values, "window_ms": infer_window_ms(self.data.rows)}
        if values.get("value_scale") is None:
            values = {**values, "value_scale": choose_value_scale(self.data.rows)}
        return values

    def run(
        self,
        config: DetectorConfig,
        *,
        on_incident: OnIncident | None = None,
        on_dead_letter: OnDead | None = None,
        progress: bool = False,
    ) -> ReplaySummary:
        from spikedetect.replay.runner import dead_letter_line

        if on_dead_letter is not None:
            for line, reason, raw in self.data.rejects:
                on_dead_letter(dead_letter_line(raw.encode(), reason, {"source": self.path, "line": line}))
        return replay_series(
            self.data, config, service=self.service, region=self.region, on_incident=on_incident
        )


Input = FileInput | TopicInput | SeriesInput

__all__ = ["FileInput", "Input", "Progress", "SeriesInput", "TopicInput"]
