"""The report in headless Chromium: charts render, nothing is fetched, no script errors.

Uses Debian's chromium (``/usr/bin/chromium``) through Playwright; it never downloads a
browser. A missing chromium fails the test: CI installs it. The screenshot is kept as
``artifacts/report.png`` at the repository root.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.replay.test_report import make_inputs

from spikedetect.cli import main

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    reports, incidents, truth = make_inputs(tmp_path)
    page_path = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["report", "--events", str(reports), "--incidents", str(incidents),
                                    "--truth", str(truth), "--out", str(page_path)])  # fmt: skip
    assert res.exit_code == 0, res.output
    url = page_path.as_uri()
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url)
            page.wait_for_selector("body[data-rendered]", timeout=15_000)
            n = int(page.get_attribute("body", "data-rendered") or 0)
            cards = page.query_selector_all("section.incident")
            assert n >= 3 and len(cards) == n
            overview = page.query_selector("svg#overview")
            assert overview is not None and _size(overview)[0] > 500
            incident_rects = page.query_selector_all("svg#overview rect.inc")
            assert len(incident_rects) == n and all(_size(r)[0] > 0 for r in incident_rects)
            assert len(page.query_selector_all("svg#overview rect.truth")) == 1
            for card in cards:
                chart = card.query_selector("svg.chart")
                assert chart is not None
                for sel in ("path.obs", "path.exp", "path.band", "rect.span"):
                    el = chart.query_selector(sel)
                    assert el is not None, sel
                    w, h = _size(el)
                    assert w > 0 and h > 0, f"{sel} is empty in {card.get_attribute('id')}"
                assert len(card.query_selector_all("svg.bars rect.bar")) >= 2  # categories and sources
            assert page.query_selector_all("table.children svg.spark path.obs")
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            cards[0].screenshot(path=str(ARTIFACTS / "report-incident.png"))
            print(f"screenshot: {shot}")
        finally:
            browser.close()
    assert problems == []
    assert set(requests) == {url}, "the report must not load anything"


def _size(el: object) -> tuple[float, float]:
    box = el.bounding_box()  # type: ignore[attr-defined]
    return (0.0, 0.0) if box is None else (box["width"], box["height"])
