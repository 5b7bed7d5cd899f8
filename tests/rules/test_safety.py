"""Safe packs: hostile numbers and oversized rulesets are refused everywhere with a message a
clinician reads, and a ruleset that fails a test evaluation is never published."""

from __future__ import annotations

import datetime as dt
import html
import json
import math

import pytest
from django.urls import reverse

from rules import services
from rules import spec as S
from rules.evaluation import HELD_COOLDOWN, Evaluator, timeline_judge
from rules.models import Rule, RulesetVersion
from rules.packs import MSG_PACK_INVALID, PackError, pack_read
from rules.selectors import ruleset_draft_settings
from rules.services import MSG_SMOKE_TEST, MSG_SMOKE_TEST_RULE
from rules.spec import (
    MAX_RULES_PER_FACT_TYPE,
    MSG_TOO_MANY_FOR_TYPE,
    MSG_TOO_MANY_RULES,
    RuleValidationError,
    spec_normalize,
    spec_validate,
)
from tests.rules.conftest import T0, cond, fired, make_spec, reading

IMPORT = reverse("admin:rules_rule_import")
PUBLISH = reverse("admin:rules_rule_publish")


def count_spec(**overrides) -> dict:
    fields = {"pattern": "count", "count": 3, "window_hours": 48, "conditions": [cond("temperature", "gt", 30)]}
    return make_spec("streak", **{**fields, **overrides})


def limit_spec(value, kind: str = "number", field: str = "temperature", step_type: str = "reading") -> dict:
    return make_spec(
        "limit",
        steps=[{"fact_type": step_type}],
        conditions=[cond(field, "gt", parameter="limit")],
        parameters=[{"name": "limit", "label": "Limit", "kind": kind, "value": value}],
        message="Over the limit",
    )


def alternatives(groups: int, size: int) -> list[dict]:
    """``groups`` "any of these" groups of ``size`` thresholds each, all met by a hot reading."""
    return [
        cond("temperature", "gt", size * (group - 1) + n, group=group)
        for group in range(1, groups + 1)
        for n in range(size)
    ]


def many(n: int, **overrides) -> list[dict]:
    return [make_spec(f"rule-{i}", conditions=[cond("temperature", "gt", i % 100)], **overrides) for i in range(n)]


# -- one rule: every number has bounds ------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        (make_spec(cooldown_days=999_999_999), "cooldown_days", S.MSG_COOLDOWN),
        (make_spec(cooldown_days=366), "cooldown_days", S.MSG_COOLDOWN),
        (make_spec(cooldown_days=math.nan), "cooldown_days", S.MSG_COOLDOWN),
        (make_spec(cooldown_days=2.5), "cooldown_days", S.MSG_COOLDOWN),
        (count_spec(window_hours=1e9), "window_hours", S.MSG_WINDOW_MAX),
        (count_spec(window_hours=2161), "window_hours", S.MSG_WINDOW_MAX),
        (count_spec(window_hours=math.inf), "window_hours", S.MSG_WINDOW_MAX),
        (count_spec(window_hours=math.nan), "window_hours", S.MSG_WINDOW),
        (count_spec(count=10**9), "count", S.MSG_COUNT_MAX),
        (count_spec(count=21), "count", S.MSG_COUNT_MAX),
        (count_spec(count=math.inf), "count", S.MSG_COUNT),
        (make_spec(priority=10**9), "priority", S.MSG_PRIORITY),
        (make_spec(priority=math.nan), "priority", S.MSG_PRIORITY),
        (make_spec(summary="x" * (S.SUMMARY_MAX + 1)), "summary", S.MSG_SUMMARY_LENGTH),
        (make_spec(conditions=alternatives(1, 25)), "conditions.0.group", S.MSG_TOO_MANY_ALTERNATIVES),
        (make_spec(conditions=[cond("room", "in", ["hall"] * 25)]), "conditions.0.value", S.MSG_TOO_MANY_VALUES),
        (limit_spec(1e300), "parameters.0.value", "1e+300 is outside the range of Temperature (-50–150)."),
        (
            limit_spec(1e300, field="distance", step_type="visit"),
            "parameters.0.value",
            S.MSG_NUMBER_TOO_LARGE.format(value="1e+300"),
        ),
        (
            make_spec(steps=[{"fact_type": "visit"}], conditions=[cond("distance", "lt", -1e12)]),
            "conditions.0.value",
            S.MSG_NUMBER_TOO_LARGE.format(value="-1000000000000"),
        ),
        (limit_spec(math.nan), "parameters.0.value", S.MSG_NOT_NUMBER),
        (limit_spec(math.inf), "parameters.0.value", S.MSG_NOT_NUMBER),
        (limit_spec("-Infinity"), "parameters.0.value", S.MSG_NOT_NUMBER),
        (limit_spec("NaN", kind="integer", field="level"), "parameters.0.value", S.MSG_NOT_INTEGER),
        (make_spec(conditions=[cond("temperature", "gt", "nan")]), "conditions.0.value", S.MSG_NOT_NUMBER),
    ],
)
def test_a_hostile_number_is_refused_with_a_message_on_its_field(spec, path, message):
    errors = spec_validate(spec)
    assert message in errors.get(path, []), errors


def test_the_largest_allowed_numbers_are_accepted_and_evaluate():
    specs = [
        make_spec("longest", cooldown_days=S.COOLDOWN_MAX_DAYS, priority=S.PRIORITY_MAX, summary="x" * S.SUMMARY_MAX),
        count_spec(count=S.COUNT_MAX, window_hours=S.WINDOW_MAX_HOURS),
        make_spec("choices", conditions=alternatives(1, S.ALTERNATIVES_MAX)),
    ]
    for spec in specs:
        assert spec_validate(spec) == {}, spec["key"]
    facts = [reading(T0 + dt.timedelta(hours=n), temperature=35) for n in range(S.COUNT_MAX)]
    with Evaluator(specs=specs, settings={"advice_limit": S.ADVICE_LIMIT_MAX}) as evaluator:
        decisions = evaluator.judge(facts)
    assert [m.rule_key for m in decisions[0].given] == ["choices", "longest"]  # lower priority numbers first
    assert [m.rule_key for m in decisions[-1].given] == ["choices", "streak"]
    assert decisions[-1].held("longest").reason == HELD_COOLDOWN


@pytest.mark.parametrize("value", [0, 21, 10**9, 2.5, math.nan, "3", True])
def test_a_hostile_advice_limit_is_refused(value):
    assert S.settings_validate({"advice_limit": value}) == {"advice_limit": [S.MSG_ADVICE_LIMIT]}


# -- a whole ruleset: the engine's limits -------------------------------------------------------------
def test_a_ruleset_of_300_rules_is_refused():
    with pytest.raises(RuleValidationError) as refused:
        services.ruleset_check(many(300), smoke_test=False)
    assert refused.value.errors == {"ruleset: rules": [MSG_TOO_MANY_RULES.format(max=100, count=300)]}


def test_switched_off_rules_do_not_count_towards_the_limits():
    assert len(services.ruleset_check(many(60) + many(300, enabled=False)[60:])) == 300


def test_more_than_60_rules_on_one_kind_of_event_are_refused():
    with pytest.raises(RuleValidationError) as refused:
        services.ruleset_check(many(65), smoke_test=False)
    message = MSG_TOO_MANY_FOR_TYPE.format(max=MAX_RULES_PER_FACT_TYPE, label="Reading", count=65)
    assert refused.value.errors == {"ruleset: rules": [message]}


def test_60_rules_on_one_kind_of_event_evaluate():
    specs = services.ruleset_check(many(60))
    with Evaluator(specs=specs, settings={"advice_limit": 20}, checked=True) as evaluator:
        assert len(evaluator.judge([reading(temperature=99)])[0].given) == 20


def test_a_hostile_rule_in_a_ruleset_names_the_rule_and_the_field():
    with pytest.raises(RuleValidationError) as refused:
        services.ruleset_check([make_spec(), count_spec(window_hours=1e9, count=10**9)], settings={"advice_limit": 0})
    assert refused.value.errors == {
        "ruleset: advice_limit": [S.MSG_ADVICE_LIMIT],
        "streak: window_hours": [S.MSG_WINDOW_MAX],
        "streak: count": [S.MSG_COUNT_MAX],
    }
    assert S.error_place("streak: window_hours") == "Rule “streak”, within (hours)"
    assert S.error_place("ruleset: advice_limit") == "The ruleset, most pieces of advice per event"


# -- saving, importing and publishing refuse them; the live version keeps working -------------------
@pytest.mark.django_db
def test_saving_a_hostile_rule_is_refused_and_nothing_changes(publish):
    publish(make_spec())
    with pytest.raises(RuleValidationError) as refused:
        services.rule_save(spec=make_spec(cooldown_days=999_999_999))
    assert refused.value.errors == {"cooldown_days": [S.MSG_COOLDOWN]}
    with pytest.raises(RuleValidationError):
        services.ruleset_settings_save(settings={"advice_limit": 10**9})
    assert Rule.objects.get().cooldown_days == 0 and ruleset_draft_settings() == {"advice_limit": 3}
    assert fired(reading(temperature=31)) == ["hot"]


def pack_text(rules: list[dict], **extra) -> str:
    return json.dumps({"format": "rules-pack", "format_version": 2, "rules": rules, **extra})


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (pack_text([make_spec(cooldown_days=999_999_999)]), "hot: cooldown_days", S.MSG_COOLDOWN),
        (pack_text([count_spec(window_hours=1e9)]), "streak: window_hours", S.MSG_WINDOW_MAX),
        (pack_text([count_spec(count=10**9)]), "streak: count", S.MSG_COUNT_MAX),
        (pack_text(many(300)), "ruleset: rules", MSG_TOO_MANY_RULES.format(max=100, count=300)),
        (
            pack_text(many(65)),
            "ruleset: rules",
            MSG_TOO_MANY_FOR_TYPE.format(max=MAX_RULES_PER_FACT_TYPE, label="Reading", count=65),
        ),
        (
            pack_text([make_spec(conditions=alternatives(1, 25))]),
            "hot: conditions.0.group",
            S.MSG_TOO_MANY_ALTERNATIVES,
        ),
        (pack_text([limit_spec(1e300)]), "limit: parameters.0.value", "1e+300 is outside the range of Temperature"),
        # JSON as Python writes it may carry NaN and Infinity: refused like any other bad number.
        (pack_text([count_spec(window_hours=math.inf)]), "streak: window_hours", S.MSG_WINDOW_MAX),
        (pack_text([limit_spec(math.nan)]), "limit: parameters.0.value", S.MSG_NOT_NUMBER),
        (pack_text([make_spec()], settings={"advice_limit": 1e9}), "ruleset: advice_limit", S.MSG_ADVICE_LIMIT),
    ],
)
def test_importing_a_hostile_pack_is_refused_with_the_rule_and_field(text, where, message):
    with pytest.raises(PackError) as refused:
        pack_read(text)
    assert refused.value.message == MSG_PACK_INVALID
    assert any(m.startswith(message) for m in refused.value.errors.get(where, [])), refused.value.errors


@pytest.mark.django_db
def test_the_admin_import_refuses_a_hostile_pack_in_words_and_changes_nothing(admin_client, publish):
    publish(make_spec())
    upload = _upload(pack_text([make_spec(cooldown_days=999_999_999), count_spec(window_hours=1e9)]))
    page = html.unescape(admin_client.post(IMPORT, {"pack": upload}).content.decode())
    assert MSG_PACK_INVALID in page
    assert f"<b>Rule “hot”, cooldown (days)</b>: {S.MSG_COOLDOWN}" in page
    assert f"<b>Rule “streak”, within (hours)</b>: {S.MSG_WINDOW_MAX}" in page
    assert "cooldown_days" not in page and "window_hours" not in page  # no code words
    assert Rule.objects.get().cooldown_days == 0 and not Rule.objects.filter(key="streak").exists()
    assert fired(reading(temperature=31)) == ["hot"]


def _upload(text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("pack.json", text.encode(), content_type="application/json")


# -- the engine's own limits and the test evaluation before publishing ------------------------------
def combinations_beyond_the_engine() -> dict:
    """Valid rule by rule (every group within bounds), yet 20^4 combinations of alternatives."""
    return make_spec("many-ways", conditions=alternatives(4, S.ALTERNATIVES_MAX), message="Very hot")


def test_a_rule_whose_alternatives_combine_beyond_the_engine_is_refused_before_it_reaches_it():
    assert spec_validate(combinations_beyond_the_engine()) == {}
    with pytest.raises(RuleValidationError) as refused:
        services.ruleset_check([combinations_beyond_the_engine()])
    assert refused.value.errors == {
        "many-ways: conditions": [S.MSG_TOO_MANY_COMBINATIONS.format(max=S.MAX_COMBINATIONS_PER_RULE, count=20**4)]
    }
    # The bound is real: loaded anyway, the engine gives up on a reading that meets them all.
    with Evaluator(specs=[spec_normalize(combinations_beyond_the_engine())], checked=True) as evaluator:
        assert evaluator.judge([reading(temperature=10)])[0].given == []
        with pytest.raises(Exception, match="303"):
            evaluator.judge([reading(temperature=99)])


@pytest.fixture
def engine_fails_on(monkeypatch):
    """Make the engine fail whenever a ruleset holding the given rule key is evaluated (a failure
    that validation cannot foresee, as an upstream bug would be)."""
    from rules import evaluation

    real = evaluation.evaluate

    def arm(key: str) -> None:
        def evaluate(loaded, items):
            if key in loaded.compiled.rules:
                raise RuntimeError("engine failure")
            return real(loaded, items)

        monkeypatch.setattr(evaluation, "evaluate", evaluate)

    return arm


@pytest.mark.django_db
def test_publishing_a_ruleset_that_fails_the_test_evaluation_is_refused_and_the_live_version_keeps_working(
    publish, engine_fails_on
):
    live = publish(make_spec())
    engine_fails_on("many-ways")
    with pytest.raises(RuleValidationError) as refused:
        services.ruleset_publish(specs=[make_spec(), make_spec("many-ways")])
    ruleset_message = refused.value.errors["ruleset: test evaluation"][0]
    assert ruleset_message == MSG_SMOKE_TEST.format(error="RuntimeError: engine failure")
    rule_message = refused.value.errors["many-ways: test evaluation"][0]
    assert rule_message == MSG_SMOKE_TEST_RULE.format(error="RuntimeError: engine failure")
    assert set(refused.value.errors) == {"ruleset: test evaluation", "many-ways: test evaluation"}
    assert RulesetVersion.objects.get() == live
    assert fired(reading(temperature=99)) == ["hot"]


@pytest.mark.django_db
def test_the_admin_refuses_to_publish_a_draft_that_fails_the_test_evaluation(admin_client, publish, engine_fails_on):
    publish(make_spec())
    services.rule_save(spec=make_spec("many-ways"))
    engine_fails_on("many-ways")
    page = html.unescape(admin_client.post(PUBLISH, {"comment": "more ways"}).content.decode())
    assert MSG_SMOKE_TEST.split(" ({error})")[0] in page
    assert "Rule “many-ways”, test evaluation: This rule fails the test evaluation on its own" in page
    assert RulesetVersion.objects.count() == 1
    assert fired(reading(temperature=99)) == ["hot"]


def test_importing_a_pack_that_fails_the_test_evaluation_is_refused(engine_fails_on):
    engine_fails_on("many-ways")
    with pytest.raises(PackError) as refused:
        pack_read(pack_text([make_spec(), make_spec("many-ways")]))
    assert "many-ways: test evaluation" in refused.value.errors


@pytest.mark.django_db
def test_when_only_the_combination_fails_the_refusal_names_no_single_rule(publish, monkeypatch):
    """A failure no single rule causes on its own (here: a simulated one) is the ruleset's alone."""
    from rules.internal import sample

    real = sample.ruleset_smoke_test

    def failing_together(specs, *, settings, catalog):
        if len(specs) > 1:
            raise RuntimeError("simulated failure")
        return real(specs, settings=settings, catalog=catalog)

    monkeypatch.setattr(services, "ruleset_smoke_test", failing_together)
    live = publish(make_spec())
    with pytest.raises(RuleValidationError) as refused:
        services.ruleset_publish(specs=[make_spec(), make_spec("other")])
    assert refused.value.errors == {
        "ruleset: test evaluation": [MSG_SMOKE_TEST.format(error="RuntimeError: simulated failure")]
    }
    assert RulesetVersion.objects.get() == live


# -- settings are published and rolled back with the rules ----------------------------------------
@pytest.mark.django_db
def test_publish_stores_the_draft_settings_and_rollback_restores_them(publish):
    first = publish(make_spec(), make_spec("also-hot"))
    assert first.settings == {"advice_limit": 3}
    services.ruleset_settings_save(settings={"advice_limit": 1})
    second = services.ruleset_publish(comment="one per event")
    assert second.settings == {"advice_limit": 1}
    fact = reading(temperature=40)
    assert [m.rule_key for m in timeline_judge(facts=[fact])[0].given] == ["also-hot"]
    restored = services.ruleset_rollback(version=first.number)
    assert restored.settings == {"advice_limit": 3} and ruleset_draft_settings() == {"advice_limit": 3}
    assert [m.rule_key for m in timeline_judge(facts=[fact])[0].given] == ["also-hot", "hot"]
