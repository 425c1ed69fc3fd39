"""``spikedetect replay``: run the detection core over a file, a Kafka topic range or a count series."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click
import orjson
from rich.console import Console

from spikedetect.core import IncidentEvent
from spikedetect.core.timefmt import parse_time_arg
from spikedetect.options import DETECTOR_FIELDS, detector_config, detector_options
from spikedetect.replay.inputs import FileInput, Input, SeriesInput, TopicInput
from spikedetect.replay.runner import ReplaySummary
from spikedetect.replay.series import SeriesError
from spikedetect.replay.sweep import (
    SweepError,
    build_configs,
    parse_sweeps,
    render_sweep,
    run_sweep,
    sweep_json,
)
from spikedetect.replay.topic_source import DEFAULT_BOOTSTRAP, TopicRange
from spikedetect.replay.truth import load_truth


def _open_out(path: str | None) -> BinaryIO:
    if path in (None, "-"):
        return sys.stdout.buffer
    if str(path).endswith(".gz"):
        import gzip

        return gzip.open(path, "wb")  # type: ignore[return-value]
    return open(path, "wb")


def print_summary(summary: ReplaySummary, err: bool = True) -> None:
    s = summary
    click.echo(
        f"events {s.events:,}  accepted {s.accepted:,}  rejected {s.rejected:,}  late {s.late:,}  "
        f"duplicates {s.duplicates:,}  incidents opened {s.incidents_opened}  closed {s.incidents_closed}  "
        f"windows {s.windows_closed:,}  keys {s.keys:,}  {s.seconds:.1f}s  {s.events_per_s:,.0f} events/s"
        + (f"  model {s.model}" if s.model else ""),
        err=err,
    )


def _time(value: str | None, name: str) -> int | None:
    try:
        return None if value is None else parse_time_arg(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from exc


def _input(source: str | None, topic: str | None, series: str | None, kw: dict[str, Any]) -> Input:
    given = [x for x in (source, topic, series) if x is not None]
    if len(given) != 1:
        raise click.UsageError(
            "give exactly one input: a SOURCE file (or -), --topic NAME or --series FILE.csv"
        )
    topic_only = ("since", "until", "from_offset", "to_offset")
    if topic is None and any(kw[k] is not None for k in topic_only):
        raise click.UsageError("--since, --until, --from-offset and --to-offset need --topic")
    if series is None and (kw["service"] is not None or kw["region"] is not None):
        raise click.UsageError("--service and --region go with --series")
    if topic is not None:
        rng = TopicRange(topic, kw["bootstrap"], _time(kw["since"], "--since"), _time(kw["until"], "--until"),
                         kw["from_offset"], kw["to_offset"])  # fmt: skip
        return TopicInput(rng, keep_in_memory=bool(kw["sweep"]))
    if series is not None:
        return SeriesInput(series, kw["service"] or "series", kw["region"] or "*")
    assert source is not None
    return FileInput(source, kw["batch_size"])


@click.command(context_settings={"max_content_width": 110})
@click.argument("source", type=click.Path(allow_dash=True), required=False)
@click.option("--topic", default=None, help="read this Kafka topic instead of a file (no consumer group)")
@click.option(
    "--bootstrap",
    default=lambda: os.environ.get("SPIKEDETECT_KAFKA", DEFAULT_BOOTSTRAP),
    show_default="$SPIKEDETECT_KAFKA or 127.0.0.1:9092",
    help="Kafka bootstrap servers",
)
@click.option(
    "--since", default=None, help="topic: first record time, RFC 3339 (UTC if no offset) or epoch ms"
)
@click.option("--until", default=None, help="topic: stop before this record time")
@click.option(
    "--from-offset", type=click.IntRange(min=0), default=None, help="topic: start offset, every partition"
)
@click.option(
    "--to-offset",
    type=click.IntRange(min=0),
    default=None,
    help="topic: stop before this offset, every partition",
)
@click.option(
    "--series",
    default=None,
    metavar="FILE.csv",
    help="a timestamp,value CSV of window totals of one key ('-': stdin)",
)
@click.option("--service", default=None, help="series: the service name [series]")
@click.option("--region", default=None, help="series: the region key [*]")
@click.option("--out", "out_path", default="-", show_default=True, help="incident events JSONL (.gz ok)")
@click.option("--dlq", "dlq_path", default=None, help="dead letters JSONL: rejected and late reports")
@click.option("--summary-json", default=None, help="write the summary as JSON here")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: on a terminal)")
@click.option("--batch", "batch_size", default=20_000, show_default=True, help="lines per batch")
@click.option(
    "--truth", "truth_path", default=None, help="ground truth JSON: evaluate the incidents against it"
)
@click.option(
    "--sweep",
    multiple=True,
    metavar="NAME=V1,V2",
    help="replay once per combination of these settings (repeatable; needs --truth)",
)
@click.option(
    "--sweep-json", "sweep_json_path", default=None, metavar="FILE", help="write the sweep results as JSON"
)
@detector_options
def replay(
    source: str | None,
    topic: str | None,
    series: str | None,
    out_path: str,
    dlq_path: str | None,
    summary_json: str | None,
    progress: bool | None,
    truth_path: str | None,
    sweep: tuple[str, ...],
    sweep_json_path: str | None,
    **kw: Any,
) -> None:
    """Replay report events and write incident events (JSONL) - the same core as the live worker.

    SOURCE is a JSONL file (.gz ok, - for stdin); or --topic reads a Kafka topic (each
    partition judged on its own, as live), or --series scores a timestamp,value CSV.
    Options override the detector settings for what-if runs (e.g. --detector ewma
    --open-threshold 9); --sweep runs a grid of them against --truth.
    """
    kw["sweep"] = sweep
    inp = _input(source, topic, series, kw)
    show = sys.stderr.isatty() if progress is None else progress
    try:
        values = inp.prepare({k: kw[k] for k in DETECTOR_FIELDS})
        if sweep:
            _sweep(inp, values, sweep, truth_path, sweep_json_path, show)
            return
        config = detector_config(values)
        truth = load_truth(truth_path) if truth_path else None
        kept: list[dict[str, Any]] = []
        summary = _run(inp, config, out_path, dlq_path, show, kept if truth else None)
    except (SeriesError, SweepError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    print_summary(summary)
    if summary_json:
        Path(summary_json).write_bytes(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))
    if truth is not None:
        from spikedetect.replay.cli_evaluate import render
        from spikedetect.replay.evaluate import evaluate

        render(evaluate(kept, truth), Console(stderr=True))


def _run(
    inp: Input,
    config: Any,
    out_path: str,
    dlq_path: str | None,
    show: bool,
    kept: list[dict[str, Any]] | None,
) -> ReplaySummary:
    out = _open_out(out_path)
    dlq = _open_out(dlq_path) if dlq_path else None

    def write(event: IncidentEvent) -> None:
        out.write(event.to_json() + b"\n")
        if kept is not None:
            kept.append(event.to_dict())

    def dead(line: bytes) -> None:
        if dlq is not None:
            dlq.write(line + b"\n")

    try:
        return inp.run(
            config, on_incident=write, on_dead_letter=dead if dlq is not None else None, progress=show
        )
    finally:
        out.flush()
        if out is not sys.stdout.buffer:
            out.close()
        if dlq is not None:
            dlq.close()


def _sweep(
    inp: Input,
    values: dict[str, Any],
    specs: tuple[str, ...],
    truth_path: str | None,
    json_path: str | None,
    show: bool,
) -> None:
    if truth_path is None:
        raise click.UsageError("--sweep needs --truth to score each setting")
    configs = build_configs(values, parse_sweeps(specs))
    truth = load_truth(truth_path)
    err = Console(stderr=True)

    def done(row: Any) -> None:
        name = " ".join(f"{k}={v}" for k, v in row.setting.items())
        err.print(
            f"[dim]{name}: {row.result.incidents} incidents, {row.summary.seconds:.1f}s[/]", highlight=False
        )

    rows = run_sweep(configs, lambda cfg, emit: inp.run(cfg, on_incident=emit, progress=show), truth, done)
    render_sweep(rows, Console())
    if json_path:
        Path(json_path).write_bytes(
            orjson.dumps(sweep_json(rows, truth_path), option=orjson.OPT_INDENT_2) + b"\n"
        )
