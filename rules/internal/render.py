"""Filling a rule's message template with the values of the facts it matched."""
from __future__ import annotations

import string
from typing import Any, Mapping


def display_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".") if not value.is_integer() else str(int(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(display_value(v) for v in value)
    return str(value)


class _Values(dict):
    def __missing__(self, key: str) -> str:
        return "–"


def render_message(template: str, *sources: Mapping[str, Any]) -> str:
    """Placeholders take the first source that has a value; unknown ones render as a dash."""
    values = _Values()
    for source in reversed(sources):
        values.update({k: display_value(v) for k, v in source.items() if v is not None})
    try:
        return string.Formatter().vformat(template, (), values)
    except (ValueError, IndexError, AttributeError, KeyError):
        return template
