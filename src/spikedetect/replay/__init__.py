"""Offline shell: simulated report streams with ground truth, and the scorer of detected incidents."""

from spikedetect.replay.evaluate import EvaluationResult, OutageScore, TrapScore, evaluate
from spikedetect.replay.simulate import Simulation, SimulationConfig, SimulationStats, generate, ground_truth
from spikedetect.replay.truth import GroundTruth, OutageTruth, TrapTruth, load_truth, write_truth

__all__ = [
    "EvaluationResult",
    "GroundTruth",
    "OutageScore",
    "OutageTruth",
    "Simulation",
    "SimulationConfig",
    "SimulationStats",
    "TrapScore",
    "TrapTruth",
    "evaluate",
    "generate",
    "ground_truth",
    "load_truth",
    "write_truth",
]
