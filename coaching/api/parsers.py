"""A JSON parser that refuses bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with 413."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from ..validation import json_number

BODY_TOO_LARGE = "The request body is larger than {limit} bytes. Send fewer events per request."
JSON_INVALID = "The body is not valid JSON: {error}"
JSON_TOO_DEEP = "The body is nested too deeply to be an event or a list of events."


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def body_limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 1024 * 1024


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(BODY_TOO_LARGE.format(limit=body_limit()))


class LimitedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        limit = body_limit()
        # Django enforces the limit only on request.body; DRF reads the stream, so check here too.
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise too_large()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.loads(
                raw.decode(encoding), parse_constant=_reject_constant, parse_int=_parse_int, parse_float=json_number
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(JSON_INVALID.format(error=exc)) from None
        except RecursionError:
            raise ParseError(JSON_TOO_DEEP) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON value")


def _parse_int(digits: str) -> int | float:
    # Python refuses to parse an int of over 4300 digits, which would fail the whole array; as a
    # float (infinity) it fails only the field it is in, like any number out of range.
    try:
        return int(digits)
    except ValueError:
        return float(digits)
