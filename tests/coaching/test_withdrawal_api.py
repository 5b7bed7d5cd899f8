"""The API's side of advice that changes (docs/api.md): ``withdrawn`` on advice and in
POST answers, the ``changed_since`` feed, ``?withdrawn=true`` and the member's ``referral``."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from coaching.api.serializers import DATETIME_FILTER_INVALID

from .added_rules import FIRST_RUN_CHECK, MASSAGE_REFERRAL, rules_add
from .conftest import ADVICE_URL, GymClient, cross, day, profile, run

pytestmark = pytest.mark.django_db

FIRST_RUN = FIRST_RUN_CHECK["key"]


@pytest.fixture
def added_rules(pack) -> None:
    rules_add(FIRST_RUN_CHECK, MASSAGE_REFERRAL)


def clear(client: GymClient, *members: str) -> None:
    """Members cleared by a physician (so the pack's first-run rules stay quiet)."""
    for member in members:
        client.send(profile(at=day(-5), member=member, cleared_by_physician=True), expect=201)


@pytest.fixture
def cleared(client: GymClient, added_rules) -> GymClient:
    clear(client, "m-1", "m-2")
    return client


def of_rule(advice: list[dict[str, Any]], key: str = FIRST_RUN) -> list[dict[str, Any]]:
    return [a for a in advice if a["rule"]["key"] == key]


def pages(client: GymClient, url: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every item of a paginated list, following ``next``; and how many pages there were."""
    response = client.get(url, params)
    items, count = [], 0
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        items += body["results"]
        count += 1
        if not body["next"]:
            return items, count
        response = client.get(body["next"])


def test_advice_given_in_time_is_not_withdrawn(cleared):
    body = cleared.send(run(at=day(1)), expect=201).json()
    assert body["withdrawn"] == []
    [advice] = of_rule(body["advice"])
    assert advice["withdrawn"] is None
    [listed] = of_rule(cleared.get("/api/v1/members/m-1/advice/").json()["results"])
    assert listed["withdrawn"] is None and listed["id"] == advice["id"]


def test_a_late_first_run_withdraws_the_advice_and_the_post_answer_lists_it(cleared):
    second = cleared.send(run(at=day(2), external_id="run-2"), expect=201).json()
    [given] = of_rule(second["advice"])

    late = cleared.send(run(at=day(1), external_id="run-1"), expect=201).json()
    [now_given] = of_rule(late["advice"])
    assert now_given["event"] == "run-1" and now_given["withdrawn"] is None
    [withdrawn] = of_rule(late["withdrawn"])
    assert withdrawn["id"] == given["id"] and withdrawn["event"] == "run-2"
    assert withdrawn["withdrawn"]["by_event"] == "run-1"
    assert withdrawn["withdrawn"]["reason"]
    assert withdrawn["withdrawn"]["at"]

    repeat = cleared.send(run(at=day(1), external_id="run-1"), expect=200).json()
    assert repeat == late  # an identical repeat answers the same body


def test_lists_show_withdrawn_advice_only_when_asked(cleared):
    cleared.history(run(at=day(2), external_id="run-2"), run(at=day(1), external_id="run-1"))
    for url in (ADVICE_URL, "/api/v1/members/m-1/advice/"):
        current = of_rule(cleared.get(url).json()["results"])
        assert [(a["event"], a["withdrawn"]) for a in current] == [("run-1", None)]
        everything = of_rule(cleared.get(url, {"withdrawn": "true"}).json()["results"])
        assert sorted(a["event"] for a in everything) == ["run-1", "run-2"]
        [withdrawn] = [a for a in everything if a["withdrawn"] is not None]
        assert withdrawn["event"] == "run-2" and withdrawn["withdrawn"]["by_event"] == "run-1"


def test_changed_since_lists_created_and_withdrawn_advice_oldest_change_first(cleared):
    start = timezone.now()
    cleared.send(run(at=day(2), member="m-1", external_id="m1-run-2"), expect=201)
    cleared.send(run(at=day(2), member="m-2", external_id="m2-run-2"), expect=201)
    middle = timezone.now()
    cleared.send(run(at=day(1), member="m-1", external_id="m1-run-1"), expect=201)  # withdraws m1-run-2's

    changes, _ = pages(cleared, ADVICE_URL, {"changed_since": start.isoformat()})
    # m1-run-2's advice was created first but changed last-but-one: when it was withdrawn.
    assert [(a["event"], a["withdrawn"] is not None) for a in of_rule(changes)] == [
        ("m2-run-2", False),
        ("m1-run-2", True),
        ("m1-run-1", False),
    ]
    later, _ = pages(cleared, ADVICE_URL, {"changed_since": middle.isoformat()})
    assert [a["event"] for a in of_rule(later)] == ["m1-run-2", "m1-run-1"]
    assert pages(cleared, ADVICE_URL, {"changed_since": timezone.now().isoformat()})[0] == []


def test_changed_since_paginates_with_next_in_the_same_order(cleared):
    members = [f"p-{n}" for n in range(5)]
    clear(cleared, *members)
    start = timezone.now()
    cleared.history(*(run(at=day(10), member=member) for member in members))
    cleared.send(run(at=day(1), member="p-0"), expect=201)  # withdraws p-0's first advice
    whole, one_page = pages(cleared, ADVICE_URL, {"changed_since": start.isoformat(), "page_size": 500})
    assert one_page == 1
    assert len(of_rule(whole)) == 6 and sum(a["withdrawn"] is not None for a in whole) == 1
    paged, count = pages(cleared, ADVICE_URL, {"changed_since": start.isoformat(), "page_size": 2})
    assert count == (len(whole) + 1) // 2
    assert [(a["id"], a["withdrawn"] is None) for a in paged] == [(a["id"], a["withdrawn"] is None) for a in whole]


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "12:00"])
def test_invalid_changed_since_answers_400_naming_the_field(client, value):
    response = client.get(ADVICE_URL, {"changed_since": value})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"errors": {"changed_since": [DATETIME_FILTER_INVALID]}}


def test_member_detail_shows_the_referral_while_it_lasts(cleared):
    assert cleared.get("/api/v1/members/m-1/").json()["referral"] is None
    massage = cleared.send(cross(at=day(1), activity="massage", external_id="massage-1"), expect=201).json()
    assert [a["rule"]["key"] for a in massage["advice"]] == [MASSAGE_REFERRAL["key"]]

    referral = cleared.get("/api/v1/members/m-1/").json()["referral"]
    assert referral == {
        "since": referral["since"],
        "rule": {"key": MASSAGE_REFERRAL["key"], "name": MASSAGE_REFERRAL["name"]},
        "event": "massage-1",
    }
    assert referral["since"].startswith(day(1).date().isoformat())
    assert cleared.get("/api/v1/members/m-2/").json()["referral"] is None

    cleared.send(profile(at=day(2), cleared_by_physician=True), expect=201)
    assert cleared.get("/api/v1/members/m-1/").json()["referral"] is None


def test_schema_documents_withdrawn_changed_since_and_referral(db):
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    assert "withdrawn" in components["Advice"]["properties"]
    assert "withdrawn" in components["Event"]["properties"]
    assert "referral" in components["Member"]["properties"]
    feed = schema["paths"]["/api/v1/advice/"]["get"]["parameters"]
    assert {"changed_since", "withdrawn"} <= {p["name"] for p in feed}
    member_advice = schema["paths"]["/api/v1/members/{member}/advice/"]["get"]["parameters"]
    assert "withdrawn" in {p["name"] for p in member_advice}
