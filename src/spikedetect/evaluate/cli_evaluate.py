"""``spikedetect evaluate``: score incident events against ground truth, as a table or JSON."""

from __future__ import annotations

import click
import orjson
from rich.console import Console

from spikedetect.evaluate.jsonl import read_jsonl
from spikedetect.evaluate.render import render
from spikedetect.evaluate.score import evaluate
from spikedetect.files.faults import EXIT_PARTIAL, Fault, echo_error, guarded
from spikedetect.files.outputs import check_paths, write_atomic
from spikedetect.options import option
from spikedetect.sim.truth import load_truth

__all__ = ["evaluate_command"]


@click.command("evaluate")
@click.option("--incidents", "incidents_path", required=True, metavar="FILE",
              help="JSONL of spikedetect.incident/v2 (outages) or /v1 (regions) events ('.gz' ok, '-': stdin).")  # fmt: skip
@click.option(
    "--truth",
    "truth_path",
    required=True,
    metavar="FILE",
    help="Ground truth JSON from `spikedetect simulate --truth`.",
)
@option("--json", "json_path", metavar="FILE", show_default="none",
        help="Also write the result as JSON to this file (through a temporary file).")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="What to print on stdout.")  # fmt: skip
@guarded
def evaluate_command(incidents_path: str, truth_path: str, json_path: str | None, fmt: str) -> None:
    """Score detected incidents against the ground truth of a simulated stream.

    Reports recall (outages detected, must-detect keys found, per region level), precision,
    false alarms per day, alarms on traps, detection and close delays; outage incidents (v2)
    also as groups: found, incidents per outage, delay, regions covered. See docs/evaluation.md.

    \b
    Example:
      spikedetect evaluate --incidents incidents.jsonl --truth truth.json --json score.json

    \b
    Exit codes: 0 done; 1 the incidents file ended early (a truncated .gz, a cut last line):
    scored up to there; 2 an unusable input (one line "spikedetect: error: FILE:LINE: ...").
    """
    check_paths({"--incidents": incidents_path, "--truth": truth_path}, {"--json": json_path})
    truth = load_truth(truth_path)
    faults: list[Fault] = []
    result = evaluate(read_jsonl(incidents_path, faults, incidents=True), truth)
    data = orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
    if json_path:
        write_atomic(json_path, data)
    if fmt == "json":
        click.echo(data.decode(), nl=False)
    else:
        render(result, Console())
    if faults:
        for fault in faults:
            echo_error(f"{fault}; the events before it were scored")
        raise click.exceptions.Exit(EXIT_PARTIAL)
