"""``spikedetect replay``: run the detection core over a file, a Kafka topic range or a count series."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import click
import orjson
from rich.console import Console

from spikedetect.core.outage_events import OutageEvent
from spikedetect.core.signal_events import SignalEvent
from spikedetect.core.timefmt import parse_time_arg
from spikedetect.evaluate.sweep import (
    SweepError,
    build_configs,
    parse_sweeps,
    render_sweep,
    run_sweep,
    sweep_json,
)
from spikedetect.files.faults import EXIT_PARTIAL, echo_error, echo_warning, fail, guarded
from spikedetect.files.outputs import AtomicOutput, check_paths, write_atomic
from spikedetect.options import (
    config_option,
    describe_detector,
    detector_options,
    kafka_connection,
    option,
    resolve_detector,
    sanity_warnings,
)
from spikedetect.replay.inputs import FileInput, Input, SeriesInput, TopicInput
from spikedetect.replay.runner import ReplaySummary
from spikedetect.replay.series import SeriesError
from spikedetect.replay.topic_source import DEFAULT_BOOTSTRAP, TopicRange
from spikedetect.sim.truth import load_truth


def print_summary(summary: ReplaySummary, err: bool = True) -> None:
    s = summary
    click.echo(
        f"events {s.events:,}  accepted {s.accepted:,}  rejected {s.rejected:,}  late {s.late:,}  "
        f"duplicates {s.duplicates:,}  incidents opened {s.incidents_opened}  closed {s.incidents_closed}  "
        f"(regions opened {s.region_incidents_opened})  "
        f"windows {s.windows_closed:,}  keys {s.keys:,}  {s.seconds:.1f}s  {s.events_per_s:,.0f} events/s"
        + (f"  model {s.model}" if s.model else "")
        + (f"  drops opened {s.signals_opened['drop']}" if s.signals_opened.get("drop") else ""),
        err=err,
    )
    if s.rejected_by_reason:
        reasons = sorted(s.rejected_by_reason.items(), key=lambda kv: (-kv[1], s.first_line_by_reason.get(kv[0], 0)))
        click.echo("rejected by reason: " + ", ".join(
            f"{r} {n:,}" + (f" (first at line {s.first_line_by_reason[r]:,})" if r in s.first_line_by_reason else "")
            for r, n in reasons), err=err)  # fmt: skip


def _time(value: str | None, name: str) -> int | None:
    try:
        return None if value is None else parse_time_arg(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from exc


def _input(source: str | None, topic: str | None, series: str | None, kw: dict[str, Any],
           config_file: str | None = None) -> Input:
    given = [x for x in (source, topic, series) if x is not None]
    if len(given) != 1:
        raise click.UsageError(
            "give exactly one input: a SOURCE file (or -), --topic NAME or --series FILE.csv"
        )
    topic_only = ("since", "until", "from_offset", "to_offset")
    if topic is None and any(kw[k] is not None for k in topic_only):
        raise click.UsageError("--since, --until, --from-offset and --to-offset need --topic")
    if series is None and (kw["service"] is not None or kw["region"] is not None or kw["drops"] is not None):
        raise click.UsageError("--service, --region and --drops/--no-drops go with --series")
    if topic is not None:
        rng = TopicRange(topic, kafka_connection(kw["bootstrap"], config_file), _time(kw["since"], "--since"),
                         _time(kw["until"], "--until"), kw["from_offset"], kw["to_offset"])  # fmt: skip
        return TopicInput(rng, keep_in_memory=bool(kw["sweep"]))
    if series is not None:
        return SeriesInput(series, kw["service"] or "series", kw["region"] or "*", drops=kw["drops"] is not False)
    assert source is not None
    return FileInput(source, kw["batch_size"])


@click.command(context_settings={"max_content_width": 110, "show_default": True})
@click.argument("source", type=click.Path(allow_dash=True), required=False)
@option("--topic", default=None, show_default="none", help="Read this Kafka topic instead of a file (no consumer group).")
@option(
    "--bootstrap",
    default=lambda: os.environ.get("SPIKEDETECT_KAFKA", DEFAULT_BOOTSTRAP),
    show_default="$SPIKEDETECT_KAFKA or 127.0.0.1:9092",
    help="Kafka bootstrap servers.",
)
@option("--since", default=None, show_default="the start",
        help="Topic: first record time, RFC 3339 (UTC if no offset) or epoch ms.")  # fmt: skip
@option("--until", default=None, show_default="the end offsets when reading starts",
        help="Topic: stop before this record time.")  # fmt: skip
@option("--from-offset", type=click.IntRange(min=0), default=None, show_default="the first",
        help="Topic: start offset, every partition.")  # fmt: skip
@option("--to-offset", type=click.IntRange(min=0), default=None, show_default="the end",
        help="Topic: stop before this offset, every partition.")  # fmt: skip
@option("--series", default=None, metavar="FILE.csv", show_default="none",
        help="A timestamp,value CSV of window totals of one key ('-': stdin); timestamps RFC 3339, "
             "epoch seconds or epoch milliseconds.")  # fmt: skip
@option("--service", default=None, show_default="series", help="Series: the service name.")
@option("--region", default=None, show_default="*", help="Series: the region key.")
@option("--drops/--no-drops", default=None, show_default="on with --series",
        help="Series: also open `kind: drop` incidents where the series falls well below its "
             "expectation (docs/events.md).")  # fmt: skip
@option("--out", "out_path", default="-", help="Outage incident events (spikedetect.incident/v2) JSONL "
        "(.gz: gzip; -: stdout); written to a temporary file and renamed at the end.")  # fmt: skip
@option("--regions-out", "regions_path", default=None, metavar="FILE", show_default="none",
        help="Also write the per-region incident events (spikedetect.incident/v1, with group_id) here.")  # fmt: skip
@option("--dlq", "dlq_path", default=None, show_default="none",
        help="Dead letters JSONL: every rejected and late line with its reason and line number.")  # fmt: skip
@option("--summary-json", default=None, show_default="none", help="Write the summary as JSON here.")
@option("--max-reject-rate", type=click.FloatRange(0, 1), default=0.5,
        help="Fail (exit 2) when more than this share of the input was rejected or late.")  # fmt: skip
@option("--progress/--no-progress", default=None, show_default="on a terminal",
        help="Progress bar on stderr: %, events, rate and time left.")  # fmt: skip
@option("--batch", "batch_size", default=20_000, type=click.IntRange(min=1), help="Lines per batch.")
@option("--truth", "truth_path", default=None, show_default="none",
        help="Ground truth JSON: evaluate the incidents against it.")  # fmt: skip
@option("--sweep", multiple=True, metavar="NAME=V1,V2", show_default="none",
        help="Replay once per combination of these settings (repeatable; needs --truth).")  # fmt: skip
@option("--sweep-json", "sweep_json_path", default=None, metavar="FILE", show_default="none",
        help="Write the sweep results as JSON.")  # fmt: skip
@config_option
@detector_options
@guarded
def replay(source: str | None, topic: str | None, series: str | None, out_path: str, regions_path: str | None,
           dlq_path: str | None, summary_json: str | None, progress: bool | None, truth_path: str | None,
           sweep: tuple[str, ...], sweep_json_path: str | None, max_reject_rate: float, config_file: str | None,
           **kw: Any) -> None:
    """Replay report events and write incident events (JSONL) - the same core as the live worker.

    SOURCE is a JSONL file (.gz ok, - for stdin); or --topic reads a Kafka topic (each
    partition judged on its own, as live), or --series scores a timestamp,value CSV.
    Options override the detector settings for what-if runs (e.g. --detector ewma
    --open-threshold 9); --sweep runs a grid of them against --truth.

    The detector settings are read as `spikedetect worker` reads them: --config FILE, then the
    SPIKEDETECT_* environment, then these flags; the line "detector ... params_hash ..." says
    which were used.

    \b
    Exit codes: 0 done; 1 the input ended early (truncated .gz, a cut last line): everything
    before the fault was processed and written; 2 unusable input or arguments, or more than
    --max-reject-rate of the input rejected or late (one line "spikedetect: error: FILE:LINE: ...").
    """
    kw["sweep"] = sweep
    inp = _input(source, topic, series, kw, config_file)
    check_paths({"SOURCE": source, "--series": series, "--truth": truth_path, "--config": config_file},
                {"--out": None if sweep else out_path, "--regions-out": regions_path, "--dlq": dlq_path, "--summary-json": summary_json,
                 "--sweep-json": sweep_json_path})  # fmt: skip
    show = sys.stderr.isatty() if progress is None else progress
    with _failing(topic, kw["bootstrap"]):
        config, values = _configure(inp, kw, config_file)
        if sweep:
            _sweep(inp, values, sweep, truth_path, sweep_json_path, show)
            return
        truth = load_truth(truth_path) if truth_path else None
        kept: list[dict[str, Any]] = []
        summary = _run(inp, config, (out_path, dlq_path, regions_path), show, kept if truth else None)
    _report(summary, summary_json, truth, kept)
    _verdict(summary, source or series or f"topic {topic}", max_reject_rate)


@contextlib.contextmanager
def _failing(topic: str | None, bootstrap: str) -> Iterator[None]:
    """Unusable input (a series, a sweep, a topic that does not exist) ends the command with exit 2."""
    try:
        yield
    except (SeriesError, SweepError, ValueError) as exc:  # ValueError: a topic that does not exist
        fail(str(exc))
    except Exception as exc:
        if topic is not None and type(exc).__module__.startswith("aiokafka"):
            fail(f"topic {topic} at {bootstrap}: {type(exc).__name__}: {exc}")
        raise


def _configure(inp: Input, kw: dict[str, Any], config_file: str | None) -> tuple[Any, dict[str, Any]]:
    """The detector settings (and the values they came from), said on stderr with any warnings."""
    config, origin, values = resolve_detector(kw, config_file, inp.prepare)
    if isinstance(inp, SeriesInput):
        for note in inp.data.notes:
            click.echo(f"series: {note}", err=True)
    click.echo(describe_detector(config, origin), err=True)
    for warning in sanity_warnings(config):
        echo_warning(warning)
    return config, values


def _report(summary: ReplaySummary, summary_json: str | None, truth: Any, kept: list[dict[str, Any]]) -> None:
    """The summary on stderr (and as JSON), and the evaluation against the truth when given."""
    print_summary(summary)
    if summary_json:
        write_atomic(summary_json, orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    if truth is not None:
        from spikedetect.evaluate.render import render
        from spikedetect.evaluate.score import evaluate

        render(evaluate(kept, truth), Console(stderr=True))


def _verdict(summary: ReplaySummary, name: str, max_reject_rate: float) -> None:
    """Exit 2 when the input was mostly unusable, 1 when it ended early."""
    s = summary
    name = "<stdin>" if name == "-" else name
    if s.events == 0 and not s.faults:
        fail(f"{name}: no report events in the input")
    if s.reject_rate > max_reject_rate:
        first = min(s.first_line_by_reason.items(), key=lambda kv: kv[1], default=None)
        where = f"{name}:{first[1]}" if first else name
        fail(f"{where}: {s.reject_rate:.1%} of {s.events:,} lines rejected or late, more than --max-reject-rate "
             f"{max_reject_rate:g}" + (f" (first: {first[0]} at line {first[1]})" if first else ""))  # fmt: skip
    if s.faults:
        for fault in s.faults:
            echo_error(fault)
        raise click.exceptions.Exit(EXIT_PARTIAL)


def _run(inp: Input, config: Any, paths: tuple[str, str | None, str | None], show: bool,
         kept: list[dict[str, Any]] | None) -> ReplaySummary:
    """Replay into the outputs (incident events, dead letters, region events); they are renamed
    into place only when the run returns."""
    out_path, dlq_path, regions_path = paths
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(AtomicOutput(out_path))
        dlq = stack.enter_context(AtomicOutput(dlq_path)) if dlq_path else None
        regions = stack.enter_context(AtomicOutput(regions_path)) if regions_path else None

        def write(event: OutageEvent | SignalEvent) -> None:
            out.write(event.to_json() + b"\n")
            if kept is not None:
                kept.append(event.to_dict())

        return inp.run(config, on_incident=write, progress=show,
                       on_dead_letter=None if dlq is None else lambda line: dlq.write(line + b"\n"),
                       on_region=None if regions is None else lambda e: regions.write(e.to_json() + b"\n"))


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
        write_atomic(json_path, orjson.dumps(sweep_json(rows, truth_path), option=orjson.OPT_INDENT_2) + b"\n")
