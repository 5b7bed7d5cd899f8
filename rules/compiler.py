"""Compile rule specs into durable_rules' JSON rulesets: a pure function of plain data.

Two rulesets come out of one rule version. Rules about one event go into the "single"
ruleset, which only ever sees the new fact: history cannot change their answer, so it is
never asserted there. Patterns across events go into the "pattern" ruleset, which sees the
new fact with the member's history inside the widest window. Every fact carries engine
fields: ``_g`` (the evaluation it belongs to, so batched evaluations never join each
other's facts), ``_o`` (its place in time order, ties broken by id) and ``_t`` (seconds).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from rules.internal.render import placeholders
from rules.registry import DATE, registry
from rules.spec import COUNT, LIST_OPERATORS, NEGATIONS, SINGLE

COMPARISONS = {"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


@dataclass(frozen=True)
class RuleMeta:
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


@dataclass(frozen=True)
class CompiledRuleset:
    """What the engine adapter needs to evaluate one rule version."""

    single_json: str
    pattern_json: str
    rules: Mapping[str, RuleMeta]
    # Fields each fact type must carry into the engine (facts are trimmed to these).
    single_fields: Mapping[str, tuple[str, ...]]
    pattern_fields: Mapping[str, tuple[str, ...]]
    date_fields: frozenset[str]
    history_window: dt.timedelta
    history_types: frozenset[str] = field(default_factory=frozenset)

    @property
    def rule_order(self) -> tuple[str, ...]:
        return tuple(self.rules)


def _condition_value(condition: Mapping[str, Any], parameters: Mapping[str, Any], is_date: bool) -> Any:
    value = parameters[condition["parameter"]] if condition.get("parameter") else condition.get("value")
    if condition["operator"] in LIST_OPERATORS and isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if is_date and value is not None:
        value = dt.date.fromisoformat(value).toordinal()
    return value


def _compile_condition(condition: Mapping[str, Any], parameters: Mapping[str, Any], fact_type: str) -> dict:
    name = condition["field"]
    spec = registry.fact_type(fact_type).field(name)
    operator = condition["operator"]
    if condition.get("negate"):
        operator = NEGATIONS[operator]
    value = _condition_value(condition, parameters, spec is not None and spec.kind == DATE)
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


def _step_terms(spec: Mapping[str, Any], step: int, fact_type: str, parameters: Mapping[str, Any]) -> list[dict]:
    groups: dict[int, list[dict]] = {}
    for condition in spec["conditions"]:
        if condition["step"] == step:
            groups.setdefault(condition["group"], []).append(_compile_condition(condition, parameters, fact_type))
    terms: list[dict] = [{"type": fact_type}]
    for group in sorted(groups):
        alternatives = groups[group]
        terms.append(alternatives[0] if len(alternatives) == 1 else {"$or": alternatives})
    return terms


def _compile_rule(spec: Mapping[str, Any]) -> dict:
    parameters = {p["name"]: p["value"] for p in spec["parameters"]}
    if spec["pattern"] == SINGLE:
        return {"all": [{"m": {"$and": _step_terms(spec, 1, spec["steps"][0]["fact_type"], parameters)}}]}
    if spec["pattern"] == COUNT:
        steps = [(1, spec["steps"][0]["fact_type"])] * spec["count"]
    else:
        steps = [(index, step["fact_type"]) for index, step in enumerate(spec["steps"], start=1)]
    window_seconds = float(spec["window_hours"]) * 3600
    chain = []
    for position, (step, fact_type) in enumerate(steps):
        terms = _step_terms(spec, step, fact_type, parameters)
        if position:
            previous = f"s{position - 1}"
            terms += [{"_g": {"s0": "_g"}}, {"$gt": {"_o": {previous: "_o"}}}]
            if position == len(steps) - 1:
                terms.append({"$lte": {"_t": {"$add": {"$l": {"s0": "_t"}, "$r": window_seconds}}}})
        chain.append({f"s{position}": {"$and": terms}})
    return {"all": chain}


def _fields_used(specs: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, ...]]:
    used: dict[str, set[str]] = {}
    for spec in specs:
        for condition in spec["conditions"]:
            fact_type = spec["steps"][condition["step"] - 1]["fact_type"]
            used.setdefault(fact_type, set()).add(condition["field"])
        for step in spec["steps"]:
            used.setdefault(step["fact_type"], set())
    return {name: tuple(sorted(fields)) for name, fields in sorted(used.items())}


def ruleset_compile(specs: Sequence[Mapping[str, Any]]) -> CompiledRuleset:
    """Compile normalized specs (disabled ones are left out). Same specs, same output."""
    enabled = sorted((s for s in specs if s["enabled"]), key=lambda s: s["key"])
    singles = [s for s in enabled if s["pattern"] == SINGLE]
    patterns = [s for s in enabled if s["pattern"] != SINGLE]
    date_fields = {
        name
        for fact_type in registry.fact_types()
        for name, spec in fact_type.fields.items()
        if spec.kind == DATE
    }
    window = max((float(s["window_hours"]) for s in patterns), default=0.0)
    return CompiledRuleset(
        single_json=json.dumps({s["key"]: _compile_rule(s) for s in singles}, sort_keys=True),
        pattern_json=json.dumps({s["key"]: _compile_rule(s) for s in patterns}, sort_keys=True),
        rules={
            s["key"]: RuleMeta(
                key=s["key"], name=s["name"], category=s["category"], severity=s["severity"],
                message=s["message"], source_label=s["source_label"], cooldown_days=s["cooldown_days"],
                pattern=s["pattern"], parameters={p["name"]: p["value"] for p in s["parameters"]},
                placeholders=placeholders(s["message"]),
            )
            for s in enabled
        },
        single_fields=_fields_used(singles),
        pattern_fields=_fields_used(patterns),
        date_fields=frozenset(date_fields),
        history_window=dt.timedelta(hours=window),
        history_types=frozenset(step["fact_type"] for s in patterns for step in s["steps"]),
    )
