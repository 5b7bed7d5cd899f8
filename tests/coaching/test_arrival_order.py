"""Every rule works on occurred_at, never on arrival order (docs/advice.md), figure rules too."""

from __future__ import annotations

import random

import pytest
from django.core.management import call_command

from coaching.models import Advice

from .conftest import day, pain, profile, run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _pack(pack):
    return pack


def _member_advice(client, member="m-1"):
    return [(a["rule"]["key"], a["event"]) for a in client.get(f"/api/v1/members/{member}/advice/").json()["results"]]


def test_late_run_that_completes_three_days_in_a_row_fires_rest_days(client, member):
    client.history(run(at=day(0), external_id="d0"), run(at=day(2), external_id="d2"))
    body = client.send(run(at=day(1), external_id="d1-late"), expect=201).json()
    rest = [a for a in body["advice"] if a["rule"]["key"] == "rest-days"]
    assert [(a["event"], a["matched_events"]) for a in rest] == [("d2", ["d2"])]
    assert ("rest-days", "d2") in _member_advice(client)


def test_late_run_repeated_answers_the_same_body(client, member):
    client.history(run(at=day(0)), run(at=day(2)))
    payload = run(at=day(1))
    first = client.send(payload, expect=201).json()
    assert client.send(payload, expect=200).json() == first


def test_runs_sent_newest_first_give_the_same_advice_as_in_time_order(client, other_client):
    days = [0, 1, 2, 3, 4]
    for gym, order in ((client, days), (other_client, list(reversed(days)))):
        gym.send(profile(at=day(-1), cleared_by_physician=True), expect=201)
        for n in order:
            gym.send(run(at=day(n), external_id=f"r{n}", with_group=False), expect=201)
    in_order = sorted(_member_advice(client))
    reversed_order = sorted(_member_advice(other_client))
    assert ("rest-days", "r2") in in_order
    assert ("good-progress", "r4") in in_order and ("run-with-others", "r4") in in_order
    assert reversed_order == in_order


def test_a_batch_is_judged_in_time_order_whatever_the_array_order(client, other_client):
    events = [profile(at=day(-1), cleared_by_physician=True, external_id="p")] + [
        run(at=day(n), external_id=f"r{n}") for n in range(5)
    ]
    shuffled = events[:]
    random.Random(4).shuffle(shuffled)
    client.send(events, expect=200)
    body = other_client.send(shuffled, expect=200).json()
    assert all(item["status"] == 201 for item in body)
    assert sorted(_member_advice(other_client)) == sorted(_member_advice(client))
    assert ("medical-clearance", "r0") not in _member_advice(other_client)  # the profile came first in time


def test_batch_items_show_the_advice_of_their_own_event(client, member):
    body = client.send(
        [run(at=day(1), pain_during=6), run(at=day(0)), run(at=day(1), pain_during=6)], expect=200
    ).json()
    assert [item["status"] for item in body] == [201, 201, 201]
    assert [a["rule"]["key"] for a in body[0]["event"]["advice"]] == ["pain-stop"]
    assert body[1]["event"]["advice"] == []


def test_identical_repeat_inside_a_batch_shows_the_same_advice(client, member):
    payload = run(at=day(0), pain_during=6)
    body = client.send([payload, payload], expect=200).json()
    assert [item["status"] for item in body] == [201, 200]
    assert body[0]["event"] == body[1]["event"]
    assert [a["rule"]["key"] for a in body[1]["event"]["advice"]] == ["pain-stop"]


def test_late_profile_with_a_back_injury_reaches_the_runs_after_it(client):
    client.history(profile(at=day(-2), cleared_by_physician=False), run(at=day(0), external_id="r0"))
    body = client.send(profile(at=day(-1), back_injury=True), expect=201).json()
    assert [(a["rule"]["key"], a["event"]) for a in body["advice"]] == [("back-injury", "r0")]


def test_pattern_found_from_both_ends_is_advised_once(client, member):
    client.history(pain(at=day(1), pain=4, external_id="sore"), run(at=day(0), surface="hills", external_id="hill"))
    call_command("reevaluate", "--member", "m-1", stdout=_null(), stderr=_null())
    call_command("reevaluate", stdout=_null(), stderr=_null())
    assert Advice.objects.filter(rule_key="hill-then-pain").count() == 1


def test_reevaluate_all_does_not_duplicate_a_pattern_found_in_time_order(client, member):
    client.history(run(at=day(0), surface="hills"), pain(at=day(1), pain=4))
    call_command("reevaluate", "--all", stdout=_null(), stderr=_null())
    assert Advice.objects.filter(rule_key="hill-then-pain").count() == 1


def _null():
    import io

    return io.StringIO()
