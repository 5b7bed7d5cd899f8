"""The API's JSON renderer writes what DRF's writes: the same bytes for the API's plain data
(text of any plane, U+2028 and U+2029 escaped, nested lists and objects, booleans and null,
integers of any size), the same values for floats, and DRF's own output wherever orjson would
write otherwise (moments, decimals, indentation asked for)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import pytest
from rest_framework import renderers
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from coaching.api.renderers import JSONRenderer

PLAIN = [
    {"id": 1, "external_id": "run 1", "advice": [], "withdrawn": None, "ok": True},
    {"text": 'quote " backslash \\ slash / tab\t newline\n', "unicode": "“curly” ümlaut 🏃 𝄞"},
    {"lines": "a\u2028b\u2029c"},
    [{"nested": [[1, 2, [3]], {"deep": {"deeper": ["x", None, False]}}]}],
    {"big": 10**30, "negative": -(2**63), "zero": 0},
    ReturnDict({"key": "value", "list": ReturnList([1, 2], serializer=None)}, serializer=None),
    {"errors": {"data.pain": ["Must be at most 10."]}},
    {"id": uuid.UUID("12345678-1234-5678-1234-567812345678")},
    "plain string",
    [],
]


@pytest.mark.parametrize("data", PLAIN)
def test_plain_data_is_written_byte_for_byte_as_drf_writes_it(data):
    assert JSONRenderer().render(data) == renderers.JSONRenderer().render(data)


def test_floats_are_the_same_values():
    data = {"values": [0.1 + 0.2, 1e-7, 1e16, 5e-324, 1.7976931348623157e308, -0.0, 3.03, 10.0]}
    ours, drf = JSONRenderer().render(data), renderers.JSONRenderer().render(data)
    assert json.loads(ours) == json.loads(drf)
    assert [repr(v) for v in json.loads(ours)["values"]] == [repr(v) for v in json.loads(drf)["values"]]


@pytest.mark.parametrize(
    "data",
    [
        {"at": dt.datetime(2026, 11, 26, 7, 30, 15, 123456, tzinfo=dt.UTC)},
        {"day": dt.date(2026, 11, 26), "time": dt.time(7, 30)},
        {"amount": decimal.Decimal("1.10")},
    ],
)
def test_what_orjson_would_write_otherwise_is_written_by_drf(data):
    assert JSONRenderer().render(data) == renderers.JSONRenderer().render(data)


def test_indentation_asked_for_is_drfs():
    data = {"a": [1, {"b": "c"}]}
    media = "application/json; indent=2"
    assert JSONRenderer().render(data, media) == renderers.JSONRenderer().render(data, media)
    assert JSONRenderer().render(None) == b""


def test_the_api_answers_with_it(client, pack):
    from .conftest import run

    response = client.send([run(external_id="r1", pain_during=7)], expect=200)
    assert response["Content-Type"] == "application/json"
    assert type(response.accepted_renderer) is JSONRenderer
    assert response.json()[0]["status"] == 201 and response.json()[0]["event"]["advice"]
