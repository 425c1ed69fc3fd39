"""Hypothesis: random truth and incident files never make ``evaluate`` or ``report`` crash, nor random
CSVs ``replay --series``.

Each run ends with exit 0 (usable) or 2 (one ``spikedetect: error:`` line), never a traceback
or an internal error (exit 3). Junk that starts with gzip's magic bytes is a truncated ``.gz``:
read up to the fault, then exit 1 with the documented ``input ends early`` error
(docs/evaluation.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spikedetect.cli import main

START = "2026-11-24T00:00:00.000Z"
REPORT = b'{"ts": "2026-11-24T00:00:30Z", "service": "ig", "region": "US/CA", "category": "feed"}\n'

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False),
                      st.text(max_size=12))  # fmt: skip
json_any = st.recursive(json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c,
                                                                                          max_size=3), max_leaves=8)
times = st.one_of(st.sampled_from([START, "2026-11-24T01:00:00Z", "2026-11-26T00:00:00.000Z", "garbage", ""]),
                  st.integers(-(10**15), 10**15), st.integers(-(2**63), 2**63), st.floats(-1e300, 1e300),
                  json_any)  # fmt: skip


def _mutate(base: dict[str, Any], data: st.DataObject, pool: st.SearchStrategy[Any]) -> dict[str, Any]:
    out = dict(base)
    for key in data.draw(st.lists(st.sampled_from(sorted(base)), max_size=3)):
        if data.draw(st.booleans()):
            out.pop(key, None)
        else:
            out[key] = data.draw(pool)
    return out


@st.composite
def truth_files(draw: st.DrawFn) -> bytes:
    data = draw(st.data())
    outage = _mutate({"id": "o1", "kind": "single_city", "service": "ig", "start": "2026-11-24T00:10:00Z",
                      "end": "2026-11-24T00:40:00Z", "regions": ["US/CA"], "must_detect": ["US/CA"],
                      "large": False}, data, st.one_of(times, json_any))  # fmt: skip
    trap = _mutate({"id": "t1", "kind": "burst", "service": "ig", "start": "2026-11-24T02:00:00Z",
                    "end": "2026-11-24T02:10:00Z", "regions": ["*"], "keys": ["*"]}, data, st.one_of(times, json_any))
    truth = _mutate({"format": "spikedetect.truth/v1", "seed": 1, "start": START, "end": "2026-11-25T00:00:00Z",
                     "window_ms": 60_000, "services": ["ig"], "outages": [outage], "traps": [trap]},
                    data, st.one_of(times, json_any, st.integers(-5, 5)))  # fmt: skip
    kind = draw(st.sampled_from(["mutated", "mutated", "any", "junk"]))
    if kind == "any":
        return orjson.dumps(draw(json_any))
    if kind == "junk":
        return draw(st.binary(max_size=40))
    return orjson.dumps(truth)


@st.composite
def incident_files(draw: st.DrawFn) -> bytes:
    data = draw(st.data())
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        v1 = {"schema": "spikedetect.incident/v1", "type": "opened", "incident_id": "inc-1", "seq": 1,
              "service": "ig", "region": "US/CA", "opened_at": "2026-11-24T00:12:00Z",
              "detected_at": "2026-11-24T00:13:00Z", "closed_at": None,
              "children": [{"region": "US/CA/Los Angeles"}], "detector": {"params_hash": "x"}}  # fmt: skip
        member = _mutate({"region": "US/CA", "level": "state", "opened_at": "2026-11-24T00:12:00Z",
                          "detected_at": "2026-11-24T00:13:00Z", "closed_at": None, "observed": 9,
                          "expected": 1.5, "peak_count": 9}, data, st.one_of(times, json_any))  # fmt: skip
        v2 = {**v1, "schema": "spikedetect.incident/v2", "incident_id": "out-1", "level": "state",
              "regions": [member], "countries": ["US"]}  # an outage incident (v2) with one member region
        ev = _mutate(draw(st.sampled_from([v1, v2])), data, st.one_of(times, json_any))
        kind = draw(st.sampled_from(["event", "event", "event", "any", "junk"]))
        line = orjson.dumps(ev) if kind == "event" else orjson.dumps(draw(json_any)) if kind == "any" else \
            draw(st.binary(max_size=30)).replace(b"\n", b" ")  # fmt: skip
        lines.append(line + b"\n")
    return b"".join(lines)


def _check(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    text = result.output
    truncated_gz = result.exit_code == 1 and "input ends early: truncated gzip" in text
    assert result.exit_code in (0, 2) or truncated_gz, (result.exit_code, text[-800:])
    assert "Traceback" not in text and "internal error" not in text, text[-800:]
    if result.exit_code in (1, 2):
        assert "spikedetect: error:" in text or "Usage:" in text, text[-400:]
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(truth=truth_files(), incidents=incident_files())
@example(truth=orjson.dumps({"format": "spikedetect.truth/v1", "start": START, "end": "2026-11-25T00:00:00Z",
                             "outages": [], "traps": []}), incidents=b"\x1f\x8b\n")  # junk with gzip's magic
def test_evaluate_and_report_exit_0_or_2_on_random_files(truth: bytes, incidents: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "truth.json").write_bytes(truth)
        (d / "inc.jsonl").write_bytes(incidents)
        (d / "events.jsonl").write_bytes(REPORT * 3)
        _check(["evaluate", "--incidents", str(d / "inc.jsonl"), "--truth", str(d / "truth.json"),
                "--json", str(d / "score.json")])  # fmt: skip
        _check(["report", "--events", str(d / "events.jsonl"), "--incidents", str(d / "inc.jsonl"),
                "--truth", str(d / "truth.json"), "--out", str(d / "r.html"), "--no-progress"])  # fmt: skip


cells = st.one_of(st.integers(-(2**70), 2**70).map(str), st.floats().map(repr), st.text(max_size=8),
                  st.sampled_from(["2026-11-24T00:00:00Z", "2026-11-24T00:01:00", "9999-12-31T23:59:59Z", "1e308",
                                   "nan", "-inf", "", "\ufeff", '"', "1795478400", "1795478460000"]))  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(cells, cells), max_size=12), header=st.sampled_from(["timestamp,value", "\ufefftimestamp,value", "value,timestamp", "x,y"]))
@example(rows=[("0", "1"), ("1.531763401139191e-308", "0")], header="value,timestamp")  # a subnormal median: no value scale
@example(rows=[("0", "6e-306"), ("60", "6e-306")], header="timestamp,value")  # a scale of 1e309 from a finite ratio
def test_replay_series_exits_0_or_2_on_random_csv(rows: list[tuple[str, str]], header: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.csv"
        path.write_text(header + "\n" + "".join(f"{a},{b}\n" for a, b in rows), encoding="utf-8", errors="surrogatepass")
        _check(["replay", "--series", str(path), "--out", str(Path(tmp) / "o.jsonl"), "--max-incident-ms", "600000"])
