"""Crash/restart soak on the real broker.

A simulated scenario is produced from a background thread while the worker is killed
with SIGKILL at seeded random moments and restarted each time, so kills land during
startup and table recovery, during consumption, window closing and table writes. After
deduplication on (incident_id, seq) the incident stream must equal the uninterrupted
result (the offline replay of the same input, which the parity tests prove equal to an
uninterrupted live run), and every window count must equal the exact count.

The seed is ``SPIKEDETECT_SOAK_SEED`` (default below); the kill points are printed.
``benchmarks/soak.py`` runs the same loop for longer (``--kills``, ``--minutes``).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import orjson
import pytest

from spikedetect.sim.simulate import SimulationConfig, generate
from tests.stream.harness import LiveRun, count_diff, free_port, incident_diff, replay_lines

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]

SEED = int(os.environ.get("SPIKEDETECT_SOAK_SEED", "20261127"))
KILLS = 6
RUNNING_WAIT_S = 30.0  # at most this long for a restarted worker to close its first window
STARTUP_S = 8.0  # about how long a restarted worker takes to get its partitions (session timeout 6 s)


def kill_plan(rng: random.Random, kills: int) -> list[tuple[str, float]]:
    """Where each kill lands: ("startup", s after the process started) - during imports, group
    join or table recovery - or ("running", s after it got partitions and closed a window)."""
    phases = ["startup"] * (kills // 3) + ["running"] * (kills - kills // 3)
    rng.shuffle(phases)
    return [
        (phase, round(rng.uniform(0.5, 4.0) if phase == "startup" else rng.uniform(0.2, 7.0), 2))
        for phase in phases
    ]



def closed_ids(events: list[bytes]) -> set[str]:
    return {e["incident_id"] for e in map(orjson.loads, events) if e["type"] == "closed"}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], list[bytes], dict]:
    """Two days of the "widespread" scenario at a small scale: ~50k reports, ~40 region incidents
    (kept in REGIONS) grouped into a few outage incidents."""
    cfg = SimulationConfig(seed=5, days=2, scale=0.02, peak_scale=0.05, scenario="widespread")
    lines = list(generate(cfg))
    want, want_counts = replay_lines(lines, tmp_path_factory.mktemp("soak"), regions=REGIONS)
    assert len(closed_ids(REGIONS)) >= 10, "the scenario must open and close region incidents"
    assert closed_ids(want), "and close an outage incident"
    return lines, want, want_counts


REGIONS: list[bytes] = []  # the region incident events of the uninterrupted run


def test_sigkill_soak_while_producing_equals_an_uninterrupted_run(
    kafka_bootstrap: str, tmp_path: Path, scenario: tuple[list[bytes], list[bytes], dict]
) -> None:
    lines, want, want_counts = scenario
    # idle_ms well above any stall of the producer thread on a loaded machine: an input
    # partition that is quiet for idle_ms advances its watermark by the wall clock, which
    # would (by design) make the reports still to come late.
    run = LiveRun(kafka_bootstrap, tmp_path, extra={"SPIKEDETECT_IDLE_MS": "5000"})
    run.create_input()
    plan = kill_plan(random.Random(SEED), KILLS)
    print(f"soak seed={SEED}: kill plan {plan}")
    kills: list[str] = []
    try:
        # production spans about the first two thirds of the kills; the rest hit the catch-up
        expected_s = sum(d + (STARTUP_S if phase == "running" else 0.0) for phase, d in plan)
        producer = run.produce_in_background(lines, rate_per_s=len(lines) / (0.65 * expected_s))
        port = free_port()
        worker = run.start_worker(web_port=port)
        for i, (phase, delay) in enumerate(plan):
            closing = ""
            if phase == "running":
                # running: consuming and closing windows (owner state written to the table), so
                # that the next worker has state to recover; on a busy machine that can take
                # longer than the first seconds after the partitions are assigned
                run.wait_for_log("ingest assigned partitions")
                closed = run.wait_for_metric("spikedetect_windows_closed_total", 1, port, timeout_s=RUNNING_WAIT_S)
                closing = "" if closed else f" (no window closed within {RUNNING_WAIT_S}s)"
            time.sleep(delay)
            run.assert_alive()
            log_lines = run.logs[-1].read_text(errors="replace").splitlines()
            kills.append(
                f"kill {i + 1}: pid {worker.pid}, {delay}s after {phase}{closing}, "
                f"{producer.sent}/{len(lines)} produced, last log line: "
                f"{log_lines[-1][:140] if log_lines else '(none)'}"
            )
            print(kills[-1])
            run.kill(worker)
            worker = run.start_worker(web_port=port)
        producer.finish()
        got = run.wait_for_incidents(len(want), timeout_s=300, settle_s=6)
        counts = run.wait_for_windows(want_counts)
    finally:
        run.stop_all()
    regions = run.incidents("regions")
    report = "\n".join(kills)
    if got != want or regions != REGIONS or counts != want_counts:
        # pytest keeps only the last few tmp dirs: keep what explains the difference, and say it here
        kept = run.keep("soak", got=got, want=want, regions=regions, want_regions=REGIONS)
        report += f"\nlogs and streams kept in {kept}; notable log lines:\n{run.notable()}"
    assert len(run.workers) == KILLS + 1
    assert not run.crashes(), "\n".join(run.crashes()[:10])
    assert got == want, f"incident streams differ: {incident_diff(got, want)}\n{report}"
    assert closed_ids(got) == closed_ids(want), "an incident the clean run closed is left open"
    assert regions == REGIONS, f"region streams differ: {incident_diff(regions, REGIONS)}\n{report}"
    assert counts == want_counts, f"window counts differ: {count_diff(counts, want_counts)}\n{report}"
    # the kills were not all harmless: later workers found state that earlier ones had written
    recovered = sum("recovered" in p.read_text(errors="replace") for p in run.logs[1:])
    assert recovered >= 2, f"only {recovered} restarts recovered owner state\n{report}"
