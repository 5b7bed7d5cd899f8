"""The default rule pack, version 3 (docs/rulepack.md), one rule at a time through the HTTP API.

Each rule gets events that fire it and nearby ones that must not; each cooldown, each rule
that holds back lower advice and each referral is shown. Members are cleared by a physician
(the ``member`` fixture) unless a test is about clearance, and events are quiet apart from
what a test is about (``QUIET_RUN``), since an event gives at most 3 pieces of advice.
"Referral and clearance" and the "what changed" list of version 3 have tests of their own in
``test_escalation.py``; the pack's commands (installpack, exportpack, importpack) close the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError

from coaching.rulepack import SAFETY_CRITICAL, rulepack, rulepack_specs, safety_critical_specs
from rules.models import Rule, RuleChange, RulesetSettings, RulesetVersion
from rules.packs import spec_comparable
from rules.registry import registry
from rules.selectors import rule_spec, ruleset_draft_settings, ruleset_draft_specs, version_live
from rules.services import rule_delete, rule_save, ruleset_publish, ruleset_settings_save
from rules.spec import MSG_COOLDOWN, SUMMARY_MAX

from .conftest import cross, day, pain, profile, run, weeks_before

pytestmark = pytest.mark.django_db

# Each rule as docs/rulepack.md shows it: key -> (category, severity, cooldown days, holds back
# lower advice, refers, safety-critical), most urgent first.
PACK_TABLE = {
    "red-flags-emergency": ("medical", "emergency", 0, True, True, True),
    "red-flags-urgent": ("medical", "refer", 0, True, True, True),
    "red-flags": ("medical", "refer", 0, True, True, True),
    "severe-pain-refer": ("pain", "refer", 7, True, True, True),
    "running-under-referral": ("medical", "refer", 0, True, False, True),
    "ran-through-pain": ("pain", "refer", 14, True, True, False),
    "pain-report-stop": ("pain", "stop", 0, True, False, False),
    "pain-stop": ("pain", "stop", 0, True, False, False),
    "persistent-pain": ("pain", "refer", 14, True, True, False),
    "pain-not-improving": ("pain", "refer", 30, True, True, False),
    "sciatica-check": ("pain", "refer", 30, False, False, False),
    "back-injury": ("medical", "refer", 7, True, True, False),
    "medical-clearance": ("medical", "refer", 0, False, False, False),
    "hill-then-pain": ("surface", "caution", 7, False, False, False),
    "pain-rising": ("pain", "caution", 0, False, False, False),
    "long-run-spike": ("progression", "caution", 0, False, False, False),
    "gradual-increase": ("progression", "caution", 7, False, False, False),
    "start-short": ("progression", "caution", 0, False, False, False),
    "limit-duration": ("overuse", "caution", 7, False, False, False),
    "rest-days": ("rest", "caution", 7, False, False, False),
    "flat-surface": ("surface", "caution", 7, False, False, False),
    "running-shoes": ("footwear", "caution", 14, False, False, False),
    "chronic-low-impact": ("medical", "caution", 30, False, False, False),
    "acute-rest": ("pain", "info", 7, False, False, False),
    "warm-up": ("warmup", "info", 7, False, False, False),
    "posture": ("posture", "info", 7, False, False, False),
    "hydration": ("hydration", "info", 7, False, False, False),
    "run-with-others": ("motivation", "info", 30, False, False, False),
    "good-progress": ("encouragement", "info", 14, False, False, False),
    "low-impact-credit": ("encouragement", "info", 7, False, False, False),
}
TABLE_ORDER = list(PACK_TABLE)


@pytest.fixture
def client(client, pack):
    """Every test that talks to the API has the default pack installed and published."""
    return client


def _advice(advice: list[dict], key: str) -> dict:
    return next(a for a in advice if a["rule"]["key"] == key)


# -- the pack as a whole -----------------------------------------------------------------------
def test_pack_has_the_30_rules_of_rules_md_in_table_order():
    rules = sorted(rulepack().rules, key=lambda spec: spec["priority"])
    assert [spec["key"] for spec in rules] == TABLE_ORDER
    assert rulepack().settings == {"advice_limit": 3}


def test_each_rule_has_the_category_severity_cooldown_holding_back_and_referral_of_rules_md():
    for spec in rulepack().rules:
        row = (spec["category"], spec["severity"], spec["cooldown_days"], spec["holds_back_lower"], spec["refers"])
        assert row == PACK_TABLE[spec["key"]][:5], spec["key"]


def test_the_safety_critical_rules_are_those_marked_s_in_rules_md():
    marked = {key for key, row in PACK_TABLE.items() if row[5]}
    assert set(SAFETY_CRITICAL) == marked == set(registry.safety_critical())
    assert [spec["key"] for spec in safety_critical_specs()] == [k for k in TABLE_ORDER if k in marked]


def test_card_indicators_follow_the_severity_but_the_routine_clearance_is_a_warning():
    own = {spec["key"]: spec["indicator"] for spec in rulepack().rules if spec["indicator"]}
    assert own == {"medical-clearance": "warning"}
    assert registry.indicator_defaults() == {
        "emergency": "critical",
        "refer": "critical",
        "stop": "warning",
        "caution": "warning",
        "info": "info",
    }


def test_every_rule_says_what_to_do_and_where_it_comes_from():
    for spec in rulepack().rules:
        assert spec["summary"] and len(spec["summary"]) <= SUMMARY_MAX, spec["key"]
        assert spec["source_label"], spec["key"]
        assert spec["enabled"], spec["key"]


def test_every_number_in_a_condition_is_a_named_parameter():
    for spec in rulepack().rules:
        for condition in spec["conditions"]:
            value = condition["value"]
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            assert not numeric, (spec["key"], condition)


def test_messages_name_no_number_a_clinician_could_change():
    for spec in rulepack().rules:
        numbers = [p["value"] for p in spec["parameters"] if p["kind"] in ("integer", "number")]
        numbers += [spec["count"], spec["window_hours"], spec["cooldown_days"]]
        words = set(re.findall(r"\d+(?:\.\d+)?", re.sub(r"\{\w+\}", "", spec["message"])))
        assert not words & {str(n) for n in numbers if n}, spec["key"]


def test_installed_pack_is_live_with_its_settings(client):
    live = version_live()
    assert sorted(spec["key"] for spec in live.snapshot) == sorted(TABLE_ORDER)
    assert live.settings == {"advice_limit": 3}


def test_an_event_gives_at_most_3_pieces_of_advice_most_urgent_first_then_by_priority(client, member):
    advice = client.advice(
        run(duration_min=61, surface="hills", running_shoes=False, warmup_min=0, posture="slouched", hydrated=False)
    )
    # Cautions start-short, limit-duration, flat-surface, running-shoes and tips warm-up, posture and
    # hydration all fire; the three cautions of highest priority are given, in the order of priority.
    assert [a["rule"]["key"] for a in advice] == ["start-short", "limit-duration", "flat-surface"]


def test_messages_fill_every_placeholder_and_show_labels_not_codes(client):
    client.history(run(at=day(0), distance_km=10, surface="hills"), profile(at=day(0, hour=1), back_injury=True))
    payloads = [
        run(at=day(7), distance_km=11.6, duration_min=70, warmup_min=1, posture="leaning_back", hydrated=False),
        pain(at=day(8), pain=6, numbness=True),
        cross(at=day(8, hour=2), activity="yoga"),
        run(at=day(9), pain_during=4),
        pain(at=day(10), pain=3, saddle_numbness=True, leg_weakness=True),
        run(at=day(11), pain_after=6),
    ]
    for payload in payloads:
        for advice in client.advice(payload):
            for text in (advice["message"], advice["card"]["summary"], advice["card"]["detail"]):
                assert "{" not in text and "–" not in text and "_" not in text, advice


def test_a_choice_value_is_shown_by_its_label(client, member):
    advice = _advice(client.advice(run(posture="leaning_back")), "posture")
    assert "leaning back" in advice["message"]


def test_messages_use_the_members_own_values_and_the_parameters(client, member):
    advice = _advice(client.advice(run(warmup_min=2)), "warm-up")
    assert "2 min" in advice["message"] and "5 minutes" in advice["message"]


# -- red flags, in three tiers -------------------------------------------------------------------
EMERGENCY_SIGNS = {
    "bladder_or_bowel_change": "a change in bladder or bowel control",
    "saddle_numbness": "numbness around the saddle area",
    "leg_weakness": "weakness in a leg",
}


@pytest.mark.parametrize("sign", EMERGENCY_SIGNS)
def test_red_flags_emergency_fires_for_each_emergency_sign_and_names_it(client, member, sign):
    advice = client.advice(pain(pain=2, **{sign: True}))
    assert [(a["rule"]["key"], a["severity"]) for a in advice] == [("red-flags-emergency", "emergency")]
    assert EMERGENCY_SIGNS[sign] in advice[0]["message"]
    assert not [words for other, words in EMERGENCY_SIGNS.items() if other != sign and words in advice[0]["message"]]


def test_red_flags_emergency_names_every_sign_reported_in_words(client, member):
    advice = client.advice(pain(pain=3, saddle_numbness=True, bladder_or_bowel_change=True, leg_weakness=False))
    message = advice[0]["message"]
    assert "(a change in bladder or bowel control and numbness around the saddle area)" in message
    assert "weakness" not in message and "saddle_numbness" not in message


def test_red_flags_emergency_does_not_fire_for_numbness_elsewhere(client, member):
    assert client.fired(pain(pain=2, numbness=True, saddle_numbness=False)) == ["red-flags"]


def test_red_flag_emergency_is_the_only_advice_and_says_where_to_go(client, member):
    # Pain 9 alone refers (severe pain); fever refers today; a radiating pain counts for sciatica:
    # beside an emergency every one of them is held back.
    client.history(pain(at=day(-1), pain=2, radiates_to_leg=True))
    advice = client.advice(
        pain(pain=9, saddle_numbness=True, fever=True, night_pain=True, radiates_to_leg=True, external_id="red-flag")
    )
    assert [a["rule"]["key"] for a in advice] == ["red-flags-emergency"]
    assert advice[0]["severity"] == "emergency" and advice[0]["card"]["indicator"] == "critical"
    assert "emergency" in advice[0]["card"]["summary"]
    referral = client.referral()
    assert referral["rule"]["key"] == "red-flags-emergency" and referral["event"] == "red-flag"


@pytest.mark.parametrize("sign, words", [("fever", "fever"), ("recent_trauma", "a recent fall or injury")])
def test_red_flags_urgent_fires_for_fever_or_a_recent_injury_and_says_today(client, member, sign, words):
    advice = client.advice(pain(pain=1, **{sign: True}))
    assert [a["rule"]["key"] for a in advice] == ["red-flags-urgent"]
    assert words in advice[0]["message"] and "today" in advice[0]["card"]["summary"]
    assert "few days" not in advice[0]["card"]["summary"]
    assert client.referral()["rule"]["key"] == "red-flags-urgent"


def test_red_flags_urgent_does_not_fire_for_pain_at_night(client, member):
    assert client.fired(pain(pain=1, night_pain=True, fever=False, recent_trauma=False)) == ["red-flags"]


@pytest.mark.parametrize(
    "sign, words",
    [
        ("night_pain", "pain at night"),
        ("unexplained_weight_loss", "weight loss you cannot explain"),
        ("numbness", "numbness"),
    ],
)
def test_red_flags_fires_for_each_warning_sign_and_names_only_it(client, member, sign, words):
    advice = client.advice(pain(pain=1, **{sign: True}))
    assert [a["rule"]["key"] for a in advice] == ["red-flags"]
    assert f"({words})" in advice[0]["message"]
    assert "fever" not in advice[0]["message"]


def test_red_flags_fires_for_pain_of_4_with_a_history_of_cancer(client, member):
    client.history(profile(at=day(-0.5), cancer_history=True))
    advice = client.advice(pain(pain=4))
    assert [a["rule"]["key"] for a in advice] == ["red-flags"]
    assert "pain of 4/10 and a history of cancer" in advice[0]["message"]


def test_red_flags_does_not_fire_for_pain_of_3_with_a_history_of_cancer(client, member):
    client.history(profile(at=day(-0.5), cancer_history=True))
    assert "red-flags" not in client.fired(pain(pain=3))


def test_red_flags_does_not_fire_for_strong_pain_without_a_warning_sign(client, member):
    assert "red-flags" not in client.fired(pain(pain=6, radiates_to_leg=True, numbness=False, fever=False))


def test_red_flags_holds_back_stop_advice_and_refers_to_a_doctor_within_days(client, member):
    advice = client.advice(pain(pain=5, night_pain=True, external_id="nightly"))
    assert [a["rule"]["key"] for a in advice] == ["red-flags"]  # not pain-report-stop
    assert "doctor" in advice[0]["card"]["summary"] and "days" in advice[0]["card"]["summary"]
    assert client.referral()["event"] == "nightly"


# -- pain --------------------------------------------------------------------------------------
def test_severe_pain_refer_fires_at_7_and_holds_back_stop_advice(client, member):
    assert client.fired(pain(pain=7)) == ["severe-pain-refer"]


def test_severe_pain_refer_does_not_fire_at_6(client, member):
    assert client.fired(pain(pain=6)) == ["pain-report-stop"]


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_severe_pain_refer_cools_down_for_7_days(client, member, days_later, fires):
    assert client.fired(pain(at=day(0), pain=8)) == ["severe-pain-refer"]
    keys = client.fired(pain(at=day(days_later), pain=8))
    assert ("severe-pain-refer" in keys) is fires
    if not fires:  # under referral and cooling down, "stop running" still comes through
        assert keys == ["pain-report-stop"]


def test_severe_pain_refer_refers_the_member(client, member):
    client.history(pain(pain=7, external_id="bad-day"))
    assert client.referral()["rule"]["key"] == "severe-pain-refer"


@pytest.mark.parametrize("field", ["pain_during", "pain_after"])
def test_severe_pain_refer_fires_for_pain_of_7_on_a_run(client, member, field):
    advice = client.advice(run(external_id="hard-run", **{field: 7}))
    assert [a["rule"]["key"] for a in advice] == ["severe-pain-refer"]  # pain-stop held back
    assert "7/10" in advice[0]["message"]
    assert client.referral()["event"] == "hard-run"


def test_severe_pain_refer_does_not_fire_for_pain_of_6_on_a_run(client, member):
    assert client.fired(run(pain_during=6, pain_after=6)) == ["pain-stop"]


def test_pain_report_stop_fires_at_5_and_holds_back_the_tip(client, member):
    assert client.fired(pain(pain=5)) == ["pain-report-stop"]  # acute-rest held back


def test_pain_report_stop_does_not_fire_at_4(client, member):
    assert client.fired(pain(pain=4)) == ["acute-rest"]


def test_pain_report_stop_holds_back_a_caution_on_the_same_report(client, member):
    client.history(run(at=day(0), surface="hills"))
    assert client.fired(pain(at=day(1), pain=4)) == ["hill-then-pain", "acute-rest"]
    assert client.fired(pain(at=day(1, hour=1), pain=5)) == ["pain-report-stop"]
    assert client.referral() is None


@pytest.mark.parametrize("field", ["pain_during", "pain_after"])
def test_pain_stop_fires_at_5(client, member, field):
    assert "pain-stop" in client.fired(run(**{field: 5}))


def test_pain_stop_does_not_fire_at_4(client, member):
    assert "pain-stop" not in client.fired(run(pain_during=4, pain_after=4))


def test_pain_stop_names_only_the_values_at_or_above_its_threshold(client, member):
    # Each on a run of its own member's, so that no painful run follows another.
    during = _advice(client.advice(run(pain_during=6, pain_after=2)), "pain-stop")["message"]
    assert "pain during the run of 6/10" in during and "after the run" not in during
    only_after = run(pain_after=5, member="m-2")
    del only_after["data"]["pain_during"]
    after = _advice(client.advice(only_after), "pain-stop")["message"]
    assert "pain after the run of 5/10" in after and "during" not in after and "–" not in after
    both = _advice(client.advice(run(pain_during=5, pain_after=6, member="m-3")), "pain-stop")["message"]
    assert "pain during the run of 5/10 and pain after the run of 6/10" in both


def test_pain_stop_holds_back_cautions_and_tips_without_referring(client, member):
    # pain-rising, warm-up and posture would fire on this run too.
    assert client.fired(run(pain_during=6, pain_after=6, warmup_min=0, posture="slouched")) == ["pain-stop"]
    assert client.referral() is None


def test_persistent_pain_fires_on_the_third_report_of_4_in_14_days(client, member):
    client.history(pain(at=day(0), pain=4, external_id="p1"), pain(at=day(6), pain=5, external_id="p2"))
    advice = client.advice(pain(at=day(13), pain=4, external_id="p3"))
    assert [a["rule"]["key"] for a in advice] == ["persistent-pain"]  # acute-rest held back
    assert sorted(advice[0]["matched_events"]) == ["p1", "p2", "p3"]
    assert "3 times within 14 days" in advice[0]["message"]
    assert client.referral()["event"] == "p3"


def test_persistent_pain_counts_runs_with_pain_too(client, member):
    client.history(pain(at=day(0), pain=4, external_id="p1"), run(at=day(5), pain_during=4, external_id="sore-run"))
    advice = client.advice(pain(at=day(10), pain=4, external_id="p3"))
    assert [a["rule"]["key"] for a in advice] == ["persistent-pain"]
    assert advice[0]["matched_events"] == ["p1", "sore-run", "p3"]


def test_persistent_pain_does_not_count_a_run_with_pain_of_3(client, member):
    client.history(pain(at=day(0), pain=4), run(at=day(5), pain_during=3, pain_after=3))
    assert "persistent-pain" not in client.fired(pain(at=day(10), pain=4))


def test_persistent_pain_does_not_count_a_report_under_4(client, member):
    client.history(pain(at=day(0), pain=4), pain(at=day(6), pain=3))
    assert "persistent-pain" not in client.fired(pain(at=day(13), pain=4))


def test_persistent_pain_does_not_fire_when_spread_over_more_than_14_days(client, member):
    client.history(pain(at=day(0), pain=4), pain(at=day(8), pain=5))
    assert "persistent-pain" not in client.fired(pain(at=day(15), pain=4))


def test_persistent_pain_holds_back_stop_advice(client, member):
    client.history(pain(at=day(0), pain=4), pain(at=day(1), pain=4))
    assert client.fired(pain(at=day(2), pain=6)) == ["persistent-pain"]


@pytest.mark.parametrize("days_later, fires", [(13, False), (14, True)])
def test_persistent_pain_cools_down_for_14_days(client, member, days_later, fires):
    client.history(pain(at=day(0), pain=4), pain(at=day(1), pain=4))
    assert "persistent-pain" in client.fired(pain(at=day(2), pain=4))
    client.history(pain(at=day(14), pain=4), pain(at=day(15), pain=4))
    assert ("persistent-pain" in client.fired(pain(at=day(2 + days_later, hour=1), pain=4))) is fires


def test_pain_not_improving_fires_after_6_weeks_of_pain(client, member):
    advice = client.advice(pain(pain=4, onset_date=weeks_before(day(0), 6)))
    assert [a["rule"]["key"] for a in advice] == ["pain-not-improving"]
    assert "6 weeks" in advice[0]["message"]
    assert client.referral()["rule"]["key"] == "pain-not-improving"


def test_pain_not_improving_does_not_fire_before_6_weeks(client, member):
    assert "pain-not-improving" not in client.fired(pain(pain=4, onset_date=weeks_before(day(0), 5, days=6)))


def test_pain_not_improving_does_not_fire_for_pain_under_4(client, member):
    assert "pain-not-improving" not in client.fired(pain(pain=3, onset_date=weeks_before(day(0), 8)))


def test_pain_not_improving_does_not_fire_for_a_member_with_chronic_back_pain(client, member):
    client.history(profile(at=day(-0.5), chronic_back_pain=True))
    keys = client.fired(pain(pain=4, onset_date=weeks_before(day(0), 8)))
    assert "pain-not-improving" not in keys and keys == ["chronic-low-impact"]


def test_pain_not_improving_holds_back_stop_advice(client, member):
    assert client.fired(pain(pain=6, onset_date=weeks_before(day(0), 7))) == ["pain-not-improving"]


@pytest.mark.parametrize("days_later, fires", [(29, False), (30, True)])
def test_pain_not_improving_cools_down_for_30_days(client, member, days_later, fires):
    onset = weeks_before(day(0), 7)
    assert "pain-not-improving" in client.fired(pain(at=day(0), pain=4, onset_date=onset))
    assert ("pain-not-improving" in client.fired(pain(at=day(days_later), pain=4, onset_date=onset))) is fires


def test_sciatica_check_fires_for_leg_pain_twice_in_14_days(client, member):
    client.history(pain(at=day(0), pain=2, radiates_to_leg=True, external_id="leg-1"))
    advice = client.advice(pain(at=day(13), pain=2, radiates_to_leg=True, external_id="leg-2"))
    assert [a["rule"]["key"] for a in advice] == ["sciatica-check"]
    assert sorted(advice[0]["matched_events"]) == ["leg-1", "leg-2"]


def test_sciatica_check_does_not_fire_for_leg_pain_once(client, member):
    client.history(pain(at=day(0), pain=2, radiates_to_leg=False))
    assert "sciatica-check" not in client.fired(pain(at=day(1), pain=2, radiates_to_leg=True))


def test_sciatica_check_does_not_fire_when_15_days_apart(client, member):
    client.history(pain(at=day(0), pain=2, radiates_to_leg=True))
    assert "sciatica-check" not in client.fired(pain(at=day(15), pain=2, radiates_to_leg=True))


def test_sciatica_check_neither_holds_back_nor_refers(client, member):
    client.history(pain(at=day(0), pain=2, radiates_to_leg=True))
    assert client.fired(pain(at=day(1), pain=4, radiates_to_leg=True)) == ["sciatica-check", "acute-rest"]
    assert client.referral() is None


@pytest.mark.parametrize("days_later, fires", [(29, False), (30, True)])
def test_sciatica_check_cools_down_for_30_days(client, member, days_later, fires):
    client.history(pain(at=day(0), pain=2, radiates_to_leg=True))
    assert "sciatica-check" in client.fired(pain(at=day(1), pain=2, radiates_to_leg=True))
    client.history(pain(at=day(20), pain=2, radiates_to_leg=True))
    assert ("sciatica-check" in client.fired(pain(at=day(1 + days_later), pain=2, radiates_to_leg=True))) is fires


# -- medical -----------------------------------------------------------------------------------
def test_back_injury_fires_when_injured_and_not_cleared(client):
    client.history(profile(at=day(-1), back_injury=True))
    assert "back-injury" in client.fired(run(at=day(0)))


def test_back_injury_does_not_fire_once_cleared(client):
    client.history(profile(at=day(-1), back_injury=True, cleared_by_physician=True))
    assert "back-injury" not in client.fired(run(at=day(0)))


def test_back_injury_does_not_fire_without_injury(client, member):
    assert "back-injury" not in client.fired(run(at=day(0)))


def test_back_injury_holds_back_stop_advice(client, member):
    client.history(run(at=day(0)), profile(at=day(0, hour=2), back_injury=True, cleared_by_physician=False))
    assert client.fired(run(at=day(1), pain_during=6)) == ["back-injury"]  # not pain-stop


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_back_injury_cools_down_for_7_days(client, days_later, fires):
    client.history(profile(at=day(-1), back_injury=True))
    assert "back-injury" in client.fired(run(at=day(0)))
    assert ("back-injury" in client.fired(run(at=day(days_later)))) is fires


def test_back_injury_refers_until_a_physician_clears_the_member(client, member):
    client.history(run(at=day(0)), profile(at=day(0, hour=2), back_injury=True, cleared_by_physician=False))
    client.history(run(at=day(1), external_id="injured-run"))
    referral = client.referral()
    assert referral["rule"] == {"key": "back-injury", "name": "Injured back: see a physician first"}
    assert referral["event"] == "injured-run"
    # Under referral: no tips or cautions; each run a reminder, which holds back "stop running".
    assert client.fired(run(at=day(3), warmup_min=0)) == ["running-under-referral"]
    assert client.fired(run(at=day(5), pain_during=5)) == ["running-under-referral"]
    assert client.fired(pain(at=day(5, hour=2), pain=5)) == ["pain-report-stop"]
    client.history(profile(at=day(6), cleared_by_physician=True))
    assert client.referral() is None
    assert client.fired(run(at=day(8), warmup_min=0)) == ["warm-up"]


def test_medical_clearance_fires_on_the_first_run_without_clearance(client):
    assert client.fired(run(at=day(0))) == ["medical-clearance"]


def test_medical_clearance_does_not_fire_on_the_second_run(client):
    client.history(run(at=day(0)))
    assert "medical-clearance" not in client.fired(run(at=day(2)))


def test_medical_clearance_does_not_fire_when_cleared(client, member):
    assert "medical-clearance" not in client.fired(run(at=day(0)))


def test_medical_clearance_neither_holds_back_nor_refers(client):
    advice = client.advice(run(at=day(0), warmup_min=0))
    assert {a["rule"]["key"] for a in advice} == {"medical-clearance", "warm-up"}
    clearance = _advice(advice, "medical-clearance")
    assert "doctor" in clearance["card"]["summary"]
    assert (clearance["severity"], clearance["card"]["indicator"]) == ("refer", "warning")
    assert client.referral() is None


# -- referral (any referring rule) ---------------------------------------------------------------
def test_under_referral_only_emergency_refer_and_stop_advice_is_given(client, member):
    client.history(pain(at=day(0), pain=7))
    # No caution, no tip: a run gets the reminder (which holds back "stop running" on it).
    assert client.fired(run(at=day(1), warmup_min=0, surface="hills")) == ["running-under-referral"]
    assert client.fired(pain(at=day(1, hour=2), pain=5)) == ["pain-report-stop"]
    assert client.fired(run(at=day(16), pain_after=5)) == ["running-under-referral"]
    assert client.fired(pain(at=day(17), pain=2, fever=True)) == ["red-flags-urgent"]


def test_a_clearance_before_the_referral_does_not_end_it(client, member):
    client.history(pain(at=day(1), pain=7))
    client.history(profile(at=day(0, hour=12), cleared_by_physician=True))  # late, but before the referral
    assert client.referral()["rule"]["key"] == "severe-pain-refer"


def test_a_physicians_clearance_after_the_referral_ends_it(client, member):
    client.history(pain(at=day(0), pain=7), profile(at=day(1), cleared_by_physician=True))
    assert client.referral() is None
    assert client.fired(run(at=day(2), warmup_min=0)) == ["warm-up"]


# -- surface, progression, overuse -----------------------------------------------------------------
def test_hill_then_pain_fires_for_pain_within_48_hours_of_hills(client, member):
    client.history(run(at=day(0), surface="hills", external_id="hill-run"))
    advice = _advice(client.advice(pain(at=day(0, hour=47), pain=4, external_id="sore")), "hill-then-pain")
    assert advice["matched_events"] == ["hill-run", "sore"]
    assert "48 hours" in advice["message"]


def test_hill_then_pain_fires_after_150_m_of_climbing(client, member):
    client.history(run(at=day(0), surface="trail", elevation_gain_m=150))
    assert "hill-then-pain" in client.fired(pain(at=day(1), pain=4))


def test_hill_then_pain_does_not_fire_after_149_m_of_climbing(client, member):
    client.history(run(at=day(0), surface="trail", elevation_gain_m=149))
    assert "hill-then-pain" not in client.fired(pain(at=day(1), pain=4))


def test_hill_then_pain_does_not_fire_after_48_hours(client, member):
    client.history(run(at=day(0), surface="hills"))
    assert "hill-then-pain" not in client.fired(pain(at=day(0, hour=49), pain=4))


def test_hill_then_pain_does_not_fire_for_pain_of_3(client, member):
    client.history(run(at=day(0), surface="hills"))
    assert "hill-then-pain" not in client.fired(pain(at=day(1), pain=3))


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_hill_then_pain_cools_down_for_7_days(client, member, days_later, fires):
    client.history(run(at=day(0), surface="hills"))
    assert "hill-then-pain" in client.fired(pain(at=day(1), pain=4))
    client.history(run(at=day(days_later), surface="hills"))
    assert ("hill-then-pain" in client.fired(pain(at=day(1 + days_later), pain=4))) is fires


def test_pain_rising_fires_for_a_rise_of_2(client, member):
    advice = _advice(client.advice(run(pain_before=1, pain_after=3)), "pain-rising")
    assert "1/10" in advice["message"] and "3/10" in advice["message"]


def test_pain_rising_does_not_fire_for_a_rise_of_1(client, member):
    assert "pain-rising" not in client.fired(run(pain_before=1, pain_after=2))


def test_pain_rising_does_not_fire_without_pain_before(client, member):
    payload = run(pain_after=4)
    del payload["data"]["pain_before"]
    assert "pain-rising" not in client.fired(payload)


def test_long_run_spike_fires_over_10_percent_of_the_longest_run_of_30_days(client, member):
    client.history(run(at=day(0), distance_km=10), run(at=day(10), distance_km=6))
    advice = _advice(client.advice(run(at=day(20), distance_km=11.5)), "long-run-spike")
    assert "11.5 km" in advice["message"] and "15%" in advice["message"] and "(10 km)" in advice["message"]


def test_long_run_spike_does_not_fire_at_10_percent(client, member):
    client.history(run(at=day(0), distance_km=10))
    assert "long-run-spike" not in client.fired(run(at=day(20), distance_km=11))


def test_long_run_spike_fires_when_the_longest_run_was_3_km(client, member):
    client.history(run(at=day(0), distance_km=3))
    assert "long-run-spike" in client.fired(run(at=day(2), distance_km=4))


def test_long_run_spike_does_not_fire_when_the_longest_run_was_under_3_km(client, member):
    client.history(run(at=day(0), distance_km=2.9))
    assert "long-run-spike" not in client.fired(run(at=day(2), distance_km=4))


def test_long_run_spike_does_not_fire_when_the_longest_run_is_older_than_30_days(client, member):
    client.history(run(at=day(0), distance_km=10))
    assert "long-run-spike" not in client.fired(run(at=day(31), distance_km=20))


def test_gradual_increase_fires_over_10_percent_a_week(client, member):
    client.history(run(at=day(0), distance_km=15))
    assert "gradual-increase" in client.fired(run(at=day(7), distance_km=16.6))


def test_gradual_increase_does_not_fire_at_10_percent(client, member):
    client.history(run(at=day(0), distance_km=15))
    assert "gradual-increase" not in client.fired(run(at=day(7), distance_km=16.5))


def test_gradual_increase_does_not_fire_after_a_week_under_15_km(client, member):
    client.history(run(at=day(0), distance_km=14))
    assert "gradual-increase" not in client.fired(run(at=day(7), distance_km=20))


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_gradual_increase_cools_down_for_7_days(client, member, days_later, fires):
    client.history(run(at=day(0), distance_km=15))
    assert "gradual-increase" in client.fired(run(at=day(7), distance_km=17))
    assert ("gradual-increase" in client.fired(run(at=day(7 + days_later), distance_km=19))) is fires


def test_start_short_fires_for_a_long_early_run(client, member):
    assert "start-short" in client.fired(run(distance_km=5.5, duration_min=35))


def test_start_short_fires_for_a_long_early_run_by_time(client, member):
    assert "start-short" in client.fired(run(distance_km=4, duration_min=41))


def test_start_short_fires_for_a_member_new_to_running(client, member):
    client.history(profile(at=day(-0.5), experience="new"))
    assert "start-short" in client.fired(run(distance_km=6))


def test_start_short_fires_when_the_experience_is_not_known(client, member):
    assert "experience" not in client.member_detail()["profile"]
    assert "start-short" in client.fired(run(distance_km=6))


def test_start_short_does_not_fire_for_a_regular_runner(client, member):
    client.history(profile(at=day(-0.5), experience="regular"))
    assert "start-short" not in client.fired(run(distance_km=6, duration_min=45))


def test_start_short_does_not_fire_at_5_km_and_40_min(client, member):
    assert "start-short" not in client.fired(run(distance_km=5, duration_min=40))


def test_start_short_does_not_fire_after_the_sixth_run(client, member):
    client.history(*[run(at=day(2 * i)) for i in range(6)])
    assert "start-short" not in client.fired(run(at=day(12), distance_km=6, duration_min=45))


def test_limit_duration_fires_over_60_minutes(client, member):
    assert "limit-duration" in client.fired(run(duration_min=61))


def test_limit_duration_does_not_fire_at_60_minutes(client, member):
    assert "limit-duration" not in client.fired(run(duration_min=60))


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_limit_duration_cools_down_for_7_days(client, member, days_later, fires):
    assert "limit-duration" in client.fired(run(at=day(0), duration_min=70))
    assert ("limit-duration" in client.fired(run(at=day(days_later), duration_min=70))) is fires


def test_rest_days_fires_on_the_third_day_in_a_row(client, member):
    client.history(run(at=day(0)), run(at=day(1)))
    assert "rest-days" in client.fired(run(at=day(2)))


def test_rest_days_does_not_fire_after_a_rest_day(client, member):
    client.history(run(at=day(0)), run(at=day(1)))
    assert "rest-days" not in client.fired(run(at=day(3)))


def test_rest_days_counts_days_not_runs(client, member):
    client.history(run(at=day(0)), run(at=day(1)))
    assert "rest-days" not in client.fired(run(at=day(1, hour=8)))


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_rest_days_cools_down_for_7_days(client, member, days_later, fires):
    client.history(run(at=day(0)), run(at=day(1)))
    assert "rest-days" in client.fired(run(at=day(2)))
    client.history(run(at=day(days_later)), run(at=day(days_later + 1)))
    assert ("rest-days" in client.fired(run(at=day(days_later + 2)))) is fires


def test_flat_surface_fires_on_hills(client, member):
    assert "flat-surface" in client.fired(run(surface="hills"))


def test_flat_surface_fires_for_150_m_of_climbing(client, member):
    assert "flat-surface" in client.fired(run(surface="trail", elevation_gain_m=150))


def test_flat_surface_does_not_fire_on_a_flat_road(client, member):
    assert "flat-surface" not in client.fired(run(surface="road", elevation_gain_m=149))


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_flat_surface_cools_down_for_7_days(client, member, days_later, fires):
    assert "flat-surface" in client.fired(run(at=day(0), surface="hills"))
    assert ("flat-surface" in client.fired(run(at=day(days_later), surface="hills"))) is fires


def test_running_shoes_fires_without_running_shoes(client, member):
    assert "running-shoes" in client.fired(run(running_shoes=False))


def test_running_shoes_fires_for_shoes_with_700_km(client, member):
    assert "running-shoes" in client.fired(run(shoes_km=700))


def test_running_shoes_does_not_fire_for_running_shoes_with_699_km(client, member):
    assert "running-shoes" not in client.fired(run(running_shoes=True, shoes_km=699))


@pytest.mark.parametrize("days_later, fires", [(13, False), (14, True)])
def test_running_shoes_cools_down_for_14_days(client, member, days_later, fires):
    assert "running-shoes" in client.fired(run(at=day(0), running_shoes=False))
    assert ("running-shoes" in client.fired(run(at=day(days_later), running_shoes=False))) is fires


# -- long-lasting and new pain -------------------------------------------------------------------
def test_chronic_low_impact_fires_for_pain_of_3_after_12_weeks(client, member):
    assert client.fired(pain(at=day(0), pain=3, onset_date=weeks_before(day(0), 12))) == ["chronic-low-impact"]


def test_chronic_low_impact_fires_for_reports_spanning_12_weeks(client, member):
    client.history(*[pain(at=day(10 * i), pain=2) for i in range(9)])  # gaps of 10 days, 80 days
    assert "chronic-low-impact" in client.fired(pain(at=day(85), pain=3))


def test_chronic_low_impact_fires_with_chronic_pain_in_the_profile(client, member):
    client.history(profile(at=day(-0.5), chronic_back_pain=True))
    assert client.fired(pain(at=day(0), pain=3)) == ["chronic-low-impact"]


def test_chronic_low_impact_does_not_fire_for_pain_of_2(client, member):
    client.history(profile(at=day(-0.5), chronic_back_pain=True))
    assert "chronic-low-impact" not in client.fired(pain(at=day(0), pain=2))


def test_chronic_low_impact_does_not_fire_for_an_episode_under_12_weeks(client, member):
    assert "chronic-low-impact" not in client.fired(pain(pain=3, onset_date=weeks_before(day(0), 11, days=6)))


def test_chronic_low_impact_does_not_fire_when_a_14_day_gap_ended_the_episode(client, member):
    client.history(pain(at=day(0), onset_date=weeks_before(day(0), 20)))
    assert "chronic-low-impact" not in client.fired(pain(at=day(14), pain=3))


@pytest.mark.parametrize("days_later, fires", [(29, False), (30, True)])
def test_chronic_low_impact_cools_down_for_30_days(client, member, days_later, fires):
    client.history(profile(at=day(-0.5), chronic_back_pain=True))
    assert "chronic-low-impact" in client.fired(pain(at=day(0), pain=3))
    assert ("chronic-low-impact" in client.fired(pain(at=day(days_later), pain=3))) is fires


def test_acute_rest_fires_for_new_pain_of_4(client, member):
    assert client.fired(pain(pain=4)) == ["acute-rest"]


def test_acute_rest_does_not_fire_for_pain_of_3(client, member):
    assert "acute-rest" not in client.fired(pain(pain=3))


def test_acute_rest_does_not_fire_after_4_weeks_of_pain(client, member):
    assert "acute-rest" not in client.fired(pain(pain=4, onset_date=weeks_before(day(0), 4)))


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_acute_rest_cools_down_for_7_days(client, member, days_later, fires):
    assert "acute-rest" in client.fired(pain(at=day(0), pain=4))
    assert ("acute-rest" in client.fired(pain(at=day(days_later), pain=4))) is fires


# -- tips --------------------------------------------------------------------------------------
def test_warm_up_fires_under_5_minutes(client, member):
    assert "warm-up" in client.fired(run(warmup_min=4.5))


def test_warm_up_does_not_fire_at_5_minutes(client, member):
    assert "warm-up" not in client.fired(run(warmup_min=5))


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_warm_up_cools_down_for_7_days(client, member, days_later, fires):
    assert "warm-up" in client.fired(run(at=day(0), warmup_min=0))
    assert ("warm-up" in client.fired(run(at=day(days_later), warmup_min=0))) is fires


def test_warm_up_does_not_fire_when_not_reported(client, member):
    payload = run()
    del payload["data"]["warmup_min"]
    assert "warm-up" not in client.fired(payload)


def test_posture_fires_when_not_good(client, member):
    assert "posture" in client.fired(run(posture="slouched"))


def test_posture_does_not_fire_when_good(client, member):
    assert "posture" not in client.fired(run(posture="good"))


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_posture_cools_down_for_7_days(client, member, days_later, fires):
    assert "posture" in client.fired(run(at=day(0), posture="overstriding"))
    assert ("posture" in client.fired(run(at=day(days_later), posture="overstriding"))) is fires


@pytest.mark.parametrize("missing", ["hydrated", "fuelled"])
def test_hydration_fires_for_a_run_over_45_minutes_without_drinking_or_eating(client, member, missing):
    assert "hydration" in client.fired(run(duration_min=46, **{missing: False}))


def test_hydration_does_not_fire_for_a_45_minute_run(client, member):
    assert "hydration" not in client.fired(run(duration_min=45, hydrated=False, fuelled=False))


def test_hydration_does_not_fire_after_drinking_and_eating(client, member):
    assert "hydration" not in client.fired(run(duration_min=55, hydrated=True, fuelled=True))


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_hydration_cools_down_for_7_days(client, member, days_later, fires):
    assert "hydration" in client.fired(run(at=day(0), duration_min=50, hydrated=False))
    assert ("hydration" in client.fired(run(at=day(days_later), duration_min=50, hydrated=False))) is fires


def test_run_with_others_fires_on_the_5th_run_alone(client, member):
    client.history(*[run(at=day(2 * i), with_group=False) for i in range(4)])
    advice = _advice(client.advice(run(at=day(8), with_group=False)), "run-with-others")
    assert "last 5 runs" in advice["message"]


def test_run_with_others_does_not_fire_on_the_4th_run_alone(client, member):
    client.history(
        run(at=day(0), with_group=False),
        run(at=day(2), with_group=True),
        *[run(at=day(4 + 2 * i), with_group=False) for i in range(3)],
    )
    assert "run-with-others" not in client.fired(run(at=day(10), with_group=False))


def test_run_with_others_fires_once_when_the_streak_reaches_5_not_while_it_lasts(client, member):
    client.history(*[run(at=day(2 * i), with_group=False) for i in range(4)])
    assert "run-with-others" in client.fired(run(at=day(8), with_group=False))
    assert "run-with-others" not in client.fired(run(at=day(10), with_group=False))  # the 6th
    assert "run-with-others" not in client.fired(run(at=day(45), with_group=False))  # the 7th, cooldown over


def test_run_with_others_fires_again_when_a_new_streak_reaches_5_after_30_days(client, member):
    client.history(*[run(at=day(2 * i), with_group=False) for i in range(4)])
    assert "run-with-others" in client.fired(run(at=day(8), with_group=False))
    client.history(run(at=day(12), with_group=True), *[run(at=day(14 + 2 * i), with_group=False) for i in range(4)])
    assert "run-with-others" not in client.fired(run(at=day(37, hour=23), with_group=False))  # the 5th, cooling down
    client.history(run(at=day(38), with_group=True), *[run(at=day(40 + 2 * i), with_group=False) for i in range(4)])
    assert "run-with-others" in client.fired(run(at=day(48), with_group=False))


def test_good_progress_fires_on_the_5th_pain_free_run(client, member):
    client.history(*[run(at=day(2 * i), pain_during=2, pain_after=2) for i in range(4)])
    assert "good-progress" in client.fired(run(at=day(8)))


def test_good_progress_does_not_fire_when_a_painful_run_broke_the_streak(client, member):
    client.history(run(at=day(0)), run(at=day(2), pain_after=3), *[run(at=day(4 + 2 * i)) for i in range(3)])
    assert "good-progress" not in client.fired(run(at=day(10)))


def test_good_progress_does_not_fire_when_a_pain_report_of_3_broke_the_streak(client, member):
    client.history(*[run(at=day(2 * i)) for i in range(4)], pain(at=day(7), pain=3))
    assert "good-progress" not in client.fired(run(at=day(8)))


def test_good_progress_fires_once_when_the_streak_reaches_5_not_while_it_lasts(client, member):
    client.history(*[run(at=day(2 * i)) for i in range(4)])
    assert "good-progress" in client.fired(run(at=day(8)))
    assert "good-progress" not in client.fired(run(at=day(10)))  # the 6th
    assert "good-progress" not in client.fired(run(at=day(30)))  # the 7th, cooldown over


def test_good_progress_fires_again_when_a_new_streak_reaches_5_after_14_days(client, member):
    client.history(*[run(at=day(2 * i)) for i in range(4)])
    assert "good-progress" in client.fired(run(at=day(8)))
    client.history(run(at=day(9), pain_after=3), *[run(at=day(10 + i)) for i in range(4)])
    assert "good-progress" not in client.fired(run(at=day(21, hour=23)))  # the 5th, cooling down
    client.history(run(at=day(23), pain_after=3), *[run(at=day(24 + i)) for i in range(4)])
    assert "good-progress" in client.fired(run(at=day(28)))


def test_low_impact_credit_fires_for_yoga(client, member):
    advice = _advice(client.advice(cross(activity="yoga", duration_min=30)), "low-impact-credit")
    assert "yoga" in advice["message"]


@pytest.mark.parametrize("activity", ["swimming", "walking", "massage"])
def test_low_impact_credit_fires_for_other_gentle_activities(client, member, activity):
    assert client.fired(cross(activity=activity)) == ["low-impact-credit"]


def test_low_impact_credit_does_not_fire_for_cycling(client, member):
    assert client.fired(cross(activity="cycling")) == []


@pytest.mark.parametrize("days_later, fires", [(6, False), (7, True)])
def test_low_impact_credit_cools_down_for_7_days(client, member, days_later, fires):
    assert "low-impact-credit" in client.fired(cross(at=day(0), activity="yoga"))
    assert ("low-impact-credit" in client.fired(cross(at=day(days_later), activity="yoga"))) is fires


# -- installpack ---------------------------------------------------------------------------------
def _call(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _draft() -> dict[str, dict]:
    return {spec["key"]: spec for spec in ruleset_draft_specs()}


def _edit(key: str, **changes) -> None:
    """A clinician's edit of a draft rule (``parameters={"name": value}`` changes parameter values)."""
    spec = rule_spec(Rule.objects.get(key=key))
    for name, value in changes.pop("parameters", {}).items():
        next(p for p in spec["parameters"] if p["name"] == name)["value"] = value
    rule_save(spec={**spec, **changes})


@contextlib.contextmanager
def before_safety_critical_rules():
    """As the product was before it had safety-critical rules (to install an earlier pack as
    an earlier product did)."""
    registry.register_safety_critical(lambda: ())
    try:
        yield
    finally:
        registry.register_safety_critical(safety_critical_specs)


def install_as_before(specs: list[dict], *, comment: str, settings: dict | None = None) -> None:
    """A pack installed into an empty ruleset as the product did before it had ``pack_install``:
    its rules saved to the draft and published, the ruleset settings saved only when given."""
    for spec in specs:
        rule_save(spec=spec, origin=RuleChange.Origin.INSTALL)
    if settings is not None:
        ruleset_settings_save(settings=settings, origin=RuleChange.Origin.INSTALL)
    ruleset_publish(comment=comment)


@pytest.fixture
def pack_v1(db) -> None:
    """An install from before version 2: version 1 of the default pack installed and published,
    the ruleset settings never saved."""
    with before_safety_critical_rules():
        install_as_before(rulepack_specs(1), comment="Default rule pack")


@pytest.fixture
def pack_v2(db) -> None:
    """An install of version 2 of the default pack, published with its settings."""
    with before_safety_critical_rules():
        install_as_before(rulepack_specs(2), comment="Default rule pack, version 2", settings={"advice_limit": 3})


def test_installpack_on_a_fresh_install_publishes_version_3_with_its_settings(db):
    out, _ = _call("installpack")
    assert "published as ruleset version 1" in out
    live = version_live()
    assert sorted(spec["key"] for spec in live.snapshot) == sorted(TABLE_ORDER)
    assert live.settings == {"advice_limit": 3} and RulesetSettings.objects.get().advice_limit == 3


def test_installpack_is_idempotent(db):
    _call("installpack")
    changes = RuleChange.objects.count()
    out, _ = _call("installpack")
    assert "already" in out and "Nothing to do" in out
    assert RulesetVersion.objects.count() == 1 and RuleChange.objects.count() == changes


def test_installpack_never_overwrites_a_clinicians_edit(db):
    _call("installpack")
    _edit("warm-up", parameters={"min_warmup": 8})
    _call("installpack")
    _call("installpack", "--upgrade")
    assert _draft()["warm-up"]["parameters"][0]["value"] == "8"


def test_installpack_does_not_bring_back_a_rule_a_clinician_deleted(db):
    _call("installpack")
    rule_delete(rule=Rule.objects.get(key="posture"))
    out, _ = _call("installpack", "--upgrade")
    assert "posture" not in _draft()
    assert "Not added back (deleted by a clinician): posture" in out


def test_installpack_over_version_1_stages_the_new_rules_without_publishing(pack_v1):
    out, _ = _call("installpack")
    assert RulesetVersion.objects.count() == 1
    assert {"red-flags-emergency", "red-flags-urgent", "running-under-referral", "sciatica-check"} <= _draft().keys()
    assert "installpack --upgrade" in out


def test_upgrade_over_version_1_stages_version_3_as_a_draft_and_keeps_a_clinicians_change(pack_v1):
    _edit("warm-up", parameters={"min_warmup": 8})
    live_before = version_live().snapshot

    out, _ = _call("installpack", "--upgrade")

    assert "Nothing was published" in out and "Left as clinicians changed them: warm-up" in out
    assert RulesetVersion.objects.count() == 1 and version_live().snapshot == live_before
    draft = _draft()
    assert sorted(draft) == sorted(TABLE_ORDER)
    assert draft["warm-up"]["parameters"][0]["value"] == "8"
    v3 = {spec["key"]: spec for spec in rulepack_specs(3)}
    untouched = [key for key in draft if key != "warm-up"]
    assert all(spec_comparable(draft[key]) == v3[key] for key in untouched)
    assert ruleset_draft_settings() == {"advice_limit": 3} and RulesetSettings.objects.exists()
    ruleset_publish(comment="version 3, reviewed")  # the staged draft is publishable as it is


def test_upgrade_over_version_2_replaces_a_safety_critical_rule_a_clinician_changed_and_says_so(pack_v2):
    with before_safety_critical_rules():  # tuned under version 2, which allowed it
        _edit("severe-pain-refer", parameters={"threshold": 8})
    _edit("posture", cooldown_days=10)

    out, _ = _call("installpack", "--upgrade")

    assert "Left as clinicians changed them: posture" in out
    assert "Replaced (safety-critical, changed in a way this version does not allow): severe-pain-refer" in out
    draft = _draft()
    assert spec_comparable(draft["severe-pain-refer"]) == next(
        spec for spec in rulepack_specs(3) if spec["key"] == "severe-pain-refer"
    )
    assert draft["posture"]["cooldown_days"] == 10 and RulesetVersion.objects.count() == 1
    ruleset_publish(comment="version 3, reviewed")


def test_after_the_upgrade_is_published_reevaluate_gives_stored_advice_its_new_severity(pack_v2, client):
    client.history(profile(at=day(-1), cleared_by_physician=True))
    client.history(pain(at=day(0), pain=2, saddle_numbness=True, external_id="numb"))
    [stored] = client.get("/api/v1/members/m-1/advice/").json()["results"]
    assert (stored["rule"]["key"], stored["severity"]) == ("red-flags-emergency", "refer")  # as version 2 gave it

    _call("installpack", "--upgrade")
    ruleset_publish(comment="version 3")
    _call("reevaluate")

    [current] = client.get("/api/v1/members/m-1/advice/").json()["results"]
    assert (current["rule"]["key"], current["severity"], current["event"]) == (
        "red-flags-emergency",
        "emergency",
        "numb",
    )
    assert "numbness around the saddle area" in current["message"]


def test_the_change_log_tells_the_pack_install_from_the_upgrade_and_a_clinicians_edit(pack_v1):
    _edit("warm-up", parameters={"min_warmup": 8})
    _call("installpack", "--upgrade")

    def keys(origin: str) -> set[str]:
        return set(RuleChange.objects.filter(origin=origin).values_list("rule_key", flat=True))

    assert {change.origin_label for change in RuleChange.objects.all()} == {"pack install", "hand edit", "pack upgrade"}
    assert keys(RuleChange.Origin.EDIT) == {"warm-up"}
    assert {"red-flags-emergency", "pain-stop", "running-under-referral"} <= keys(RuleChange.Origin.UPGRADE)
    assert "warm-up" not in keys(RuleChange.Origin.UPGRADE)


def test_upgrade_is_idempotent(pack_v1):
    _edit("warm-up", parameters={"min_warmup": 8})
    _call("installpack", "--upgrade")
    changes = RuleChange.objects.count()
    out, _ = _call("installpack", "--upgrade")
    assert "Nothing to do" in out and "warm-up" in out
    assert RuleChange.objects.count() == changes and RulesetVersion.objects.count() == 1


def test_upgrade_keeps_ruleset_settings_a_clinician_saved(pack_v1):
    ruleset_settings_save(settings={"advice_limit": 2})
    _call("installpack", "--upgrade")
    assert ruleset_draft_settings() == {"advice_limit": 2}


def test_the_default_pack_says_what_each_rule_rests_on_from_its_source(db):
    levels = {spec["key"]: spec["evidence_level"] for spec in rulepack_specs(3)}
    assert levels["red-flags-emergency"] == levels["sciatica-check"] == "guideline"  # NICE
    assert levels["long-run-spike"] == "study"  # Frandsen et al.
    assert levels["pain-stop"] == levels["warm-up"] == "article"
    assert set(levels.values()) <= {"guideline", "study", "article", "expert opinion"}
    assert all(spec["review_by"] is None for spec in rulepack_specs(3))  # a year after each last changed
    # Earlier versions carried no evidence: they read as expert opinion, and compare as shipped.
    assert {spec["evidence_level"] for spec in rulepack_specs(2)} == {"expert opinion"}


def test_an_install_of_version_3_from_before_evidence_gets_the_levels_with_the_upgrade(db):
    with before_safety_critical_rules():
        install_as_before(
            [{**spec, "evidence_level": "expert opinion"} for spec in rulepack_specs(3)],
            comment="Default rule pack, version 3",
            settings={"advice_limit": 3},
        )
    _edit("posture", cooldown_days=10)
    out, _ = _call("installpack", "--upgrade")
    assert "Left as clinicians changed them: posture" in out
    draft = _draft()
    assert (draft["pain-stop"]["evidence_level"], draft["long-run-spike"]["evidence_level"]) == ("article", "study")
    assert draft["posture"]["evidence_level"] == "expert opinion"  # a clinician's rule is theirs


# -- exportpack and importpack ---------------------------------------------------------------------
@pytest.mark.parametrize("command", ["installpack", "exportpack", "importpack"])
def test_pack_commands_have_help(command):
    parser = load_command_class(get_commands()[command], command).create_parser("manage.py", command)
    assert parser.format_help()


def test_exportpack_writes_the_live_pack_to_stdout(db):
    _call("installpack")
    out, _ = _call("exportpack")
    pack = json.loads(out)
    assert pack["ruleset_version"] == 1 and pack["settings"] == {"advice_limit": 3}
    assert sorted(spec["key"] for spec in pack["rules"]) == sorted(TABLE_ORDER)


def test_exportpack_refuses_when_nothing_is_live(db):
    with pytest.raises(CommandError, match="Nothing has been published"):
        _call("exportpack")


def test_exportpack_and_importpack_round_trip(db, tmp_path):
    _call("installpack")
    ruleset_settings_save(settings={"advice_limit": 4})
    _edit("pain-stop", parameters={"threshold": 6})
    ruleset_publish(comment="clinic's own")
    exported = tmp_path / "pack.json"
    _call("exportpack", str(exported))

    _edit("pain-stop", parameters={"threshold": 3})
    _edit("posture", enabled=False)
    ruleset_settings_save(settings={"advice_limit": 2})
    out, _ = _call("importpack", str(exported))
    assert "The draft is now this pack" in out and RulesetVersion.objects.count() == 2
    assert _draft()["pain-stop"]["parameters"][0]["value"] == "6" and _draft()["posture"]["enabled"]
    assert ruleset_draft_settings() == {"advice_limit": 4}

    out, _ = _call("importpack", str(exported), "--publish", "--comment", "Back from the file")
    assert "already live as ruleset version 2" in out and RulesetVersion.objects.count() == 2
    again = json.loads(_call("exportpack")[0])
    assert again["rules"] == json.loads(exported.read_text())["rules"] and again["settings"] == {"advice_limit": 4}


def test_importpack_publish_makes_a_new_live_version_with_the_comment(db, tmp_path):
    _call("installpack")
    exported = tmp_path / "pack.json"
    pack = json.loads(_call("exportpack")[0])
    next(s for s in pack["rules"] if s["key"] == "warm-up")["parameters"][0]["value"] = 7
    exported.write_text(json.dumps(pack))
    out, _ = _call("importpack", str(exported), "--publish", "--comment", "Longer warm-up")
    live = version_live()
    assert "Published it as ruleset version 2" in out
    assert (live.comment, live.origin, live.created_by) == ("Longer warm-up", "operator", None)
    assert next(s for s in live.snapshot if s["key"] == "warm-up")["parameters"][0]["value"] == 7
    # The change log records the operator's act: the draft's change and the publish, with the comment.
    operator = RuleChange.objects.filter(origin=RuleChange.Origin.OPERATOR).order_by("id")
    assert [(c.rule_key, c.action) for c in operator] == [("warm-up", "changed"), ("", "published")]
    assert {c.origin_label for c in operator} == {"the operator's pack import, published at once as version 2"}
    assert operator.last().after == {"version": 2, "comment": "Longer warm-up"}


def test_importpack_publish_needs_a_comment_and_validates_the_pack_first(db, tmp_path):
    _call("installpack")
    exported = tmp_path / "pack.json"
    exported.write_text(_call("exportpack")[0])
    with pytest.raises(CommandError, match="without a clinician's approval: say why with --comment"):
        call_command("importpack", str(exported), "--publish", stdout=io.StringIO(), stderr=io.StringIO())
    assert RulesetVersion.objects.count() == 1
    exported.write_text("{}")
    with pytest.raises(CommandError, match="not a rule pack"):  # the pack is read and checked first
        call_command("importpack", str(exported), "--publish", stdout=io.StringIO(), stderr=io.StringIO())


def test_importpack_of_a_bad_pack_names_the_rule_and_field_and_changes_nothing(db, tmp_path):
    _call("installpack")
    pack = json.loads(_call("exportpack")[0])
    next(s for s in pack["rules"] if s["key"] == "pain-stop")["cooldown_days"] = 999999999
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(pack))
    draft, changes = ruleset_draft_specs(), RuleChange.objects.count()

    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("importpack", str(bad), "--publish", stdout=io.StringIO(), stderr=err)

    assert f"pain-stop: cooldown_days: {MSG_COOLDOWN}" in err.getvalue()
    assert ruleset_draft_specs() == draft and RuleChange.objects.count() == changes
    assert RulesetVersion.objects.count() == 1


def test_importpack_refuses_a_file_that_is_not_a_pack(db, tmp_path):
    _call("installpack")
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2")
    with pytest.raises(CommandError, match="not a rule pack"):
        _call("importpack", str(junk))
    assert RuleChange.objects.filter(action="deleted").count() == 0
