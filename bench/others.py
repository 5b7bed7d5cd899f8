"""The same one-event rules, for the engines we compare with.

Both translations read the normalized rule specs (rules.spec), so the rules are the pack's
rules, parameters included, not a hand-written copy:

* GoRules zen-engine: one JDM decision table, hit policy "collect", one row per rule; a
  column per field for plain conditions (unary tests such as ``< 5``), plus one expression
  column for groups of alternatives (``pain_during >= 5 or pain_after >= 5``).
* venmo business-rules: one rule per spec (``{"all": [...]}`` of groups, ``{"any": [...]}``
  for alternatives), with a generated variables class and one action that records the key.

How zen-engine is called matters more than the table's layout (bench/engine.py measures the
layouts side by side): given a loader *function* returning the JDM text, ``ZenEngine.evaluate``
calls it, parses the text and compiles the table again on every evaluation (about 5x slower);
given the JDM once through the static loader (``{"type": "static", "content": {key: jdm}}``), it
compiles the table once. ``create_decision(...).evaluate`` does not keep the compiled table
either. A flat context with only the fields the rules read saves another fifth.

Semantics follow durable_rules (checked by the benchmark's firing comparison): a condition
on a field the event does not carry never holds, whatever its operator, except "missing".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rules.registry import BOOLEAN, DATE, INTEGER, NUMBER, TEXT, registry
from rules.spec import LIST_OPERATORS, NEGATIONS


def _value(condition: Mapping[str, Any], parameters: Mapping[str, Any]) -> Any:
    value = parameters[condition["parameter"]] if condition.get("parameter") else condition.get("value")
    if condition["operator"] in LIST_OPERATORS and isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    return value


def _operator(condition: Mapping[str, Any]) -> str:
    operator = condition["operator"]
    return NEGATIONS[operator] if condition.get("negate") else operator


def _kind(fact_type: str, field: str) -> str:
    spec = registry.fact_type(fact_type).field(field)
    return spec.kind if spec else TEXT


def single_rules(specs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [s for s in specs if s["enabled"] and s["pattern"] == "single"]


def uses_date_fields(specs: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        _kind(s["steps"][0]["fact_type"], c["field"]) == DATE for s in single_rules(specs) for c in s["conditions"]
    )


# -- zen-engine -------------------------------------------------------------------------
def _zen_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _zen_test(subject: str, operator: str, value: Any) -> str:
    """A boolean expression about ``subject`` (``$`` in a table cell, the field name elsewhere).

    No outer parentheses: zen treats a cell as a unary test only when it reads like one.
    """
    if operator == "eq":
        return f"{subject} == {_zen_literal(value)}"
    if operator == "ne":
        return f"{subject} != null and {subject} != {_zen_literal(value)}"
    if operator in ("lt", "lte", "gt", "gte"):
        symbol = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[operator]
        return f"{subject} != null and {subject} {symbol} {_zen_literal(value)}"
    items = "[" + ", ".join(_zen_literal(v) for v in value) + "]" if operator in LIST_OPERATORS else ""
    if operator == "in":
        return f"{subject} != null and {subject} in {items}"
    if operator == "not_in":
        return f"{subject} != null and not ({subject} in {items})"
    if operator == "exists":
        return f"{subject} != null"
    if operator == "missing":
        return f"{subject} == null"
    raise ValueError(operator)


def _zen_cell(tests: list[tuple[str, Any]]) -> str:
    """A decision-table cell: the short unary form (``< 5``, ``'a', 'b'``) for one plain test;
    ``$ ... and $ ...`` otherwise. A missing field is null, and null < 5, null == 'a' are false."""
    if len(tests) == 1:
        operator, value = tests[0]
        if operator == "eq":
            return _zen_literal(value)
        if operator in ("lt", "lte", "gt", "gte"):
            return {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[operator] + " " + _zen_literal(value)
        if operator == "in":
            return ", ".join(_zen_literal(v) for v in value)
    return " and ".join(_zen_test("$", operator, value) for operator, value in tests)


def _zen_rule_expression(spec: Mapping[str, Any]) -> str:
    parameters = {p["name"]: p["value"] for p in spec["parameters"]}
    groups: dict[int, list[Mapping[str, Any]]] = {}
    for condition in spec["conditions"]:
        groups.setdefault(condition["group"], []).append(condition)
    parts = [f"type == {_zen_literal(spec['steps'][0]['fact_type'])}"]
    for group in sorted(groups):
        parts.append(
            "("
            + " or ".join("(" + _zen_test(c["field"], _operator(c), _value(c, parameters)) + ")" for c in groups[group])
            + ")"
        )
    return " and ".join(parts)


def zen_decision_content(specs: Sequence[Mapping[str, Any]], *, layout: str = "expression") -> dict[str, Any]:
    """A JDM graph: input -> one decision table (hit policy collect) -> output; each row gives
    ``{"rule": key}``.

    ``layout="expression"``: one input column without a field, each row's cell is the rule's
    whole condition (the fastest layout we found). ``layout="columns"``: a column per field
    with unary tests (``< 5``), plus an expression column for groups of alternatives (the
    layout the JDM editor suggests; about 3x slower here).
    """
    rules = single_rules(specs)
    if layout == "expression":
        rows = [{"_id": s["key"], "rule": _zen_rule_expression(s), "out": _zen_literal(s["key"])} for s in rules]
        return _zen_graph([{"id": "rule", "name": "rule"}], rows)
    fields: list[str] = ["type"]
    rows = []
    for spec in rules:
        parameters = {p["name"]: p["value"] for p in spec["parameters"]}
        groups: dict[int, list[Mapping[str, Any]]] = {}
        for condition in spec["conditions"]:
            groups.setdefault(condition["group"], []).append(condition)
        cells: dict[str, list[tuple[str, Any]]] = {"type": [("eq", spec["steps"][0]["fact_type"])]}
        expressions: list[str] = []
        for group in sorted(groups):
            alternatives = groups[group]
            if len(alternatives) == 1:
                condition = alternatives[0]
                name = condition["field"]
                if name not in fields:
                    fields.append(name)
                cells.setdefault(name, []).append((_operator(condition), _value(condition, parameters)))
            else:
                expressions.append(
                    "("
                    + " or ".join(
                        "(" + _zen_test(c["field"], _operator(c), _value(c, parameters)) + ")" for c in alternatives
                    )
                    + ")"
                )
        row = {"_id": spec["key"], "out": _zen_literal(spec["key"]), "expr": " and ".join(expressions)}
        for name, tests in cells.items():
            row[f"in_{name}"] = _zen_cell(tests)
        rows.append(row)
    inputs = [{"id": f"in_{name}", "name": name, "field": name} for name in fields]
    inputs.append({"id": "expr", "name": "alternatives"})  # no field: cells are full expressions
    for row in rows:
        for column in inputs:
            row.setdefault(column["id"], "")
    return _zen_graph(inputs, rows)


def _zen_graph(inputs: list[dict], rows: list[dict]) -> dict[str, Any]:
    position = {"x": 0, "y": 0}
    return {
        "nodes": [
            {"id": "request", "type": "inputNode", "name": "Request", "position": position},
            {
                "id": "table",
                "type": "decisionTableNode",
                "name": "rules",
                "position": position,
                "content": {
                    "hitPolicy": "collect",
                    "inputs": inputs,
                    "outputs": [{"id": "out", "name": "rule", "field": "rule"}],
                    "rules": rows,
                },
            },
            {"id": "response", "type": "outputNode", "name": "Response", "position": position},
        ],
        "edges": [
            {"id": "e1", "sourceId": "request", "targetId": "table", "type": "edge"},
            {"id": "e2", "sourceId": "table", "targetId": "response", "type": "edge"},
        ],
    }


def zen_content_json(specs: Sequence[Mapping[str, Any]], *, layout: str = "expression") -> str:
    return json.dumps(zen_decision_content(specs, layout=layout))


# -- business-rules ---------------------------------------------------------------------
def business_rules_setup(specs: Sequence[Mapping[str, Any]]) -> tuple[list[dict], type, type]:
    """(rule list, variables class taking the event dict, actions class with ``.fired``)."""
    from business_rules.actions import BaseActions, rule_action
    from business_rules.fields import FIELD_TEXT
    from business_rules.variables import (
        BaseVariables,
        boolean_rule_variable,
        numeric_rule_variable,
        select_rule_variable,
        string_rule_variable,
    )

    rules = single_rules(specs)
    kinds: dict[str, str] = {"type": TEXT}
    for spec in rules:
        for condition in spec["conditions"]:
            kinds[condition["field"]] = _kind(spec["steps"][0]["fact_type"], condition["field"])

    namespace: dict[str, Any] = {"__init__": lambda self, data: setattr(self, "data", data)}
    for name, kind in kinds.items():
        decorator = {
            NUMBER: numeric_rule_variable,
            INTEGER: numeric_rule_variable,
            DATE: numeric_rule_variable,
            BOOLEAN: boolean_rule_variable,
        }.get(kind, string_rule_variable)
        namespace[name] = decorator(lambda self, _n=name: self.data.get(_n))
        namespace[f"{name}__present"] = boolean_rule_variable(lambda self, _n=name: self.data.get(_n) is not None)
        namespace[f"{name}__list"] = select_rule_variable()(lambda self, _n=name: [self.data.get(_n)])
    Variables = type("BenchVariables", (BaseVariables,), namespace)

    class Actions(BaseActions):
        def __init__(self) -> None:
            self.fired: list[str] = []

        @rule_action(params={"rule": FIELD_TEXT})
        def fire(self, rule: str) -> None:
            self.fired.append(rule)

    def present(name: str) -> dict:
        return {"name": f"{name}__present", "operator": "is_true", "value": True}

    def test(name: str, operator: str, value: Any) -> dict:
        kind = kinds[name]
        if operator == "exists":
            return present(name)
        if operator == "missing":
            return {"name": f"{name}__present", "operator": "is_false", "value": True}
        if kind == BOOLEAN and operator in ("eq", "ne"):
            truth = bool(value) if operator == "eq" else not bool(value)
            check = {"name": name, "operator": "is_true" if truth else "is_false", "value": True}
        elif operator == "eq":
            check = {"name": name, "operator": "equal_to", "value": value}
        elif operator == "ne" and kind == TEXT:
            check = {"name": f"{name}__list", "operator": "does_not_contain", "value": value}
        elif operator == "ne":
            check = {
                "any": [
                    {"name": name, "operator": "less_than", "value": value},
                    {"name": name, "operator": "greater_than", "value": value},
                ]
            }
        elif operator in ("lt", "lte", "gt", "gte"):
            op = {
                "lt": "less_than",
                "lte": "less_than_or_equal_to",
                "gt": "greater_than",
                "gte": "greater_than_or_equal_to",
            }[operator]
            check = {"name": name, "operator": op, "value": value}
        elif operator == "in":
            check = {"any": [{"name": name, "operator": "equal_to", "value": v} for v in value]}
        elif operator == "not_in":
            check = {"all": [{"name": f"{name}__list", "operator": "does_not_contain", "value": v} for v in value]}
        else:
            raise ValueError(operator)
        return {"all": [present(name), check]}

    rule_list = []
    for spec in rules:
        parameters = {p["name"]: p["value"] for p in spec["parameters"]}
        groups: dict[int, list[Mapping[str, Any]]] = {}
        for condition in spec["conditions"]:
            groups.setdefault(condition["group"], []).append(condition)
        terms = [{"name": "type", "operator": "equal_to", "value": spec["steps"][0]["fact_type"]}]
        for group in sorted(groups):
            alternatives = [test(c["field"], _operator(c), _value(c, parameters)) for c in groups[group]]
            terms.append(alternatives[0] if len(alternatives) == 1 else {"any": alternatives})
        rule_list.append({"conditions": {"all": terms}, "actions": [{"name": "fire", "params": {"rule": spec["key"]}}]})
    return rule_list, Variables, Actions
