"""Advice that a late event shows no longer holds is withdrawn (kept, never deleted), listed in
the POST answer's ``withdrawn`` and in the gym's change feed (docs/advice.md).

These use rules that rule pack versions 1 and 2 both have: medical-clearance (the first run
without a physician's clearance), start-short (one of the first 6 runs over 5 km or 40 min),
good-progress (5 pain-free runs in a row) and pain-stop (pain of 5 or more during a run).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from coaching.models import Advice

from .conftest import ADVICE_URL, day, run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _pack(pack):
    return pack


def keyed(advice: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(a["rule"]["key"], a["event"]) for a in advice}


def member_advice(client, *, withdrawn: bool = False) -> list[dict[str, Any]]:
    query = "?withdrawn=true" if withdrawn else ""
    return client.get(f"/api/v1/members/m-1/advice/{query}").json()["results"]


def changes(client, since: dt.datetime) -> list[dict[str, Any]]:
    response = client.get(f"{ADVICE_URL}?{urlencode({'changed_since': since.isoformat(), 'page_size': 500})}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def changed_at(advice: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat((advice["withdrawn"] or {}).get("at") or advice["created_at"])


def first_runs(client) -> None:
    """Six runs of a member nobody has cleared, every other day; the sixth lasts 45 minutes."""
    for n in (2, 4, 6, 8, 10):
        client.send(run(at=day(n), external_id=f"r{n}"), expect=201)
    client.send(run(at=day(12), duration_min=45, external_id="r12"), expect=201)


def test_a_late_first_run_moves_the_first_run_advice_and_withdraws_the_old(client):
    first_runs(client)
    before = keyed(member_advice(client))
    assert {("medical-clearance", "r2"), ("start-short", "r12")} <= before

    sent_at = timezone.now()
    body = client.send(run(at=day(0), external_id="r0"), expect=201).json()

    withdrawn = body["withdrawn"]
    assert {("medical-clearance", "r2"), ("start-short", "r12")} <= keyed(withdrawn)
    for advice in withdrawn:
        assert advice["withdrawn"]["by_event"] == "r0"
        assert advice["withdrawn"]["reason"]
        assert dt.datetime.fromisoformat(advice["withdrawn"]["at"]) >= sent_at
    assert ("medical-clearance", "r0") in keyed(body["advice"])

    current = member_advice(client)
    assert ("medical-clearance", "r0") in keyed(current)
    assert not {a["id"] for a in current} & {a["id"] for a in withdrawn}
    assert not {("medical-clearance", "r2"), ("start-short", "r12")} & keyed(current)  # r12 is now run 7
    everything = member_advice(client, withdrawn=True)
    assert keyed(withdrawn) <= keyed(everything)  # kept, never deleted
    assert {a["id"] for a in everything if a["withdrawn"]} == {a["id"] for a in withdrawn}


def test_a_late_first_run_that_is_long_takes_start_short_with_it(client):
    first_runs(client)
    body = client.send(run(at=day(0), distance_km=8, external_id="r0"), expect=201).json()
    assert {("medical-clearance", "r0"), ("start-short", "r0")} <= keyed(body["advice"])
    assert ("start-short", "r12") in keyed(body["withdrawn"])


def test_a_late_painful_run_that_breaks_the_streak_withdraws_good_progress(client, member):
    for n in (0, 2, 4, 6, 8):
        client.send(run(at=day(n), external_id=f"r{n}"), expect=201)
    assert ("good-progress", "r8") in keyed(member_advice(client))

    body = client.send(run(at=day(3), pain_during=6, pain_after=6, external_id="sore"), expect=201).json()

    assert ("pain-stop", "sore") in keyed(body["advice"])
    gone = next(a for a in body["withdrawn"] if a["rule"]["key"] == "good-progress")
    assert gone["event"] == "r8" and gone["withdrawn"]["by_event"] == "sore"
    assert "sore" in gone["withdrawn"]["reason"]
    assert not any(a["rule"]["key"] == "good-progress" for a in member_advice(client))
    kept = [a for a in member_advice(client, withdrawn=True) if a["rule"]["key"] == "good-progress"]
    assert [(a["event"], a["withdrawn"]["by_event"]) for a in kept] == [("r8", "sore")]


def test_the_change_feed_lists_created_and_withdrawn_advice_oldest_change_first(client, member):
    started = timezone.now()
    for n in (0, 2, 4, 6, 8):
        client.send(run(at=day(n), external_id=f"r{n}"), expect=201)
    settled = timezone.now()
    body = client.send(run(at=day(3), pain_during=6, pain_after=6, external_id="sore"), expect=201).json()

    late = changes(client, settled)
    assert {a["id"] for a in late} == {a["id"] for a in body["advice"] + body["withdrawn"]}
    assert [a["withdrawn"] is not None for a in late].count(True) == len(body["withdrawn"]) > 0

    every = changes(client, started)
    assert [changed_at(a) for a in every] == sorted(changed_at(a) for a in every)
    assert every[-len(late) :] == late  # the late event's changes come last
    progress = next(a for a in every if a["rule"]["key"] == "good-progress")
    assert progress["withdrawn"]["by_event"] == "sore"
    assert changes(client, timezone.now()) == []


def test_the_gym_feed_lists_current_advice_unless_withdrawn_is_asked_for(client, member):
    for n in (0, 2, 4, 6, 8):
        client.send(run(at=day(n), external_id=f"r{n}"), expect=201)
    client.send(run(at=day(3), pain_during=6, pain_after=6, external_id="sore"), expect=201)

    current = client.get(ADVICE_URL).json()["results"]
    every = client.get(f"{ADVICE_URL}?withdrawn=true").json()["results"]
    assert all(a["withdrawn"] is None for a in current)
    assert {a["id"] for a in every} - {a["id"] for a in current} == set(
        Advice.objects.filter(withdrawn_at__isnull=False).values_list("id", flat=True)
    )
    assert ("good-progress", "r8") in keyed([a for a in every if a["withdrawn"]])


def test_repeating_the_late_event_withdraws_nothing_more(client, member):
    for n in (0, 2, 4, 6, 8):
        client.send(run(at=day(n), external_id=f"r{n}"), expect=201)
    payload = run(at=day(3), pain_during=6, pain_after=6, external_id="sore")
    first = client.send(payload, expect=201).json()
    withdrawn = Advice.objects.filter(withdrawn_at__isnull=False).count()
    assert client.send(payload, expect=200).json() == first
    assert Advice.objects.filter(withdrawn_at__isnull=False).count() == withdrawn
