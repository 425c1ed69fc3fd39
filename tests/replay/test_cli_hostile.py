"""The offline commands under bad input, from the command line (issue 16).

Every hostile case ends with exit 0, 1 (input cut short, processed up to the fault) or 2
(unusable), one ``spikedetect: error: FILE:LINE: ...`` line, no traceback; inputs are never
changed; partial outputs are whole JSONL.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from spikedetect.cli import main
from spikedetect.files.outputs import AtomicOutput

ERROR = re.compile(r"^spikedetect: error: (?P<file>[^:]+):(?P<line>\d+): (?P<what>.+)$", re.M)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-day simulated stream with one widespread outage, its truth and its incidents."""
    d = tmp_path_factory.mktemp("hostile")
    run(["simulate", "--days", "2", "--scale", "0.1", "--peak-scale", "0.05", "--scenario", "widespread",
         "--out", str(d / "reports.jsonl.gz"), "--truth", str(d / "truth.json"), "--no-progress"])  # fmt: skip
    full = run(["replay", str(d / "reports.jsonl.gz"), "--out", str(d / "incidents.jsonl")])
    assert full.exit_code == 0, full.output
    return {"dir": d, "reports": d / "reports.jsonl.gz", "truth": d / "truth.json", "incidents": d / "incidents.jsonl"}


def run(args: list[str], **kw: object) -> Result:
    result = CliRunner().invoke(main, args, **kw)  # type: ignore[arg-type]
    assert "Traceback" not in result.output, result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def jsonl(path: Path) -> list[dict[str, object]]:
    """Every line parses: a partial output is still whole JSONL."""
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n")
    return [orjson.loads(line) for line in raw.splitlines()]


def one_error(result: Result) -> re.Match[str]:
    errors = [line for line in result.output.splitlines() if line.startswith("spikedetect: error:")]
    assert len(errors) == 1, result.output
    m = ERROR.match(errors[0])
    assert m is not None, errors[0]
    return m


# -- bullet 1: input errors are one line and exit 2; partial input is processed, exit 1 ----------------


def test_truncated_gzip_is_processed_up_to_the_fault(data: dict[str, Path], tmp_path: Path) -> None:
    raw = data["reports"].read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(raw[: int(len(raw) * 0.9)])
    before = digest(cut)
    res = run(["replay", str(cut), "--out", str(tmp_path / "inc.jsonl"), "--dlq", str(tmp_path / "dlq.jsonl")])
    assert res.exit_code == 1, res.output
    m = one_error(res)
    assert m["file"] == str(cut) and "truncated gzip" in m["what"] and "rest is lost" in m["what"]
    whole = int(m["line"]) - 1
    assert f"events {whole:,}" in res.output  # the summary is printed and counts what was read
    lines = gzip.decompress(data["reports"].read_bytes()).split(b"\n")
    assert 0.5 * len(lines) < whole < len(lines)
    incidents = jsonl(tmp_path / "inc.jsonl")
    assert incidents and all(e["schema"] == "spikedetect.incident/v2" for e in incidents)
    assert jsonl(tmp_path / "dlq.jsonl") == []
    assert digest(cut) == before and "Aborted" not in res.output


def test_crc_error_is_a_fault_after_all_lines(data: dict[str, Path], tmp_path: Path) -> None:
    raw = bytearray(data["reports"].read_bytes())
    raw[-6] ^= 0xFF  # the CRC32 in the gzip trailer
    bad = tmp_path / "crc.jsonl.gz"
    bad.write_bytes(bytes(raw))
    res = run(["replay", str(bad), "--out", str(tmp_path / "inc.jsonl")])
    assert res.exit_code == 1 and "CRC check failed" in one_error(res)["what"]
    assert jsonl(tmp_path / "inc.jsonl") == jsonl(data["incidents"])  # every line was read before the trailer


def test_a_stream_cut_mid_line_is_a_fault_naming_the_last_line(tmp_path: Path) -> None:
    src = tmp_path / "cut.jsonl"
    good = b'{"ts": "2026-11-24T00:00:30Z", "service": "ig", "region": "US/CA", "category": "feed"}\n'
    src.write_bytes(good * 5 + b'{"ts": "2026-11-24T00:0')
    res = run(["replay", str(src), "--out", str(tmp_path / "out.jsonl")])
    assert res.exit_code == 1, res.output
    m = one_error(res)
    assert (m["file"], m["line"]) == (str(src), "6") and "cut short" in m["what"]
    piped = run(["replay", "-", "--out", str(tmp_path / "out2.jsonl")], input=src.read_bytes())
    assert piped.exit_code == 1 and one_error(piped)["file"] == "<stdin>"
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(good * 5 + good.rstrip())  # no final newline but a whole report: fine
    assert run(["replay", str(whole), "--out", str(tmp_path / "o3.jsonl")]).exit_code == 0


def test_evaluate_and_report_read_a_truncated_gzip_up_to_the_fault(data: dict[str, Path], tmp_path: Path) -> None:
    inc_gz = tmp_path / "inc.jsonl.gz"
    inc_gz.write_bytes(gzip.compress(data["incidents"].read_bytes())[:-30])
    ev = run(["evaluate", "--incidents", str(inc_gz), "--truth", str(data["truth"]), "--json", str(tmp_path / "s.json")])
    assert ev.exit_code == 1 and "truncated gzip" in one_error(ev)["what"], ev.output
    assert orjson.loads((tmp_path / "s.json").read_bytes())["incidents"] > 0
    events = tmp_path / "ev.jsonl.gz"
    events.write_bytes(data["reports"].read_bytes()[:-5000])
    rep = run(["report", "--events", str(events), "--incidents", str(data["incidents"]), "--out",
               str(tmp_path / "r.html"), "--no-progress"])  # fmt: skip
    assert rep.exit_code == 1 and one_error(rep)["file"] == str(events), rep.output
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")


@pytest.mark.parametrize("content", [b"\x00\x01\x02 binary \xff\xfe\n" * 50, b"a,b,c\n1,2,3\n" * 20])
def test_garbage_input_fails_with_reasons(tmp_path: Path, content: bytes) -> None:
    src = tmp_path / "garbage.jsonl"
    src.write_bytes(content)
    res = run(["replay", str(src), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2
    m = one_error(res)
    assert m["file"] == str(src) and m["line"] == "1" and "rejected or late" in m["what"]
    assert re.search(r"rejected by reason: \w+ [\d,]+ \(first at line 1\)", res.output)


def test_missing_and_empty_inputs_are_one_line_errors(tmp_path: Path) -> None:
    for args in (["replay", str(tmp_path / "nope.jsonl")],
                 ["evaluate", "--incidents", str(tmp_path / "nope"), "--truth", str(tmp_path / "nope.json")],
                 ["replay", "--series", str(tmp_path / "nope.csv")]):  # fmt: skip
        res = run(args)
        assert res.exit_code == 2 and res.output.count("\n") <= 2 and "spikedetect: error:" in res.output, res.output
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    res = run(["replay", str(empty), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "no report events" in res.output


# -- bullet 2: an output naming an input is refused; outputs are written through a temporary file -----


def test_outputs_that_name_an_input_are_refused_before_writing(data: dict[str, Path], tmp_path: Path) -> None:
    d = tmp_path
    for name in ("reports.jsonl.gz", "truth.json", "incidents.jsonl"):
        shutil.copy(data[name.split(".")[0]], d / name)
    reports, truth, incidents = d / "reports.jsonl.gz", d / "truth.json", d / "incidents.jsonl"
    before = {p: digest(p) for p in (reports, truth, incidents)}
    cases = [
        ["replay", str(reports), "--out", str(reports)],
        ["replay", str(reports), "--out", str(d / "x.jsonl"), "--dlq", str(reports)],
        ["replay", str(reports), "--out", str(d / "x.jsonl"), "--summary-json", str(truth), "--truth", str(truth)],
        ["replay", str(reports), "--out", str(d / "same.jsonl"), "--dlq", str(d / "same.jsonl")],
        ["evaluate", "--incidents", str(incidents), "--truth", str(truth), "--json", str(incidents)],
        ["report", "--events", str(reports), "--incidents", str(incidents), "--out", str(incidents)],
        ["report", "--events", str(reports), "--incidents", str(incidents), "--out", str(d / ".." / d.name / "reports.jsonl.gz")],
        ["simulate", "--days", "2", "--out", str(d / "s.jsonl"), "--truth", str(d / "s.jsonl")],
    ]  # fmt: skip
    for args in cases:
        res = run(args)
        assert res.exit_code == 2, (args, res.output)
        assert "refusing to overwrite" in one_error_line(res), res.output
    assert {p: digest(p) for p in before} == before
    assert not (d / "x.jsonl").exists() and not (d / "same.jsonl").exists()


def one_error_line(res: Result) -> str:
    lines = [line for line in res.output.splitlines() if line.startswith("spikedetect: error:")]
    assert len(lines) == 1, res.output
    return lines[0]


def test_an_output_that_is_a_directory_is_refused(data: dict[str, Path], tmp_path: Path) -> None:
    for args in (["replay", str(data["reports"]), "--out", str(tmp_path)],
                 ["evaluate", "--incidents", str(data["incidents"]), "--truth", str(data["truth"]), "--json", str(tmp_path)],
                 ["report", "--events", str(data["reports"]), "--incidents", str(data["incidents"]), "--out", str(tmp_path)],
                 ["replay", str(data["reports"]), "--out", str(tmp_path / "no" / "such" / "dir.jsonl")]):  # fmt: skip
        res = run(args)
        assert res.exit_code == 2 and "director" in one_error_line(res), res.output


def test_outputs_replace_the_target_only_at_the_end(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")
    out = AtomicOutput(str(target))
    out.write(b"new\n")
    assert target.read_bytes() == b"old\n"  # still the old content while writing
    out.abort()
    assert target.read_bytes() == b"old\n" and [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    with AtomicOutput(str(target)) as out2:
        out2.write(b"new\n")
    assert target.read_bytes() == b"new\n" and [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    gz = tmp_path / "x.jsonl.gz"
    with AtomicOutput(str(gz)) as out3:
        out3.write(b"a\n")
    assert gzip.decompress(gz.read_bytes()) == b"a\n"


def test_a_failed_replay_leaves_an_existing_output_alone(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"ts": "2026-11-24T00:00:30Z", "service": "ig", "region": "US", "category": "feed"}\n')
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"keep": true}\n')
    res = run(["replay", str(src), "--out", str(out), "--window-ms", "0"])
    assert res.exit_code == 2 and out.read_bytes() == b'{"keep": true}\n'
    ok = run(["replay", str(src), "--out", str(out), "--dlq", "/dev/null"])
    assert ok.exit_code == 0 and out.read_bytes() == b"" and sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


# -- bullet 3: rejections by reason with their first line; --max-reject-rate ---------------------------


def test_summary_lists_rejections_by_reason_with_first_line(tmp_path: Path) -> None:
    good = '{{"ts": "2026-11-24T00:{m:02d}:30Z", "service": "ig", "region": "US", "category": "feed"}}'
    lines = [good.format(m=m) for m in range(20)]
    lines[3] = "not json"
    lines[7] = '{"ts": "2026-11-24T00:07:30Z", "service": "ig", "region": "US"}'
    lines[12] = "also not json"
    lines.append(good.format(m=1))  # 19 minutes behind: late
    src = tmp_path / "mixed.jsonl"
    src.write_text("\n\n".join(lines[:2]) + "\n" + "\n".join(lines[2:]) + "\n")  # a blank line 2: real line numbers
    res = run(["replay", str(src), "--out", str(tmp_path / "o.jsonl"), "--summary-json", str(tmp_path / "s.json"),
               "--dlq", str(tmp_path / "d.jsonl")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "rejected by reason: not_json 2 (first at line 5), missing_category 1 (first at line 9), late 1 " \
           "(first at line 22)" in res.output  # fmt: skip
    summary = orjson.loads((tmp_path / "s.json").read_bytes())
    assert summary["first_line_by_reason"] == {"not_json": 5, "missing_category": 9, "late": 22}
    assert [(d["reason"], d["line"]) for d in jsonl(tmp_path / "d.jsonl")] == [
        ("not_json", 5), ("missing_category", 9), ("not_json", 14), ("late", 22)]


def test_max_reject_rate_fails_a_mostly_late_input(data: dict[str, Path], tmp_path: Path) -> None:
    lines = gzip.decompress(data["reports"].read_bytes()).splitlines()[:3000]
    rev = tmp_path / "reversed.jsonl"
    rev.write_bytes(b"\n".join(reversed(lines)) + b"\n")
    res = run(["replay", str(rev), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2
    m = one_error(res)
    assert m["file"] == str(rev) and "more than --max-reject-rate 0.5" in m["what"] and "late" in m["what"]
    assert jsonl(tmp_path / "o.jsonl") == []  # outputs are still written whole
    assert run(["replay", str(rev), "--out", str(tmp_path / "o.jsonl"), "--max-reject-rate", "1"]).exit_code == 0
    strict = run(["replay", str(data["reports"]), "--out", "/dev/null", "--max-reject-rate", "0"])
    assert strict.exit_code == 0  # nothing rejected: 0 is not more than 0


# -- bullet 6: evaluate and report, the listed tracebacks -----------------------------------------------


def _truth(data: dict[str, Path], tmp_path: Path, **change: object) -> Path:
    t = orjson.loads(data["truth"].read_bytes())
    t.update(change)
    path = tmp_path / "t.json"
    path.write_bytes(orjson.dumps(t))
    return path


def test_evaluate_and_report_name_the_bad_line(data: dict[str, Path], tmp_path: Path) -> None:
    good = data["incidents"].read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(good[:4]) + b"{oops\n" + b"".join(good[4:]))
    for cmd in (["evaluate", "--truth", str(data["truth"])],
                ["report", "--events", str(data["reports"]), "--out", str(tmp_path / "r.html")]):  # fmt: skip
        res = run([*cmd, "--incidents", str(bad)])
        assert res.exit_code == 2
        m = one_error(res)
        assert (m["file"], m["line"]) == (str(bad), "5") and m["what"].startswith("not JSON")
    half = tmp_path / "half.jsonl"
    half.write_bytes(b"".join(good[:6]) + good[6][:40])
    res = run(["evaluate", "--truth", str(data["truth"]), "--incidents", str(half)])
    assert res.exit_code == 1 and (one_error(res)["line"], "cut short" in one_error(res)["what"]) == ("7", True)


@pytest.mark.parametrize("truth_text, what", [
    (b"[1, 2]", "a JSON list"),
    (b'{"format": "spikedetect.truth/v1",\n "start": "2026-11-24T00:00:00Z",\n "end": "x"}', "not an RFC 3339 time"),
    (b"{\n\n  oops", "not JSON"),
    (b"", "not JSON"),
])  # fmt: skip
def test_unusable_truth_files_are_one_line(data: dict[str, Path], tmp_path: Path, truth_text: bytes, what: str) -> None:
    truth = tmp_path / "t.json"
    truth.write_bytes(truth_text)
    res = run(["evaluate", "--incidents", str(data["incidents"]), "--truth", str(truth)])
    assert res.exit_code == 2 and what in one_error_line(res) and str(truth) in one_error_line(res), res.output


def test_listed_tracebacks_are_exit_2(data: dict[str, Path], tmp_path: Path) -> None:
    zero = _truth(data, tmp_path, window_ms=0)
    res = run(["evaluate", "--incidents", str(data["incidents"]), "--truth", str(zero)])
    assert res.exit_code == 2 and "window_ms must be a positive number" in one_error_line(res)
    first = orjson.loads(data["incidents"].read_bytes().splitlines()[0])
    for field, value in (("incident_id", ["a", "b"]), ("service", 7), ("opened_at", {"x": 1}), ("seq", "x"),
                         ("children", [1, 2])):  # fmt: skip
        inc = tmp_path / "inc.jsonl"
        inc.write_bytes(data["incidents"].read_bytes() + orjson.dumps({**first, field: value}) + b"\n")
        n = data["incidents"].read_bytes().count(b"\n") + 1
        for cmd in (["evaluate", "--truth", str(data["truth"])],
                    ["report", "--events", str(data["reports"]), "--out", str(tmp_path / "r.html")]):  # fmt: skip
            res = run([*cmd, "--incidents", str(inc)])
            assert res.exit_code == 2, (field, res.output)
            m = one_error(res)
            assert (m["file"], m["line"]) == (str(inc), str(n)) and field in m["what"]
    outage = orjson.loads(data["truth"].read_bytes())["outages"][0]
    for change in ({"outages": [{**outage, "regions": "US"}]}, {"outages": [1]}, {"services": "ig"},
                   {"outages": [{**outage, "must_detect": []}]} ):  # fmt: skip
        t = _truth(data, tmp_path, **change)
        res = run(["evaluate", "--incidents", str(data["incidents"]), "--truth", str(t)])
        assert res.exit_code in (0, 2) and "internal error" not in res.output, (change, res.output)
        if res.exit_code == 2:
            assert str(t) in one_error_line(res)


def test_a_reader_that_stops_early_is_not_an_error() -> None:
    """``simulate --out - | head``: exit 1 quietly, no traceback and no error line."""
    proc = subprocess.Popen([sys.executable, "-m", "spikedetect", "simulate", "--days", "2", "--out", "-",
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and orjson.loads(first)["service"]
    assert "Traceback" not in err and "error" not in err, err
