"""``spikedetect kafka start|stop|status``: the local development broker."""

from __future__ import annotations

import os
import sys
import time

import click

from spikedetect.kafka_local.launcher import DEFAULT_PORT, KafkaLaunchError, LocalKafka
from spikedetect.options import option

_port = option(
    "--port",
    type=int,
    default=lambda: int(os.environ.get("SPIKEDETECT_KAFKA_PORT", DEFAULT_PORT)),
    show_default=f"$SPIKEDETECT_KAFKA_PORT or {DEFAULT_PORT}",
    help="Client port on 127.0.0.1; the KRaft controller listens on port+1.",
)


@click.group()
def kafka() -> None:
    """Run a local single-node Apache Kafka 4.x broker (KRaft) from Maven Central jars."""


@kafka.command()
@_port
@click.option("--fresh", is_flag=True, help="Delete the broker's data before starting.")
@click.option("--timeout", "timeout_s", default=90.0, show_default=True, help="Seconds to wait for it to answer.")
def start(port: int, fresh: bool, timeout_s: float) -> None:
    """Start the broker in the background and wait until it answers a metadata request."""
    broker = LocalKafka(port)
    t0 = time.monotonic()
    try:
        status = broker.start(timeout_s=timeout_s, fresh=fresh)
    except KafkaLaunchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{status.describe()} (ready in {time.monotonic() - t0:.1f}s)")


@kafka.command()
@_port
def stop(port: int) -> None:
    """Stop the broker cleanly (safe to call when it is not running)."""
    stopped = LocalKafka(port).stop()
    click.echo("kafka stopped" if stopped else "kafka was not running")


@kafka.command()
@_port
def status(port: int) -> None:
    """Say whether the broker runs and where (exit status 1 when it does not)."""
    st = LocalKafka(port).status()
    click.echo(st.describe())
    sys.exit(0 if st.running else 1)
