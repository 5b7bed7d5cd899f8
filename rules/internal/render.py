"""Filling a rule's message template with the values of the facts it matched."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any


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
