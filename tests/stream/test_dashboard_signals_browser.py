"""The dashboard's views of composition shifts and ingest gaps (issue 18), in headless Chromium.

The page is the packaged one; its API answers come from the worker's own :class:`LiveView`
fed with signal events that the core detectors produced (tests/core/test_signals.py's
drivers), served through Playwright's request routing, so no broker is needed. Fails, never
skips, without Debian's chromium.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from playwright.sync_api import Page, Route

from spikedetect.core.signal_events import SignalEvent
from spikedetect.stream.live import LiveView
from tests.core.test_signals import SHIFT_AT, SHIFT_LEN, run_composition, run_gaps, step
from tests.stream.test_dashboard_browser import _wait_text, chromium_page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ORIGIN = "http://dashboard.test"
STATIC = resources.files("spikedetect.stream") / "static"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def _signals() -> list[SignalEvent]:
    _, shift = run_composition(SHIFT_AT + SHIFT_LEN + 60, 200.0, step)
    _, gaps = run_gaps(300, {"ig": 30.0}, lambda svc, src, i: src == "web" and 200 <= i < 220)
    return shift + gaps


def _serve(view: LiveView, route: Route) -> None:
    url = urlsplit(route.request.url)
    path, params = url.path, {k: v[0] for k, v in parse_qs(url.query).items()}
    if path == "/" or path.startswith("/static/"):
        name = "index.html" if path == "/" else path.removeprefix("/static/")
        body = (STATIC / name).read_bytes()
        route.fulfill(status=200, body=body, content_type=TYPES.get(name[name.rfind("."):], "text/plain"))
        return
    status, doc = 200, None
    if path == "/incidents":
        items = view.incident_list(state=params.get("state"), limit=int(params.get("limit", 200)))
        doc = {"incidents": items, "count": len(items)}
    elif path.startswith("/incidents/"):
        doc = view.incident(path.removeprefix("/incidents/"))
    elif path.startswith("/series/"):
        service, region = path.removeprefix("/series/").split("/", 1)
        doc = view.series(service, region)
    elif path == "/ready":
        doc = {"ready": True}
    if doc is None:
        status, doc = 404, {"error": f"no {path}"}
    route.fulfill(status=status, body=orjson.dumps(doc), content_type="application/json")


def _row(page: Page, text: str) -> list[str]:
    return page.locator("#closed-table tbody tr", has_text=text).first.locator("td").all_inner_texts()


def test_composition_shift_and_ingest_gap_show_their_own_fields() -> None:
    events = _signals()
    assert {e.kind for e in events} == {"composition", "ingest_gap"}
    view = LiveView(60_000)
    for e in events:
        view.on_incident(e)
    shift = next(e for e in reversed(events) if e.kind == "composition")
    silence = next(e for e in reversed(events) if e.kind == "ingest_gap")
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.route(f"{ORIGIN}/**", lambda route: _serve(view, route))
        page.goto(f"{ORIGIN}/")
        page.wait_for_selector("#closed-table tbody tr", timeout=30_000)

        # the list: a gap names its silent source and shows the reports it was missing
        gap = _row(page, "ingest gap")
        assert gap[1].startswith("ingest gap (web): "), gap
        # observed 0 and the expected reports (about 20 windows x 30 x 0.35), not an outage's peak
        assert gap[4] == "0" and gap[5] == f"{silence.extra['expected_reports']:.0f}", gap
        assert 150 < silence.extra["expected_reports"] < 300
        assert gap[8] == "", gap
        # a composition shift: its risen category with the expected and observed share
        row = _row(page, "composition shift")
        assert row[1].startswith("composition shift: global (*)"), row
        rose = shift.extra["rose"][0]
        want = (f"{rose} {round(shift.extra['expected_categories'][rose] * 100)}% \u2192 "
                f"{round(shift.extra['categories'][rose] * 100)}%")
        assert row[7].startswith(want), (row, want)
        assert row[4] == "–" and row[5] == "–", row  # no outage peak or expected count

        page.locator("#closed-table tbody tr", has_text="composition shift").first.click()
        _wait_text(page, "#detail-title", "composition shift · global (*) · closed", 30)
        meta = page.locator("#detail-meta").inner_text()
        assert "rose: " + want in meta and "(recovered)" in meta and "undefined" not in meta, meta
        assert page.locator("#regions-caption").inner_text().startswith("Category shares")
        labels = page.locator("#regions text.label").all_text_contents()
        assert labels[0] == rose, labels  # the largest move first
        assert "3 region(s): global (*), US, US/CA" in page.locator("#regions-note").inner_text()
        assert page.locator("#events-table tbody tr").count() == shift.seq

        page.locator("#closed-table tbody tr", has_text="ingest gap").first.click()
        _wait_text(page, "#detail-title", "ig · ingest gap · closed", 30)
        meta = page.locator("#detail-meta").inner_text()
        assert meta.startswith("silent: web; opened ") and "20 windows without a report" in meta, meta
        assert "undefined" not in meta and "NaN" not in page.locator("#detail").inner_text()
        assert page.locator("#regions").is_hidden()
    # /series answers 404 here as the worker does for a key without retained windows (the page says
    # so under the chart); the browser logs those responses, nothing else may be logged
    assert [e for e in errors if f"{ORIGIN}/series/" not in e] == [], errors
