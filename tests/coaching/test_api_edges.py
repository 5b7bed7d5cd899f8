"""Where docs/api.md is silent: what a DRF client expects at the edges."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pytest
from django.test import Client

from coaching import validation
from coaching.api.views import URL_NOT_FOUND
from coaching.models import Event

from .conftest import ADVICE_URL, EVENTS_URL, day, event, pain, run

pytestmark = pytest.mark.django_db


# -- URLs and methods ----------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/api/", "/api/v1/", "/api/v1/nothing/", "/api/v1/events/1/", "/api/v2/events/"])
def test_unknown_api_url_answers_404_in_json(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": URL_NOT_FOUND}


def test_post_without_trailing_slash_is_redirected_keeping_the_method(client):
    response = client.post(EVENTS_URL.rstrip("/"), run(), format="json")
    assert response.status_code == 308
    assert response["Location"] == EVENTS_URL
    assert not Event.objects.exists()


def test_get_without_trailing_slash_is_redirected(client):
    response = client.get(EVENTS_URL.rstrip("/") + "?type=run")
    assert response.status_code == 301
    assert response["Location"] == EVENTS_URL + "?type=run"


@pytest.mark.parametrize(
    "method, url",
    [
        ("put", EVENTS_URL),
        ("delete", EVENTS_URL),
        ("post", ADVICE_URL),
        ("patch", "/api/v1/members/m-1/"),
        ("post", "/api/v1/members/m-1/advice/"),
    ],
)
def test_wrong_method_answers_405_json_with_allow(client, method, url):
    response = getattr(client, method)(url, {}, format="json")
    assert response.status_code == 405
    assert "detail" in response.json()
    assert response["Allow"]


def test_healthz_answers_405_json_to_post(db, pack):
    response = Client().post("/healthz")
    assert response.status_code == 405
    assert "detail" in response.json()


def test_member_id_with_a_slash_is_reachable(client, pack):
    client.send(run(member="team/42"), expect=201)
    url = f"/api/v1/members/{quote('team/42', safe='')}/"
    assert client.get(url).json()["member"] == "team/42"
    assert client.get(url + "advice/").status_code == 200
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404


# -- event validation edges ----------------------------------------------------------------
@pytest.mark.parametrize("value", [["run"], {"a": 1}, 5, True])
def test_type_that_is_not_a_string_answers_400(client, value):
    response = client.send({**run(), "type": value}, expect=400)
    assert list(response.json()["errors"]) == ["type"]


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "1969-12-31T23:00:00Z"])
def test_occurred_at_in_the_distant_past_answers_400(client, value):
    response = client.send({**run(), "occurred_at": value}, expect=400)
    assert response.json() == {"errors": {"occurred_at": [validation.DATETIME_TOO_EARLY]}}


@pytest.mark.parametrize("value", ["20260101xx", "2026-W01-1", "2026-1-01", " 2026-01-01"])
def test_onset_date_must_be_exactly_yyyy_mm_dd(client, value):
    response = client.send(pain(onset_date=value), expect=400)
    assert response.json() == {"errors": {"data.onset_date": [validation.DATE_INVALID]}}


def test_onset_date_before_1970_answers_400(client):
    response = client.send(pain(onset_date="1900-01-01"), expect=400)
    assert response.json() == {"errors": {"data.onset_date": [validation.DATE_TOO_EARLY]}}


def test_conflicting_repeat_shows_the_stored_event_with_its_advice(client, pack):
    payload = run(pain_during=7)
    first = client.send(payload, expect=201).json()
    conflict = client.send({**payload, "data": {**payload["data"], "pain_during": 8}}, expect=409).json()
    assert conflict["event"] == first
    batch = client.send([{**payload, "data": {**payload["data"], "pain_during": 8}}], expect=200).json()
    assert batch[0]["status"] == 409 and batch[0]["event"] == first


# -- listing filters -----------------------------------------------------------------------
def test_until_given_as_a_date_includes_that_whole_day(client):
    noon = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
    client.history(run(at=noon, external_id="on-the-day"), run(at=noon + dt.timedelta(days=1), external_id="next"))
    body = client.get(EVENTS_URL, {"since": "2026-03-10", "until": "2026-03-10"}).json()
    assert [e["external_id"] for e in body["results"]] == ["on-the-day"]


def test_until_given_as_a_datetime_is_inclusive(client):
    noon = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
    client.history(run(at=noon, external_id="at-noon"))
    body = client.get(EVENTS_URL, {"until": "2026-03-10T13:00:00+01:00"}).json()
    assert [e["external_id"] for e in body["results"]] == ["at-noon"]


def test_gym_feed_filters_by_severity_and_category(client, pack, member):
    client.history(run(at=day(0), pain_during=6), run(at=day(4), warmup_min=0))
    stop = client.get(ADVICE_URL, {"severity": "stop"}).json()["results"]
    assert [a["rule"]["key"] for a in stop] == ["pain-stop"]
    warmup = client.get(ADVICE_URL, {"category": "warmup"}).json()["results"]
    assert [a["rule"]["key"] for a in warmup] == ["warm-up"]
    assert client.get(ADVICE_URL, {"severity": "urgent"}).status_code == 400


def test_advice_lists_show_one_events_advice_most_urgent_first(client, pack):
    client.history(run(at=day(0), warmup_min=0, surface="hills"))  # a first run without clearance
    severities = [a["severity"] for a in client.get(ADVICE_URL).json()["results"]]
    assert severities == ["refer", "caution", "info"]


def test_event_fields_accept_the_contract_example(client, pack):
    example = event(
        "run",
        {
            "distance_km": 6.2,
            "duration_min": 38,
            "surface": "hills",
            "warmup_min": 0,
            "pain_before": 2,
            "pain_during": 6,
            "pain_after": 5,
        },
        at=day(0).astimezone(dt.timezone(dt.timedelta(hours=1))),
        external_id="garmin-88231",
        member="m-1042",
    )
    keys = [a["rule"]["key"] for a in client.send(example, expect=201).json()["advice"]]
    # pain-stop holds back the cautions and tips the run would also give (flat-surface, warm-up ...).
    assert keys == ["medical-clearance", "pain-stop"]


# -- the OpenAPI document --------------------------------------------------------------------
@pytest.fixture
def schema(db):
    return Client().get("/api/schema/", {"format": "json"}).json()


def test_schema_is_a_valid_openapi_3_document(schema):
    from drf_spectacular.validation import validate_schema

    validate_schema(schema)  # raises on an invalid document
    assert schema["openapi"].startswith("3.")


def test_schema_documents_a_batch_body_and_its_answers(schema):
    post = schema["paths"]["/api/v1/events/"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    one, array = schema["components"]["schemas"][body]["oneOf"]
    assert one == {"$ref": "#/components/schemas/EventIn"}
    # Items are free: a bad item gets its own 400 item, and never stops the others.
    assert (array["type"], array["maxItems"], array["items"]) == ("array", 500, {})
    assert {"200", "201", "400", "401", "409", "413", "429", "503"} <= set(post["responses"])


def test_schema_documents_paginated_lists_and_health(schema):
    for path in ("/api/v1/events/", "/api/v1/advice/", "/api/v1/members/{member}/advice/"):
        get = schema["paths"][path]["get"]
        ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert {"next", "previous", "results"} <= set(schema["components"]["schemas"][ref]["properties"])
        assert "cursor" in {p["name"] for p in get["parameters"]}
    assert "security" not in schema["paths"]["/healthz"]["get"]


def test_schema_documents_the_fields_of_each_event_type_keyed_on_its_type(schema):
    schemas = schema["components"]["schemas"]
    assert schemas["EventIn"]["discriminator"]["mapping"]["run"] == "#/components/schemas/RunEventIn"
    run_in = schemas["RunEventIn"]
    assert run_in["properties"]["type"] == {"type": "string", "enum": ["run"]}
    run_data = run_in["properties"]["data"]
    assert run_data["required"] == ["distance_km", "duration_min"]
    assert run_data["properties"]["pain_during"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 10,
        "description": "Pain during the run (/10): 0 = no pain, 10 = worst imaginable",
    }
    assert run_data["additionalProperties"] is False
    assert "activity" not in run_data["properties"]  # a run carrying a cross-training field is invalid
    # A profile has no required field, so its data may be left out.
    assert "data" not in schemas["ProfileEventIn"]["required"]


def test_member_figures_include_the_run_number_as_of_now(client, member):
    client.history(run(at=day(0)), run(at=day(1)))
    assert client.get("/api/v1/members/m-1/").json()["figures"]["run_number"] == 2


def test_busy_database_answers_503_with_retry_after(client, monkeypatch):
    from django.db import OperationalError

    from coaching import services

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "event_ingest", locked)
    response = client.send(run(), expect=503)
    assert response["Retry-After"] == "1"
    assert "detail" in response.json()


def test_sqlite_transactions_take_the_write_lock_when_they_begin(settings):
    database = settings.DATABASES["default"]
    if "sqlite" not in database["ENGINE"]:
        pytest.skip("SQLite only")
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000])
def test_deeply_nested_json_answers_400_not_500(client, body):
    from coaching.api.parsers import JSON_TOO_DEEP

    response = client.post(EVENTS_URL, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"errors": {"non_field_errors": [JSON_TOO_DEEP]}}


@pytest.mark.parametrize("field", ["external_id", "member"])
def test_ids_with_control_characters_answer_400(client, field):
    response = client.send({**run(), field: "abc\u0000def"}, expect=400)
    assert response.json() == {"errors": {field: [validation.ID_CONTROL_CHARACTER]}}


def test_member_url_with_a_nul_answers_404(client):
    assert client.get("/api/v1/members/a%00b/").status_code == 404
