"""The coaching domain seen from the rules admin: try it, simulation and statistics."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from coaching.models import Event, Member
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
        fact_type="pain_report", data={"pain": 2, "night_pain": True}, occurred_at=timezone.now(), subject=None
    )
    assert "red-flags" in [m.rule_key for m in result.live]
    assert result.fact.data["pain_reports_last_14_days"] == 1
    assert Member.objects.count() == 0


def test_timelines_give_each_members_whole_history_in_judging_order(client, member):
    client.history(
        run(at=day(0), surface="hills", external_id="hill"),
        pain(at=day(1), pain=5, external_id="sore-b"),
        pain(at=day(1), pain=2, external_id="sore-a"),  # the same instant: the gym's ids decide
        run(member="m-2", at=day(1), external_id="other"),
        run(member="m-3", at=day(-30), external_id="long-ago"),
    )
    timelines = list(registry.fact_source().timelines(since=day(0, hour=-1)))

    by_member = {}
    for facts, labels in timelines:
        member_id = labels[facts[0].id].split(" (")[0]
        assert labels[facts[0].id] == f"{member_id} ({client.gym.name})"  # the member in words
        external = dict(Event.objects.filter(pk__in=[f.id for f in facts]).values_list("pk", "external_id"))
        by_member[member_id] = [(external[int(f.id)], f) for f in facts]
    assert sorted(by_member) == ["m-1", "m-2"]  # m-3 has nothing since then
    profile_id, _ = by_member["m-1"][0]  # the clearance before ``since`` is part of the history
    assert [name for name, _ in by_member["m-1"]] == [profile_id, "hill", "sore-a", "sore-b"]
    assert [name for name, _ in by_member["m-2"]] == ["other"]  # another member's events never mix in
    figures = [f.data["pain_reports_last_14_days"] for _, f in by_member["m-1"][2:]]
    assert figures == [1, 2]  # each fact carries its figures as of itself
    assert all(f.group == str(Member.objects.get(external_id="m-1").pk) for _, f in by_member["m-1"])


def test_tried_event_is_judged_after_the_members_events_up_to_its_time(client, member):
    client.history(run(at=day(0)), run(at=day(1)), run(at=day(5), external_id="later"))
    subject = str(Member.objects.get(external_id=member).pk)
    fact, history = registry.fact_source().enrich(
        fact_type="run", data={"distance_km": 3, "duration_min": 20}, occurred_at=day(2), subject=subject
    )
    assert [f.type for f in history] == ["profile", "run", "run"]  # not the run of day 5
    assert fact.data["run_number"] == 3 and fact.data["consecutive_run_days"] == 3


def test_advice_statistics_per_rule_member_and_local_day_of_the_event(client, member):
    local_day = timezone.localdate() - dt.timedelta(days=3)
    # 23:30 at a gym five hours behind UTC: 04:30 UTC the next day.
    late_evening = dt.datetime.combine(local_day, dt.time(23, 30), tzinfo=dt.timezone(-dt.timedelta(hours=5)))
    client.send(run(at=late_evening, pain_during=6), expect=201)
    tallies = registry.fact_source().advice_statistics(first_day=local_day - dt.timedelta(days=1))
    [stop] = [t for t in tallies if t.rule_key == "pain-stop"]
    assert (stop.day, stop.current, stop.withdrawn) == (local_day, 1, 0)
    assert stop.subject == str(Member.objects.get(external_id=member).pk)


def test_subjects_are_members(client, member):
    assert registry.fact_source().subjects(search="m-") == [(str(Member.objects.get().pk), f"{client.gym.name}: m-1")]


def test_simulation_replays_stored_events(client, member):
    client.history(run(at=day(0), surface="hills"), pain(at=day(1), pain=4))  # below the "stop" rules that hold it back
    result = simulation.simulation_run(simulation.simulation_prepare(days=200))
    assert result.events == 3
    by_key = {r.key: r for r in result.rules}
    assert by_key["hill-then-pain"].live == 1 and by_key["flat-surface"].live == 1
    assert not result.changed_rules
