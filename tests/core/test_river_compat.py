"""The seam to River's private state (core/river_compat.py): it still finds what it reaches for,
round-trips exactly, and the installed River is the tested one."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from river import stats

from spikedetect.core import river_compat

ROOT = Path(__file__).resolve().parents[2]


def test_installed_river_is_the_tested_one() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        spec = tomllib.load(f)["tool"]["spikedetect"]["tested-versions"]["river"]
    assert Version(version("river")) in SpecifierSet(spec), (
        f"river {version('river')} is outside the tested range {spec}: re-check "
        "src/spikedetect/core/river_compat.py against it, then widen the range"
    )


@pytest.mark.parametrize("kind", [stats.EWMean, stats.EWVar])
def test_state_round_trips_exactly(kind: type) -> None:
    a = kind(fading_factor=0.3)
    for x in (1.0, 7.5, 2.25, 40.0):
        a.update(x)
    b = kind(fading_factor=0.3)
    river_compat.set_state(b, river_compat.get_state(a))
    assert b.get() == a.get()
    a.update(3.0)
    b.update(3.0)
    assert b.get() == a.get(), "restored state continues identically"
    assert river_compat.state_size(b) == len(river_compat.get_state(a)) > 0


def test_an_unknown_statistic_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="Mean"):
        river_compat.get_state(stats.Mean())
