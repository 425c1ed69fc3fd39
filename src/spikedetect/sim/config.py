"""What a simulation generates (:class:`SimulationConfig`: the same config always gives the same
bytes), what it has emitted so far (:class:`SimulationStats`) and one block of its stream
(:class:`Batch`).

>>> SimulationConfig(days=2, scenario="quiet").minutes
2880
>>> SimulationConfig(seed=-1)
Traceback (most recent call last):
...
ValueError: seed must be a non-negative integer, got -1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spikedetect.sim.suite import parse_scenario
from spikedetect.sim.traffic import DEFAULT_START_MS, MINUTE_MS


@dataclass(frozen=True)
class SimulationConfig:
    """What to generate. The same config always gives the same bytes."""

    seed: int = 1
    start_ms: int = DEFAULT_START_MS
    days: float = 3.0  # rounded to whole minutes
    scale: float = 1.0  # normal volume multiplier
    peak_scale: float = 1.0  # multiplier of the absolute outage sizes (the widespread peak)
    scenario: str = "suite"
    duplicate_rate: float = 0.01
    max_lateness_ms: int = 20_000
    chunk_minutes: int = 10  # generation block; part of the determinism contract

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if self.start_ms % MINUTE_MS:
            raise ValueError("start must be a whole minute")
        if not 0 < self.days <= 60 or round(self.days * 1440) < 1:
            raise ValueError(f"days must be in (0, 60] and at least a minute, got {self.days}")
        if self.scale <= 0 or self.peak_scale < 0:
            raise ValueError("scale must be positive and peak_scale not negative")
        if not 0 <= self.duplicate_rate < 0.5:
            raise ValueError(f"duplicate_rate must be in [0, 0.5), got {self.duplicate_rate}")
        if not 0 <= self.max_lateness_ms <= MINUTE_MS:
            raise ValueError(f"max_lateness_ms must be in [0, 60000], got {self.max_lateness_ms}")
        if self.chunk_minutes < 1:
            raise ValueError("chunk_minutes must be at least 1")
        parse_scenario(self.scenario)

    @property
    def minutes(self) -> int:
        return round(self.days * 1440)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.minutes * MINUTE_MS


@dataclass
class SimulationStats:
    """Counts of what was emitted so far (lines, re-sends, per service, per injection)."""

    events: int = 0
    duplicates: int = 0
    by_service: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)  # component id -> reports (no re-sends)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "duplicates": self.duplicates,
            "by_service": dict(self.by_service),
            "injected": dict(self.injected),
        }


@dataclass(frozen=True)
class Batch:
    """Lines (JSON without newline) in emission order, their regions, and the simulated clock."""

    lines: list[bytes]
    regions: list[str]
    until_ms: int  # every event with ts before until_ms - max_lateness_ms has been emitted
