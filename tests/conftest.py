"""Shared fixtures: the real Kafka broker for integration tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from spikedetect.kafka_local import DEFAULT_PORT, LocalKafka, broker_answers

# Apps run as worker subprocesses by integration tests; not test modules.
collect_ignore_glob = ["apps/*"]


def _bootstrap() -> str:
    env = os.environ.get("SPIKEDETECT_KAFKA")
    if env:
        return env
    port = int(os.environ.get("SPIKEDETECT_KAFKA_PORT", DEFAULT_PORT))
    return f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real broker: the one already answering, or one started here and stopped at the end.

    It never skips: when no broker answers and none can be started the test fails.
    """
    bootstrap = _bootstrap()
    if broker_answers(bootstrap):
        yield bootstrap
        return
    host, _, port = bootstrap.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        pytest.fail(f"SPIKEDETECT_KAFKA={bootstrap} does not answer")
    broker = LocalKafka(int(port))
    broker.start()  # raises KafkaLaunchError with the log tail: the test errors, not skips
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name unique to this test, so integration tests never share data."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"t-{base}-{uuid.uuid4().hex[:8]}"
