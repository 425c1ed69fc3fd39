"""``spikedetect report``: a self-contained HTML report of incidents, their counts and the truth."""

from __future__ import annotations

import sys
from typing import Any

import click

from spikedetect.core import DetectorConfig
from spikedetect.evaluate.jsonl import read_jsonl
from spikedetect.evaluate.report import build_report
from spikedetect.evaluate.report_html import render_html
from spikedetect.files.faults import EXIT_PARTIAL, Fault, echo_error, echo_warning, guarded
from spikedetect.files.outputs import check_paths, write_atomic
from spikedetect.files.progress import Progress
from spikedetect.options import (
    config_option,
    describe_detector,
    detector_options,
    option,
    resolve_detector,
    sanity_warnings,
)
from spikedetect.sim.truth import load_truth


@click.command("report", context_settings={"max_content_width": 110, "show_default": True})
@option("--events", "events_path", required=True, metavar="FILE",
        help="The report events the incidents came from (JSONL, .gz ok, '-': stdin).")  # fmt: skip
@option("--incidents", "incidents_path", required=True, metavar="FILE",
        help="Incident events JSONL (from replay or the live incidents topic; .gz ok).")  # fmt: skip
@option("--truth", "truth_path", default=None, metavar="FILE", show_default="none",
        help="Ground truth JSON (simulated streams): incidents coloured matched, trap or unmatched.")  # fmt: skip
@option("--out", "out_path", default="report.html",
        help="The HTML file to write ('-': stdout), through a temporary file.")  # fmt: skip
@option("--title", default="spikedetect report", help="The page title.")
@option("--max-incidents", default=200, type=click.IntRange(min=0),
        help="Incidents charted (the rest are listed).")  # fmt: skip
@option("--max-points", default=400, type=click.IntRange(min=10),
        help="Points per chart (longer spans are bucketed).")  # fmt: skip
@option("--progress/--no-progress", default=None, show_default="on a terminal",
        help="Progress bar on stderr: %, events, rate and time left.")  # fmt: skip
@config_option
@detector_options
@guarded
def report(
    events_path: str,
    incidents_path: str,
    truth_path: str | None,
    out_path: str,
    title: str,
    max_incidents: int,
    max_points: int,
    progress: bool | None,
    config_file: str | None,
    **values: Any,
) -> None:
    """Write one HTML file: a timeline of all incidents (and truth outages and traps), and per
    incident its observed counts against the expected band, category and source shares and
    affected child regions.

    The counts come from replaying --events through the core: give the same detector options
    the incidents were made with (a warning says when their params_hash differs).

    \b
    Example:
      spikedetect report --events reports.jsonl.gz --incidents incidents.jsonl --truth truth.json --out report.html

    \b
    Exit codes: 0 done; 1 an input ended early (a truncated .gz, a cut last line): the report
    covers what was read; 2 an unusable input (one line "spikedetect: error: FILE:LINE: ...").
    """
    _check_paths(events_path, incidents_path, truth_path, config_file, out_path)
    config = _detector(values, config_file)
    faults: list[Fault] = []
    incidents = list(read_jsonl(incidents_path, faults, incidents=True))
    truth = load_truth(truth_path) if truth_path else None
    show = sys.stderr.isatty() if progress is None else progress
    with Progress(show, "report", "events") as update:
        data = build_report(events_path, incidents, config, truth, max_incidents=max_incidents,
                            max_points=max_points, title=title, progress=update, faults=faults)  # fmt: skip
    _write(out_path, data, config)
    if faults:
        _partial(faults)


def _check_paths(events_path: str, incidents_path: str, truth_path: str | None, config_file: str | None,
                 out_path: str) -> None:  # fmt: skip
    check_paths({"--events": events_path, "--incidents": incidents_path, "--truth": truth_path,
                 "--config": config_file}, {"--out": out_path})  # fmt: skip
    if events_path == "-" and incidents_path == "-":
        raise click.UsageError("--events and --incidents cannot both be stdin")


def _partial(faults: list[Fault]) -> None:
    """An input ended early: say where, and exit 1 (the page covers what was read)."""
    for fault in faults:
        echo_error(f"{fault}; the report covers what came before it")
    raise click.exceptions.Exit(EXIT_PARTIAL)


def _detector(values: dict[str, Any], config_file: str | None) -> DetectorConfig:
    """The detector settings as the worker reads them (--config, environment, flags), said on stderr."""
    config, origin, _ = resolve_detector(values, config_file)
    click.echo(describe_detector(config, origin), err=True)
    for warning in sanity_warnings(config):
        echo_warning(warning)
    return config


def _write(out_path: str, data: dict[str, Any], config: DetectorConfig) -> None:
    """The page, through a temporary file; a warning when the incidents were made with other settings."""
    others = [h for h in data["config"]["incident_params_hashes"] if h != config.params_hash]
    if others:
        echo_warning(f"incidents were made with params_hash {', '.join(others)}, the report replays with "
                     f"{config.params_hash}: pass the same detector options")  # fmt: skip
    page = render_html(data)
    write_atomic(out_path, page.encode("utf-8"))
    click.echo(f"wrote {out_path} ({len(page.encode()) / 1024:,.0f} KiB, {len(data['incidents'])} incidents, "
               f"{data['charted']} charted)", err=True)  # fmt: skip
