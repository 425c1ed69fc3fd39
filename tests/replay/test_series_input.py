"""``replay --series`` parsing and validation from the command line (issue 16).

Epoch seconds vs milliseconds vs RFC 3339, a byte-order mark, non-finite and huge values
(rejected with their line), duplicate and unsorted timestamps (reported with what was done).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from spikedetect.cli import main
from spikedetect.core.timefmt import format_ts_ms

START_MS = 1_795_478_400_000  # 2026-11-24T00:00Z


def rows(days: int = 3) -> list[tuple[int, float]]:
    """Per-minute counts around 30 with a day-3 spike of 400 for 20 minutes."""
    rng = random.Random(7)
    out = []
    for m in range(days * 1440):
        lam = 30 + 10 * math.sin(2 * math.pi * m / 1440)
        value = 400.0 if 2 * 1440 + 600 <= m < 2 * 1440 + 620 else max(0.0, rng.gauss(lam, math.sqrt(lam)))
        out.append((START_MS + m * 60_000, round(value)))
    return out


def csv(fmt: str, data: list[tuple[int, float]], bom: bool = False) -> str:
    conv = {"rfc": lambda t: format_ts_ms(t), "ms": str, "s": lambda t: str(t // 1000),
            "s_frac": lambda t: f"{t / 1000:.3f}"}[fmt]  # fmt: skip
    text = "timestamp,value\n" + "".join(f"{conv(t)},{v}\n" for t, v in data)
    return ("\ufeff" if bom else "") + text


def replay(tmp_path: Path, text: str | bytes, *args: str) -> tuple[Result, list[dict[str, object]]]:
    src = tmp_path / "s.csv"
    src.write_bytes(text.encode() if isinstance(text, str) else text)
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(main, ["replay", "--series", str(src), "--out", str(out), *args])
    assert "Traceback" not in res.output and "RuntimeWarning" not in res.output, res.output
    events = [orjson.loads(x) for x in out.read_bytes().splitlines()] if out.exists() else []
    return res, events


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    res, events = replay(tmp_path_factory.mktemp("ref"), csv("rfc", rows()))
    assert res.exit_code == 0 and events, res.output
    return events


@pytest.mark.parametrize("fmt, name", [("ms", "epoch milliseconds"), ("s", "epoch seconds"),
                                       ("s_frac", "epoch seconds")])  # fmt: skip
def test_epoch_units_are_detected(tmp_path: Path, reference: list[dict[str, object]], fmt: str, name: str) -> None:
    res, events = replay(tmp_path, csv(fmt, rows()))
    assert res.exit_code == 0, res.output
    assert f"series: timestamps read as {name} (4,320 rows)" in res.output
    assert "window_ms=60000 (inferred)" not in res.output  # 60000 is the default: not listed as a change
    assert events == reference


def test_a_byte_order_mark_is_skipped(tmp_path: Path, reference: list[dict[str, object]]) -> None:
    res, events = replay(tmp_path, csv("rfc", rows(), bom=True))
    assert res.exit_code == 0 and events == reference, res.output


def test_non_finite_and_huge_values_are_rejected_with_their_line(
        tmp_path: Path, reference: list[dict[str, object]]) -> None:  # fmt: skip
    data = rows()
    text = csv("rfc", data).splitlines()
    # line 1 is the header; replace three rows far from the spike (their windows become 0)
    bad = {101: "1e308", 202: "inf", 303: "nan", 404: "-5", 505: "many"}
    for line, value in bad.items():
        text[line - 1] = f"{format_ts_ms(data[line - 2][0])},{value}"
    res, events = replay(tmp_path, "\n".join(text) + "\n", "--dlq", str(tmp_path / "dlq.jsonl"))
    assert res.exit_code == 0, res.output
    for reason, line in (("value_too_large", 101), ("value_not_finite", 202), ("bad_value", 404)):
        assert f"rejected as {reason} (first at line {line})" in res.output
    assert "rejected by reason: value_not_finite 2 (first at line 202)" in res.output
    dead = [orjson.loads(x) for x in (tmp_path / "dlq.jsonl").read_bytes().splitlines()]
    assert [(d["line"], d["reason"]) for d in dead] == [(101, "value_too_large"), (202, "value_not_finite"),
                                                        (303, "value_not_finite"), (404, "bad_value"),
                                                        (505, "bad_value")]  # fmt: skip
    spikes = [e for e in events if e["type"] == "opened" and str(e["opened_at"]).startswith("2026-11-26T10")]
    assert spikes  # the outage after a 1e308 row is still found
    assert {e["opened_at"] for e in reference if e["type"] == "opened"} >= {e["opened_at"] for e in spikes}


def test_duplicate_and_unsorted_timestamps_are_reported(tmp_path: Path) -> None:
    data = rows()
    lines = csv("ms", data).splitlines()
    lines.insert(11, lines[10])  # a duplicate of line 11, now line 12
    lines[50], lines[60] = lines[60], lines[50]  # out of order
    res, _ = replay(tmp_path, "\n".join(lines) + "\n")
    assert res.exit_code == 0, res.output
    assert "series: 1 duplicate timestamp (first at line 12): values added" in res.output
    # line 51 now holds a later time: the rows after it up to line 61 are out of order
    assert "series: 10 rows out of time order (first at line 52): rows sorted by time" in res.output


@pytest.mark.parametrize("content, line, what", [
    (b"time,count\n1,2\n", 1, "header naming 'timestamp' and 'value'"),
    (b"timestamp,value\n1795478400,1\n\xff\xfe,2\n", 3, "not UTF-8"),
    (b"timestamp,value\n1795478400,1\n", 0, "cannot infer the window"),
    (b"timestamp,value\n1795478400,1\n1795478460,\"" + b"9" * 200_000 + b"\"\n", 3, "not a CSV"),
])  # fmt: skip
def test_unusable_series_are_one_line(tmp_path: Path, content: bytes, line: int, what: str) -> None:
    res, _ = replay(tmp_path, content)
    assert res.exit_code == 2, res.output
    where = f"{tmp_path / 's.csv'}:{line}: " if line else f"{tmp_path / 's.csv'}: "
    assert f"spikedetect: error: {where}" in res.output and what in res.output, res.output
    assert not (tmp_path / "out.jsonl").exists()
