"""Statistics with the running domain: advice counts on the day of the event it belongs to."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from coaching.models import Advice
from coaching.services import clinician_ensure
from rules.models import Rule
from rules.services import ruleset_publish

from .conftest import EVENTS_URL, run

pytestmark = pytest.mark.django_db

STATISTICS = reverse("admin:rules_rule_statistics")
# The gym sends local times two hours ahead of UTC (the server's time zone).
GYM_TZ = dt.timezone(dt.timedelta(hours=2))


@pytest.fixture
def clinician(db, pack) -> Client:
    user, _ = clinician_ensure(username="pt-anna", password="a-long-password")
    browser = Client()
    browser.force_login(user)
    return browser


def just_after_midnight(days_ago: int) -> dt.datetime:
    """00:30 at the gym on the date ``days_ago`` days before today: 22:30 UTC the day before, so
    counting by UTC date would put every bar a day early."""
    return dt.datetime.combine(timezone.localdate() - dt.timedelta(days=days_ago), dt.time(0, 30), tzinfo=GYM_TZ)


def row(page: str, key: str) -> dict[str, object]:
    """One rule's row of the statistics table: its figures, state and weekly bars."""
    found = re.search(rf'<tr data-rule="{key}" class="([^"]*)">(.*?)</tr>', page, re.S)
    assert found, f"no row for {key}"
    cells = re.findall(r'<td[^>]*?(?: data-figure="(\w+)")?>(.*?)</td>', found.group(2), re.S)
    state = re.search(r'data-state="([^"]*)"', cells[0][1])
    figures = {name: re.sub(r"<[^>]+>", "", value).strip() for name, value in cells if name}
    return {
        "off": "rule-off" in found.group(1),
        "state": html.unescape(state.group(1)) if state else "",
        "given": int(figures["given"]),
        "withdrawn": int(figures["withdrawn"]),
        "members": figures["reached"],
        "accepted": figures.get("accepted"),
        "overridden": figures.get("overridden"),
        "bars": [  # (week, height) of each week with advice given
            (html.unescape(title).split(":")[0], float(height))
            for height, title in re.findall(r'height="([\d.]+)" class="bar"><title>([^<]*)</title>', found.group(2))
        ],
    }


def test_a_backfill_of_30_days_sent_today_shows_30_days_of_bars(clinician, client, member):
    backfill = [run(at=just_after_midnight(days_ago), pain_before=0, pain_after=2) for days_ago in range(30)]
    response = client.post(EVENTS_URL, backfill, format="json")
    assert response.status_code == 200, response.content
    assert {a.created_at.date() for a in Advice.objects.all()} == {timezone.now().date()}  # all stored today

    rising = row(clinician.get(STATISTICS).content.decode(), "pain-rising")

    assert len(rising["bars"]) == 5  # four weeks ending today and the two days before them
    heights = [height for _, height in rising["bars"]]
    assert heights[1:] == [max(heights)] * 4  # 7 a week, on the weeks of their own days
    assert (rising["given"], rising["withdrawn"], rising["members"]) == (30, 0, "1")
    last_week = clinician.get(
        STATISTICS, {"first": str(timezone.localdate() - dt.timedelta(days=6)), "last": str(timezone.localdate())}
    ).content.decode()
    assert row(last_week, "pain-rising")["given"] == 7


def test_withdrawn_advice_is_counted_apart_on_its_events_day(clinician, client, member):
    client.send(run(at=just_after_midnight(3), posture="leaning_back"), expect=201)
    late = client.send(run(at=just_after_midnight(5), posture="leaning_back"), expect=201).json()
    assert [a["rule"]["key"] for a in late["withdrawn"]] == ["posture"]  # a 7-day cooldown

    posture = row(clinician.get(STATISTICS).content.decode(), "posture")

    assert (posture["given"], posture["withdrawn"], posture["members"]) == (2, 1, "1")  # one stands, one withdrawn


def test_every_chart_shares_one_scale(clinician, client, member):
    four_members = [run(at=just_after_midnight(1), pain_during=6, member=f"m-{n}") for n in range(4)]
    assert client.post(EVENTS_URL, four_members, format="json").status_code == 200
    client.send(run(at=just_after_midnight(2), posture="leaning_back"), expect=201)
    page = clinician.get(STATISTICS).content.decode()
    [(_, four)] = row(page, "pain-stop")["bars"]
    [(_, one)] = row(page, "posture")["bars"]
    assert four == pytest.approx(4 * one, rel=0.01)
    assert "the tallest bar is 4 pieces of advice in a week" in page


def test_rules_switched_off_are_marked(clinician):
    Rule.objects.filter(key="posture").update(enabled=False)
    page = clinician.get(STATISTICS).content.decode()
    assert row(page, "posture")["off"] and row(page, "posture")["state"].startswith("switched off in the draft")
    ruleset_publish(comment="posture off")
    page = clinician.get(STATISTICS).content.decode()
    assert row(page, "posture")["state"] == "switched off"
    assert not row(page, "pain-stop")["off"] and row(page, "pain-stop")["state"] == ""


def test_feedback_from_the_api_and_cds_hooks_shows_as_acceptance_and_override_rates_with_reasons(
    clinician, client, member
):
    cards = []
    for n in range(5):
        [advice] = client.advice(run(at=just_after_midnight(2), pain_during=6, member=f"f-{n}"))[1:]
        cards.append(advice)
    decided = "2026-11-20T08:00:00Z"
    for advice, outcome, reasons in zip(
        cards,
        ["accepted", "overridden", "overridden", "overridden", "accepted"],
        [[], ["not-relevant"], ["not-relevant", "member-declined"], [], []],
        strict=True,
    ):
        body = {"outcome": outcome, "override_reasons": reasons, "outcome_at": decided}
        assert client.post(f"/api/v1/advice/{advice['id']}/feedback/", body, format="json").status_code == 201
    # A card decided again: its latest outcome counts.
    later = {"outcome": "overridden", "override_reasons": ["already-addressed"], "outcome_at": "2026-11-21T08:00:00Z"}
    client.post(f"/api/v1/advice/{cards[4]['id']}/feedback/", later, format="json")

    stop = row(clinician.get(STATISTICS).content.decode(), "pain-stop")
    assert (stop["accepted"], stop["overridden"]) == ("20 % of 5", "80 %")
    detail = clinician.get(reverse("admin:rules_rule_landing", args=["pain-stop"])).content.decode()
    reasons = html.unescape(re.sub(r"<[^>]+>", " ", detail.split('id="reasons"')[1].split("</table>")[0]))
    assert re.search(r"not relevant to this member\s+2", reasons, re.I), reasons
    reached = detail.split('id="reached"')[1]
    assert "f-0 (" in reached and "/admin/coaching/member/" in reached
