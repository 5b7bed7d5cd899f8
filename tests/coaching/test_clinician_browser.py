"""A clinician in a real browser: tune pain-stop, watch the sentence, simulate, publish, roll back.

Drives Debian's Chromium through Playwright against pytest-django's live server, and
takes the screenshots the README links: into docs/screenshots/ with ``make screenshots``
(which sets SCREENSHOTS_DIR), into a temporary folder otherwise, so that ``make test``
leaves the work tree clean. Skipped when Chromium is not installed locally; under CI=true a
missing Chromium fails the test instead.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import urllib.request
from pathlib import Path

import pytest
from django.utils import timezone

from coaching.services import clinician_ensure, gym_create, rulepack_install

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "a-long-clinician-password"
_ids = itertools.count(1)


def _chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)."
    if os.environ.get("CI") == "true":
        pytest.fail(message + " CI must run the browser test.")
    pytest.skip(message + " Skipping the browser test locally.")


class Api:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key

    def post_run(self, *, member: str = "m-1", hours_ago: float = 1, **data: object) -> list[str]:
        payload = {
            "external_id": f"browser-{next(_ids)}",
            "member": member,
            "type": "run",
            "occurred_at": (timezone.now() - dt.timedelta(hours=hours_ago)).isoformat(),
            "data": {"distance_km": 3, "duration_min": 20, "warmup_min": 10, "surface": "road", **data},
        }
        request = urllib.request.Request(
            f"{self.base}/api/v1/events/",
            data=json.dumps(payload).encode(),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            assert response.status == 201
            return [advice["rule"]["key"] for advice in json.load(response)["advice"]]


def test_clinician_tunes_pain_stop_simulates_publishes_and_rolls_back(live_server, transactional_db, tmp_path):
    executable = _chromium()
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread
    from playwright.sync_api import expect, sync_playwright

    rulepack_install()
    clinician_ensure(username="pt-anna", password=PASSWORD)
    _gym, key = gym_create(name="Riverside Runners")
    api = Api(live_server.url, key)
    # History: pain during 6 (stop at threshold 5, not at 7) for three members, and one 8.
    for member, days in (("m-1", 6), ("m-2", 5), ("m-3", 4), ("m-1", 3)):
        api.post_run(member=member, hours_ago=days * 24, pain_during=6)
    api.post_run(member="m-2", hours_ago=48, pain_during=8)
    screenshots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    screenshots.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(15000)
        try:
            page.goto(f"{live_server.url}/admin/login/?next=/admin/rules/rule/")
            page.fill("#id_username", "pt-anna")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            expect(page.locator("#rules-live-banner")).to_contain_text("Live: version 1")
            page.screenshot(path=str(screenshots / "rule-list.png"), full_page=True)

            # Author: change the threshold and watch the sentence follow.
            page.click("#result_list a:text-is('pain-stop')")
            sentence = page.locator("#rule-sentence")
            expect(sentence).to_contain_text("pain during the run of 5 or more (out of 10)")
            threshold = page.locator("tr.param-row:has(input[value='threshold']) input[name$='-value']")
            expect(threshold).to_have_value("5")
            threshold.fill("7")
            expect(sentence).to_contain_text("pain during the run of 7 or more (out of 10)")
            page.wait_for_timeout(600)  # let the sentence's highlight fade before the screenshot
            page.screenshot(path=str(screenshots / "rule-editor.png"), full_page=True)
            page.click("input[name=_save]")
            expect(page.locator("ul.messagelist")).to_contain_text("was saved to the draft")
            expect(page.locator("#rules-live-banner")).to_contain_text("Draft: 1 changed")

            # Simulate: some pain-stop advice would disappear.
            page.goto(f"{live_server.url}/admin/rules/rule/simulate/")
            page.click("#simulate-form input[type=submit]")
            row = page.locator("#simulation-result tr[data-rule='pain-stop']")
            expect(row.locator(".disappear")).to_have_text("−4")
            page.screenshot(path=str(screenshots / "simulation.png"), full_page=True)

            # Publish with a comment; the API follows at once.
            page.goto(f"{live_server.url}/admin/rules/rule/publish/")
            page.fill("#id_comment", "Pain threshold 7 for our advanced group")
            page.click("input[name=_publish]")
            expect(page.locator("ul.messagelist")).to_contain_text("Version 2 is live.")
            assert "pain-stop" not in api.post_run(member="m-9", pain_during=6)

            # Roll back to version 1; the same post (a new external_id) gets pain-stop again.
            page.goto(f"{live_server.url}/admin/rules/rule/rollback/")
            page.select_option("#id_version", "1")
            page.click("#rollback-form input[type=submit]")
            expect(page.locator("#rollback-form")).to_contain_text("Pain threshold")
            page.click("input[name=_confirm]")
            expect(page.locator("ul.messagelist")).to_contain_text("published again as version 3")
            assert "pain-stop" in api.post_run(member="m-9", pain_during=6)

            page.goto(f"{live_server.url}/admin/rules/rule/statistics/")
            expect(page.locator("#statistics-table tr[data-rule='pain-stop'] svg")).to_be_visible()
            page.screenshot(path=str(screenshots / "statistics.png"), full_page=True)
        finally:
            browser.close()
