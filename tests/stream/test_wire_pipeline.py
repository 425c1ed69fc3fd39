"""The live path's core without Kafka: stage 1's partials and marks, encoded by ``stream/wire.py``
and decoded into the core's Partial and Mark, give the owner's Pipeline what the in-process
Pipeline gives (incident bytes included)."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from spikedetect.core import DetectorConfig, Mark, Output, Partial, Pipeline, WindowCounter
from spikedetect.stream.wire import decode, encode, encode_packs, encode_partials, partials_of
from tests.stream.streams import outage_stream

SOURCES = 2
BATCH = 2_000


def batches(path: Path) -> list[tuple[int, list[bytes]]]:
    """The stream in batches, each line in the source its bytes hash to (as a keyed producer)."""
    lines = path.read_bytes().splitlines()
    out: list[tuple[int, list[bytes]]] = []
    for i in range(0, len(lines), BATCH):
        for s in range(SOURCES):
            mine = [v for v in lines[i:i + BATCH] if zlib.crc32(v) % SOURCES == s]
            if mine:
                out.append((s, mine))
    return out


def through_the_wire(config: DetectorConfig, feed: list[tuple[int, list[bytes]]], packed: bool) -> Output:
    counters = [WindowCounter(config) for _ in range(SOURCES)]
    owner = Pipeline(config, sources=())  # stage 2: the scorer side alone, as PartitionOwner drives it
    got = Output()

    def send(source: int, *, idle: bool) -> None:
        c = counters[source]
        closed = c.take_closed()
        sent = (encode_packs(source, closed) if packed
                else (m for window in closed for m in encode_partials(source, window)))
        for _, blob in sent:
            for msg in partials_of(decode(blob)):
                assert isinstance(msg, Partial)
                owner.apply(msg)
        mark = decode(encode(Mark(source, c.watermark_ms, idle=idle, n_sources=SOURCES)))
        assert isinstance(mark, Mark)
        owner.apply(mark)
        got.extend(owner.close())

    for source, values in feed:
        counters[source].feed_batch(values)
        send(source, idle=False)
    for source in range(SOURCES):
        counters[source].finish()
        send(source, idle=True)
    return got


@pytest.mark.parametrize("packed", [False, True], ids=["v1", "v2-packs"])
def test_the_wire_carries_the_core_messages_without_changing_a_byte(tmp_path: Path, packed: bool) -> None:
    path = tmp_path / "reports.jsonl"
    outage_stream(path, days=0.75, spike_start_min=900)
    config = DetectorConfig()
    feed = batches(path)
    direct = Pipeline(config, sources=range(SOURCES))
    want = Output()
    for source, values in feed:
        want.extend(direct.feed(source, values))
    want.extend(direct.finish())
    got = through_the_wire(config, feed, packed)
    assert any(e.type == "opened" for e in want.events)  # the outage
    assert [e.to_json() for e in got.events] == [e.to_json() for e in want.events]
    assert [e.to_json() for e in got.incidents] == [e.to_json() for e in want.incidents]
