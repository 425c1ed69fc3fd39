"""Stage 1 reads whole record batches: aiokafka fetches, the compiled reader unpacks.

aiokafka turns every fetched record into a ``ConsumerRecord`` (a Cython record, then a dataclass,
deserializers, a headers tuple); stage 1 only needs three lists - offsets, values, timestamps -
for ``SourceState.feed``, and the original record only for the rare dead letter. With
``raw_batches`` on, the ingest consumer's fetches yield one :class:`RawChunk` per record batch
instead: the lists, read by :func:`spikedetect.kernel._records.parse_batch` straight from the
fetched bytes, and the way back to the original records (built lazily, by aiokafka's own reader,
only when one is dead-lettered).

aiokafka keeps doing everything else: fetching, positions, CRC checks, ``read_committed``
(aborted transactions, control batches) - the loop in :meth:`RawPartitionRecords._unpack_records`
is aiokafka's ``PartitionRecords._unpack_records`` with the per-record part replaced. A compressed
batch is decompressed by aiokafka's codecs, then read the same way. A batch the reader does not
read exactly (older format, malformed, a codec whose library is missing) is read by aiokafka's
own records instead, which raise or skip as they always did (:data:`STATS` counts each kind).

**aiokafka internals relied on** (aiokafka 0.14; :func:`install` checks them and otherwise leaves
the consumer on today's path with a warning): ``aiokafka.consumer.fetcher`` looks up the module
globals ``MemoryRecords`` and ``PartitionRecords`` when it builds a fetch result, with
``PartitionRecords(tp, records, aborted_transactions, fetch_offset, key_deserializer,
value_deserializer, check_crcs, isolation_level)``, iterates it with ``next_fetch_offset``, and
``MemoryRecords.next_batch`` cuts batches by their length field. :func:`install` wraps both
globals; the wrap picks the raw records only for a consumer whose value deserializer is
:data:`RAW_MARKER` (an identity function: should the wrap be missing, that consumer simply gets
today's records), every other consumer gets aiokafka's own objects.
"""

from __future__ import annotations

import bisect
import dataclasses
import inspect
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiokafka
import aiokafka.codec as codec
import aiokafka.consumer.fetcher as fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatch

from spikedetect.kernel import loader

log = logging.getLogger("spikedetect.ingest")

_EXPECTED_ARGS = ["self", "tp", "records", "aborted_transactions", "fetch_offset", "key_deserializer",
                  "value_deserializer", "check_crcs", "isolation_level"]
_ORIGINAL = (fetcher.MemoryRecords, fetcher.PartitionRecords)


def RAW_MARKER(value: bytes | None) -> bytes | None:
    """The ingest consumer's value deserializer: the identity, and the sign to read raw batches."""
    return value


@dataclass
class RawStats:
    """Batches read by the compiled reader (``raw``; ``decompressed``: a compressed one, by
    aiokafka's codecs first) and by aiokafka's records (``fallback``)."""

    raw: int = 0
    decompressed: int = 0
    fallback: int = 0


STATS = RawStats()


class RawChunk:
    """One record batch's records at/after the fetch position, as stage 1 feeds them."""

    __slots__ = ("_cache", "_make", "offsets", "stamps", "values")

    def __init__(self, offsets: list[int], values: list[bytes], stamps: list[int],
                 make: Callable[[], Iterable[Any]]) -> None:
        self.offsets, self.values, self.stamps = offsets, values, stamps
        self._make = make  # the batch's ConsumerRecords, as aiokafka builds them
        self._cache: dict[int, Any] | None = None

    def record(self, i: int) -> Any:
        """The ``ConsumerRecord`` of the ``i``-th record here (built on first use; its value is the
        object in :attr:`values`, so the batch's values are not held twice)."""
        if self._cache is None:
            at = {o: k for k, o in enumerate(self.offsets)}
            self._cache = {}
            for r in self._make():  # a repeated offset: the first one is the one read (as aiokafka skips)
                k = at.get(r.offset)
                if k is not None and r.offset not in self._cache:
                    keep = r.value is None or r.value != self.values[k]  # equal (as tested): share ours
                    self._cache[r.offset] = r if keep else dataclasses.replace(r, value=self.values[k])
        return self._cache[self.offsets[i]]


def groups(chunks: Sequence[RawChunk], max_records: int) -> Iterator[
        tuple[list[int], list[bytes], list[int], Callable[[int], Any]]]:
    """The chunks joined into runs of about ``max_records`` (whole chunks): offsets, values,
    timestamps and the record at an index of the run."""
    i = 0
    while i < len(chunks):
        run = [chunks[i]]
        n = len(chunks[i].offsets)
        i += 1
        while i < len(chunks) and n < max_records:
            run.append(chunks[i])
            n += len(chunks[i].offsets)
            i += 1
        yield _join(run)


def _join(run: list[RawChunk]) -> tuple[list[int], list[bytes], list[int], Callable[[int], Any]]:
    if len(run) == 1:
        return run[0].offsets, run[0].values, run[0].stamps, run[0].record
    offsets: list[int] = []
    values: list[bytes] = []
    stamps: list[int] = []
    starts: list[int] = []
    for c in run:
        starts.append(len(offsets))
        offsets += c.offsets
        values += c.values
        stamps += c.stamps

    def origin(i: int) -> Any:
        k = bisect.bisect_right(starts, i) - 1
        return run[k].record(i - starts[k])

    return offsets, values, stamps, origin


class KeptBytes:
    """aiokafka's ``MemoryRecords`` with the fetched bytes kept (the raw reader needs them)."""

    __slots__ = ("data", "inner")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.inner = _ORIGINAL[0](data)

    def has_next(self) -> bool:
        return bool(self.inner.has_next())

    def next_batch(self) -> Any:
        return self.inner.next_batch()

    def size_in_bytes(self) -> int:
        return int(self.inner.size_in_bytes())


def _partition_records(tp: Any, records: Any, *args: Any) -> Any:
    """What ``fetcher.PartitionRecords`` builds once installed: raw for the marked consumer."""
    if type(records) is KeptBytes:
        if args[3] is RAW_MARKER and type(records.data) is bytes:
            return RawPartitionRecords(tp, records, *args)
        records = records.inner
    return _ORIGINAL[1](tp, records, *args)


class RawPartitionRecords(fetcher.PartitionRecords):  # type: ignore[misc]
    """aiokafka's ``PartitionRecords`` whose items are :class:`RawChunk` s, one per batch."""

    def _unpack_records(self) -> Iterator[RawChunk]:
        kept: KeptBytes = self._records
        data, end = kept.data, 0
        while kept.has_next():
            batch = kept.next_batch()
            start, end = end, end + 12 + int.from_bytes(data[end + 8:end + 12], "big", signed=True)
            if self._check_crcs and not batch.validate_crc():
                raise CorruptRecordException(f"Invalid CRC - {self._tp}")
            if self._skipped(batch):
                self.next_fetch_offset = batch.next_offset
                continue
            chunk = self._chunk(batch, data, start, end)
            self.next_fetch_offset = batch.next_offset
            if chunk.offsets:
                yield chunk

    def _skipped(self, batch: Any) -> bool:
        """Aborted and control batches, exactly as aiokafka's ``_unpack_records`` skips them."""
        if self._isolation_level == fetcher.READ_COMMITTED and batch.producer_id is not None:
            self._consume_aborted_up_to(batch.base_offset)
            if batch.is_control_batch and self._contains_abort_marker(batch):
                self._aborted_producers.discard(batch.producer_id)
            if batch.is_transactional and batch.producer_id in self._aborted_producers:
                return True
        return bool(batch.is_control_batch)

    def _chunk(self, batch: Any, data: bytes, start: int, end: int) -> RawChunk:
        tp, make = self._tp, self._consumer_record
        lists = _read(batch, data, start, end, self.next_fetch_offset)
        if lists is not None:
            return RawChunk(*lists, lambda: (make(tp, r) for r in DefaultRecordBatch(data[start:end])))
        STATS.fallback += 1
        recs = []
        for r in batch:  # aiokafka's records: raises on a malformed batch, as it always did
            if r.offset >= self.next_fetch_offset:
                recs.append(make(tp, r))
                self.next_fetch_offset = r.offset + 1
        return RawChunk([r.offset for r in recs], [r.value if r.value is not None else b"" for r in recs],
                        [r.timestamp for r in recs], lambda: recs)


_DECODE = {1: codec.gzip_decode, 2: codec.snappy_decode, 3: codec.lz4_decode, 4: codec.zstd_decode}


def _read(batch: Any, data: bytes, start: int, end: int, position: int) -> tuple[
        list[int], list[bytes], list[int]] | None:
    """The lists of a v2 batch by the compiled reader (a compressed one decompressed by aiokafka's
    codecs first); None when it does not read it exactly - aiokafka's records decide then."""
    reader = loader.records
    if reader is None or type(batch) is not DefaultRecordBatch:  # magic 0/1: aiokafka's records
        return None
    if int.from_bytes(data[start:start + 8], "big", signed=True) != batch.base_offset:
        return None  # not where aiokafka's batch is (never seen: a guard)
    try:
        if batch.compression_type == 0:
            lists: tuple[list[int], list[bytes], list[int]] = reader.parse_batch(data, start, end, position)
            STATS.raw += 1
            return lists
        records = bytes(_DECODE[batch.compression_type](data[start + 61:end]))
        lists = reader.parse_records(records, int.from_bytes(data[start + 57:start + 61], "big", signed=True),
                                     batch.base_offset, batch.first_timestamp, batch.max_timestamp,
                                     batch.timestamp_type == 1, position)
        STATS.decompressed += 1
        return lists
    except Exception:  # noqa: BLE001 - malformed, an unknown codec or its library missing: aiokafka's reader
        return None


def install() -> bool:
    """Install the wrap (once); False, with a warning, if this aiokafka is not the one it knows
    (or the compiled reader is missing) - the ingest consumer then reads records as before."""
    if fetcher.PartitionRecords is _partition_records:
        return True
    problem = _incompatible()
    if problem:
        log.warning("raw record batches off: %s; stage 1 reads aiokafka's records", problem)
        return False
    fetcher.MemoryRecords = KeptBytes
    fetcher.PartitionRecords = _partition_records
    return True


def _incompatible() -> str:
    """Why the wrap cannot go in ('' if it can)."""
    if loader.records is None:
        return "the compiled record-batch reader is not available"
    if not aiokafka.__version__.startswith("0.14."):
        return f"aiokafka {aiokafka.__version__} is not 0.14"
    init = getattr(_ORIGINAL[1], "__init__", None)
    if init is None or list(inspect.signature(init).parameters) != _EXPECTED_ARGS:
        return "aiokafka's PartitionRecords changed"
    if not all(hasattr(_ORIGINAL[1], n) for n in ("_consume_aborted_up_to", "_contains_abort_marker",
                                                   "_consumer_record", "_unpack_records")):
        return "aiokafka's PartitionRecords changed"
    return ""
