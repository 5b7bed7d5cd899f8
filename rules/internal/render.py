"""Filling a rule's message template with the values of the facts it matched."""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rules.registry import BOOLEAN, DATE, TEXT


def offset_words(at: dt.datetime) -> str:
    """A moment's UTC offset as people write it: "UTC", "UTC+01:00", "UTC−05:30"."""
    minutes = int((at.utcoffset() or dt.timedelta(0)).total_seconds() // 60)
    if not minutes:
        return "UTC"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'+' if minutes > 0 else '−'}{hours:02d}:{rest:02d}"


def moment_words(at: dt.datetime) -> str:
    """A fact's moment in its own offset, as the admin writes every subject's moment:
    "20 Nov 2026, 07:30 (UTC+01:00)"."""
    return f"{at.day} {at:%b %Y, %H:%M} ({offset_words(at)})"


def display_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".") if not value.is_integer() else str(int(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(display_value(v) for v in value)
    return str(value)


def with_unit(value: Any, unit: str) -> str:
    """A value with its unit as people write it: "5 km", "6/10", "1 run", "3 runs"."""
    text = display_value(value)
    if not unit:
        return text
    if unit.startswith("/"):
        return f"{text}{unit}"
    if value == 1 and unit.endswith("s") and len(unit) > 2:
        unit = unit[:-1]  # "1 runs" reads "1 run"
    return f"{text} {unit}"


def placeholders(template: str) -> tuple[str, ...]:
    """The names a message template uses, e.g. ("pain_during", "threshold")."""
    try:
        return tuple(dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(template) if name))
    except ValueError:
        return ()


_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_CHIP = re.compile(r"\[([^\[\]{}]+)\]")


def chips_from_placeholders(template: str, labels: Mapping[str, str]) -> str:
    """A message template as the editor shows it: each {name} as its labelled chip, "[Pain after
    the run]" (a name without a label stays as typed, for validation to name)."""
    return _PLACEHOLDER.sub(lambda m: f"[{labels[m[1]]}]" if m[1] in labels else m[0], template)


def placeholders_from_chips(text: str, labels: Mapping[str, str]) -> str:
    """The template a message typed with chips stands for: each "[label]" of ``labels`` (name ->
    label) as {name}; brackets around anything else are the message's own."""
    names = {label: name for name, label in reversed(list(labels.items()))}
    return _CHIP.sub(lambda m: "{" + names[m[1]] + "}" if m[1] in names else m[0], text)


def render_segments(
    template: str,
    values: Mapping[str, str],
    labels: Mapping[str, str],
) -> list[tuple[str, str]]:
    """A template filled with ``values`` as (text, label) pieces: the label is that of the inserted
    value ("" for the template's own text), so that a page can show each value as a chip. A value
    not given shows as its label in brackets."""
    pieces: list[tuple[str, str]] = []
    at = 0
    for found in _PLACEHOLDER.finditer(template):
        if found.start() > at:
            pieces.append((template[at : found.start()], ""))
        name = found[1]
        label = labels.get(name, name.replace("_", " "))
        shown = values.get(name)
        pieces.append((shown if shown not in (None, "") else f"[{label}]", label))
        at = found.end()
    if at < len(template):
        pieces.append((template[at:], ""))
    return pieces


def render_message(
    template: str,
    names: tuple[str, ...],
    *sources: Mapping[str, Any],
    labels: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """Each placeholder takes the first source that has a value for it; a missing one renders as a dash.

    A coded value with a label in ``labels`` (field -> {code: label}) is shown as its label.
    """
    values = {}
    for name in names:
        for source in sources:
            value = source.get(name)
            if value is not None:
                choices = labels.get(name) if labels else None
                shown = choices.get(value) if choices and isinstance(value, str) else None
                values[name] = shown or display_value(value)
                break
        else:
            values[name] = "–"
    try:
        return template.format_map(values)
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


@dataclass(frozen=True)
class MatchedCondition:
    """A condition of the judged fact, as the {matched} placeholder reads it (negation applied)."""

    field: str
    operator: str
    value: Any
    kind: str
    words: str  # the field inside a sentence
    unit: str = ""


def _holds(condition: MatchedCondition, data: Mapping[str, Any]) -> bool:
    actual = data.get(condition.field)
    operator, value = condition.operator, condition.value
    if operator == "exists":
        return actual is not None
    if operator == "missing":
        return actual is None
    if actual is None:
        return False
    if condition.kind == DATE:
        try:
            actual = dt.date.fromisoformat(str(actual)).toordinal()
        except ValueError:
            return False
    try:
        if operator == "eq":
            return actual == value
        if operator == "ne":
            return actual != value
        if operator == "in":
            return actual in value
        if operator == "not_in":
            return actual not in value
        if operator in ("lt", "lte", "gt", "gte"):
            return {"lt": actual < value, "lte": actual <= value, "gt": actual > value, "gte": actual >= value}[
                operator
            ]
    except TypeError:
        return False
    return False


def _phrase(condition: MatchedCondition, data: Mapping[str, Any], labels: Mapping[str, Mapping[str, str]]) -> str:
    actual = data.get(condition.field)
    if condition.kind == TEXT:
        shown = (labels.get(condition.field) or {}).get(actual) or display_value(actual).replace("_", " ")
        return f"{condition.words}: {shown}"
    return f"{condition.words} of {with_unit(actual, condition.unit)}"


def matched_text(
    groups: Sequence[Sequence[MatchedCondition]],
    data: Mapping[str, Any],
    labels: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """What made a rule fire, in words: in each group of alternatives, the conditions that hold
    for ``data`` ("numbness around the saddle area and leg weakness"; "pain during the run of
    6/10"). A yes/no sign that holds is named on its own; a value is named (with the subject's
    own number) where no sign of its group holds. Conditions that a field is missing, not
    recorded or no are left out: they name nothing the subject reported."""
    labels = labels or {}
    phrases: dict[str, str] = {}
    for group in groups:
        held = [c for c in group if c.operator not in ("ne", "not_in", "missing", "exists") and _holds(c, data)]
        signs = [c for c in held if c.kind == BOOLEAN and c.value is True]
        for condition in signs or [c for c in held if c.kind not in (BOOLEAN, DATE)]:
            phrases.setdefault(
                condition.field, condition.words if condition.kind == BOOLEAN else _phrase(condition, data, labels)
            )
    return words_joined(list(phrases.values()))


def words_joined(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
