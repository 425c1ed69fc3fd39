"""Foundation: the real broker answers, aiokafka produces, a Faust agent counts exactly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.kafka

N_EVENTS = 10_000


async def _produce(bootstrap: str, topic: str, n: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        for i in range(n):
            value = orjson.dumps(
                {"ts": 1764126855000 + i, "service": "instagram", "region": "US/CA/Los Angeles",
                 "category": "direct_messages", "event_id": f"e{i}"}
            )
            await producer.send(topic, value, key=str(i % 97).encode())
        await producer.flush()
    finally:
        await producer.stop()


def test_faust_agent_counts_every_event_exactly(kafka_bootstrap: str, topic_name: str, tmp_path: Path) -> None:
    asyncio.run(_produce(kafka_bootstrap, topic_name, N_EVENTS))
    out = tmp_path / "count"
    env = dict(
        os.environ,
        COUNT_APP_ID=f"count-{topic_name}",
        COUNT_TOPIC=topic_name,
        COUNT_OUT=str(out),
        COUNT_DATADIR=str(tmp_path / "data"),
        SPIKEDETECT_KAFKA=kafka_bootstrap,
        PYTHONPATH=str(Path(__file__).parents[1] / "apps"),
    )
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "faust", "-A", "count_app", "worker", "-l", "warn", "--without-web"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if out.exists() and out.read_text() and int(out.read_text()) >= N_EVENTS:
                break
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(2.0)  # nothing extra may arrive
        assert out.exists(), (tmp_path / "worker.log").read_text()[-3000:]
        assert int(out.read_text()) == N_EVENTS
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
