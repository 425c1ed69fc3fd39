"""Configuration of the detection core, validated when it is built.

>>> cfg = DetectorConfig(window_ms=60_000)
>>> cfg.lateness_ms          # default: two windows
120000
>>> DetectorConfig(window_ms=0)
Traceback (most recent call last):
...
spikedetect.core.errors.ConfigError: window_ms must be a positive whole number of milliseconds, got 0
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from spikedetect.core.errors import ConfigError

ParamValue = float | int | str | bool


@dataclass(frozen=True)
class DetectorSpec:
    """Which baseline model scores windows, with its parameters.

    >>> DetectorSpec.parse("ewma:alpha=0.2").params
    (('alpha', 0.2),)
    """

    name: str = "seasonal"
    params: tuple[tuple[str, ParamValue], ...] = ()

    @classmethod
    def parse(cls, text: str) -> DetectorSpec:
        """``name`` or ``name:key=value,key=value`` (values parsed as numbers when they are)."""
        name, _, rest = text.partition(":")
        params: dict[str, ParamValue] = {}
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, sep, raw = item.partition("=")
            if not sep:
                raise ConfigError(f"detector parameter {item!r} is not key=value")
            params[key.strip()] = _number(raw.strip())
        return cls(name.strip(), tuple(sorted(params.items())))

    def param_dict(self) -> dict[str, ParamValue]:
        return dict(self.params)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.params)


def _number(raw: str) -> ParamValue:
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that changes what the core outputs. Defaults suit 1-minute report counts."""

    # windows and time
    window_ms: int = 60_000
    lateness_ms: int = -1  # -1: two windows
    max_future_skew_ms: int = 3_600_000
    watermark_quorum: int = 8  # reports that must agree before event time advances (core/frontier.py)
    # input limits
    max_value_bytes: int = 8192
    max_region_depth: int = 4
    max_keys_per_service: int = 100_000
    max_breakdown: int = 24
    retire_after_ms: int = 7 * 86_400_000
    # baseline model
    detector: DetectorSpec = field(default_factory=DetectorSpec)
    # incident policy (score = -log10 of the tail probability of the observed count)
    open_threshold: float = 6.0
    open_windows: int = 2
    extreme_threshold: float = 60.0
    extreme_ratio: float = 10.0  # or twice open_threshold at this many times the expected count
    # a sum over sustained_sharp_windows windows or more at this many times its expectation opens
    # at once: its windows are the confirmation a second window would give
    sustained_sharp_ratio: float = 5.0
    sustained_sharp_windows: int = 10
    close_threshold: float = 3.0
    close_windows: int = 5
    min_excess: float = 8.0
    min_excess_ratio: float = 1.0
    elevated_learn_weight: float = 0.1  # how much a window above close_threshold still teaches
    update_every_windows: int = 5
    max_incident_ms: int = 12 * 3_600_000
    level_shift_ms: int = 3 * 3_600_000  # an incident still raised after this closes as a level shift
    relearn_ms: int = 6 * 3_600_000  # after a max_incident_ms close the key learns, and cannot open, this long
    top_children: int = 5
    # input values: 1.0 = counts of reports; another value = a continuous measurement scored as
    # value_scale units per input unit (relative noise dominates), reported back in input units
    value_scale: float = 1.0

    def __post_init__(self) -> None:
        _positive_int(self, "window_ms")
        if self.lateness_ms == -1:
            object.__setattr__(self, "lateness_ms", 2 * self.window_ms)
        _non_negative_int(self, "lateness_ms")
        for name in ("max_future_skew_ms", "watermark_quorum", "max_value_bytes", "max_keys_per_service", "max_breakdown",
                     "retire_after_ms", "open_windows", "close_windows", "update_every_windows",
                     "max_incident_ms", "level_shift_ms", "relearn_ms", "top_children", "sustained_sharp_windows"):
            _positive_int(self, name)
        if not 1 <= self.max_region_depth <= 4:
            raise ConfigError(f"max_region_depth must be 1..4, got {self.max_region_depth}")
        for name in ("open_threshold", "extreme_threshold", "extreme_ratio", "close_threshold", "min_excess", "min_excess_ratio",
                     "elevated_learn_weight", "sustained_sharp_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value != value or value < 0:
                raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.value_scale, int | float) or not 0 < self.value_scale < float("inf"):
            raise ConfigError(f"value_scale must be a positive number, got {self.value_scale!r}")
        object.__setattr__(self, "value_scale", float(self.value_scale))
        if self.close_threshold > self.open_threshold:
            raise ConfigError("close_threshold must not exceed open_threshold")
        if self.extreme_threshold < self.open_threshold:
            raise ConfigError("extreme_threshold must not be below open_threshold")
        if isinstance(self.detector, str):
            object.__setattr__(self, "detector", DetectorSpec.parse(self.detector))

    @property
    def params_hash(self) -> str:
        """A short stable hash of everything that changes detection: attach it to outputs."""
        values = self.to_dict()
        for name, default in _HASHED_WHEN_CHANGED.items():  # so hashes of earlier outputs stay valid
            if values[name] == default:
                del values[name]
        blob = orjson.dumps(values, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["detector"] = str(self.detector)
        return out

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DetectorConfig:
        """Build from strings or numbers (CLI flags, env vars, JSON); unknown names are errors."""
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in known:
                raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(known))}")
            if key == "detector":
                kwargs[key] = raw if isinstance(raw, DetectorSpec) else DetectorSpec.parse(str(raw))
                continue
            want = int if known[key].type in ("int", int) else float
            try:
                if want is int:  # whole numbers only: "1.5" or "inf" must not become 1 or an OverflowError
                    number = float(raw) if isinstance(raw, str) else raw
                    if isinstance(number, float) and not number.is_integer():
                        raise ValueError(f"{number!r} is not a whole number")
                    kwargs[key] = int(number)
                else:
                    kwargs[key] = float(raw)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{key} must be a number, got {raw!r}") from exc
        return cls(**kwargs)

    def replace(self, **changes: Any) -> DetectorConfig:
        return dataclasses.replace(self, **changes)


# Settings added after outputs carried a params_hash: they enter the hash only when changed.
_HASHED_WHEN_CHANGED: dict[str, Any] = {"watermark_quorum": 8, "sustained_sharp_ratio": 5.0,
                                        "sustained_sharp_windows": 10}


# every detector setting's name, in declaration order: what flags, environment variables, config
# files and --sweep accept
DETECTOR_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(DetectorConfig))


def _positive_int(cfg: DetectorConfig, name: str) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        unit = " of milliseconds" if name.endswith("_ms") else ""
        raise ConfigError(f"{name} must be a positive whole number{unit}, got {value!r}")


def _non_negative_int(cfg: DetectorConfig, name: str) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative whole number, got {value!r}")
