"""Evaluation as of each event's own time, late events, failures and re-evaluation."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from coaching.models import Advice, Event

from .conftest import day, pain, profile, rule_keys, run

pytestmark = pytest.mark.django_db


ENGINE_DOWN = "engine down"


@pytest.fixture(autouse=True)
def _pack(pack):
    return pack


def engine_down(monkeypatch, *, when=lambda facts: True) -> None:
    """Make the engine fail (as an engine failure would) when ``when(the facts it is given)`` holds."""
    from rules import evaluation as rules_evaluation
    from rules.internal import runtime

    real = runtime.evaluate

    def evaluate(loaded, items):
        if when([fact for fact, _history in items]):
            raise RuntimeError(ENGINE_DOWN)
        return real(loaded, items)

    monkeypatch.setattr(runtime, "evaluate", evaluate)
    monkeypatch.setattr(rules_evaluation, "evaluate", evaluate)


def test_late_event_completes_a_pattern_that_belongs_to_the_last_event_in_time(client, member):
    # Pain 4: enough for hill-then-pain, below the "stop" rules that would hold it back.
    assert "hill-then-pain" not in client.fired(pain(at=day(1), pain=4, external_id="sore"))
    body = client.send(run(at=day(0), surface="hills", external_id="late-hill-run"), expect=201).json()
    advice = next(a for a in body["advice"] if a["rule"]["key"] == "hill-then-pain")
    assert advice["matched_events"] == ["late-hill-run", "sore"]
    assert advice["event"] == "sore"  # found as of the pain report, whichever arrived first
    assert body["withdrawn"] == []


def test_late_event_in_a_batch_answers_with_the_advice_it_gave_a_later_event(client, member):
    client.history(pain(at=day(1), pain=4, external_id="sore"))
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
        "cancer_history": False,
    }


def test_evaluation_failure_keeps_the_event_and_reevaluate_produces_its_advice_once(client, member, monkeypatch):
    engine_down(monkeypatch)
    body = client.send(run(pain_during=6, external_id="during-outage"), expect=201).json()
    assert body["advice"] == []
    stored = Event.objects.get(external_id="during-outage")
    assert stored.evaluated is False
    assert ENGINE_DOWN in stored.evaluation_error

    monkeypatch.undo()
    call_command("reevaluate", "--pending", stdout=_null(), stderr=_null())
    stored.refresh_from_db()
    assert stored.evaluated is True and stored.evaluation_error == ""
    assert "pain-stop" in Advice.objects.filter(event=stored).values_list("rule_key", flat=True)
    given = list(Advice.objects.filter(event=stored).values_list("pk", flat=True))

    call_command("reevaluate", "--all", stdout=_null(), stderr=_null())
    call_command("reevaluate", stdout=_null(), stderr=_null())
    assert list(Advice.objects.filter(event=stored).values_list("pk", flat=True)) == given  # kept, not redone


def test_repeat_of_a_failed_event_retries_its_evaluation(client, member, monkeypatch):
    payload = run(pain_during=6)
    engine_down(monkeypatch)
    assert client.send(payload, expect=201).json()["advice"] == []
    monkeypatch.undo()
    body = client.send(payload, expect=200).json()
    assert "pain-stop" in rule_keys(body)
    assert not Event.objects.filter(evaluated=False).exists()


def test_a_failing_evaluation_holds_up_only_that_members_events(client, member, monkeypatch):
    engine_down(monkeypatch, when=lambda facts: any(f.data.get("distance_km") == 13 for f in facts))
    body = client.send(
        [
            run(at=day(0), distance_km=13, external_id="breaks"),
            profile(at=day(-1), member="m-2", cleared_by_physician=True),
            run(at=day(1), member="m-2", pain_during=6, external_id="other-member"),
            run(at=day(1), pain_during=6, external_id="same-member"),
        ],
        expect=200,
    ).json()
    assert [item["status"] for item in body] == [201, 201, 201, 201]
    assert body[0]["event"]["advice"] == body[3]["event"]["advice"] == []
    assert "pain-stop" in rule_keys(body[2]["event"])
    failed = Event.objects.filter(evaluated=False)
    assert sorted(failed.values_list("external_id", flat=True)) == ["breaks", "same-member"]
    assert all(ENGINE_DOWN in event.evaluation_error for event in failed)

    monkeypatch.undo()
    client.send(run(at=day(2)), expect=201)  # the member's next evaluation completes the failed ones
    assert not Event.objects.filter(evaluated=False).exists()
    assert "pain-stop" in Advice.objects.filter(event__external_id="same-member").values_list("rule_key", flat=True)


def test_reevaluate_all_after_a_rule_fix_adds_only_new_advice(client, member):
    client.history(run(at=day(0), pain_during=6), run(at=day(4), pain_during=6))
    assert Advice.objects.filter(rule_key="pain-stop").count() == 2
    call_command(
        "reevaluate", "--all", "--member", "m-1", "--since", day(1).date().isoformat(), stdout=_null(), stderr=_null()
    )
    assert Advice.objects.filter(rule_key="pain-stop").count() == 2


def _null():
    import io

    return io.StringIO()
