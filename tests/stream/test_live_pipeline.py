"""The live pipeline on the real broker gives exactly what the offline replay gives."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.stream.harness import LiveRun, replay_file
from tests.stream.streams import outage_stream

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


def counts_when_complete(run: LiveRun, want: dict, timeout_s: float = 60.0) -> dict:
    """The windows topic's counts once it holds every window the replay closed (the last
    windows close by idle time after the input ends), or what it holds at the timeout."""
    deadline = time.monotonic() + timeout_s
    got = run.window_counts()
    while set(got) != set(want) and time.monotonic() < deadline:
        time.sleep(2.0)
        got = run.window_counts()
    return got


REGIONS: dict[Path, list[bytes]] = {}  # stream file -> its region incident events, replayed


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes], dict]:
    path = tmp_path_factory.mktemp("streams") / "outage.jsonl"
    outage_stream(path, seed=7, days=2.0, spike_start_min=1800, spike_minutes=45)
    regions: list[bytes] = []
    incidents, counts = replay_file(path, regions=regions)
    assert any(orjson.loads(e)["type"] == "closed" for e in incidents), "the stream must hold a full incident"
    assert {orjson.loads(e)["schema"] for e in incidents} == {"spikedetect.incident/v2"}
    groups = {orjson.loads(e)["group_id"] for e in regions}
    assert groups == {orjson.loads(e)["incident_id"] for e in incidents}, "every region event names its outage"
    assert len(regions) > len(incidents)
    REGIONS[path] = regions
    return path, incidents, counts


def assert_regions_equal_replay(run: LiveRun, path: Path) -> None:
    """The optional region topic carries exactly the replay's region events (with group_id)."""
    assert run.incidents("regions") == REGIONS[path]


@pytest.fixture
def run(kafka_bootstrap: str, tmp_path: Path) -> Iterator[LiveRun]:
    r = LiveRun(kafka_bootstrap, tmp_path)
    r.create_input()
    yield r
    r.stop_all()


def test_live_incidents_equal_offline_replay(run: LiveRun, stream_file: tuple) -> None:
    path, want, want_counts = stream_file
    run.produce_file(path)
    run.start_worker()
    got = run.wait_for_incidents(len(want))
    assert got == want
    assert_regions_equal_replay(run, path)
    assert counts_when_complete(run, want_counts) == want_counts


def test_an_ingest_gap_is_published_live_as_in_replay(run: LiveRun, tmp_path: Path) -> None:
    """Issue 18: the web producer stops for 20 minutes; live publishes the same ingest_gap
    incident (opened, closed) as the replay, beside the same outage."""
    path = tmp_path / "gap.jsonl"
    outage_stream(path, seed=7, days=2.0, spike_start_min=1800, spike_minutes=45, web_gap_min=(2400, 2420))
    want, _ = replay_file(path)
    gaps = [orjson.loads(e) for e in want if orjson.loads(e).get("kind") == "ingest_gap"]
    assert [(g["type"], g["sources"]) for g in gaps] == [("opened", ["web"]), ("closed", ["web"])]
    run.produce_file(path)
    run.start_worker()
    assert run.wait_for_incidents(len(want)) == want


def test_two_workers_give_the_same_incidents_as_one(run: LiveRun, stream_file: tuple) -> None:
    path, want, want_counts = stream_file
    run.start_worker()
    run.start_worker()
    time.sleep(8)  # both join before data arrives, so the partitions are split between them
    run.produce_file(path)
    got = run.wait_for_incidents(len(want))
    assert got == want
    assert_regions_equal_replay(run, path)
    assert counts_when_complete(run, want_counts) == want_counts
    logs = [p.read_text() for p in run.logs]
    assert all("ingest assigned partitions" in text for text in logs), "both workers took input partitions"


def test_kill_9_mid_stream_loses_and_duplicates_nothing(run: LiveRun, stream_file: tuple) -> None:
    path, want, want_counts = stream_file
    run.produce_file(path)
    rng = random.Random(3)
    worker = run.start_worker()
    time.sleep(rng.uniform(8, 14))
    run.kill(worker)
    run.start_worker()
    got = run.wait_for_incidents(len(want), timeout_s=240)
    assert got == want
    assert_regions_equal_replay(run, path)
    assert counts_when_complete(run, want_counts) == want_counts


def test_malformed_input_goes_to_the_dead_letter_topic(run: LiveRun, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    outage_stream(good, seed=11, days=1.2, spike_start_min=1500, spike_minutes=30)
    lines = good.read_bytes().splitlines()
    garbage = [b"not json", b"\xff\xfe", b"[1,2]", b"{}", b'{"ts": "yesterday", "service": "x", "region": "US",'
               b' "category": "feed"}', b'{"ts": 1795651200000, "service": "ig", "region": "US/\\u0007",'
               b' "category": "feed"}', b"x" * 20000]
    mixed: list[bytes] = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if i % 997 == 0:
            mixed.append(garbage[(i // 997) % len(garbage)])
    n_bad = len(mixed) - len(lines)
    run.produce(mixed, key=lambda v: v[:8])
    run.start_worker()
    want, want_counts = replay_file(good)
    got = run.wait_for_incidents(len(want))
    assert got == want
    assert counts_when_complete(run, want_counts) == want_counts
    dead = run.read("dlq")
    assert len(dead) == n_bad
    assert sorted(d.value for d in dead) == sorted(mixed[i] for i in range(len(mixed)) if mixed[i] not in lines)
    reasons = {d.headers["spikedetect.reason"].decode() for d in dead}
    # "{}" takes the record timestamp as its event time, so what it lacks first is a service
    assert {"not_json", "not_object", "missing_service", "bad_ts_format", "bad_region", "value_too_large"} <= reasons
    assert all({"spikedetect.partition", "spikedetect.offset", "spikedetect.topic"} <= set(d.headers) for d in dead)
    run.assert_alive()


def test_rocksdb_store_gives_the_same_incidents_and_survives_a_kill(kafka_bootstrap: str, tmp_path: Path,
                                                                     stream_file: tuple) -> None:
    path, want, want_counts = stream_file
    run = LiveRun(kafka_bootstrap, tmp_path, extra={"SPIKEDETECT_STORE": "rocksdb://"})
    run.create_input()
    try:
        run.produce_file(path)
        worker = run.start_worker()
        time.sleep(8)  # mid-stream: start-up takes ~5 s, the stream ~10 s more
        run.kill(worker)  # the restarted worker reads its RocksDB tables back from disk
        run.start_worker()
        got = run.wait_for_incidents(len(want), timeout_s=240)
        assert got == want
        assert counts_when_complete(run, want_counts) == want_counts
        assert any((tmp_path / "data").rglob("*.sst")) or any((tmp_path / "data").rglob("CURRENT")), \
            "no RocksDB files were written"
    finally:
        run.stop_all()


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_worker_topics_exist_before_faust_subscribes(kafka_bootstrap: str) -> None:
    """``spikedetect worker`` creates its topics first: Faust's assignor skips a subscribed
    topic missing from the consumer's metadata (CI once saw owners get no partials partition
    on a fresh broker), and the metadata is refreshed only every ``metadata_max_age_ms``."""
    import asyncio
    import uuid

    from aiokafka.admin import AIOKafkaAdminClient

    from spikedetect.stream.app import make_app
    from spikedetect.stream.settings import Settings
    from spikedetect.stream.topics import prepare_topics, wanted_topics

    app_id = f"sd-prep-{uuid.uuid4().hex[:8]}"
    s = Settings(bootstrap=kafka_bootstrap, app_id=app_id, input_topic=f"{app_id}-reports",
                 incidents_topic=f"{app_id}-incidents", dlq_topic=f"{app_id}-dlq", partials_partitions=3)

    async def partitions(describe: bool = True) -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            if not describe:  # listing never auto-creates a topic; describing one may
                return {t: 0 for t in await admin.list_topics() if t.startswith(app_id)}
            described = await admin.describe_topics(list(wanted_topics(s)))
            return {t["topic"]: len(t["partitions"]) for t in described if not t["error_code"]}
        finally:
            await admin.close()

    assert asyncio.run(partitions(describe=False)) == {}
    asyncio.run(prepare_topics(s))
    assert asyncio.run(partitions()) == wanted_topics(s)
    assert wanted_topics(s)[s.partials_topic] == 3
    assert make_app(s).conf.consumer_metadata_max_age_ms == 30_000  # the backstop for `faust -A`
