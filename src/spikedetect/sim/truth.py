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
class SignalTruth:
    """A composition shift or an ingest gap that must raise its own kind of incident (issue 18):
    ``keys`` must be found (composition: member regions; ingest gap: ``"*"``), ``sources`` the
    silent producers of a gap, ``category`` the category whose share rose."""

    id: str
    kind: str  # "composition" or "ingest_gap"
    service: str
    start_ms: int
    end_ms: int
    keys: tuple[str, ...]
    sources: tuple[str, ...] = ()
    category: str = ""
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
    signals: tuple[SignalTruth, ...] = ()  # written only when there are some

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
        if self.signals:
            out["signals"] = [_item_dict(x) for x in self.signals]
        if self.stats is not None:
            out["stats"] = dict(self.stats)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroundTruth:
        """Build and validate; a ValueError names the item and field that is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"not a ground truth file: a JSON {type(data).__name__}, want an object")
        if data.get("format") != TRUTH_FORMAT:
            raise ValueError(
                f"not a ground truth file: format is {data.get('format')!r}, want {TRUTH_FORMAT!r}"
            )
        truth = cls(
            seed=_int(data, "seed", 0),
            start_ms=_ms(_req(data, "start")),
            end_ms=_ms(_req(data, "end")),
            window_ms=_int(data, "window_ms", 60_000),
            scenario=str(data.get("scenario", "")),
            scale=_float(data, "scale", 1.0),
            peak_scale=_float(data, "peak_scale", 1.0),
            services=_strs(data, "services"),
            outages=tuple(_item(f"outages[{i}]", o, _outage) for i, o in enumerate(_list(data, "outages"))),
            traps=tuple(_item(f"traps[{i}]", t, _trap) for i, t in enumerate(_list(data, "traps"))),
            stats=data.get("stats") if isinstance(data.get("stats"), Mapping) else None,
            signals=tuple(_item(f"signals[{i}]", x, _signal) for i, x in enumerate(_list(data, "signals"))),
        )
        if truth.window_ms <= 0:
            raise ValueError(f"window_ms must be a positive number of milliseconds, got {truth.window_ms}")
        if truth.end_ms <= truth.start_ms:
            raise ValueError("end must be after start")
        return truth


def _outage(o: Mapping[str, Any]) -> OutageTruth:
    return OutageTruth(id=_str(o, "id"), kind=_str(o, "kind"), service=_str(o, "service"),
                       start_ms=_ms(_req(o, "start")), end_ms=_ms(_req(o, "end")), regions=_strs(o, "regions"),
                       must_detect=_strs(o, "must_detect", required=True), large=bool(o.get("large", False)),
                       peak_excess_per_min=_float(o, "peak_excess_per_min", 0.0),
                       description=str(o.get("description", "")))  # fmt: skip


def _trap(t: Mapping[str, Any]) -> TrapTruth:
    return TrapTruth(id=_str(t, "id"), kind=_str(t, "kind"), service=_str(t, "service"),
                     start_ms=_ms(_req(t, "start")), end_ms=_ms(_req(t, "end")), regions=_strs(t, "regions"),
                     keys=_strs(t, "keys"), description=str(t.get("description", "")))  # fmt: skip


def _signal(t: Mapping[str, Any]) -> SignalTruth:
    return SignalTruth(id=_str(t, "id"), kind=_str(t, "kind"), service=_str(t, "service"),
                       start_ms=_ms(_req(t, "start")), end_ms=_ms(_req(t, "end")), keys=_strs(t, "keys"),
                       sources=_strs(t, "sources"), category=str(t.get("category", "")),
                       description=str(t.get("description", "")))  # fmt: skip


def _item(where: str, value: Any, build: Any) -> Any:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: not an object")
    try:
        item = build(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    if item.end_ms < item.start_ms:
        raise ValueError(f"{where}: end is before start")
    return item


def _req(d: Mapping[str, Any], key: str) -> Any:
    if key not in d:
        raise ValueError(f"missing {key!r}")
    return d[key]


def _str(d: Mapping[str, Any], key: str) -> str:
    value = _req(d, key)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}"[:120])
    return value


def _strs(d: Mapping[str, Any], key: str, required: bool = False) -> tuple[str, ...]:
    value = _req(d, key) if required else d.get(key, ())
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings, got {value!r}"[:120])
    return tuple(value)


def _list(d: Mapping[str, Any], key: str) -> list[Any]:
    value = d.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list, got {value!r}"[:120])
    return value


def _int(d: Mapping[str, Any], key: str, default: int) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be a whole number, got {value!r}"[:120])
    return value


def _float(d: Mapping[str, Any], key: str, default: float) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"{key} must be a number, got {value!r}"[:120])
    return float(value)


def _item_dict(item: OutageTruth | TrapTruth | SignalTruth) -> dict[str, Any]:
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
    if isinstance(value, int) and not isinstance(value, bool):
        if not -62_135_596_800_000 <= value <= 253_402_300_799_999:
            raise ValueError(f"{value} is not a time (epoch ms of the years 1 to 9999)")
        return value
    if not isinstance(value, str):
        raise ValueError(f"not an RFC 3339 time: {value!r}"[:120])
    ms = parse_ts_ms(value)
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
    """Read a truth JSON file written by :func:`write_truth` (or by hand, same format).

    Raises :class:`~spikedetect.files.faults.InputError` (file and line) when it cannot be used.
    """
    from spikedetect.files.faults import InputError

    name = str(path)
    raw = Path(path).read_bytes()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(name, exc.lineno, f"not JSON ({exc.msg} at column {exc.colno})") from exc
    try:
        return GroundTruth.from_dict(data)
    except ValueError as exc:
        why = str(exc)
        raise InputError(name, 0, why if why.startswith("not a ground truth") else f"not a usable ground truth: {why}") from exc
