"""Invalid rules are refused with a message on the offending field; the live version never changes."""

import pytest

from rules import services
from rules import spec as S
from rules.models import Rule, RulesetVersion
from rules.spec import RuleValidationError, spec_validate
from tests.rules.conftest import boiler_catalog, boiler_specs, cond, fired, make_spec, reading


def errors_of(spec):
    return spec_validate(spec)


def test_a_valid_spec_has_no_errors():
    assert errors_of(make_spec()) == {}


@pytest.mark.parametrize(
    ("change", "path", "message_start"),
    [
        ({"conditions": [cond("colour", "eq", "red")]}, "conditions.0.field", "“colour” is not a field of a reading"),
        ({"conditions": [cond("alarm", "gt", True)]}, "conditions.0.operator", "“is over” does not fit Alarm"),
        ({"conditions": [cond("room", "lt", "hall")]}, "conditions.0.operator", "“is under” does not fit Room"),
        ({"conditions": [cond("level", "in", ["1"])]}, "conditions.0.operator", "“is one of” does not fit Level"),
        ({"conditions": [cond("level", "gte", 11)]}, "conditions.0.value", "11 is outside the range of Level (0–10)"),
        (
            {"conditions": [cond("temperature", "lt", -51)]},
            "conditions.0.value",
            "-51 is outside the range of Temperature",
        ),
        ({"conditions": [cond("level", "gte", 2.5)]}, "conditions.0.value", S.MSG_NOT_INTEGER),
        ({"conditions": [cond("temperature", "gte", "warm")]}, "conditions.0.value", S.MSG_NOT_NUMBER),
        ({"conditions": [cond("alarm", "eq", "maybe")]}, "conditions.0.value", S.MSG_NOT_BOOLEAN),
        ({"conditions": [cond("serviced_on", "lt", "yesterday")]}, "conditions.0.value", S.MSG_NOT_DATE),
        (
            {"conditions": [cond("room", "eq", "garage")]},
            "conditions.0.value",
            "“garage” is not a possible value of Room",
        ),
        (
            {"conditions": [cond("room", "in", ["hall", "garage"])]},
            "conditions.0.value",
            "“garage” is not a possible value",
        ),
        ({"conditions": [cond("room", "in", [])]}, "conditions.0.value", "Give a value or pick a parameter"),
        ({"conditions": [cond("level", "gte")]}, "conditions.0.value", "Give a value or pick a parameter"),
        ({"conditions": [cond("level", "exists", 3)]}, "conditions.0.value", "“is recorded” takes no value"),
        ({"conditions": [cond("level", "gte", 3, parameter="x")]}, "conditions.0.value", S.MSG_VALUE_AND_PARAMETER),
        (
            {"conditions": [cond("level", "gte", parameter="nope")]},
            "conditions.0.parameter",
            "There is no parameter called “nope”",
        ),
        ({"conditions": [cond("level", "gte", step=2, value=1)]}, "conditions.0.step", "There is no event number 2"),
        ({"conditions": []}, "steps.0.fact_type", "Add at least one condition"),
        ({"steps": []}, "steps", S.MSG_NO_STEPS),
        ({"steps": [{"fact_type": "meter"}]}, "steps.0.fact_type", "“meter” is not an event type"),
        (
            {
                "pattern": "sequence",
                "window_hours": 0,
                "steps": [{"fact_type": "reading"}, {"fact_type": "visit"}],
                "conditions": [cond("level", "gt", 1), cond("minutes", "gt", 1, step=2)],
            },
            "window_hours",
            S.MSG_WINDOW,
        ),
        (
            {
                "pattern": "sequence",
                "window_hours": -5,
                "steps": [{"fact_type": "reading"}, {"fact_type": "visit"}],
                "conditions": [cond("level", "gt", 1), cond("minutes", "gt", 1, step=2)],
            },
            "window_hours",
            S.MSG_WINDOW,
        ),
        ({"pattern": "sequence", "window_hours": 5}, "steps", S.MSG_SEQUENCE_STEPS),
        ({"pattern": "count", "count": 1, "window_hours": 24}, "count", S.MSG_COUNT),
        ({"pattern": "count", "count": 3, "window_hours": None}, "window_hours", S.MSG_WINDOW),
        ({"key": "Pain Stop!"}, "key", S.MSG_KEY),
        ({"severity": "panic"}, "severity", "“panic” is not a severity"),
        ({"category": "money"}, "category", "“money” is not a category"),
        ({"message": "It is {colour}"}, "message", "The message names “colour”"),
        ({"message": "It is {temperature"}, "message", S.MSG_MESSAGE_FORMAT),
        ({"cooldown_days": -1}, "cooldown_days", S.MSG_COOLDOWN),
        (
            {
                "parameters": [{"name": "limit", "kind": "integer", "value": "11"}],
                "conditions": [cond("level", "gte", parameter="limit")],
            },
            "parameters.0.value",
            "11 is outside the range of Level",
        ),
        (
            {
                "parameters": [{"name": "limit", "kind": "boolean", "value": "true"}],
                "conditions": [cond("level", "gte", parameter="limit")],
            },
            "conditions.0.parameter",
            "Parameter “limit” is yes or no",
        ),
        (
            {
                "parameters": [{"name": "limit", "kind": "integer", "value": "x"}],
                "conditions": [cond("level", "gte", parameter="limit")],
            },
            "parameters.0.value",
            S.MSG_NOT_INTEGER,
        ),
        (
            {"parameters": [{"name": "unused", "kind": "integer", "value": "1"}]},
            "parameters.0.name",
            S.MSG_PARAMETER_UNUSED,
        ),
    ],
)
def test_invalid_spec_names_the_offending_field(change, path, message_start):
    errors = errors_of(make_spec(**change))
    assert path in errors, errors
    assert any(message.startswith(message_start) for message in errors[path]), errors[path]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (  # a refused value: the message's {limit} is not a second, wrong error
            {
                "parameters": [{"name": "limit", "kind": "integer", "value": "5.5"}],
                "conditions": [cond("level", "gte", parameter="limit")],
                "message": "Level {level} over {limit}",
            },
            "parameters.0.value",
            S.MSG_NOT_INTEGER,
        ),
        (  # out of range for both conditions that use it: said once
            {
                "parameters": [{"name": "limit", "kind": "integer", "value": "15"}],
                "conditions": [cond("level", "gte", parameter="limit"), cond("level", "lte", parameter="limit")],
                "message": "Level {level} over {limit}",
            },
            "parameters.0.value",
            "15 is outside the range of Level (0–10).",
        ),
        (  # too many alternatives in one group: said on the group's first condition only
            {"conditions": [cond("level", "eq", n) for n in range(S.ALTERNATIVES_MAX + 1)]},
            "conditions.0.group",
            S.MSG_TOO_MANY_ALTERNATIVES,
        ),
    ],
)
def test_one_mistake_gives_one_message(change, path, message):
    assert errors_of(make_spec(**change)) == {path: [message]}


def test_a_parameter_of_the_wrong_kind_is_named_by_its_label():
    spec = make_spec(
        parameters=[{"name": "limit", "label": "Highest level", "kind": "boolean", "value": "true"}],
        conditions=[cond("level", "gte", parameter="limit")],
    )
    assert errors_of(spec)["conditions.0.parameter"] == [
        S.MSG_PARAMETER_KIND.format(name="Highest level", kind="yes or no", field="Level", field_kind="a whole number")
    ]


@pytest.mark.django_db
def test_an_invalid_rule_is_not_saved_and_the_live_version_is_unchanged(publish):
    version = publish(make_spec())
    bad = make_spec(conditions=[cond("level", "gte", 99)])
    with pytest.raises(RuleValidationError) as refused:
        services.rule_save(spec=bad)
    assert "conditions.0.value" in refused.value.errors
    rule = Rule.objects.get(key="hot")
    assert rule.conditions.get().field == "temperature"  # draft untouched
    assert RulesetVersion.objects.get().number == version.number
    assert fired(reading(temperature=31)) == ["hot"]


@pytest.mark.django_db
def test_publishing_an_invalid_pack_is_refused_and_nothing_changes(publish):
    publish(make_spec())
    with pytest.raises(RuleValidationError) as refused:
        services.ruleset_publish(specs=[make_spec(), make_spec("other", conditions=[cond("colour", "eq", 1)])])
    assert "other: conditions.0.field" in refused.value.errors
    assert RulesetVersion.objects.count() == 1


def test_a_ruleset_is_checked_against_the_catalog_it_is_given():
    checked = services.ruleset_check(boiler_specs(), catalog=boiler_catalog())
    assert [spec["key"] for spec in checked] == ["high", "leak"]
    with pytest.raises(RuleValidationError) as refused:
        services.ruleset_check(boiler_specs())  # the registry's domain has no pressures
    assert "“pressure” is not an event type" in refused.value.errors["leak: steps.0.fact_type"][0]


def test_a_safety_critical_rule_is_defended_in_the_words_of_the_catalog_it_is_checked_against():
    leak = boiler_specs()[0]
    problems = S.spec_safety_problems({**leak, "refers": False}, leak, boiler_catalog())
    assert problems == {"refers": [S.MSG_SAFETY_SETTING.format(name="Leak", setting="Refers the boiler")]}
