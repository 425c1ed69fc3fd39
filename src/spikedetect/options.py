"""Click options shared by commands: one flag per DetectorConfig field."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import click

from spikedetect.core.config import DetectorConfig
from spikedetect.core.errors import ConfigError

DETECTOR_FIELDS = [f.name for f in dataclasses.fields(DetectorConfig)]

_HELP = {
    "window_ms": "tumbling window length",
    "lateness_ms": "allowed lateness (default two windows)",
    "detector": "baseline model: seasonal or ewma, optionally name:key=value,...",
    "open_threshold": "score (-log10 tail probability) that counts a window as anomalous",
    "open_windows": "consecutive anomalous windows that open an incident",
    "extreme_threshold": "score that opens an incident in one window",
    "close_threshold": "score under which a window counts as calm",
    "close_windows": "consecutive calm windows that close an incident",
    "min_excess": "reports above expected a window needs to be anomalous",
    "min_excess_ratio": "observed must exceed expected by this factor too (1.0 = double)",
    "extreme_ratio": "one window at this many times expected (and twice open-threshold) opens an incident",
    "level_shift_ms": "an incident still raised this long closes as a level shift; the baseline adopts it",
    "value_scale": "units per input value (1 = counts; --series picks one for non-integer values)",
}


def option_type(f: dataclasses.Field[Any]) -> Any:
    return {"int": int, "float": float, "bool": bool}.get(str(f.type), str)


def detector_options(func: Callable[..., Any], *, env_hint: bool = False) -> Callable[..., Any]:
    """Add ``--window-ms``, ``--detector``, ``--open-threshold`` ... (None = default)."""
    for f in reversed(dataclasses.fields(DetectorConfig)):
        text = _HELP.get(f.name, f.name.replace("_", " "))
        if env_hint:
            text += f" [env SPIKEDETECT_{f.name.upper()}]"
        func = click.option("--" + f.name.replace("_", "-"), f.name, type=option_type(f), default=None,
                            help=text)(func)
    return func


def detector_config(values: dict[str, Any]) -> DetectorConfig:
    """A validated DetectorConfig from option values (None values left at their default)."""
    try:
        return DetectorConfig.from_mapping({k: v for k, v in values.items() if k in DETECTOR_FIELDS and v is not None})
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
