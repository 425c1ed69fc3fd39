"""Simulation: seeded report streams with injected outages, traps and signals, and their ground truth.

Never imports the detection core's detector (tests/test_layers.py): what it makes is scored by
:mod:`spikedetect.evaluate`.
"""

from spikedetect.sim.simulate import Simulation, SimulationConfig, SimulationStats, generate, ground_truth
from spikedetect.sim.truth import GroundTruth, OutageTruth, SignalTruth, TrapTruth, load_truth, write_truth

__all__ = [
    "GroundTruth",
    "OutageTruth",
    "SignalTruth",
    "Simulation",
    "SimulationConfig",
    "SimulationStats",
    "TrapTruth",
    "generate",
    "ground_truth",
    "load_truth",
    "write_truth",
]
