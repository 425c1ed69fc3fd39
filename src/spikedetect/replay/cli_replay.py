"""``spikedetect replay``: run the detection core over a file (or stdin) of report events."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, BinaryIO

import click
import orjson

from spikedetect.options import DETECTOR_FIELDS, detector_config, detector_options
from spikedetect.replay.runner import Replay, ReplaySummary
from spikedetect.replay.sources import count_bytes, iter_batches, open_binary


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
        f"windows {s.windows_closed:,}  keys {s.keys:,}  {s.seconds:.1f}s  {s.events_per_s:,.0f} events/s",
        err=err,
    )


@click.command(context_settings={"max_content_width": 110})
@click.argument("source", type=click.Path(allow_dash=True), required=False)
@click.option("--out", "out_path", default="-", show_default=True, help="incident events JSONL (.gz ok)")
@click.option("--dlq", "dlq_path", default=None, help="dead letters JSONL: rejected and late reports")
@click.option("--summary-json", default=None, help="write the summary as JSON here")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: on a terminal)")
@click.option("--batch", "batch_size", default=20_000, show_default=True, help="lines per batch")
@detector_options
def replay(source: str | None, out_path: str, dlq_path: str | None, summary_json: str | None,
           progress: bool | None, batch_size: int, **values: Any) -> None:
    """Replay report events from SOURCE (JSONL, .gz, or - for stdin) and write incident events.

    The same detection core as the live worker; options override the detector settings
    for what-if runs (e.g. --detector ewma --open-threshold 9).
    """
    if source is None:
        raise click.UsageError("give a SOURCE file (or - for stdin)")
    config = detector_config({k: values[k] for k in DETECTOR_FIELDS})
    out = _open_out(out_path)
    dlq = _open_out(dlq_path) if dlq_path else None
    show = sys.stderr.isatty() if progress is None else progress

    def write_incident(event: Any) -> None:
        out.write(event.to_json() + b"\n")

    def write_dead(line: bytes) -> None:
        if dlq is not None:
            dlq.write(line + b"\n")

    runner = Replay(config, on_incident=write_incident, on_dead_letter=write_dead, source_name=source)
    try:
        with open_binary(source) as stream, _progress(show, count_bytes(source)) as advance:
            for batch in iter_batches(stream, batch_size):
                runner.feed(batch)
                advance(sum(len(x) + 1 for x in batch), runner.summary.events)
        runner.finish()
    finally:
        out.flush()
        if out is not sys.stdout.buffer:
            out.close()
        if dlq is not None:
            dlq.close()
    print_summary(runner.summary)
    if summary_json:
        Path(summary_json).write_bytes(orjson.dumps(runner.summary.to_dict(), option=orjson.OPT_INDENT_2))


class _progress:
    """A rich progress bar over bytes read (a no-op when disabled)."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        self.enabled = enabled
        self.total = total

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda *_: None
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        self.bar = Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.fields[n]:,} events"),
                            TransferSpeedColumn(), TimeRemainingColumn(), transient=True)
        self.bar.__enter__()
        task = self.bar.add_task("replay", total=self.total, n=0)
        return lambda nbytes, n: self.bar.update(task, advance=nbytes, n=n)

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)
