"""Click options shared by commands: one flag per DetectorConfig field, ``--config``, sanity warnings.

``replay`` and ``report`` build their detector exactly as ``worker`` does
(:func:`~spikedetect.stream.settings.detector_values`): defaults < ``--config FILE`` <
``SPIKEDETECT_*`` environment < flags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import click

from spikedetect.core.config import DETECTOR_FIELDS, DetectorConfig
from spikedetect.core.errors import ConfigError
from spikedetect.kafka_clients import KafkaConnection

DETECTOR_HELP = {
    "window_ms": "Length of the event-time tumbling windows reports are counted in (ms).",
    "lateness_ms": "Allowed lateness (ms): a report older than the newest minus this is late (-1: two windows).",
    "max_future_skew_ms": "Reports further than this ahead of the source's event-time frontier are rejected (ms).",
    "watermark_quorum": "Reports that must agree before a source's event time advances (1: the newest report alone).",
    "max_value_bytes": "Reports longer than this many bytes are rejected.",
    "max_region_depth": "Deepest region level counted (1 country .. 4 city-level).",
    "max_keys_per_service": "Most keys (regions) one service may have; reports for new keys beyond it are rejected.",
    "max_breakdown": "Most categories and sources an incident event lists.",
    "retire_after_ms": "A key without reports for this long is forgotten (ms).",
    "detector": "Baseline model: seasonal or ewma, optionally with parameters, e.g. seasonal:half_life_days=21.",
    "open_threshold": "Score (-log10 tail probability) at which a window counts as anomalous.",
    "open_windows": "Consecutive anomalous windows that open an incident.",
    "extreme_threshold": "Score that opens an incident after a single window.",
    "close_threshold": "Score under which a window counts as calm.",
    "close_windows": "Consecutive calm windows that close an incident.",
    "min_excess": "Reports above the expected count a window needs to be anomalous.",
    "min_excess_ratio": "The observed count must also exceed expected by this factor (1.0 = double).",
    "extreme_ratio": "One window at this many times expected (and twice open_threshold) opens an incident.",
    "sustained_sharp_ratio": "A sum over sustained-sharp-windows windows at this many times expected opens at once.",
    "sustained_sharp_windows": "Shortest summed horizon (windows; 10 or 30 are summed) the sustained-sharp rule looks at.",
    "level_shift_ms": "An incident still raised this long closes as a level shift; the baseline adopts the new level (ms).",
    "value_scale": "Units per input value (1 = counts; --series picks one for non-integer values).",
    "elevated_learn_weight": "How much a window above close_threshold still teaches the baseline (0..1).",
    "update_every_windows": "An open incident publishes an update at most every this many windows (new peaks).",
    "max_incident_ms": "An incident open this long is closed (ms).",
    "relearn_ms": "After a max_incident_ms close the key only learns, and cannot open, this long (ms).",
    "top_children": "Most affected child regions an incident event lists.",
}


class Option(click.Option):
    """A click option whose text default (``show_default="two windows"``) shows without parentheses."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is not None and isinstance(self.show_default, str):
            record = (record[0], record[1].replace(f"default: ({self.show_default})", f"default: {self.show_default}"))
        return record


def option(*decls: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``click.option`` with :class:`Option`."""
    return click.option(*decls, cls=Option, **kwargs)


def option_type(f: dataclasses.Field[Any]) -> Any:
    return {"int": int, "float": float, "bool": bool}.get(str(f.type), str)


def default_text(f: dataclasses.Field[Any]) -> str:
    """The default of a dataclass field as ``--help`` shows it."""
    if f.name == "lateness_ms":
        return "two windows"
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return str(value) if value != "" else "none"


def detector_options(func: Callable[..., Any], *, env_hint: bool = True) -> Callable[..., Any]:
    """Add ``--window-ms``, ``--detector``, ``--open-threshold`` ... (None = not given on the command line)."""
    for f in reversed(dataclasses.fields(DetectorConfig)):
        text = DETECTOR_HELP.get(f.name, f.name.replace("_", " "))
        if env_hint:
            text += f" [env SPIKEDETECT_{f.name.upper()}]"
        func = option("--" + f.name.replace("_", "-"), f.name, type=option_type(f), default=None,
                            show_default=default_text(f), help=text)(func)  # fmt: skip
    return func


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--config FILE``: settings in TOML (the same names as the flags, with _)."""
    return option(
        "--config", "config_file", default=None, metavar="FILE.toml", envvar="SPIKEDETECT_CONFIG", show_default="none",
        help="Settings file (TOML, keys named like the settings: window_ms = 60000); the environment and "
             "flags win over it. [env SPIKEDETECT_CONFIG]",
    )(func)  # fmt: skip


def resolve_detector(values: Mapping[str, Any], config_file: str | None,
                     fill: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                     ) -> tuple[DetectorConfig, dict[str, str], dict[str, Any]]:
    """The detector of a run: file < environment < flags, as the worker reads it; ``fill`` may add
    values that were not given anywhere (a series' window). Returns the config, the origin of
    every setting that is not a default, and the raw values given (for ``--sweep``)."""
    from spikedetect.stream.settings import build_detector, detector_values

    given, origin = detector_values(None, config_file, {k: values.get(k) for k in DETECTOR_FIELDS})
    if fill is not None:
        filled = fill(dict(given))
        origin.update({k: "inferred" for k in filled if k not in given})
        given = filled
    return build_detector(given, origin), origin, given


def kafka_connection(bootstrap: str, config_file: str | None) -> KafkaConnection:
    """The worker's Kafka connection (``--config FILE``, then ``SPIKEDETECT_*``: TLS, SASL) to
    ``bootstrap``: what ``replay --topic`` and ``simulate --topic`` connect with."""
    from spikedetect.stream.settings import Settings

    try:
        return Settings.from_env(config_file=config_file, bootstrap=bootstrap).connection()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def detector_config(values: dict[str, Any]) -> DetectorConfig:
    """A validated DetectorConfig from option values (None values left at their default)."""
    try:
        return DetectorConfig.from_mapping({k: v for k, v in values.items() if k in DETECTOR_FIELDS and v is not None})
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def describe_detector(config: DetectorConfig, origin: Mapping[str, str]) -> str:
    """One line: the params_hash, the model and every setting that is not a default, with where it came from."""
    defaults = DetectorConfig().to_dict()
    now = config.to_dict()
    changed = [f"{k}={now[k]} ({origin.get(k, 'derived')})" for k in DETECTOR_FIELDS
               if k != "detector" and now[k] != defaults[k]]  # fmt: skip
    rest = ", ".join(changed) if changed else "all other settings at their defaults"
    return f"detector {config.detector} params_hash {config.params_hash}: {rest}"


def sanity_warnings(config: DetectorConfig) -> list[str]:
    """Settings that are valid but almost certainly a mistake."""
    out = []
    w = config.window_ms
    if w < 1_000:
        out.append(f"window_ms {w} is under a second (it is in milliseconds: 60000 is a minute); "
                   "replay will be slow and every window nearly empty")  # fmt: skip
    elif w > 86_400_000:
        out.append(f"window_ms {w} is longer than a day")
    if config.lateness_ms > 100 * w:
        out.append(f"lateness_ms {config.lateness_ms} is over 100 windows: windows close very late")
    if config.open_threshold < 2:
        out.append(f"open_threshold {config.open_threshold} is under 2: nearly every window will be anomalous")
    if config.max_incident_ms < 3 * w:
        out.append(f"max_incident_ms {config.max_incident_ms} is under three windows")
    return out
