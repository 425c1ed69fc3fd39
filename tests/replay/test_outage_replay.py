"""Issue 15 through ``spikedetect replay``: outages on --out, region detail on --regions-out."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from spikedetect.cli import main
from spikedetect.core import Detector, DetectorConfig
from spikedetect.evaluate.score import evaluate
from spikedetect.files.sources import iter_batches, open_binary
from spikedetect.sim.truth import load_truth

DATA = resources.files("spikedetect") / "data"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def sample_run(tmp: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    out, regions = tmp / "out.jsonl", tmp / "regions.jsonl"
    res = CliRunner().invoke(main, ["replay", str(DATA / "sample-reports.jsonl.gz"), "--out", str(out),
                                    "--regions-out", str(regions), "--no-progress"])
    assert res.exit_code == 0, res.output
    return _lines(out), _lines(regions)


def test_the_sample_gives_one_incident_per_outage_and_the_regions_unchanged(tmp_path_factory: Any) -> None:
    main, regions = sample_run(tmp_path_factory.mktemp("sample"))
    assert {e["schema"] for e in main} == {"spikedetect.incident/v2"}
    # beside the outages, only the producer_gap trap's ingest gap (issue 18)
    outages = [e for e in main if "kind" not in e]
    assert [(e["kind"], e["type"], e["service"]) for e in main if "kind" in e] == [
        ("ingest_gap", "opened", "threads"), ("ingest_gap", "closed", "threads")]
    assert {e["schema"] for e in regions} == {"spikedetect.incident/v1"}
    # the region stream is what the detector publishes without grouping, plus group_id
    det = Detector(DetectorConfig())
    plain = []
    with open_binary(str(DATA / "sample-reports.jsonl.gz")) as f:
        for batch in iter_batches(f):
            plain += det.feed_batch(batch).incidents
    plain += det.flush()
    assert [{k: v for k, v in e.items() if k != "group_id"} for e in regions] == [e.to_dict() for e in plain]
    ids = {e["incident_id"] for e in outages}
    assert {e["group_id"] for e in regions} == ids
    assert len(ids) < len({e["incident_id"] for e in regions}) / 10  # 92 region incidents before
    truth = load_truth(str(DATA / "sample-truth.json"))
    result = evaluate(outages, truth)
    assert result.groups is not None
    by_key = {o.id: o.detected for o in result.outages}
    for g in result.groups.scores:
        # an outage the region incidents detected is exactly one incident, within its budget
        assert len(g.incidents) == (1 if by_key[g.id] else 0), g
        assert g.events <= g.event_budget, g
    wide = next(o for o in truth.outages if o.kind == "widespread")
    [iid] = next(g for g in result.groups.scores if g.id == wide.id).incidents
    last = max((e for e in outages if e["incident_id"] == iid), key=lambda e: e["seq"])
    assert last["region"] == "*" and set(last["countries"]) == {r.split("/")[0] for r in wide.regions}
    assert {m["region"] for m in last["regions"]} == {e["region"] for e in regions if e["group_id"] == iid}
    # the key-level scores are the same from either stream
    assert evaluate(regions, truth).key_recall == result.key_recall


def test_a_series_replay_keeps_opened_at_and_detected_at_on_the_main_stream(tmp_path: Path) -> None:
    """../shared/tools/score-real-counts.py reads type, detected_at and opened_at of --series output."""
    csv = tmp_path / "s.csv"
    rows = ["timestamp,value"] + [f"{1795651200000 + i * 60_000},{10 + (i % 3) + (400 if 2000 <= i < 2010 else 0)}"
                                  for i in range(2200)]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "o.jsonl"
    res = CliRunner().invoke(main, ["replay", "--series", str(csv), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    events = _lines(out)
    opened = [e for e in events if e["type"] == "opened"]
    assert len(opened) == 1 and opened[0]["opened_at"] <= opened[0]["detected_at"]
    assert opened[0]["opened_at"].startswith("2026-11-27T09:")  # minute 2000 after the start
