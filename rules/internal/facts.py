"""Turning domain facts into the small JSON documents durable_rules sees."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

# Names the engine puts on every fact; a domain field may not use them.
RESERVED_FIELD_NAMES = frozenset({"id", "sid", "type"})
SCRATCH_SID = "0"


def engine_value(value: Any, is_date: bool) -> Any:
    """Dates become day numbers so that the engine can compare them."""
    if value is None:
        return None
    if is_date:
        if isinstance(value, dt.datetime):
            return value.date().toordinal()
        if isinstance(value, dt.date):
            return value.toordinal()
        try:
            return dt.date.fromisoformat(str(value)).toordinal()
        except ValueError:
            return None
    return value


def projector(fields: Iterable[str], date_fields: frozenset[str]):
    """A fast function data -> engine fields, for one fact type's list of fields."""
    plain = tuple(name for name in fields if name not in date_fields)
    dates = tuple(name for name in fields if name in date_fields)

    def _project(document: dict[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
        for name in plain:
            value = data.get(name)
            if value is not None:
                document[name] = value
        for name in dates:
            value = engine_value(data.get(name), True)
            if value is not None:
                document[name] = value
        return document

    return _project
