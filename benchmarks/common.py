"""Shared helpers: machine facts, medians over repeats, result files, test streams."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_1m": os.getloadavg()[0], "git": _git()}


def _git() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=False, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return ""


def two_trees(description: str | None, *, days: float, what: str) -> tuple[argparse.ArgumentParser, Callable[
        [argparse.Namespace], dict[str, Path]]]:
    """The arguments of an A/B of two source trees (``--base``, ``--new``, ``--file``, ``--days``,
    ``--what``, ``--smoke``), and what gives the trees to compare from the parsed ones (``--smoke``:
    the new tree against itself)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path)
    ap.add_argument("--new", type=Path, default=Path("."))
    ap.add_argument("--file", type=Path, help="input JSONL (default: a simulated one of --days)")
    ap.add_argument("--days", type=float, default=days)
    ap.add_argument("--what", default=what, help="read, replay, count; comma-separated")
    ap.add_argument("--smoke", action="store_true", help="tiny run, the new tree against itself")

    def trees(a: argparse.Namespace) -> dict[str, Path]:
        if a.base is None and not a.smoke:
            ap.error("--base is required (or --smoke)")
        return {"base": (a.new if a.smoke else a.base).resolve(), "new": a.new.resolve()}

    return ap, trees


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def save(name: str, data: dict[str, Any]) -> Path:
    """Write a result as JSON under benchmarks/out/ (git-ignored) and return the path."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2))
    return path


def simulated_file(path: Path, *, days: float, scale: float = 1.0, peak_scale: float = 1.0, seed: int = 1,
                   scenario: str = "suite") -> int:
    """Write a simulated report stream (JSONL, or gzip by suffix); returns its line count."""
    import gzip

    from spikedetect.sim.simulate import Simulation, SimulationConfig

    sim = Simulation(SimulationConfig(seed=seed, days=days, scale=scale, peak_scale=peak_scale,
                                      scenario=scenario))
    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    with opener(path, "wb") as f:  # type: ignore[operator]
        for line in sim.lines():
            f.write(line + b"\n")
            n += 1
    return n
