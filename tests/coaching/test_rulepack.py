"""The default rule pack (RULES.md), one row at a time, through the HTTP API.

Each rule gets a history that fires it and a nearby one that must not. Members are
cleared by a physician (the ``member`` fixture) unless a test is about clearance.
"""

from __future__ import annotations

import datetime as dt

import pytest

from coaching.rulepack import RULE_PACK

from .conftest import cross, day, pain, profile, run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _pack(pack):
    return pack


def test_pack_has_the_22_rules_of_rules_md():
    assert [r["key"] for r in RULE_PACK] == [
        "medical-clearance",
        "back-injury",
        "warm-up",
        "start-short",
        "gradual-increase",
        "long-run-spike",
        "pain-stop",
        "pain-rising",
        "running-shoes",
        "flat-surface",
        "posture",
        "hydration",
        "run-with-others",
        "limit-duration",
        "rest-days",
        "hill-then-pain",
        "persistent-pain",
        "chronic-low-impact",
        "acute-rest",
        "red-flags",
        "good-progress",
        "low-impact-credit",
    ]


# -- medical ---------------------------------------------------------------------------------
def test_medical_clearance_fires_on_first_run_without_clearance(client):
    assert "medical-clearance" in client.fired(run(at=day(0)))


def test_medical_clearance_does_not_fire_on_the_second_run(client):
    client.history(run(at=day(0)))
    assert "medical-clearance" not in client.fired(run(at=day(2)))


def test_medical_clearance_does_not_fire_when_cleared(client, member):
    assert "medical-clearance" not in client.fired(run(at=day(0)))


def test_back_injury_fires_when_injured_and_not_cleared(client):
    client.history(profile(at=day(-1), back_injury=True))
    assert "back-injury" in client.fired(run(at=day(0)))


def test_back_injury_does_not_fire_once_cleared(client):
    client.history(profile(at=day(-1), back_injury=True, cleared_by_physician=True))
    assert "back-injury" not in client.fired(run(at=day(0)))


def test_back_injury_does_not_fire_without_injury(client, member):
    assert "back-injury" not in client.fired(run(at=day(0)))


# -- warm-up and progression -------------------------------------------------------------------
def test_warm_up_fires_under_5_minutes(client, member):
    assert "warm-up" in client.fired(run(warmup_min=4.5))


def test_warm_up_does_not_fire_at_5_minutes(client, member):
    assert "warm-up" not in client.fired(run(warmup_min=5))


def test_warm_up_does_not_fire_when_not_reported(client, member):
    data = run()
    del data["data"]["warmup_min"]
    assert "warm-up" not in client.fired(data)


def test_start_short_fires_for_a_long_early_run(client, member):
    assert "start-short" in client.fired(run(distance_km=5.5, duration_min=35))


def test_start_short_fires_for_a_long_early_run_by_time(client, member):
    assert "start-short" in client.fired(run(distance_km=4, duration_min=41))


def test_start_short_does_not_fire_at_5_km_and_40_min(client, member):
    assert "start-short" not in client.fired(run(distance_km=5, duration_min=40))


def test_start_short_does_not_fire_after_the_sixth_run(client, member):
    client.history(*[run(at=day(2 * i)) for i in range(6)])
    assert "start-short" not in client.fired(run(at=day(12), distance_km=6, duration_min=45))


def test_gradual_increase_fires_over_10_percent(client, member):
    client.history(run(at=day(0), distance_km=10))
    assert "gradual-increase" in client.fired(run(at=day(7), distance_km=11.5))


def test_gradual_increase_does_not_fire_at_10_percent(client, member):
    client.history(run(at=day(0), distance_km=10))
    assert "gradual-increase" not in client.fired(run(at=day(7), distance_km=11))


def test_gradual_increase_does_not_fire_without_a_previous_week(client, member):
    client.history(run(at=day(0), distance_km=2))
    assert "gradual-increase" not in client.fired(run(at=day(2), distance_km=4))


def test_long_run_spike_fires_over_10_percent_of_longest_30_days(client, member):
    client.history(run(at=day(0), distance_km=10), run(at=day(10), distance_km=6))
    assert "long-run-spike" in client.fired(run(at=day(20), distance_km=11.5))


def test_long_run_spike_does_not_fire_at_10_percent(client, member):
    client.history(run(at=day(0), distance_km=10))
    assert "long-run-spike" not in client.fired(run(at=day(20), distance_km=11))


def test_long_run_spike_does_not_fire_when_longest_run_is_older_than_30_days(client, member):
    client.history(run(at=day(0), distance_km=10))
    assert "long-run-spike" not in client.fired(run(at=day(31), distance_km=20))


# -- pain ------------------------------------------------------------------------------------
def test_pain_stop_fires_at_5_during(client, member):
    assert "pain-stop" in client.fired(run(pain_during=5))


def test_pain_stop_fires_at_5_after(client, member):
    assert "pain-stop" in client.fired(run(pain_after=5))


def test_pain_stop_does_not_fire_at_4(client, member):
    assert "pain-stop" not in client.fired(run(pain_during=4, pain_after=4))


def test_pain_rising_fires_for_a_rise_of_2(client, member):
    assert "pain-rising" in client.fired(run(pain_before=1, pain_after=3))


def test_pain_rising_does_not_fire_for_a_rise_of_1(client, member):
    assert "pain-rising" not in client.fired(run(pain_before=1, pain_after=2))


def test_pain_rising_does_not_fire_without_pain_before(client, member):
    data = run(pain_after=4)
    del data["data"]["pain_before"]
    assert "pain-rising" not in client.fired(data)


# -- footwear, surface, posture, hydration -----------------------------------------------------
def test_running_shoes_fires_without_running_shoes(client, member):
    assert "running-shoes" in client.fired(run(running_shoes=False))


def test_running_shoes_fires_for_worn_shoes(client, member):
    assert "running-shoes" in client.fired(run(shoes_km=700))


def test_running_shoes_does_not_fire_for_good_shoes(client, member):
    assert "running-shoes" not in client.fired(run(running_shoes=True, shoes_km=699))


def test_flat_surface_fires_on_hills(client, member):
    assert "flat-surface" in client.fired(run(surface="hills"))


def test_flat_surface_fires_for_150_m_climbing(client, member):
    assert "flat-surface" in client.fired(run(surface="trail", elevation_gain_m=150))


def test_flat_surface_does_not_fire_on_a_flat_road(client, member):
    assert "flat-surface" not in client.fired(run(surface="road", elevation_gain_m=149))


def test_posture_fires_when_not_good(client, member):
    assert "posture" in client.fired(run(posture="slouched"))


def test_posture_does_not_fire_when_good(client, member):
    assert "posture" not in client.fired(run(posture="good"))


def test_hydration_fires_for_a_long_run_without_drinking(client, member):
    assert "hydration" in client.fired(run(duration_min=46, hydrated=False))


def test_hydration_fires_for_a_long_run_without_eating(client, member):
    assert "hydration" in client.fired(run(duration_min=50, fuelled=False))


def test_hydration_does_not_fire_for_a_45_minute_run(client, member):
    assert "hydration" not in client.fired(run(duration_min=45, hydrated=False, fuelled=False))


def test_hydration_does_not_fire_when_drunk_and_fed(client, member):
    assert "hydration" not in client.fired(run(duration_min=55))


# -- motivation, overuse, rest -----------------------------------------------------------------
def test_run_with_others_fires_on_the_5th_run_alone(client, member):
    client.history(*[run(at=day(2 * i), with_group=False) for i in range(4)])
    assert "run-with-others" in client.fired(run(at=day(8), with_group=False))


def test_run_with_others_does_not_fire_on_the_4th_run_alone(client, member):
    client.history(
        run(at=day(0), with_group=False),
        run(at=day(2), with_group=True),
        *[run(at=day(4 + 2 * i), with_group=False) for i in range(3)],
    )
    assert "run-with-others" not in client.fired(run(at=day(10), with_group=False))


def test_run_with_others_fires_at_most_once_every_30_days(client, member):
    client.history(*[run(at=day(2 * i), with_group=False) for i in range(5)])
    assert "run-with-others" not in client.fired(run(at=day(10), with_group=False))
    assert "run-with-others" not in client.fired(run(at=day(37), with_group=False))
    assert "run-with-others" in client.fired(run(at=day(38), with_group=False))


def test_limit_duration_fires_over_60_minutes(client, member):
    assert "limit-duration" in client.fired(run(duration_min=61))


def test_limit_duration_does_not_fire_at_60_minutes(client, member):
    assert "limit-duration" not in client.fired(run(duration_min=60))


def test_rest_days_fires_on_the_third_day_in_a_row(client, member):
    client.history(run(at=day(0)), run(at=day(1)))
    assert "rest-days" in client.fired(run(at=day(2)))


def test_rest_days_does_not_fire_after_a_rest_day(client, member):
    client.history(run(at=day(0)), run(at=day(1)))
    assert "rest-days" not in client.fired(run(at=day(3)))


def test_rest_days_counts_days_not_runs(client, member):
    client.history(run(at=day(0)), run(at=day(1)))
    assert "rest-days" not in client.fired(run(at=day(1, hour=8)))


# -- patterns --------------------------------------------------------------------------------
def test_hill_then_pain_fires_for_pain_within_48_hours_of_hills(client, member):
    client.history(run(at=day(0), surface="hills", external_id="hill-run"))
    body = client.send(pain(at=day(0, hour=47), pain=4, external_id="sore"), expect=201).json()
    advice = next(a for a in body["advice"] if a["rule"]["key"] == "hill-then-pain")
    assert advice["matched_events"] == ["hill-run", "sore"]


def test_hill_then_pain_does_not_fire_after_48_hours(client, member):
    client.history(run(at=day(0), surface="hills"))
    assert "hill-then-pain" not in client.fired(pain(at=day(0, hour=49), pain=6))


def test_hill_then_pain_does_not_fire_for_mild_pain(client, member):
    client.history(run(at=day(0), surface="hills"))
    assert "hill-then-pain" not in client.fired(pain(at=day(1), pain=3))


def test_hill_then_pain_does_not_fire_after_a_flat_run(client, member):
    client.history(run(at=day(0), surface="road"))
    assert "hill-then-pain" not in client.fired(pain(at=day(1), pain=6))


def test_persistent_pain_fires_on_the_third_report_in_14_days(client, member):
    client.history(pain(at=day(0), pain=4, external_id="p1"), pain(at=day(6), pain=5, external_id="p2"))
    body = client.send(pain(at=day(13), pain=4, external_id="p3"), expect=201).json()
    advice = next(a for a in body["advice"] if a["rule"]["key"] == "persistent-pain")
    assert sorted(advice["matched_events"]) == ["p1", "p2", "p3"]


def test_persistent_pain_does_not_fire_on_the_second_report(client, member):
    client.history(pain(at=day(0), pain=4), pain(at=day(6), pain=2))
    assert "persistent-pain" not in client.fired(pain(at=day(13), pain=4))


def test_persistent_pain_does_not_fire_when_spread_over_more_than_14_days(client, member):
    client.history(pain(at=day(0), pain=4), pain(at=day(8), pain=5))
    assert "persistent-pain" not in client.fired(pain(at=day(15), pain=4))


def test_chronic_low_impact_fires_after_12_weeks_of_pain(client, member):
    onset = (day(0) - dt.timedelta(weeks=12, days=1)).date().isoformat()
    assert "chronic-low-impact" in client.fired(pain(at=day(0), pain=3, onset_date=onset))


def test_chronic_low_impact_fires_for_reports_spanning_12_weeks(client, member):
    client.history(*[pain(at=day(10 * i), pain=2) for i in range(9)])  # gaps of 10 days, 80 days
    assert "chronic-low-impact" in client.fired(pain(at=day(85), pain=2))


def test_chronic_low_impact_fires_with_chronic_pain_in_profile(client):
    client.history(profile(at=day(-1), cleared_by_physician=True, chronic_back_pain=True))
    assert "chronic-low-impact" in client.fired(pain(at=day(0), pain=2))


def test_chronic_low_impact_does_not_fire_for_an_11_week_episode(client, member):
    onset = (day(0) - dt.timedelta(weeks=11, days=6)).date().isoformat()
    assert "chronic-low-impact" not in client.fired(pain(at=day(0), pain=3, onset_date=onset))


def test_chronic_low_impact_does_not_fire_when_a_14_day_gap_ended_the_episode(client, member):
    client.history(pain(at=day(0), onset_date=(day(0) - dt.timedelta(weeks=20)).date().isoformat()))
    assert "chronic-low-impact" not in client.fired(pain(at=day(14), pain=3))


def test_chronic_low_impact_fires_at_most_once_every_30_days(client):
    client.history(profile(at=day(-1), cleared_by_physician=True, chronic_back_pain=True))
    assert "chronic-low-impact" in client.fired(pain(at=day(0)))
    assert "chronic-low-impact" not in client.fired(pain(at=day(29)))
    assert "chronic-low-impact" in client.fired(pain(at=day(30)))


def test_acute_rest_fires_for_new_pain_of_4(client, member):
    assert "acute-rest" in client.fired(pain(pain=4))


def test_acute_rest_does_not_fire_for_pain_of_3(client, member):
    assert "acute-rest" not in client.fired(pain(pain=3))


def test_acute_rest_does_not_fire_after_4_weeks_of_pain(client, member):
    onset = (day(0) - dt.timedelta(weeks=4)).date().isoformat()
    assert "acute-rest" not in client.fired(pain(pain=5, onset_date=onset))


@pytest.mark.parametrize("flag", ["numbness", "leg_weakness", "bladder_or_bowel_change", "fever", "night_pain"])
def test_red_flags_fires_for_each_warning_sign(client, member, flag):
    assert "red-flags" in client.fired(pain(pain=1, **{flag: True}))


def test_red_flags_does_not_fire_for_pain_radiating_to_the_leg_alone(client, member):
    assert "red-flags" not in client.fired(pain(pain=6, radiates_to_leg=True, numbness=False, fever=False))


# -- encouragement ---------------------------------------------------------------------------
def test_good_progress_fires_on_the_5th_pain_free_run(client, member):
    client.history(*[run(at=day(2 * i), pain_during=2, pain_after=2) for i in range(4)])
    assert "good-progress" in client.fired(run(at=day(8)))


def test_good_progress_does_not_fire_when_pain_broke_the_streak(client, member):
    client.history(run(at=day(0)), run(at=day(2), pain_after=3), *[run(at=day(4 + 2 * i)) for i in range(3)])
    assert "good-progress" not in client.fired(run(at=day(10)))


def test_good_progress_fires_at_most_once_every_14_days(client, member):
    client.history(*[run(at=day(2 * i)) for i in range(5)])
    assert "good-progress" not in client.fired(run(at=day(10)))
    assert "good-progress" in client.fired(run(at=day(22)))


def test_low_impact_credit_fires_for_yoga(client, member):
    assert "low-impact-credit" in client.fired(cross(activity="yoga", duration_min=30))


@pytest.mark.parametrize("activity", ["swimming", "walking", "massage"])
def test_low_impact_credit_fires_for_other_gentle_activities(client, member, activity):
    assert "low-impact-credit" in client.fired(cross(activity=activity))


def test_low_impact_credit_does_not_fire_for_cycling(client, member):
    assert "low-impact-credit" not in client.fired(cross(activity="cycling"))


# -- messages --------------------------------------------------------------------------------
def test_messages_show_the_values_and_parameters(client, member):
    body = client.send(run(warmup_min=2), expect=201).json()
    advice = next(a for a in body["advice"] if a["rule"]["key"] == "warm-up")
    assert "2 min" in advice["message"] and "5 minutes" in advice["message"]
    assert "{" not in advice["message"] and "–" not in advice["message"]


def test_no_message_leaves_a_placeholder_unfilled(client):
    client.history(run(at=day(0), distance_km=10, surface="hills"), profile(at=day(0, hour=1), back_injury=True))
    payloads = [
        run(
            at=day(7),
            distance_km=11.6,
            duration_min=70,
            warmup_min=1,
            pain_before=0,
            pain_during=6,
            pain_after=6,
            running_shoes=False,
            surface="hills",
            posture="slouched",
            hydrated=False,
            with_group=False,
        ),
        pain(at=day(8), pain=6, numbness=True),
        cross(at=day(8, hour=2), activity="yoga"),
    ]
    for payload in payloads:
        for advice in client.send(payload, expect=201).json()["advice"]:
            assert "{" not in advice["message"], advice
            assert " – " not in advice["message"] and "–/" not in advice["message"], advice
