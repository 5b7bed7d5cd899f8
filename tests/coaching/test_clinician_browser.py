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
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from coaching.services import clinician_ensure, gym_create, rulepack_install
from rules.models import Rule, RulesetVersion
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
    username: str = "pt-anna"
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
        self.page.fill("#id_username", self.username)
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
    # The narrowest screen clinicians use: every page must be whole at 1366 px.
    context = chromium.new_context(viewport={"width": 1366, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15000)
    clinic = Clinic(url=live_server.url, page=page, api=Api(live_server.url, key), screenshots=screenshots)
    clinic.watch()
    try:
        yield clinic
    finally:
        context.close()


@pytest.fixture
def second_clinician(clinic, chromium) -> Iterator[Any]:
    """pt-ben, another clinician, in a browser of his own: opens a page, logged in."""
    clinician_ensure(username="pt-ben", password=PASSWORD)
    contexts = []

    def _open(path_or_url: str) -> Clinic:
        context = chromium.new_context(viewport={"width": 1366, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        other = Clinic(url=clinic.url, page=page, api=clinic.api, screenshots=clinic.screenshots, username="pt-ben")
        other.watch()
        other.log_in(path_or_url.removeprefix(clinic.url))
        return other

    yield _open
    for context in contexts:
        context.close()


def test_two_clinicians_sign_off_a_threshold_edit_and_a_roll_back(clinic, second_clinician):
    """Clinician A edits a threshold, simulates, sees a changed event with both messages and asks
    to publish; A cannot approve it; clinician B approves; the live version changes; its page
    shows what B approved. Then the same for a roll-back."""
    from playwright.sync_api import expect

    page, api = clinic.page, clinic.api
    # History: pain during 5 (stop at threshold 5, not at 6) for three members, and one 6 (stop at
    # both, told "at or above 5/10" or "6/10"); leaning back on those runs, which pain-stop holds
    # back while it fires.
    for member, days in (("m-1", 6), ("m-2", 5), ("m-3", 4), ("m-1", 3)):
        api.post_run(member=member, hours_ago=days * 24, pain_during=5, posture="leaning_back")
    api.post_run(member="m-2", hours_ago=48, pain_during=6, posture="leaning_back")
    # A gym's backfill of four weeks of easy runs, oldest first: the statistics count them on the
    # days they were run.
    for day in range(27, 0, -2):
        api.post_run(member="m-4", hours_ago=day * 24 + 5, warmup_min=2, posture="slouched")
        if day % 3 == 0:
            api.post_run(member="m-5", hours_ago=day * 24 + 7, running_shoes=False, shoes_km=900)

    clinic.log_in("/admin/rules/rule/")
    expect(page.locator("#rules-live-banner")).to_contain_text("Live: version 1")
    clinic.screenshot("rule-list.png")

    # A authors: change the threshold and watch the sentence follow.
    page.click("#result_list a:text-is('Stop when it hurts')")
    clinic.editor_ready()
    sentence = page.locator("#rule-sentence")
    expect(sentence).to_contain_text("pain during the run of 5 or more (out of 10)")
    threshold = page.locator("tr.param-row:has(input[value='threshold']) input[name$='-value']")
    expect(threshold).to_have_value("5")
    threshold.fill("6")
    expect(sentence).to_contain_text("pain during the run of 6 or more (out of 10)")
    expect(page.locator("#id_message")).to_have_value(re.compile(r"\[What matched, in words\].*\[Pain threshold\]"))
    clinic.screenshot("rule-editor.png")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("“Stop when it hurts” was saved to the draft")
    expect(page.locator("#rules-live-banner")).to_contain_text("Draft: 1 changed")

    # A simulates: pain-stop's advice would disappear where the pain was 5 and change where it was 6.
    clinic.open("/admin/rules/rule/simulate/")
    page.click("#simulate-form input[type=submit]")
    row = page.locator("#simulation-rules tr[data-rule='pain-stop']")
    expect(row.locator(".disappear")).to_have_text("−4")
    posture = page.locator("#simulation-rules tr[data-rule='posture']")
    expect(posture.locator(".appear")).to_have_text("+3")  # m-1's second one is cooling down
    expect(posture.locator("td.held")).to_contain_text("cooling down")
    expect(page.locator("#rules-burden")).to_contain_text("Advice per member and week")
    clinic.screenshot("simulation.png")
    # The figure links to its rows: the changed event, with both messages side by side.
    row.locator("a.change").click()
    changed = page.locator("#simulation-rows tr[data-rule='pain-stop'][data-kind='change']")
    expect(changed).to_have_count(1)
    expect(changed).to_contain_text("Run, 3 km in 20 min on the road, pain during 6/10")
    expect(changed.locator("td.rules-advice-live")).to_contain_text("at or above 5/10")
    expect(changed.locator("td.rules-advice-draft")).to_contain_text("at or above 6/10")
    clinic.screenshot("simulation-diff.png")
    # The event opens on the member's timeline, with the draft's advice beside what it got.
    changed.locator("td.rules-row-event a").first.click()
    expect(page.locator("section.coaching-target")).to_contain_text("With the draft")
    expect(page.locator("section.coaching-target .coaching-simulated")).to_contain_text("at or above 6/10")

    # A asks to publish, and cannot approve the request.
    clinic.open("/admin/rules/rule/publish/")
    expect(page.locator("#rules-burden")).to_be_visible()
    page.fill("#id_comment", "Pain threshold 6 for our advanced group")
    page.click("input[name=_publish]")
    expect(page.locator("ul.messagelist")).to_contain_text("waiting for another clinician's approval")
    expect(page.locator("#rules-own-request")).to_contain_text("another clinician must approve it")
    expect(page.locator("input[name=_approve]")).to_have_count(0)
    request_url = page.url
    assert "pain-stop" in api.post_run(member="m-9", pain_during=5)  # nothing live changed yet

    # B approves what A asked, as it was frozen; the live version changes at once.
    other = second_clinician(request_url)
    expect(other.page.locator("#rules-request-record")).to_contain_text("Pain threshold 6 for our advanced group")
    expect(other.page.locator("#rules-request-record .rules-diff")).to_contain_text("Pain threshold")
    expect(other.page.locator("#rules-frozen-simulation")).to_contain_text("would disappear")
    expect(other.page.locator("#rules-burden")).to_be_visible()
    other.screenshot("approval.png")
    other.page.fill("#id_comment", "Checked the changed events")
    other.page.click("input[name=_approve]")
    expect(other.page.locator("ul.messagelist")).to_contain_text("Version 2 is live.")
    assert "pain-stop" not in api.post_run(member="m-10", pain_during=5)

    # The version's page shows the frozen record: who asked, who approved, what they saw.
    clinic.open("/admin/rules/rulesetversion/")
    page.click("#result_list a:text-is('2')")
    record = page.locator("#rules-request-record")
    expect(record).to_contain_text("asked by pt-anna")
    expect(record).to_contain_text("Approved by pt-ben")
    expect(record).to_contain_text("Checked the changed events")
    expect(record.locator(".rules-diff")).to_contain_text("Pain threshold")
    expect(record.locator("#rules-frozen-simulation")).to_contain_text("would disappear")
    expect(record.locator("#rules-burden")).to_be_visible()

    # The same for a roll-back to version 1: A asks, B approves.
    clinic.open("/admin/rules/rule/rollback/")
    page.select_option("#id_version", "1")
    page.click("#rollback-form input[type=submit]")
    expect(page.locator("#rollback-form")).to_contain_text("Pain threshold")
    page.fill("#id_comment", "Back to 5: too few stops")
    page.click("input[name=_confirm]")
    expect(page.locator("#rules-own-request")).to_be_visible()
    expect(page.locator("input[name=_approve]")).to_have_count(0)
    assert "pain-stop" not in api.post_run(member="m-11", pain_during=5)
    other.open(page.url.removeprefix(clinic.url))
    expect(other.page.locator("#rules-request-record")).to_contain_text("Roll back to version 1")
    other.page.click("input[name=_approve]")
    expect(other.page.locator("ul.messagelist")).to_contain_text("published again as version 3")
    assert "pain-stop" in api.post_run(member="m-12", pain_during=5)
    clinic.open("/admin/rules/rulesetversion/")
    page.click("#result_list a:text-is('3')")
    expect(page.locator("#rules-request-record")).to_contain_text("Back to 5: too few stops")
    expect(page.locator("#rules-request-record")).to_contain_text("Approved by pt-ben")

    # How advice lands: every rule over a chosen range, and one rule's page with its members and
    # how its cards were received (feedback a clinical system sent).
    from coaching.models import Advice, AdviceFeedback, OverrideReason

    # The list clinicians edit (a live server's database starts empty of it).
    OverrideReason.objects.get_or_create(code="not-relevant", defaults={"display": "Not relevant to this member"})
    for advice, reasons in zip(
        Advice.objects.filter(rule_key="pain-stop"), (["not-relevant"], [], ["member-declined"]), strict=False
    ):
        AdviceFeedback.objects.create(
            advice=advice,
            outcome="overridden" if reasons else "accepted",
            reasons=reasons,
            outcome_at=timezone.now(),
            source="cds",
        )
    clinic.open("/admin/rules/rule/statistics/")
    expect(page.locator("#statistics-table tr[data-rule='pain-stop'] svg")).to_be_visible()
    warm_up = page.locator("#statistics-table tr[data-rule='warm-up']")
    expect(warm_up.locator("td[data-figure='given']")).to_have_text("4")  # 14 short warm-ups, a tip once a week
    clinic.screenshot("statistics.png")
    page.click("#statistics-table tr[data-rule='pain-stop'] td a")
    expect(page.locator("#reached")).to_contain_text("m-1 (Riverside Runners)")
    expect(page.locator("#reasons")).to_contain_text("Not relevant to this member")
    expect(page.locator("#rules-landing svg text.axis").first).to_be_visible()
    clinic.screenshot("landing.png")
    clinic.assert_nothing_went_wrong()
    other.assert_nothing_went_wrong()


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
    expect(referral).to_contain_text("when the rule “Emergency warning signs: get care now” gave its advice")
    expect(referral).not_to_contain_text("red-flags")  # the rule by its name, never its key
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

    page.fill("#id_name", "Pain twice in a few days")
    expect(page.locator("#rule-key-made")).to_have_text("pain-twice-in-a-few-days")  # made from the name
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
    expect(page.locator("ul.messagelist")).to_contain_text("“Pain twice in a few days” was saved to the draft")
    expect(page.locator("#rules-live-banner")).to_contain_text("Draft: 1 added")
    saved = rule_spec(rules_with_children().get(key="pain-twice-in-a-few-days"))
    assert saved["pattern"] == "count" and saved["count"] == 2 and saved["window_hours"] == 72
    assert [(c["field"], c["group"]) for c in saved["conditions"]] == [("pain", 1), ("radiates_to_leg", 1)]
    assert saved["conditions"][0]["parameter"] == "pain_threshold"
    assert "{pain}" in saved["message"] and "{window_days}" in saved["message"]

    # Reopened, it reads as it was built: one "any of these" block, a window in days, a fixed key.
    page.click("#result_list a:has-text('Pain twice in a few days')")
    clinic.editor_ready()
    expect(page.locator("#rule-key")).to_have_text("pain-twice-in-a-few-days")
    expect(page.locator("#id_message")).to_have_value(
        "Pain came back: [Pain] out of 10, twice within [Time window in days] days. Take two rest days and tell "
        "your physiotherapist."
    )
    expect(page.locator("#id_window")).to_have_value("3")
    expect(page.locator("#id_window_unit")).to_have_value("days")
    expect(page.locator(".rules-block .rules-block-title")).to_have_text("Any of these")

    # Discard the draft: a confirmation listing what is lost, then the draft equals live again.
    page.locator("#rules-live-banner").get_by_role("link", name="Discard the draft…").click()
    expect(page.locator("#content-main")).to_contain_text("Pain twice in a few days")
    page.get_by_role("button", name="Yes, discard the draft").click()
    expect(page.locator("ul.messagelist")).to_contain_text("The draft was discarded: it equals live version 1 again.")
    expect(page.locator("#rules-live-banner")).to_contain_text("The draft equals the live version.")
    expect(page.locator("#rules-live-banner .rules-discard-link")).to_have_count(0)
    expect(page.locator("#result_list a:has-text('Pain twice in a few days')")).to_have_count(0)
    assert not Rule.objects.filter(key="pain-twice-in-a-few-days").exists()
    clinic.assert_nothing_went_wrong()


def test_clinician_builds_three_days_in_a_row_on_hills(clinic):
    """ "3 days in a row with a run on hills": the editor offers the days pattern, asks how many
    days (no time window), explains it, and saves it as such."""
    from playwright.sync_api import expect

    page = clinic.page
    clinic.log_in("/admin/rules/rule/add/")
    clinic.editor_ready()
    page.fill("#id_name", "Hills three days running")
    page.select_option("#id_category", label="Surface")
    page.select_option("#id_severity", label="Adjust the next runs")
    page.select_option("#id_pattern", label="Days in a row with a matching event")
    expect(page.locator(".field-count label")).to_have_text("How many days in a row:")
    expect(page.locator(".field-window")).to_be_hidden()
    expect(page.locator("#rules-pattern-help")).to_contain_text("calendar days")
    page.fill("#id_count", "3")
    event = page.locator("section.rules-event").first
    event.locator("select[name$='-fact_type']").select_option(label="Run")
    condition = event.locator("tr.cond-row").first
    condition.locator("select[name$='-field']").select_option(label="Surface")
    condition.locator("select[name$='-operator']").select_option(label="is")
    condition.locator("[name$='-value']").select_option(label="hills")
    message = page.locator("#id_message")
    message.click()
    message.press_sequentially("Hills on ")
    page.locator("button.rules-insert-value", has_text="How many days in a row").click()
    message.press_sequentially(" days in a row: take a flat route tomorrow.")
    expect(message).to_have_value("Hills on [How many days in a row] days in a row: take a flat route tomorrow.")
    expect(page.locator("#message-preview")).to_have_text("Hills on 3 days in a row: take a flat route tomorrow.")
    expect(page.locator("#rule-sentence")).to_contain_text("When 3 days in a row each have a run with surface “hills”")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("“Hills three days running” was saved to the draft")
    saved = rule_spec(rules_with_children().get(key="hills-three-days-running"))
    assert (saved["pattern"], saved["count"], saved["window_hours"]) == ("days", 3, None)
    assert saved["message"] == "Hills on {count} days in a row: take a flat route tomorrow."
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


# What a clinician must never read (the walk below fails on each): a code where words belong.
FIELD_CODE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")  # pain_during, cleared_by_physician
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
# What each page tells the walk: its text, each table row's first cell, and how far it overflows.
PAGE_FACTS = """() => ({
    text: document.body.innerText,
    firsts: Array.from(document.querySelectorAll("table tr"))
        .map((tr) => tr.querySelector("td, th"))
        .filter(Boolean)
        .map((cell) => cell.innerText.trim()),
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    // A list or box that scrolls sideways inside the page hides its right-hand columns just the same.
    clipped: Array.from(document.querySelectorAll("#changelist .results, .module, .rules-scroll"))
        .filter((box) => box.scrollWidth > box.clientWidth + 1)
        .map((box) => `${box.id || box.className} by ${box.scrollWidth - box.clientWidth} px`),
    links: Array.from(document.querySelectorAll("a[href]")).map((a) => a.href.split("#")[0]),
})"""


def page_problems(facts: dict[str, Any], keys: set[str], path: str) -> list[str]:
    """What a page shows a clinician that it must not: JSON, a brace, a field code, an ISO date, a
    row that begins with a rule's key, a width beyond the screen."""
    text = facts["text"]
    found = []

    def seen(what: str, at: int) -> None:
        found.append(f"{what}: {path}: …{text[max(0, at - 80) : at + 100]}…")

    for sign in JSON_SIGNS:
        if sign in text:
            seen("JSON", text.find(sign))
    for what, pattern in (("brace", re.compile(r"[{}]")), ("field code", FIELD_CODE), ("ISO date", ISO_DATE)):
        hit = pattern.search(text)
        if hit:
            seen(what, hit.start())
    for first in facts["firsts"]:
        if any(first == key or first.startswith((key + " ", key + "\n")) for key in keys):
            found.append(f"key first: {path}: a row begins with {first[:60]!r}")
    if facts["overflow"] > 1:
        found.append(f"overflow: {path}: {facts['overflow']} px wider than the screen")
    for box in facts["clipped"]:
        found.append(f"overflow: {path}: {box} wider than its box")
    return found


@dataclass
class LinkCheck:
    """Every same-origin link a page shows, asked for once (each kind of link a few times): none may
    answer 403 or 404 to the clinician who was shown it."""

    origin: str
    per_kind: int = 3
    asked: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    dead: list[str] = field(default_factory=list)

    def check(self, request: Any, url: str, on: str) -> None:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin or Crawl.SKIP.search(parts.path) or url in self.asked:
            return
        kind = re.sub(r"/\d+/", "/<id>/", parts.path) + "?" + ",".join(sorted(parse_qs(parts.query)))
        if self.kinds.get(kind, 0) >= self.per_kind:
            return
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        status = request.get(url, max_redirects=5).status
        self.asked[url] = status
        if status in (403, 404):
            self.dead.append(f"{on} links to {parts.path}?{parts.query}: answered {status}")


def walk_setup(clinic: Clinic) -> None:
    """A history with advice given, withdrawn (a late event), feedback and a referral; versions, a
    roll back, one approved request and one waiting, a kept simulation, settings, a rule past its
    review date and a draft that differs from live: every page a clinician reaches has content."""
    from coaching.models import Advice, AdviceFeedback
    from rules import governance, simulation

    api = clinic.api
    api.post_run(member="m-1", hours_ago=80, pain_during=6, posture="leaning_back")
    api.post_run(member="m-1", hours_ago=50, surface="hills", elevation_gain_m=200)
    api.post("pain_report", member="m-1", hours_ago=30, pain=5)
    api.post_run(member="m-1", hours_ago=90, warmup_min=2)  # late: judging again withdraws advice
    api.post("pain_report", member="m-2", hours_ago=20, pain=7, bladder_or_bowel_change=True)
    api.post("profile", member="m-3", hours_ago=100, experience="new", cancer_history=True)
    api.post("cross_training", member="m-3", hours_ago=10, activity="yoga", duration_min=40)
    for advice, outcome in zip(
        Advice.objects.order_by("pk")[:3], ("accepted", "overridden", "overridden"), strict=False
    ):
        AdviceFeedback.objects.create(
            advice=advice,
            outcome=outcome,
            reasons=["not-relevant"] if outcome == "overridden" else [],
            outcome_at=timezone.now(),
            source="cds",
        )
    ben, _ = clinician_ensure(username="pt-ben", password=PASSWORD)
    pain_stop = rules_with_children().get(key="pain-stop")
    spec = rule_spec(pain_stop)
    spec["parameters"] = [{**p, "value": 7} if p["name"] == "threshold" else p for p in spec["parameters"]]
    rule_save(spec=spec, rule=pain_stop)
    ruleset_publish(comment="Threshold 7")
    ruleset_rollback(version=1, comment="Back to 5")
    spec["parameters"] = [{**p, "value": 6} if p["name"] == "threshold" else p for p in spec["parameters"]]
    rule_save(spec=spec, rule=rules_with_children().get(key="pain-stop"), user=ben)
    made = governance.publish_request_create(
        user=ben, comment="Threshold 6", reason="Reviewed", simulation_job=simulation.simulation_of_draft(user=ben)
    )
    anna = get_user_model().objects.get(username="pt-anna")
    governance.publish_request_approve(request=made, user=anna, comment="Fine")
    ruleset_settings_save(settings={"advice_limit": 2})
    rule_set_enabled(rule=Rule.objects.get(key="posture"), enabled=False)
    warm_up = rules_with_children().get(key="warm-up")
    rule_save(spec={**rule_spec(warm_up), "review_by": "2020-01-31", "evidence_level": "guideline"}, rule=warm_up)
    governance.publish_request_create(
        user=ben, comment="Warm-up reviewed", reason="Reviewed", simulation_job=simulation.simulation_of_draft(user=ben)
    )


def test_every_admin_page_a_clinician_reaches_opens_in_words_whole_and_without_dead_ends(clinic):
    """Every page a clinician reaches, opened at 1366 px: none shows JSON, a brace, a field code
    or an ISO date, leads a row with a rule's key, overflows the screen sideways, or links to a
    page that answers 403 or 404 to the clinician."""
    walk_setup(clinic)
    keys = set(Rule.objects.values_list("key", flat=True)) | {
        spec["key"] for version in RulesetVersion.objects.all() for spec in version.snapshot
    }
    page = clinic.page
    clinic.log_in("/admin/")
    crawl = Crawl(origin=clinic.url)
    links = LinkCheck(origin=clinic.url)
    crawl.add(clinic.url + "/admin/")
    problems: list[str] = []
    while crawl.queue:
        path = crawl.queue.popleft()
        response = page.goto(clinic.url + path)
        assert response is not None and response.ok, f"{path}: answered {response.status if response else None}"
        facts = page.evaluate(PAGE_FACTS)
        problems += page_problems(facts, keys, path)
        for href in facts["links"]:
            crawl.add(href)
            links.check(page.request, href, path)

    visited = crawl.seen
    assert len(visited) > 60, sorted(visited)
    for page_kind in (
        r"^/admin/rules/rule/\d+/change/$",
        r"^/admin/rules/rule/\d+/try/$",
        r"^/admin/rules/rule/try/$",
        r"^/admin/rules/rule/simulate/\?job=",
        r"^/admin/rules/rule/statistics/$",
        r"^/admin/rules/rule/statistics/[\w-]+/",
        r"^/admin/rules/rule/discard/$",
        r"^/admin/rules/rule/publish/$",
        r"^/admin/rules/rulesetversion/\d+/change/$",
        r"^/admin/rules/rulechange/$",
        r"^/admin/rules/rulechange/\d+/change/$",
        r"^/admin/rules/publishrequest/\d+/change/$",
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
    assert len(links.asked) > len(visited)  # the links were asked for too, not only the pages walked
    # The pack export is a download: it answers, but is no page to read.
    export = page.request.get(clinic.url + "/admin/rules/rule/export/")
    assert export.ok and export.headers["content-type"].startswith("application/json")
    problems += links.dead
    # The walk sees what it is meant to: each kind of problem, put on the last page, is found.
    page.evaluate(
        """() => { const box = document.createElement("p");
            box.textContent = "{pain_during} on 2026-01-31"; box.style.width = "3000px";
            document.body.append(box);
            const row = document.createElement("tr"); row.innerHTML = "<td>pain-stop Stop when it hurts</td>";
            const table = document.createElement("table"); table.append(row); document.body.append(table); }"""
    )
    planted = {line.split(":")[0] for line in page_problems(page.evaluate(PAGE_FACTS), keys, "planted")}
    assert planted == {"brace", "field code", "ISO date", "key first", "overflow"}, planted
    if problems and os.environ.get("WALK_REPORT"):
        Path(os.environ["WALK_REPORT"]).write_text("\n".join(problems))
    assert not problems, "\n".join(problems[:60])
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
