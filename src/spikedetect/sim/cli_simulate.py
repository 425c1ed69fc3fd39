"""``spikedetect simulate``: write a simulated report stream (file or Kafka topic) and its ground truth."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import IO

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from spikedetect.core.timefmt import format_ts_ms, parse_time_arg
from spikedetect.files.faults import guarded
from spikedetect.files.outputs import AtomicOutput, check_paths, write_atomic
from spikedetect.kafka_clients import KafkaConnection
from spikedetect.options import config_option, kafka_connection, option
from spikedetect.sim.config import Batch, SimulationConfig
from spikedetect.sim.scenarios import CATALOGUE
from spikedetect.sim.simulate import Simulation
from spikedetect.sim.suite import SCENARIOS
from spikedetect.sim.traffic import DEFAULT_START_MS
from spikedetect.sim.truth import dumps_truth

_SCENARIO_HELP = (
    f"{' | '.join(SCENARIOS)} or a kind ({', '.join(CATALOGUE)}), or several, comma-separated. "
    "suite = every outage and trap on days 2-3 (all on day 2 for --days 2); quiet = traps only; "
    "none = normal traffic only."
)


def _write_file(batches: Iterator[Batch], out: IO[bytes], on_batch: Callable[[Batch], None]) -> None:
    for batch in batches:
        if batch.lines:
            out.write(b"\n".join(batch.lines) + b"\n")
        on_batch(batch)


async def _send_kafka(
    batches: Iterator[Batch], topic: str, conn: KafkaConnection, on_batch: Callable[[Batch], None]
) -> None:
    """Send in record batches per partition (far faster than one send() per line); the key is
    the region, placed by the default (murmur2) partitioner like a keyed send()."""
    from aiokafka.partitioner import DefaultPartitioner

    from spikedetect import kafka_clients  # only when sending

    producer = kafka_clients.producer(conn, linger_ms=0, max_batch_size=1024 * 1024)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        partitioner = DefaultPartitioner()
        place: dict[str, int] = {}
        for batch in batches:
            by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
            for line, region in zip(batch.lines, batch.regions, strict=True):
                p = place.get(region)
                if p is None:
                    p = place[region] = partitioner(region.encode(), partitions, partitions)
                by_partition.setdefault(p, []).append((region.encode(), line))
            pending = []
            for p, records in by_partition.items():
                builder = producer.create_batch()
                for key, value in records:
                    if builder.append(key=key, value=value, timestamp=None) is None:  # full
                        pending.append(await producer.send_batch(builder, topic, partition=p))
                        builder = producer.create_batch()
                        builder.append(key=key, value=value, timestamp=None)
                pending.append(await producer.send_batch(builder, topic, partition=p))
            if pending:
                await asyncio.gather(*pending)
            on_batch(batch)
    finally:
        await producer.stop()


@click.command()
@option("--out", "out_path", metavar="FILE", show_default="none", help="Write JSONL here ('.gz' suffix: gzip; '-': stdout).")
@option("--truth", "truth_path", metavar="FILE", show_default="none", help="Write the ground truth JSON here.")
@option("--topic", show_default="none", help="Send to this Kafka topic instead of a file (value: JSON, key: region).")
@option(
    "--bootstrap",
    default=lambda: os.environ.get("SPIKEDETECT_KAFKA", "127.0.0.1:9092"),
    show_default="$SPIKEDETECT_KAFKA or 127.0.0.1:9092",
    help="Kafka bootstrap servers for --topic.",
)
@option("--scenario", default="suite", show_default=True, help=_SCENARIO_HELP)
@option("--seed", default=1, show_default=True, help="Random seed: the same seed gives the same bytes.")
@option(
    "--days", default=3.0, show_default=True, help="Length of the stream in days (day 1 is clean history)."
)
@option(
    "--start",
    default=format_ts_ms(DEFAULT_START_MS),
    show_default=True,
    help="Stream start (RFC 3339, whole minute).",
)
@option(
    "--scale",
    default=1.0,
    show_default=True,
    help="Normal volume multiplier (1: instagram peaks near 100 reports/min).",
)
@option(
    "--peak-scale",
    default=1.0,
    show_default=True,
    help="Outage size multiplier (1: the widespread outage peaks near 12,000/min).",
)
@option(
    "--duplicate-rate",
    default=0.01,
    show_default=True,
    help="Share of reports re-sent (same event_id and ts).",
)
@option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr [default: when stderr is a terminal].",
)
@config_option
@guarded
def simulate(
    out_path: str | None, truth_path: str | None, topic: str | None, bootstrap: str, scenario: str, seed: int,
    days: float, start: str, scale: float, peak_scale: float, duplicate_rate: float, progress: bool | None,
    config_file: str | None,
) -> None:  # fmt: skip
    """Generate a realistic, seeded report stream with injected outages, traps and ground truth.

    \b
    Examples:
      spikedetect simulate --out reports.jsonl.gz --truth truth.json
      spikedetect simulate --days 2 --scenario widespread,single_city --peak-scale 0.25 --out - | head
      spikedetect simulate --topic reports --truth truth.json
    """
    if (out_path is None) == (topic is None):
        raise click.UsageError("give exactly one of --out FILE and --topic NAME")
    check_paths({}, {"--out": out_path, "--truth": truth_path})
    conn = kafka_connection(bootstrap, config_file) if topic is not None else None
    try:
        config = SimulationConfig(
            seed=seed, start_ms=parse_time_arg(start), days=days, scale=scale, peak_scale=peak_scale,
            scenario=scenario, duplicate_rate=duplicate_rate,
        )  # fmt: skip
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    sim = Simulation(config)
    console = Console(stderr=True)
    t0 = time.monotonic()
    with ExitStack() as stack:
        on_batch = _progress(stack, console, console.is_terminal if progress is None else progress, sim, t0)
        if topic is not None and conn is not None:
            asyncio.run(_send_kafka(sim.batches(), topic, conn, on_batch))
        else:
            assert out_path is not None
            out = stack.enter_context(AtomicOutput(out_path))  # renamed into place when the block ends
            _write_file(sim.batches(), out.stream, on_batch)
    elapsed = time.monotonic() - t0
    if truth_path:
        write_atomic(truth_path, dumps_truth(sim.truth.with_stats(sim.stats.to_dict())))
    _done(sim, f"topic {topic} at {bootstrap}" if topic else out_path, elapsed, truth_path)


def _progress(stack: ExitStack, console: Console, show: bool, sim: Simulation, t0: float) -> Callable[[Batch], None]:
    """A progress bar on stderr, closed with ``stack``; the callback that moves it after each batch."""
    config = sim.config
    bar = Progress(
        TextColumn("[bold]simulate[/]"), BarColumn(), TaskProgressColumn(), TextColumn("{task.description}"),
        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=console, disable=not show, transient=False,
    )  # fmt: skip
    stack.enter_context(bar)
    task = bar.add_task("", total=config.end_ms - config.start_ms)

    def on_batch(batch: Batch) -> None:
        bar.update(
            task,
            completed=batch.until_ms - config.start_ms,
            description=f"{format_ts_ms(batch.until_ms)[:16]}  {sim.stats.events:,} events "
            f"{sim.stats.events / max(time.monotonic() - t0, 1e-9):,.0f}/s",
        )

    return on_batch


def _done(sim: Simulation, where: str | None, elapsed: float, truth_path: str | None) -> None:
    click.echo(
        f"{sim.stats.events:,} events ({sim.stats.duplicates:,} re-sends), {len(sim.truth.outages)} outages, "
        f"{len(sim.truth.traps)} traps -> {where} in {elapsed:.1f}s "
        f"({sim.stats.events / max(elapsed, 1e-9):,.0f} events/s)"
        + (f"; truth -> {truth_path}" if truth_path else ""),
        err=True,
    )
