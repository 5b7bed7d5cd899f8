"""How advice lands, against the test domain: advice per rule over a chosen range of days, counted
on the day of its event, the subjects it reached, how its cards were received, its firings per week
on a date axis, and the marks that call a rule for review."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from rules import services
from rules.admin.landing import MARK_JUMP, MARK_OVERRIDDEN, MSG_RANGE_ORDER, weeks_of
from rules.registry import AdviceTally, FeedbackTally, registry
from rules.selectors import rules_with_children
from tests.rules.conftest import cond, make_spec
from tests.rules.testdomain.source import ThermostatSource

pytestmark = pytest.mark.django_db

STATISTICS = reverse("admin:rules_rule_statistics")


def landing(key: str) -> str:
    return reverse("admin:rules_rule_landing", args=[key])


@pytest.fixture
def use_source():
    previous = registry.fact_source()

    def _use(source: ThermostatSource) -> ThermostatSource:
        registry.register_fact_source(source)
        return source

    yield _use
    registry.register_fact_source(previous)


@pytest.fixture
def live_rules(admin_user):
    for spec in (
        make_spec("hot"),
        make_spec("cold", conditions=[cond("temperature", "lt", 5)]),
        make_spec("alarm", conditions=[cond("alarm", "eq", True)], severity="critical", enabled=False),
    ):
        services.rule_save(spec=spec, user=admin_user)
    return services.ruleset_publish(user=admin_user, comment="three rules")


def days_ago(n: int) -> dt.date:
    return timezone.localdate() - dt.timedelta(days=n)


def row(page: str, key: str) -> dict[str, object]:
    found = re.search(rf'<tr data-rule="{key}" class="([^"]*)">(.*?)</tr>', page, re.S)
    assert found, f"no row for {key}"
    cells = re.findall(r'<td[^>]*?(?: data-figure="(\w+)")?>(.*?)</td>', found.group(2), re.S)
    state = re.search(r'data-state="([^"]*)"', cells[0][1])
    figures = {name: re.sub(r"<[^>]+>", "", value).strip() for name, value in cells if name}
    return {
        "off": "rule-off" in found.group(1),
        "marked": "rule-marked" in found.group(1),
        "first": re.sub(r"<[^>]+>", "", cells[0][1]).split()[0],
        "state": html.unescape(state.group(1)) if state else "",
        "severity": cells[1][1],
        **figures,
        "weeks": [
            (html.unescape(title).split(":")[0].removeprefix("Week from "), float(height))
            for height, title in re.findall(r'height="([\d.]+)" class="bar"><title>([^<]*)</title>', found.group(2))
        ],
        "axis": re.findall(r'<text [^>]*class="axis">([^<]*)</text>', found.group(2)),
    }


def day_words(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def page(admin_client, **query: str) -> str:
    return admin_client.get(STATISTICS, query).content.decode()


def test_advice_counts_on_the_day_of_its_event_so_a_backfill_spreads_over_its_weeks(
    admin_client, live_rules, use_source
):
    # A month of readings sent in one go today: the domain reports each on its reading's day.
    source = use_source(ThermostatSource([AdviceTally("hot", days_ago(n), f"t-{n % 3}", current=1) for n in range(40)]))
    hot = row(page(admin_client), "hot")
    assert source.asked == [days_ago(29)]
    assert (hot["given"], hot["withdrawn"], hot["reached"]) == ("30", "0", "3")
    # Five weeks: four of 7 days ending today, and the two days before them.
    heights = [height for _, height in hot["weeks"]]
    assert heights[1:] == [max(heights)] * 4 and heights[0] == pytest.approx(max(heights) * 2 / 7, rel=0.02)
    assert [week for week, _ in hot["weeks"]] == [day_words(start) for start in weeks_of(days_ago(29), days_ago(0))]
    assert hot["axis"][0] == f"{days_ago(29).day} {days_ago(29):%b}"  # the date axis


def test_a_chosen_range_counts_only_its_days(admin_client, live_rules, use_source):
    use_source(ThermostatSource([AdviceTally("hot", days_ago(n), "t-1", current=1) for n in range(40)]))
    text = page(admin_client, first=days_ago(34).isoformat(), last=days_ago(20).isoformat())
    assert row(text, "hot")["given"] == "15"
    assert f"From {day_words(days_ago(34))} to {day_words(days_ago(20))}" in text
    refused = page(admin_client, first=days_ago(1).isoformat(), last=days_ago(5).isoformat())
    assert MSG_RANGE_ORDER in refused and row(refused, "hot")["given"] == "30"  # the default range instead


def test_withdrawn_advice_is_counted_apart(admin_client, live_rules, use_source):
    use_source(
        ThermostatSource(
            [
                AdviceTally("hot", days_ago(2), "t-1", current=2, withdrawn=1),
                AdviceTally("hot", days_ago(9), "t-2", withdrawn=1),  # nobody holds it any more
            ]
        )
    )
    text = page(admin_client)
    hot = row(text, "hot")
    assert (hot["given"], hot["withdrawn"], hot["reached"]) == ("4", "2", "1")
    assert "<b>4</b> pieces of advice given, <b>2</b> of them withdrawn since" in text


def test_every_rules_chart_shares_one_scale(admin_client, live_rules, use_source):
    use_source(
        ThermostatSource(
            [AdviceTally("cold", days_ago(1), "t-1", current=114), AdviceTally("hot", days_ago(1), "t-1", current=57)]
        )
    )
    text = page(admin_client)
    [(_, cold)] = row(text, "cold")["weeks"]
    [(_, hot)] = row(text, "hot")["weeks"]
    assert hot == pytest.approx(cold / 2, abs=0.2)
    assert "the tallest bar is 114 pieces of advice in a week" in text


def test_rules_lead_with_their_names_and_those_switched_off_are_marked(
    admin_client, admin_user, live_rules, use_source
):
    use_source(ThermostatSource([]))
    services.rule_set_enabled(rule=rules_with_children().get(key="cold"), enabled=False, user=admin_user)
    text = page(admin_client)
    assert row(text, "hot")["first"] == "Hot"  # the name, the key small beside it
    assert row(text, "alarm")["off"] and row(text, "alarm")["state"] == "switched off"
    cold = row(text, "cold")
    assert cold["off"] and cold["state"] == "switched off in the draft (not yet published)"
    assert not row(text, "hot")["off"] and row(text, "hot")["state"] == ""
    assert row(text, "alarm")["severity"] == "Critical"  # in words


def test_a_deleted_rule_with_advice_keeps_its_row(admin_client, live_rules, use_source):
    use_source(ThermostatSource([AdviceTally("gone", days_ago(3), "t-1", current=4)]))
    gone = row(page(admin_client), "gone")
    assert gone["state"] == "deleted" and gone["given"] == "4"


def test_advice_on_an_event_dated_ahead_of_the_server_is_not_dropped(admin_client, live_rules, use_source):
    """An event's own date can be a day ahead of the server's (a gym far east of it)."""
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    use_source(ThermostatSource([AdviceTally("hot", tomorrow, "t-1", current=1)]))
    assert row(page(admin_client), "hot")["given"] == "1"


def test_advice_whose_subject_the_domain_cannot_name_is_counted_without_subjects(admin_client, live_rules, use_source):
    tallies = [AdviceTally("hot", days_ago(n), current=count) for n, count in ((0, 3), (10, 2), (45, 9))]
    use_source(ThermostatSource(tallies))
    hot = row(page(admin_client), "hot")
    assert (hot["given"], hot["reached"]) == ("5", "—")  # whose advice it was is not known


def test_acceptance_and_override_rates_with_the_reasons_and_the_review_mark(admin_client, live_rules, use_source):
    feedback = [
        FeedbackTally("hot", days_ago(3), accepted=9, overridden=11, reasons={"Not relevant": 8, "Already done": 4}),
        FeedbackTally("cold", days_ago(3), accepted=2, overridden=3, reasons={"Not relevant": 3}),
        FeedbackTally("hot", days_ago(60), overridden=50),  # outside the range
    ]
    use_source(ThermostatSource([AdviceTally("hot", days_ago(3), "t-1", current=20)], feedback))
    text = page(admin_client)
    hot, cold = row(text, "hot"), row(text, "cold")
    assert (hot["accepted"], hot["overridden"]) == ("45 % of 20", "55 %")
    assert hot["marked"] and MARK_OVERRIDDEN.format(pct="55", cards=20) in text
    assert not cold["marked"]  # 60 % overridden, but of 5 cards only
    assert text.index('data-rule="hot"') < text.index('data-rule="alarm"')  # marked rules come first
    detail = admin_client.get(landing("hot")).content.decode()
    reasons = detail.split('id="reasons"')[1]
    assert reasons.index("Not relevant") < reasons.index("Already done") and '<td class="num">8</td>' in reasons


def test_a_jump_in_weekly_firings_marks_the_rule(admin_client, live_rules, use_source, settings):
    tallies = [AdviceTally("hot", days_ago(n), "t-1", current=1) for n in range(7, 29, 3)]  # a few a week
    tallies += [AdviceTally("hot", days_ago(n), f"t-{n}", current=3) for n in range(5)]  # 15 in the last week
    use_source(ThermostatSource(tallies))
    text = page(admin_client)
    assert row(text, "hot")["marked"] and "Its firings jumped: 15 in the week from" in text
    settings.RULES_ENGINE = {**settings.RULES_ENGINE, "LANDING_JUMP_MIN": 20}
    assert not row(page(admin_client), "hot")["marked"]
    assert MARK_JUMP.startswith("Its firings jumped")


def test_a_rules_page_lists_every_subject_it_reached_with_a_link(admin_client, live_rules, use_source):
    use_source(ThermostatSource([AdviceTally("hot", days_ago(n), f"t-{n % 4}", current=1) for n in range(12)]))
    listing = page(admin_client)
    assert f'<a href="{landing("hot")}?first=' in listing and "#reached" in listing
    detail = admin_client.get(landing("hot")).content.decode()
    reached = detail.split('id="reached"')[1]
    assert "Thermostats it reached (4)" in reached
    assert '<a href="/thermostats/t-0/">Thermostat t-0</a>' in reached
    assert "<svg" in detail and 'class="axis"' in detail
    assert admin_client.get(landing("nothing-like-it")).status_code == 404
