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
from spikedetect.options import DETECTOR_HELP, config_option, default_text, option, sanity_warnings
from spikedetect.stream.settings import PREFIX, Settings

_HELP = {
    "bootstrap": "Kafka bootstrap servers (host:port[,host:port]).",
    "app_id": "Faust app id: consumer groups and internal topic names derive from it.",
    "input_topic": "Topic of report events.",
    "incidents_topic": "Topic the outage incident events (spikedetect.incident/v2) are published to.",
    "regions_topic": "Optional topic of the per-region incident events (v1, with group_id); off when empty.",
    "dlq_topic": "Dead-letter topic for rejected and late reports.",
    "windows_topic": "Optional topic of per-window counts and scores of every reported key (empty: off).",
    "partials_topic": "Internal topic between the two stages.",
    "partials_partitions": "Partitions of the internal topic and state table (parallelism of the owners).",
    "topic_partitions": "Partitions for input/output topics this worker creates when missing.",
    "replication_factor": "Replication factor of the topics this worker creates.",
    "store": "Faust table store: memory:// or rocksdb:// (needs the rocksdb extra).",
    "datadir": "Directory of the Faust table store and worker state.",
    "idle_ms": "After this much wall-clock quiet a caught-up input partition advances its watermark (ms).",
    "idle_rate": "Event-time ms the watermark of an idle partition advances per wall-clock ms.",
    "idle_empty_ms": "How long a partition that never delivered a report waits before it is idle (ms; 0: 3 x idle-ms).",
    "commit_interval_ms": "How often input offsets are committed (ms).",
    "persist_interval_ms": "How often an owner writes the state closing changed to its table (ms; 0: after every "
                           "close); a crash re-closes the windows since, identically.",
    "partials_wire": "Stage 1's partials messages: 2, a pack of the windows one fetch closed per service; 1, "
                     "one per window (while workers that read only 1 still run: docs/operations.md).",
    "session_timeout_ms": "How long a dead worker holds its partitions before a rebalance (ms).",
    "batch_max_records": "Most records one input fetch hands to the counters.",
    "raw_batches": "Stage 1 reads whole Kafka record batches with the compiled reader instead of aiokafka's "
                   "per-record objects (off: aiokafka's records, as before).",
    "ingest_processes": "Run stage 1 (reading and counting the input) in this many child processes (0: in the "
                        "worker's process).",
    "web_host": "Address the dashboard, HTTP API and /metrics listen on.",
    "web_port": "Port of the dashboard, HTTP API and /metrics.",
    "web_enabled": "Serve the dashboard, HTTP API and /metrics.",
    "log_level": "Log level: debug, info, warning or error.",
    "summary_interval_s": "Seconds between the summary log lines (counts, lag, open incidents).",
    "security_protocol": "Kafka security: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    "sasl_mechanism": "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    "sasl_username": "SASL user name.",
    "sasl_password": "SASL password (prefer the environment variable; never logged).",
    "ssl_cafile": "CA bundle for TLS (empty: the system's).",
    "ssl_certfile": "Client certificate for mutual TLS.",
    "ssl_keyfile": "Client key for mutual TLS.",
}
_DERIVED_DEFAULTS = {"partials_topic": "<app-id>-partials", "datadir": "./<app-id>-data"}


def settings_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """A click option for every Settings and DetectorConfig field (None = leave as configured), with its
    description, its default and its environment variable; and ``--config FILE``."""
    names = [f for f in dataclasses.fields(Settings) if f.name != "detector"]
    names += list(dataclasses.fields(DetectorConfig))
    for f in reversed(names):
        kind = {"int": int, "float": float, "bool": bool}.get(str(f.type), str)
        env = PREFIX + ("KAFKA" if f.name == "bootstrap" else f.name.upper())
        text = _HELP.get(f.name) or DETECTOR_HELP.get(f.name) or f.name.replace("_", " ")
        help_text = text + f" [env {env}]"
        shown = _DERIVED_DEFAULTS.get(f.name) or ("***" if f.name == "sasl_password" else default_text(f))
        opt = "--" + f.name.replace("_", "-")
        if kind is bool:
            func = option(opt + "/--no-" + f.name.replace("_", "-"), f.name, default=None,
                                show_default=shown, help=help_text)(func)  # fmt: skip
        else:
            func = option(opt, f.name, type=kind, default=None, show_default=shown, help=help_text)(func)
    return config_option(func)


def build_settings(values: dict[str, Any]) -> Settings:
    """Settings from ``--config`` (``config_file``), the environment and the flags, as replay reads them."""
    config_file = values.pop("config_file", None)
    try:
        return Settings.from_env(config_file=config_file, **{k: v for k, v in values.items() if v is not None})
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command(context_settings={"max_content_width": 110})
@settings_options
def worker(**values: Any) -> None:
    """Run the live pipeline: read reports, publish incidents (a Faust worker).

    Every option can also be set by its environment variable or in a --config TOML file
    (keys named like the options, with _); options win over the environment, which wins over
    the file. `spikedetect replay` reads the detector settings the same way.
    """
    from spikedetect.stream.app import make_app
    from spikedetect.stream.logs import setup_logging

    settings = build_settings(values)
    for warning in sanity_warnings(settings.detector):
        click.echo(f"spikedetect: warning: {warning}", err=True)
    setup_logging(settings.log_level)
    app = make_app(settings)
    from faust.worker import Worker

    from spikedetect.stream.topics import prepare_topics

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
@option("--topic", default=None, help="target topic [default: the input topic setting]")
@option("--bootstrap", default=None, show_default="$SPIKEDETECT_KAFKA or 127.0.0.1:9092",
              help="Kafka bootstrap servers [env SPIKEDETECT_KAFKA]")
@option("--rate", type=float, default=None, help="messages per second (default: as fast as possible)")
@option("--key", "key_field", type=click.Choice(["region", "event_id", "none"]), default="region",
              show_default=True, help="message key: the report's region (keeps a region on one partition), its event_id, or none")
@option("--progress/--no-progress", default=None, help="progress bar (default: on a terminal)")
def produce(source: str, topic: str | None, bootstrap: str | None, rate: float | None, key_field: str,
            progress: bool | None) -> None:
    """Send a JSONL file of report events (plain or .gz, - for stdin) to the input topic."""
    from spikedetect.files.faults import EXIT_PARTIAL, Fault, echo_error
    from spikedetect.stream.tools import produce_file

    settings = build_settings({"bootstrap": bootstrap})
    faults: list[Fault] = []
    n = asyncio.run(produce_file(settings, source, topic or settings.input_topic, rate=rate, key_field=key_field,
                                 progress=sys.stderr.isatty() if progress is None else progress, faults=faults))
    click.echo(f"produced {n} messages", err=True)
    for fault in faults:
        echo_error(f"{fault}; the messages before it were sent")
    if faults:
        raise click.exceptions.Exit(EXIT_PARTIAL)


@click.command()
@option("--topic", default=None, help="incident topic [default: the incidents topic setting]")
@option("--bootstrap", default=None, show_default="$SPIKEDETECT_KAFKA or 127.0.0.1:9092",
              help="Kafka bootstrap servers [env SPIKEDETECT_KAFKA]")
@option("--from-beginning", is_flag=True, help="start at the oldest event instead of new ones")
@option("--json", "as_json", is_flag=True, help="print the raw JSON events")
@option("--max-events", type=int, default=None, show_default="no limit", help="stop after this many events")
@option("--timeout", type=float, default=None, show_default="wait forever",
              help="stop after this many seconds without events")
@option("--regions", is_flag=True, help="List every affected region of an outage, one line each.")
def tail(topic: str | None, bootstrap: str | None, from_beginning: bool, as_json: bool,
         max_events: int | None, timeout: float | None, regions: bool) -> None:
    """Follow the incident topic: one readable line per event, outages with their affected
    regions (all of them with --regions), or --json."""
    from spikedetect.stream.tools import tail_incidents

    settings = build_settings({"bootstrap": bootstrap})
    asyncio.run(tail_incidents(settings, topic or settings.incidents_topic, from_beginning=from_beginning,
                               as_json=as_json, max_events=max_events, timeout_s=timeout, regions=regions))
