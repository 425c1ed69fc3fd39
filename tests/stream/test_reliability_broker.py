"""Broker restart mid-stream: the worker reconnects by itself and the result is unchanged.

The shared broker on 9092 serves other tests concurrently, so this test runs its own
single-node broker (``LocalKafka`` on a free port pair from 29492, its own state
directory under the test's tmp dir, the jar cache shared) and stops and restarts that.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from spikedetect.kafka_local import LocalKafka, spikedetect_home
from spikedetect.sim.simulate import SimulationConfig, generate
from tests.stream.harness import LiveRun, count_diff, replay_lines

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]

OUTAGE_S = float(os.environ.get("SPIKEDETECT_OUTAGE_S", "8"))


def _free_pair(start: int) -> int:
    """The first port from ``start`` that is free together with the next one (the controller's)."""
    for port in range(start, start + 200, 2):
        try:
            for p in (port, port + 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port pair from {start}")


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    home = tmp_path / "kafka-home"
    home.mkdir()
    jars = spikedetect_home() / "kafka"
    if jars.is_dir():
        (home / "kafka").symlink_to(jars)  # share the jars, not the data
    broker = LocalKafka(_free_pair(29492), home=home, heap="512m")
    broker.start(timeout_s=180)
    try:
        yield broker
    finally:
        broker.stop()



def test_broker_restart_mid_stream_changes_nothing(private_broker: LocalKafka, tmp_path: Path) -> None:
    lines = list(
        generate(SimulationConfig(seed=9, days=2, scale=0.05, peak_scale=0.1, scenario="widespread"))
    )
    want, want_counts = replay_lines(lines, tmp_path)
    assert any(orjson.loads(e)["type"] == "closed" for e in want)
    # Everything is produced before the outage: an input partition that a worker has read
    # to its end and that then stays quiet for idle_ms advances its watermark by the wall
    # clock (by design), so reports produced after a long outage could be late.
    run = LiveRun(private_broker.bootstrap, tmp_path)
    run.create_input()
    run.produce(lines, key=lambda v: str(orjson.loads(v)["region"]).encode())
    try:
        worker = run.start_worker()
        run.wait_for_log("ingest assigned partitions")
        time.sleep(1.0)
        end, done = run.lag("partials", run.app_id)
        assert done < end, f"the owners had read every partial ({done}/{end}) before the outage"
        t0 = time.monotonic()
        private_broker.stop()
        time.sleep(OUTAGE_S)
        assert worker.poll() is None, f"the worker exited while the broker was down\n{run.log_tail()}"
        private_broker.start(timeout_s=180)
        outage_s = time.monotonic() - t0
        got = run.wait_for_incidents(len(want), timeout_s=300, settle_s=6)
        counts = run.wait_for_windows(want_counts)
        run.assert_alive()
    finally:
        run.stop_all()
    progress = f"outage {outage_s:.1f}s with {done}/{end} partials read by the owners"
    assert not run.crashes(), "\n".join(run.crashes()[:10])
    assert got == want, f"incident streams differ after the broker restart ({progress})\n{run.log_tail(30)}"
    assert counts == want_counts, f"window counts differ: {count_diff(counts, want_counts)} ({progress})"
    assert len(run.workers) == 1, "nobody restarted the worker"
