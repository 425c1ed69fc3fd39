"""The README's first command, `make demo` (= `spikedetect demo`), on its two paths: offline on
the bundled sample when no broker answers, live through a real worker when one does. Both
must publish the same incidents, since both drive the same core."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from spikedetect.demo import SAMPLE, TRUTH, data_path
from spikedetect.evaluate.score import evaluate
from spikedetect.files.sources import open_binary
from spikedetect.sim.truth import load_truth
from tests.stream.harness import after_input, input_end_ms


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_demo(out: Path, *args: str, env: dict[str, str] | None = None) -> tuple[list[dict], str]:
    proc = subprocess.run([sys.executable, "-m", "spikedetect", "demo", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (out / "incidents.jsonl").read_bytes().splitlines()
    return [orjson.loads(line) for line in lines], proc.stderr


def incident_keys(events: list[dict]) -> set[tuple[str, int, str]]:
    return {(e["incident_id"], e["seq"], e["type"]) for e in events}


@pytest.mark.timeout(600)
def test_demo_offline_without_a_broker_finds_the_sample_outages(tmp_path: Path) -> None:
    env = dict(os.environ, SPIKEDETECT_KAFKA=f"127.0.0.1:{free_port()}")  # nothing listens there
    events, err = run_demo(tmp_path, env=env)
    assert "replaying the bundled sample offline" in err
    assert any(e["type"] == "opened" for e in events)
    result = evaluate(events, load_truth(data_path(TRUTH)))
    assert result.false_alarms_per_day == 0 and result.trap_alarms == 0
    missed = [o.kind for o in result.outages if not o.detected]
    assert len(result.outages) == 6 and not missed, missed  # issue 14: all six, night and slow ramp too


@pytest.mark.kafka
@pytest.mark.timeout(900)
def test_demo_live_publishes_what_the_offline_demo_finds(tmp_path: Path, kafka_bootstrap: str) -> None:
    offline, _ = run_demo(tmp_path / "offline", "--offline")
    env = dict(os.environ, SPIKEDETECT_KAFKA=kafka_bootstrap)
    live, err = run_demo(tmp_path / "live", "--exit", "--web-port", str(free_port()), env=env)
    assert "worker started" in err
    with open_binary(data_path(SAMPLE)) as f:
        end_ms = input_end_ms(f.read().splitlines())
    assert incident_keys([e for e in live if not after_input(e, end_ms)]) == incident_keys(offline)
