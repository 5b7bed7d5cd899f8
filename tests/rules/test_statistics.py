"""The statistics page against the test domain, with a made-up source of advice tallies."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from rules import services
from rules.registry import AdviceTally, FactSource, registry
from rules.selectors import rules_with_children
from tests.rules.conftest import cond, make_spec

pytestmark = pytest.mark.django_db

STATISTICS = reverse("admin:rules_rule_statistics")


class TallySource(FactSource):
    """A domain that reports its advice as tallies per rule, subject and event day."""

    def __init__(self, tallies: list[AdviceTally]) -> None:
        self.tallies = tallies
        self.asked: list[dt.date] = []

    def advice_statistics(self, *, first_day: dt.date) -> list[AdviceTally]:
        self.asked.append(first_day)
        return [t for t in self.tallies if t.day >= first_day]


@pytest.fixture
def use_source():
    previous = registry.fact_source()

    def _use(source: FactSource) -> FactSource:
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
    found = re.search(rf'<tr data-rule="{key}"( class="rule-off")?>(.*?)</tr>', page, re.S)
    assert found, f"no row for {key}"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", found.group(2), re.S)
    state = re.search(r'data-state="([^"]*)"', cells[0])
    return {
        "off": bool(found.group(1)),
        "state": html.unescape(state.group(1)) if state else "",
        "severity": cells[1],
        "numbers": (int(cells[2]), int(cells[3]), int(cells[4]), cells[5]),
        "given": {  # day -> bar height
            title.split(":")[0]: float(height)
            for height, title in re.findall(r'height="([\d.]+)" class="bar"><title>([^<]*)</title>', cells[6])
        },
        "withdrawn": [
            title.split(":")[0] for title in re.findall(r'class="bar-withdrawn"><title>([^<]*)</title>', cells[6])
        ],
    }


def page(admin_client) -> str:
    return admin_client.get(STATISTICS).content.decode()


def test_advice_counts_on_the_day_of_its_event_so_a_backfill_spreads_over_its_days(
    admin_client, live_rules, use_source
):
    # A month of readings sent in one go today: the domain reports each on its reading's day.
    source = use_source(TallySource([AdviceTally("hot", days_ago(n), f"t-{n % 3}", current=1) for n in range(40)]))
    hot = row(page(admin_client), "hot")
    assert source.asked == [days_ago(29)]
    assert sorted(hot["given"]) == sorted(day.isoformat() for day in map(days_ago, range(30)))
    assert hot["numbers"] == (7, 30, 0, "3")  # last 7 days, last 30 days, withdrawn, thermostats reached


def test_withdrawn_advice_is_counted_apart_and_stacked_on_the_bars(admin_client, live_rules, use_source):
    use_source(
        TallySource(
            [
                AdviceTally("hot", days_ago(2), "t-1", current=2, withdrawn=1),
                AdviceTally("hot", days_ago(9), "t-2", withdrawn=1),  # nobody holds it any more
            ]
        )
    )
    text = page(admin_client)
    hot = row(text, "hot")
    assert hot["numbers"] == (2, 2, 2, "1")
    assert list(hot["given"]) == [days_ago(2).isoformat()]
    assert hot["withdrawn"] == [days_ago(9).isoformat(), days_ago(2).isoformat()]
    assert "and <b>2</b> withdrawn since it was given" in text
    assert "Thermostats reached (30 days)" in text


def test_every_rules_chart_shares_one_scale(admin_client, live_rules, use_source):
    use_source(
        TallySource(
            [AdviceTally("cold", days_ago(1), "t-1", current=114), AdviceTally("hot", days_ago(1), "t-1", current=57)]
        )
    )
    text = page(admin_client)
    [cold] = row(text, "cold")["given"].values()
    [hot] = row(text, "hot")["given"].values()
    assert hot == pytest.approx(cold / 2, abs=0.1)
    assert "the tallest bar is 114 pieces of advice in a day" in text


def test_rules_switched_off_are_marked(admin_client, admin_user, live_rules, use_source):
    use_source(TallySource([]))
    services.rule_set_enabled(rule=rules_with_children().get(key="cold"), enabled=False, user=admin_user)
    text = page(admin_client)
    assert row(text, "alarm")["off"] and row(text, "alarm")["state"] == "switched off"
    cold = row(text, "cold")
    assert cold["off"] and cold["state"] == "switched off in the draft (not yet published)"
    assert not row(text, "hot")["off"] and row(text, "hot")["state"] == ""
    assert row(text, "alarm")["severity"] == "Critical"  # in words


def test_a_deleted_rule_with_advice_keeps_its_row(admin_client, live_rules, use_source):
    use_source(TallySource([AdviceTally("gone", days_ago(3), "t-1", current=4)]))
    gone = row(page(admin_client), "gone")
    assert gone["state"] == "deleted" and gone["numbers"][:2] == (4, 4)


def test_advice_on_an_event_dated_ahead_of_the_server_is_not_dropped(admin_client, live_rules, use_source):
    """An event's own date can be a day ahead of the server's (a gym far east of it)."""
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    use_source(TallySource([AdviceTally("hot", tomorrow, "t-1", current=1)]))
    hot = row(page(admin_client), "hot")
    assert hot["numbers"][:2] == (1, 1) and list(hot["given"]) == [tomorrow.isoformat()]


def test_advice_whose_subject_the_domain_cannot_name_is_counted_without_subjects(admin_client, live_rules, use_source):
    tallies = [AdviceTally("hot", days_ago(n), current=count) for n, count in ((0, 3), (10, 2), (45, 9))]
    use_source(TallySource(tallies))
    hot = row(page(admin_client), "hot")
    assert hot["numbers"] == (3, 5, 0, "—")  # whose advice it was is not known
