"""``spikedetect replay --sweep``: one replay per setting, scored against the truth."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from tests.stream.streams import T0_MS, outage_stream

from spikedetect.cli import main
from spikedetect.evaluate.sweep import SweepError, build_configs, grid, parse_sweeps
from spikedetect.sim.truth import GroundTruth, OutageTruth, write_truth

SPIKE_MIN, SPIKE_LEN = 1500, 40
US = ("US/CA/Los Angeles", "US/NY/New York", "US/IL/Chicago")


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 1.5-day stream with one outage on the US cities, and its truth."""
    d = tmp_path_factory.mktemp("sweep")
    outage_stream(d / "reports.jsonl", seed=2, days=1.5, spike_start_min=SPIKE_MIN, spike_minutes=SPIKE_LEN)
    start = T0_MS + SPIKE_MIN * 60_000
    truth = GroundTruth(seed=2, start_ms=T0_MS, end_ms=T0_MS + 36 * 3_600_000, services=("instagram",),
                        outages=(OutageTruth("us-1", "widespread", "instagram", start, start + SPIKE_LEN * 60_000,
                                             US, ("US", *US), large=True),))  # fmt: skip
    write_truth(truth, d / "truth.json")
    return d / "reports.jsonl", d / "truth.json"


def test_sweeps_parse_into_a_grid_of_valid_configs() -> None:
    axes = parse_sweeps(["open-threshold=5,7", "detector=ewma:fading_factor=0.05;seasonal"])
    assert axes == [("open_threshold", ["5", "7"]), ("detector", ["ewma:fading_factor=0.05", "seasonal"])]
    configs = build_configs({"close_windows": 3, "window_ms": None}, axes)
    assert [(c.open_threshold, str(c.detector), c.close_windows) for _, c in configs] == [
        (5.0, "ewma:fading_factor=0.05", 3), (5.0, "seasonal", 3), (7.0, "ewma:fading_factor=0.05", 3),
        (7.0, "seasonal", 3)]  # fmt: skip
    assert len(grid([("a", ["1"]), ("b", ["1", "2", "3"]), ("c", ["1", "2"])])) == 6


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["threshold=5,6"], "unknown setting"),
        (["open_threshold"], "name=value"),
        (["open_threshold="], "name=value"),
        (["open_threshold=5", "open_threshold=6"], "twice"),
    ],
)
def test_bad_sweeps_are_refused(specs: list[str], message: str) -> None:
    with pytest.raises(SweepError, match=message):
        parse_sweeps(specs)


def test_an_invalid_combination_names_the_setting() -> None:
    with pytest.raises(SweepError, match="close_threshold"):
        build_configs({}, parse_sweeps(["close_threshold=2,9"]))  # 9 > the default open threshold


def test_cli_sweep_prints_a_table_and_writes_json(stream: tuple[Path, Path], tmp_path: Path) -> None:
    reports, truth = stream
    out = tmp_path / "sweep.json"
    res = CliRunner().invoke(main, ["replay", str(reports), "--sweep", "open_threshold=6,60",
                                    "--sweep", "detector=seasonal,ewma", "--truth", str(truth),
                                    "--sweep-json", str(out), "--no-progress"],
                             env={"COLUMNS": "200"})  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Sweep: detection quality per setting" in res.output
    assert "false alarms/day" in res.output and "median delay" in res.output
    data = orjson.loads(out.read_bytes())
    runs = {(r["setting"]["open_threshold"], r["setting"]["detector"]): r for r in data["runs"]}
    assert list(runs) == [("6", "seasonal"), ("6", "ewma"), ("60", "seasonal"), ("60", "ewma")]
    assert {r["config"]["close_windows"] for r in data["runs"]} == {5}
    best = runs[("6", "seasonal")]["metrics"]
    assert best["recall"] == 1.0 and best["precision"] == 1.0
    assert best["median_detection_delay_windows"] <= 3
    for det in ("seasonal", "ewma"):  # a far higher threshold never finds more
        assert runs[("60", det)]["metrics"]["incidents"] <= runs[("6", det)]["metrics"]["incidents"]
    assert len({r["params_hash"] for r in data["runs"]}) == 4


def test_cli_sweep_needs_truth(stream: tuple[Path, Path]) -> None:
    res = CliRunner().invoke(main, ["replay", str(stream[0]), "--sweep", "open_threshold=5,6"])
    assert res.exit_code == 2 and "--truth" in res.output


def test_cli_truth_without_sweep_prints_the_evaluation(stream: tuple[Path, Path], tmp_path: Path) -> None:
    reports, truth = stream
    res = CliRunner().invoke(
        main, ["replay", str(reports), "--truth", str(truth), "--out", str(tmp_path / "i.jsonl")]
    )
    assert res.exit_code == 0, res.output
    assert "Detection quality" in res.output and "1/1  100%" in res.output
