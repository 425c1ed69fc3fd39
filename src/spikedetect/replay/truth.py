"""Ground truth of a simulated stream: which outages happened, and which traps must stay quiet.

The JSON file (``spikedetect.truth/v1``)::

    {"format": "spikedetect.truth/v1", "seed": 1, "scenario": "suite", "scale": 1.0, "peak_scale": 1.0,
     "start": "2026-11-24T00:00:00.000Z", "end": "2026-11-27T00:00:00.000Z", "window_ms": 60000,
     "services": ["instagram", "whatsapp", "facebook", "threads"],
     "outages": [{"id": "widespread-1", "kind": "widespread", "service": "instagram",
                  "start": "...", "end": "...", "regions": ["US/CA/Los Angeles", ...],
                  "must_detect": ["*", "US", "IN", "US/CA/Los Angeles", ...], "large": true,
                  "peak_excess_per_min": 12000.0, "description": "..."}],
     "traps": [{"id": "daily_peak-1", "kind": "daily_peak", "service": "instagram",
                "start": "...", "end": "...", "regions": ["*"], "keys": ["*", "IN"], "description": "..."}],
     "stats": {"events": 1234567, "duplicates": 12345, ...}}

``regions`` are the leaf regions the injection touched (``["*"]`` for a trap on a whole
service); an outage's *affected keys* are those leaves and all their ancestors, ``"*"``
included. ``must_detect`` lists the keys where the outage is clearly visible, most
important first: the first is the one that decides "detected". ``keys`` of a trap are
the keys that must not alarm during its span. ``stats`` is optional.

>>> t = GroundTruth(seed=1, start_ms=0, end_ms=86_400_000)
>>> load_truth_text(dumps_truth(t)) == t
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from spikedetect.core.regions import region_keys
from spikedetect.core.timefmt import format_ts_ms, parse_ts_ms

TRUTH_FORMAT = "spikedetect.truth/v1"


@dataclass(frozen=True)
class OutageTruth:
    """One injected outage."""

    id: str
    kind: str
    service: str
    start_ms: int
    end_ms: int
    regions: tuple[str, ...]
    must_detect: tuple[str, ...]
    large: bool = False
    peak_excess_per_min: float = 0.0
    description: str = ""

    def affected_keys(self) -> frozenset[str]:
        """The affected leaves and all their ancestors, ``"*"`` included."""
        return frozenset(k for region in self.regions for k in region_keys(region))


@dataclass(frozen=True)
class TrapTruth:
    """A stretch of normal-but-tricky traffic that must not open an incident on ``keys``."""

    id: str
    kind: str
    service: str
    start_ms: int
    end_ms: int
    regions: tuple[str, ...]
    keys: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class GroundTruth:
    """Everything a scorer needs to know about a simulated stream."""

    seed: int
    start_ms: int
    end_ms: int
    window_ms: int = 60_000
    scenario: str = ""
    scale: float = 1.0
    peak_scale: float = 1.0
    services: tuple[str, ...] = ()
    outages: tuple[OutageTruth, ...] = ()
    traps: tuple[TrapTruth, ...] = ()
    stats: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def days(self) -> float:
        return (self.end_ms - self.start_ms) / 86_400_000

    def with_stats(self, stats: Mapping[str, Any]) -> GroundTruth:
        return dataclasses.replace(self, stats=dict(stats))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": TRUTH_FORMAT,
            "seed": self.seed,
            "scenario": self.scenario,
            "scale": self.scale,
            "peak_scale": self.peak_scale,
            "start": format_ts_ms(self.start_ms),
            "end": format_ts_ms(self.end_ms),
            "window_ms": self.window_ms,
            "services": list(self.services),
            "outages": [_item_dict(o) for o in self.outages],
            "traps": [_item_dict(t) for t in self.traps],
        }
        if self.stats is not None:
            out["stats"] = dict(self.stats)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroundTruth:
        if data.get("format") != TRUTH_FORMAT:
            raise ValueError(
                f"not a ground truth file: format is {data.get('format')!r}, want {TRUTH_FORMAT!r}"
            )
        return cls(
            seed=int(data.get("seed", 0)),
            start_ms=_ms(data["start"]),
            end_ms=_ms(data["end"]),
            window_ms=int(data.get("window_ms", 60_000)),
            scenario=str(data.get("scenario", "")),
            scale=float(data.get("scale", 1.0)),
            peak_scale=float(data.get("peak_scale", 1.0)),
            services=tuple(data.get("services", ())),
            outages=tuple(
                OutageTruth(
                    id=o["id"],
                    kind=o["kind"],
                    service=o["service"],
                    start_ms=_ms(o["start"]),
                    end_ms=_ms(o["end"]),
                    regions=tuple(o["regions"]),
                    must_detect=tuple(o["must_detect"]),
                    large=bool(o.get("large", False)),
                    peak_excess_per_min=float(o.get("peak_excess_per_min", 0.0)),
                    description=str(o.get("description", "")),
                )
                for o in data.get("outages", ())
            ),
            traps=tuple(
                TrapTruth(
                    id=t["id"],
                    kind=t["kind"],
                    service=t["service"],
                    start_ms=_ms(t["start"]),
                    end_ms=_ms(t["end"]),
                    regions=tuple(t["regions"]),
                    keys=tuple(t["keys"]),
                    description=str(t.get("description", "")),
                )
                for t in data.get("traps", ())
            ),
            stats=data.get("stats"),
        )


def _item_dict(item: OutageTruth | TrapTruth) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if f.name in ("start_ms", "end_ms"):
            out[f.name[:-3]] = format_ts_ms(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def _ms(value: Any) -> int:
    if isinstance(value, int):
        return value
    ms = parse_ts_ms(str(value))
    if ms is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    return ms


def dumps_truth(truth: GroundTruth) -> bytes:
    """The truth as indented JSON bytes (stable key order, trailing newline)."""
    return orjson.dumps(truth.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"


def load_truth_text(text: bytes | str) -> GroundTruth:
    return GroundTruth.from_dict(orjson.loads(text))


def write_truth(truth: GroundTruth, path: str | Path) -> None:
    """Write the truth JSON to ``path``."""
    Path(path).write_bytes(dumps_truth(truth))


def load_truth(path: str | Path) -> GroundTruth:
    """Read a truth JSON file written by :func:`write_truth` (or by hand, same format)."""
    return load_truth_text(Path(path).read_bytes())
