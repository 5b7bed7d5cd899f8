"""OpenAPI pieces built from the event catalog, so /api/docs/ shows the event fields as they are enforced."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from rules.registry import BOOLEAN, DATE, INTEGER, NUMBER, TEXT, FieldSpec

from ..catalog import FACT_TYPES
from .examples import examples_attach

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
SCOPE_MISSING = OpenApiResponse(DetailSerializer, "The key's scopes do not allow this; the answer names the scope.")
THROTTLED = OpenApiResponse(DetailSerializer, "Too many requests for the gym; see the Retry-After header.")
NOT_FOUND = OpenApiResponse(DetailSerializer, "No such member (another gym's members do not exist for you).")
GYM_RESPONSES = {401: NOT_AUTHENTICATED, 403: SCOPE_MISSING, 429: THROTTLED}


# -- the OpenAPI document, made exact where drf-spectacular cannot say it ---------------------------
_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f"
_ANY = f"[^{_CONTROL}]"
ID_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 100,
    # Not blank, and no control character (NUL, tab, newline ...): what validation refuses.
    "pattern": f"^{_ANY}*[^\\s{_CONTROL}]{_ANY}*$",
}
RATE_HEADERS = {
    "RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests the gym may send per window."},
    "RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests left in this window."},
    "RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Seconds until the window starts again."},
}
REQUEST_ID = {"X-Request-ID": {"schema": {"type": "string"}, "description": "This request's id, as the logs name it."}}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before sending again."}}
UNAVAILABLE = {
    "description": "The database cannot take the request now (read-only, unreachable or busy, as `detail` says); "
    "nothing was stored: send the same request again after Retry-After.",
    "headers": RETRY_AFTER,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Detail"}}},
}


def event_in_schema(event_type: str) -> dict[str, Any]:
    label, specs = FACT_TYPES[event_type]
    # ``data`` may be left out (it means {}) where the type has no required field.
    required = ["external_id", "member", "type", "occurred_at"] + (["data"] if any(s.required for s in specs) else [])
    return {
        "type": "object",
        "title": f"{label} event",
        "properties": {
            "external_id": {**ID_SCHEMA, "description": "The gym's own id of the event, unique per gym."},
            "member": {**ID_SCHEMA, "description": "The gym's own id of the member; an unknown id creates the member."},
            "type": {"type": "string", "enum": [event_type]},
            "occurred_at": {
                "type": "string",
                "format": "date-time",
                "description": "ISO 8601 with an offset, from 1970 on and at most one day ahead.",
            },
            "data": event_data_schema(event_type),
        },
        "required": required,
        "additionalProperties": False,
    }


def _link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "description": description, "parameters": parameters}


# What an answer's ids lead to (OpenAPI links): for readers, and for stateful API testing.
LINKS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("/api/v1/events/", "post", "201"): {
        "Member": _link("api_v1_members_retrieve", "The event's member.", member="$response.body#/member"),
        "MemberAdvice": _link("api_v1_members_advice_list", "The member's advice.", member="$response.body#/member"),
        "EraseMember": _link("api_v1_members_destroy", "Erase the member.", member="$response.body#/member"),
    },
    ("/api/v1/webhooks/", "post", "201"): {
        "Endpoint": _link("api_v1_webhooks_retrieve", "The endpoint.", endpoint_id="$response.body#/id"),
        "NewSecret": _link("api_v1_webhooks_secret_create", "A new secret.", endpoint_id="$response.body#/id"),
        "RemoveEndpoint": _link("api_v1_webhooks_destroy", "Remove the endpoint.", endpoint_id="$response.body#/id"),
    },
}


def schema_postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular's document, made exact: events keyed on their type, an array's items as
    free as the API takes them (a bad item never stops the others), every query parameter as the
    API validates it, the headers every answer carries, 503 where the database may refuse."""
    schemas = result["components"]["schemas"]
    for event_type in FACT_TYPES:
        schemas[f"{''.join(p.title() for p in event_type.split('_'))}EventIn"] = event_in_schema(event_type)
    names = {t: f"{''.join(p.title() for p in t.split('_'))}EventIn" for t in FACT_TYPES}
    schemas["EventIn"] = {
        "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in names.values()],
        "discriminator": {
            "propertyName": "type",
            "mapping": {t: f"#/components/schemas/{n}" for t, n in names.items()},
        },
    }
    schemas["EventOrBatch"] = {
        "oneOf": [
            {"$ref": "#/components/schemas/EventIn"},
            {
                "type": "array",
                "maxItems": 500,
                "items": {},
                "description": "Up to 500 events; each item is judged on its own (a bad one gets its own 400 item).",
            },
        ]
    }
    for path, operations in result["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.setdefault("schema", {})
                if parameter["in"] == "query" and schema.get("type") == "string":
                    schema["minLength"] = 1
                if parameter["name"] == "page_size":
                    parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": 500}
                if parameter["name"] == "cursor":
                    parameter["description"] = "A `next` or `previous` link's cursor, as it came; anything else is 400."
                if parameter["in"] == "path" and parameter["name"] == "member":
                    parameter["schema"] = dict(ID_SCHEMA)
            if path == "/healthz":
                continue
            responses = operation.setdefault("responses", {})
            if method in ("post", "delete"):
                responses.setdefault("503", UNAVAILABLE)
            for code, response in responses.items():
                headers = response.setdefault("headers", {})
                headers.update(REQUEST_ID)
                headers.update(RATE_HEADERS)
                if code in ("429", "503"):
                    headers.update(RETRY_AFTER)
    for (path, method, code), links in LINKS.items():
        result["paths"][path][method]["responses"][code]["links"] = links
    examples_attach(result)
    return result
