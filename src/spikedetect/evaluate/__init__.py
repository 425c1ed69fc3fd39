"""Evaluation: incident events scored against a simulation's ground truth, parameter sweeps and
the HTML report (``spikedetect evaluate``, ``spikedetect report``, ``replay --truth/--sweep``)."""

from spikedetect.evaluate.score import EvaluationResult, OutageScore, TrapScore, evaluate

__all__ = ["EvaluationResult", "OutageScore", "TrapScore", "evaluate"]
