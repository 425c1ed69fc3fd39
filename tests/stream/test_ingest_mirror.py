"""The parent's mirror of its ingest children's figures, and its readiness check (no broker, no
processes)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from spikedetect.core.errors import ConfigError
from spikedetect.stream.ingest_mirror import IngestMirror, snapshot
from spikedetect.stream.ingest_procs import IngestProcesses
from spikedetect.stream.live import LiveView
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.scrape import sample_sum
from spikedetect.stream.settings import Settings
from spikedetect.stream.source_state import Totals
from spikedetect.stream.web import BrokerProbe, readiness


def shown(metrics: Metrics, name: str) -> float | None:
    return sample_sum(metrics.render().decode(), name)


def test_two_children_and_a_restart_add_up_and_nothing_counts_twice() -> None:
    parent = Metrics()
    mirror = IngestMirror(parent)
    a, b = Metrics(), Metrics()
    a.consumed.inc(10)
    a.rejected.labels("not_json").inc(2)
    a.dead_lettered.labels("not_json").inc(2)
    mirror.apply(1, snapshot(a, Totals(consumed=10, rejected=2), partitions=2))
    mirror.apply(1, snapshot(a, Totals(consumed=10, rejected=2), partitions=2))  # the same again: no change
    b.consumed.inc(7)
    b.late.inc()
    mirror.apply(2, snapshot(b, Totals(consumed=7, late=1), partitions=2))
    assert shown(parent, "spikedetect_events_consumed_total") == 17
    assert shown(parent, "spikedetect_events_rejected_total") == 2
    assert shown(parent, "spikedetect_dead_letters_total") == 2
    assert shown(parent, "spikedetect_events_late_total") == 1
    mirror.forget(1)  # child 1 was killed; its restart (incarnation 3) counts from zero again
    a2 = Metrics()
    a2.consumed.inc(4)
    mirror.apply(3, snapshot(a2, Totals(consumed=4), partitions=2))
    assert shown(parent, "spikedetect_events_consumed_total") == 21
    assert mirror.totals() == Totals(consumed=21, rejected=2, late=1)
    assert mirror.partitions() == 4


def test_lag_follows_the_running_children_and_drops_a_gone_ones_partitions() -> None:
    parent = Metrics()
    mirror = IngestMirror(parent)
    a, b = Metrics(), Metrics()
    a.lag.labels("0").set(5)
    a.lag.labels("1").set(1)
    b.lag.labels("2").set(3)
    mirror.apply(1, snapshot(a, Totals(), partitions=2))
    mirror.apply(2, snapshot(b, Totals(), partitions=1))
    assert shown(parent, "spikedetect_consumer_lag") == 9
    assert mirror.lag() == 9
    mirror.forget(1)
    assert shown(parent, "spikedetect_consumer_lag") == 3
    assert "partition=\"0\"" not in parent.render().decode()
    assert mirror.lag() == 3 and mirror.partitions() == 1


def test_the_setting_defaults_to_the_in_process_stage_and_rejects_negatives() -> None:
    assert Settings().ingest_processes == 0
    assert Settings.from_env({"SPIKEDETECT_INGEST_PROCESSES": "2"}).ingest_processes == 2
    with pytest.raises(ConfigError, match="ingest_processes"):
        Settings(ingest_processes=-1)


async def test_ready_says_which_ingest_children_run() -> None:
    """With --ingest-processes, /ready is 503 while a child is down (between its exit and restart)."""
    procs = IngestProcesses(Settings(ingest_processes=2), Metrics())
    alive = {0: True, 1: False}
    procs.children = {slot: SimpleNamespace(process=SimpleNamespace(is_alive=lambda s=slot: alive[s]))
                      for slot in alive}  # type: ignore[misc]
    assert procs.running() == (1, 2)
    app = SimpleNamespace(
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=SimpleNamespace(is_set=lambda: True),
                                                        active_remaining_total=lambda: 0)),
        in_recovery=False, rebalancing=False, assignor=SimpleNamespace(assigned_actives=lambda: set()))
    rt = SimpleNamespace(settings=SimpleNamespace(partials_topic="p"), ingest=procs, follower=None,
                         live=LiveView(60_000))
    _, checks = await readiness(app, rt, BrokerProbe(rt))
    assert checks["ingest"] == {"ok": False, "detail": "1 of 2 ingest child processes running"}
    alive[1] = True
    _, checks = await readiness(app, rt, BrokerProbe(rt))
    assert checks["ingest"]["ok"]
    rt.ingest = None  # in-process stage 1: no such check
    _, checks = await readiness(app, rt, BrokerProbe(rt))
    assert "ingest" not in checks
