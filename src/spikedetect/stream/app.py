"""The Faust application: topics, the state table, the owner agent and the services.

Run it with ``spikedetect worker`` (flags and ``SPIKEDETECT_*`` environment variables),
or with Faust itself: ``faust -A spikedetect.stream.app worker`` (environment only).

Data flow::

    reports ──(stage 1: IngestService, getmany, per-partition counting)──▶ <app>-partials
    <app>-partials ──(stage 2: owner agent, Faust table state)──▶ incidents
    rejected / late reports ──▶ reports-dlq
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import faust
from faust.types import TableT, TopicT

from spikedetect.stream.faust_fixes import make_commits_wait_for_table_writes, partition_writer
from spikedetect.stream.follow import IncidentFollower
from spikedetect.stream.ingest import IngestService
from spikedetect.stream.ingest_procs import IngestProcesses
from spikedetect.stream.owner import IDLE_CONFIRMATIONS, PartitionOwner
from spikedetect.stream.publisher import Publisher
from spikedetect.stream.runtime import Runtime
from spikedetect.stream.settings import Settings
from spikedetect.stream.skipguard import SkipGuard
from spikedetect.stream.web import register_views

log = logging.getLogger("spikedetect.app")


def _credentials(settings: Settings) -> Any:
    if settings.security_protocol == "PLAINTEXT":
        return None
    ctx = settings.connection().ssl_context()
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(username=settings.sasl_username, password=settings.sasl_password,
                                     ssl_context=ctx, mechanism=settings.sasl_mechanism)
    return faust.SSLCredentials(ctx)


def _canonical_url(settings: Settings) -> str:
    """How other workers reach this one's web server (API requests are forwarded to key owners)."""
    host = settings.web_host
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://{host}:{settings.web_port}"


def app_config(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``faust.App`` for these settings."""
    return dict(
        broker=";".join(f"kafka://{b.strip()}" for b in settings.bootstrap.split(",")),
        broker_credentials=_credentials(settings),
        store=settings.store,
        datadir=settings.datadir,
        topic_partitions=settings.partials_partitions,
        topic_replication_factor=settings.replication_factor,
        web_enabled=settings.web_enabled,
        web_host=settings.web_host,
        web_port=settings.web_port,
        # the API is the public surface; Faust's debug views would dump raw table state
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        canonical_url=_canonical_url(settings),  # NODE_CANONICAL_URL in the environment wins
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        producer_acks=-1,
        # table writes go out through Faust's producer, ~1 kB per key record: 16 kB batches
        # (the default) capped the changelog near 10k records/s, and owners wait for it
        producer_max_batch_size=1024 * 1024,
        producer_linger=0.005,
        stream_buffer_maxsize=4096,
        # a topic created after the group formed is assigned at the next metadata refresh
        # (5 min by default); spikedetect worker creates its topics first (prepare_topics)
        consumer_metadata_max_age_ms=30_000,
        table_standby_replicas=0,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_ms / 3000),
    )


def make_app(settings: Settings) -> faust.App:
    """Build the worker's Faust app from settings."""
    make_commits_wait_for_table_writes()  # before any producer exists: see faust_fixes.py
    rt = Runtime(settings)
    app = faust.App(settings.app_id, **app_config(settings))
    app.spikedetect = rt  # type: ignore[attr-defined]
    partials = app.topic(settings.partials_topic, key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw",
                         partitions=settings.partials_partitions, internal=True)
    # value_type=bytes as well as the schema: Faust derives the changelog topic's serializers from
    # value_type (json when unset, overriding the schema's), so without it recovery hands back dicts.
    state = app.Table("state", partitions=settings.partials_partitions, value_type=bytes,
                      schema=faust.Schema(key_type=str, value_type=bytes, key_serializer="raw",
                                          value_serializer="raw"))
    _add_services(app, rt)
    guard = SkipGuard(settings.connection(), settings.app_id, settings.partials_topic)
    _add_owner_agent(app, rt, partials, state, guard)
    _add_rebalance_handlers(app, rt, state, guard)
    register_views(app, rt)
    return app


def _add_services(app: faust.App, rt: Runtime) -> None:
    """The ingest stage (in process, or its child processes), the publisher and (with the web
    server) the incident follower."""
    settings = rt.settings

    class Ingest(IngestService):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(settings, rt.metrics, open_incidents=rt.open_incidents, **kwargs)
            rt.ingest = self

    class IngestChildren(IngestProcesses):  # --ingest-processes N: stage 1 in child processes
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(settings, rt.metrics, open_incidents=rt.open_incidents, **kwargs)
            rt.ingest = self

    class Publish(Publisher):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(settings, rt.metrics, rt.live, **kwargs)
            rt.publisher = self

    class Follow(IncidentFollower):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(settings, rt.live, **kwargs)
            rt.follower = self

    app.service(Publish)
    app.service(IngestChildren if settings.ingest_processes else Ingest)
    if settings.web_enabled:
        app.service(Follow)


def _add_owner_agent(app: faust.App, rt: Runtime, partials: TopicT, state: TableT[str, bytes],
                     guard: SkipGuard) -> None:
    """Stage 2: the agent "owner", one PartitionOwner per partials partition."""
    settings = rt.settings

    @app.agent(partials, name="owner")
    async def owner(stream: Any) -> None:
        async for event in stream.events():
            q = event.message.partition
            po = rt.owners.get(q)
            if po is None:
                po = rt.owners[q] = PartitionOwner(q, settings.detector, state, rt.metrics,
                                                   on_window=rt.live.hook(q),
                                                   emit_windows=bool(settings.windows_topic),
                                                   idle_grace_ms=settings.idle_ms,
                                                   idle_confirmations=IDLE_CONFIRMATIONS,
                                                   persist_interval_ms=settings.persist_interval_ms)
                rt.update_gauges()  # rebuilt from the recovered table
            while rt.publisher is None:
                # Faust creates app services only after table recovery (and after the web
                # server), but agents may get events first. Raising here would ack - lose - it.
                await asyncio.sleep(0.05)
            closed = po.scorer.stats.windows_closed
            for skipped in await guard.missed(q, event.message.offset):
                await po.handle(skipped, rt.publisher.publish)
            await po.handle(event.value, rt.publisher.publish)
            if po.scorer.stats.windows_closed != closed:  # not per message: scans every tracker
                rt.update_gauges()


async def _persist_and_flush(app: Any, rt: Runtime, state: TableT[str, bytes], partitions: set[int]) -> None:
    """Owners giving up their partition write what they closed since their last state write, and
    the producer sends it, so the next owner has nothing to re-close. Best effort: a failure
    leaves a changelog prefix, from which the next owner re-closes exactly (owner.py)."""
    try:
        for q in sorted(partitions):
            po = rt.owners.pop(q, None)
            if po is not None:
                po.persist("leave", partition_writer(state, q))
        await app.producer.flush()
    except Exception as exc:  # noqa: BLE001 - never fail a rebalance or a shutdown for this
        log.warning("owner state not written on leaving partitions %s: %r", sorted(partitions), exc)


def _add_rebalance_handlers(app: faust.App, rt: Runtime, state: TableT[str, bytes], guard: SkipGuard) -> None:
    """Owners are rebuilt from the recovered table after a rebalance; the guard learns offsets."""
    topic = rt.settings.partials_topic
    # (the ignores: Faust types signal receivers as taking no arguments after the sender but
    # ``signal``; it passes the revoked/assigned sets positionally)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _shutdown(app_: Any, **kwargs: Any) -> None:
        await _persist_and_flush(app_, rt, state, set(rt.owners))
        await guard.close()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(app_: Any, revoked: Any, **kwargs: Any) -> None:
        await _persist_and_flush(app_, rt, state, {tp.partition for tp in revoked if tp.topic == topic})

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(app_: Any, assigned: Any, **kwargs: Any) -> None:
        # owners are rebuilt from the recovered table on their first message
        for tp in assigned:
            if tp.topic == topic:
                rt.owners.pop(tp.partition, None)
        kept = {tp.partition for tp in assigned if tp.topic == topic}
        await guard.assigned(sorted(kept))
        for q in set(rt.live.partitions) - kept:
            rt.live.drop_partition(q)  # window history of partitions that moved elsewhere


def _default_app() -> faust.App:
    from spikedetect.stream.logs import setup_logging

    settings = Settings.from_env()
    setup_logging(settings.log_level)
    return make_app(settings)


app: faust.App  # built on first access (below), not at import


def __getattr__(name: str) -> Any:
    # ``faust -A spikedetect.stream.app`` looks up ``app`` here; build it only then.
    if name == "app":
        global app
        app = _default_app()
        return app
    raise AttributeError(name)


__all__ = ["Runtime", "app_config", "make_app"]
