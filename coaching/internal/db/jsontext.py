"""JSON to and from the database on the hot path, by orjson where it gives what ``json`` gives.

The stored data of every event read and the documents the rows are written with are a large
share of an array's work, and orjson does it several times faster than ``json``. It is used
only where the result is the same value: numbers that orjson would not read exactly (integers
beyond 64 bits, which it turns into floats) and anything it refuses go through ``json``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.db.models import JSONField

# An integer of 19 digits or more may not fit in 64 bits: orjson reads it as a float. Found by
# mapping every byte to "0" (a digit) or " " and looking for 19 zeros, which is faster than a
# regular expression.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def json_text(value: Any) -> str:
    """The JSON text of ``value`` for the database to read: the value ``json.dumps`` gives
    (orjson writes non-ASCII characters as they are, and some floats in another notation)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a lone surrogate, a type it lacks
        return json.dumps(value, separators=(",", ":"))


def json_value(text: str) -> Any:
    """The value of JSON ``text`` read from the database, exactly as ``json.loads`` reads it."""
    if _LONG_RUN not in text.encode("utf-8", "surrogatepass").translate(_DIGITS_ONLY):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def json_field_loader(field: Any) -> Any:
    """A faster ``field.from_db_value`` for a JSONField without a decoder of its own (None for
    any other field): the same values, by ``json_value``."""
    if not isinstance(field, JSONField) or field.decoder is not None:
        return None
    if type(field).from_db_value is not JSONField.from_db_value:
        return None  # a subclass reading its own way

    def from_db_value(value: Any, expression: Any, connection: Any) -> Any:
        if not isinstance(value, str):
            return field.from_db_value(value, expression, connection)  # None, or a key's own SQL value
        try:
            return json_value(value)
        except json.JSONDecodeError:
            return field.from_db_value(value, expression, connection)

    return from_db_value
