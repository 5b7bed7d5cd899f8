"""OpenAPI pieces built from the event catalog, so /api/docs/ shows the event fields as they are enforced."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from rules.registry import BOOLEAN, DATE, INTEGER, NUMBER, TEXT, FieldSpec

from ..catalog import FACT_TYPES

_KIND_SCHEMA = {
    NUMBER: {"type": "number"},
    INTEGER: {"type": "integer"},
    BOOLEAN: {"type": "boolean"},
    TEXT: {"type": "string"},
    DATE: {"type": "string", "format": "date"},
}


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    schema: dict[str, Any] = dict(_KIND_SCHEMA[spec.kind])
    if spec.choices:
        schema["enum"] = list(spec.choices)
    if spec.minimum is not None:
        schema["minimum"] = spec.minimum
    if spec.maximum is not None:
        schema["maximum"] = spec.maximum
    description = (
        spec.label + (f" ({spec.unit})" if spec.unit else "") + (f": {spec.help_text}" if spec.help_text else "")
    )
    schema["description"] = description
    return schema


def event_data_schema(event_type: str) -> dict[str, Any]:
    label, specs = FACT_TYPES[event_type]
    schema: dict[str, Any] = {
        "type": "object",
        "title": f"{label} data",
        "description": f'The fields of a "{event_type}" event; unknown fields are rejected.',
        "properties": {spec.name: _field_schema(spec) for spec in specs},
        "additionalProperties": False,
    }
    required = [spec.name for spec in specs if spec.required]
    if required:
        schema["required"] = required
    return schema


EVENT_DATA_SCHEMA: dict[str, Any] = {
    "description": "The fields of the event's type (see docs/api.md): one of these, chosen by `type`.",
    "anyOf": [event_data_schema(name) for name in FACT_TYPES],
}


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


NOT_AUTHENTICATED = OpenApiResponse(DetailSerializer, "No key, or a key that is not valid.")
THROTTLED = OpenApiResponse(DetailSerializer, "Too many requests for the gym; see the Retry-After header.")
NOT_FOUND = OpenApiResponse(DetailSerializer, "No such member (another gym's members do not exist for you).")
GYM_RESPONSES = {401: NOT_AUTHENTICATED, 429: THROTTLED}
