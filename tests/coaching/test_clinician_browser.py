"""A clinician in a real browser: the member timeline, the rule editor in words, try it, simulate,
publish, roll back, discard the draft, and every admin page they can reach.

Drives Debian's Chromium through Playwright against pytest-django's live server, and
takes the screenshots docs/clinicians.md links: into docs/screenshots/ with ``make screenshots``
(which sets SCREENSHOTS_DIR), into a temporary folder otherwise, so that ``make test``
leaves the work tree clean. Skipped when Chromium is not installed locally; under CI=true a
missing Chromium fails the test instead.

Every page of every scenario is watched: a console error, an uncaught script error or an
answer of 400 or more (the page or anything it loads) fails the test.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from coaching.services import clinician_ensure, gym_create, rulepack_install
from rules.models import Rule
from rules.selectors import rule_spec, rules_with_children
from rules.services import rule_save, rule_set_enabled, ruleset_publish, ruleset_rollback, ruleset_settings_save

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
# What JSON looks like when it leaks into the text a clinician reads.
JSON_SIGNS = ('{"', '": ', "{'", "': ", "[{", '["')
_ids = itertools.count(1)


def _chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)."
    if os.environ.get("CI") == "true":
        pytest.fail(message + " CI must run the browser test.")
    pytest.skip(message + " Skipping the browser test locally.")


class Api:
    """The gym's side: events posted to the API, as a gym's app sends them."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key

    def post(self, kind: str, *, member: str, hours_ago: float = 1, **data: object) -> list[str]:
        payload = {
            "external_id": f"browser-{next(_ids)}",
            "member": member,
            "type": kind,
            "occurred_at": (timezone.now() - dt.timedelta(hours=hours_ago)).isoformat(),
            "data": data,
        }
        request = urllib.request.Request(
            f"{self.base}/api/v1/events/",
            data=json.dumps(payload).encode(),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            assert response.status == 201
            return [advice["rule"]["key"] for advice in json.load(response)["advice"]]

    def post_run(self, *, member: str = "m-1", hours_ago: float = 1, **data: object) -> list[str]:
        run = {"distance_km": 3, "duration_min": 20, "warmup_min": 10, "surface": "road", **data}
        return self.post("run", member=member, hours_ago=hours_ago, **run)


@dataclass
class Clinic:
    """One clinician's browser tab on the live server, with everything that went wrong in it."""

    url: str
    page: Any
    api: Api
    screenshots: Path
    problems: list[str] = field(default_factory=list)

    def watch(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"{self.page.url}: script error: {error}"))
        self.page.on("response", self._answer)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"{self.page.url}: console error: {message.text}")

    def _answer(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.url}: answered {response.status}")

    def open(self, path: str) -> None:
        self.page.goto(self.url + path)

    def log_in(self, next_path: str = "/admin/") -> None:
        self.open(f"/admin/login/?next={next_path}")
        self.page.fill("#id_username", "pt-anna")
        self.page.fill("#id_password", PASSWORD)
        self.page.click("input[type=submit]")
        self.page.wait_for_selector("#user-tools")

    def editor_ready(self) -> None:
        """Wait for the rule editor's script: typing before it runs would skip its checks."""
        self.page.wait_for_selector("#rule-form[data-ready='1']", state="attached")

    def screenshot(self, name: str) -> None:
        self.page.wait_for_timeout(600)  # let highlights (the sentence's, a message's) fade first
        self.page.screenshot(path=str(self.screenshots / name), full_page=True)

    def assert_nothing_went_wrong(self) -> None:
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = _chromium()
    # Playwright's sync API runs an event loop in this thread, where the tests also use the ORM.
    unsafe = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if unsafe is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = unsafe


@pytest.fixture
def clinic(chromium, live_server, transactional_db, tmp_path) -> Iterator[Clinic]:
    """The default rule pack live, the clinician pt-anna, a gym with its key, and a browser tab."""
    rulepack_install()
    clinician_ensure(username="pt-anna", password=PASSWORD)
    _gym, key = gym_create(name="Riverside Runners")
    screenshots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    screenshots.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15000)
    clinic = Clinic(url=live_server.url, page=page, api=Api(live_server.url, key), screenshots=screenshots)
    clinic.watch()
    try:
        yield clinic
    finally:
        context.close()


def test_clinician_tunes_pain_stop_simulates_publishes_and_rolls_back(clinic):
    from playwright.sync_api import expect

    page, api = clinic.page, clinic.api
    # History: pain during 6 (stop at threshold 5, not at 7) for three members, and one 8; leaning
    # back on those runs, which pain-stop holds back while it fires.
    for member, days in (("m-1", 6), ("m-2", 5), ("m-3", 4), ("m-1", 3)):
        api.post_run(member=member, hours_ago=days * 24, pain_during=6, posture="leaning_back")
    api.post_run(member="m-2", hours_ago=48, pain_during=8, posture="leaning_back")
    # A gym's backfill of four weeks of easy runs, oldest first: the statistics count them on the
    # days they were run.
    for day in range(27, 0, -2):
        api.post_run(member="m-4", hours_ago=day * 24 + 5, warmup_min=2, posture="slouched")
        if day % 3 == 0:
            api.post_run(member="m-5", hours_ago=day * 24 + 7, running_shoes=False, shoes_km=900)

    clinic.log_in("/admin/rules/rule/")
    expect(page.locator("#rules-live-banner")).to_contain_text("Live: version 1")
    clinic.screenshot("rule-list.png")

    # Author: change the threshold and watch the sentence follow.
    page.click("#result_list a:text-is('pain-stop')")
    clinic.editor_ready()
    sentence = page.locator("#rule-sentence")
    expect(sentence).to_contain_text("pain during the run of 5 or more (out of 10)")
    threshold = page.locator("tr.param-row:has(input[value='threshold']) input[name$='-value']")
    expect(threshold).to_have_value("5")
    threshold.fill("7")
    expect(sentence).to_contain_text("pain during the run of 7 or more (out of 10)")
    clinic.screenshot("rule-editor.png")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was saved to the draft")
    expect(page.locator("#rules-live-banner")).to_contain_text("Draft: 1 changed")

    # Simulate: some pain-stop advice would disappear, and posture tips it held back would appear.
    clinic.open("/admin/rules/rule/simulate/")
    page.click("#simulate-form input[type=submit]")
    row = page.locator("#simulation-result tr[data-rule='pain-stop']")
    expect(row.locator(".disappear")).to_have_text("−4")
    posture = page.locator("#simulation-result tr[data-rule='posture']")
    expect(posture.locator(".appear")).to_have_text("+3")  # m-1's second one is cooling down
    expect(posture.locator("td.held")).to_contain_text("cooling down")
    clinic.screenshot("simulation.png")

    # Publish with a comment; the API follows at once.
    clinic.open("/admin/rules/rule/publish/")
    page.fill("#id_comment", "Pain threshold 7 for our advanced group")
    page.click("input[name=_publish]")
    expect(page.locator("ul.messagelist")).to_contain_text("Version 2 is live.")
    assert "pain-stop" not in api.post_run(member="m-9", pain_during=6)

    # Roll back to version 1; the same post (a new external_id) gets pain-stop again.
    clinic.open("/admin/rules/rule/rollback/")
    page.select_option("#id_version", "1")
    page.click("#rollback-form input[type=submit]")
    expect(page.locator("#rollback-form")).to_contain_text("Pain threshold")
    page.click("input[name=_confirm]")
    expect(page.locator("ul.messagelist")).to_contain_text("published again as version 3")
    assert "pain-stop" in api.post_run(member="m-10", pain_during=6)

    # Statistics: the backfill's bars spread over the four weeks, on one scale.
    clinic.open("/admin/rules/rule/statistics/")
    expect(page.locator("#statistics-table tr[data-rule='pain-stop'] svg")).to_be_visible()
    warm_up = page.locator("#statistics-table tr[data-rule='warm-up']")
    expect(warm_up.locator("td.num").nth(1)).to_have_text("4")  # 14 short warm-ups, a tip once a week
    clinic.screenshot("statistics.png")
    clinic.assert_nothing_went_wrong()


# -- the member timeline -----------------------------------------------------------------------
def test_clinician_opens_a_member_from_the_advice_list_reads_the_timeline_and_clears_the_referral(clinic):
    from playwright.sync_api import expect

    page, api = clinic.page, clinic.api
    api.post("profile", member="m-7", hours_ago=72, experience="returning", chronic_back_pain=True)
    api.post_run(
        member="m-7",
        hours_ago=50,
        distance_km=6.2,
        duration_min=38,
        surface="hills",
        pain_before=2,
        pain_during=6,
        pain_after=5,
    )
    given = api.post(
        "pain_report", member="m-7", hours_ago=26, pain=6, location="lower_back", bladder_or_bowel_change=True
    )
    assert "red-flags-emergency" in given
    api.post_run(member="m-8", hours_ago=30, posture="leaning_back")

    clinic.log_in("/admin/coaching/advice/")
    row = page.locator("#result_list tr", has_text="Emergency warning signs: get care now")
    row.get_by_role("link", name="m-7").click()
    expect(page.locator("h1")).to_contain_text("m-7")

    # The profile, the referral and every event in words, with the advice each produced.
    expect(page.locator(".field-profile_in_words")).to_contain_text("Running experience: returning to running")
    referral = page.locator(".field-referral")
    expect(referral).to_contain_text("Under referral since")
    expect(referral).to_contain_text("“Emergency warning signs: get care now” (red-flags-emergency)")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Events 1–3 of 3, newest first.")
    report = timeline.locator("section.coaching-event", has_text="Pain report, pain 6/10 in the lower back")
    expect(report).to_contain_text("bladder or bowel change")
    expect(report.locator("li.coaching-current").first).to_contain_text(
        "Get emergency care now — Emergency warning signs: get care now: “What you reported (a change in bladder or"
    )
    expect(report).to_contain_text("This advice put the member under referral.")
    run = timeline.locator("section.coaching-event", has_text="Run, 6.2 km in 38 min on hills, pain 2 → 6 → 5")
    expect(run.locator("li.coaching-current", has_text="Stop running for now — Stop when it hurts")).to_be_visible()
    profile = timeline.locator("section.coaching-event", has_text="Profile: returning to running")
    expect(profile).to_contain_text("No advice.")
    run.locator("details.coaching-figures summary").click()
    expect(run.locator("details.coaching-figures")).to_contain_text("Distance this week: 6.2 km")
    clinic.screenshot("member-timeline.png")

    # Mark cleared: a confirmation, then the referral has ended, in the clinician's name.
    page.get_by_role("link", name="Mark cleared").click()
    expect(page.locator("#content-main")).to_contain_text("Marking m-7 as cleared records")
    page.get_by_role("button", name="Yes, a physician cleared m-7").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Marked m-7 as cleared by a physician")
    expect(referral).to_contain_text("Not under referral. Last cleared by a physician on")
    expect(referral).to_contain_text("(recorded by pt-anna)")
    cleared = timeline.locator("section.coaching-event").first
    expect(cleared).to_contain_text("Profile: cleared by a physician")
    expect(cleared).to_contain_text("Recorded in the admin by pt-anna.")
    expect(page.get_by_role("link", name="Mark cleared")).to_have_count(0)  # nothing left to clear
    clinic.assert_nothing_went_wrong()


# -- the editor in the clinician's words ---------------------------------------------------------
def test_clinician_builds_a_pattern_rule_from_labels_and_buttons_then_discards_the_draft(clinic):
    """2 pain reports within 3 days, each with pain of at least the threshold or pain down the leg:
    built by picking labels and clicking buttons only (no field, parameter or placeholder names)."""
    from playwright.sync_api import expect

    page = clinic.page
    clinic.log_in("/admin/rules/rule/")
    expect(page.locator("#rules-live-banner")).to_contain_text("The draft equals the live version.")
    page.get_by_role("link", name="Add rule").click()
    clinic.editor_ready()

    page.fill("#id_key", "pain-twice-in-days")
    page.fill("#id_name", "Pain twice in a few days")
    page.select_option("#id_category", label="Pain")
    page.select_option("#id_severity", label="Adjust the next runs")
    page.select_option("#id_pattern", label="Several matching events within a time window")
    page.fill("#id_count", "2")
    page.fill("#id_window", "3")
    page.select_option("#id_window_unit", label="days")
    event = page.locator("section.rules-event").first
    event.locator("select[name$='-fact_type']").select_option(label="Pain report")

    # A parameter made from its label; the name follows.
    page.get_by_role("button", name="Add a parameter").click()
    parameter = page.locator("#parameters-table tr.param-row").last
    parameter.locator("input.rules-param-label").fill("Pain threshold")
    parameter.locator("select[name$='-kind']").select_option(label="Whole number")
    parameter.locator("input[name$='-value']").fill("4")

    # One block, two alternatives: pain of at least the threshold, or pain down the leg.
    block = event.locator(".rules-block").first
    first = block.locator("tr.cond-row").first
    first.locator("select[name$='-field']").select_option(label="Pain (out of 10)")
    first.locator("select[name$='-operator']").select_option(label="is at least")
    first.locator("select[name$='-parameter']").select_option(label="Pain threshold")
    block.locator("button.rules-add-alternative").click()
    second = block.locator("tr.cond-row").nth(1)
    second.locator("select[name$='-field']").select_option(label="Pain radiates to the leg")
    second.locator("select[name$='-operator']").select_option(label="is")
    second.locator("[name$='-value']").select_option(label="yes")
    expect(block.locator(".rules-block-title")).to_have_text("Any of these")
    expect(second.locator(".rules-or")).to_be_visible()

    # The message, with values inserted by their labels, previewed with numbers.
    message = page.locator("#id_message")
    message.click()
    message.press_sequentially("Pain came back: ")
    page.locator("button.rules-insert-value", has_text="Pain (out of 10)").click()
    message.press_sequentially(" out of 10, twice within ")
    page.locator("button.rules-insert-value", has_text="Time window in days").click()
    message.press_sequentially(" days. Take two rest days and tell your physiotherapist.")
    preview = page.locator("#message-preview")
    expect(preview).to_have_text(
        "Pain came back: 4 out of 10, twice within 3 days. Take two rest days and tell your physiotherapist."
    )
    assert "{" not in preview.inner_text()
    sentence = page.locator("#rule-sentence")
    expect(sentence).to_contain_text("within 3 days")
    expect(sentence).to_contain_text("4")
    assert "{" not in sentence.inner_text()
    clinic.screenshot("new-rule-editor.png")

    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("“pain-twice-in-days” was saved to the draft")
    expect(page.locator("#rules-live-banner")).to_contain_text("Draft: 1 added")
    saved = rule_spec(rules_with_children().get(key="pain-twice-in-days"))
    assert saved["pattern"] == "count" and saved["count"] == 2 and saved["window_hours"] == 72
    assert [(c["field"], c["group"]) for c in saved["conditions"]] == [("pain", 1), ("radiates_to_leg", 1)]
    assert saved["conditions"][0]["parameter"] == "pain_threshold"
    assert "{pain}" in saved["message"] and "{window_days}" in saved["message"]

    # Reopened, it reads as it was built: one "any of these" block, a window in days, a fixed key.
    page.click("#result_list a:text-is('pain-twice-in-days')")
    clinic.editor_ready()
    expect(page.locator("#rule-key")).to_have_text("pain-twice-in-days")
    expect(page.locator("#id_window")).to_have_value("3")
    expect(page.locator("#id_window_unit")).to_have_value("days")
    expect(page.locator(".rules-block .rules-block-title")).to_have_text("Any of these")

    # Discard the draft: a confirmation listing what is lost, then the draft equals live again.
    page.locator("#rules-live-banner").get_by_role("link", name="Discard the draft…").click()
    expect(page.locator("#content-main")).to_contain_text("pain-twice-in-days")
    page.get_by_role("button", name="Yes, discard the draft").click()
    expect(page.locator("ul.messagelist")).to_contain_text("The draft was discarded: it equals live version 1 again.")
    expect(page.locator("#rules-live-banner")).to_contain_text("The draft equals the live version.")
    expect(page.locator("#rules-live-banner .rules-discard-link")).to_have_count(0)
    expect(page.locator("#result_list a:text-is('pain-twice-in-days')")).to_have_count(0)
    assert not Rule.objects.filter(key="pain-twice-in-days").exists()
    clinic.assert_nothing_went_wrong()


# -- try it ------------------------------------------------------------------------------------
def test_clinician_tries_a_painful_run_and_reads_what_was_held_back_and_why(clinic):
    from playwright.sync_api import expect

    page = clinic.page
    clinic.log_in("/admin/rules/rule/try/")
    with page.expect_navigation():
        page.locator(".rules-type-picker select").select_option(label="Run")
    form = page.locator("#try-form")
    form.get_by_label("Distance (km)").fill("5")
    form.get_by_label("Duration (min)").fill("30")
    form.get_by_label("Warm-up (min)").fill("2")
    form.get_by_label("Pain during the run").fill("6")
    form.get_by_label("Posture").select_option(label="leaning back")
    page.get_by_role("button", name="Try it").click()

    result = page.locator("#try-result")
    expect(result.locator(".rules-match[data-rule='pain-stop']").first).to_contain_text("Stop running for now")
    held = result.locator(".rules-held")
    expect(held.first).to_be_visible()
    expect(result.locator(".rules-held[data-rule='posture']").first).to_contain_text("Stop when it hurts")
    expect(result.locator(".rules-held[data-rule='warm-up']").first).to_be_visible()
    clinic.screenshot("try-it.png")
    clinic.assert_nothing_went_wrong()


# -- no dead ends ------------------------------------------------------------------------------
@dataclass
class Crawl:
    """Same-origin admin links, breadth first. Each kind of page (its path with ids as ``<id>``) is
    opened a few times, each list with a few of its filters and sorts, and every rule's editor (the
    editor's script meets every shape of rule)."""

    origin: str
    per_kind: int = 4
    limit: int = 250
    seen: set[str] = field(default_factory=set)
    kinds: dict[str, int] = field(default_factory=dict)
    queue: deque[str] = field(default_factory=deque)

    # Logging out ends the walk; the pack export is a download (checked apart); describe is POST only.
    SKIP = re.compile(r"^/admin/logout/|/export/$|/describe/$")
    EVERY = re.compile(r"^/admin/rules/rule/<id>/change/$")

    def add(self, url: str) -> None:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin or not parts.path.startswith("/admin/"):
            return
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if self.SKIP.search(parts.path) or target in self.seen or len(self.seen) >= self.limit:
            return
        kind = re.sub(r"/\d+/", "/<id>/", parts.path) + ("?" if parts.query else "")
        if self.kinds.get(kind, 0) >= self.per_kind and not self.EVERY.search(kind):
            return
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.seen.add(target)
        self.queue.append(target)


def test_every_admin_page_a_clinician_reaches_opens_without_json_errors_or_dead_ends(clinic):
    api = clinic.api
    # A history with advice given, withdrawn (a late event) and a referral.
    api.post_run(member="m-1", hours_ago=80, pain_during=6, posture="leaning_back")
    api.post_run(member="m-1", hours_ago=50, surface="hills", elevation_gain_m=200)
    api.post("pain_report", member="m-1", hours_ago=30, pain=5)
    api.post_run(member="m-1", hours_ago=90, warmup_min=2)  # late: judging again withdraws advice
    api.post("pain_report", member="m-2", hours_ago=20, pain=7, bladder_or_bowel_change=True)
    api.post("profile", member="m-3", hours_ago=100, experience="new", cancer_history=True)
    api.post("cross_training", member="m-3", hours_ago=10, activity="yoga", duration_min=40)
    # Versions, a roll back, settings and a draft that differs from live: every rules page has content.
    pain_stop = rules_with_children().get(key="pain-stop")
    spec = rule_spec(pain_stop)
    spec["parameters"] = [{**p, "value": 7} if p["name"] == "threshold" else p for p in spec["parameters"]]
    rule_save(spec=spec, rule=pain_stop)
    ruleset_publish(comment="Threshold 7")
    ruleset_rollback(version=1, comment="Back to 5")
    ruleset_settings_save(settings={"advice_limit": 2})
    rule_set_enabled(rule=Rule.objects.get(key="posture"), enabled=False)

    page = clinic.page
    clinic.log_in("/admin/")
    crawl = Crawl(origin=clinic.url)
    crawl.add(clinic.url + "/admin/")
    shown_json: list[str] = []
    while crawl.queue:
        path = crawl.queue.popleft()
        response = page.goto(clinic.url + path)
        assert response is not None and response.ok, f"{path}: answered {response.status if response else None}"
        text = page.inner_text("body")
        for sign in JSON_SIGNS:
            if sign in text:
                at = text.find(sign)
                shown_json.append(f"{path}: …{text[max(0, at - 80) : at + 120]}…")
        for href in page.eval_on_selector_all("a[href]", "links => links.map((a) => a.href.split('#')[0])"):
            crawl.add(href)

    visited = crawl.seen
    assert len(visited) > 60, sorted(visited)
    for page_kind in (
        r"^/admin/rules/rule/\d+/change/$",
        r"^/admin/rules/rule/\d+/try/$",
        r"^/admin/rules/rule/try/$",
        r"^/admin/rules/rule/simulate/$",
        r"^/admin/rules/rule/statistics/$",
        r"^/admin/rules/rule/discard/$",
        r"^/admin/rules/rulesetversion/\d+/change/$",
        r"^/admin/rules/rulechange/$",
        r"^/admin/rules/rulechange/\d+/change/$",
        r"^/admin/coaching/member/$",
        r"^/admin/coaching/member/\d+/change/$",
        r"^/admin/coaching/member/\d+/clear-referral/$",
        r"^/admin/coaching/event/$",
        r"^/admin/coaching/event/\d+/change/$",
        r"^/admin/coaching/advice/$",
        r"^/admin/coaching/advice/\d+/change/$",
    ):
        assert any(re.search(page_kind, url) for url in visited), f"no page like {page_kind} was reached"
    assert not any(url.startswith("/admin/coaching/gym/") for url in visited)
    # The pack export is a download: it answers, but is no page to read.
    export = page.request.get(clinic.url + "/admin/rules/rule/export/")
    assert export.ok and export.headers["content-type"].startswith("application/json")
    assert not shown_json, "JSON shown to a clinician:\n" + "\n".join(shown_json)
    clinic.assert_nothing_went_wrong()


def test_the_pages_carry_a_content_security_policy_and_the_api_docs_render_under_it(clinic):
    """The policy allows no inline script or style: a page that needed one would log a console
    error ("Refused to execute inline script ..."), which fails every test of this file."""
    page = clinic.page
    for path in ("/admin/login/", "/api/docs/"):
        response = page.goto(clinic.url + path)
        assert response is not None and response.ok
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy
    # Swagger UI (the drf-spectacular sidecar's files) loads the schema and lists the endpoints.
    page.wait_for_selector(".opblock-summary-path")
    paths = page.eval_on_selector_all(".opblock-summary-path", "nodes => nodes.map((n) => n.textContent)")
    assert any("/api/v1/events/" in path for path in paths), paths
    clinic.assert_nothing_went_wrong()
