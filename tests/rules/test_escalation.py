"""What the engine offers any domain for safe escalation, on the thermostat domain: a step of any
event type, conditions on the referral in force, advice as urgent as the referral, messages that
name what matched and the referral, a clearance that ends referring rules' cooldowns, a more
urgent referral taking the place of the one in force, card indicators, safety-critical rules,
and the policy's memory that dumps, loads and replays to the same state.

Severities of the test domain, most urgent first: critical, urgent, note; under referral only
urgent or more is given.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from rules import services
from rules.evaluation import DecisionState, Evaluator, Fact, Given, date_words
from rules.registry import ANY_FACT_TYPE, UNDER_REFERRAL, registry
from rules.spec import (
    MSG_REFERRAL_PLACEHOLDER,
    MSG_SAFETY_DELETE,
    MSG_SAFETY_DISABLE,
    MSG_SAFETY_MISSING,
    MSG_SAFETY_SEVERITY,
    MSG_SAFETY_STRUCTURE,
    MSG_STATE_FIELD_GROUP,
    MSG_STATE_FIELD_PATTERN,
    MSG_UNKNOWN_INDICATOR,
    RuleValidationError,
    spec_validate,
)
from tests.rules.conftest import T0, cond, make_spec, reading

DAY = dt.timedelta(days=1)


def judge(facts: list[Fact], *specs: dict, state: DecisionState | None = None) -> list:
    with Evaluator(specs=list(specs), settings={"advice_limit": 3}) as evaluator:
        return evaluator.judge(facts, state=state)


def given(decisions) -> list[list[str]]:
    return [[m.rule_key for m in d.given] for d in decisions]


ALARM_REFERS = make_spec(
    "alarm", severity="critical", refers=True, message="Alarm", conditions=[cond("alarm", "eq", True)]
)
HOT_REFERS = make_spec("hot", severity="urgent", refers=True, message="Hot", summary="Call an engineer")
REMINDER = make_spec(
    "reminder",
    severity="urgent",
    follows_referral=True,
    holds_back_lower=True,
    message="Since {referral_since}: {referral_advice} ({referral_rule})",
    conditions=[cond(UNDER_REFERRAL, "eq", True)],
)
NOTE = make_spec("note", severity="note", message="Note", conditions=[cond("level", "gte", 0)])


# -- a condition on the referral in force -----------------------------------------------------------
def test_a_rule_under_referral_fires_only_while_the_subject_is_under_referral():
    facts = [reading(T0, level=1), reading(T0 + DAY, temperature=35), reading(T0 + 2 * DAY, level=1)]
    assert given(judge(facts, HOT_REFERS, REMINDER)) == [[], ["hot"], ["reminder"]]


def test_the_fact_that_starts_a_referral_is_not_under_it():
    facts = [reading(T0, temperature=35), reading(T0 + DAY, temperature=35)]
    assert given(judge(facts, HOT_REFERS, REMINDER)) == [["hot"], ["hot", "reminder"]]


def test_not_under_referral_is_a_condition_too():
    calm = make_spec("calm", severity="note", message="Calm", conditions=[cond(UNDER_REFERRAL, "eq", False)])
    facts = [reading(T0, level=1), reading(T0 + DAY, temperature=35), reading(T0 + 2 * DAY, level=1)]
    assert given(judge(facts, HOT_REFERS, calm)) == [["calm"], ["hot"], []]


def test_the_reminder_names_the_referral_in_the_facts_own_offset():
    evening = dt.datetime(2026, 3, 1, 23, 0, tzinfo=dt.timezone(-dt.timedelta(hours=5)))  # 04:00 UTC on the 2nd
    facts = [reading(evening, temperature=35), reading(evening + DAY, level=1)]
    [reminder] = judge(facts, HOT_REFERS, REMINDER)[1].given
    assert reminder.message == "Since 1 Mar 2026: Call an engineer (Hot)"
    assert date_words(evening) == "1 Mar 2026"


def test_a_reminder_takes_the_referrals_severity_when_more_urgent_and_holds_back_below_it():
    facts = [reading(T0, alarm=True), reading(T0 + DAY, temperature=35)]
    decision = judge(facts, ALARM_REFERS, HOT_REFERS, REMINDER)[1]
    assert [(m.rule_key, m.severity) for m in decision.given] == [("reminder", "critical")]
    assert [h.match.rule_key for h in decision.held_back] == ["hot"]  # urgent, below the reminder


def test_a_reminder_keeps_its_own_severity_under_a_less_urgent_referral():
    note_refers = make_spec(
        "quiet", severity="urgent", refers=True, message="Quiet", conditions=[cond("level", "eq", 9)]
    )
    facts = [reading(T0, level=9), reading(T0 + DAY, level=1)]
    [reminder] = judge(facts, note_refers, REMINDER)[1].given
    assert reminder.severity == "urgent"


def test_a_condition_on_the_referral_fits_one_event_rules_only_and_stands_in_a_group_of_its_own():
    sequence = make_spec(
        "seq",
        pattern="sequence",
        window_hours=24,
        steps=[{"fact_type": "reading"}, {"fact_type": "reading"}],
        conditions=[cond("level", "gte", 1, step=1), cond(UNDER_REFERRAL, "eq", True, step=2)],
    )
    assert spec_validate(sequence)["conditions.1.field"] == [MSG_STATE_FIELD_PATTERN.format(field="Under referral")]
    mixed = make_spec(conditions=[cond("temperature", "gt", 30), cond(UNDER_REFERRAL, "eq", True)])
    assert spec_validate(mixed)["conditions.1.group"] == [MSG_STATE_FIELD_GROUP.format(field="Under referral")]


def test_a_message_names_the_referral_only_in_a_rule_that_fires_under_referral():
    errors = spec_validate(make_spec(message="Since {referral_since}"))
    expected = MSG_REFERRAL_PLACEHOLDER.format(
        where="message", value="[The date the referral began]", field="Under referral"
    )
    assert errors["message"] == [expected]
    assert spec_validate(REMINDER) == {}


# -- a step of any event type ------------------------------------------------------------------------
def test_a_step_of_any_type_matches_every_type_that_has_the_field():
    long = make_spec(
        "long",
        steps=[{"fact_type": ANY_FACT_TYPE}],
        conditions=[cond("minutes", "gte", 30)],
        message="{minutes} minutes",
    )
    facts = [reading(T0, level=1), reading(T0 + DAY, type="visit", minutes=45)]
    assert given(judge(facts, long)) == [[], ["long"]]


def test_a_pattern_of_any_type_counts_facts_of_every_type():
    busy = make_spec(
        "busy",
        pattern="count",
        count=2,
        window_hours=48,
        steps=[{"fact_type": ANY_FACT_TYPE}],
        conditions=[cond("alarm", "eq", True)],
        message="{count} alarms",
    )
    facts = [reading(T0, alarm=True), reading(T0 + DAY, alarm=True)]
    assert given(judge(facts, busy)) == [[], ["busy"]]


# -- what matched, in words ----------------------------------------------------------------------------
def test_the_matched_placeholder_names_the_conditions_that_held():
    spec = make_spec(
        "watch",
        message="Seen: {matched}.",
        conditions=[cond("alarm", "eq", True), cond("temperature", "gte", 40), cond("room", "eq", "attic")],
    )
    [one] = judge([reading(T0, alarm=True, temperature=20, room="hall")], spec)[0].given
    assert one.message == "Seen: alarm."
    hot = make_spec("hot2", message="Seen: {matched}.", conditions=[cond("temperature", "gte", 40, group=1)])
    [two] = judge([reading(T0, temperature=45)], hot)[0].given
    assert two.message == "Seen: temperature of 45 °C."


# -- clearance and referrals -----------------------------------------------------------------------------
def cleared(at: dt.datetime) -> Fact:
    return dataclasses.replace(reading(at, level=0), clears_referral=True)


def test_a_clearance_ends_the_cooldowns_of_the_rules_that_refer_and_only_theirs():
    hot = {**HOT_REFERS, "cooldown_days": 7}
    cooled = make_spec("cool", severity="urgent", cooldown_days=7, message="Cool", conditions=[cond("level", "eq", 5)])
    facts = [
        reading(T0, temperature=35, level=5),
        cleared(T0 + DAY),
        reading(T0 + 2 * DAY, temperature=35, level=5),
    ]
    assert given(judge(facts, hot, cooled)) == [["cool", "hot"], [], ["hot"]]


def test_a_more_urgent_referral_takes_the_place_of_the_one_in_force():
    facts = [reading(T0, temperature=35), reading(T0 + DAY, alarm=True), reading(T0 + 2 * DAY, temperature=35)]
    decisions = judge(facts, HOT_REFERS, ALARM_REFERS)
    assert [d.referral_started_by for d in decisions] == ["hot", "alarm", ""]
    assert decisions[2].referral.rule_key == "alarm" and decisions[2].referral.severity == "critical"


def test_a_less_urgent_referral_leaves_the_one_in_force():
    facts = [reading(T0, alarm=True), reading(T0 + DAY, temperature=35)]
    decisions = judge(facts, HOT_REFERS, ALARM_REFERS)
    assert decisions[1].referral.rule_key == "alarm" and decisions[1].referral_started_by == ""


# -- the policy's memory -----------------------------------------------------------------------------------
def test_the_state_dumps_loads_and_replays_to_what_judging_remembered():
    facts = [
        reading(T0, temperature=35),
        reading(T0 + DAY, level=1),
        cleared(T0 + 2 * DAY),
        reading(T0 + 3 * DAY, alarm=True, temperature=35),
    ]
    state = DecisionState()
    decisions = judge(facts, ALARM_REFERS, HOT_REFERS, REMINDER, state=state)
    assert DecisionState.load(state.dump()) == state

    with Evaluator(specs=[ALARM_REFERS, HOT_REFERS, REMINDER]) as evaluator:
        policy = evaluator.loaded.compiled.policy
    steps = [
        (
            fact,
            [
                Given(m.rule_key, m.rule_name, m.severity, m.summary, d.referral_started_by == m.rule_key)
                for m in d.given
            ],
        )
        for fact, d in zip(facts, decisions, strict=True)
    ]
    assert DecisionState.replay(steps, policy=policy) == state


# -- card indicators --------------------------------------------------------------------------------------
def test_an_indicator_must_be_one_the_domain_declared():
    assert spec_validate(make_spec(indicator="loud"))["indicator"] == [
        MSG_UNKNOWN_INDICATOR.format(value="loud", choices="red, amber, green")
    ]


def test_advice_shows_its_severitys_indicator_unless_its_rule_sets_one():
    own = make_spec("own", severity="urgent", indicator="green", message="Own", conditions=[cond("level", "eq", 2)])
    facts = [reading(T0, alarm=True), reading(T0 + DAY, level=2)]
    decisions = judge(facts, ALARM_REFERS, own, REMINDER)
    assert [(m.rule_key, m.indicator) for m in decisions[0].given] == [("alarm", "red")]
    # The reminder of a critical referral is critical, and shows so; "own" is held back below it.
    assert [(m.rule_key, m.indicator) for m in decisions[1].given] == [("reminder", "red")]
    assert [(m.rule_key, m.indicator) for m in judge([reading(T0, level=2)], own)[0].given] == [("own", "green")]


# -- safety-critical rules ------------------------------------------------------------------------------------
SAFE = make_spec("alarm-call", severity="critical", refers=True, holds_back_lower=True, message="Alarm")
SAFE["conditions"] = [cond("alarm", "eq", True)]


@pytest.fixture
def safety_critical():
    registry.register_safety_critical(lambda: [SAFE])
    yield SAFE
    registry.register_safety_critical(lambda: ())


def _errors(call) -> dict:
    with pytest.raises(RuleValidationError) as refused:
        call()
    return refused.value.errors


def test_a_safety_critical_rule_cannot_be_switched_off_made_less_urgent_or_changed_in_what_it_looks_for(
    db, safety_critical
):
    services.rule_save(spec=SAFE)
    assert _errors(lambda: services.rule_save(spec={**SAFE, "enabled": False}))["enabled"] == [
        MSG_SAFETY_DISABLE.format(name="Alarm Call")
    ]
    assert _errors(lambda: services.rule_save(spec={**SAFE, "severity": "urgent"}))["severity"] == [
        MSG_SAFETY_SEVERITY.format(name="Alarm Call", severity="Critical")
    ]
    looser = {**SAFE, "conditions": [cond("alarm", "eq", False)]}
    assert _errors(lambda: services.rule_save(spec=looser))["conditions"] == [
        MSG_SAFETY_STRUCTURE.format(name="Alarm Call")
    ]
    assert "refers" in _errors(lambda: services.rule_save(spec={**SAFE, "refers": False}))


def test_a_safety_critical_rule_keeps_its_words_and_numbers_a_clinicians(db, safety_critical):
    services.rule_save(spec=SAFE)
    services.rule_save(spec={**SAFE, "message": "Alarm: leave the building", "cooldown_days": 2, "priority": 5})


def test_a_safety_critical_rule_cannot_be_deleted_nor_left_out_of_a_ruleset(db, safety_critical):
    from rules.models import Rule

    services.rule_save(spec=SAFE)
    assert _errors(lambda: services.rule_delete(rule=Rule.objects.get(key="alarm-call")))["key"] == [
        MSG_SAFETY_DELETE.format(name="Alarm Call")
    ]
    errors = _errors(lambda: services.ruleset_check([make_spec("other")]))
    assert errors["alarm-call: key"] == [MSG_SAFETY_MISSING.format(name="Alarm Call")]
    assert services.ruleset_check([make_spec("other"), SAFE])
