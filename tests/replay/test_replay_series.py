"""``spikedetect replay --series``: a timestamp,value CSV scored as the total of one key."""

from __future__ import annotations

import io
import math
import random
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from spikedetect.cli import main
from spikedetect.core import DetectorConfig, IncidentEvent, format_ts_ms, parse_ts_ms
from spikedetect.replay.series import SeriesError, infer_window_ms, read_series, replay_series, to_windows

T0_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z
SPIKE_MIN = 2 * 1440 + 600  # day 3, 10:00


def parse(ts: str) -> int:
    value = parse_ts_ms(ts)
    assert value is not None
    return value


def series_csv(window_min: int = 1, days: int = 3, spike: float = 3.0, epoch: bool = False) -> str:
    """A daily cycle of rates around 40 per window (two decimals), tripled for 30 minutes."""
    rng = random.Random(4)
    rows = ["timestamp,value"]
    for m in range(0, days * 1440, window_min):
        lam = window_min * 40 * (1 + 0.5 * math.sin(2 * math.pi * (m % 1440) / 1440))
        if SPIKE_MIN <= m < SPIKE_MIN + 30:
            lam *= spike
        t = T0_MS + m * 60_000
        rows.append(f"{t if epoch else format_ts_ms(t)},{max(0.0, rng.gauss(lam, math.sqrt(1.5 * lam))):.2f}")
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize(
    ("text", "rows", "rejects"),
    [
        ("timestamp,value\n2026-11-26T00:00:00Z,1.5\n", [(1795651200000, 1.5)], []),
        ("Value,Timestamp\n3,1795651200000\n", [(1795651200000, 3.0)], []),  # any order, any case
        ("timestamp,value\n2026-11-26 00:01,2\n", [(1795651260000, 2.0)], []),  # no offset: UTC
        ("timestamp,value,note\n2026-11-26T01:00:00+01:00,0,x\n", [(1795651200000, 0.0)], []),
        ("timestamp,value\nyesterday,1\n", [], [(2, "bad_timestamp", "yesterday,1")]),
        ("timestamp,value\n1795651200000,-1\n", [], [(2, "bad_value", "1795651200000,-1")]),
        ("timestamp,value\n1795651200000,nan\n", [], [(2, "value_not_finite", "1795651200000,nan")]),
        ("timestamp,value\n1795651200000,\n\n", [], [(2, "bad_value", "1795651200000,")]),
    ],
)
def test_rows_are_parsed_or_rejected_with_a_reason(text: str, rows: list, rejects: list) -> None:
    data = read_series(io.StringIO(text))
    assert (data.rows, data.rejects) == (rows, rejects)


def test_a_csv_without_the_header_is_refused() -> None:
    with pytest.raises(SeriesError, match="header"):
        read_series(io.StringIO("1795651200000,1\n"))


def test_the_window_is_the_median_spacing_and_rows_are_aligned_to_the_first() -> None:
    rows = [(0, 1.0), (300_000, 1.0), (600_000, 1.0), (660_000, 1.0), (1_200_000, 1.0)]
    assert infer_window_ms(rows) == 300_000
    assert to_windows([(10_000, 1.0), (70_000, 2.0), (75_000, 0.5), (190_000, 4.0)], 60_000) == [
        (10_000, 1.0), (70_000, 2.5), (190_000, 4.0)]  # fmt: skip
    with pytest.raises(SeriesError):
        infer_window_ms([(0, 1.0)])


def test_a_spike_in_a_rate_series_opens_one_incident_on_the_key() -> None:
    data = read_series(io.StringIO(series_csv()))
    events: list[IncidentEvent] = []
    summary = replay_series(data, DetectorConfig(window_ms=60_000), service="api", region="*",
                            on_incident=events.append)  # fmt: skip
    opened = [e for e in events if e.type == "opened"]
    assert len(opened) == 1
    inc = opened[0]
    assert (inc.service, inc.region, inc.level) == ("api", "*", "global")
    spike_ms = T0_MS + SPIKE_MIN * 60_000
    assert spike_ms <= parse(inc.opened_at) <= spike_ms + 3 * 60_000
    assert inc.categories == {"value": 1.0}
    rows = dict(data.rows)
    assert inc.observed == pytest.approx(rows[parse(inc.opened_at) + 60_000])  # counted once, not per level
    assert summary.keys == 1 and summary.windows_closed == 3 * 1440
    assert [e.type for e in events][-1] == "closed"


def test_without_the_spike_nothing_opens() -> None:
    events: list[IncidentEvent] = []
    replay_series(
        read_series(io.StringIO(series_csv(spike=1.0))), DetectorConfig(), on_incident=events.append
    )
    assert events == []


def test_cli_infers_the_window_and_writes_incidents(tmp_path: Path) -> None:
    csv_path = tmp_path / "series.csv"
    csv_path.write_text(series_csv(window_min=5, days=4, epoch=True) + "oops,1\n")
    out, dlq = tmp_path / "inc.jsonl", tmp_path / "dlq.jsonl"
    res = CliRunner().invoke(main, ["replay", "--series", str(csv_path), "--service", "checkout", "--out", str(out),
                                    "--dlq", str(dlq), "--max-incident-ms", str(86_400_000)])  # fmt: skip
    assert res.exit_code == 0, res.output
    events = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert {(e["service"], e["region"], e["window_ms"]) for e in events} == {("checkout", "*", 300_000)}
    assert [e["type"] for e in events if e["type"] == "opened"] == ["opened"]
    assert orjson.loads(dlq.read_bytes())["reason"] == "bad_timestamp"
    assert "rejected 1" in res.output


def test_cli_refuses_mixed_inputs_and_stray_options(tmp_path: Path) -> None:
    csv_path = tmp_path / "s.csv"
    csv_path.write_text("timestamp,value\n1795651200000,1\n1795651260000,1\n")
    runner = CliRunner()
    both = runner.invoke(main, ["replay", str(csv_path), "--series", str(csv_path)])
    assert both.exit_code == 2 and "exactly one input" in both.output
    stray = runner.invoke(main, ["replay", str(csv_path), "--region", "US"])
    assert stray.exit_code == 2 and "--series" in stray.output
    bad = tmp_path / "bad.csv"
    bad.write_text("time,count\n1,2\n")
    refused = runner.invoke(main, ["replay", "--series", str(bad)])
    assert refused.exit_code == 2 and "header" in refused.output


def test_cli_series_opens_drop_incidents_unless_no_drops(tmp_path: Path) -> None:
    rows = ["timestamp,value"]
    for i in range(12 * 288):  # 12 days of 5-minute windows at ~300, then 4 hours at a fifth
        rows.append(f"{1_700_006_400 + 300 * i},{60 if 11 * 288 <= i < 11 * 288 + 48 else 300 + (i * 7) % 23}")
    csv_path = tmp_path / "s.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    runner = CliRunner()
    out = tmp_path / "out.jsonl"
    on = runner.invoke(main, ["replay", "--series", str(csv_path), "--out", str(out)])
    assert on.exit_code == 0, on.output
    drops = [e for e in map(orjson.loads, out.read_bytes().splitlines()) if e.get("kind") == "drop"]
    assert [e["type"] for e in drops] == ["opened", "closed"] and drops[0]["direction"] == "drop"
    assert "drops opened 1" in on.output
    off = runner.invoke(main, ["replay", "--series", str(csv_path), "--out", str(out), "--no-drops"])
    assert off.exit_code == 0, off.output
    assert all(orjson.loads(x).get("kind") != "drop" for x in out.read_bytes().splitlines())
    stray = runner.invoke(main, ["replay", str(csv_path), "--no-drops"])
    assert stray.exit_code == 2 and "--series" in stray.output
