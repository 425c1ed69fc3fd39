"""``spikedetect report``: a self-contained HTML report of incidents, their counts and the truth."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from spikedetect.options import DETECTOR_FIELDS, detector_config, detector_options
from spikedetect.replay.cli_evaluate import read_jsonl
from spikedetect.replay.report import build_report
from spikedetect.replay.report_html import render_html
from spikedetect.replay.truth import load_truth


@click.command("report", context_settings={"max_content_width": 110})
@click.option("--events", "events_path", required=True, metavar="FILE",
              help="the report events the incidents came from (JSONL, .gz ok, '-': stdin)")  # fmt: skip
@click.option("--incidents", "incidents_path", required=True, metavar="FILE",
              help="incident events JSONL (from replay or the live incidents topic)")  # fmt: skip
@click.option(
    "--truth", "truth_path", default=None, metavar="FILE", help="ground truth JSON (simulated streams)"
)
@click.option("--out", "out_path", default="report.html", show_default=True, help="the HTML file to write")
@click.option("--title", default="spikedetect report", show_default=True)
@click.option(
    "--max-incidents",
    default=200,
    show_default=True,
    type=click.IntRange(min=0),
    help="incidents charted (the rest are listed)",
)
@click.option(
    "--max-points",
    default=400,
    show_default=True,
    type=click.IntRange(min=10),
    help="points per chart (longer spans are bucketed)",
)
@detector_options
def report(
    events_path: str,
    incidents_path: str,
    truth_path: str | None,
    out_path: str,
    title: str,
    max_incidents: int,
    max_points: int,
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
    """
    config = detector_config({k: values[k] for k in DETECTOR_FIELDS})
    try:
        incidents = list(read_jsonl(incidents_path))
        truth = load_truth(truth_path) if truth_path else None
        data = build_report(events_path, incidents, config, truth, max_incidents=max_incidents,
                            max_points=max_points, title=title)  # fmt: skip
    except (OSError, ValueError, KeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    others = [h for h in data["config"]["incident_params_hashes"] if h != config.params_hash]
    if others:
        click.echo(f"warning: incidents were made with params_hash {', '.join(others)}, the report replays with "
                   f"{config.params_hash}: pass the same detector options", err=True)  # fmt: skip
    page = render_html(data)
    if out_path == "-":
        sys.stdout.write(page)
    else:
        Path(out_path).write_text(page, encoding="utf-8")
    click.echo(f"wrote {out_path} ({len(page.encode()) / 1024:,.0f} KiB, {len(data['incidents'])} incidents, "
               f"{data['charted']} charted)", err=True)  # fmt: skip
