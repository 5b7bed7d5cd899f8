"""The declarative form of a rule, as plain data, and its validation.

A rule spec is a dict (the same shape is stored in published versions and in exported
rule packs)::

    {"key": "pain-stop", "name": "...", "description": "...", "category": "pain",
     "severity": "stop", "message": "... {pain_during} ...", "summary": "Stop running ...",
     "source_label": "...", "cooldown_days": 0, "holds_back_lower": True, "refers": False,
     "priority": 50, "enabled": True, "evidence_level": "guideline", "review_by": None,
     "display_days": 14,
     "pattern": "single" | "sequence" | "count" | "days", "count": None, "window_hours": None,
     "steps": [{"fact_type": "run"}],
     "conditions": [{"step": 1, "group": 1, "field": "pain_during", "operator": "gte",
                     "value": None, "parameter": "threshold", "negate": False}],
     "parameters": [{"name": "threshold", "label": "Pain threshold", "kind": "integer",
                     "value": 5, "unit": "/10"}]}

Conditions of one step that share a group number are alternatives (any of them); every
group must hold (all of them); ``negate`` turns a condition into its opposite (not).
A "sequence" matches its steps in time order, the last within ``window_hours`` of the
first; a "count" matches ``count`` facts of its one step within ``window_hours``; "days"
matches a fact of its one step on each of ``count`` days in a row, the facts' own local
calendar days, ending on the day of the judged fact.

``display_days`` is how long its advice stays worth showing after its fact (0: until it is
withdrawn), for a domain's "what to show now".
``evidence_level`` says what the advice rests on (``EVIDENCE_LEVELS``); ``review_by`` is the
date by which a clinician should look at the rule again (None: a year after it last changed).

The scalar fields and their defaults are defined once, in ``RULE_FIELDS``; the model rows,
the normalized spec, packs and diffs all follow it. Every number has bounds
(``COOLDOWN_MAX_DAYS``, ``WINDOW_MAX_HOURS``, ``COUNT_MAX`` ...): a rule pack can never
publish a cooldown that overflows a date or a pattern that takes a worker minutes.

Validation is pure (no database): ``spec_validate`` returns every problem keyed by the
path of the offending field, with messages written for a clinician.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from rules.conf import rules_settings
from rules.registry import BOOLEAN, DATE, INTEGER, NUMBER, TEXT, UNDER_REFERRAL, FieldSpec, Registry, registry

SINGLE, SEQUENCE, COUNT, DAYS = "single", "sequence", "count", "days"
PATTERNS = {
    SINGLE: "One event",
    SEQUENCE: "Events in order, within a time window",
    COUNT: "Several matching events within a time window",
    DAYS: "Days in a row with a matching event",
}
# What a rule's advice rests on, strongest first: code -> how a clinician reads it.
EVIDENCE_LEVELS = {
    "guideline": "Guideline",
    "study": "Study",
    "article": "Article",
    "expert opinion": "Expert opinion",
}
EVIDENCE_DEFAULT = "expert opinion"
# A rule without a review date of its own is due for review this long after it last changed.
REVIEW_AFTER = dt.timedelta(days=365)

# operator code -> (label used in sentences, kinds it fits, needs a value)
OPERATORS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "eq": ("is", (NUMBER, INTEGER, BOOLEAN, TEXT, DATE), True),
    "ne": ("is not", (NUMBER, INTEGER, BOOLEAN, TEXT, DATE), True),
    "lt": ("is under", (NUMBER, INTEGER, DATE), True),
    "lte": ("is at most", (NUMBER, INTEGER, DATE), True),
    "gt": ("is over", (NUMBER, INTEGER, DATE), True),
    "gte": ("is at least", (NUMBER, INTEGER, DATE), True),
    "in": ("is one of", (TEXT,), True),
    "not_in": ("is none of", (TEXT,), True),
    "exists": ("is recorded", (NUMBER, INTEGER, BOOLEAN, TEXT, DATE), False),
    "missing": ("is not recorded", (NUMBER, INTEGER, BOOLEAN, TEXT, DATE), False),
}
NEGATIONS = {
    "eq": "ne",
    "ne": "eq",
    "lt": "gte",
    "gte": "lt",
    "lte": "gt",
    "gt": "lte",
    "in": "not_in",
    "not_in": "in",
    "exists": "missing",
    "missing": "exists",
}
LIST_OPERATORS = {"in", "not_in"}
PARAMETER_KINDS = (NUMBER, INTEGER, BOOLEAN, TEXT, DATE)
KEY_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
# Placeholders a message may use besides fields and parameters: the rule's own settings, so a
# message never states a number that a clinician's edit could make wrong, and what matched: the
# conditions of the judged event that hold, in words ("numbness around the saddle area and leg
# weakness"; "pain during the run of 6/10").
MATCHED_PLACEHOLDER = "matched"
MESSAGE_EXTRA_PLACEHOLDERS = ("count", "window_hours", "window_days", "cooldown_days", MATCHED_PLACEHOLDER)
# The referral in force, for rules that fire only under referral: since when (a date in words),
# the rule that referred and the advice it gave (its summary).
REFERRAL_PLACEHOLDERS = ("referral_since", "referral_rule", "referral_advice")
# How the editor and every page show the values a message names besides fields and parameters:
# as labelled chips ("[Time window in days]"), never as {placeholders}.
SETTING_LABELS = {
    "count": "How many events",
    "window_days": "Time window in days",
    "window_hours": "Time window in hours",
    "cooldown_days": "Cooldown in days",
    MATCHED_PLACEHOLDER: "What matched, in words",
    "referral_since": "The date the referral began",
    "referral_rule": "The rule that referred",
    "referral_advice": "What the referring advice said",
}
DAYS_COUNT_LABEL = "How many days in a row"

# Bounds on every number of a rule (beyond them a pack is refused at save and import).
COOLDOWN_MAX_DAYS = 365
DISPLAY_DEFAULT_DAYS = 14
DISPLAY_MAX_DAYS = 365
WINDOW_MAX_HOURS = 90 * 24
COUNT_MAX = 20
DAYS_MAX = 28  # days in a row a "days" pattern may ask for
PRIORITY_MAX = 1000
SUMMARY_MAX = 140
ALTERNATIVES_MAX = 20  # conditions in one "any of these" group (each is a branch in the engine)
NUMBER_MAX = 1e9  # a value compared with a field that has no range of its own
ADVICE_LIMIT_MAX = 20

# Bounds on every text of a rule (beyond them a rule is refused at save and import): what the
# admin's pages and a clinical system can show, and no more than the database's columns hold.
TEXT_MAX = {"key": 80, "name": 200, "description": 2000, "message": 1000, "source_label": 300}
PARAMETER_TEXT_MAX = {"name": 60, "label": 200, "unit": 30}
VALUE_TEXT_MAX = 300  # a condition's or a parameter's value as typed (a list: joined by commas)

# The scalar fields of a rule spec: name -> (label a clinician reads, default).
RULE_FIELDS: dict[str, tuple[str, Any]] = {
    "key": ("Key", ""),
    "name": ("Name", ""),
    "description": ("Description", ""),
    "category": ("Category", ""),
    "severity": ("Severity", ""),
    "message": ("Message", ""),
    "summary": ("Summary", ""),
    "source_label": ("Source", ""),
    "cooldown_days": ("Cooldown (days)", 0),
    "holds_back_lower": ("Holds back lower advice", False),
    "refers": ("Refers the {subject}", False),  # see rule_field_label
    "follows_referral": ("As urgent as the referral in force", False),
    "indicator": ("Card indicator", ""),  # "": the severity's (Registry.indicator_defaults)
    "priority": ("Priority", 100),
    "enabled": ("Enabled", True),
    "evidence_level": ("Evidence", EVIDENCE_DEFAULT),
    "review_by": ("Review by", None),
    "display_days": ("Shown for (days)", DISPLAY_DEFAULT_DAYS),
    "pattern": ("Pattern", SINGLE),
    "count": ("How many events", None),
    "window_hours": ("Within (hours)", None),
}
# Where a validation message belongs (see error_place): list heads and their items' fields.
_LIST_ITEMS = {"steps": "event", "conditions": "condition", "parameters": "parameter"}
_LIST_LABELS = {"steps": "events", "conditions": "conditions", "parameters": "parameters"}
_ITEM_FIELDS = {
    "fact_type": "event type",
    "step": "event",
    "group": "group",
    "field": "field",
    "operator": "comparison",
    "value": "value",
    "parameter": "parameter",
    "name": "name",
    "label": "label",
    "kind": "kind",
    "unit": "unit",
}
# The ruleset's own settings (published with every version): name -> (label, default).
RULESET_SETTINGS: dict[str, tuple[str, Any]] = {
    "advice_limit": ("Most pieces of advice per event", 3),
}


def rule_field_label(name: str, catalog: Registry = registry) -> str:
    """A rule field's label as a clinician reads it, in the domain's words ("Refers the member")."""
    return RULE_FIELDS[name][0].format(subject=catalog.subject()[0])


def placeholder_labels(spec: Mapping[str, Any], catalog: Registry = registry) -> dict[str, str]:
    """Every value ``spec``'s message may name -> the label of its chip ("pain_after" -> "Pain after
    the run"): the fields of its events, then its parameters, then the rule's own settings. A label
    that two names would share is made apart by saying what the second one is."""
    labels: dict[str, str] = {}
    for step in spec.get("steps") or []:
        fact_type = catalog.fact_type(str((step or {}).get("fact_type") or ""))
        for name, field in (fact_type.fields if fact_type else {}).items():
            if not field.state:
                labels.setdefault(name, field.label)
    taken = set(labels.values())
    for parameter in spec.get("parameters") or []:
        name = str((parameter or {}).get("name") or "")
        if name and name not in labels:
            label = str(parameter.get("label") or "").strip() or name.replace("_", " ")
            labels[name] = f"{label} (parameter)" if label in taken else label
            taken.add(labels[name])
    for name, label in SETTING_LABELS.items():
        if name not in labels:
            labels[name] = DAYS_COUNT_LABEL if name == "count" and spec.get("pattern") == DAYS else label
    return labels


def error_place(path: str) -> str:
    """Where a validation message belongs, in words: "hot: conditions.2.value" -> "Rule “hot”,
    condition 3, value"; "ruleset: advice_limit" -> "The ruleset, most pieces of advice per event"."""
    owner, _, field_path = path.rpartition(": ")
    head, *rest = field_path.split(".")
    if head in RULE_FIELDS:
        words = [rule_field_label(head).lower()]
    elif head in RULESET_SETTINGS:
        words = [RULESET_SETTINGS[head][0].lower()]
    elif head in _LIST_ITEMS and rest and rest[0].isdigit():
        words = [f"{_LIST_ITEMS[head]} {int(rest[0]) + 1}", *(_ITEM_FIELDS.get(r, r) for r in rest[1:2])]
    elif head in _LIST_LABELS:
        words = [_LIST_LABELS[head]]
    else:
        words = [head] if head and head != "rules" else []
    if owner == "ruleset":
        words.insert(0, "The ruleset")
    elif owner:
        words.insert(0, f"Rule “{owner}”")
    text = ", ".join(words)
    return text[:1].upper() + text[1:]


# Messages a clinician reads (tests reuse these constants).
MSG_REQUIRED = "This field is required."
MSG_KEY = "Use lower-case letters, digits and dashes, for example “pain-stop”."
MSG_UNKNOWN_CATEGORY = "“{value}” is not a category. Choose one of: {choices}."
MSG_UNKNOWN_SEVERITY = "“{value}” is not a severity. Choose one of: {choices}."
MSG_UNKNOWN_PATTERN = "Choose how events are matched: one event, events in order, or several events."
MSG_NO_STEPS = "A rule needs at least one event to match."
MSG_SINGLE_STEPS = "A one-event rule matches exactly one event type; remove the extra steps or choose a pattern."
MSG_SEQUENCE_STEPS = "A sequence needs at least two events (for example a run, then a pain report)."
MSG_TOO_MANY_STEPS = "A pattern can have at most {max} events."
MSG_COUNT_STEPS = "A “several events” pattern describes one kind of event; use exactly one step."
MSG_DAYS_STEPS = "A “days in a row” pattern describes one kind of event; use exactly one step."
MSG_DAYS = f"How many days in a row: a whole number from 2 to {DAYS_MAX}."
MSG_WINDOW_DAYS = "A “days in a row” pattern has no time window (its days are the window); leave it empty."
MSG_EVIDENCE = "Choose what the advice rests on: {choices}."
MSG_REVIEW_BY = "Enter the review date as a date, or leave it empty for a year after the rule last changed."
MSG_COUNT = "How many events: a whole number of at least 2."
MSG_WINDOW = "The time window must be more than 0 hours."
MSG_WINDOW_SINGLE = "A one-event rule has no time window; leave it empty."
MSG_UNKNOWN_FACT_TYPE = "“{value}” is not an event type. Choose one of: {choices}."
MSG_NO_CONDITIONS = "Add at least one condition, so the rule does not fire on every {label}."
MSG_UNKNOWN_STEP = "There is no event number {value} in this rule."
MSG_UNKNOWN_FIELD = "“{value}” is not a field of a {label}. Choose one from the list."
MSG_UNKNOWN_OPERATOR = "“{value}” is not a comparison."
MSG_OPERATOR_KIND = "“{operator}” does not fit {field}, which is {kind}. Use one of: {choices}."
MSG_VALUE_AND_PARAMETER = "Give either a value or a parameter, not both."
MSG_NEEDS_VALUE = "Give a value or pick a parameter to compare {field} with."
MSG_NO_VALUE = "“{operator}” takes no value; leave value and parameter empty."
MSG_UNKNOWN_PARAMETER = "There is no parameter called “{value}” in this rule."
MSG_PARAMETER_KIND = "Parameter “{name}” is {kind}, but {field} is {field_kind}."
MSG_NOT_NUMBER = "Enter a number."
MSG_NOT_INTEGER = "Enter a whole number."
MSG_NOT_BOOLEAN = "Enter yes or no."
MSG_NOT_DATE = "Enter a date as YYYY-MM-DD."
MSG_NOT_TEXT = "Enter text."
MSG_OUT_OF_RANGE = "{value} is outside the range of {field} ({range})."
MSG_NOT_A_CHOICE = "“{value}” is not a possible value of {field}. Choose from: {choices}."
MSG_EMPTY_LIST = "Choose at least one value."
MSG_PARAMETER_NAME = "Use lower-case letters, digits and underscores, starting with a letter."
MSG_PARAMETER_DUPLICATE = "Another parameter already has this name."
MSG_PARAMETER_UNUSED = "No condition uses this parameter; remove it or use it."
MSG_COOLDOWN = f"Cooldown must be a whole number of days from 0 to {COOLDOWN_MAX_DAYS}."
MSG_DISPLAY_DAYS = (
    f"How long advice is shown must be a whole number of days from 0 (until it is withdrawn) to {DISPLAY_MAX_DAYS}."
)
MSG_WINDOW_MAX = f"The time window can be at most {WINDOW_MAX_HOURS // 24} days ({WINDOW_MAX_HOURS} hours)."
MSG_COUNT_MAX = f"How many events: at most {COUNT_MAX}."
MSG_PRIORITY = f"Priority must be a whole number from 0 to {PRIORITY_MAX} (lower comes first)."
MSG_SUMMARY_LENGTH = f"The summary can be at most {SUMMARY_MAX} characters; it is what many clinical systems show."
MSG_SUMMARY_PLACEHOLDER = (
    "The summary names “{value}”, which is neither a value of the matched events nor a parameter: insert "
    "values with the buttons under the message."
)
MSG_TOO_MANY_ALTERNATIVES = f"At most {ALTERNATIVES_MAX} alternatives in one “any of these” group."
MSG_TOO_MANY_VALUES = f"At most {ALTERNATIVES_MAX} values in one list."
MSG_NUMBER_TOO_LARGE = "{value} is too large; use a number between -1000000000 and 1000000000."
MSG_YES_NO = "Enter yes or no."
MSG_REFERS_SEVERITY = (
    "Only advice at least as urgent as “{floor}” can refer the {subject}: under referral, less urgent "
    "advice is held back, this rule's own included."
)
MSG_ADVICE_LIMIT = f"The most pieces of advice per event must be a whole number from 1 to {ADVICE_LIMIT_MAX}."
MSG_PLACEHOLDER = (
    "The message names “{value}”, which is neither a value of the matched events nor a parameter: insert "
    "values with the buttons under it."
)
MSG_MESSAGE_FORMAT = "The message has a brace without its pair; insert values with the buttons under it."
MSG_UNKNOWN_INDICATOR = "“{value}” is not a card indicator. Choose one of: {choices}, or leave it to the severity."
MSG_STATE_FIELD_PATTERN = "“{field}” describes the moment an event is judged, so only one-event rules can use it."
MSG_STATE_FIELD_GROUP = "“{field}” cannot be an alternative to a field of the event: put it in a group of its own."
MSG_REFERRAL_PLACEHOLDER = (
    "The {where} names “{value}”, which has a value only under referral: add the condition "
    "“{field}: yes” so that the rule fires only then."
)
# Safety-critical rules (Registry.register_safety_critical), in a clinician's words.
MSG_SAFETY_DISABLE = "“{name}” is safety-critical, so it cannot be switched off. Its numbers and wording can change."
MSG_SAFETY_DELETE = "“{name}” is safety-critical, so it cannot be deleted. Its numbers and wording can change."
MSG_SAFETY_MISSING = "“{name}” is safety-critical, so every ruleset must include it; this one does not."
MSG_SAFETY_SEVERITY = "“{name}” is safety-critical, so its advice cannot be made less urgent than “{severity}”."
MSG_SAFETY_SETTING = "“{name}” is safety-critical, so “{setting}” must stay on."
MSG_SAFETY_STRUCTURE = (
    "“{name}” is safety-critical, so what it looks for cannot change: only its numbers and wording can."
)

MSG_TEXT_TOO_LONG = "This text can be at most {max} characters; it has {length}."
MSG_VALUE_TOO_LONG = "A value can be at most {max} characters as typed; this one has {length}."

KIND_LABELS = {
    NUMBER: "a number",
    INTEGER: "a whole number",
    BOOLEAN: "yes or no",
    TEXT: "a choice of text",
    DATE: "a date",
}

Errors = dict[str, list[str]]


class RuleValidationError(Exception):
    """A rule spec is invalid; ``errors`` maps field paths to messages."""

    def __init__(self, errors: Errors) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def review_by_date(raw: Any) -> dt.date | None:
    """A review date as given (a date, or its ISO text); None when none is given. Raises
    ValueError (or TypeError) when it is no date."""
    if raw in (None, ""):
        return None
    if isinstance(raw, dt.datetime):
        raise TypeError("a moment, not a date")
    if isinstance(raw, dt.date):
        return raw
    return dt.date.fromisoformat(str(raw).strip())


def review_due(review_by: dt.date | str | None, last_changed: dt.date) -> dt.date:
    """The day a rule is due for review: its own review date, else a year after it last changed."""
    return review_by_date(review_by) or last_changed + REVIEW_AFTER


def coerce_value(raw: Any, kind: str) -> Any:
    """Turn a stored or typed value into the kind's Python value, or raise ValueError(message)."""
    if kind == BOOLEAN:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in {"true", "yes", "1"}:
            return True
        if isinstance(raw, str) and raw.strip().lower() in {"false", "no", "0"}:
            return False
        raise ValueError(MSG_NOT_BOOLEAN)
    if kind in (NUMBER, INTEGER):
        if isinstance(raw, bool) or raw is None or raw == "":
            raise ValueError(MSG_NOT_INTEGER if kind == INTEGER else MSG_NOT_NUMBER)
        try:
            number = float(raw)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(MSG_NOT_INTEGER if kind == INTEGER else MSG_NOT_NUMBER) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(MSG_NOT_INTEGER if kind == INTEGER else MSG_NOT_NUMBER)
        if kind == INTEGER:
            if not number.is_integer():
                raise ValueError(MSG_NOT_INTEGER)
            return int(number)
        return int(number) if number.is_integer() else number
    if kind == DATE:
        if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
            return raw.isoformat()
        try:
            return dt.date.fromisoformat(str(raw).strip()).isoformat()
        except ValueError:
            raise ValueError(MSG_NOT_DATE) from None
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(MSG_NOT_TEXT)
    return raw.strip()


def condition(
    field: str,
    operator: str,
    value: Any = None,
    *,
    parameter: str | None = None,
    step: int = 1,
    group: int = 1,
    negate: bool = False,
) -> dict[str, Any]:
    """One condition of a rule spec, for code that writes rule packs and tests."""
    return {
        "step": step,
        "group": group,
        "field": field,
        "operator": operator,
        "value": value,
        "parameter": parameter,
        "negate": negate,
    }


def value_text(value: Any) -> str:
    """A value as a clinician types it into a form field (and as the draft rows store it)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def coerce_list(raw: Any) -> list[str]:
    if isinstance(raw, str):
        items = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, (list, tuple)):
        items = [str(part).strip() for part in raw]
    else:
        raise ValueError(MSG_EMPTY_LIST)
    items = [item for item in items if item]
    if not items:
        raise ValueError(MSG_EMPTY_LIST)
    return items


def _check_against_field(value: Any, field: FieldSpec) -> str | None:
    """Return a message when an already-coerced value does not fit the field's range or choices."""
    if field.choices and field.kind == TEXT and value not in field.choices:
        return MSG_NOT_A_CHOICE.format(value=value, field=field.label, choices=", ".join(field.choices))
    if field.is_numeric:
        if (field.minimum is not None and value < field.minimum) or (
            field.maximum is not None and value > field.maximum
        ):
            return MSG_OUT_OF_RANGE.format(value=_number_text(value), field=field.label, range=field.describe_range())
        if abs(value) > NUMBER_MAX:
            return MSG_NUMBER_TOO_LARGE.format(value=_number_text(value))
    return None


def _number_text(value: float) -> str:
    """A number as a message shows it: 1e300 as "1e+300", not as its 301 digits."""
    return f"{float(value):g}" if abs(value) >= 1e15 else str(value)


def operators_for_kind(kind: str) -> list[str]:
    return [code for code, (_, kinds, _) in OPERATORS.items() if kind in kinds]


def field_for(spec: Mapping[str, Any], step: int, name: str, catalog: Registry = registry) -> FieldSpec | None:
    steps = spec.get("steps") or []
    if not (1 <= step <= len(steps)):
        return None
    fact_type = catalog.fact_type(steps[step - 1].get("fact_type", ""))
    return fact_type.field(name) if fact_type else None


def spec_validate(spec: Mapping[str, Any], catalog: Registry = registry) -> Errors:
    """Every problem of a rule spec against ``catalog``, by field path (``conditions.2.value``);
    empty when valid."""
    errors: Errors = {}

    def add(path: str, message: str) -> None:
        errors.setdefault(path, []).append(message)

    for path, messages in spec_text_problems(spec).items():
        errors[path] = messages
    for name in ("key", "name", "message", "category", "severity"):
        if not str(spec.get(name) or "").strip():
            add(name, MSG_REQUIRED)
    if spec.get("key") and not KEY_RE.match(str(spec["key"])):
        add("key", MSG_KEY)
    categories = [c.code for c in catalog.categories()]
    if spec.get("category") and categories and spec["category"] not in categories:
        add("category", MSG_UNKNOWN_CATEGORY.format(value=spec["category"], choices=", ".join(categories)))
    severities = [s.code for s in catalog.severities()]
    if spec.get("severity") and spec["severity"] not in severities:
        add("severity", MSG_UNKNOWN_SEVERITY.format(value=spec["severity"], choices=", ".join(severities)))
    if spec.get("refers") is True and spec.get("severity") in severities:
        floor = catalog.referral_floor_rank()
        if severities.index(spec["severity"]) > floor:
            add(
                "refers",
                MSG_REFERS_SEVERITY.format(floor=catalog.severities()[floor].label, subject=catalog.subject()[0]),
            )
    cooldown = spec.get("cooldown_days", 0)
    if cooldown is None:
        cooldown = 0
    if not _whole(cooldown, 0, COOLDOWN_MAX_DAYS):
        add("cooldown_days", MSG_COOLDOWN)
    if not _whole(spec.get("priority", RULE_FIELDS["priority"][1]), 0, PRIORITY_MAX):
        add("priority", MSG_PRIORITY)
    display = spec.get("display_days")
    if display is not None and not _whole(display, 0, DISPLAY_MAX_DAYS):
        add("display_days", MSG_DISPLAY_DAYS)
    indicator = spec.get("indicator") or ""
    indicators = [choice.code for choice in catalog.indicators()]
    if indicator and indicator not in indicators:
        add("indicator", MSG_UNKNOWN_INDICATOR.format(value=indicator, choices=", ".join(indicators)))
    for name in ("holds_back_lower", "refers", "follows_referral", "enabled"):
        if not isinstance(spec.get(name, RULE_FIELDS[name][1]), bool):
            add(name, MSG_YES_NO)
    summary = spec.get("summary") or ""
    if not isinstance(summary, str) or len(summary) > SUMMARY_MAX:
        add("summary", MSG_SUMMARY_LENGTH)

    # -- pattern and steps --------------------------------------------------------------
    pattern = spec.get("pattern") or SINGLE
    steps = list(spec.get("steps") or [])
    if pattern not in PATTERNS:
        add("pattern", MSG_UNKNOWN_PATTERN)
    if not steps:
        add("steps", MSG_NO_STEPS)
    elif pattern == SINGLE and len(steps) != 1:
        add("steps", MSG_SINGLE_STEPS)
    elif pattern == SEQUENCE and len(steps) < 2:
        add("steps", MSG_SEQUENCE_STEPS)
    elif pattern == COUNT and len(steps) != 1:
        add("steps", MSG_COUNT_STEPS)
    elif pattern == DAYS and len(steps) != 1:
        add("steps", MSG_DAYS_STEPS)
    if len(steps) > rules_settings.MAX_PATTERN_STEPS:
        add("steps", MSG_TOO_MANY_STEPS.format(max=rules_settings.MAX_PATTERN_STEPS))
    window = spec.get("window_hours")
    if pattern in (SEQUENCE, COUNT):
        try:
            hours = float(window) if window is not None and not isinstance(window, bool) else 0.0
        except (TypeError, ValueError, OverflowError):
            hours = 0.0
        if not hours > 0:  # also refuses NaN
            add("window_hours", MSG_WINDOW)
        elif hours > WINDOW_MAX_HOURS:
            add("window_hours", MSG_WINDOW_MAX)
    elif window not in (None, "", 0):
        add("window_hours", MSG_WINDOW_DAYS if pattern == DAYS else MSG_WINDOW_SINGLE)
    if pattern == COUNT:
        count = spec.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 2:
            add("count", MSG_COUNT)
        elif count > COUNT_MAX:
            add("count", MSG_COUNT_MAX)
    if pattern == DAYS and not _whole(spec.get("count"), 2, DAYS_MAX):
        add("count", MSG_DAYS)
    evidence = spec.get("evidence_level") or EVIDENCE_DEFAULT
    if evidence not in EVIDENCE_LEVELS:
        add(
            "evidence_level",
            MSG_EVIDENCE.format(choices=", ".join(label.lower() for label in EVIDENCE_LEVELS.values())),
        )
    if spec.get("review_by") not in (None, ""):
        try:
            review_by_date(spec["review_by"])
        except (TypeError, ValueError):
            add("review_by", MSG_REVIEW_BY)
    fact_type_names = [ft.name for ft in catalog.fact_types()]
    for index, step in enumerate(steps):
        if not catalog.fact_type(step.get("fact_type") or ""):
            add(
                f"steps.{index}.fact_type",
                MSG_UNKNOWN_FACT_TYPE.format(value=step.get("fact_type") or "", choices=", ".join(fact_type_names)),
            )

    # -- parameters ---------------------------------------------------------------------
    parameters: dict[str, Any] = {}
    parameter_kinds: dict[str, str] = {}
    parameter_labels = {
        str(p["name"]): str(p.get("label") or "") for p in spec.get("parameters") or [] if p.get("name")
    }
    for index, parameter in enumerate(spec.get("parameters") or []):
        name = str(parameter.get("name") or "")
        kind = parameter.get("kind")
        if not NAME_RE.match(name):
            add(f"parameters.{index}.name", MSG_PARAMETER_NAME)
            continue
        if name in parameters:
            add(f"parameters.{index}.name", MSG_PARAMETER_DUPLICATE)
            continue
        if kind not in PARAMETER_KINDS:
            add(f"parameters.{index}.kind", MSG_REQUIRED)
            continue
        try:
            parameters[name] = coerce_value(parameter.get("value"), kind)
            parameter_kinds[name] = kind
        except ValueError as exc:
            add(f"parameters.{index}.value", str(exc))

    # -- conditions ---------------------------------------------------------------------
    conditions = list(spec.get("conditions") or [])
    used_parameters: set[str] = set()
    for step_number, step in enumerate(steps, start=1):
        fact_type = catalog.fact_type(step.get("fact_type") or "")
        if fact_type and not any(int(c.get("step") or 1) == step_number for c in conditions):
            add(f"steps.{step_number - 1}.fact_type", MSG_NO_CONDITIONS.format(label=fact_type.label.lower()))
    group_sizes: dict[tuple[Any, Any], int] = {}
    for condition in conditions:
        slot = (condition.get("step") or 1, condition.get("group") or 1)
        group_sizes[slot] = group_sizes.get(slot, 0) + 1
    crowded: set[tuple[Any, Any]] = set()
    for index, condition in enumerate(conditions):
        path = f"conditions.{index}"
        slot = (condition.get("step") or 1, condition.get("group") or 1)
        if group_sizes[slot] > ALTERNATIVES_MAX:
            if slot not in crowded:  # one message for the whole group, on its first condition
                crowded.add(slot)
                add(f"{path}.group", MSG_TOO_MANY_ALTERNATIVES)
            continue
        try:
            step_number = int(condition.get("step") or 1)
        except (TypeError, ValueError):
            step_number = 0
        if not (1 <= step_number <= len(steps)):
            add(f"{path}.step", MSG_UNKNOWN_STEP.format(value=condition.get("step")))
            continue
        fact_type = catalog.fact_type(steps[step_number - 1].get("fact_type") or "")
        if fact_type is None:
            continue  # reported on the step
        field = fact_type.field(str(condition.get("field") or ""))
        if field is None:
            add(
                f"{path}.field",
                MSG_UNKNOWN_FIELD.format(value=condition.get("field") or "", label=fact_type.label.lower()),
            )
            continue
        if field.state:
            if pattern != SINGLE:
                add(f"{path}.field", MSG_STATE_FIELD_PATTERN.format(field=field.label))
                continue
            if any(
                not _is_state_field(spec, other, catalog)
                for other in conditions
                if (other.get("step") or 1, other.get("group") or 1) == slot
            ):
                add(f"{path}.group", MSG_STATE_FIELD_GROUP.format(field=field.label))
                continue
        operator = condition.get("operator")
        if operator not in OPERATORS:
            add(f"{path}.operator", MSG_UNKNOWN_OPERATOR.format(value=operator or ""))
            continue
        label, kinds, needs_value = OPERATORS[operator]
        if field.kind not in kinds:
            add(
                f"{path}.operator",
                MSG_OPERATOR_KIND.format(
                    operator=label,
                    field=field.label,
                    kind=KIND_LABELS[field.kind],
                    choices=", ".join(OPERATORS[o][0] for o in operators_for_kind(field.kind)),
                ),
            )
            continue
        value, parameter = condition.get("value"), condition.get("parameter")
        has_value = value not in (None, "", [])
        if not needs_value:
            if has_value or parameter:
                add(f"{path}.value", MSG_NO_VALUE.format(operator=label))
            continue
        if has_value and parameter:
            add(f"{path}.value", MSG_VALUE_AND_PARAMETER)
            continue
        if not has_value and not parameter:
            add(f"{path}.value", MSG_NEEDS_VALUE.format(field=field.label))
            continue
        if parameter:
            used_parameters.add(parameter)
            if parameter not in parameter_kinds:
                if not any(p.get("name") == parameter for p in spec.get("parameters") or []):
                    add(f"{path}.parameter", MSG_UNKNOWN_PARAMETER.format(value=parameter))
                continue
            expected = TEXT if operator in LIST_OPERATORS else field.kind
            compatible = parameter_kinds[parameter] == expected or (
                {parameter_kinds[parameter], expected} == {NUMBER, INTEGER} and field.kind == NUMBER
            )
            if not compatible:
                add(
                    f"{path}.parameter",
                    MSG_PARAMETER_KIND.format(
                        name=parameter_labels.get(parameter) or parameter,
                        kind=KIND_LABELS[parameter_kinds[parameter]],
                        field=field.label,
                        field_kind=KIND_LABELS[field.kind],
                    ),
                )
                continue
            values = coerce_list(parameters[parameter]) if operator in LIST_OPERATORS else [parameters[parameter]]
            target = f"parameters.{_parameter_index(spec, parameter)}.value"
            if target in errors:
                continue  # a parameter used by several conditions is told what is wrong with it once
        else:
            try:
                values = (
                    [coerce_value(v, TEXT) for v in coerce_list(value)]
                    if operator in LIST_OPERATORS
                    else [coerce_value(value, field.kind)]
                )
            except ValueError as exc:
                add(f"{path}.value", str(exc))
                continue
            target = f"{path}.value"
        if len(values) > ALTERNATIVES_MAX:
            add(target, MSG_TOO_MANY_VALUES)
            continue
        for item in values:
            problem = _check_against_field(item, field)
            if problem:
                add(target, problem)
    for index, parameter in enumerate(spec.get("parameters") or []):
        if parameter.get("name") in parameter_kinds and parameter.get("name") not in used_parameters:
            add(f"parameters.{index}.name", MSG_PARAMETER_UNUSED)

    # -- message placeholders -------------------------------------------------------------
    # Every parameter the rule names counts, even one whose value is refused: its own field says
    # what is wrong, and a second message about the placeholder would point at the wrong place.
    allowed = set(parameter_labels) | set(MESSAGE_EXTRA_PLACEHOLDERS) | set(REFERRAL_PLACEHOLDERS)
    for step in steps:
        fact_type = catalog.fact_type(step.get("fact_type") or "")
        if fact_type:
            allowed |= {name for name, field in fact_type.fields.items() if not field.state}
    under_referral = only_under_referral(spec)
    for name, unknown in (("message", MSG_PLACEHOLDER), ("summary", MSG_SUMMARY_PLACEHOLDER)):
        try:
            for _, placeholder, _, _ in string.Formatter().parse(str(spec.get(name) or "")):
                if placeholder is not None and placeholder not in allowed:
                    add(name, unknown.format(value=placeholder))
                elif placeholder in REFERRAL_PLACEHOLDERS and not under_referral:
                    where = rule_field_label(name, catalog).lower()
                    label = next((f.label for f in _state_fields(catalog) if f.name == UNDER_REFERRAL), UNDER_REFERRAL)
                    chip = f"[{SETTING_LABELS[placeholder]}]"
                    add(name, MSG_REFERRAL_PLACEHOLDER.format(where=where, value=chip, field=label))
        except ValueError:
            add(name, MSG_MESSAGE_FORMAT)
    return errors


def _state_fields(catalog: Registry) -> list[FieldSpec]:
    fact_types = catalog.fact_types()
    return [field for field in fact_types[0].fields.values() if field.state] if fact_types else []


def _is_state_field(spec: Mapping[str, Any], condition: Mapping[str, Any], catalog: Registry) -> bool:
    try:
        step = int(condition.get("step") or 1)
    except (TypeError, ValueError):
        return False
    field = field_for(spec, step, str(condition.get("field") or ""), catalog)
    return field is not None and field.state


def only_under_referral(spec: Mapping[str, Any]) -> bool:
    """Whether the rule fires only while the subject is under referral (a condition of its own
    that the referral is in force)."""
    for condition in spec.get("conditions") or []:
        if condition.get("field") != UNDER_REFERRAL or condition.get("negate"):
            continue
        try:
            value = coerce_value(condition.get("value"), BOOLEAN)
        except ValueError:
            continue
        alone = sum(
            1
            for other in spec.get("conditions") or []
            if (other.get("step") or 1, other.get("group") or 1)
            == (condition.get("step") or 1, condition.get("group") or 1)
        )
        if alone == 1 and (
            (condition.get("operator") == "eq" and value) or (condition.get("operator") == "ne" and not value)
        ):
            return True
    return False


def spec_text_problems(spec: Mapping[str, Any]) -> Errors:
    """Texts of a rule that are no text, or longer than their bound (``TEXT_MAX`` and friends)."""
    errors: Errors = {}

    def check(path: str, value: Any, limit: int, message: str = MSG_TEXT_TOO_LONG) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            errors[path] = [MSG_NOT_TEXT]
        elif len(value) > limit:
            errors[path] = [message.format(max=limit, length=len(value))]

    for name, limit in TEXT_MAX.items():
        check(name, spec.get(name), limit)

    def typed(value: Any) -> str | None:  # numbers have bounds of their own
        return value_text(value) if isinstance(value, (str, list, tuple)) else None

    for index, parameter in enumerate(spec.get("parameters") or []):
        if isinstance(parameter, Mapping):
            for name, limit in PARAMETER_TEXT_MAX.items():
                check(f"parameters.{index}.{name}", parameter.get(name), limit)
            check(f"parameters.{index}.value", typed(parameter.get("value")), VALUE_TEXT_MAX, MSG_VALUE_TOO_LONG)
    for index, condition in enumerate(spec.get("conditions") or []):
        if isinstance(condition, Mapping):
            check(f"conditions.{index}.value", typed(condition.get("value")), VALUE_TEXT_MAX, MSG_VALUE_TOO_LONG)
    return errors


def _whole(value: Any, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def spec_safety_problems(spec: Mapping[str, Any], reference: Mapping[str, Any], catalog: Registry = registry) -> Errors:
    """What an edit of a safety-critical rule may not do, by field path: switch it off, make it
    less urgent, turn off how it holds back and refers, or change what it looks for (its numbers
    and words may change). ``spec`` and ``reference`` (the rule as the domain ships it) are valid
    specs. Empty when the edit keeps the rule as safe as shipped."""
    spec, reference = spec_normalize(spec, catalog), spec_normalize(reference, catalog)
    name = reference["name"]
    errors: Errors = {}
    if not spec["enabled"]:
        errors["enabled"] = [MSG_SAFETY_DISABLE.format(name=name)]
    if catalog.severity_rank(spec["severity"]) > catalog.severity_rank(reference["severity"]):
        label = catalog.severity_label(reference["severity"])
        errors["severity"] = [MSG_SAFETY_SEVERITY.format(name=name, severity=label)]
    for setting in ("holds_back_lower", "refers", "follows_referral"):
        if reference[setting] and not spec[setting]:
            label = rule_field_label(setting, catalog)
            errors[setting] = [MSG_SAFETY_SETTING.format(name=name, setting=label)]
    if _structure(spec) != _structure(reference):
        errors["conditions"] = [MSG_SAFETY_STRUCTURE.format(name=name)]
    return errors


def safety_problems(spec: Mapping[str, Any], catalog: Registry = registry) -> Errors:
    """What a valid ``spec`` would take away from a safety-critical rule of ``catalog`` with the same
    key (none for other rules), by field path."""
    reference = catalog.safety_critical().get(spec.get("key"))
    return spec_safety_problems(spec, reference, catalog) if reference is not None else {}


def _structure(spec: Mapping[str, Any]) -> tuple:
    """What a rule looks for, whatever the order of its conditions or the numbers of its groups:
    its pattern, its steps, each step's groups of conditions and its parameters' names and kinds."""
    groups: dict[tuple[int, int], set[tuple]] = {}
    for c in spec["conditions"]:
        value = tuple(c["value"]) if isinstance(c["value"], list) else c["value"]
        groups.setdefault((c["step"], c["group"]), set()).add(
            (c["field"], c["operator"], repr(value), c["parameter"], c["negate"])
        )
    per_step: dict[int, set[frozenset]] = {}
    for (step, _group), conditions in groups.items():
        per_step.setdefault(step, set()).add(frozenset(conditions))
    return (
        spec["pattern"],
        tuple(step["fact_type"] for step in spec["steps"]),
        {step: frozenset(found) for step, found in per_step.items()},
        frozenset((p["name"], p["kind"]) for p in spec["parameters"]),
    )


def settings_validate(settings: Mapping[str, Any]) -> Errors:
    """Problems of a ruleset's own settings (``RULESET_SETTINGS``), by name; empty when valid."""
    errors: Errors = {}
    if not _whole(settings.get("advice_limit", RULESET_SETTINGS["advice_limit"][1]), 1, ADVICE_LIMIT_MAX):
        errors["advice_limit"] = [MSG_ADVICE_LIMIT]
    return errors


def settings_normalize(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every ruleset setting, defaults filled in (an old version published before one existed)."""
    settings = settings or {}
    return {name: settings.get(name, default) for name, (_, default) in RULESET_SETTINGS.items()}


def _parameter_index(spec: Mapping[str, Any], name: str) -> int:
    for index, parameter in enumerate(spec.get("parameters") or []):
        if parameter.get("name") == name:
            return index
    return 0


def spec_normalize(spec: Mapping[str, Any], catalog: Registry = registry) -> dict[str, Any]:
    """A canonical copy of a valid spec: stable key order and coerced values (same rule, same data)."""
    parameters = [
        {
            "name": p["name"],
            "label": p.get("label") or p["name"].replace("_", " "),
            "kind": p["kind"],
            "value": coerce_value(p["value"], p["kind"]),
            "unit": p.get("unit") or "",
        }
        for p in spec.get("parameters") or []
    ]
    conditions = []
    for c in spec.get("conditions") or []:
        step = int(c.get("step") or 1)
        value = c.get("value")
        if value in ("", []):
            value = None
        if value is not None:
            field = field_for(spec, step, c["field"], catalog)
            value = coerce_list(value) if c["operator"] in LIST_OPERATORS else coerce_value(value, field.kind)
        conditions.append(
            {
                "step": step,
                "group": int(c.get("group") or 1),
                "field": c["field"],
                "operator": c["operator"],
                "value": value,
                "parameter": c.get("parameter") or None,
                "negate": bool(c.get("negate")),
            }
        )
    pattern = spec.get("pattern") or SINGLE
    window = spec.get("window_hours")
    review_by = review_by_date(spec.get("review_by"))
    return {
        "key": spec["key"],
        "name": spec["name"],
        "description": spec.get("description") or "",
        "category": spec["category"],
        "severity": spec["severity"],
        "message": spec["message"],
        "summary": spec.get("summary") or "",
        "source_label": spec.get("source_label") or "",
        "cooldown_days": int(spec.get("cooldown_days") or 0),
        "holds_back_lower": bool(spec.get("holds_back_lower", False)),
        "refers": bool(spec.get("refers", False)),
        "follows_referral": bool(spec.get("follows_referral", False)),
        "indicator": spec.get("indicator") or "",
        "priority": int(spec.get("priority", RULE_FIELDS["priority"][1])),
        "enabled": bool(spec.get("enabled", True)),
        "evidence_level": spec.get("evidence_level") or EVIDENCE_DEFAULT,
        "review_by": review_by.isoformat() if review_by else None,
        "display_days": DISPLAY_DEFAULT_DAYS if spec.get("display_days") is None else int(spec["display_days"]),
        "pattern": pattern,
        "count": int(spec["count"]) if pattern in (COUNT, DAYS) else None,
        "window_hours": (int(float(window)) if float(window).is_integer() else float(window))
        if pattern not in (SINGLE, DAYS)
        else None,
        "steps": [{"fact_type": s["fact_type"]} for s in spec.get("steps") or []],
        "conditions": conditions,
        "parameters": parameters,
    }


# -- a whole ruleset --------------------------------------------------------------------------
MSG_TOO_MANY_RULES = "A ruleset can hold at most {max} rules; this one has {count}. Switch some off or remove them."
MSG_TOO_MANY_FOR_TYPE = (
    "The rules that look at one kind of event ({label}) may count at most {max}, each rule counting as "
    "its largest “any of these” group; this ruleset counts {count}. Switch some rules off or use fewer "
    "alternatives."
)
MSG_TOO_MANY_COMBINATIONS = (
    "The “any of these” groups of this rule combine into {count} alternatives; the engine takes at most "
    "{max}. Use fewer alternatives or split the rule."
)
MSG_KEY_TWICE = "Two rules use this key."
# The engine expands "any of these" groups into every combination of their alternatives, and
# fails on a rule with too many of them.
MAX_COMBINATIONS_PER_RULE = 64
# durable_rules refuses a fact when more than 64 branches of its network hold at once (error
# 303, see _engine_limits): this keeps a margin.
MAX_RULES_PER_FACT_TYPE = 60


def ruleset_validate(
    specs: Sequence[Mapping[str, Any]],
    *,
    settings: Mapping[str, Any] | None = None,
    safety: bool = True,
    catalog: Registry = registry,
) -> list[dict[str, Any]]:
    """Validate a whole ruleset against ``catalog`` and return its specs normalized, by key; raise
    RuleValidationError with every problem, keyed "<rule key>: <field path>" (or "ruleset: ...").

    Besides each spec's own problems: its settings, the most rules, keys used twice, the engine's
    limits and, with ``safety``, the safety-critical rules, which must be there, switched on and as
    safe as shipped (only an earlier version of a domain's own pack, read to recognise untouched
    rules, is read without).
    """
    errors: Errors = {}
    keys: set[str] = set()
    for path, messages in settings_validate(settings or {}).items():
        errors.setdefault(f"ruleset: {path}", []).extend(messages)
    enabled = [spec for spec in specs if spec.get("enabled", True) is not False]
    if len(enabled) > rules_settings.MAX_RULES:
        errors.setdefault("ruleset: rules", []).append(
            MSG_TOO_MANY_RULES.format(max=rules_settings.MAX_RULES, count=len(enabled))
        )
    for spec in specs:
        problems = spec_validate(spec, catalog) or (safety_problems(spec, catalog) if safety else {})
        for path, messages in problems.items():
            errors.setdefault(f"{spec.get('key') or '?'}: {path}", []).extend(messages)
        if spec.get("key") in keys:
            errors.setdefault(f"{spec.get('key')}: key", []).append(MSG_KEY_TWICE)
        keys.add(spec.get("key"))
    for key, reference in catalog.safety_critical().items() if safety else ():
        if key not in keys:
            errors.setdefault(f"{key}: key", []).append(MSG_SAFETY_MISSING.format(name=reference["name"]))
    if not errors:
        errors.update(_engine_limits(enabled, catalog))
    if errors:
        raise RuleValidationError(errors)
    return sorted((spec_normalize(s, catalog) for s in specs), key=lambda s: s["key"])


def _engine_groups(spec: Mapping[str, Any], step: int) -> list[int]:
    """The width of each "any of these" group of one step of a rule (a list of values counts each value)."""
    groups: dict[Any, int] = {}
    for condition in spec.get("conditions") or []:
        if int(condition.get("step") or 1) != step:
            continue
        value = condition.get("value")
        width = len(value) if condition.get("operator") in LIST_OPERATORS and isinstance(value, list) else 1
        slot = condition.get("group") or 1
        groups[slot] = groups.get(slot, 0) + width
    return list(groups.values()) or [1]


def _engine_limits(specs: Sequence[Mapping[str, Any]], catalog: Registry) -> Errors:
    """The engine's own limits on the rules that test one kind of fact.

    durable_rules refuses a fact (error 303) when more than 64 tests that follow one test of
    its network hold at once. Rules testing the same kind of fact share the first tests, and
    each "any of these" group branches, so the sum over those rules of their widest group
    bounds that number (checked against the engine on random rulesets: never exceeded when
    the sum stays within 64).
    """
    single: dict[str, int] = {}
    steps: dict[str, int] = {}
    errors: Errors = {}
    for spec in specs:
        counter = single if (spec.get("pattern") or SINGLE) == SINGLE else steps
        for number, step in enumerate(spec.get("steps") or [], start=1):
            fact_type = step.get("fact_type")
            widths = _engine_groups(spec, number)
            counter[fact_type] = counter.get(fact_type, 0) + max(widths)
            if math.prod(widths) > MAX_COMBINATIONS_PER_RULE:
                errors.setdefault(f"{spec.get('key')}: conditions", []).append(
                    MSG_TOO_MANY_COMBINATIONS.format(max=MAX_COMBINATIONS_PER_RULE, count=math.prod(widths))
                )
    for counter in (single, steps):
        for fact_type, count in counter.items():
            if count > MAX_RULES_PER_FACT_TYPE:
                found = catalog.fact_type(fact_type)
                errors.setdefault("ruleset: rules", []).append(
                    MSG_TOO_MANY_FOR_TYPE.format(
                        max=MAX_RULES_PER_FACT_TYPE, label=found.label if found else fact_type, count=count
                    )
                )
    return errors
