"""The dashboard in headless Chromium against a real worker: an outage shows up by itself.

Needs Debian's chromium at /usr/bin/chromium (``apt-get install chromium``) and the
``playwright`` package; it fails, never skips, when either is missing. Playwright never
downloads a browser here: it drives the system one through ``executable_path``.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.stream.harness import LiveRun, free_port
from tests.stream.streams import outage_stream

pytestmark = [pytest.mark.kafka, pytest.mark.browser, pytest.mark.timeout(600)]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard.png"
# A service name that is markup: the page must show it as text, never build elements from it.
HOSTILE = '<img src=x onerror="window.__pwned=1">'


@pytest.fixture
def worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[LiveRun, int, Path]]:
    run = LiveRun(kafka_bootstrap, tmp_path, extra={"SPIKEDETECT_IDLE_RATE": "1"})
    run.create_input()
    stream = tmp_path / "outage.jsonl"
    # the outage starts 80 minutes before the stream ends and is still on at the end
    outage_stream(
        stream, seed=9, days=1.2, spike_start_min=1648, spike_minutes=200, services=("instagram", HOSTILE)
    )
    port = free_port()
    run.start_worker(port)
    deadline = time.monotonic() + 120
    while True:
        run.assert_alive()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker's web server never answered\n{run.log_tail()}") from None
            time.sleep(0.5)
    yield run, port, stream
    run.stop_all()


def _console_error(msg: ConsoleMessage, errors: list[str]) -> None:
    """Console errors, except the 503s of /ready while the worker starts (the page shows those)."""
    if msg.type == "error" and not msg.location.get("url", "").endswith("/ready"):
        errors.append(f"{msg.text} at {msg.location.get('url')}")


def _wait_text(page: Page, selector: str, want: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if want in page.locator(selector).inner_text():
            return
        time.sleep(0.5)
    raise AssertionError(f"{selector} never showed {want!r}: {page.locator(selector).inner_text()!r}")


@contextmanager
def chromium_page(errors: list[str]) -> Iterator[Page]:
    """A page in Debian's headless chromium; page errors and console errors land in ``errors``."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("console", lambda msg: _console_error(msg, errors))
            yield page
        finally:
            browser.close()


def test_dashboard_shows_the_outage_and_refreshes(worker: tuple[LiveRun, int, Path]) -> None:
    run, port, stream = worker
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#open-empty:not([hidden])", timeout=30_000)  # nothing yet
        # the page must pick the outage up by itself (produce off this thread: Playwright's loop runs here)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(run.produce_file, stream).result(timeout=120)
        try:
            page.wait_for_selector("#open-table tbody tr", timeout=180_000)
        except PlaywrightTimeout:
            run.assert_alive()
            raise AssertionError(f"no open incident on the dashboard\n{run.log_tail()}") from None
        # the widest outage is selected (both services' outages are rooted at US: the US cities
        # explain the global excess): chart from /series, its regions from the event
        _wait_text(page, "#detail-title", " · US · ", 60)
        page.wait_for_selector("#chart polyline.observed", timeout=60_000)
        page.wait_for_selector("#regions rect.bar-reports", timeout=60_000)
        _wait_text(page, "#status", "ready", 60)
        time.sleep(6)  # one more refresh, so every open incident of the run is listed

        rows = page.locator("#open-table tbody tr")
        table = page.locator("#open-table").inner_text()
        # outages first: one row per outage (instagram's and the hostile service's, both rooted at US)
        assert rows.count() >= 2 and "instagram" in table and "US/CA/Los Angeles" not in table
        assert HOSTILE in table, "the hostile service name is shown as text"
        assert page.locator("#open-table img, #closed-table img, #detail img").count() == 0
        assert page.evaluate("window.__pwned") is None
        first = rows.first.locator("td").all_inner_texts()
        assert first[1].startswith("US ") and "regions" in first[1] and first[7] and first[8], first
        labels = page.locator("#regions text.label").all_text_contents()  # the other members, by excess
        assert labels[0] == "global (*)" and any(x.startswith("US/") for x in labels), labels
        points = page.locator("#chart polyline.observed").get_attribute("points") or ""
        assert len(points.split()) >= 60, "at least an hour of windows in the chart"
        assert page.locator("#chart rect.incident").count() == 1
        assert page.locator("#events-table tbody tr").count() >= 1

        # refreshes by itself
        before = page.locator("#updated").inner_text()
        deadline = time.monotonic() + 30
        while page.locator("#updated").inner_text() == before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert page.locator("#updated").inner_text() != before, "the page did not refresh itself"

        # an outage expands into its regions; choosing one redraws the detail with its series
        rows.filter(has_text="instagram").first.locator("button.toggle").click()
        page.wait_for_selector("#open-table tbody tr.member", timeout=30_000)
        assert "US/CA/Los Angeles" in page.locator("#open-table").inner_text()
        city = page.locator("#open-table tbody tr.member", has_text="US/CA/Los Angeles").first
        city.click()
        _wait_text(page, "#detail-title", "US/CA/Los Angeles", 30)
        page.wait_for_selector("#chart polyline.observed", timeout=30_000)
        page.locator("#open-table tbody tr:not(.member)", has_text="instagram").first.click()
        _wait_text(page, "#detail-title", "instagram · US · open", 30)
        page.wait_for_selector("#regions rect.bar-reports", timeout=30_000)
        page.wait_for_selector("#chart polyline.observed", timeout=30_000)

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
    assert errors == [], errors
