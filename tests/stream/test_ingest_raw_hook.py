"""The raw-batch hook into aiokafka's fetcher (stream/ingest_raw.py), without a broker.

Fetch responses (v2 batches, one of them gzip; magic-1 message sets) go through aiokafka's ``PartitionRecords`` and
through :class:`RawPartitionRecords`: the lists and every record a dead letter would get must
be aiokafka's, from any fetch position; only the marked consumer gets raw batches; and the
hook must go in with the aiokafka this project pins (else stage 1 silently reads records).
"""

from __future__ import annotations

from typing import Any

import aiokafka
import aiokafka.consumer.fetcher as fetcher
import pytest
from aiokafka import TopicPartition
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.legacy_records import LegacyRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from spikedetect.kernel import loader
from spikedetect.stream import ingest_raw

pytestmark = pytest.mark.skipif(loader.records is None, reason="compiled record reader not built")
TP = TopicPartition("reports", 1)


def batch(base: int, n: int, codec: int = 0) -> bytes:
    b = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 1 << 20)
    for i in range(n):
        b.append(i, 1_000 + i, None if i % 4 else b"k%d" % i, None if i % 5 == 3 else b"v%d" % (base + i),
                 [("h", b"%d" % i)] if i % 3 == 0 else [])
    data = bytearray(b.build())
    data[0:8] = base.to_bytes(8, "big")
    return bytes(data)


def legacy(base: int, n: int) -> bytes:
    """Magic 1 (message sets): aiokafka's records read these."""
    b = LegacyRecordBatchBuilder(1, 0, 1 << 20)
    for i in range(n):
        b.append(base + i, 5_000 + i, None, b"L%d" % i)
    return bytes(b.build())


DATA = batch(10, 7) + batch(17, 5, codec=1) + batch(22, 9)
LEGACY = legacy(31, 3)  # aiokafka's MemoryRecords reads one format per fetch response


def records(position: int, raw: bool, data: bytes = DATA) -> list[Any]:
    args = (None, position, None, ingest_raw.RAW_MARKER if raw else None, True, fetcher.READ_COMMITTED)
    if raw:
        return list(ingest_raw.RawPartitionRecords(TP, ingest_raw.KeptBytes(data), *args))
    return list(ingest_raw._ORIGINAL[1](TP, MemoryRecords(data), *args))  # aiokafka's own, hook or not


@pytest.mark.parametrize("position", [0, 10, 13, 17, 20, 22, 30, 31, 32, 34])
@pytest.mark.parametrize("max_records", [1, 8, 20_000])
def test_raw_batches_give_aiokafka_records_lists_and_originals(position: int, max_records: int) -> None:
    data = DATA if position < 31 else LEGACY
    want = records(position, raw=False, data=data)
    got: list[tuple[list[int], list[bytes], list[int], Any]] = list(
        ingest_raw.groups(records(position, raw=True, data=data), max_records))
    assert [o for g in got for o in g[0]] == [r.offset for r in want]
    assert [v for g in got for v in g[1]] == [r.value if r.value is not None else b"" for r in want]
    assert [t for g in got for t in g[2]] == [r.timestamp for r in want]
    originals = [g[3](i) for g in got for i in range(len(g[0]))]
    assert repr(originals) == repr(want)  # what a dead letter gets: aiokafka's ConsumerRecord


def test_a_records_original_shares_the_value_read_so_a_batch_is_not_held_twice() -> None:
    chunk = records(0, raw=True)[2]  # the last, uncompressed batch (null values among them)
    originals = [chunk.record(i) for i in range(len(chunk.offsets))]
    assert [r.value is None for r in originals] == [i % 5 == 3 for i in range(9)]
    assert all(r.value is v for r, v in zip(originals, chunk.values, strict=True) if r.value is not None)


def test_v2_batches_are_read_raw_the_gzip_one_decompressed_and_magic_1_by_aiokafka() -> None:
    s = ingest_raw.STATS
    before = (s.raw, s.decompressed, s.fallback)
    records(0, raw=True)
    records(0, raw=True, data=LEGACY)
    assert (s.raw - before[0], s.decompressed - before[1], s.fallback - before[2]) == (2, 1, 3)


def test_the_hook_goes_in_with_this_aiokafka_and_only_the_marked_consumer_reads_raw() -> None:
    assert ingest_raw._incompatible() == ""
    assert ingest_raw.install()
    args = (None, 0, None, None, True, fetcher.READ_COMMITTED)
    plain = fetcher.PartitionRecords(TP, fetcher.MemoryRecords(DATA), *args)
    assert type(plain) is ingest_raw._ORIGINAL[1]
    marked = fetcher.PartitionRecords(TP, fetcher.MemoryRecords(DATA), None, 0, None, ingest_raw.RAW_MARKER,
                                      True, fetcher.READ_COMMITTED)
    assert type(marked) is ingest_raw.RawPartitionRecords
    assert type(fetcher.PartitionRecords(TP, MemoryRecords(DATA), *args)) is ingest_raw._ORIGINAL[1]  # unwrapped


def test_another_aiokafka_leaves_the_hook_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiokafka, "__version__", "0.15.0")
    assert "0.15.0" in ingest_raw._incompatible()
    monkeypatch.setattr(ingest_raw, "_EXPECTED_ARGS", [*ingest_raw._EXPECTED_ARGS[:-1]])
    monkeypatch.setattr(aiokafka, "__version__", "0.14.1")
    assert "changed" in ingest_raw._incompatible()


def test_the_marker_is_the_identity() -> None:
    assert ingest_raw.RAW_MARKER(b"x") == b"x" and ingest_raw.RAW_MARKER(None) is None
