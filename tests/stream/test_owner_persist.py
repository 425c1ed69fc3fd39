"""The owner's state-write cadence (stream/owner_persist.py), no broker.

With a long ``persist_interval_ms`` an owner closes windows and publishes their events but
writes no key records; a crash then leaves the table as it was at the last write plus every
partial and mark since. The next owner must re-close those windows and publish exactly what an
uninterrupted owner publishes, ending in the same state. Interval 0 writes after every close;
giving up the partition (revoke, stop) writes at once; the bound on closed partials forces a
write whatever the interval.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from spikedetect.core import DetectorConfig
from spikedetect.stream import app as app_module
from spikedetect.stream import owner_persist
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.outbox import Outbox
from spikedetect.stream.owner import PartitionOwner
from spikedetect.stream.owner_persist import write_state
from spikedetect.stream.runtime import Runtime
from spikedetect.stream.settings import Settings
from spikedetect.stream.wire import encode_mark
from tests.stream.streams import T0_MS, WINDOW_MS
from tests.stream.test_owner_outages import LoggedTable, Op, _final, published
from tests.stream.test_owner_outages import clean as clean  # the fixture

NEVER_MS = 10**12  # an interval no test outlives
CRASH = 2250  # the message a crash follows: minute 1,522, in the outage (minutes 1,500-1,540)


def run(owner: PartitionOwner, table: LoggedTable, blobs: list[bytes]) -> list[tuple[int, int]]:
    """Hand ``blobs`` to ``owner``; after each message, its scorer's next window and the table's."""
    after: list[tuple[int, int]] = []

    async def publish(out: Outbox) -> None:
        table.log.append(("pub", out, None))

    async def go() -> None:
        for blob in blobs:
            await owner.handle(blob, publish)
            meta = orjson.loads(table.get("0|meta", b"{}")).get("next_ws")
            after.append((owner.scorer.next_ws or 0, meta or 0))

    asyncio.run(go())
    return after


def owner_on(table: LoggedTable, interval_ms: int) -> PartitionOwner:
    return PartitionOwner(0, DetectorConfig(), table, Metrics(), persist_interval_ms=interval_ms)


def state(table: dict[Any, Any]) -> dict[Any, Any]:
    """Every record but the partials of windows still open (an owner keeps those as received)."""
    return {k: v for k, v in table.items() if "|p|" not in k}


def key_writes(log: list[Op]) -> int:
    return sum(1 for kind, key, _ in log if kind == "set" and "|k|" in str(key))


@pytest.fixture(scope="module")
def stream(clean: tuple[list[bytes], list[Op]]) -> tuple[list[bytes], list[Op]]:
    """An outage stream's partials and marks, and the log of an owner writing after every close
    (``persist_interval_ms`` 0, the owner's default: test_owner_outages.py)."""
    return clean


def test_interval_zero_writes_after_every_close(stream: tuple[list[bytes], list[Op]]) -> None:
    blobs, _ = stream
    table = LoggedTable([])
    owner = owner_on(table, 0)
    after = run(owner, table, blobs)
    closes = sum(1 for (a, _), (b, _) in zip([(0, 0), *after], after, strict=False) if a != b)
    assert closes > 20
    assert owner.metrics.persists.labels("interval")._value.get() == closes
    assert all(mine == written for mine, written in after)  # the table is never behind the owner


@pytest.mark.parametrize("reread_from", ["start", "crash"])
def test_a_crash_between_writes_re_closes_to_identical_events_and_state(
        stream: tuple[list[bytes], list[Op]], reread_from: str, monkeypatch: pytest.MonkeyPatch) -> None:
    blobs, clean_log = stream
    want = published(clean_log)
    monkeypatch.setattr(owner_persist, "MAX_UNPERSISTED_PARTIAL_BYTES", 1 << 40)
    log: list[Op] = []
    first = owner_on(LoggedTable(log), NEVER_MS)
    after = run(first, LoggedTable(log), blobs[:CRASH + 1])
    assert first.scorer.stats.windows_closed > 1000 and key_writes(log) == 0  # closed, published, not written
    assert orjson.loads(_final(log).get("0|meta", b'{"next_ws": null}'))["next_ws"] in (None, T0_MS)
    assert any(out.regions for kind, out, _ in log if kind == "pub")
    survived = LoggedTable([op for op in log if op[0] == "pub"], _final(log))
    second = owner_on(survived, 0)
    run(second, survived, blobs[(0 if reread_from == "start" else CRASH + 1):])
    got = published(survived.log)
    assert len(want[1]) > len(published(log)[1]) > 0  # crashed in the outage
    for name, g, w in zip(("outage", "region"), got, want, strict=True):
        assert g == w, f"{name} streams differ ({len(g)} vs {len(w)} events)"
    assert any(mine > written for mine, written in after)  # the table was behind, by design
    assert after[-1][0] <= (second.scorer.next_ws or 0)
    assert state(survived) == state(_final(clean_log))


def test_giving_up_the_partition_writes_at_once(stream: tuple[list[bytes], list[Op]]) -> None:
    """Revoke and stop: the app's handler writes every owner's state through a writer that needs
    no current event, pops the owners, and flushes the producer."""
    blobs, _ = stream
    cut = len(blobs) // 2
    table = LoggedTable([])
    owner = owner_on(table, NEVER_MS)
    run(owner, table, blobs[:cut])
    assert key_writes(table.log) == 0 and owner.cadence.dirty
    reference = LoggedTable([])
    run(owner_on(reference, 0), reference, blobs[:cut])
    rt = Runtime(Settings())
    rt.owners[0] = owner
    flushed: list[bool] = []

    class Producer:
        async def flush(self) -> None:
            flushed.append(key_writes(table.log) > 0)  # after the writes

    class App:
        producer = Producer()

    asyncio.run(app_module._persist_and_flush(App(), rt, table, {0, 3}))  # type: ignore[arg-type]
    assert flushed == [True] and not rt.owners
    assert state(table) == state(reference)
    assert dict(table) == dict(reference)  # the closed windows' partials deleted too
    assert owner.metrics.persists.labels("leave")._value.get() == 1
    shown = owner.metrics.render()  # every reason on /metrics, at 0 until its first write
    assert b'spikedetect_state_persists_total{reason="leave"} 1.0' in shown
    assert b'spikedetect_state_persists_total{reason="bound"} 0.0' in shown
    owner.persist("leave", table)  # nothing closed since: nothing written
    assert owner.metrics.persists.labels("leave")._value.get() == 1


def test_a_wall_clock_interval_writes_at_most_once_per_interval(stream: tuple[list[bytes], list[Op]]) -> None:
    blobs, _ = stream
    table = LoggedTable([])
    owner = owner_on(table, 1_000)
    now = [0.0]
    owner.cadence.clock = lambda: now[0]
    owner.cadence.last_s = 0.0

    async def publish(out: Outbox) -> None:
        pass

    async def go() -> None:
        for blob in blobs:
            now[0] += 0.05  # 20 messages a second
            await owner.handle(blob, publish)

    asyncio.run(go())
    writes = owner.metrics.persists.labels("interval")._value.get()
    assert 0 < writes <= len(blobs) * 0.05 + 1
    assert owner.scorer.stats.windows_closed > 5 * writes


def test_the_bound_on_closed_partials_forces_a_write(stream: tuple[list[bytes], list[Op]],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    blobs, _ = stream
    bound = 20_000
    monkeypatch.setattr(owner_persist, "MAX_UNPERSISTED_PARTIAL_BYTES", bound)
    table = LoggedTable([])
    owner = owner_on(table, NEVER_MS)
    worst = 0

    async def publish(out: Outbox) -> None:
        pass

    async def go() -> None:
        nonlocal worst
        for blob in blobs:
            await owner.handle(blob, publish)
            worst = max(worst, owner.pending.closed_bytes(owner.scorer.next_ws))

    asyncio.run(go())
    assert owner.metrics.persists.labels("bound")._value.get() > 5
    assert worst < bound
    stored = sum(len(v) for k, v in table.items() if "|p|" in k)
    assert stored == owner.pending.total


def test_a_retired_key_that_came_back_keeps_its_record(stream: tuple[list[bytes], list[Op]]) -> None:
    blobs, _ = stream
    table = LoggedTable([])
    owner = owner_on(table, 0)
    run(owner, table, blobs[:200])
    s = owner.scorer
    live, gone = s.keyspace.keys[-1], ("instagram", "ZZ/retired")
    table[f"0|k|{gone[0]}|{gone[1]}"] = b"{}"
    s.retired += [live, gone]  # retired, then back as a new row before the write; and one that stayed away
    write_state(0, s, owner.grouper, table)
    assert f"0|k|{live[0]}|{live[1]}" in table and f"0|k|{gone[0]}|{gone[1]}" not in table
    assert not s.retired


def test_a_partial_late_before_the_crash_is_late_again_after_it(
        stream: tuple[list[bytes], list[Op]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A second source, idle, sends counts for a window that had closed: late, dead-lettered.
    Re-read after a crash that kept no state write since, it must not join the re-closed window:
    the recovered owner re-closes what its recovered marks allow before it reads anything."""
    blobs, _ = stream
    monkeypatch.setattr(owner_persist, "MAX_UNPERSISTED_PARTIAL_BYTES", 1 << 40)
    p = len(blobs) // 2
    base = [encode_mark(1, None, 2, idle=True), *blobs[:p]]
    ref = LoggedTable([])
    run(owner_on(ref, 0), ref, base)
    ws = orjson.loads(ref["0|meta"])["next_ws"] - 3 * WINDOW_MS  # closed three windows ago
    late = orjson.dumps({"t": "p", "src": 1, "ws": ws, "svc": "instagram", "c": 0,
                         "rows": [["US/CA/Los Angeles", "login", "app", 5000]]})
    rest = [late, *blobs[p:p + 200]]
    clean = LoggedTable([])
    clean_owner = owner_on(clean, 0)
    run(clean_owner, clean, [*base, *rest])
    assert clean_owner.scorer.stats.late_partials == 1
    log: list[Op] = []
    first = owner_on(LoggedTable(log), NEVER_MS)
    run(first, LoggedTable(log), [*base, late])  # crash right after the late partial
    survived = LoggedTable([], _final(log))
    second = owner_on(survived, 0)
    run(second, survived, rest)  # the stream re-delivers from the late partial on
    assert state(survived) == state(clean)


def test_a_source_joining_between_writes_leaves_the_recorded_next_window_alone(
        stream: tuple[list[bytes], list[Op]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A mark that raises the number of sources rewrites the meta record at once; it must keep the
    next window of the last state write, or a crash would skip the windows closed since."""
    blobs, _ = stream
    monkeypatch.setattr(owner_persist, "MAX_UNPERSISTED_PARTIAL_BYTES", 1 << 40)
    joined = [*blobs[:CRASH], encode_mark(1, None, 2, idle=True), *blobs[CRASH:CRASH + 200]]
    clean = LoggedTable([])
    run(owner_on(clean, 0), clean, joined)
    log: list[Op] = []
    run(owner_on(LoggedTable(log), NEVER_MS), LoggedTable(log), joined[:CRASH + 1])  # crash after the mark
    meta = orjson.loads(_final(log)["0|meta"])
    assert meta["n_src"] == 2 and meta["next_ws"] in (None, T0_MS)
    survived = LoggedTable([], _final(log))
    run(owner_on(survived, 0), survived, joined[CRASH + 1:])
    assert state(survived) == state(clean)
