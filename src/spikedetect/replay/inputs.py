"""What ``spikedetect replay`` reads: a JSONL file, a Kafka topic range, or a count series.

Each input can be run more than once (``--sweep`` runs one replay per setting): files
are re-read (stdin is kept in memory), a topic range is read into memory on the first
run, a series is parsed once.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from spikedetect.core import DetectorConfig
from spikedetect.files.faults import Fault, InputError
from spikedetect.files.progress import Progress
from spikedetect.files.sources import BatchReader, count_bytes, open_binary
from spikedetect.replay.runner import OnOutage, OnRegion, Replay, ReplaySummary
from spikedetect.replay.series import (
    SERIES_DETECTOR,
    SeriesData,
    SeriesError,
    choose_value_scale,
    infer_window_ms,
    read_series,
    replay_series,
)
from spikedetect.replay.topic_source import (
    Bounds,
    TopicBatch,
    TopicRange,
    TopicReplay,
    load_topic,
    replay_topic,
)

OnIncident = OnOutage
OnDead = Callable[[bytes], None]


@dataclass
class FileInput:
    """Report events in JSONL (``.gz`` ok; ``-`` is stdin, kept in memory to allow re-runs)."""

    path: str
    batch_size: int = 20_000
    _cached: tuple[list[tuple[Sequence[bytes], Sequence[int]]], BatchReader] | None = field(default=None, repr=False)

    def prepare(self, values: dict[str, Any]) -> dict[str, Any]:
        return values

    def run(
        self,
        config: DetectorConfig,
        *,
        on_incident: OnIncident | None = None,
        on_dead_letter: OnDead | None = None,
        progress: bool = False,
        on_region: OnRegion | None = None,
    ) -> ReplaySummary:
        """Replay the file; a read fault ends the input early and is listed in ``summary.faults``."""
        name = "<stdin>" if self.path == "-" else self.path
        runner = Replay(config, on_incident=on_incident, on_dead_letter=on_dead_letter, source_name=self.path,
                        on_region=on_region)
        if self.path == "-":
            if self._cached is None:
                with open_binary("-") as stream:
                    reader = BatchReader(stream, name, self.batch_size, spans=True)
                    self._cached = ([(b, reader.line_numbers) for b in reader], reader)
            batches, reader = self._cached
            for batch, numbers in batches:
                runner.feed(batch, line_numbers=numbers)
        else:
            with open_binary(self.path) as stream, Progress(progress, "replay", "events") as update:
                total = count_bytes(self.path)  # gzip: progress in compressed bytes
                reader = BatchReader(stream, name, self.batch_size, spans=True)
                for batch in reader:
                    runner.feed(batch, line_numbers=reader.line_numbers)
                    update(reader.position(), total, runner.summary.events)
        runner.finish()
        if reader.fault is not None:
            runner.summary.faults.append(str(reader.fault))
        elif reader.cut_mid_line and runner.last_reject_line == reader.lines:
            runner.summary.faults.append(str(Fault(name, reader.lines, "input ends early: the last line is cut "
                                                   "short (no newline at the end, not a whole report)")))  # fmt: skip
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
        on_region: OnRegion | None = None,
    ) -> ReplaySummary:
        callbacks = {"on_incident": on_incident, "on_dead_letter": on_dead_letter, "on_region": on_region}
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
    drops: bool = True  # also open drop incidents (core/drops.py)
    _data: SeriesData | None = field(default=None, repr=False)

    @property
    def data(self) -> SeriesData:
        if self._data is None:
            name = "<stdin>" if self.path == "-" else self.path
            if self.path == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(self.path, "rb") as f:
                    raw = f.read()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                line = raw[: exc.start].count(b"\n") + 1
                raise InputError(name, line, f"not UTF-8 text (byte {raw[exc.start]:#04x}): not a CSV") from exc
            try:
                self._data = read_series(io.StringIO(text, newline=""))
            except SeriesError as exc:
                raise InputError(name, exc.line, str(exc)) from exc
        return self._data

    def prepare(self, values: dict[str, Any]) -> dict[str, Any]:
        """Fill in the window from the rows' spacing and the value model from the values,
        unless they were given."""
        if values.get("window_ms") is None:
            try:
                values = {**values, "window_ms": infer_window_ms(self.data.rows)}
            except SeriesError as exc:
                raise InputError("<stdin>" if self.path == "-" else self.path, exc.line, str(exc)) from exc
        if values.get("value_scale") is None:
            values = {**values, "value_scale": choose_value_scale(self.data.rows)}
        if values.get("detector") is None:
            values = {**values, "detector": SERIES_DETECTOR}
        return values

    def run(
        self,
        config: DetectorConfig,
        *,
        on_incident: OnIncident | None = None,
        on_dead_letter: OnDead | None = None,
        progress: bool = False,
        on_region: OnRegion | None = None,
    ) -> ReplaySummary:
        from spikedetect.replay.runner import dead_letter_line

        if on_dead_letter is not None:
            for line, reason, raw in self.data.rejects:
                on_dead_letter(dead_letter_line(raw.encode(), reason, {"source": self.path, "line": line}))
        return replay_series(
            self.data, config, service=self.service, region=self.region, on_incident=on_incident,
            on_region=on_region, drops=self.drops,
        )


Input = FileInput | TopicInput | SeriesInput

__all__ = ["FileInput", "Input", "Progress", "SeriesInput", "TopicInput"]
