"""Every benchmark runs end to end in its tiny ``--smoke`` form, so none of them rots.

These are not timed tests: they check that each script still measures what it names and
prints its figures, never how fast anything is (figures come from the full runs, by hand,
in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spikedetect.kernel import closing

ROOT = Path(__file__).resolve().parent.parent

NUMBER = r"[\d,.]+"
# what each smoke run must print: the measured figure and, where there is one, its baseline
EXPECTED = {
    "replay": [rf"jsonl\s+{NUMBER} events: read\+decode {NUMBER}/s, replay {NUMBER}/s \(ratio {NUMBER}\)",
               rf"jsonl\.gz\s+{NUMBER} events: read\+decode {NUMBER}/s, replay {NUMBER}/s"],
    "ab": [rf"replay: new is {NUMBER}x base; base ratio to read\+decode {NUMBER}; new ratio to read\+decode {NUMBER}"],
    "memory": [rf"{NUMBER} keys: RSS {NUMBER} MiB \(\+{NUMBER} B/key\), state {NUMBER} B/key, "
               rf"changelog {NUMBER} MiB/window"],
    "quality": [r"detector seasonal", r"detector ewma", r"outages_detected", r"false_alarms_per_day",
                r"sustained scenarios", r"small_city"],
    "close": [rf"{NUMBER} reports, {NUMBER} windows, {NUMBER} keys: replay {NUMBER} s CPU, closing {NUMBER} s CPU.*; breakdowns {NUMBER} s CPU",
              rf"row loops, median per call: (expect {NUMBER} us, gather_evidence {NUMBER} us, learn_window {NUMBER} us"
              rf"|fused_score_first {NUMBER} us, fused_score_second {NUMBER} us, fused_learn {NUMBER} us)",
              rf"steps of closing, CPU us per window \(last repeat\): merge {NUMBER}, leaf window {NUMBER}, "
              rf"observe {NUMBER}, score {NUMBER}, incident steps {NUMBER}, learn {NUMBER}, signals and report {NUMBER}"],
    "instr": [rf"replay\s+base\s+{NUMBER} G\s+new\s+{NUMBER} G\s+new/base 1\.0000",
              rf"imports\s+base\s+{NUMBER} G"],
    "calibration": [rf"per key and window: numpy {NUMBER} us, River stats.Quantile x8 {NUMBER} us"],
    "switches": [rf"replay avx on {NUMBER} s CPU, off {NUMBER} s CPU \(median of 1\): on is {NUMBER}x off"
                 if closing is not None else r"no compiled closing loops"],
    "live": [rf"raw_aiokafka\s+steady\s+{NUMBER} ev/s", rf"faust_floor\s+steady\s+{NUMBER} ev/s",
             rf"spikedetect\s+steady\s+{NUMBER} ev/s .* ratio to raw aiokafka {NUMBER}"],
    "latency": [rf"window_summary\s+n=\s*[1-9]\d*\s+p50={NUMBER}\s+p99={NUMBER}",
                rf"input_topic_floor\s+n=\s*[1-9]\d*\s+p50={NUMBER}"],
    "recovery": [rf"{NUMBER} keys: recovered in {NUMBER}s, processing again in {NUMBER}s \(median\); "
                 rf"empty-state restart {NUMBER}s"],
    "owner_capacity": [rf"[1-9][\d,]* keys \({NUMBER} leaves, {NUMBER} reports/window\): quiet close {NUMBER} ms "
                       rf"\+ write {NUMBER} ms \(0 open\); outage close {NUMBER} ms \+ write {NUMBER} ms "
                       rf"\([1-9]\d* open\); state [1-9][\d,]* B/key",
                       rf"per window at {NUMBER} keys: {NUMBER} us per key .* within 50% of a 60 s window: "
                       rf"[1-9][\d,]*( \(extrapolated\))?; within 1 s: [1-9][\d,]*"],
    "owner_live": [rf"[1-9][\d,]* keys live: [1-9]\d* windows closed in [1-9]\d* calls, scoring_seconds mean "
                   rf"{NUMBER} ms per window"],
}
NEEDS_KAFKA = {"live", "latency", "recovery", "owner_live"}


def run_smoke(name: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.bench_{name}", "--smoke"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, f"bench_{name} --smoke exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(set(EXPECTED) - NEEDS_KAFKA))
def test_offline_benchmark_smoke_runs_and_reports(name: str) -> None:
    out = run_smoke(name, dict(os.environ))
    for pattern in EXPECTED[name]:
        assert re.search(pattern, out), f"bench_{name} did not report {pattern!r}:\n{out}"


@pytest.mark.kafka
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(NEEDS_KAFKA))
def test_broker_benchmark_smoke_runs_and_reports(name: str, kafka_bootstrap: str) -> None:
    out = run_smoke(name, dict(os.environ, SPIKEDETECT_KAFKA=kafka_bootstrap))
    for pattern in EXPECTED[name]:
        assert re.search(pattern, out), f"bench_{name} did not report {pattern!r}:\n{out}"
