"""The detection core: pure, deterministic Python with no Kafka, asyncio, clock or I/O.

Both drivers - the live Faust pipeline and ``spikedetect replay`` - feed it the same way.
"""

from spikedetect.core.config import DetectorConfig, DetectorSpec
from spikedetect.core.counter import BatchResult, ClosedWindow, WindowCounter
from spikedetect.core.detector import Detector
from spikedetect.core.detectors import BASELINE_SOURCES, DETECTORS, make_baseline
from spikedetect.core.errors import ConfigError, IllegalTransition, SpikedetectError, StateError
from spikedetect.core.incidents import SCHEMA, IncidentEvent
from spikedetect.core.messages import Mark, Partial
from spikedetect.core.pipeline import Output, Pipeline
from spikedetect.core.reports import REASONS, Report, ReportValidator
from spikedetect.core.scorer import ClosedKeys, LatePartial, PartialFate, Scorer
from spikedetect.core.summary import Summary
from spikedetect.core.timefmt import format_ts_ms, parse_time_arg, parse_ts_ms

__all__ = [
    "BASELINE_SOURCES",
    "DETECTORS",
    "REASONS",
    "SCHEMA",
    "BatchResult",
    "ClosedKeys",
    "ClosedWindow",
    "ConfigError",
    "Detector",
    "DetectorConfig",
    "DetectorSpec",
    "IllegalTransition",
    "IncidentEvent",
    "LatePartial",
    "Mark",
    "Output",
    "Partial",
    "PartialFate",
    "Pipeline",
    "Report",
    "ReportValidator",
    "Scorer",
    "SpikedetectError",
    "StateError",
    "Summary",
    "WindowCounter",
    "format_ts_ms",
    "make_baseline",
    "parse_time_arg",
    "parse_ts_ms",
]
