"""Detector names -> baseline classes.

>>> from spikedetect.core.config import DetectorSpec
>>> make_baseline(DetectorSpec("ewma"), 60_000).name
'ewma'
"""

from __future__ import annotations

from spikedetect.core.config import DetectorSpec
from spikedetect.core.detectors.base import Baseline
from spikedetect.core.detectors.ewma import EwmaBaseline
from spikedetect.core.detectors.seasonal import SeasonalBaseline
from spikedetect.core.detectors.weekly import WeeklyBaseline
from spikedetect.core.errors import ConfigError

DETECTORS: dict[str, type[Baseline]] = {
    SeasonalBaseline.name: SeasonalBaseline,
    EwmaBaseline.name: EwmaBaseline,
    WeeklyBaseline.name: WeeklyBaseline,
}


def make_baseline(spec: DetectorSpec, window_ms: int) -> Baseline:
    """A fresh, empty bank of the detector's models."""
    cls = DETECTORS.get(spec.name)
    if cls is None:
        raise ConfigError(f"unknown detector {spec.name!r}; shipped: {', '.join(sorted(DETECTORS))}")
    return cls(window_ms, spec.param_dict())
