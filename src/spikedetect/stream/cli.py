"""``spikedetect worker``, ``produce`` and ``tail``."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import click

from spikedetect.core.config import DetectorConfig
from spikedetect.core.errors import ConfigError
from spikedetect.stream.settings import PREFIX, Settings

_HELP = {
    "bootstrap": "Kafka bootstrap servers (host:port[,host:port]); env SPIKEDETECT_KAFKA too",
    "app_id": "Faust app id: consumer groups and internal topic names derive from it",
    "input_topic": "topic of report events",
    "incidents_topic": "topic incident events are published to",
    "dlq_topic": "dead-letter topic for rejected and late reports",
    "partials_topic": "internal topic between the stages (default <app-id>-partials)",
    "partials_partitions": "partitions of the internal topic and state table (parallelism of owners)",
    "topic_partitions": "partitions for input/output topics created when missing",
    "store": "table store: memory:// or rocksdb:// (needs the rocksdb extra)",
    "idle_ms": "after this much wall-clock quiet a caught-up input partition advances its watermark",
    "idle_rate": "event-time ms the watermark of an idle partition advances per wall-clock ms",
    "watermark_quorum": "reports that must agree before a partition's event time advances (1: the newest report)",
    "idle_empty_ms": "how long a partition that never delivered a report waits to be idle (0: 3 x idle-ms)",
    "security_protocol": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    "sasl_mechanism": "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
    "sasl_password": "SASL password (prefer the environment variable)",
    "ssl_cafile": "CA bundle for TLS", "ssl_certfile": "client certificate", "ssl_keyfile": "client key",
}


def settings_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """A click option for every Settings and DetectorConfig field (None = leave as configured)."""
    names = [f for f in dataclasses.fields(Settings) if f.name != "detector"]
    names += list(dataclasses.fields(DetectorConfig))
    for f in reversed(names):
        kind = {"int": int, "float": float, "bool": bool}.get(str(f.type), str)
        env = PREFIX + ("KAFKA" if f.name == "bootstrap" else f.name.upper())
        help_text = _HELP.get(f.name, f.name.replace("_", " ")) + f" [env {env}]"
        opt = "--" + f.name.replace("_", "-")
        if kind is bool:
            func = click.option(opt + "/--no-" + f.name.replace("_", "-"), f.name, default=None,
                                help=help_text)(func)
        else:
            func = click.option(opt, f.name, type=kind, default=None, help=help_text)(func)
    return func


def build_settings(values: dict[str, Any]) -> Settings:
    try:
        return Settings.from_env(**{k: v for k, v in values.items() if v is not None})
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command(context_settings={"max_content_width": 110})
@settings_options
def worker(**values: Any) -> None:
    """Run the live pipeline: read reports, publish incidents (a Faust worker).

    Every option can also be set by its environment variable; options win.
    """
    from spikedetect.stream.app import make_app
    from spikedetect.stream.logs import setup_logging

    settings = build_settings(values)
    setup_logging(settings.log_level)
    app = make_app(settings)
    from faust.worker import Worker

    from spikedetect.stream.ingest import prepare_topics

    # before Faust subscribes (see prepare_topics); a loop of its own, closed again, and never
    # set as the current one - asyncio.run would leave Faust's worker without a current loop
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(prepare_topics(settings))
    finally:
        loop.close()

    Worker(app, loglevel=settings.log_level, quiet=True, override_logging=False).execute_from_commandline()


@click.command()
@click.argument("source", type=click.Path(allow_dash=True))
@click.option("--topic", default=None, help="target topic [default: the input topic setting]")
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers [env SPIKEDETECT_KAFKA]")
@click.option("--rate", type=float, default=None, help="messages per second (default: as fast as possible)")
@click.option("--key", "key_field", type=click.Choice(["region", "event_id", "none"]), default="region",
              show_default=True, help="message key")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: on a terminal)")
def produce(source: str, topic: str | None, bootstrap: str | None, rate: float | None, key_field: str,
            progress: bool | None) -> None:
    """Send a JSONL file of report events (plain or .gz, - for stdin) to the input topic."""
    from spikedetect.stream.tools import produce_file

    settings = build_settings({"bootstrap": bootstrap})
    n = asyncio.run(produce_file(settings, source, topic or settings.input_topic, rate=rate,
                                 key_field=key_field, progress=sys.stderr.isatty() if progress is None else progress))
    click.echo(f"produced {n} messages", err=True)


@click.command()
@click.option("--topic", default=None, help="incident topic [default: the incidents topic setting]")
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers [env SPIKEDETECT_KAFKA]")
@click.option("--from-beginning", is_flag=True, help="start at the oldest event instead of new ones")
@click.option("--json", "as_json", is_flag=True, help="print the raw JSON events")
@click.option("--max-events", type=int, default=None, help="stop after this many events")
@click.option("--timeout", type=float, default=None, help="stop after this many seconds without events")
def tail(topic: str | None, bootstrap: str | None, from_beginning: bool, as_json: bool,
         max_events: int | None, timeout: float | None) -> None:
    """Follow the incident topic: one readable line per event (or --json)."""
    from spikedetect.stream.tools import tail_incidents

    settings = build_settings({"bootstrap": bootstrap})
    asyncio.run(tail_incidents(settings, topic or settings.incidents_topic, from_beginning=from_beginning,
                               as_json=as_json, max_events=max_events, timeout_s=timeout))
