"""``spikedetect evaluate`` from the command line."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
from click.testing import CliRunner

from spikedetect.cli import main
from spikedetect.core.timefmt import format_ts_ms
from spikedetect.sim.simulate import Simulation, SimulationConfig
from spikedetect.sim.truth import write_truth

MIN = 60_000


def _files(tmp_path: Path) -> tuple[Path, Path]:
    truth = Simulation(SimulationConfig(days=2, peak_scale=0.1)).truth
    write_truth(truth, tmp_path / "truth.json")
    wide = next(o for o in truth.outages if o.kind == "widespread")
    events = [
        {"schema": "spikedetect.incident/v1", "type": "opened", "incident_id": "inc-1", "seq": 1,
         "service": "instagram", "region": "*", "level": "global", "window_ms": MIN,
         "opened_at": format_ts_ms(wide.start_ms), "detected_at": format_ts_ms(wide.start_ms + 2 * MIN),
         "closed_at": None},
        {"schema": "spikedetect.incident/v1", "type": "opened", "incident_id": "inc-2", "seq": 1,
         "service": "facebook", "region": "JP", "level": "country", "window_ms": MIN,
         "opened_at": format_ts_ms(truth.start_ms + 5 * 60 * MIN),
         "detected_at": format_ts_ms(truth.start_ms + 5 * 60 * MIN + MIN), "closed_at": None},
    ]  # fmt: skip
    path = tmp_path / "incidents.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(orjson.dumps(e) + b"\n" for e in events)))
    return path, tmp_path / "truth.json"


def test_table_and_json_outputs(tmp_path: Path) -> None:
    incidents, truth = _files(tmp_path)
    runner = CliRunner()
    res = runner.invoke(
        main,
        [
            "evaluate",
            "--incidents",
            str(incidents),
            "--truth",
            str(truth),
            "--json",
            str(tmp_path / "s.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    for text in ("Detection quality", "widespread-1", "precision", "50%", "Unmatched incidents", "inc-2"):
        assert text in res.output
    saved = orjson.loads((tmp_path / "s.json").read_bytes())
    assert saved["precision"] == 0.5 and saved["incidents"] == 2
    res = runner.invoke(
        main, ["evaluate", "--incidents", str(incidents), "--truth", str(truth), "--format", "json"]
    )
    assert res.exit_code == 0
    data = orjson.loads(res.stdout)
    wide = next(o for o in data["outages"] if o["kind"] == "widespread")
    assert wide["detected"] and wide["detection_delay_windows"] == 2.0
    assert data["false_alarms_per_day"] == 0.5 and data["unmatched"][0]["incident_id"] == "inc-2"


def test_bad_truth_file_is_a_clean_error(tmp_path: Path) -> None:
    incidents, _ = _files(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something/else"}')
    res = CliRunner().invoke(main, ["evaluate", "--incidents", str(incidents), "--truth", str(bad)])
    assert res.exit_code == 2 and "not a ground truth file" in res.output
