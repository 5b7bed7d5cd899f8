"""The one decision policy, on its own: which matches become advice, and why the others are held back.

Severities of the test domain, most urgent first: critical, urgent, note; under referral only
urgent or more is given (its referral floor).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest

from rules.evaluation import (
    HELD_COOLDOWN,
    HELD_LIMIT,
    HELD_PRECEDENCE,
    HELD_REFERRAL,
    MSG_HELD_COOLDOWN,
    MSG_HELD_LIMIT,
    MSG_HELD_PRECEDENCE,
    MSG_HELD_REFERRAL,
    Decision,
    DecisionState,
    Evaluator,
    Fact,
    Referral,
    timeline_judge,
)
from rules.spec import MSG_REFERS_SEVERITY, spec_validate
from tests.rules.conftest import T0, boiler_catalog, boiler_specs, cond, make_spec, reading

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def rule(key: str, severity: str = "urgent", *, above: float = 30, **overrides) -> dict:
    """A rule that fires on a reading over ``above`` degrees."""
    return make_spec(key, severity=severity, conditions=[cond("temperature", "gt", above)], **overrides)


def alarm_rule(key: str, severity: str = "critical", **overrides) -> dict:
    return make_spec(key, severity=severity, conditions=[cond("alarm", "eq", True)], message="Alarm", **overrides)


def judge(facts: list[Fact], *specs: dict, limit: int = 3) -> list[Decision]:
    with Evaluator(specs=list(specs), settings={"advice_limit": limit}) as evaluator:
        return evaluator.judge(facts)


def given(decisions: list[Decision]) -> list[list[str]]:
    return [[m.rule_key for m in d.given] for d in decisions]


def held(decisions: list[Decision]) -> list[list[tuple[str, str]]]:
    return [[(h.match.rule_key, h.reason) for h in d.held_back] for d in decisions]


def hot(at: dt.datetime, temperature: float = 35, **data) -> Fact:
    return reading(at, temperature=temperature, **data)


# -- cooldown ---------------------------------------------------------------------------------
def test_cooldown_holds_back_a_rules_advice_until_its_days_have_passed():
    facts = [hot(T0 + n * DAY) for n in range(4)]
    decisions = judge(facts, rule("hot", cooldown_days=2))
    assert given(decisions) == [["hot"], [], ["hot"], []]  # two days later is no longer "within"
    first, second = decisions[1].held("hot"), decisions[3].held("hot")
    assert (first.reason, first.since, second.since) == (HELD_COOLDOWN, T0, T0 + 2 * DAY)
    assert first.explanation == MSG_HELD_COOLDOWN.format(date="10 Jan 2026", days=2, plural="s")
    assert first.explanation == "Cooling down: this rule last gave advice on 10 Jan 2026; its cooldown is 2 days."


def test_cooldown_counts_in_time_order_not_in_arrival_order():
    later = hot(T0 + DAY)
    assert given(judge([later], rule("hot", cooldown_days=3))) == [["hot"]]
    earlier = hot(T0)  # arrives after `later`, happened a day before it
    decisions = judge(sorted([later, earlier], key=lambda f: f.occurred_at), rule("hot", cooldown_days=3))
    assert [d.fact for d in decisions] == [earlier, later]
    assert given(decisions) == [["hot"], []]
    assert decisions[1].held("hot").since == earlier.occurred_at


def test_a_one_day_cooldown_explains_itself_in_the_singular():
    decisions = judge([hot(T0), hot(T0 + HOUR)], rule("hot", cooldown_days=1))
    assert decisions[1].held("hot").explanation.endswith("its cooldown is 1 day.")


def test_advice_held_back_by_precedence_starts_no_cooldown():
    specs = [rule("boiling", "critical", above=40, holds_back_lower=True), rule("hot", cooldown_days=5)]
    decisions = judge([hot(T0, 45), hot(T0 + DAY, 35)], *specs)
    assert held(decisions) == [[("hot", HELD_PRECEDENCE)], []]
    assert given(decisions) == [["boiling"], ["hot"]]


def test_advice_held_back_by_the_limit_starts_no_cooldown():
    specs = [rule("first", priority=1, cooldown_days=5), rule("second", priority=2, cooldown_days=5)]
    decisions = judge([hot(T0), hot(T0 + DAY)], *specs, limit=1)
    assert given(decisions) == [["first"], ["second"]]
    assert held(decisions) == [[("second", HELD_LIMIT)], [("first", HELD_COOLDOWN)]]


# -- precedence -------------------------------------------------------------------------------
def test_precedence_holds_back_less_urgent_advice_on_the_same_fact_only():
    specs = [
        rule("boiling", "critical", above=40, holds_back_lower=True),
        alarm_rule("alarm"),  # as urgent as the holder: kept
        rule("hot", "urgent"),
        rule("warm", "note", above=25),
    ]
    decisions = judge([hot(T0, 45, alarm=True), hot(T0 + HOUR, 35)], *specs)
    assert given(decisions) == [["alarm", "boiling"], ["hot", "warm"]]
    assert held(decisions)[0] == [("hot", HELD_PRECEDENCE), ("warm", HELD_PRECEDENCE)]
    warm = decisions[0].held("warm")
    assert warm.by_rule == "boiling"
    assert warm.explanation == MSG_HELD_PRECEDENCE.format(rule="Boiling")
    assert warm.explanation == "Held back by “Boiling”, which holds back less urgent advice on the same event."


def test_a_rule_without_holding_back_keeps_less_urgent_advice():
    decisions = judge([hot(T0, 45)], rule("boiling", "critical", above=40), rule("warm", "note", above=25))
    assert given(decisions) == [["boiling", "warm"]]


def test_a_holder_that_is_cooling_down_holds_nothing_back():
    specs = [rule("boiling", "critical", above=40, holds_back_lower=True, cooldown_days=7), rule("warm", "note")]
    decisions = judge([hot(T0, 45), hot(T0 + DAY, 45)], *specs)
    assert given(decisions) == [["boiling"], ["warm"]]
    assert held(decisions) == [[("warm", HELD_PRECEDENCE)], [("boiling", HELD_COOLDOWN)]]


# -- referral ---------------------------------------------------------------------------------
REFERRAL_SPECS = [
    alarm_rule("refer", refers=True),
    rule("hot", "urgent"),
    rule("warm", "note", above=25),
]


def test_a_referral_starts_at_the_fact_and_gives_only_advice_at_or_above_the_floor_until_cleared():
    facts = [
        hot(T0),
        hot(T0 + DAY, alarm=True),
        hot(T0 + 2 * DAY),
        Fact(id="cleared", type="reading", occurred_at=T0 + 3 * DAY, data={"temperature": 35}, clears_referral=True),
        hot(T0 + 4 * DAY),
    ]
    decisions = judge(facts, *REFERRAL_SPECS)
    assert given(decisions) == [["hot", "warm"], ["refer", "hot"], ["hot"], ["hot", "warm"], ["hot", "warm"]]
    assert held(decisions) == [[], [("warm", HELD_REFERRAL)], [("warm", HELD_REFERRAL)], [], []]
    referral = Referral(
        since=T0 + DAY, rule_key="refer", rule_name="Refer", fact_id=facts[1].id, severity="critical", summary="Refer"
    )
    assert [d.referral for d in decisions] == [None, referral, referral, None, None]
    assert [d.referral_started_by for d in decisions] == ["", "refer", "", "", ""]
    warm = decisions[2].held("warm")
    assert (warm.by_rule, warm.since) == ("refer", T0 + DAY)
    assert warm.explanation == MSG_HELD_REFERRAL.format(subject="thermostat", date="11 Jan 2026", rule="Refer")
    assert warm.explanation == (
        "The thermostat is under referral since 11 Jan 2026 (“Refer”): only the most urgent advice is given."
    )


def test_a_second_referring_fact_keeps_the_referral_that_is_in_force():
    facts = [hot(T0, alarm=True), hot(T0 + DAY, alarm=True)]
    decisions = judge(facts, *REFERRAL_SPECS)
    assert given(decisions) == [["refer", "hot"], ["refer", "hot"]]
    assert decisions[1].referral.since == T0 and decisions[1].referral_started_by == ""


def test_a_referring_rule_that_is_held_back_starts_no_referral():
    """Over the limit, the referring rule gives no advice: nothing below the floor is held back
    in the name of a referral that never began."""
    specs = [alarm_rule("refer", refers=True, priority=200), rule("boiling", "critical", above=40, priority=1)]
    decisions = judge([hot(T0, 45, alarm=True), hot(T0 + DAY, 28)], *specs, rule("warm", "note", above=25), limit=1)
    assert given(decisions) == [["boiling"], ["warm"]]
    assert held(decisions)[0] == [("refer", HELD_LIMIT), ("warm", HELD_LIMIT)]
    assert [d.referral for d in decisions] == [None, None]


def test_advice_held_back_under_referral_starts_no_cooldown():
    specs = [alarm_rule("refer", refers=True), rule("warm", "note", above=25, cooldown_days=5)]
    facts = [
        hot(T0, alarm=True),
        Fact(id="cleared", type="reading", occurred_at=T0 + DAY, data={"temperature": 35}, clears_referral=True),
    ]
    decisions = judge(facts, *specs)
    assert given(decisions) == [["refer"], ["warm"]]


# -- the limit per event ------------------------------------------------------------------------
def test_the_limit_gives_the_most_urgent_advice_first_then_by_priority_then_by_key():
    specs = [
        rule("b-note", "note", priority=0),
        rule("c-urgent", priority=50),
        rule("a-urgent", priority=50),
        rule("d-urgent", priority=10),
    ]
    decisions = judge([hot(T0)], *specs, limit=2)
    assert given(decisions) == [["d-urgent", "a-urgent"]]
    assert held(decisions) == [[("c-urgent", HELD_LIMIT), ("b-note", HELD_LIMIT)]]
    assert decisions[0].held("b-note").explanation == MSG_HELD_LIMIT.format(limit=2, plural="s")
    assert decisions[0].held("b-note").explanation == "Over the limit of 2 pieces of advice per event."


def test_a_limit_of_one_explains_itself_in_the_singular():
    decisions = judge([hot(T0)], rule("a"), rule("b"), limit=1)
    assert decisions[0].held("b").explanation == "Over the limit of 1 piece of advice per event."


def test_the_default_limit_is_three():
    with Evaluator(specs=[rule(f"r{n}") for n in range(5)]) as evaluator:
        decisions = evaluator.judge([hot(T0)])
    assert given(decisions) == [["r0", "r1", "r2"]]


# -- judging part of a timeline -------------------------------------------------------------------
TIMELINE_SPECS = [
    alarm_rule("refer", refers=True, cooldown_days=3),
    rule("boiling", "critical", above=42, holds_back_lower=True),
    rule("hot", cooldown_days=1),
    rule("warm", "note", above=25, priority=5),
    make_spec(
        "hot-streak",
        severity="note",
        pattern="count",
        count=3,
        window_hours=72,
        cooldown_days=2,
        conditions=[cond("temperature", "gte", 33)],
        message="{count} hot readings",
    ),
]


def _timeline(seed: int, size: int = 60) -> list[Fact]:
    rng = random.Random(seed)
    at, facts = T0, []
    for n in range(size):
        at += dt.timedelta(hours=rng.randint(1, 30))
        if rng.random() < 0.08:
            facts.append(
                Fact(id=f"c{n}", type="reading", occurred_at=at, data={"temperature": 20}, clears_referral=True)
            )
        else:
            facts.append(
                Fact(
                    id=f"f{n}",
                    type="reading",
                    occurred_at=at,
                    data={"temperature": rng.randint(20, 45), "alarm": rng.random() < 0.1},
                )
            )
    return facts


def _summary(decisions: list[Decision]) -> list[tuple]:
    return [
        (
            d.fact.id,
            [(m.rule_key, m.fact_ids) for m in d.given],
            [(h.match.rule_key, h.reason, h.since, h.by_rule) for h in d.held_back],
            d.referral,
        )
        for d in decisions
    ]


@pytest.mark.parametrize("seed", range(3))
def test_judging_from_the_middle_of_a_timeline_equals_judging_it_from_the_start(seed):
    facts = _timeline(seed)
    with Evaluator(specs=TIMELINE_SPECS, settings={"advice_limit": 2}) as evaluator:
        whole = evaluator.judge(facts)
        reasons = {h.reason for d in whole for h in d.held_back}
        assert reasons == {HELD_COOLDOWN, HELD_PRECEDENCE, HELD_REFERRAL, HELD_LIMIT}  # every policy at work
        for start in (1, 17, 40):
            state = DecisionState()
            evaluator.judge(facts[:start], state=state)  # what production remembers of the earlier facts
            rest = timeline_judge(facts=facts, start=start, state=state.copy(), evaluator=evaluator)
            assert _summary(rest) == _summary(whole[start:]), start
            assert _summary(evaluator.judge(facts, start=start, state=state)) == _summary(whole[start:])


def test_the_state_remembers_the_last_advice_and_the_referral():
    facts = [hot(T0, alarm=True), hot(T0 + DAY)]
    state = DecisionState()
    judge_with_state = Evaluator(specs=REFERRAL_SPECS)
    try:
        judge_with_state.judge(facts, state=state)
    finally:
        judge_with_state.close()
    assert state.last_given == {"refer": T0, "hot": T0 + DAY}
    assert state.referral == Referral(
        since=T0, rule_key="refer", rule_name="Refer", fact_id=facts[0].id, severity="critical", summary="Refer"
    )
    copy = state.copy()
    copy.last_given["hot"] = T0
    assert state.last_given["hot"] == T0 + DAY
    assert dataclasses.asdict(state)["referral"]["rule_key"] == "refer"


def test_a_rule_less_urgent_than_the_referral_floor_cannot_refer():
    assert spec_validate(alarm_rule("refer", "urgent", refers=True)) == {}
    errors = spec_validate(alarm_rule("refer", "note", refers=True))
    assert errors == {"refers": [MSG_REFERS_SEVERITY.format(floor="Urgent", subject="thermostat")]}


def test_a_ruleset_is_judged_in_the_words_of_the_catalog_it_was_compiled_against():
    facts = [
        Fact(id="1", type="pressure", occurred_at=T0, data={"bar": 4, "leak": True}),
        Fact(id="2", type="pressure", occurred_at=T0 + DAY, data={"bar": 5, "leak": False}),
    ]
    with Evaluator(specs=boiler_specs(), catalog=boiler_catalog()) as evaluator:
        decisions = evaluator.judge(facts)
    assert given(decisions) == [["leak"], []]
    assert held(decisions) == [[("high", HELD_REFERRAL)], [("high", HELD_REFERRAL)]]
    assert decisions[1].held("high").explanation == MSG_HELD_REFERRAL.format(
        subject="boiler", date="10 Jan 2026", rule="Leak"
    )
