"""The HTML of ``spikedetect report``: one self-contained file (inline CSS, JS and SVG; no requests).

The report's data is embedded as JSON; a small script draws the charts as SVG when the page
opens. Text from the data is only ever set with ``textContent``, never parsed as HTML.
"""

from __future__ import annotations

import html
from typing import Any

import orjson

from spikedetect.evaluate.report_assets import CSS, JS


def render_html(data: dict[str, Any]) -> str:
    """The report page for ``data`` from :func:`~spikedetect.evaluate.report.build_report`."""
    blob = orjson.dumps(data).decode().replace("</", "<\\/")
    s = data["summary"]
    title = html.escape(data["title"])
    truth = data.get("truth")
    matched = sum(1 for i in data["incidents"] if i.get("match") not in (None, "unmatched"))
    facts = [("events", f"{s['events']:,}"), ("incidents", str(len(data["incidents"]))),
             ("windows", f"{s['windows_closed']:,}"), ("detector", data["config"]["detector"]),
             ("params", data["config"]["params_hash"])]  # fmt: skip
    if truth is not None:
        facts.append(("matched to truth", f"{matched}/{len(data['incidents'])}"))
    fact_html = "".join(f"<span>{html.escape(k)} <b>{html.escape(v)}</b></span>" for k, v in facts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{CSS}</style></head>
<body>
<h1>{title}</h1>
<div class="muted">{html.escape(_range_text(data))} · window {data["window_ms"] // 1000}s · all times UTC</div>
<div class="facts">{fact_html}</div>
<h2>Outages</h2>
<div id="index"></div>
<h2>Timeline</h2>
<div id="timeline"></div>
<h2>Incidents</h2>
<div id="incidents"></div>
<script id="report-data" type="application/json">{blob}</script>
<script>{JS}</script>
</body></html>
"""


def _range_text(data: dict[str, Any]) -> str:
    from spikedetect.core.timefmt import format_ts_ms

    return f"{format_ts_ms(data['start_ms'])[:16]} – {format_ts_ms(data['end_ms'])[:16]}"


__all__ = ["render_html"]
