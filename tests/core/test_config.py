"""Configuration is validated when it is built; bad values are ConfigErrors, never silent changes."""

from __future__ import annotations

from typing import Any

import pytest

from spikedetect.core.config import DetectorConfig, DetectorSpec
from spikedetect.core.errors import ConfigError


def test_defaults() -> None:
    cfg = DetectorConfig()
    assert cfg.window_ms == 60_000 and cfg.lateness_ms == 120_000  # two windows unless set
    assert DetectorConfig(window_ms=1_000).lateness_ms == 2_000
    assert DetectorConfig(window_ms=1_000, lateness_ms=0).lateness_ms == 0
    assert cfg.detector == DetectorSpec("seasonal")
    assert cfg.close_threshold <= cfg.open_threshold <= cfg.extreme_threshold


@pytest.mark.parametrize(
    "changes",
    [
        {"window_ms": 0},
        {"window_ms": -60_000},
        {"window_ms": 1.5},
        {"window_ms": True},
        {"window_ms": "60000"},
        {"lateness_ms": -2},
        {"max_future_skew_ms": 0},
        {"close_windows": 0},
        {"open_windows": -1},
        {"max_region_depth": 0},
        {"max_region_depth": 5},
        {"open_threshold": float("nan")},
        {"min_excess": -1.0},
        {"open_threshold": "7"},
        {"close_threshold": 6.5},  # above open_threshold (6.0)
        {"extreme_threshold": 5.0},  # below open_threshold (6.0)
    ],
)
def test_invalid_values_are_config_errors(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        DetectorConfig(**changes)


def test_from_mapping_parses_strings() -> None:
    cfg = DetectorConfig.from_mapping(
        {
            "window_ms": "30000",
            "open_threshold": "8.5",
            "close_windows": 7,
            "detector": "ewma:fading_factor=0.2",
        }
    )
    assert cfg.window_ms == 30_000 and cfg.lateness_ms == 60_000
    assert cfg.open_threshold == 8.5 and cfg.close_windows == 7
    assert cfg.detector == DetectorSpec("ewma", (("fading_factor", 0.2),))
    assert DetectorConfig.from_mapping({"window_ms": "1e3", "lateness_ms": 2000.0}).window_ms == 1000


@pytest.mark.parametrize(
    "values",
    [
        {"no_such_setting": 1},
        {"window_ms": "soon"},
        {"window_ms": None},
        {"window_ms": "1.5"},  # not silently truncated to 1 ms
        {"window_ms": 90_000.5},
        {"window_ms": "inf"},  # not an OverflowError
        {"window_ms": "nan"},
        {"open_threshold": "loud"},
        {"detector": "ewma:fading_factor"},
    ],
)
def test_from_mapping_rejects(values: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        DetectorConfig.from_mapping(values)


def test_params_hash_is_stable_and_sensitive() -> None:
    a, b = DetectorConfig(), DetectorConfig()
    assert a.params_hash == b.params_hash and len(a.params_hash) == 12
    seen = {a.params_hash}
    for change in (
        {"window_ms": 30_000},
        {"open_threshold": 8.0},
        {"detector": DetectorSpec("ewma")},
        {"detector": DetectorSpec.parse("seasonal:floor_mean=1")},
        {"close_windows": 6},
    ):
        h = a.replace(**change).params_hash
        assert h not in seen, change
        seen.add(h)


@pytest.mark.parametrize(
    ("text", "name", "params"),
    [
        ("seasonal", "seasonal", ()),
        ("ewma:fading_factor=0.2", "ewma", (("fading_factor", 0.2),)),
        (
            " ewma : warm_windows=5 , fading_factor=0.3 ",
            "ewma",
            (("fading_factor", 0.3), ("warm_windows", 5)),
        ),
        ("x:flag=true,mode=fast", "x", (("flag", True), ("mode", "fast"))),
    ],
)
def test_detector_spec_parse(text: str, name: str, params: tuple[tuple[str, Any], ...]) -> None:
    spec = DetectorSpec.parse(text)
    assert (spec.name, spec.params) == (name, params)
    assert DetectorSpec.parse(str(spec)) == spec  # str() is the canonical form
