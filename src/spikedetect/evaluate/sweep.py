"""``--sweep``: one replay per combination of detector settings, scored against ground truth.

>>> axes = parse_sweeps(["open_threshold=5,6", "detector=seasonal,ewma"])
>>> axes
[('open_threshold', ['5', '6']), ('detector', ['seasonal', 'ewma'])]
>>> [s["open_threshold"] + "/" + s["detector"] for s in grid(axes)]
['5/seasonal', '5/ewma', '6/seasonal', '6/ewma']
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from spikedetect.core import ConfigError, DetectorConfig
from spikedetect.core.config import DETECTOR_FIELDS
from spikedetect.core.outage_events import OutageEvent
from spikedetect.core.signal_events import SignalEvent
from spikedetect.evaluate.score import EvaluationResult, evaluate
from spikedetect.replay.runner import ReplaySummary
from spikedetect.sim.truth import GroundTruth

Axes = list[tuple[str, list[str]]]
RunOnce = Callable[[DetectorConfig, Callable[[OutageEvent | SignalEvent], None]], ReplaySummary]
METRICS = ("recall", "key_recall", "precision", "false_alarms_per_day", "trap_alarms",
           "median_detection_delay_windows", "median_close_delay_s")  # fmt: skip


class SweepError(ValueError):
    """A ``--sweep`` that names an unknown setting, lists no values, or builds an invalid config."""


def parse_sweeps(specs: Sequence[str]) -> Axes:
    """``name=v1,v2,...`` per spec (``-`` or ``_`` in names); a name given twice is an error."""
    axes: Axes = []
    for spec in specs:
        name, sep, raw = spec.partition("=")
        name = name.strip().replace("-", "_")
        values = (
            [v.strip() for v in raw.split(",") if v.strip()] if name != "detector" else _detector_values(raw)
        )
        if not sep or not values:
            raise SweepError(f"--sweep {spec!r}: use name=value,value,...")
        if name not in DETECTOR_FIELDS:
            raise SweepError(
                f"--sweep {spec!r}: unknown setting {name!r}; known: {', '.join(DETECTOR_FIELDS)}"
            )
        if any(name == n for n, _ in axes):
            raise SweepError(f"--sweep {name} given twice")
        axes.append((name, values))
    return axes


def _detector_values(raw: str) -> list[str]:
    """Detector specs may carry ``:k=v,k=v`` parameters; separate specs with ``;`` then.

    >>> _detector_values("seasonal,ewma"), _detector_values("ewma:fading_factor=0.05;seasonal")
    (['seasonal', 'ewma'], ['ewma:fading_factor=0.05', 'seasonal'])
    """
    sep = ";" if ";" in raw or ":" in raw else ","
    return [v.strip() for v in raw.split(sep) if v.strip()]


def grid(axes: Axes) -> list[dict[str, str]]:
    """Every combination, the last axis varying fastest."""
    names = [n for n, _ in axes]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))]


@dataclass
class SweepRow:
    """One setting: what was changed, the full config, the replay summary and the evaluation."""

    setting: dict[str, str]
    config: DetectorConfig
    summary: ReplaySummary
    result: EvaluationResult

    def metrics(self) -> dict[str, Any]:
        return {m: getattr(self.result, m) for m in METRICS} | {"incidents": self.result.incidents}

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "params_hash": self.config.params_hash,
            "config": self.config.to_dict(),
            "metrics": self.metrics(),
            "summary": self.summary.to_dict(),
            "evaluation": self.result.to_dict(),
        }


def build_configs(base: dict[str, Any], axes: Axes) -> list[tuple[dict[str, str], DetectorConfig]]:
    """A validated config per combination (base values overridden by the combination)."""
    out = []
    for setting in grid(axes):
        values = {k: v for k, v in base.items() if v is not None} | setting
        try:
            out.append((setting, DetectorConfig.from_mapping(values)))
        except ConfigError as exc:
            raise SweepError(f"setting {setting}: {exc}") from exc
    return out


def run_sweep(
    configs: Sequence[tuple[dict[str, str], DetectorConfig]],
    run_once: RunOnce,
    truth: GroundTruth,
    on_done: Callable[[SweepRow], None] | None = None,
) -> list[SweepRow]:
    """Replay once per config and evaluate the incidents against ``truth``."""
    rows = []
    for setting, config in configs:
        events: list[dict[str, Any]] = []
        summary = run_once(config, _collector(events))
        row = SweepRow(setting, config, summary, evaluate(events, truth))
        rows.append(row)
        if on_done is not None:
            on_done(row)
    return rows


def _collector(into: list[dict[str, Any]]) -> Callable[[OutageEvent | SignalEvent], None]:
    def collect(event: OutageEvent | SignalEvent) -> None:
        into.append(event.to_dict())

    return collect


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _num(x: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if x is None else f"{x / scale:.{digits}f}"


def render_sweep(rows: Sequence[SweepRow], console: Console) -> None:
    """A rich table: the swept settings, then the evaluation metrics of each run."""
    names = list(rows[0].setting) if rows else []
    table = Table(title="Sweep: detection quality per setting", title_justify="left")
    for name in names:
        table.add_column(name, style="bold", no_wrap=True, min_width=len(name))
    for col in (
        "incidents",
        "recall",
        "key recall",
        "precision",
        "false alarms/day",
        "trap alarms",
        "median delay (win)",
        "median close (min)",
        "events/s",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        res = r.result
        detected = sum(o.detected for o in res.outages)
        table.add_row(
            *(r.setting[n] for n in names), str(res.incidents), f"{detected}/{len(res.outages)} {_pct(res.recall)}",
            _pct(res.key_recall), _pct(res.precision), f"{res.false_alarms_per_day:.2f}",
            f"[red]{res.trap_alarms}[/]" if res.trap_alarms else "0", _num(res.median_detection_delay_windows),
            _num(res.median_close_delay_s, 60.0), f"{r.summary.events_per_s:,.0f}",
        )  # fmt: skip
    console.print(table)


def sweep_json(rows: Sequence[SweepRow], truth_path: str | None = None) -> dict[str, Any]:
    """The sweep as plain JSON-able data."""
    return {
        "format": "spikedetect.sweep/v1",
        "truth": truth_path,
        "axes": list(rows[0].setting) if rows else [],
        "runs": [r.to_dict() for r in rows],
    }


__all__ = [
    "METRICS",
    "SweepError",
    "SweepRow",
    "build_configs",
    "grid",
    "parse_sweeps",
    "render_sweep",
    "run_sweep",
    "sweep_json",
]
