"""``spikedetect replay --topic``: a Kafka topic range on the real broker, one source per partition."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from click.testing import CliRunner
from tests.stream.streams import T0_MS, outage_stream

from spikedetect.cli import main
from spikedetect.core import DetectorConfig, IncidentEvent, parse_ts_ms
from spikedetect.replay.runner import Replay
from spikedetect.replay.topic_source import TopicRange, load_topic, replay_topic

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

Record = tuple[int | None, bytes, bytes | None, int]  # partition (None: by key), value, key, timestamp


async def _create_and_produce(bootstrap: str, topic: str, partitions: int, records: list[Record]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, enable_idempotence=True)
    await producer.start()
    try:
        for partition, value, key, ts in records:
            await producer.send(topic, value, key=key, partition=partition, timestamp_ms=ts)
        await producer.flush()
    finally:
        await producer.stop()


def produce(bootstrap: str, topic: str, partitions: int, records: list[Record]) -> None:
    asyncio.run(_create_and_produce(bootstrap, topic, partitions, records))


def _without_ts(line: bytes) -> bytes:
    obj = orjson.loads(line)
    del obj["ts"]
    return orjson.dumps(obj)


def test_topic_replay_equals_the_file_replay_and_uses_record_times(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    path = tmp_path / "outage.jsonl"
    outage_stream(path, seed=9, days=1.5, spike_start_min=1500, spike_minutes=40)
    lines = path.read_bytes().splitlines()
    records: list[Record] = []
    for i, line in enumerate(lines):
        obj = orjson.loads(line)
        ts = parse_ts_ms(obj["ts"])
        assert ts is not None
        value = _without_ts(line) if i % 7 == 0 else line  # these must take the record time
        records.append((None, value, obj["region"].encode(), ts))
    produce(kafka_bootstrap, topic_name, 3, records)

    want: list[IncidentEvent] = []
    single = Replay(DetectorConfig(), on_incident=want.append)
    single.feed(lines)
    single.finish()
    assert any(e.type == "closed" for e in want), "the stream must hold a whole incident"

    out, summary = tmp_path / "incidents.jsonl", tmp_path / "summary.json"
    res = CliRunner().invoke(
        main,
        [
            "replay",
            "--topic",
            topic_name,
            "--bootstrap",
            kafka_bootstrap,
            "--out",
            str(out),
            "--summary-json",
            str(summary),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert sorted(out.read_bytes().splitlines()) == sorted(e.to_json() for e in want)
    s = orjson.loads(summary.read_bytes())
    assert (s["events"], s["accepted"], s["rejected"], s["late"]) == (
        len(lines),
        single.summary.accepted,
        0,
        0,
    )


def test_since_until_and_offsets_select_the_range_in_every_partition(
    kafka_bootstrap: str, topic_name: str
) -> None:
    minute = 60_000
    records: list[Record] = []
    for p in (0, 1):
        for i in range(10):
            ts = T0_MS + i * minute
            msg = {"service": "ig", "region": "US/CA", "category": "feed", "event_id": f"{p}-{i}"}
            if p == 1:
                msg["ts"] = ts
            records.append((p, orjson.dumps(msg), None, ts))
    produce(kafka_bootstrap, topic_name, 3, records)  # partition 2 stays empty

    def bounds(**kw: int) -> dict[int, tuple[int, int]]:
        return load_topic(TopicRange(topic_name, kafka_bootstrap, **kw))[0]

    assert bounds() == {0: (0, 10), 1: (0, 10), 2: (0, 0)}
    assert bounds(since_ms=T0_MS + 3 * minute, until_ms=T0_MS + 7 * minute) == {
        0: (3, 7),
        1: (3, 7),
        2: (0, 0),
    }
    assert bounds(from_offset=2, to_offset=5)[0] == (2, 5)
    assert bounds(since_ms=T0_MS + 4 * minute, to_offset=6)[1] == (4, 6)
    assert bounds(since_ms=T0_MS + 99 * minute)[0] == (10, 10)

    runner = replay_topic(
        TopicRange(topic_name, kafka_bootstrap, since_ms=T0_MS + 3 * minute, until_ms=T0_MS + 7 * minute),
        DetectorConfig(),
    )
    s = runner.summary
    assert (s.events, s.accepted, s.rejected) == (8, 8, 0)  # partition 0 has no ts: record time used
    assert sorted(runner.counters) == [0, 1]  # one source per partition with records in range

    res = CliRunner().invoke(
        main,
        [
            "replay",
            "--topic",
            topic_name,
            "--bootstrap",
            kafka_bootstrap,
            "--since",
            "2026-11-26T00:03Z",
            "--until",
            "2026-11-26T00:07:00Z",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "events 8  accepted 8" in res.output


def test_replay_joins_no_group_and_commits_nothing(kafka_bootstrap: str, topic_name: str) -> None:
    produce(kafka_bootstrap, topic_name, 2, [(p, b'{"x": 1}', None, T0_MS) for p in (0, 1)])
    runner = replay_topic(TopicRange(topic_name, kafka_bootstrap), DetectorConfig())
    assert runner.summary.rejected == 2

    async def committed_anywhere() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            tps = [TopicPartition(topic_name, p) for p in (0, 1)]
            found = []
            for group, *_ in await admin.list_consumer_groups():
                offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
                if any(meta.offset >= 0 for meta in offsets.values()):
                    found.append(group)
            return found
        finally:
            await admin.close()

    assert asyncio.run(committed_anywhere()) == []


def test_a_missing_topic_is_a_clear_error(kafka_bootstrap: str, topic_name: str) -> None:
    res = CliRunner().invoke(
        main, ["replay", "--topic", topic_name + "-absent", "--bootstrap", kafka_bootstrap]
    )
    assert res.exit_code == 2
    assert "does not exist" in res.output and "\nspikedetect: error: topic " in res.output
