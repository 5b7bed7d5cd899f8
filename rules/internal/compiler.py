"""Compile rule specs into durable_rules' JSON rulesets: a pure function of plain data.

Two rulesets come out of one rule version. Rules about one event go into the "single"
ruleset, which only ever sees the new fact: history cannot change their answer, so it is
never asserted there. Each step of a pattern across events becomes a one-fact rule named
``<key>#<step>`` in the "steps" ruleset, which sees the new fact with the subject's history
inside the widest window; the adapter then chains the facts that satisfied each step in
time order within the pattern's window (``chains``), or, for "days in a row", finds one such
fact on each of the days that end on the new fact's own local day (``day_streaks``).

Why the engine does not join the facts itself: durable_rules 2.0.28 corrupts memory when
facts that completed a multi-fact action are retracted (the completed action's frame is
freed while the facts still point at it; ``retract_facts`` then writes past the frame).
A process doing that dies with SIGSEGV after a few hundred evaluations (reproduced by
``python -m bench.crash_repro``). Conditions, where all the clinical thresholds are, stay
in the engine; only the ordering and the time window are applied by the adapter.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.internal.render import MatchedCondition, placeholders
from rules.registry import ANY_FACT_TYPE, DATE, TEXT, FieldSpec, Registry
from rules.spec import COUNT, DAYS, LIST_OPERATORS, NEGATIONS, REFERRAL_PLACEHOLDERS, SINGLE, settings_normalize

COMPARISONS = {"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


@dataclass(frozen=True)
class RuleMeta:
    """What evaluation and the decision policy need of one rule."""

    key: str
    name: str
    category: str
    severity: str
    message: str
    source_label: str
    cooldown_days: int
    pattern: str
    parameters: Mapping[str, Any]
    placeholders: tuple[str, ...] = ()
    summary: str = ""
    summary_placeholders: tuple[str, ...] = ()
    holds_back_lower: bool = False
    refers: bool = False
    priority: int = 100
    rank: int = 0  # the severity's place, most urgent first (0)
    # The rule's own settings, which messages may name ({window_days}, {count} ...).
    settings: Mapping[str, Any] = field(default_factory=dict)
    follows_referral: bool = False  # under referral, as urgent as the referral when that is more urgent
    indicator: str = ""  # the rule's own card indicator; "": its severity's
    # Conditions on the decision policy's state (FieldSpec.state), applied by the policy: groups
    # of alternatives (field, operator, value), every group must hold.
    state_groups: tuple[tuple[tuple[str, str, Any], ...], ...] = ()
    # The judged fact's conditions by group, for the {matched} placeholder.
    matched: tuple[tuple[MatchedCondition, ...], ...] = ()
    uses_referral: bool = False  # its message or summary names the referral in force
    # Severity -> the indicator of its advice when the rule sets none (shared by a version's rules).
    indicators: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """What the decision policy needs of a version besides its matches (rules.evaluation.decide)."""

    advice_limit: int
    referral_floor: int  # under referral, only advice of this rank or more urgent is given
    referring: frozenset[str]  # the rules that refer: a clearance ends their cooldowns
    severities: tuple[str, ...]  # most urgent first
    indicators: Mapping[str, str] = field(default_factory=dict)  # severity -> default indicator
    subject: str = "subject"  # what the facts are about, as its explanations name it

    def rank(self, severity: str) -> int:
        return self.severities.index(severity) if severity in self.severities else len(self.severities)


@dataclass(frozen=True)
class CompiledRuleset:
    """What the engine adapter needs to evaluate one rule version."""

    single_json: str
    pattern_json: str  # one-fact rules "<key>#<step>", one per step of every pattern
    rules: Mapping[str, RuleMeta]
    # Fields each fact type must carry into the engine (facts are trimmed to these).
    single_fields: Mapping[str, tuple[str, ...]]
    pattern_fields: Mapping[str, tuple[str, ...]]
    date_fields: frozenset[str]
    history_window: dt.timedelta
    history_types: frozenset[str] = field(default_factory=frozenset)
    # pattern key -> (the step each position of the chain must satisfy, window in seconds);
    # a sequence of 3 steps is (1, 2, 3), "3 of these" is (1, 1, 1).
    chains: Mapping[str, tuple[tuple[int, ...], float]] = field(default_factory=dict)
    # "days in a row" pattern key -> how many days (one fact of its step on each, local days).
    day_streaks: Mapping[str, int] = field(default_factory=dict)
    # The ruleset's own settings (RULESET_SETTINGS), e.g. the most advice per event.
    settings: Mapping[str, Any] = field(default_factory=dict)
    # field name -> {choice code: label}, so that messages never show a code.
    choice_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    policy: Policy = field(default_factory=lambda: Policy(1, 0, frozenset(), ()))

    @functools.cached_property
    def history_fields(self) -> frozenset[str]:
        """The fields a pattern reads of a fact other than the one judged: its steps'
        conditions, and its messages' placeholders (filled from the other matched facts when
        the judged one lacks them)."""
        fields = {name for names in self.pattern_fields.values() for name in names}
        for meta in self.rules.values():
            if meta.pattern != SINGLE:
                fields.update(meta.placeholders, meta.summary_placeholders)
        return frozenset(fields)


def _condition_value(condition: Mapping[str, Any], parameters: Mapping[str, Any], is_date: bool) -> Any:
    value = parameters[condition["parameter"]] if condition.get("parameter") else condition.get("value")
    if condition["operator"] in LIST_OPERATORS and isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if is_date and value is not None:
        value = dt.date.fromisoformat(value).toordinal()
    return value


def _operator_value(
    condition: Mapping[str, Any], parameters: Mapping[str, Any], spec: FieldSpec | None
) -> tuple[str, Any]:
    """The condition's operator (its negation applied) and the value it compares with."""
    operator = condition["operator"]
    if condition.get("negate"):
        operator = NEGATIONS[operator]
    return operator, _condition_value(condition, parameters, spec is not None and spec.kind == DATE)


def _compile_condition(
    condition: Mapping[str, Any], parameters: Mapping[str, Any], fact_type: str, catalog: Registry
) -> dict:
    name = condition["field"]
    operator, value = _operator_value(condition, parameters, catalog.fact_type(fact_type).field(name))
    if operator == "eq":
        return {name: value}
    if operator == "ne":
        return {"$neq": {name: value}}
    if operator in COMPARISONS:
        return {COMPARISONS[operator]: {name: value}}
    if operator == "in":
        return {"$or": [{name: item} for item in value]} if len(value) > 1 else {name: value[0]}
    if operator == "not_in":
        return {"$and": [{"$neq": {name: item}} for item in value]}
    if operator == "exists":
        return {"$ex": {name: 1}}
    if operator == "missing":
        return {"$nex": {name: 1}}
    raise ValueError(f"Unknown operator {operator!r}")


def _is_state(condition: Mapping[str, Any], fact_type: str, catalog: Registry) -> bool:
    found = catalog.fact_type(fact_type).field(condition["field"])
    return found is not None and found.state


def _step_terms(
    spec: Mapping[str, Any], step: int, fact_type: str, parameters: Mapping[str, Any], catalog: Registry
) -> list[dict]:
    groups: dict[int, list[dict]] = {}
    for condition in spec["conditions"]:
        if condition["step"] == step and not _is_state(condition, fact_type, catalog):
            groups.setdefault(condition["group"], []).append(
                _compile_condition(condition, parameters, fact_type, catalog)
            )
    # A step of any type tests no type; the engine needs one test at least, which every fact passes.
    terms: list[dict] = [{"type": fact_type} if fact_type != ANY_FACT_TYPE else {"$ex": {"type": 1}}]
    for group in sorted(groups):
        alternatives = groups[group]
        terms.append(alternatives[0] if len(alternatives) == 1 else {"$or": alternatives})
    return terms


STEP_SEPARATOR = "#"


def _compile_single(spec: Mapping[str, Any], catalog: Registry) -> dict:
    parameters = {p["name"]: p["value"] for p in spec["parameters"]}
    return {"all": [{"m": {"$and": _step_terms(spec, 1, spec["steps"][0]["fact_type"], parameters, catalog)}}]}


def _compile_steps(spec: Mapping[str, Any], catalog: Registry) -> dict[str, dict]:
    """Each step of a pattern as a one-fact rule ``<key>#<step>``."""
    parameters = {p["name"]: p["value"] for p in spec["parameters"]}
    return {
        f"{spec['key']}{STEP_SEPARATOR}{number}": {
            "all": [{"m": {"$and": _step_terms(spec, number, step["fact_type"], parameters, catalog)}}]
        }
        for number, step in enumerate(spec["steps"], start=1)
    }


def _chain(spec: Mapping[str, Any]) -> tuple[tuple[int, ...], float]:
    steps = (1,) * spec["count"] if spec["pattern"] == COUNT else tuple(range(1, len(spec["steps"]) + 1))
    return steps, float(spec["window_hours"]) * 3600


def _history_hours(spec: Mapping[str, Any]) -> float:
    """How far back a pattern looks from the fact it is judged for. N local days in a row end on
    the new fact's day and begin N - 1 days before it: one day more covers the hours of the first
    day and offsets that differ between the facts."""
    if spec["pattern"] == DAYS:
        return float((spec["count"] + 1) * 24)
    return float(spec["window_hours"])


def _fields_used(specs: Sequence[Mapping[str, Any]], catalog: Registry) -> dict[str, tuple[str, ...]]:
    """The fields each fact type must carry into the engine (a step of any type: every type)."""
    used: dict[str, set[str]] = {}
    for spec in specs:
        for condition in spec["conditions"]:
            fact_type = spec["steps"][condition["step"] - 1]["fact_type"]
            if _is_state(condition, fact_type, catalog):
                continue
            for name in catalog.fact_types_matched(fact_type):
                used.setdefault(name, set()).add(condition["field"])
        for step in spec["steps"]:
            for name in catalog.fact_types_matched(step["fact_type"]):
                used.setdefault(name, set())
    return {name: tuple(sorted(fields)) for name, fields in sorted(used.items())}


def _state_groups(spec: Mapping[str, Any], catalog: Registry) -> tuple[tuple[tuple[str, str, Any], ...], ...]:
    parameters = {p["name"]: p["value"] for p in spec["parameters"]}
    fact_type = spec["steps"][-1]["fact_type"]
    groups: dict[int, list[tuple[str, str, Any]]] = {}
    for condition in spec["conditions"]:
        if condition["step"] == len(spec["steps"]) and _is_state(condition, fact_type, catalog):
            operator, value = _operator_value(condition, parameters, None)
            groups.setdefault(condition["group"], []).append((condition["field"], operator, value))
    return tuple(tuple(groups[group]) for group in sorted(groups))


def _matched(spec: Mapping[str, Any], catalog: Registry) -> tuple[tuple[MatchedCondition, ...], ...]:
    """The judged fact's (the last step's) conditions on its own fields, by group."""
    parameters = {p["name"]: p["value"] for p in spec["parameters"]}
    step = len(spec["steps"])
    fact_type = catalog.fact_type(spec["steps"][-1]["fact_type"])
    groups: dict[int, list[MatchedCondition]] = {}
    for condition in spec["conditions"]:
        found = fact_type.field(condition["field"]) if fact_type else None
        if condition["step"] != step or found is None or found.state:
            continue
        operator, value = _operator_value(condition, parameters, found)
        groups.setdefault(condition["group"], []).append(
            MatchedCondition(
                field=found.name,
                operator=operator,
                value=value,
                kind=found.kind,
                words=found.in_words,
                unit=found.unit,
            )
        )
    return tuple(tuple(groups[group]) for group in sorted(groups))


def _rule_settings(spec: Mapping[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {"cooldown_days": spec["cooldown_days"]}
    if spec["pattern"] not in (SINGLE, DAYS):
        hours = float(spec["window_hours"])
        settings["window_hours"] = int(hours) if hours.is_integer() else hours
        days = hours / 24
        settings["window_days"] = int(days) if days.is_integer() else round(days, 1)
    if spec["pattern"] in (COUNT, DAYS):
        settings["count"] = spec["count"]
    return settings


def ruleset_compile(
    specs: Sequence[Mapping[str, Any]], *, catalog: Registry, settings: Mapping[str, Any] | None = None
) -> CompiledRuleset:
    """Compile normalized specs (disabled ones are left out) against ``catalog``, the registry of
    fact types they were validated with. Same specs, catalog and settings: same output."""
    enabled = sorted((s for s in specs if s["enabled"]), key=lambda s: s["key"])
    singles = [s for s in enabled if s["pattern"] == SINGLE]
    patterns = [s for s in enabled if s["pattern"] != SINGLE]
    date_fields = {
        name for fact_type in catalog.fact_types() for name, spec in fact_type.fields.items() if spec.kind == DATE
    }
    choice_labels = {
        name: {code: spec.choice_label(code) for code in spec.choices}
        for fact_type in catalog.fact_types()
        for name, spec in fact_type.fields.items()
        if spec.kind == TEXT and spec.choices
    }
    ranks = {choice.code: index for index, choice in enumerate(catalog.severities())}
    window = max((_history_hours(s) for s in patterns), default=0.0)
    settings = settings_normalize(settings)
    policy = Policy(
        advice_limit=settings["advice_limit"],
        referral_floor=catalog.referral_floor_rank(),
        referring=frozenset(s["key"] for s in enabled if s.get("refers")),
        severities=tuple(ranks),
        indicators=catalog.indicator_defaults(),
        subject=catalog.subject()[0],
    )
    return CompiledRuleset(
        single_json=json.dumps({s["key"]: _compile_single(s, catalog) for s in singles}, sort_keys=True),
        pattern_json=json.dumps(
            {k: v for s in patterns for k, v in _compile_steps(s, catalog).items()}, sort_keys=True
        ),
        rules={
            s["key"]: RuleMeta(
                key=s["key"],
                name=s["name"],
                category=s["category"],
                severity=s["severity"],
                message=s["message"],
                source_label=s["source_label"],
                cooldown_days=s["cooldown_days"],
                pattern=s["pattern"],
                parameters={p["name"]: p["value"] for p in s["parameters"]},
                placeholders=placeholders(s["message"]),
                summary=s.get("summary") or "",
                summary_placeholders=placeholders(s.get("summary") or ""),
                holds_back_lower=bool(s.get("holds_back_lower")),
                refers=bool(s.get("refers")),
                priority=int(s.get("priority", 100)),
                rank=ranks.get(s["severity"], len(ranks)),
                settings=_rule_settings(s),
                follows_referral=bool(s.get("follows_referral")),
                indicator=s.get("indicator") or "",
                state_groups=_state_groups(s, catalog),
                matched=_matched(s, catalog),
                indicators=policy.indicators,
                uses_referral=bool(
                    set(REFERRAL_PLACEHOLDERS) & set(placeholders(s["message"]) + placeholders(s.get("summary") or ""))
                ),
            )
            for s in enabled
        },
        single_fields=_fields_used(singles, catalog),
        pattern_fields=_fields_used(patterns, catalog),
        date_fields=frozenset(date_fields),
        history_window=dt.timedelta(hours=window),
        history_types=frozenset(
            name for s in patterns for step in s["steps"] for name in catalog.fact_types_matched(step["fact_type"])
        ),
        chains={s["key"]: _chain(s) for s in patterns if s["pattern"] != DAYS},
        day_streaks={s["key"]: s["count"] for s in patterns if s["pattern"] == DAYS},
        settings=settings,
        choice_labels=choice_labels,
        policy=policy,
    )
