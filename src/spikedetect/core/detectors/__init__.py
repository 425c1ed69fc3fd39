"""Pluggable baseline models, selected by a :class:`~spikedetect.core.config.DetectorSpec`."""

from spikedetect.core.detectors.base import BASELINE_SOURCES, Baseline, Expectation
from spikedetect.core.detectors.ewma import EwmaBaseline
from spikedetect.core.detectors.registry import DETECTORS, make_baseline
from spikedetect.core.detectors.seasonal import SeasonalBaseline

__all__ = [
    "BASELINE_SOURCES",
    "DETECTORS",
    "Baseline",
    "EwmaBaseline",
    "Expectation",
    "SeasonalBaseline",
    "make_baseline",
]
