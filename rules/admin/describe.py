"""A rule in one plain-language sentence, for clinicians reading or editing it.

``spec_describe`` works on any spec, even an unsaved, half-filled one from the editor:
unknown event types, fields or parameters are shown as typed instead of failing.
``message_example`` fills a rule's message the way the engine does, from an example event
that meets the rule's conditions: the sentence and the editor's preview show numbers, never
``{placeholders}``. ``message_named`` names the event's values in words instead, for a reader
of the rule rather than of one piece of advice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from rules.internal.render import (
    MatchedCondition,
    display_value,
    matched_text,
    moment_words,
    placeholders,
    render_message,
    render_segments,
)

__all__ = ["message_example", "message_example_segments", "moment_words", "spec_describe"]
from rules.registry import ANY_FACT_TYPE, BOOLEAN, DATE, INTEGER, NUMBER, TEXT, FieldSpec, registry
from rules.spec import (
    COUNT,
    DAYS,
    LIST_OPERATORS,
    MATCHED_PLACEHOLDER,
    NEGATIONS,
    OPERATORS,
    PARAMETER_KINDS,
    REFERRAL_PLACEHOLDERS,
    SEQUENCE,
    SINGLE,
    coerce_list,
    coerce_value,
    placeholder_labels,
)

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
        return f"{text}%"
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
    label = field.in_words if field else name.replace("_", " ")
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


def _state_phrase(condition: Mapping[str, Any], field: FieldSpec) -> str:
    """A condition on the policy's state as a clause: "while the member is under referral"."""
    operator = str(condition.get("operator") or "")
    try:
        truthy = coerce_value(condition.get("value"), BOOLEAN)
    except ValueError:
        truthy = True
    if (operator == "ne") != bool(condition.get("negate")):
        truthy = not truthy
    subject = registry.subject()[0]
    return f"while the {subject} is {'' if truthy else 'not '}{field.in_words}"


def _step_phrase(spec: Mapping[str, Any], step_number: int, parameters: Mapping[str, Mapping]) -> tuple[str, str]:
    steps = spec.get("steps") or []
    fact_type_name = steps[step_number - 1].get("fact_type") if step_number <= len(steps) else ""
    fact_type = registry.fact_type(fact_type_name or "")
    if fact_type_name == ANY_FACT_TYPE:
        noun = "event"
    else:
        noun = fact_type.label.lower() if fact_type else (fact_type_name or "event")
    groups: dict[int, list[str]] = {}
    states: list[str] = []
    for condition in spec.get("conditions") or []:
        try:
            step = int(condition.get("step") or 1)
            group = int(condition.get("group") or 1)
        except (TypeError, ValueError):
            continue
        if step != step_number:
            continue
        field = fact_type.field(str(condition.get("field") or "")) if fact_type else None
        if field is not None and field.state:
            states.append(_state_phrase(condition, field))
            continue
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
    if states:
        condition_text = (condition_text + ", " if condition_text else "") + " and ".join(states)
    return noun, condition_text


def spec_when(spec: Mapping[str, Any]) -> str:
    """When the rule fires, as the start of a sentence: "When a run has pain during the run of 5 or
    more (out of 10)"; "When 3 events with pain of 4 or more (out of 10) occur within 14 days"."""
    parameters = {str(p.get("name")): p for p in spec.get("parameters") or [] if p.get("name")}
    pattern = spec.get("pattern") or "single"
    steps = spec.get("steps") or []
    if not steps:
        return "When … (pick an event type)"
    if pattern == SEQUENCE:
        phrases = []
        for number in range(1, len(steps) + 1):
            noun, conditions = _step_phrase(spec, number, parameters)
            phrase = _article(noun) + (f" with {conditions}" if conditions else "")
            phrases.append(phrase)
        when = (
            "When " + phrases[0] + ", then " + ", then ".join(phrases[1:]) if len(phrases) > 1 else "When " + phrases[0]
        )
        return when + f", all within {describe_window(spec.get('window_hours'))}"
    if pattern == COUNT:
        noun, conditions = _step_phrase(spec, 1, parameters)
        count = spec.get("count") or "?"
        when = f"When {count} {noun}s" + (f" with {conditions}" if conditions else "")
        return when + f" occur within {describe_window(spec.get('window_hours'))}"
    noun, conditions = _step_phrase(spec, 1, parameters)
    if pattern == DAYS:
        count = spec.get("count") or "?"
        return f"When {count} days in a row each have {_article(noun)}" + (f" with {conditions}" if conditions else "")
    if conditions.startswith("while "):
        return f"When {_article(noun)} arrives {conditions}"
    return f"When {_article(noun)} has {conditions}" if conditions else f"When any {noun} arrives"


def spec_describe(spec: Mapping[str, Any]) -> str:
    """The whole rule as one sentence: when it fires, what the subject is told, how often, and
    whether it holds back less urgent advice or refers the subject."""
    when = spec_when(spec)
    severity = registry.severity_label(str(spec.get("severity") or "")) if spec.get("severity") else "…"
    message = " ".join(message_example(spec).split()) or "…"
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
    if spec.get("follows_referral") is True:
        policy.append("is as urgent as the referral in force when that is more urgent")
    if policy:
        sentence += "; it " + " and ".join(policy)
    if spec.get("enabled") is False:
        sentence = "Disabled. " + sentence
    return sentence


# -- the message with an example event --------------------------------------------------------
_MISSING = object()


def message_example(spec: Mapping[str, Any], template: str | None = None) -> str:
    """``template`` (the rule's message by default) filled as the engine fills it, from an example
    event that meets the rule's conditions, the rule's parameters and its own settings; a value
    known only when a real event is judged (the referral in force) shows as its labelled chip."""
    return "".join(text for text, _ in message_example_segments(spec, template))


def message_example_segments(spec: Mapping[str, Any], template: str | None = None) -> list[tuple[str, str]]:
    """``message_example`` as (text, label) pieces: each inserted value with the label of its chip."""
    text = str(spec.get("message") or "") if template is None else template
    choices = {}
    for fact_type in _fact_types(spec):
        for name, field in fact_type.fields.items():
            if field.kind == TEXT and field.choices:
                choices[name] = {code: field.choice_label(code) for code in field.choices}
    event = example_event(spec)
    extra: dict[str, Any] = {}
    names = placeholders(text)
    if MATCHED_PLACEHOLDER in names:
        extra[MATCHED_PLACEHOLDER] = matched_text(_matched_conditions(spec), event, choices) or "…"
    values: dict[str, str] = {}
    for name in names:
        for source in (extra, event, _parameter_values(spec), _rule_settings(spec)):
            value = source.get(name)
            if value is not None:
                label = (choices.get(name) or {}).get(value) if isinstance(value, str) else None
                values[name] = label or display_value(value)
                break
    return render_segments(text, values, placeholder_labels(spec))


def message_named(spec: Mapping[str, Any], template: str | None = None) -> str:
    """``template`` (the rule's message by default) as a reader of the rule, not of one piece of
    advice, needs it: what the subject's events supply is named in square brackets ("You rated
    your back pain [pain]/10"), the rule's parameters and settings are their numbers."""
    text = str(spec.get("message") or "") if template is None else template
    names = placeholders(text)
    # A field of several events is named as the last event has it, as the engine reads it first.
    fields = {
        name: f"[{field.in_words}]" for fact_type in _fact_types(spec) for name, field in fact_type.fields.items()
    }
    labels = placeholder_labels(spec)
    extra = {name: f"[{labels[name]}]" for name in REFERRAL_PLACEHOLDERS}
    if MATCHED_PLACEHOLDER in names:
        extra[MATCHED_PLACEHOLDER] = _matched_named(spec)
    return render_message(text, names, extra, fields, _parameter_values(spec), _rule_settings(spec))


def _matched_named(spec: Mapping[str, Any]) -> str:
    """What ``{matched}`` can name, in square brackets: the signs and values of the last event that
    a condition looks for ("[fever and/or a recent fall or injury]")."""
    named: dict[str, MatchedCondition] = {}
    for group in _matched_conditions(spec):
        for condition in group:
            if condition.operator in ("ne", "not_in", "missing", "exists") or condition.kind == DATE:
                continue
            if condition.kind == BOOLEAN and condition.value is not True:
                continue
            named.setdefault(condition.field, condition)
    if not named:
        return "[what was reported]"
    words = [condition.words for condition in named.values()]
    text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and/or " + words[-1]
    values = sum(1 for condition in named.values() if condition.kind != BOOLEAN)
    if values:
        text += " with its value" if len(words) == 1 else ", with the value" + ("s" if values > 1 else "")
    return f"[{text}]"


def _matched_conditions(spec: Mapping[str, Any]) -> list[list[MatchedCondition]]:
    """The last event's conditions by group, as ``{matched}`` reads them (unreadable ones left out)."""
    steps = spec.get("steps") or []
    fact_type = registry.fact_type(str(steps[-1].get("fact_type") or "")) if steps else None
    if fact_type is None:
        return []
    parameters = _parameter_values(spec)
    groups: dict[int, list[MatchedCondition]] = {}
    for condition in spec.get("conditions") or []:
        field = fact_type.field(str(condition.get("field") or ""))
        if _int(condition.get("step"), 1) != len(steps) or field is None or field.state:
            continue
        operator = str(condition.get("operator") or "")
        if condition.get("negate") and operator in NEGATIONS:
            operator = NEGATIONS[operator]
        value = parameters.get(condition["parameter"]) if condition.get("parameter") else condition.get("value")
        try:
            if operator in LIST_OPERATORS:
                value = coerce_list(value)
            elif value not in (None, ""):
                value = coerce_value(value, field.kind)
                if field.kind == DATE:
                    value = dt.date.fromisoformat(value).toordinal()
        except ValueError:
            continue
        matched = MatchedCondition(field.name, operator, value, field.kind, field.in_words, field.unit)
        groups.setdefault(_int(condition.get("group"), 1), []).append(matched)
    return [groups[group] for group in sorted(groups)]


def example_event(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The values of an example event for ``spec``: a field a condition tests takes a value that meets
    the first such condition (pain of 5 for "pain of 5 or more"); any other field a typical value
    from the catalog (the middle of its range, its first choice). The last event of a pattern
    comes first, as in the engine."""
    parameters = _parameter_values(spec)
    steps = spec.get("steps") or []
    values: dict[str, Any] = {}
    for number in range(len(steps), 0, -1):
        fact_type = registry.fact_type(str(steps[number - 1].get("fact_type") or ""))
        if fact_type is None:
            continue
        tests: dict[str, list[Mapping[str, Any]]] = {}
        for condition in spec.get("conditions") or []:
            if _int(condition.get("step"), 1) == number:
                tests.setdefault(str(condition.get("field") or ""), []).append(condition)
        for name, field in fact_type.fields.items():
            if name in values:
                continue
            value = _meeting_value(field, tests.get(name, []), parameters)
            if value is not _MISSING:
                values[name] = value
    return values


def _fact_types(spec: Mapping[str, Any]) -> list:
    found = (registry.fact_type(str(step.get("fact_type") or "")) for step in spec.get("steps") or [])
    return [fact_type for fact_type in found if fact_type is not None]


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _parameter_values(spec: Mapping[str, Any]) -> dict[str, Any]:
    values = {}
    for parameter in spec.get("parameters") or []:
        name, raw, kind = parameter.get("name"), parameter.get("value"), parameter.get("kind")
        if not name:
            continue
        try:
            values[str(name)] = coerce_value(raw, kind) if kind in PARAMETER_KINDS else raw
        except ValueError:
            values[str(name)] = raw if raw not in (None, "") else None
    return values


def _rule_settings(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What a message may say of the rule itself ({count}, {window_days} ...), as the engine says it."""
    pattern = spec.get("pattern") or SINGLE
    settings: dict[str, Any] = {"cooldown_days": _int(spec.get("cooldown_days"), 0)}
    try:
        hours = float(spec.get("window_hours"))
    except (TypeError, ValueError):
        hours = 0.0
    if pattern != SINGLE and hours > 0 and hours == hours:
        settings["window_hours"] = int(hours) if hours.is_integer() else hours
        days = hours / 24
        settings["window_days"] = int(days) if days.is_integer() else round(days, 1)
    if pattern in (COUNT, DAYS):
        settings["count"] = _int(spec.get("count"), 0) or None
    else:
        settings["count"] = len(spec.get("steps") or []) if pattern == SEQUENCE else 1
    return settings


def _meeting_value(field: FieldSpec, conditions: list[Mapping[str, Any]], parameters: Mapping[str, Any]) -> Any:
    for condition in conditions:
        operator = str(condition.get("operator") or "")
        if condition.get("negate") and operator in NEGATIONS:
            operator = NEGATIONS[operator]
        if operator == "missing":
            return _MISSING
        if operator == "exists":
            break
        value = parameters.get(condition["parameter"]) if condition.get("parameter") else condition.get("value")
        try:
            meeting = _value_meeting(field, operator, value)
        except (TypeError, ValueError, OverflowError):
            continue
        if meeting is not None:
            return meeting
    return _typical_value(field)


def _value_meeting(field: FieldSpec, operator: str, value: Any) -> Any:
    """A value of ``field`` for which "field <operator> value" holds, or None when there is none to give."""
    if value in (None, "", []):
        return None
    if field.kind in (NUMBER, INTEGER):
        number = float(coerce_value(value, field.kind))
        low = field.minimum if field.minimum is not None else float("-inf")
        high = field.maximum if field.maximum is not None else float("inf")
        candidate = {"eq": number, "gte": number, "lte": number, "gt": number + 1, "lt": number - 1}.get(operator)
        if operator == "ne":
            candidate = number + 1 if number + 1 <= high else number - 1
        if candidate is None:
            return None
        candidate = min(max(candidate, low), high)
        return int(candidate) if field.kind == INTEGER or float(candidate).is_integer() else candidate
    if field.kind == BOOLEAN:
        truth = coerce_value(value, BOOLEAN)
        return {"eq": truth, "ne": not truth}.get(operator)
    if field.kind == DATE:
        day = dt.date.fromisoformat(coerce_value(value, DATE))
        shift = {"eq": 0, "gte": 0, "lte": 0, "gt": 1, "lt": -1}.get(operator)
        return None if shift is None else (day + dt.timedelta(days=shift)).isoformat()
    if operator in ("eq", "in"):
        return coerce_list(value)[0] if operator == "in" else str(value)
    if operator in ("ne", "not_in"):
        excluded = set(coerce_list(value))
        return next((choice for choice in field.choices if choice not in excluded), None)
    return None


def _typical_value(field: FieldSpec) -> Any:
    if field.kind in (NUMBER, INTEGER):
        low = field.minimum if field.minimum is not None else 0
        high = field.maximum if field.maximum is not None else low + 10
        middle = (low + high) / 2
        return int(middle) if field.kind == INTEGER or float(middle).is_integer() else middle
    if field.kind == BOOLEAN:
        return True
    if field.kind == DATE:
        return dt.date.today().isoformat()
    return field.choices[0] if field.choices else "…"
