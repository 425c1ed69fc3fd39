"""The seam to Faust's and aiokafka's internals (stream/faust_fixes.py): each private access
still finds what it reaches for, and the installed versions are the tested ones."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from spikedetect.stream import faust_fixes

ROOT = Path(__file__).resolve().parents[2]


def declared_ranges() -> dict[str, str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return dict(tomllib.load(f)["tool"]["spikedetect"]["tested-versions"])


def test_installed_versions_are_the_tested_ones() -> None:
    ranges = {name: spec for name, spec in declared_ranges().items() if name in ("faust-streaming", "aiokafka")}
    assert set(ranges) == {"faust-streaming", "aiokafka"}
    outside = {name: version(name) for name, spec in ranges.items() if Version(version(name)) not in SpecifierSet(spec)}
    assert not outside, (
        f"installed {outside} outside the range tested in pyproject.toml {ranges}: re-check every "
        "fix in src/spikedetect/stream/faust_fixes.py against the new version, then widen the range"
    )


def test_the_range_check_rejects_an_untested_version() -> None:
    for name, spec in declared_ranges().items():
        low = Version(re.match(r">=([\d.]+)", spec).group(1))  # type: ignore[union-attr]
        assert low in SpecifierSet(spec), name
        assert Version(f"{low.major}.{low.minor + 1}.0") not in SpecifierSet(spec), name
        assert Version(f"{low.major + 1}.0.0") not in SpecifierSet(spec), name


def test_private_access_lives_only_in_faust_fixes() -> None:
    src = ROOT / "src" / "spikedetect"
    pattern = re.compile(r'\._client\b|producer\.buffer|ProducerBuffer|"producer".*"buffer"')
    found = sorted(str(p.relative_to(src)) for p in src.rglob("*.py") if pattern.search(p.read_text()))
    assert found == ["stream/faust_fixes.py"]


def test_table_write_buffer_is_fausts_producer_buffer() -> None:
    app = faust.App("faust-fixes-test", broker="kafka://127.0.0.1:1")
    table = app.Table("t", value_type=bytes)
    buf = faust_fixes.table_write_buffer(table)
    assert buf is app.producer.buffer
    assert buf.size == 0 and callable(buf.flush_atmost)
    assert faust_fixes.table_write_buffer({}) is None


async def test_consumer_client_has_the_metadata_calls() -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    try:
        for name in ("fetch_all_metadata", "force_metadata_update"):
            assert callable(getattr(consumer._client, name)), name
    finally:
        await consumer.stop()


@pytest.mark.kafka
async def test_fetch_all_metadata_lists_a_topic(kafka_bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = "faust-fixes-" + Path(__file__).stem.replace("_", "-")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    try:
        if topic not in await admin.list_topics():
            await admin.create_topics([NewTopic(topic, 3, 1)])
        await faust_fixes.force_metadata_update(consumer)
        cluster = await faust_fixes.fetch_all_metadata(consumer)
        assert cluster.partitions_for_topic(topic) == {0, 1, 2}
    finally:
        await consumer.stop()
        await admin.close()


async def test_partition_writer_writes_the_store_and_the_changelog_partition_outside_an_event() -> None:
    app = faust.App("faust-fixes-writer", broker="kafka://127.0.0.1:1")
    table = app.Table("t", partitions=4, value_type=bytes,  # as the worker's state table (stream/app.py)
                      schema=faust.Schema(key_type=str, value_type=bytes, key_serializer="raw", value_serializer="raw"))
    with pytest.raises(TypeError):  # what the writer is for: Faust takes the partition from the current event
        table["x"] = b"1"
    writer = faust_fixes.partition_writer(table, 3)
    writer["3|k|a"] = b"v"
    assert table.data["3|k|a"] == b"v"
    assert writer.pop("3|k|a", None) == b"v" and "3|k|a" not in table.data
    assert writer.pop("3|k|a", None) is None
    sent = [fut.message for fut in _buffered(app)]
    assert [(m.value, m.partition) for m in sent] == [(b"v", 3), (None, 3)]  # a write, then a tombstone
    assert all(b"3|k|a" in m.key for m in sent)  # serialised as the table serialises keys
    plain: dict[str, bytes] = {}
    assert faust_fixes.partition_writer(plain, 3) is plain


def _buffered(app: faust.App) -> list[Any]:
    buf = faust_fixes.table_write_buffer(app.tables["t"])
    out = []
    while buf.size:
        out.append(buf.pending.get_nowait())
    return out
