"""The dashboard in headless Chromium (Debian's, driven by Playwright) against the real stack:
it renders without console errors, its backlog rises during a burst and falls after, the
failed-job list shows a job that failed on purpose, and it fits a phone. Screenshots are kept
in test-artifacts/dashboard/."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.helpers import submit, wait_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


@pytest.fixture(scope="module")
def browser():
    chromium = require_tool("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_page(browser, url: str, viewport: dict):
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{url}/dashboard")
    page.wait_for_selector('section[data-model="digits"]', timeout=30_000)
    return page, errors


def figure(page, model: str, name: str) -> float:
    text = page.inner_text(f'section[data-model="{model}"] [data-figure="{name}"]')
    return float(text.replace(",", "")) if text not in ("–", "") else -1.0


def test_the_dashboard_follows_a_burst_and_lists_a_failed_job(stack, http, browser, digits):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = open_page(browser, stack.url, {"width": 1366, "height": 900})
    page.screenshot(path=str(ARTIFACTS / "idle.png"), full_page=True)

    stack.supervisorctl("stop", "worker-digits")  # the burst piles up
    try:
        ids = [submit(http, stack.url, "digits", [digits.images[n].tolist()]).json()["id"] for n in range(140)]
        ids += [http.post(f"{stack.url}/v1/models/digits/jobs", timeout=10,
                          json={"instances": [digits.images[n].tolist()], "priority": "low"}).json()["id"]
                for n in range(10)]
        page.wait_for_function(
            """() => Number(document.querySelector('section[data-model="digits"] [data-figure="backlog"]')
                     .textContent.replace(/,/g, '')) >= 150""", timeout=20_000)
        page.wait_for_function(
            """() => document.querySelector('section[data-model="digits"] [data-lane-waiting="low"]')
                     .textContent === '10'""", timeout=20_000)
        assert page.inner_text('section[data-model="digits"] [data-lane-waiting="normal"]') == "140"
        time.sleep(2.5)  # at least one more stored snapshot, so the chart has the peak
        page.screenshot(path=str(ARTIFACTS / "burst.png"), full_page=True)
    finally:
        stack.supervisorctl("start", "worker-digits")
    for job_id in ids:
        assert wait_for(http, stack.url, job_id, deadline_s=120)["status"] == "succeeded"
    page.wait_for_function(
        """() => document.querySelector('section[data-model="digits"] [data-figure="backlog"]').textContent === '0'""",
        timeout=30_000)
    backlog_line = page.get_attribute('section[data-model="digits"] polyline[data-series="backlog"]', "points")
    peak = max(150 - float(point.split(",")[1]) for point in backlog_line.split())  # y grows downwards
    assert peak > 0 and figure(page, "digits", "backlog") == 0

    failed = submit(http, stack.url, "faulty", [[500, 0, 0, 0]]).json()["id"]
    assert wait_for(http, stack.url, failed)["status"] == "failed"
    page.wait_for_selector(f'#failed td:text("{failed}")', timeout=20_000)
    assert "failure limit" in page.inner_text("#failed")
    page.screenshot(path=str(ARTIFACTS / "after.png"), full_page=True)
    assert errors == []


def test_the_dashboard_fits_a_phone(stack, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = open_page(browser, stack.url, {"width": 390, "height": 844})
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=True)
    assert overflow <= 1 and errors == []
