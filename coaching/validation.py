"""Checking an incoming event against the catalog, naming every bad field by its path."""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.utils import timezone

from rules.registry import BOOLEAN, DATE, INTEGER, NUMBER, TEXT, FieldSpec

from .catalog import FACT_TYPES

MAX_ID_LENGTH = 100
MAX_FUTURE = timedelta(days=1)
# Dates before this are typing mistakes, and far-past datetimes overflow the window arithmetic.
EARLIEST = date(1970, 1, 1)
EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)  # an instant: 1970-01-01T00:30+01:00 is before it
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Unicode's control characters (general category Cc, fixed since Unicode 1.1): C0, DEL and C1.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# /api/v1/members/<member>/advice/ is a member's advice, so a member id ending so could not be read.
AMBIGUOUS_MEMBER_SUFFIX = "/advice"

NOT_AN_OBJECT = "Send an event as a JSON object."
REQUIRED = "This field is required."
NOT_NULL = "This field may not be null."
UNKNOWN_FIELD = "Unknown field."
ID_INVALID = f"Must be a string of 1 to {MAX_ID_LENGTH} characters."
ID_CONTROL_CHARACTER = "Must not contain control characters (such as NUL, tab or newline)."
NOT_UNICODE = "Must be valid Unicode text: a lone surrogate (such as \\ud800) is not a character."
MEMBER_ID_AMBIGUOUS = (
    "Must not end in '/advice': /api/v1/members/<member>/advice/ would read as the advice of another member."
)
TYPE_INVALID = "Must be one of: {choices}."
DATETIME_INVALID = "Must be an ISO 8601 date and time with a UTC offset, for example 2026-11-20T07:30:00+01:00."
DATETIME_NO_OFFSET = "Add a UTC offset (for example +01:00 or Z): a time without one is ambiguous."
DATETIME_FUTURE = "Must not be more than 1 day in the future."
DATETIME_TOO_EARLY = f"Must not be before {EARLIEST.isoformat()}."
DATA_NOT_AN_OBJECT = "Must be a JSON object with the fields of the event type."
NUMBER_INVALID = "Must be a number."
NUMBER_UNDERFLOW = "Too small to tell apart from 0 ({value}): send 0, or a number of at least 1e-300."
INTEGER_INVALID = "Must be a whole number."
BOOLEAN_INVALID = "Must be true or false."
TEXT_INVALID = "Must be a string."
CHOICE_INVALID = "Must be one of: {choices}."
DATE_INVALID = "Must be a date as YYYY-MM-DD."
DATE_FUTURE = "Must not be in the future."
DATE_TOO_EARLY = f"Must not be before {EARLIEST.isoformat()}."
BELOW_MINIMUM = "Must be at least {minimum}."
ABOVE_MAXIMUM = "Must be at most {maximum}."

TOP_LEVEL_FIELDS = ("external_id", "member", "type", "occurred_at", "data")

Errors = dict[str, list[str]]


@dataclass(frozen=True)
class CleanEvent:
    external_id: str
    member: str
    type: str
    occurred_at: datetime  # aware, in the offset it was sent with
    data: dict[str, Any]


def event_validate(payload: Any, *, now: datetime | None = None) -> tuple[CleanEvent | None, Errors]:
    """Return the cleaned event, or None and every problem keyed by field path."""
    if not isinstance(payload, Mapping):
        return None, {"non_field_errors": [NOT_AN_OBJECT]}
    now = now or timezone.now()
    errors: Errors = {}

    for key in payload:
        if key not in TOP_LEVEL_FIELDS:
            errors[_path(key)] = [UNKNOWN_FIELD]

    external_id = _identifier(payload, "external_id", errors)
    member = _identifier(payload, "member", errors)
    if member is not None and member.endswith(AMBIGUOUS_MEMBER_SUFFIX):
        errors["member"] = [MEMBER_ID_AMBIGUOUS]
        member = None

    event_type = payload.get("type")
    if "type" not in payload:
        errors["type"] = [REQUIRED]
    elif not isinstance(event_type, str) or event_type not in FACT_TYPES:
        errors["type"] = [TYPE_INVALID.format(choices=", ".join(FACT_TYPES))]
        event_type = None

    occurred_at = _occurred_at(payload, now, errors)

    data = payload.get("data", {})
    clean_data: dict[str, Any] = {}
    if data is None or not isinstance(data, Mapping):
        errors["data"] = [DATA_NOT_AN_OBJECT]
    elif event_type:
        clean_data = _data(event_type, data, occurred_at or now, now, errors)

    if errors:
        return None, errors
    assert external_id and member and event_type and occurred_at
    return CleanEvent(external_id, member, event_type, occurred_at, clean_data), {}


def _identifier(payload: Mapping[str, Any], name: str, errors: Errors) -> str | None:
    if name not in payload:
        errors[name] = [REQUIRED]
        return None
    value = payload[name]
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        errors[name] = [ID_INVALID]
        return None
    if _CONTROL.search(value):  # PostgreSQL cannot even store a NUL
        errors[name] = [ID_CONTROL_CHARACTER]
        return None
    if not _unicode(value):
        errors[name] = [NOT_UNICODE]
        return None
    return value


def _unicode(text: str) -> bool:
    """False for a string with a lone surrogate: JSON's "\\ud800" decodes to one, and no database
    (nor UTF-8) can store it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _path(key: Any, prefix: str = "") -> str:
    """The field path an error is keyed by, printable even when the key itself is not valid text."""
    return prefix + str(key).encode("utf-8", "backslashreplace").decode("utf-8")


def _occurred_at(payload: Mapping[str, Any], now: datetime, errors: Errors) -> datetime | None:
    if "occurred_at" not in payload:
        errors["occurred_at"] = [REQUIRED]
        return None
    value = payload["occurred_at"]
    parsed = _parse_datetime(value)
    if parsed is None:
        errors["occurred_at"] = [DATETIME_INVALID]
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        errors["occurred_at"] = [DATETIME_NO_OFFSET]
        return None
    if parsed > now + MAX_FUTURE:
        errors["occurred_at"] = [DATETIME_FUTURE]
        return None
    if parsed < EARLIEST_MOMENT:  # instants compare in UTC, whatever offset each was sent with
        errors["occurred_at"] = [DATETIME_TOO_EARLY]
        return None
    return parsed


def _parse_datetime(value: Any) -> datetime | None:
    # A bare date would parse as midnight without an offset; insist on a time part.
    if not isinstance(value, str) or "T" not in value.upper():
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _data(
    event_type: str, data: Mapping[str, Any], occurred_at: datetime, now: datetime, errors: Errors
) -> dict[str, Any]:
    specs, by_name = _specs(event_type)
    clean: dict[str, Any] = {}
    for name, value in data.items():
        spec = by_name.get(name)
        if spec is None:
            errors[_path(name, prefix="data.")] = [UNKNOWN_FIELD]
            continue
        if value is None:
            errors[_path(name, prefix="data.")] = [NOT_NULL]
            continue
        cleaned, problem = _field(spec, value, occurred_at, now)
        if problem:
            errors[_path(name, prefix="data.")] = [problem]
        else:
            clean[name] = cleaned
    for spec in specs:
        if spec.required and spec.name not in data:
            errors[f"data.{spec.name}"] = [REQUIRED]
    return clean


@functools.cache
def _specs(event_type: str) -> tuple[tuple[FieldSpec, ...], dict[str, FieldSpec]]:
    _label, specs = FACT_TYPES[event_type]
    return tuple(specs), {spec.name: spec for spec in specs}


class Underflow(float):
    """A number sent as JSON that is not 0 but too small for a float (``1e-400``): it reads as 0.0,
    so it is kept apart (``json_number``) and refused rather than stored as 0."""

    text: str

    def __new__(cls, text: str) -> Underflow:
        number = super().__new__(cls, 0.0)
        number.text = text
        return number


def json_number(text: str) -> float:
    """``parse_float`` for events read from JSON (the API, imported files) and CSV cells: the
    number ``text`` says, or an ``Underflow`` when it says something other than 0 that a float
    can only hold as 0."""
    number = float(text)
    if number == 0.0 and any(digit in "123456789" for digit in text.lower().partition("e")[0]):
        return Underflow(text)
    return number


def _field(spec: FieldSpec, value: Any, occurred_at: datetime, now: datetime) -> tuple[Any, str | None]:
    if isinstance(value, Underflow):
        return None, NUMBER_UNDERFLOW.format(value=value.text)
    if spec.kind == BOOLEAN:
        return (value, None) if isinstance(value, bool) else (None, BOOLEAN_INVALID)
    if spec.kind == TEXT:
        if not isinstance(value, str):
            return None, TEXT_INVALID
        if not _unicode(value):
            return None, NOT_UNICODE
        if spec.choices and value not in spec.choices:
            return None, CHOICE_INVALID.format(choices=", ".join(spec.choices))
        return value, None
    if spec.kind == DATE:
        return _date_field(value, occurred_at, now)
    if spec.kind == INTEGER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, INTEGER_INVALID
        if isinstance(value, float):
            if not value.is_integer():
                return None, INTEGER_INVALID
            value = int(value)
    elif spec.kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, NUMBER_INVALID
        if isinstance(value, float) and not math.isfinite(value):
            return None, NUMBER_INVALID
    # Python compares an int of any size with a bound exactly; only converting it to float overflows.
    if spec.minimum is not None and value < spec.minimum:
        return None, BELOW_MINIMUM.format(minimum=_fmt(spec.minimum))
    if spec.maximum is not None and value > spec.maximum:
        return None, ABOVE_MAXIMUM.format(maximum=_fmt(spec.maximum))
    if abs(value) > sys.float_info.max:  # a field without bounds: the engine judges numbers as floats
        return None, NUMBER_INVALID
    return value, None


def _date_field(value: Any, occurred_at: datetime, now: datetime) -> tuple[Any, str | None]:
    # Strictly YYYY-MM-DD: date.fromisoformat also takes week dates and, on 3.11, "20260101xx".
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        return None, DATE_INVALID
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return None, DATE_INVALID
    # "The future" is judged in the event's own offset: neither after the event nor after today there.
    tz = occurred_at.tzinfo
    latest = min(occurred_at.astimezone(tz).date(), now.astimezone(tz).date())
    if parsed > latest:
        return None, DATE_FUTURE
    if parsed < EARLIEST:
        return None, DATE_TOO_EARLY
    return value, None


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
