"""``spikedetect report``: the data (series around incidents, bands, matches) and the self-contained page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from tests.stream.streams import T0_MS, outage_stream

from spikedetect.cli import main
from spikedetect.core import DetectorConfig, IncidentEvent
from spikedetect.core.outage_events import OutageEvent
from spikedetect.evaluate.report import build_report
from spikedetect.evaluate.report_html import render_html
from spikedetect.evaluate.report_incidents import latest_incidents
from spikedetect.files.sources import iter_batches, open_binary
from spikedetect.replay.runner import Replay
from spikedetect.sim.truth import GroundTruth, OutageTruth, load_truth, write_truth

SPIKE_MIN, SPIKE_LEN = 1500, 40
US = ("US/CA/Los Angeles", "US/NY/New York", "US/IL/Chicago")


def make_inputs(d: Path) -> tuple[Path, Path, Path]:
    """Reports (1.5 days, one US outage), the incident events replay made of them, and the truth."""
    reports, incidents, truth_path = d / "reports.jsonl", d / "incidents.jsonl", d / "truth.json"
    outage_stream(reports, seed=3, days=1.5, spike_start_min=SPIKE_MIN, spike_minutes=SPIKE_LEN)
    events: list[OutageEvent | IncidentEvent] = []
    r = Replay(DetectorConfig(), on_incident=events.append, on_region=events.append)  # both streams
    with open_binary(reports) as f:
        for batch in iter_batches(f):
            r.feed(batch)
    r.finish()
    incidents.write_bytes(b"".join(e.to_json() + b"\n" for e in events))
    start = T0_MS + SPIKE_MIN * 60_000
    write_truth(GroundTruth(seed=3, start_ms=T0_MS, end_ms=T0_MS + 36 * 3_600_000, services=("instagram",),
                            outages=(OutageTruth("us-1", "widespread", "instagram", start,
                                                 start + SPIKE_LEN * 60_000, US, ("US", *US), large=True),)),
                truth_path)  # fmt: skip
    return reports, incidents, truth_path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_inputs(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def data(inputs: tuple[Path, Path, Path]) -> dict[str, Any]:
    reports, incidents, truth = inputs
    events = [orjson.loads(x) for x in incidents.read_bytes().splitlines()]
    return build_report(str(reports), events, DetectorConfig(), load_truth(truth))


def test_latest_incidents_keep_the_last_state_first_detection_and_every_child() -> None:
    base = {"schema": "spikedetect.incident/v1", "incident_id": "i1", "service": "s", "region": "US",
            "opened_at": "2026-11-26T00:00:00.000Z"}  # fmt: skip
    events = [
        {**base, "seq": 2, "type": "updated", "detected_at": "b", "children": [{"region": "US/NY"}]},
        {**base, "seq": 1, "type": "opened", "detected_at": "a", "children": [{"region": "US/CA"}]},
        {**base, "seq": 3, "type": "closed", "detected_at": "c", "children": [{"region": "US/CA"}]},
        {"schema": "other", "incident_id": "x"},
    ]
    [inc] = latest_incidents(events)
    assert (inc["type"], inc["detected_at"], inc["child_regions"]) == ("closed", "a", ["US/NY", "US/CA"])


def test_every_incident_gets_a_series_with_a_band_around_expected(data: dict[str, Any]) -> None:
    incs = data["incidents"]
    assert len(incs) >= 3 and data["charted"] == len(incs)
    assert {i["region"] for i in incs} >= {"*", "US"}
    for inc in incs:
        s = inc["series"]
        n = len(s["obs"])
        assert 0 < n <= 400 and all(len(s[k]) == n for k in ("exp", "lo", "hi"))
        for lo, exp, hi in zip(s["lo"], s["exp"], s["hi"], strict=True):
            if exp is not None:
                assert 0 <= lo <= exp <= hi
        assert s["t0"] <= inc["opened_ms"] < inc["until_ms"] <= s["t0"] + n * s["step"]
        inside = [o for i, o in enumerate(s["obs"]) if o is not None
                  and inc["opened_ms"] <= s["t0"] + i * s["step"] < inc["until_ms"]]  # fmt: skip
        before = [
            h for i, h in enumerate(s["hi"]) if h is not None and s["t0"] + i * s["step"] < inc["opened_ms"]
        ]
        assert max(inside) > max(before), "the spike rises above the band of the hour before"


def test_children_series_are_the_child_regions_the_events_listed(data: dict[str, Any]) -> None:
    us = next(i for i in data["incidents"] if i["region"] == "US" and i["kind"] == "region")
    listed = [c["region"] for c in us["children"]]
    assert listed and {c["region"] for c in us["child_series"]} >= set(listed)
    assert all(len(c["obs"]) <= 120 for c in us["child_series"])
    ca = next(c for c in us["child_series"] if c["region"] == "US/CA")
    assert max(v for v in ca["obs"] if v is not None) > 50  # LA x40 during the outage


def test_outages_come_first_each_with_a_chart_and_their_regions_after(
        inputs: tuple[Path, Path, Path], data: dict[str, Any]) -> None:
    kinds = [i["kind"] for i in data["incidents"]]
    assert kinds[0] == "outage" and "region" in kinds
    assert kinds == sorted(kinds)  # "outage" < "region": every outage before any region
    outages = [i for i in data["incidents"] if i["kind"] == "outage"]
    ids = {o["incident_id"] for o in outages}
    assert all(i["group_id"] in ids for i in data["incidents"] if i["kind"] == "region")
    members = {m["region"] for o in outages for m in o["regions"]}
    assert {"US", *US} <= members
    # a chart budget smaller than the region count still charts every outage first
    reports, incidents, _ = inputs
    events = [orjson.loads(x) for x in incidents.read_bytes().splitlines()]
    small = build_report(str(reports), events, DetectorConfig(), max_incidents=len(outages))
    assert all("series" in i for i in small["incidents"] if i["kind"] == "outage")
    assert not any("series" in i for i in small["incidents"] if i["kind"] == "region")
    page = render_html(data)
    assert page.index('id="index"') < page.index('id="timeline"') < page.index('id="incidents"')


def test_truth_marks_matches_and_goes_into_the_timeline(data: dict[str, Any]) -> None:
    assert {i["match"] for i in data["incidents"]} == {"us-1"}
    assert [o["id"] for o in data["truth"]["outages"]] == ["us-1"]
    assert data["start_ms"] == T0_MS and data["end_ms"] == T0_MS + 36 * 3_600_000


def test_long_spans_are_bucketed_keeping_peaks(inputs: tuple[Path, Path, Path], data: dict[str, Any]) -> None:
    reports, incidents, _ = inputs
    events = [orjson.loads(x) for x in incidents.read_bytes().splitlines()]
    small = build_report(str(reports), events, DetectorConfig(), max_points=25, max_incidents=2)
    assert small["charted"] == 2 and "series" not in small["incidents"][2]
    for fine, coarse in zip(data["incidents"][:2], small["incidents"][:2], strict=True):
        assert len(coarse["series"]["obs"]) <= 25 and coarse["series"]["step"] > fine["series"]["step"]
        assert max(v for v in coarse["series"]["obs"] if v is not None) == max(
            v for v in fine["series"]["obs"] if v is not None
        )


def test_the_page_is_self_contained_and_escapes_the_data(data: dict[str, Any]) -> None:
    page = render_html({**data, "title": "</script><script>alert(1)</script> & co"})
    assert page.count("</script>") == 2  # the data block and the code, nothing injected
    assert "&lt;/script&gt;" in page
    for external in ("<link", " src=", "url(", "@import", "<img", "<iframe", "fetch(", "XMLHttpRequest"):
        assert external not in page
    blob = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S)
    assert (
        blob is not None
        and orjson.loads(blob.group(1).replace("<\\/", "</"))["format"] == "spikedetect.report/v1"
    )
    assert len(page.encode()) < 400_000


def test_cli_writes_the_report_and_warns_about_other_settings(
    inputs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    reports, incidents, truth = inputs
    out = tmp_path / "r.html"
    args = [
        "report",
        "--events",
        str(reports),
        "--incidents",
        str(incidents),
        "--truth",
        str(truth),
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert (
        out.read_text().startswith("<!doctype html>")
        and "wrote" in res.output
        and "warning" not in res.output
    )
    other = CliRunner().invoke(main, [*args, "--open-threshold", "7"])
    assert other.exit_code == 0 and "warning: incidents were made with params_hash" in other.output
