"""The coaching domain seen from the rules admin: try it, simulation and statistics."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from coaching.models import Member
from rules import simulation
from rules.registry import registry

from .conftest import day, pain, run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _pack(pack):
    return pack


def test_try_an_event_with_a_real_members_history(client, member):
    client.history(run(at=day(0)), run(at=day(1)))
    subject = str(Member.objects.get(external_id=member).pk)
    result = simulation.rule_try(
        fact_type="run", data={"distance_km": 3, "duration_min": 20}, occurred_at=day(2), subject=subject
    )
    assert result.fact.data["consecutive_run_days"] == 3
    assert "rest-days" in [m.rule_key for m in result.live]
    assert Member.objects.count() == 1 and Member.objects.get().events.count() == 3  # nothing left behind


def test_try_an_event_without_a_member(client):
    result = simulation.rule_try(
        fact_type="pain_report", data={"pain": 2, "fever": True}, occurred_at=timezone.now(), subject=None
    )
    assert "red-flags" in [m.rule_key for m in result.live]
    assert result.fact.data["pain_reports_last_14_days"] == 1
    assert Member.objects.count() == 0


def test_stored_facts_come_oldest_first_with_earlier_history(client, member):
    client.history(run(at=day(0), surface="hills"), pain(at=day(1), pain=5), run(member="m-2", at=day(1)))
    source = registry.fact_source()
    facts = list(
        source.stored_facts(since=day(0, hour=-1), window=dt.timedelta(hours=48), types={"run", "pain_report"})
    )
    assert [f.type for f, _, _ in facts] == ["run", "pain_report", "run"]
    _, history, label = facts[1]
    assert [h.type for h in history] == ["run"] and "m-1" in label
    assert facts[2][1] == []  # another member's history never mixes in


def test_advice_statistics_per_rule_member_and_local_day_of_the_event(client, member):
    local_day = timezone.localdate() - dt.timedelta(days=3)
    # 23:30 at a gym five hours behind UTC: 04:30 UTC the next day.
    late_evening = dt.datetime.combine(local_day, dt.time(23, 30), tzinfo=dt.timezone(-dt.timedelta(hours=5)))
    client.send(run(at=late_evening, pain_during=8), expect=201)
    tallies = registry.fact_source().advice_statistics(first_day=local_day - dt.timedelta(days=1))
    [stop] = [t for t in tallies if t.rule_key == "pain-stop"]
    assert (stop.day, stop.current, stop.withdrawn) == (local_day, 1, 0)
    assert stop.subject == str(Member.objects.get(external_id=member).pk)


def test_subjects_are_members(client, member):
    assert registry.fact_source().subjects(search="m-") == [(str(Member.objects.get().pk), f"{client.gym.name}: m-1")]


def test_simulation_replays_stored_events(client, member):
    client.history(run(at=day(0), surface="hills"), pain(at=day(1), pain=5))
    result = simulation.simulation_run(simulation.simulation_prepare(days=200))
    assert result.events == 3
    by_key = {r.key: r for r in result.rules}
    assert by_key["hill-then-pain"].live == 1 and by_key["flat-surface"].live == 1
    assert not result.changed_rules
