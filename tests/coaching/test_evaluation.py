"""Evaluation as of each event's own time, late events, failures and re-evaluation."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from coaching.models import Advice, Event
from rules import services as rules_services

from .conftest import day, pain, profile, run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _pack(pack):
    return pack


def test_late_event_completes_a_pattern_that_starts_with_it(client, member):
    assert "hill-then-pain" not in client.fired(pain(at=day(1), pain=5, external_id="sore"))
    body = client.send(run(at=day(0), surface="hills", external_id="late-hill-run"), expect=201).json()
    advice = next(a for a in body["advice"] if a["rule"]["key"] == "hill-then-pain")
    assert advice["matched_events"] == ["late-hill-run", "sore"]
    assert advice["event"] == "late-hill-run"


def test_late_event_in_a_batch_answers_with_the_advice_it_gave_a_later_event(client, member):
    client.history(pain(at=day(1), pain=5, external_id="sore"))
    body = client.send([run(at=day(0), surface="hills", external_id="late-hill-run")], expect=200).json()
    advice = next(a for a in body[0]["event"]["advice"] if a["rule"]["key"] == "hill-then-pain")
    assert advice["matched_events"] == ["late-hill-run", "sore"]
    repeat = client.send([run(at=day(0), surface="hills", external_id="late-hill-run")], expect=200).json()
    assert repeat[0]["event"]["advice"] == body[0]["event"]["advice"]


def test_late_event_is_judged_as_of_its_own_time(client, member):
    client.history(run(at=day(10)), run(at=day(11)), run(at=day(12)))
    body = client.send(run(at=day(3), external_id="late"), expect=201).json()
    assert "rest-days" not in [a["rule"]["key"] for a in body["advice"]]
    figures = Event.objects.get(external_id="late").figures
    assert figures["run_number"] == 1
    assert figures["consecutive_run_days"] == 1
    assert figures["runs_last_7_days"] == 1
    assert "hours_since_last_run" not in figures


def test_late_event_fills_a_gap_with_figures_of_its_day(client, member):
    client.history(run(at=day(0), distance_km=4), run(at=day(2), distance_km=5))
    body = client.send(run(at=day(1), distance_km=6, external_id="late"), expect=201).json()
    own = [a["rule"]["key"] for a in body["advice"] if a["event"] == "late"]
    assert "rest-days" not in own  # day 2 was not known as of day 1
    figures = Event.objects.get(external_id="late").figures
    assert figures["run_number"] == 2
    assert figures["consecutive_run_days"] == 2
    assert figures["weekly_distance_km"] == 10
    assert figures["longest_run_30d_km"] == 4
    assert figures["long_run_increase_pct"] == 50
    assert figures["hours_since_last_run"] == 24


def test_profile_counts_as_of_the_events_time(client):
    client.history(profile(at=day(5), cleared_by_physician=True))
    assert "medical-clearance" in client.fired(run(at=day(0)))


def test_derived_figures_of_a_run(client, member):
    client.history(
        run(at=day(0), distance_km=4),
        run(at=day(8), distance_km=5, with_group=False),
        pain(at=day(9), pain=3),
        run(at=day(9, hour=3), distance_km=2, pain_during=3),
    )
    client.send(
        run(at=day(10), distance_km=6, pain_before=1, pain_after=2, with_group=False, external_id="now"), expect=201
    )
    figures = Event.objects.get(external_id="now").figures
    assert figures == {
        "weekly_distance_km": 13,
        "previous_week_distance_km": 4,
        "weekly_distance_increase_pct": 225,
        "runs_last_7_days": 3,
        "consecutive_run_days": 3,
        "hours_since_last_run": 21,
        "longest_run_30d_km": 5,
        "pain_free_run_streak": 1,
        "runs_without_group_streak": 1,
        "pain_reports_last_14_days": 1,
        "pain_episode_weeks": 0,
        "run_number": 4,
        "long_run_increase_pct": 20,
        "pain_rise": 1,
        "cleared_by_physician": True,
        "back_injury": False,
        "chronic_back_pain": False,
    }


def test_evaluation_failure_keeps_the_event_and_reevaluate_produces_its_advice_once(client, member, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("engine down")

    monkeypatch.setattr(rules_services, "facts_evaluate", broken)
    body = client.send(run(pain_during=8, external_id="during-outage"), expect=201).json()
    assert body["advice"] == []
    stored = Event.objects.get(external_id="during-outage")
    assert stored.evaluated is False
    assert "engine down" in stored.evaluation_error

    monkeypatch.undo()
    call_command("reevaluate", stdout=_null(), stderr=_null())
    stored.refresh_from_db()
    assert stored.evaluated is True and stored.evaluation_error == ""
    assert list(Advice.objects.filter(event=stored).values_list("rule_key", flat=True)) == ["pain-stop"]

    call_command("reevaluate", "--all", stdout=_null(), stderr=_null())
    call_command("reevaluate", stdout=_null(), stderr=_null())
    assert Advice.objects.filter(event=stored).count() == 1


def test_repeat_of_a_failed_event_retries_its_evaluation(client, member, monkeypatch):
    payload = run(pain_during=8)
    monkeypatch.setattr(rules_services, "facts_evaluate", lambda **kw: 1 / 0)
    assert client.send(payload, expect=201).json()["advice"] == []
    monkeypatch.undo()
    body = client.send(payload, expect=200).json()
    assert [a["rule"]["key"] for a in body["advice"]] == ["pain-stop"]


def test_failure_in_a_batch_does_not_stop_the_others(client, member, monkeypatch):
    real = rules_services.facts_evaluate

    def flaky(*, fact, history=()):
        if fact.data.get("distance_km") == 13:
            raise RuntimeError("boom")
        return real(fact=fact, history=history)

    monkeypatch.setattr(rules_services, "facts_evaluate", flaky)
    body = client.send([run(at=day(0), distance_km=13), run(at=day(1), pain_during=9)], expect=200).json()
    assert [item["status"] for item in body] == [201, 201]
    assert body[0]["event"]["advice"] == []
    assert [a["rule"]["key"] for a in body[1]["event"]["advice"]] == ["pain-stop"]
    assert Event.objects.filter(evaluated=False).count() == 1


def test_reevaluate_all_after_a_rule_fix_adds_only_new_advice(client, member):
    client.history(run(at=day(0), pain_during=6), run(at=day(2), pain_during=6))
    assert Advice.objects.filter(rule_key="pain-stop").count() == 2
    call_command(
        "reevaluate", "--all", "--member", "m-1", "--since", day(1).date().isoformat(), stdout=_null(), stderr=_null()
    )
    assert Advice.objects.filter(rule_key="pain-stop").count() == 2


def _null():
    import io

    return io.StringIO()
