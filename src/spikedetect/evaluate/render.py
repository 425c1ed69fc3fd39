"""An :class:`~spikedetect.evaluate.score.EvaluationResult` as rich tables (``spikedetect evaluate``,
``replay --truth``, the demo): summary, outages, traps, groups, signals, first unmatched incidents."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from spikedetect.evaluate.groups import GroupSummary
from spikedetect.evaluate.score import LEVELS, EvaluationResult
from spikedetect.evaluate.signals import SignalSummary

__all__ = ["render", "render_groups", "render_signals"]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _num(x: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}{unit}"


def render(result: EvaluationResult, console: Console) -> None:
    """The result as rich tables: summary, outages, traps, first unmatched incidents."""
    console.print(_summary(result))
    console.print(_outages(result))
    console.print(_traps(result))
    if result.groups is not None:
        render_groups(result.groups, console)
    if result.signals is not None:
        render_signals(result.signals, console)
    if result.unmatched:
        console.print(_unmatched(result))
    if result.skipped_events:
        console.print(
            f"[yellow]{result.skipped_events} events skipped (not spikedetect.incident/v1 or /v2, or incomplete)[/]"
        )


def _summary(result: EvaluationResult) -> Table:
    summary = Table(title="Detection quality", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    detected = sum(o.detected for o in result.outages)
    rows = [
        ("outages detected (recall)", f"{detected}/{len(result.outages)}  {_pct(result.recall)}"),
        ("must-detect keys found", _pct(result.key_recall)),
        *((f"  {lv} keys", _pct(result.level_recall.get(lv))) for lv in LEVELS),
        ("incidents", f"{result.incidents} ({result.matched_incidents} matched)"),
        ("precision", _pct(result.precision)),
        (
            "false alarms / day",
            f"{result.false_alarms_per_day:.2f}  ({result.unmatched_incidents} over {result.days:.2f} d)",
        ),
        ("trap alarms", str(result.trap_alarms)),
        ("median detection delay, large outages", _num(result.median_detection_delay_windows, " windows")),
        (
            "median close delay",
            _num(None if result.median_close_delay_s is None else result.median_close_delay_s / 60, " min"),
        ),
    ]
    for name, value in rows:
        summary.add_row(name, value)
    return summary


def _outages(result: EvaluationResult) -> Table:
    outages = Table(title="Outages", title_justify="left")
    columns = ("id", "service", "large", "detected", "delay (win)", "first alarm (s)", "keys", "close (min)")
    for col in (*columns, "fragments", "missed"):
        left = col in ("id", "service", "missed")
        outages.add_column(col, justify="left" if left else "right", no_wrap=col in ("id", "service"))
    for o in result.outages:
        outages.add_row(
            o.id, o.service, "yes" if o.large else "", "[green]yes[/]" if o.detected else "[red]no[/]",
            _num(o.detection_delay_windows), _num(o.first_alarm_delay_s, digits=0),
            f"{len(o.keys_found)}/{len(o.must_detect)}",
            _num(None if o.close_delay_s is None else o.close_delay_s / 60), str(o.fragments),
            ", ".join(o.keys_missed[:4]) + (" ..." if len(o.keys_missed) > 4 else ""),
        )  # fmt: skip
    return outages


def _traps(result: EvaluationResult) -> Table:
    traps = Table(title="Traps (must stay quiet)", title_justify="left")
    for col in ("id", "service", "start", "end", "alarms"):
        traps.add_column(col, no_wrap=col == "id")
    for t in result.traps:
        traps.add_row(t.id, t.service, t.start[:16], t.end[:16], f"[red]{t.alarms}[/]" if t.alarms else "0")
    return traps


def _unmatched(result: EvaluationResult) -> Table:
    false = Table(
        title=f"Unmatched incidents (first 10 of {len(result.unmatched)})", title_justify="left"
    )
    for col in ("incident_id", "service", "region", "opened_at"):
        false.add_column(col)
    for row in result.unmatched[:10]:
        false.add_row(row["incident_id"], row["service"], row["region"], row["opened_at"])
    return false

def render_groups(g: GroupSummary, console: Console) -> None:
    """Outage incidents (spikedetect.incident/v2) scored as groups."""
    table = Table(title=f"Outage incidents as groups: {g.found}/{g.outages} found, {g.one_incident} as exactly one "
                        f"incident, {g.over_budget} over the event budget, {g.unmatched_incidents} of "
                        f"{g.incidents} unmatched", title_justify="left")
    for col in ("id", "service", "found", "incidents", "delay (s)", "regions covered", "keys listed", "events"):
        table.add_column(col, justify="left" if col in ("id", "service") else "right", no_wrap=col == "id")
    for o in g.scores:
        table.add_row(o.id, o.service, "[green]yes[/]" if o.found else "[red]no[/]",
                      str(len(o.incidents)) if len(o.incidents) <= 1 else f"[yellow]{len(o.incidents)}[/]",
                      _num(o.delay_s, digits=0), _pct(o.regions_covered), f"{o.keys_listed}/{o.affected_keys}",
                      f"{o.events} / {o.event_budget:.0f}")
    console.print(table)


def render_signals(g: SignalSummary, console: Console) -> None:
    """Composition and ingest-gap incidents (issue 18) against the truth's signals."""
    table = Table(title=f"Signals (composition, ingest_gap): {sum(s.detected for s in g.expected)}/{len(g.expected)} "
                        f"found, {g.false_signals} unmatched, {g.trap_alarms} on traps", title_justify="left")
    for col in ("id", "kind", "service", "found", "keys found", "delay (s) per key", "incidents", "events"):
        table.add_column(col, justify="left" if col in ("id", "kind", "service", "keys found") else "right")
    for s in g.expected:
        table.add_row(s.id, s.kind, s.service, "[green]yes[/]" if s.detected and s.sources_ok else "[red]no[/]",
                      f"{', '.join(s.keys_found)} of {', '.join(s.keys)}",
                      ", ".join(f"{k} {v:.0f}" for k, v in s.delay_s.items()), str(len(s.incidents)), str(s.events))
    console.print(table)
