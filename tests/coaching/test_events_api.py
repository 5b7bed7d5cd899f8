"""POST/GET /api/v1/events/ (docs/api.md): every answer code and field check."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from coaching import validation
from coaching.api.views import BATCH_TOO_LARGE
from coaching.models import Advice, Event, Member
from coaching.services import CONFLICT_MESSAGE

from .conftest import EVENTS_URL, T0, day, event, iso, pain, profile, run

pytestmark = pytest.mark.django_db


def test_new_event_answers_201_with_the_stored_event(client, pack):
    payload = run(
        external_id="garmin-88231",
        member="m-1042",
        at=dt.datetime(2026, 1, 20, 7, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        distance_km=6.2,
        duration_min=38,
    )
    body = client.send(payload, expect=201).json()
    assert body["id"] == Event.objects.get().pk
    assert body["external_id"] == "garmin-88231"
    assert body["member"] == "m-1042"
    assert body["type"] == "run"
    assert body["occurred_at"] == "2026-01-20T07:30:00+01:00"
    assert body["data"]["distance_km"] == 6.2
    assert isinstance(body["advice"], list)


def test_unknown_member_is_created_on_first_event(client):
    client.send(pain(member="new-member"), expect=201)
    assert Member.objects.filter(gym=client.gym, external_id="new-member").exists()


def test_identical_repeat_answers_200_with_the_same_body_and_stores_nothing_twice(client, pack):
    payload = run(pain_during=7)
    first = client.send(payload, expect=201).json()
    assert first["advice"]
    again = client.send(payload, expect=200).json()
    assert again == first
    assert Event.objects.count() == 1
    assert Advice.objects.count() == len(first["advice"])


def test_repeat_with_same_instant_in_another_offset_is_identical(client):
    payload = run(at=dt.datetime(2026, 1, 20, 7, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    client.send(payload, expect=201)
    payload["occurred_at"] = "2026-01-20T06:30:00Z"
    client.send(payload, expect=200)


def test_repeat_with_different_content_answers_409_and_changes_nothing(client):
    payload = run(external_id="e-same", distance_km=5)
    client.send(payload, expect=201)
    changed = {**payload, "data": {**payload["data"], "distance_km": 6}}
    response = client.send(changed, expect=409)
    assert response.json()["errors"] == {"external_id": [CONFLICT_MESSAGE]}
    assert Event.objects.get().data["distance_km"] == 5


def test_same_external_id_in_two_gyms_are_two_events(client, other_client):
    client.send(run(external_id="shared"), expect=201)
    other_client.send(run(external_id="shared", distance_km=9), expect=201)
    assert Event.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"external_id": ""}, "external_id", validation.ID_INVALID),
        ({"external_id": "x" * 101}, "external_id", validation.ID_INVALID),
        ({"external_id": 42}, "external_id", validation.ID_INVALID),
        ({"member": ""}, "member", validation.ID_INVALID),
        ({"type": "swim"}, "type", None),
        ({"occurred_at": "2026-01-20T07:30:00"}, "occurred_at", validation.DATETIME_NO_OFFSET),
        ({"occurred_at": "2026-01-20"}, "occurred_at", validation.DATETIME_INVALID),
        ({"occurred_at": "yesterday"}, "occurred_at", validation.DATETIME_INVALID),
        ({"occurred_at": 1700000000}, "occurred_at", validation.DATETIME_INVALID),
        ({"data": [1, 2]}, "data", validation.DATA_NOT_AN_OBJECT),
        ({"colour": "red"}, "colour", validation.UNKNOWN_FIELD),
    ],
)
def test_bad_top_level_field_answers_400_naming_it(client, change, path, message):
    response = client.send({**run(), **change}, expect=400)
    errors = response.json()["errors"]
    assert path in errors
    if message:
        assert errors[path] == [message]
    assert Event.objects.count() == 0


@pytest.mark.parametrize("missing", ["external_id", "member", "type", "occurred_at"])
def test_missing_top_level_field_answers_400(client, missing):
    payload = run()
    del payload[missing]
    assert client.send(payload, expect=400).json()["errors"] == {missing: [validation.REQUIRED]}


def test_occurred_at_more_than_a_day_ahead_is_rejected(client):
    now = dt.datetime.now(dt.UTC)
    errors = client.send(run(at=now + dt.timedelta(days=1, minutes=5)), expect=400).json()["errors"]
    assert errors == {"occurred_at": [validation.DATETIME_FUTURE]}
    client.send(run(at=now + dt.timedelta(hours=23)), expect=201)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pain_during", 5.5, validation.INTEGER_INVALID),
        ("pain_during", True, validation.INTEGER_INVALID),
        ("pain_during", "5", validation.INTEGER_INVALID),
        ("pain_during", 11, "Must be at most 10."),
        ("pain_during", -1, "Must be at least 0."),
        ("pain_during", None, validation.NOT_NULL),
        ("rpe", 0, "Must be at least 1."),
        ("distance_km", "6.2", validation.NUMBER_INVALID),
        ("distance_km", False, validation.NUMBER_INVALID),
        ("distance_km", 300.5, "Must be at most 300."),
        ("duration_min", 1441, "Must be at most 1440."),
        ("elevation_gain_m", 10001, "Must be at most 10000."),
        ("warmup_min", 181, "Must be at most 180."),
        ("shoes_km", -0.1, "Must be at least 0."),
        ("running_shoes", "yes", validation.BOOLEAN_INVALID),
        ("running_shoes", 1, validation.BOOLEAN_INVALID),
        ("surface", "sand", None),
        ("surface", 3, validation.TEXT_INVALID),
        ("posture", "perfect", None),
        ("foo", 1, validation.UNKNOWN_FIELD),
    ],
)
def test_bad_run_field_answers_400_with_its_data_path(client, field, value, message):
    errors = client.send(run(**{field: value}), expect=400).json()["errors"]
    assert list(errors) == [f"data.{field}"]
    if message:
        assert errors[f"data.{field}"] == [message]
    assert Event.objects.count() == 0


def test_every_bad_field_is_named_at_once(client):
    payload = run(pain_during=12, surface="ice", foo=1)
    payload["occurred_at"] = "soon"
    del payload["data"]["distance_km"]
    errors = client.send(payload, expect=400).json()["errors"]
    assert set(errors) == {"occurred_at", "data.pain_during", "data.surface", "data.foo", "data.distance_km"}


def test_required_data_fields_per_type(client):
    assert set(client.send(event("run", {}), expect=400).json()["errors"]) == {"data.distance_km", "data.duration_min"}
    assert set(client.send(event("pain_report", {}), expect=400).json()["errors"]) == {"data.pain"}
    assert set(client.send(event("cross_training", {}), expect=400).json()["errors"]) == {"data.activity"}
    client.send(event("profile", {}), expect=201)


def test_whole_numbers_sent_as_floats_are_accepted_as_integers(client):
    body = client.send(run(pain_during=3.0, distance_km=5), expect=201).json()
    assert body["data"]["pain_during"] == 3


def test_onset_date_must_be_a_date_not_in_the_future(client):
    today = dt.datetime.now(dt.UTC)
    tomorrow = (today + dt.timedelta(days=1)).date().isoformat()
    errors = client.send(pain(at=today, onset_date=tomorrow), expect=400).json()["errors"]
    assert errors == {"data.onset_date": [validation.DATE_FUTURE]}
    errors = client.send(pain(onset_date="2026-13-01"), expect=400).json()["errors"]
    assert errors == {"data.onset_date": [validation.DATE_INVALID]}
    client.send(pain(at=today, onset_date=(today - dt.timedelta(days=30)).date().isoformat()), expect=201)


def test_body_that_is_not_an_event_answers_400(client):
    response = client.post(EVENTS_URL, data="42", content_type="application/json")
    assert response.status_code == 400
    assert "errors" in response.json()
    response = client.post(EVENTS_URL, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()["errors"]


def test_batch_answers_200_with_one_result_per_item_in_order(client):
    client.send(run(external_id="old", distance_km=4), expect=201)
    items = [
        run(external_id="new-1"),
        run(external_id="old", distance_km=4),  # identical repeat
        run(external_id="old", distance_km=8),  # conflict
        run(external_id="bad", pain_during=99),  # invalid
        "not an object",
        pain(external_id="new-2"),
    ]
    response = client.send(items, expect=200)
    body = response.json()
    assert [item["status"] for item in body] == [201, 200, 409, 400, 400, 201]
    assert body[0]["event"]["external_id"] == "new-1"
    assert body[1]["event"]["external_id"] == "old"
    assert body[2]["event"]["data"]["distance_km"] == 4
    assert body[3]["errors"] == {"data.pain_during": ["Must be at most 10."]}
    assert "event" not in body[3]
    assert set(Event.objects.values_list("external_id", flat=True)) == {"old", "new-1", "new-2"}


def test_batch_repeating_an_id_inside_itself(client):
    body = client.send([run(external_id="x"), run(external_id="x")], expect=200).json()
    assert [item["status"] for item in body] == [201, 200]


def test_empty_batch_answers_empty_list(client):
    assert client.send([], expect=200).json() == []


def test_batch_over_500_answers_400_and_stores_nothing(client):
    response = client.send([pain() for _ in range(501)], expect=400)
    assert response.json() == {"errors": {"non_field_errors": [BATCH_TOO_LARGE]}}
    assert Event.objects.count() == 0


def test_batch_of_500_is_accepted(client):
    body = client.send([pain(at=day(0, hour=-i)) for i in range(500)], expect=200).json()
    assert {item["status"] for item in body} == {201}


def test_body_over_1_mib_answers_413_json(client):
    big = [run(external_id=f"e{i}", distance_km=1.123456789) for i in range(4000)]
    response = client.send(big, expect=413)
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
    assert Event.objects.count() == 0


@override_settings(REST_FRAMEWORK={"DEFAULT_THROTTLE_RATES": {"gym": "3/minute"}})
def test_too_many_requests_answers_429_with_retry_after(client, other_client):
    for _ in range(3):
        client.get(EVENTS_URL)
    response = client.get(EVENTS_URL)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert other_client.get(EVENTS_URL).status_code == 200  # limits are per gym


def test_event_list_newest_first_with_filters(client):
    client.history(
        run(at=day(0), external_id="r0"),
        pain(at=day(1), external_id="p1"),
        run(at=day(2), external_id="r2"),
        run(at=day(1, hour=1), member="m-2", external_id="other-member"),
    )
    body = client.get(EVENTS_URL).json()
    assert [e["external_id"] for e in body["results"]] == ["r2", "other-member", "p1", "r0"]
    body = client.get(EVENTS_URL, {"member": "m-1", "type": "run"}).json()
    assert [e["external_id"] for e in body["results"]] == ["r2", "r0"]
    body = client.get(EVENTS_URL, {"since": iso(day(1)), "until": iso(day(1, hour=1))}).json()
    assert {e["external_id"] for e in body["results"]} == {"p1", "other-member"}
    body = client.get(EVENTS_URL, {"since": day(2).date().isoformat()}).json()
    assert [e["external_id"] for e in body["results"]] == ["r2"]


def test_event_list_rejects_a_bad_date_filter(client):
    response = client.get(EVENTS_URL, {"since": "last week"})
    assert response.status_code == 400
    assert "since" in response.json()["errors"]


def test_event_list_is_paginated_with_next_link(client):
    client.history(*[pain(at=day(0, hour=i), external_id=f"p{i}") for i in range(7)])
    seen = []
    url = EVENTS_URL + "?page_size=3"
    pages = 0
    while url:
        body = client.get(url).json()
        seen += [e["external_id"] for e in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 3
    assert seen == [f"p{i}" for i in reversed(range(7))]


def test_event_list_shows_only_the_gyms_events(client, other_client):
    client.send(run(external_id="mine"), expect=201)
    other_client.send(run(external_id="theirs"), expect=201)
    body = client.get(EVENTS_URL).json()
    assert [e["external_id"] for e in body["results"]] == ["mine"]


def test_profile_event_updates_the_member_profile_latest_by_occurred_at(client):
    client.send(profile(at=day(5), experience="regular", chronic_back_pain=True), expect=201)
    client.send(profile(at=day(1), experience="new", cleared_by_physician=True), expect=201)  # late, older
    assert Member.objects.get().profile == {
        "experience": "regular",
        "chronic_back_pain": True,
        "cleared_by_physician": True,
    }
    client.send(profile(at=day(6), back_injury=False), expect=201)
    assert Member.objects.get().profile["back_injury"] is False


def test_a_back_injury_declared_after_a_clearance_voids_it_in_the_profile(client):
    client.send(profile(at=day(1), cleared_by_physician=True), expect=201)
    client.send(profile(at=day(5), back_injury=True), expect=201)
    assert Member.objects.get().profile == {"cleared_by_physician": False, "back_injury": True}
    client.send(profile(at=day(3), back_injury=True, cleared_by_physician=True), expect=201)  # late: cleared with it
    assert Member.objects.get().profile["cleared_by_physician"] is False  # the injury of day 5 still needs one


def test_occurred_at_keeps_the_offset_it_was_sent_with(client):
    at = dt.datetime(2026, 3, 1, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    body = client.send(pain(at=at), expect=201).json()
    assert body["occurred_at"] == "2026-03-01T18:00:00-05:00"
    assert client.get(EVENTS_URL).json()["results"][0]["occurred_at"] == "2026-03-01T18:00:00-05:00"


def test_t0_is_in_the_past():
    assert dt.datetime.now(dt.UTC) > T0
