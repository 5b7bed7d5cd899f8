"""Crafted input never answers 5xx or HTML: each answers 400 naming the field, one bad item of an
array fails alone, every member id the API accepts can be read and erased through it, and a
database that cannot be written answers 503 with Retry-After (docs/api.md)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection, transaction
from django.test import Client, override_settings

from coaching import validation
from coaching.api.views import CURSOR_INVALID, PAGE_SIZE_INVALID
from coaching.internal.db.database import DATABASE_READ_ONLY, RETRY_AFTER
from coaching.models import Event, Member
from config.version import VERSION

from .conftest import ADVICE_URL, EVENTS_URL, MEMBERS_URL, day, profile, run

pytestmark = pytest.mark.django_db

HUGE = "9" * 401
TOO_LONG_FOR_PYTHON = "9" * 5000  # int() refuses more than 4300 digits


def post_raw(client: Any, body: str | bytes, content_type: str = "application/json") -> Any:
    response = client.post(EVENTS_URL, body, content_type=content_type)
    assert response["Content-Type"] == "application/json", response.content
    return response


def raw_event(**replace: str) -> str:
    """A quiet run as raw JSON text, with ``"<key>": <raw JSON>`` pairs replaced or added.

    Raw text, because neither a 401-digit number's exactness nor a lone surrogate's escape
    survives a round trip through Python's json module on the sending side.
    """
    text = json.dumps(run())
    for key, raw in replace.items():
        if f'"{key}": ' in text:
            start = text.index(f'"{key}": ') + len(f'"{key}": ')
            end = min(i for i in (text.find(",", start), text.find("}", start)) if i != -1)
            text = text[:start] + raw + text[end:]
        else:
            text = text[:-2] + f', "{key}": {raw}' + text[-2:]  # inside "data"
    return text


def stored_ids() -> list[str]:
    return sorted(Event.objects.values_list("external_id", flat=True))


# -- numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field, message",
    [
        ("distance_km", validation.ABOVE_MAXIMUM.format(maximum=300)),
        ("pain_during", validation.ABOVE_MAXIMUM.format(maximum=10)),
        ("elevation_gain_m", validation.ABOVE_MAXIMUM.format(maximum=10000)),
    ],
)
def test_a_401_digit_integer_answers_400_naming_the_field(client, field, message):
    response = post_raw(client, raw_event(**{field: HUGE}))
    assert response.status_code == 400
    assert response.json() == {"errors": {f"data.{field}": [message]}}
    assert not Event.objects.exists()


def test_a_negative_401_digit_integer_is_below_the_minimum(client):
    response = post_raw(client, raw_event(distance_km="-" + HUGE))
    assert response.json() == {"errors": {"data.distance_km": [validation.BELOW_MINIMUM.format(minimum=0)]}}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("distance_km", TOO_LONG_FOR_PYTHON, validation.NUMBER_INVALID),
        ("pain_during", TOO_LONG_FOR_PYTHON, validation.INTEGER_INVALID),
        ("distance_km", "1e400", validation.NUMBER_INVALID),
        ("pain_during", "1e400", validation.INTEGER_INVALID),
        ("pain_during", "2.5", validation.INTEGER_INVALID),
    ],
)
def test_numbers_beyond_a_float_or_not_whole_answer_400_naming_the_field(client, field, value, message):
    response = post_raw(client, raw_event(**{field: value}))
    assert response.status_code == 400
    assert response.json() == {"errors": {f"data.{field}": [message]}}


@pytest.mark.parametrize("value", [HUGE, TOO_LONG_FOR_PYTHON, "1e400"])
def test_a_huge_number_in_an_array_fails_only_its_item(client, value):
    bad = raw_event(external_id='"bad"', distance_km=value)
    good = json.dumps(run(external_id="good"))
    response = post_raw(client, f"[{bad}, {good}]")
    assert response.status_code == 200
    first, second = response.json()
    assert first["status"] == 400 and list(first["errors"]) == ["data.distance_km"]
    assert second["status"] == 201 and second["event"]["external_id"] == "good"
    assert stored_ids() == ["good"]


# -- lone surrogates -------------------------------------------------------------------------
SURROGATE = '"\\ud800"'  # the JSON escape as sent: it decodes to a lone surrogate, not a character


@pytest.mark.parametrize(
    "body, field, message",
    [
        (raw_event(external_id=SURROGATE), "external_id", validation.NOT_UNICODE),
        (raw_event(member=SURROGATE), "member", validation.NOT_UNICODE),
        (raw_event(member='"m-\\ud800-1"'), "member", validation.NOT_UNICODE),
        (raw_event(surface=SURROGATE), "data.surface", validation.NOT_UNICODE),
        # A key that is not text cannot be echoed as it is: the path spells its escape out.
        (raw_event(**{"\\ud800": "1"}), "data.\\ud800", validation.UNKNOWN_FIELD),
        (json.dumps(run())[:-1] + ', "\\ud800": 1}', "\\ud800", validation.UNKNOWN_FIELD),
    ],
)
def test_a_lone_surrogate_answers_400_naming_the_field(client, body, field, message):
    response = post_raw(client, body)
    assert response.status_code == 400
    assert response.json() == {"errors": {field: [message]}}
    assert not Member.objects.exists()


@pytest.mark.parametrize("field", ["type", "occurred_at"])
def test_a_lone_surrogate_in_a_field_with_a_format_answers_400_naming_it(client, field):
    response = post_raw(client, raw_event(**{field: SURROGATE}))
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_a_lone_surrogate_in_an_array_fails_only_its_item(client):
    bad_member = raw_event(external_id='"bad-member"', member=SURROGATE)
    bad_key = raw_event(external_id='"bad-key"', **{"\\udfff": "true"})
    good = json.dumps(run(external_id="good"))
    response = post_raw(client, f"[{bad_member}, {good}, {bad_key}]")
    assert response.status_code == 200
    assert [item["status"] for item in response.json()] == [400, 201, 400]
    assert response.json()[0]["errors"] == {"member": [validation.NOT_UNICODE]}
    assert response.json()[2]["errors"] == {"data.\\udfff": [validation.UNKNOWN_FIELD]}
    assert stored_ids() == ["good"]


# -- NUL (PostgreSQL cannot store it in text) ------------------------------------------------
@pytest.mark.parametrize(
    "body, field",
    [
        (raw_event(external_id='"a\\u0000b"'), "external_id"),
        (raw_event(member='"a\\u0000b"'), "member"),
        (raw_event(surface='"road\\u0000"'), "data.surface"),
        (raw_event(**{"surface\\u0000": '"road"'}), "data.surface\x00"),
        (raw_event(type='"run\\u0000"'), "type"),
    ],
)
def test_a_nul_character_answers_400_naming_the_field(client, body, field):
    response = post_raw(client, body)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not Event.objects.exists()


# -- other hostile bodies --------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, status",
    [
        ("not json", 400),
        ('"a string"', 400),
        ("42", 400),
        ("null", 400),
        ("[1, null, []]", 200),  # an array: each item answers 400 on its own
        ('{"distance_km": NaN}', 400),
        ('[{"distance_km": Infinity}]', 400),
        ("[" * 100_000 + "]" * 100_000, 400),
        (b'{"member": "\xff"}', 400),  # not UTF-8
    ],
)
@pytest.mark.parametrize("debug", [True, False])
def test_hostile_bodies_answer_json_below_500_whatever_debug_says(client, body, status, debug):
    with override_settings(DEBUG=debug):
        response = post_raw(client, body)
    assert response.status_code == status
    assert not Event.objects.exists()


def test_a_duplicate_key_takes_the_last_value_as_json_does(client):
    body = json.dumps(run(member="first"))[:-1] + ', "member": "last"}'
    assert post_raw(client, body).json()["member"] == "last"


def test_a_body_over_1_mib_answers_413_json(client):
    response = post_raw(client, "[" + " " * (1024 * 1024) + "]")
    assert response.status_code == 413
    assert "detail" in response.json()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_body_not_sent_as_json_answers_415_json(client, content_type):
    response = client.generic("POST", EVENTS_URL, json.dumps(run()), content_type=content_type)
    assert response.status_code == 415
    assert response["Content-Type"] == "application/json"
    assert not Event.objects.exists()


# -- pagination cursors ----------------------------------------------------------------------
def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")


FORGED_CURSORS = [
    "garbage",
    "%FF",
    "",
    b64("garbage"),
    b64("o=abc&p=\ud800"),
    b64("p=" + "9" * 5000),
    b64("o=" + "9" * 5000),
    b64("o=-1"),
    b64("r=2"),
    b64("p=abc"),
    b64("p=2026-01-01"),  # no time zone: not a position this API wrote
    b64("p=0001-01-01 00:00:00+14:00"),  # before the first moment UTC can hold
    b64("p=9999-12-31 23:59:59-14:00"),
    b64("o=1&o=2"),
    b64("x=1"),
]
LISTS = [EVENTS_URL, ADVICE_URL, f"{MEMBERS_URL}m-1/advice/", ADVICE_URL + "?changed_since=2020-01-01&"]


@pytest.mark.parametrize("cursor", FORGED_CURSORS)
@pytest.mark.parametrize("url", LISTS)
def test_a_forged_cursor_answers_400_naming_cursor(client, url, cursor):
    client.send(run(), expect=201)
    joiner = "&" if "?" in url else "?"
    response = client.get(f"{url}{joiner}cursor={quote(cursor, safe='%')}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"errors": {"cursor": [CURSOR_INVALID]}}


@pytest.mark.parametrize("url", LISTS)
def test_next_and_previous_links_still_lead_through_every_page(client, pack, url):
    client.history(*(run(at=day(n), pain_during=7, external_id=f"run-{n}") for n in range(4)))
    joiner = "&" if "?" in url else "?"
    first = client.get(f"{url}{joiner}page_size=2").json()
    second = client.get(first["next"]).json()
    assert len(first["results"]) == len(second["results"]) == 2
    assert {r["id"] for r in first["results"]}.isdisjoint({r["id"] for r in second["results"]})
    assert client.get(second["previous"]).json()["results"] == first["results"]


def test_a_cursor_of_another_list_answers_400_naming_cursor(client, pack):
    client.history(*(run(at=day(n), pain_during=7, external_id=f"run-{n}") for n in range(3)))
    events_next = client.get(f"{EVENTS_URL}?page_size=1").json()["next"]
    cursor = events_next.split("cursor=")[1].split("&")[0]
    for url in (ADVICE_URL, f"{MEMBERS_URL}m-1/advice/", MEMBERS_URL, ADVICE_URL + "?changed_since=2020-01-01&"):
        joiner = "&" if "?" in url else "?"
        response = client.get(f"{url}{joiner}cursor={cursor}")
        assert response.status_code == 400, url
        assert response.json() == {"errors": {"cursor": [CURSOR_INVALID]}}


@pytest.mark.parametrize("page_size", ["0", "-3", "501", "ten", "", "1.5"])
@pytest.mark.parametrize("url", [EVENTS_URL, ADVICE_URL, MEMBERS_URL, f"{MEMBERS_URL}m-1/advice/"])
def test_a_page_size_outside_1_to_500_answers_400_naming_it(client, url, page_size):
    client.send(run(), expect=201)
    response = client.get(f"{url}?page_size={page_size}")
    assert response.status_code == 400
    assert response.json() == {"errors": {"page_size": [PAGE_SIZE_INVALID]}}


@pytest.mark.parametrize(
    "url, name",
    [
        (EVENTS_URL, "since"),
        (EVENTS_URL, "until"),
        (EVENTS_URL, "member"),
        (EVENTS_URL, "type"),
        (ADVICE_URL, "since"),
        (ADVICE_URL, "severity"),
        (ADVICE_URL, "changed_since"),
        (MEMBERS_URL, "under_referral"),
    ],
)
def test_a_filter_given_empty_answers_400_naming_it_rather_than_listing_everything(client, url, name):
    client.send(run(), expect=201)
    response = client.get(f"{url}?{name}=")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [name]


@pytest.mark.parametrize("path", ["/api/v1/foo%0A/", "/api/v1/members/a%0Ab/x/", "/api/%0A", "/cds-services/x%0A"])
def test_every_unknown_path_under_the_api_answers_a_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
@pytest.mark.parametrize("url, name", [(EVENTS_URL, "since"), (EVENTS_URL, "until"), (ADVICE_URL, "changed_since")])
def test_a_moment_outside_utc_answers_400_naming_the_filter(client, url, name, value):
    response = client.get(url, {name: value})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [name]


# -- member ids in URLs ----------------------------------------------------------------------
ODD_MEMBER_IDS = [
    "a/b",
    "x/",
    "/lead",
    "a//b",
    "/",
    "advice",
    "advice/",
    "x/advice/",
    "a/advice/b",
    "..",
    ".",
    "a/../b",
    " padded ",
    "ü名😀",
    "what?q=1",
    "#frag",
    "%2F",
    "100%",
    "a\\b",
    "+ &=;",
]


def member_url(member: str) -> str:
    """The documented rule: percent-encode the whole id, "/" included."""
    return f"{MEMBERS_URL}{quote(member, safe='')}/"


@pytest.mark.parametrize("member", ODD_MEMBER_IDS)
def test_every_accepted_member_id_is_readable_and_erasable(client, pack, member):
    client.send(run(member=member, warmup_min=0), expect=201)  # a first run: advice to list
    other = "x" if member != "x" else "y"
    client.send(run(member=other), expect=201)  # a neighbour the URLs must not reach instead

    detail = client.get(member_url(member))
    assert detail.status_code == 200, detail.content
    assert detail.json()["member"] == member and detail.json()["events"] == 1
    advice = client.get(member_url(member) + "advice/")
    assert advice.status_code == 200, advice.content
    assert advice.json()["results"] and {a["member"] for a in advice.json()["results"]} == {member}

    assert client.delete(member_url(member)).status_code == 204
    assert client.get(member_url(member)).status_code == 404
    assert list(Member.objects.values_list("external_id", flat=True)) == [other]


@pytest.mark.parametrize("member", ["x/advice", "a/b/advice", "/advice"])
def test_a_member_id_ending_in_advice_answers_400_naming_member(client, member):
    response = client.send(run(member=member), expect=400)
    assert response.json() == {"errors": {"member": [validation.MEMBER_ID_AMBIGUOUS]}}
    batch = client.send([run(member=member), run(external_id="good")], expect=200).json()
    assert batch[0] == {"status": 400, "errors": {"member": [validation.MEMBER_ID_AMBIGUOUS]}}
    assert batch[1]["status"] == 201
    assert list(Member.objects.values_list("external_id", flat=True)) == ["m-1"]


def test_a_member_advice_url_means_the_advice_of_the_member_before_it(client, pack):
    client.send(run(member="x", warmup_min=0), expect=201)
    body = client.get(f"{MEMBERS_URL}x/advice/").json()
    assert {a["member"] for a in body["results"]} == {"x"}
    assert client.delete(f"{MEMBERS_URL}x/advice/").status_code == 405
    assert Member.objects.filter(external_id="x").exists()


# -- a database that cannot be written -------------------------------------------------------
@contextmanager
def database_read_only() -> Iterator[None]:
    """The test database refuses writes, as a read-only SQLite file or a PostgreSQL standby would.

    Inside a savepoint so that PostgreSQL's read-only mode ends when it is rolled back.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA query_only = ON")
            else:
                cursor.execute("SET TRANSACTION READ ONLY")
        try:
            yield
        finally:
            if connection.vendor == "sqlite":
                with connection.cursor() as cursor:
                    cursor.execute("PRAGMA query_only = OFF")
            transaction.set_rollback(True)


def health() -> tuple[int, dict[str, Any]]:
    response = Client().get("/healthz")
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


@pytest.mark.parametrize("debug", [True, False])
def test_a_read_only_database_answers_503_with_retry_after_and_stores_nothing(client, pack, debug):
    client.raise_request_exception = False
    with database_read_only(), override_settings(DEBUG=debug):
        single = client.post(EVENTS_URL, run(external_id="single"), format="json")
        batch = client.post(EVENTS_URL, [run(external_id="b-1"), run(member="m-2", external_id="b-2")], format="json")
        for response in (single, batch):
            assert response.status_code == 503
            assert response["Content-Type"] == "application/json"
            assert response["Retry-After"] == str(RETRY_AFTER["read-only"])  # not "1": an operator must act
            assert response.json() == {"detail": DATABASE_READ_ONLY}  # never "busy"
        assert not Event.objects.exists() and not Member.objects.exists()
    client.send(run(external_id="single"), expect=201)  # the same request, once writable again


def test_a_read_only_database_still_answers_reads_and_refuses_erasure_with_503(client, pack, member):
    with database_read_only():
        assert client.get(member_url(member)).status_code == 200
        assert client.get(EVENTS_URL).status_code == 200
        erase = client.delete(member_url(member))
        assert erase.status_code == 503 and erase["Retry-After"] == str(RETRY_AFTER["read-only"])
        assert erase.json() == {"detail": DATABASE_READ_ONLY}
    assert client.get(member_url(member)).status_code == 200


def test_healthz_is_degraded_while_the_database_cannot_be_written(client, pack):
    client.send(profile(cleared_by_physician=True), expect=201)
    status, body = health()
    assert status == 200 and body["database"] == "ok"
    with database_read_only():
        assert health() == (
            503,
            {
                "status": "degraded",
                "database": "read-only",
                "detail": DATABASE_READ_ONLY,
                "ruleset_version": None,
                "version": VERSION,
            },
        )
    assert health() == (200, body)
    assert Event.objects.count() == 1  # the check wrote nothing


def test_a_database_error_while_judging_rolls_the_event_back_rather_than_leaving_it_unjudged(client, pack, monkeypatch):
    from django.db import OperationalError

    from rules import evaluation
    from rules.internal import runtime

    def locked(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("database is locked")

    # The database fails in the middle of judging (where the engine is called).
    monkeypatch.setattr(runtime, "evaluate", locked)
    monkeypatch.setattr(evaluation, "evaluate", locked)
    response = client.send(run(external_id="judged-later"), expect=503)
    assert response["Retry-After"] == "1"
    assert not Event.objects.exists()
    monkeypatch.undo()
    assert client.send(run(external_id="judged-later"), expect=201).json()["advice"]
    assert health()[0] == 200  # no event waits for an evaluation
