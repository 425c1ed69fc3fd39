"""The worker's topics: which it needs, and creating those that do not exist yet."""

from __future__ import annotations

import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from spikedetect import kafka_clients
from spikedetect.stream.settings import Settings

log = logging.getLogger("spikedetect.ingest")


def wanted_topics(s: Settings) -> dict[str, int]:
    """The worker's own topics and their partition counts (Faust adds its changelogs)."""
    return {
        s.input_topic: s.topic_partitions, s.incidents_topic: s.topic_partitions,
        s.dlq_topic: s.topic_partitions, s.partials_topic: s.partials_partitions,
        **({s.windows_topic: s.topic_partitions} if s.windows_topic else {}),
        **({s.regions_topic: s.topic_partitions} if s.regions_topic else {}),
    }


async def prepare_topics(s: Settings) -> None:
    """Create the worker's topics before Faust subscribes to the partials topic.

    Faust's group assignment ignores a subscribed topic that is not yet in the consumer's
    metadata, and the metadata is refreshed only every ``metadata_max_age_ms``: on a fresh
    cluster the owners could sit without partitions for minutes. ``spikedetect worker``
    calls this first; ``make_app`` also shortens the consumer's metadata age as a backstop.
    """
    admin = kafka_clients.admin(s.connection())
    await admin.start()
    try:
        await ensure_topics(admin, wanted_topics(s), s.replication_factor)
    finally:
        await admin.close()


async def ensure_topics(admin: AIOKafkaAdminClient, wanted: dict[str, int], replication: int) -> None:
    """Create the topics that do not exist yet (existing ones are left as they are)."""
    existing = set(await admin.list_topics())
    missing = [NewTopic(name, partitions, replication) for name, partitions in wanted.items()
               if name not in existing]
    if missing:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(missing)
        log.info("created topics %s", ", ".join(t.name for t in missing))
