"""The compiled record-batch reader (kernel/_records.pyx) against aiokafka's own reader.

Batches are built by aiokafka's ``DefaultRecordBatchBuilder`` and read back by its
``DefaultRecordBatch``: the reader (``parse_batch``; ``parse_records`` for a gzip batch's
records once decompressed) must give the same offsets, values (null: ``b""``) and
timestamps for the records at/after a fetch position, and on bytes it cannot read exactly -
truncated, corrupt, compressed - raise ``BatchFormatError``, never anything else.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.codec import gzip_decode
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikedetect.kernel import load_compiled

reader = load_compiled("_records")
pytestmark = pytest.mark.skipif(reader is None, reason="compiled record reader not built")

BIG = 2**61  # timestamps within +-BIG: deltas up to 2**62, never past int64
blobs = st.one_of(st.none(), st.binary(max_size=40), st.binary(min_size=120, max_size=300))
headers = st.lists(st.tuples(st.text(max_size=6), st.one_of(st.none(), st.binary(max_size=8))), max_size=3)
record = st.tuples(st.integers(0, 2**31 - 1), st.integers(-BIG, BIG), blobs, blobs, headers)


def build(records: list[tuple[int, int, Any, Any, Any]], *, base: int = 0, log_append: bool = False,
          codec: int = 0) -> bytes:
    """A v2 batch of ``records`` (offset delta, timestamp, key, value, headers)."""
    b = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 10 << 20)
    for delta, ts, key, value, hdrs in sorted(records, key=lambda r: r[0]):
        b.append(delta, ts, key, value, hdrs)
    data = bytearray(b.build())
    data[0:8] = base.to_bytes(8, "big", signed=True)
    if log_append:
        data[22] |= 0x08
    return bytes(data)


def aiokafka_lists(data: bytes, position: int) -> tuple[list[int], list[bytes], list[int]]:
    """What stage 1 built from aiokafka's records (the skip rule of its PartitionRecords)."""
    out: tuple[list[int], list[bytes], list[int]] = ([], [], [])
    for r in DefaultRecordBatch(data):
        if r.offset >= position:
            out[0].append(r.offset)
            out[1].append(r.value if r.value is not None else b"")
            out[2].append(r.timestamp)
            position = r.offset + 1
    return out


def read(data: bytes, position: int, start: int = 0, end: int | None = None) -> Any:
    assert reader is not None
    return reader.parse_batch(data, start, len(data) if end is None else end, position)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, min_size=1, max_size=30, unique_by=lambda r: r[0]),
       st.integers(0, 2**40), st.integers(0, 40), st.booleans())
def test_the_reader_gives_what_aiokafka_gives(records: Any, base: int, skip: int, log_append: bool) -> None:
    data = build(records, base=base, log_append=log_append)
    position = base + skip
    assert repr(read(data, position)) == repr(aiokafka_lists(data, position))


@settings(max_examples=100, deadline=None)
@given(st.lists(record, min_size=1, max_size=30, unique_by=lambda r: r[0]),
       st.integers(0, 2**40), st.integers(0, 40), st.booleans())
def test_a_gzip_batch_decompressed_reads_as_aiokafka_reads_it(records: Any, base: int, skip: int,
                                                               log_append: bool) -> None:
    assert reader is not None
    data = build(records, base=base, log_append=log_append, codec=1)
    b = DefaultRecordBatch(data)
    got = reader.parse_records(gzip_decode(data[61:]), int.from_bytes(data[57:61], "big"), b.base_offset,
                               b.first_timestamp, b.max_timestamp, b.timestamp_type == 1, base + skip)
    assert repr(got) == repr(aiokafka_lists(data, base + skip))


@given(st.lists(record, min_size=1, max_size=5, unique_by=lambda r: r[0]), st.binary(max_size=70))
def test_a_batch_inside_a_bigger_buffer_reads_the_same(records: Any, before: bytes) -> None:
    data = build(records)
    assert read(before + data + b"\0\1", 0, len(before), len(before) + len(data)) == read(data, 0)


def test_null_and_empty_values_and_log_append_time() -> None:
    data = build([(0, 5, None, None, []), (1, 9, b"k", b"", [("h", None)]), (3, 7, None, b"v", [])],
                 base=100, log_append=True)
    offsets, values, stamps = read(data, 101)
    assert (offsets, values) == ([101, 103], [b"", b"v"])
    assert stamps == [DefaultRecordBatch(data).max_timestamp] * 2


def test_a_timestamp_past_int64_is_left_to_aiokafka() -> None:
    data = build([(0, -(2**62), None, b"a", []), (1, 2**62, None, b"b", [])])  # delta 2**63 wraps
    assert reader is not None
    with pytest.raises(reader.BatchFormatError):
        read(data, 0)


def mutated(data: bytes, at: int, byte: int, fix_length: bool) -> bytes:
    out = bytearray(data)
    out[at % len(out)] = byte
    if fix_length:
        out[8:12] = (len(out) - 12).to_bytes(4, "big", signed=True)
    return bytes(out)


@settings(max_examples=400, deadline=None)
@given(st.lists(record, min_size=1, max_size=6, unique_by=lambda r: r[0]), st.integers(61, 10_000),
       st.integers(0, 255), st.integers(0, 60), st.booleans())
def test_corrupt_bytes_raise_the_typed_error_or_read_as_aiokafka(records: Any, at: int, byte: int, cut: int,
                                                                   fix_length: bool) -> None:
    data = mutated(build(records), at, byte, False)
    data = mutated(data[:len(data) - cut], 8, data[8], fix_length)
    assert reader is not None
    try:
        want = aiokafka_lists(data, 0)
    except Exception:  # noqa: BLE001 - any refusal of aiokafka's (corrupt, bad codec, bad UTF-8)
        want = None  # aiokafka refuses it: the reader must too (the batch then goes to aiokafka)
    try:
        got = read(data, 0)
    except reader.BatchFormatError:
        return
    assert repr(got) == repr(want)


@pytest.mark.parametrize("cut", [1, 10, 60, 61, 62])
def test_truncated_batches_raise_the_typed_error(cut: int) -> None:
    data = build([(0, 1, b"k", b"value", [("h", b"x")]), (1, 2, None, b"v2", [])])
    assert reader is not None
    with pytest.raises(reader.BatchFormatError):
        read(data[:len(data) - cut], 0)
    with pytest.raises(reader.BatchFormatError):
        read(mutated(data[:len(data) - cut], 8, 0, True), 0)


@pytest.mark.parametrize("codec", [1])  # gzip (the codec without an extra library)
def test_compressed_batches_are_left_to_aiokafka(codec: int) -> None:
    assert reader is not None
    with pytest.raises(reader.BatchFormatError):
        read(build([(0, 1, None, b"v", [])], codec=codec), 0)


def test_a_header_key_that_is_not_utf8_is_left_to_aiokafka() -> None:
    data = bytearray(build([(0, 1, None, b"v", [("hh", b"x")])]))
    data[data.index(b"hh")] = 0xFF
    assert reader is not None
    with pytest.raises(reader.BatchFormatError):
        read(bytes(data), 0)
    with pytest.raises(UnicodeDecodeError):
        aiokafka_lists(bytes(data), 0)
