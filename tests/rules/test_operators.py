"""Every operator on every field kind it fits: one fact that matches and one that does not."""

import pytest

from rules.internal.compiler import ruleset_compile
from rules.internal.engine import DurableRuleset
from rules.registry import registry
from rules.spec import OPERATORS, spec_normalize, spec_validate
from tests.rules.conftest import cond, fired, make_spec, reading

# (field, operator, value, data that matches, data that does not)
CASES = [
    ("temperature", "eq", 21.5, {"temperature": 21.5}, {"temperature": 21.6}),
    ("temperature", "ne", 21.5, {"temperature": 20}, {"temperature": 21.5}),
    ("temperature", "lt", 0, {"temperature": -0.5}, {"temperature": 0}),
    ("temperature", "lte", 0, {"temperature": 0}, {"temperature": 0.1}),
    ("temperature", "gt", 30, {"temperature": 30.1}, {"temperature": 30}),
    ("temperature", "gte", 30, {"temperature": 30}, {"temperature": 29.9}),
    ("temperature", "exists", None, {"temperature": 1}, {"level": 1}),
    ("temperature", "missing", None, {"level": 1}, {"temperature": 1}),
    ("level", "eq", 5, {"level": 5}, {"level": 4}),
    ("level", "ne", 5, {"level": 4}, {"level": 5}),
    ("level", "lt", 5, {"level": 4}, {"level": 5}),
    ("level", "lte", 5, {"level": 5}, {"level": 6}),
    ("level", "gt", 5, {"level": 6}, {"level": 5}),
    ("level", "gte", 5, {"level": 5}, {"level": 4}),
    ("level", "exists", None, {"level": 0}, {"temperature": 0}),
    ("level", "missing", None, {"temperature": 0}, {"level": 0}),
    ("alarm", "eq", True, {"alarm": True}, {"alarm": False}),
    ("alarm", "eq", False, {"alarm": False}, {"alarm": True}),
    ("alarm", "ne", True, {"alarm": False}, {"alarm": True}),
    ("alarm", "exists", None, {"alarm": False}, {"level": 1}),
    ("alarm", "missing", None, {"level": 1}, {"alarm": False}),
    ("room", "eq", "hall", {"room": "hall"}, {"room": "attic"}),
    ("room", "ne", "hall", {"room": "attic"}, {"room": "hall"}),
    ("room", "in", ["hall", "attic"], {"room": "attic"}, {"room": "kitchen"}),
    ("room", "not_in", ["hall", "attic"], {"room": "kitchen"}, {"room": "hall"}),
    ("room", "exists", None, {"room": "hall"}, {"level": 1}),
    ("room", "missing", None, {"level": 1}, {"room": "hall"}),
    ("serviced_on", "eq", "2026-01-05", {"serviced_on": "2026-01-05"}, {"serviced_on": "2026-01-06"}),
    ("serviced_on", "ne", "2026-01-05", {"serviced_on": "2026-01-06"}, {"serviced_on": "2026-01-05"}),
    ("serviced_on", "lt", "2026-01-05", {"serviced_on": "2025-12-31"}, {"serviced_on": "2026-01-05"}),
    ("serviced_on", "lte", "2026-01-05", {"serviced_on": "2026-01-05"}, {"serviced_on": "2026-01-06"}),
    ("serviced_on", "gt", "2026-01-05", {"serviced_on": "2026-02-01"}, {"serviced_on": "2026-01-05"}),
    ("serviced_on", "gte", "2026-01-05", {"serviced_on": "2026-01-05"}, {"serviced_on": "2026-01-04"}),
    ("serviced_on", "exists", None, {"serviced_on": "2026-01-05"}, {"level": 1}),
    ("serviced_on", "missing", None, {"level": 1}, {"serviced_on": "2026-01-05"}),
    ("readings_today", "gte", 3, {"readings_today": 3}, {"readings_today": 2}),
]
IDS = [f"{field}-{op}-{value}" for field, op, value, *_ in CASES]


def test_every_operator_is_covered_for_every_kind_it_fits():
    covered = {(field, op) for field, op, *_ in CASES}
    kinds = {"temperature": "number", "level": "integer", "alarm": "boolean", "room": "text", "serviced_on": "date"}
    for op, (_, fits, _) in OPERATORS.items():
        for field, kind in kinds.items():
            if kind in fits:
                assert (field, op) in covered, f"no case for {op} on a {kind} field"


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "operator", "value", "matching", "other"), CASES, ids=IDS)
def test_operator_matches_and_does_not_match(publish, field, operator, value, matching, other):
    publish(make_spec(conditions=[cond(field, operator, value)], message="ok"))
    assert fired(reading(**matching)) == ["hot"]
    assert fired(reading(**other)) == []


COMPARISON_CASES = [case for case in CASES if case[1] not in ("exists", "missing")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "operator", "value", "matching", "other"),
    COMPARISON_CASES,
    ids=[f"{f}-{o}-{v}" for f, o, v, *_ in COMPARISON_CASES],
)
def test_negated_comparison_matches_the_opposite_when_the_field_is_recorded(
    publish, field, operator, value, matching, other
):
    publish(make_spec(conditions=[cond(field, operator, value, negate=True)], message="ok"))
    assert fired(reading(**matching)) == []
    assert fired(reading(**other)) == ["hot"]


@pytest.mark.parametrize(("field", "operator", "value", "matching", "other"), CASES, ids=IDS)
def test_a_rule_that_passes_validation_compiles_and_loads(field, operator, value, matching, other):
    for negate in (False, True):
        spec = make_spec(conditions=[cond(field, operator, value, negate=negate)], message="ok")
        assert spec_validate(spec) == {}
        compiled = ruleset_compile([spec_normalize(spec)], catalog=registry)
        DurableRuleset(compiled.single_json).close()


@pytest.mark.django_db
def test_a_comparison_never_matches_a_missing_field(publish):
    publish(make_spec(conditions=[cond("level", "ne", 5)], message="ok"))
    assert fired(reading(temperature=1)) == []


@pytest.mark.django_db
def test_a_parameter_supplies_the_value_and_changing_it_changes_the_outcome(publish):
    spec = make_spec(
        conditions=[cond("temperature", "gte", parameter="limit")],
        parameters=[{"name": "limit", "label": "Limit", "kind": "number", "value": "30", "unit": "°C"}],
        message="{temperature} is at least {limit}",
    )
    publish(spec)
    assert fired(reading(temperature=31)) == ["hot"]
    spec["parameters"][0]["value"] = "32"
    publish(spec)
    assert fired(reading(temperature=31)) == []


@pytest.mark.django_db
def test_groups_combine_all_of_any(publish):
    # level <= 3 AND (temperature > 30 OR alarm is true)
    publish(
        make_spec(
            conditions=[
                cond("level", "lte", 3, group=1),
                cond("temperature", "gt", 30, group=2),
                cond("alarm", "eq", True, group=2),
            ],
            message="ok",
        )
    )
    assert fired(reading(level=2, temperature=35)) == ["hot"]
    assert fired(reading(level=2, alarm=True)) == ["hot"]
    assert fired(reading(level=2, temperature=35, alarm=True)) == ["hot"]  # once, not once per branch
    assert fired(reading(level=5, temperature=35, alarm=True)) == []
    assert fired(reading(level=2, temperature=20, alarm=False)) == []


@pytest.mark.django_db
def test_every_rule_that_applies_fires_not_only_the_first(publish):
    publish(
        make_spec("hot", conditions=[cond("temperature", "gt", 30)], message="a"),
        make_spec("alarm-on", conditions=[cond("alarm", "eq", True)], message="b", severity="note", category="comfort"),
        make_spec("in-hall", conditions=[cond("room", "eq", "hall")], message="c"),
    )
    assert sorted(fired(reading(temperature=40, alarm=True, room="hall"))) == ["alarm-on", "hot", "in-hall"]


@pytest.mark.django_db
def test_message_is_rendered_with_the_matched_values_and_parameters(publish):
    publish(
        make_spec(
            conditions=[cond("temperature", "gte", parameter="limit")],
            parameters=[{"name": "limit", "label": "Limit", "kind": "number", "value": "30", "unit": "°C"}],
            message="It was {temperature} °C in the {room}, limit {limit}.",
        )
    )
    from rules.evaluation import facts_evaluate

    match = facts_evaluate(fact=reading(temperature=31.5, room="hall")).matches[0]
    assert match.message == "It was 31.5 °C in the hall, limit 30."
    assert match.version == 1 and match.severity == "urgent" and match.category == "safety"


@pytest.mark.django_db
def test_disabled_rules_do_not_fire(publish):
    publish(make_spec(enabled=False))
    assert fired(reading(temperature=99)) == []


@pytest.mark.django_db
def test_nothing_published_means_nothing_fires(db):
    assert fired(reading(temperature=99)) == []
