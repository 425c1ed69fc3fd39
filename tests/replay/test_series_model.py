"""``--series`` with values that are not counts: the value model is chosen from the values,
named in the summary and in every event's ``detector``, and events report input units."""

from __future__ import annotations

import math
import random
from pathlib import Path

import orjson
from click.testing import CliRunner

from spikedetect.cli import main
from spikedetect.core import format_ts_ms
from spikedetect.replay.series import choose_value_scale

T0 = 1_795_651_200_000
STEP = 300_000
DAYS = 20
STEP_AT = 15 * 288 + 100  # a latency step: 3x for two hours on day 16


def latency_csv(path: Path, *, step: bool) -> None:
    """Five-minute latency in seconds: a daily cycle around 0.2 s with 10 % lognormal noise."""
    rng = random.Random(5)
    lines = ["timestamp,value"]
    for i in range(DAYS * 288):
        value = 0.2 * (1 + 0.3 * math.sin(2 * math.pi * i / 288)) * math.exp(rng.gauss(0, 0.1))
        if step and STEP_AT <= i < STEP_AT + 24:
            value *= 3
        lines.append(f"{format_ts_ms(T0 + i * STEP)},{value:.4f}")
    path.write_text("\n".join(lines) + "\n")


def run(path: Path, *extra: str) -> tuple[list[dict[str, object]], str]:
    out = path.with_suffix(".jsonl")
    res = CliRunner().invoke(main, ["replay", "--series", str(path), "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    return [orjson.loads(line) for line in out.read_bytes().splitlines()], res.output


def test_counts_keep_the_count_model_and_fractions_get_a_scale() -> None:
    assert choose_value_scale([(0, 3.0), (1, 0.0), (2, 120.0)]) == 1.0
    assert choose_value_scale([(0, 0.2), (1, 0.25), (2, 0.3)]) == 10_000.0
    assert choose_value_scale([(0, 52.5), (1, 61.0), (2, 48.25)]) == 100.0


def test_a_latency_step_opens_one_incident_reported_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "latency.csv"
    latency_csv(path, step=True)
    events, output = run(path)
    assert "model continuous (values x 10000" in output
    opened = [e for e in events if e["type"] == "opened"]
    assert len(opened) == 1
    start = T0 + STEP_AT * STEP
    assert opened[0]["opened_at"] >= format_ts_ms(start) and opened[0]["detected_at"] <= format_ts_ms(start + 3 * STEP)
    assert all(e["detector"]["model"] == "continuous" for e in events)  # type: ignore[index]
    assert 0.3 < float(opened[0]["observed"]) < 1.5 and 0.1 < float(opened[0]["expected"]) < 0.4  # type: ignore[arg-type]


def test_latency_noise_alone_opens_nothing(tmp_path: Path) -> None:
    path = tmp_path / "latency.csv"
    latency_csv(path, step=False)
    events, _ = run(path)
    assert events == []


def test_the_scale_can_be_forced_back_to_counts(tmp_path: Path) -> None:
    path = tmp_path / "latency.csv"
    latency_csv(path, step=True)
    _, output = run(path, "--value-scale", "1")
    assert "model counts" in output
