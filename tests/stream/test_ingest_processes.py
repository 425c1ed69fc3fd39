"""``--ingest-processes N``: stage 1 in child processes gives what the in-process stage gives.

The in-process worker is proven equal to the offline replay (test_live_pipeline.py), so each
test here compares with the replay of the same stream: incidents, region incidents, window
counts, and the worker's /metrics adding up every child's reads.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.stream.harness import LiveRun, count_diff, free_port, incident_diff, replay_file
from tests.stream.streams import outage_stream

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes], dict, list[bytes], int]:
    path = tmp_path_factory.mktemp("streams") / "outage.jsonl"
    n = outage_stream(path, seed=7, days=2.0, spike_start_min=1800, spike_minutes=45)
    regions: list[bytes] = []
    incidents, counts = replay_file(path, regions=regions)
    return path, incidents, counts, regions, n


def make_run(kafka_bootstrap: str, tmp_path: Path, processes: int) -> LiveRun:
    # idle_ms 5 s as in the crash soak: with the harness's 1.5 s, a stall of the paced sending
    # thread on a busy machine lets a caught-up partition go idle, and reports still to come late
    run = LiveRun(kafka_bootstrap, tmp_path,
                  extra={"SPIKEDETECT_INGEST_PROCESSES": str(processes), "SPIKEDETECT_IDLE_MS": "5000"})
    run.create_input()
    return run


@pytest.fixture
def two_children(kafka_bootstrap: str, tmp_path: Path) -> Iterator[LiveRun]:
    run = make_run(kafka_bootstrap, tmp_path, 2)
    yield run
    run.stop_all()


def ingest_children(worker_pid: int) -> list[psutil.Process]:
    """The worker's spawned children (not multiprocessing's resource tracker)."""
    found = []
    for child in psutil.Process(worker_pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass  # it has just exited
    return found


def wait_children(worker_pid: int, want: int, timeout_s: float = 60.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    found: list[psutil.Process] = []
    while time.monotonic() < deadline:
        found = ingest_children(worker_pid)
        if len(found) >= want:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{len(found)} ingest children, expected {want}")


def assert_exact(run: LiveRun, want: list[bytes], want_counts: dict, regions: list[bytes]) -> None:
    got = run.wait_for_incidents(len(want), timeout_s=240)
    assert got == want, incident_diff(got, want)
    assert run.incidents("regions") == regions
    counts = run.wait_for_windows(want_counts)
    assert counts == want_counts, count_diff(counts, want_counts)
    assert not run.crashes(), run.crashes()


def test_one_ingest_process_gives_the_replays_incidents_and_metrics(
        kafka_bootstrap: str, tmp_path: Path, stream_file: tuple) -> None:
    path, want, want_counts, regions, n = stream_file
    run = make_run(kafka_bootstrap, tmp_path, 1)
    try:
        port = free_port()
        worker = run.start_worker(web_port=port)
        assert len(wait_children(worker.pid, 1)) == 1
        run.produce_file(path)
        assert_exact(run, want, want_counts, regions)
        # the parent's /metrics add up the child's reads (the demo waits on this)
        assert run.wait_for_metric("spikedetect_events_consumed_total", n, port, timeout_s=30)
        assert run.metric("spikedetect_events_consumed_total", port) == n
        assert run.metric("spikedetect_events_accepted_total", port) == n
        log = run.logs[-1].read_text()
        assert "ingest child" in log and "ingest assigned partitions [0, 1, 2, 3]" in log
    finally:
        run.stop_all()
    assert run.workers[-1].returncode == 0, run.log_tail()


def test_a_killed_child_is_restarted_and_a_killed_parent_takes_its_children(
        two_children: LiveRun, stream_file: tuple) -> None:
    path, want, want_counts, regions, _ = stream_file
    run = two_children
    port = free_port()
    worker = run.start_worker(web_port=port)
    children = wait_children(worker.pid, 2)
    run.wait_for_log("ingest assigned partitions")
    lines = path.read_bytes().splitlines()
    producer = run.produce_in_background(lines, rate_per_s=len(lines) / 15)
    time.sleep(6)  # mid-stream
    victim = children[0]
    victim.send_signal(signal.SIGKILL)
    run.wait_for_log(f"ingest child {victim.pid} exited with code -9")
    producer.finish()
    assert_exact(run, want, want_counts, regions)
    now = psutil.Process(worker.pid).children()  # the resource tracker goes with them too
    assert len(ingest_children(worker.pid)) == 2
    assert victim.pid not in {c.pid for c in now}, "the killed child was replaced"
    assert run.metric("spikedetect_ingest_child_restarts_total", port) == 1
    run.kill(worker)  # SIGKILL: the children see their control pipe close and stop
    _, alive = psutil.wait_procs(now, timeout=30)
    assert not alive, f"ingest children outlived their parent: {alive}"
