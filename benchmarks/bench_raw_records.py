"""Fetched bytes -> stage 1's lists: aiokafka's records against raw batches, in the same run.

    python -m benchmarks.bench_raw_records [--file /tmp/sim3.jsonl] [--records 400000] [--rounds 7] [--gzip]

The reports of ``--file`` (keyed by region, as bench_live produces them) are packed into v2
record batches of about 1 MiB (the bench producer's ``max_batch_size``) and those into fetch
responses of about 4 MiB (stage 1's ``max_partition_fetch_bytes``). Each round turns every
response into offsets, values and timestamps twice, alternating the order:

* ``aiokafka``: its ``PartitionRecords`` over ``MemoryRecords`` (CRC checks on, ``read_committed``),
  then the three lists as ``IngestService._process`` built them from the ``ConsumerRecord`` s;
* ``raw``: :class:`~spikedetect.stream.ingest_raw.RawPartitionRecords` (same checks), then
  :func:`~spikedetect.stream.ingest_raw.groups` as ``IngestService._process`` now does.

Reports CPU seconds (medians) and the ratio.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import READ_COMMITTED, PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from benchmarks.common import median
from spikedetect.stream import ingest_raw

TP = TopicPartition("reports", 0)


def fetches(path: str, n: int, codec: int = 0, batch_bytes: int = 1 << 20, fetch_bytes: int = 4 << 20) -> list[bytes]:
    """The first ``n`` lines of ``path`` as fetch responses of whole batches."""
    with open(path, "rb") as f:
        lines = [line.rstrip(b"\n") for _, line in zip(range(n), f, strict=False)]
    batches: list[bytes] = []
    base = 0
    builder = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 2 * batch_bytes)
    for offset, line in enumerate(lines):
        ts_ms = 1_795_651_200_000 + offset // 100  # the producer's clock: ~100 records a ms
        builder.append(offset - base, ts_ms, orjson.loads(line)["region"].encode(), line, [])
        if builder.size() > batch_bytes // (4 if codec else 1) or offset == len(lines) - 1:
            data = bytearray(builder.build())
            data[0:8] = base.to_bytes(8, "big")
            batches.append(bytes(data))
            base = offset + 1
            builder = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 2 * batch_bytes)
    out = [b""]
    for b in batches:
        if len(out[-1]) > fetch_bytes:
            out.append(b"")
        out[-1] += b
    return out


def via_aiokafka(data: bytes) -> int:
    recs = list(PartitionRecords(TP, MemoryRecords(data), None, 0, None, None, True, READ_COMMITTED))
    offsets = [r.offset for r in recs]
    values = [r.value if r.value is not None else b"" for r in recs]
    stamps = [r.timestamp for r in recs]
    return len(offsets) + len(values) + len(stamps)


def via_raw(data: bytes) -> int:
    chunks = list(ingest_raw.RawPartitionRecords(TP, ingest_raw.KeptBytes(data), None, 0, None,
                                                 ingest_raw.RAW_MARKER, True, READ_COMMITTED))
    n = 0
    for offsets, values, stamps, _ in ingest_raw.groups(chunks, 20_000):
        n += len(offsets) + len(values) + len(stamps)
    return n


def cpu_s(fn: Callable[[bytes], int], data: list[bytes]) -> tuple[float, int]:
    t0 = time.process_time()
    n = sum(fn(d) for d in data)
    return time.process_time() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default="/tmp/sim3.jsonl")
    ap.add_argument("--records", type=int, default=400_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--gzip", action="store_true", help="gzip batches (aiokafka's records / decompressed, then raw)")
    args = ap.parse_args()
    data = fetches(args.file, args.records, codec=1 if args.gzip else 0)
    print(f"{args.records:,} records in {len(data)} fetch responses, {sum(map(len, data)) / 1e6:.0f} MB")
    times: dict[str, list[float]] = {"aiokafka": [], "raw": []}
    fns: dict[str, Any] = {"aiokafka": via_aiokafka, "raw": via_raw}
    for i in range(args.rounds):
        for name in (("aiokafka", "raw") if i % 2 == 0 else ("raw", "aiokafka")):
            s, n = cpu_s(fns[name], data)
            assert n == 3 * args.records, (name, n)
            times[name].append(s)
    a, r = median(times["aiokafka"]), median(times["raw"])
    print(f"aiokafka records {a:.3f} CPU s, raw batches {r:.3f} CPU s (medians of {args.rounds}): "
          f"{a / r:.1f}x; per record {a / args.records * 1e9:.0f} ns vs {r / args.records * 1e9:.0f} ns")


if __name__ == "__main__":
    main()
