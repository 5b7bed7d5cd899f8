"""A rule in one plain-language sentence, for clinicians reading or editing it.

``spec_describe`` works on any spec, even an unsaved, half-filled one from the editor:
unknown event types, fields or parameters are shown as typed instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.internal.render import display_value
from rules.registry import BOOLEAN, TEXT, FieldSpec, registry
from rules.spec import COUNT, LIST_OPERATORS, OPERATORS, SEQUENCE

_NUMERIC_PHRASES = {
    "gte": "{label} of {value} or more",
    "gt": "{label} over {value}",
    "lte": "{label} of {value} or less",
    "lt": "{label} under {value}",
    "eq": "{label} of exactly {value}",
    "ne": "{label} other than {value}",
}
_NEGATED = {
    "gte": "lt",
    "gt": "lte",
    "lte": "gt",
    "lt": "gte",
    "eq": "ne",
    "ne": "eq",
    "in": "not_in",
    "not_in": "in",
    "exists": "missing",
    "missing": "exists",
}


def _article(label: str) -> str:
    return ("an " if label[:1].lower() in "aeiou" else "a ") + label


def _with_unit(value: Any, unit: str) -> str:
    text = display_value(value)
    if not unit:
        return text
    if unit.startswith("/"):
        return f"{text} (out of {unit[1:]})"
    if unit == "%":
        return f"{text} %"
    return f"{text} {unit}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def describe_window(hours: Any) -> str:
    try:
        hours = float(hours)
    except (TypeError, ValueError):
        return "? hours"
    if hours > 0 and hours % 24 == 0:
        days = int(hours // 24)
        return "1 day" if days == 1 else f"{days} days"
    return f"{display_value(hours)} hour" + ("" if hours == 1 else "s")


def describe_condition(condition: Mapping[str, Any], field: FieldSpec | None, parameters: Mapping[str, Mapping]) -> str:
    """One condition as a phrase: "pain during the run of 5 or more (out of 10)"."""
    name = str(condition.get("field") or "?")
    label = _lower_first(field.label) if field else name.replace("_", " ")
    unit = field.unit if field else ""
    operator = str(condition.get("operator") or "")
    if condition.get("negate") and operator in _NEGATED:
        operator = _NEGATED[operator]
    parameter = condition.get("parameter")
    if parameter:
        value = parameters.get(parameter, {}).get("value", f"[{parameter}]")
    else:
        value = condition.get("value")
    if value in (None, "", []) and operator not in ("exists", "missing"):
        value = "…"

    kind = field.kind if field else ""
    if operator == "exists":
        return f"{label} recorded"
    if operator == "missing":
        return f"no {label} recorded"
    if kind == BOOLEAN and operator in ("eq", "ne"):
        truthy = str(value).strip().lower() in {"true", "yes", "1"}
        if operator == "ne":
            truthy = not truthy
        return f"“{label}”: {'yes' if truthy else 'no'}"
    if operator in LIST_OPERATORS:
        items = value if isinstance(value, (list, tuple)) else [v.strip() for v in str(value).split(",") if v.strip()]
        joined = " or ".join(str(item) for item in items) or "…"
        return f"{label} {'not ' if operator == 'not_in' else ''}{joined}"
    if kind == TEXT and operator in ("eq", "ne"):
        return f"{label} {'other than ' if operator == 'ne' else ''}“{display_value(value)}”"
    if operator in _NUMERIC_PHRASES:
        if unit.startswith("/"):  # "of 5 or more (out of 10)" reads better than "of 5 (out of 10) or more"
            phrase = _NUMERIC_PHRASES[operator].format(label=label, value=display_value(value))
            return f"{phrase} (out of {unit[1:]})"
        return _NUMERIC_PHRASES[operator].format(label=label, value=_with_unit(value, unit))
    operator_label = OPERATORS.get(operator, (operator or "?", (), True))[0]
    return f"{label} {operator_label} {display_value(value)}"


def _step_phrase(spec: Mapping[str, Any], step_number: int, parameters: Mapping[str, Mapping]) -> str:
    steps = spec.get("steps") or []
    fact_type_name = steps[step_number - 1].get("fact_type") if step_number <= len(steps) else ""
    fact_type = registry.fact_type(fact_type_name or "")
    noun = fact_type.label.lower() if fact_type else (fact_type_name or "event")
    groups: dict[int, list[str]] = {}
    for condition in spec.get("conditions") or []:
        try:
            step = int(condition.get("step") or 1)
            group = int(condition.get("group") or 1)
        except (TypeError, ValueError):
            continue
        if step != step_number:
            continue
        field = fact_type.field(str(condition.get("field") or "")) if fact_type else None
        groups.setdefault(group, []).append(describe_condition(condition, field, parameters))
    parts = []
    for group in sorted(groups):
        alternatives = groups[group]
        parts.append(
            " or ".join(alternatives)
            if len(alternatives) < 3
            else ", ".join(alternatives[:-1]) + " or " + alternatives[-1]
        )
    if len(parts) > 1 and any(len(groups[g]) > 1 for g in groups):
        parts = [f"({p})" if len(groups[g]) > 1 else p for g, p in zip(sorted(groups), parts, strict=True)]
    condition_text = " and ".join(parts)
    return noun, condition_text


def spec_describe(spec: Mapping[str, Any]) -> str:
    """The whole rule as one sentence: when it fires, what the subject is told, how often, and
    whether it holds back less urgent advice or refers the subject."""
    parameters = {str(p.get("name")): p for p in spec.get("parameters") or [] if p.get("name")}
    pattern = spec.get("pattern") or "single"
    steps = spec.get("steps") or []
    if not steps:
        when = "When … (pick an event type)"
    elif pattern == SEQUENCE:
        phrases = []
        for number in range(1, len(steps) + 1):
            noun, conditions = _step_phrase(spec, number, parameters)
            phrase = _article(noun) + (f" with {conditions}" if conditions else "")
            phrases.append(phrase)
        when = (
            "When " + phrases[0] + ", then " + ", then ".join(phrases[1:]) if len(phrases) > 1 else "When " + phrases[0]
        )
        when += f", all within {describe_window(spec.get('window_hours'))}"
    elif pattern == COUNT:
        noun, conditions = _step_phrase(spec, 1, parameters)
        count = spec.get("count") or "?"
        when = f"When {count} {noun}s" + (f" with {conditions}" if conditions else "")
        when += f" occur within {describe_window(spec.get('window_hours'))}"
    else:
        noun, conditions = _step_phrase(spec, 1, parameters)
        when = f"When {_article(noun)} has {conditions}" if conditions else f"When any {noun} arrives"
    severity = registry.severity_label(str(spec.get("severity") or "")) if spec.get("severity") else "…"
    message = " ".join(str(spec.get("message") or "").split()) or "…"
    sentence = f"{when}: {_lower_first(severity)} — “{message}”"
    try:
        cooldown = int(spec.get("cooldown_days") or 0)
    except (TypeError, ValueError):
        cooldown = 0
    if cooldown:
        sentence += f" (at most once every {cooldown} day{'s' if cooldown != 1 else ''})"
    policy = []
    if spec.get("holds_back_lower") is True:
        policy.append("holds back less urgent advice on the same event")
    if spec.get("refers") is True:
        policy.append(f"refers the {registry.subject()[0]}")
    if policy:
        sentence += "; it " + " and ".join(policy)
    if spec.get("enabled") is False:
        sentence = "Disabled. " + sentence
    return sentence
