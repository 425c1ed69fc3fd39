"""The owner on packed partials (wire v2), no broker: the same events and state as on v1.

Stage 1 packs the windows one forward closed into few messages per service; the owner applies
each pack's partials exactly as it applies v1 per-window messages (late and replayed ones
counted alike) and keeps one table entry per pack, deleted once its last window is written
closed. Checked here against the v1 owner: identical events, state and counts - also after
crashes anywhere in closing, between state writes, with stale entries left behind, with
re-sends that stage 1 packed differently, and with packs partly too late.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Any

import orjson
import pytest

from spikedetect.core import DetectorConfig, WindowCounter
from spikedetect.stream import owner_persist
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.outbox import Outbox
from spikedetect.stream.owner import PartitionOwner
from spikedetect.stream.wire import Pack, decode, encode_mark, encode_packs, encode_partials
from tests.stream.streams import WINDOW_MS, outage_stream
from tests.stream.test_owner_outages import LoggedTable, Op, _final, crash_points, published, restart_after
from tests.stream.test_owner_persist import state

NEVER_MS = 10**12
Forward = tuple[list[bytes], list[bytes], bytes]  # one forward: its v1 messages, its packs, its mark


def forwards(lines: list[bytes], batch: int, config: DetectorConfig) -> list[Forward]:
    counter = WindowCounter(config)
    out: list[Forward] = []
    for i in range(0, len(lines), batch):
        counter.feed_batch(lines[i:i + batch])
        closed = counter.take_closed()
        v1 = [blob for w in closed for _, blob in encode_partials(0, w)]
        out.append((v1, [blob for _, blob in encode_packs(0, closed)], encode_mark(0, counter.watermark_ms, 1)))
    assert counter.max_ts_ms is not None
    out.append(([], [], encode_mark(0, counter.max_ts_ms + 10 * config.window_ms, 1, idle=True)))
    return out


def flat(fw: list[Forward], packed: bool) -> list[bytes]:
    return [b for v1, v2, mark in fw for b in [*(v2 if packed else v1), mark]]


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path = tmp_path_factory.mktemp("packs") / "outage.jsonl"
    outage_stream(path, seed=4, days=1.2, spike_start_min=1500, spike_minutes=40)
    return path.read_bytes().splitlines()


@pytest.fixture(scope="module")
def fw(lines: list[bytes]) -> list[Forward]:
    return forwards(lines, 400, DetectorConfig())  # ~25 windows a forward


def run(table: LoggedTable, blobs: list[bytes], interval_ms: int = 0) -> PartitionOwner:
    owner = PartitionOwner(0, DetectorConfig(), table, Metrics(), persist_interval_ms=interval_ms)

    async def publish(out: Outbox) -> None:
        table.log.append(("pub", out, None))

    async def go() -> None:
        for blob in blobs:
            await owner.handle(blob, publish)

    asyncio.run(go())
    return owner


def dead(log: list[Op]) -> list[Any]:
    return [d for kind, out, _ in log if kind == "pub" for d in out.dead]


@pytest.fixture(scope="module")
def reference(fw: list[Forward]) -> tuple[LoggedTable, PartitionOwner]:
    """The v1 owner, writing after every close."""
    table = LoggedTable([])
    return table, run(table, flat(fw, packed=False))


def test_packed_and_unpacked_input_give_identical_events_and_state(
        fw: list[Forward], reference: tuple[LoggedTable, PartitionOwner]) -> None:
    want_table, want_owner = reference
    v2 = flat(fw, packed=True)
    assert len(v2) * 5 < len(flat(fw, packed=False))
    table = LoggedTable([])
    owner = run(table, v2)
    outages, regions = published(table.log)
    assert (outages, regions) == published(want_table.log) and any(seq > 2 for _, seq in outages)
    assert state(table) == state(want_table)
    assert asdict(owner.scorer.stats) == asdict(want_owner.scorer.stats)
    assert owner.pending.total == sum(len(v) for k, v in table.items() if "|p|" in k)
    kept = [decode(v) for k, v in table.items() if "|p|" in k]
    assert all(isinstance(p, Pack) and p.last_ws >= (owner.scorer.next_ws or 0) for p in kept)


def test_a_crash_anywhere_in_closing_re_emits_identical_events_from_packs(
        fw: list[Forward], reference: tuple[LoggedTable, PartitionOwner]) -> None:
    v2 = flat(fw, packed=True)
    want = published(reference[0].log)
    log: list[Op] = []
    run(LoggedTable(log), v2)
    points = crash_points(log)
    assert len(points) >= 9
    for cut in points[:: max(1, len(points) // 10)]:
        assert restart_after(log, cut, v2) == want, f"crash after write {cut}"


@pytest.mark.parametrize("reread_from", ["start", "crash"])
def test_a_crash_between_writes_re_closes_packs_identically(
        fw: list[Forward], reference: tuple[LoggedTable, PartitionOwner], reread_from: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(owner_persist, "MAX_UNPERSISTED_PARTIAL_BYTES", 1 << 40)
    v2 = flat(fw, packed=True)
    crash = len(v2) * 2 // 3
    log: list[Op] = []
    first = run(LoggedTable(log), v2[:crash], NEVER_MS)
    assert first.scorer.stats.windows_closed > 1000 and not any("|k|" in str(k) for _, k, _ in log)
    survived = LoggedTable([op for op in log if op[0] == "pub"], _final(log))
    second = run(survived, v2[(0 if reread_from == "start" else crash):])
    assert published(survived.log) == published(reference[0].log)
    assert state(survived) == state(reference[0])
    assert second.pending.total == sum(len(v) for k, v in survived.items() if "|p|" in k)


def test_stale_packs_are_dropped_at_recovery(fw: list[Forward], reference: tuple[LoggedTable, PartitionOwner]) -> None:
    """A crash right after a state write's meta record, before it deleted the closed packs."""
    v2 = flat(fw, packed=True)
    log: list[Op] = []
    run(LoggedTable(log), v2)
    metas = [i for i, (kind, key, _) in enumerate(log) if kind == "set" and key == "0|meta"
             and i + 1 < len(log) and log[i + 1][0] == "pop" and "|p|" in str(log[i + 1][1])]
    cut = metas[len(metas) // 2] + 1
    survived = LoggedTable([op for op in log[:cut] if op[0] == "pub"], _final(log[:cut]))
    next_ws = orjson.loads(survived["0|meta"])["next_ws"]
    stale = {k for k in survived if "|p|" in k and int(k.split("|")[2]) < next_ws}
    assert stale
    owner = run(survived, v2[:1])
    assert set(owner.stale) == set() and not stale & set(survived)
    run(survived, v2)
    assert published(survived.log) == published(reference[0].log)


def resent(fw: list[Forward], lines: list[bytes], packed: bool) -> list[bytes]:
    """Stage 1 crashed after forward 40 and re-reads everything in batches of 150: the owner gets
    the first 40 forwards, then every window again - packed along other boundaries."""
    again = forwards(lines, 150, DetectorConfig())
    return flat(fw[:40], packed) + flat(again, packed)


def test_a_re_send_packed_differently_counts_and_closes_as_v1(
        fw: list[Forward], lines: list[bytes], reference: tuple[LoggedTable, PartitionOwner]) -> None:
    v1_table, v2_table = LoggedTable([]), LoggedTable([])
    v1_owner = run(v1_table, resent(fw, lines, packed=False))
    v2_owner = run(v2_table, resent(fw, lines, packed=True))
    assert v2_owner.scorer.stats.replayed_partials > 100
    assert asdict(v2_owner.scorer.stats) == asdict(v1_owner.scorer.stats)
    assert published(v2_table.log) == published(v1_table.log) == published(reference[0].log)
    assert state(v2_table) == state(v1_table) == state(reference[0])


def test_an_owner_crash_amid_differently_packed_re_sends_re_closes_identically(
        fw: list[Forward], lines: list[bytes], reference: tuple[LoggedTable, PartitionOwner],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(owner_persist, "MAX_UNPERSISTED_PARTIAL_BYTES", 1 << 40)
    blobs = resent(fw, lines, packed=True)
    crash = len(flat(fw[:40], packed=True)) + 30  # in the re-send, before it has passed the first send
    log: list[Op] = []
    run(LoggedTable(log), blobs[:crash], NEVER_MS)
    survived = LoggedTable([op for op in log if op[0] == "pub"], _final(log))
    names = {k.split("|", 3)[3] for k in survived if "|p|" in k}
    assert len({n.split("|")[0] for n in names}) < len(names)  # two packings of some last window
    run(survived, blobs[crash:])
    assert published(survived.log) == published(reference[0].log)
    assert state(survived) == state(reference[0])


def late_pack(next_ws: int, packed: bool) -> list[bytes]:
    """An idle second source's counts for three closed windows and two open ones."""
    windows = [(ws, {"instagram": {("US/CA/Los Angeles", "login", "app"): 5000 + ws // WINDOW_MS % 7}})
               for ws in range(next_ws - 3 * WINDOW_MS, next_ws + 2 * WINDOW_MS, WINDOW_MS)]
    from spikedetect.core.counter import ClosedWindow

    closed = [ClosedWindow(ws, counts) for ws, counts in windows]  # type: ignore[arg-type]
    if packed:
        return [blob for _, blob in encode_packs(1, closed)]
    return [blob for w in closed for _, blob in encode_partials(1, w)]


@pytest.mark.parametrize("crash", [False, True])
def test_a_pack_partly_too_late_counts_and_closes_as_v1(fw: list[Forward], crash: bool,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(owner_persist, "MAX_UNPERSISTED_PARTIAL_BYTES", 1 << 40)
    v2 = flat(fw, packed=True)
    p = len(v2) // 2
    base = [encode_mark(1, None, 2, idle=True), *v2[:p]]
    ref = LoggedTable([])
    next_ws = run(ref, base).scorer.next_ws
    assert next_ws is not None
    rest = v2[p:p + 40]
    got: dict[bool, tuple[LoggedTable, PartitionOwner]] = {}
    for packed in (False, True):
        table = LoggedTable([])
        got[packed] = table, run(table, [*base, *late_pack(next_ws, packed), *rest])
    (t1, o1), (t2, o2) = got[False], got[True]
    assert o2.scorer.stats.late_partials == 3 and asdict(o2.scorer.stats) == asdict(o1.scorer.stats)
    assert dead(t2.log) == dead(t1.log) and len(dead(t2.log)) == 3
    assert published(t2.log) == published(t1.log) and state(t2) == state(t1)
    if crash:
        log: list[Op] = []
        run(LoggedTable(log), [*base, *late_pack(next_ws, packed=True)], NEVER_MS)
        kept = [decode(v) for k, v in _final(log).items() if k.startswith("0|p|") and "|1|" in k]
        assert [[q.ws_ms for q in k.partials] for k in kept if isinstance(k, Pack)] == [
            [next_ws, next_ws + WINDOW_MS]]  # the open windows only
        survived = LoggedTable([], _final(log))
        run(survived, rest)
        assert state(survived) == state(t1)


def test_the_bound_counts_packs_by_their_last_window(fw: list[Forward], monkeypatch: pytest.MonkeyPatch) -> None:
    bound = 20_000
    monkeypatch.setattr(owner_persist, "MAX_UNPERSISTED_PARTIAL_BYTES", bound)
    table = LoggedTable([])
    owner = PartitionOwner(0, DetectorConfig(), table, Metrics(), persist_interval_ms=NEVER_MS)
    worst = 0

    async def publish(out: Outbox) -> None:
        pass

    async def go() -> None:
        nonlocal worst
        for blob in flat(fw, packed=True):
            await owner.handle(blob, publish)
            worst = max(worst, owner.pending.closed_bytes(owner.scorer.next_ws))
            assert owner.pending.total == sum(len(v) for k, v in table.items() if "|p|" in k)

    asyncio.run(go())
    assert owner.metrics.persists.labels("bound")._value.get() > 3
    assert worst < bound


def test_a_kept_pack_partly_written_closed_restores_only_its_open_windows() -> None:
    """Recovery from a changelog whose meta record's next window falls inside a kept pack."""
    from spikedetect.core.counter import ClosedWindow

    t0 = 1_795_651_200_000
    windows = [ClosedWindow(t0 + i * WINDOW_MS, {"ig": {("US", "login", "app"): i + 1}}) for i in range(5)]
    (_, blob), = encode_packs(0, windows)
    pack = decode(blob)
    assert isinstance(pack, Pack)
    key = f"0|p|{pack.name()}"
    table = {"0|meta": orjson.dumps({"next_ws": t0 + 2 * WINDOW_MS, "n_src": 1}),
             "0|m|0": orjson.dumps({"wm": t0 + 2 * WINDOW_MS + 5, "idle": False, "open": None}), key: blob}
    owner = PartitionOwner(0, DetectorConfig(), table, Metrics())
    s = owner.scorer
    assert sorted(s.pending) == [t0 + i * WINDOW_MS for i in (2, 3, 4)]
    assert (s.stats.replayed_partials, s.stats.late_partials, owner.stale) == (0, 0, [])
    assert owner.pending.by_ws == {t0 + 4 * WINDOW_MS: {key: len(blob)}}
    table["0|meta"] = orjson.dumps({"next_ws": t0 + 5 * WINDOW_MS, "n_src": 1})
    assert PartitionOwner(0, DetectorConfig(), table, Metrics()).stale == [key]


def test_the_table_keeps_only_the_partials_the_scorer_kept(caplog: pytest.LogCaptureFixture) -> None:
    """Re-sent windows of source 0 (replayed) and an idle source 1's windows that closed without it
    (late) are not stored: v1 messages get no entry, packs are re-encoded with their open windows.
    The late ones are logged as a warning, not only counted."""
    from spikedetect.core.counter import ClosedWindow

    t0 = 1_795_651_200_000
    windows = [ClosedWindow(t0 + i * WINDOW_MS, {"ig": {("US", "login", "app"): i + 1}}) for i in range(5)]
    table: dict[str, bytes] = {}
    owner = PartitionOwner(0, DetectorConfig(), table, Metrics())
    sent: list[Outbox] = []

    async def publish(out: Outbox) -> None:
        sent.append(out)

    async def go(*blobs: bytes) -> None:
        for blob in blobs:
            await owner.handle(blob, publish)

    asyncio.run(go(encode_mark(1, None, 2, idle=True), *[b for _, b in encode_packs(0, windows[:2])],
                   encode_mark(0, t0 + 2 * WINDOW_MS, 2)))
    assert owner.scorer.next_ws == t0 + 2 * WINDOW_MS and not [k for k in table if "|p|" in k]
    with caplog.at_level(logging.WARNING, logger="spikedetect.owner"):
        asyncio.run(go(*[b for w in windows[:2] for src in (0, 1) for _, b in encode_partials(src, w)],
                       *[b for src in (0, 1) for _, b in encode_packs(src, windows)]))
    st = owner.scorer.stats
    assert (st.replayed_partials, st.late_partials) == (4, 4)
    late_lines = [r.getMessage() for r in caplog.records if "after their window had closed" in r.getMessage()]
    assert late_lines and sum(int(m.split(" partial(s)")[0].rsplit(" ", 1)[1]) for m in late_lines) == 4
    assert sum(len(out.dead) for out in sent) == 4
    kept = sorted((k, decode(v)) for k, v in table.items() if "|p|" in k)
    assert [(k, [p.ws_ms for p in msg.partials] if isinstance(msg, Pack) else msg) for k, msg in kept] == [
        (f"0|p|{t0 + 4 * WINDOW_MS}|{src}|ig|{t0 + 2 * WINDOW_MS}.0-0", [t0 + i * WINDOW_MS for i in (2, 3, 4)])
        for src in (0, 1)]
    assert owner.pending.total == sum(len(v) for k, v in table.items() if "|p|" in k)
