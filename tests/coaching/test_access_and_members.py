"""Authentication, tenancy, members, advice feeds, health and API docs (docs/api.md)."""

from __future__ import annotations

import pytest

from coaching.api.authentication import KEY_INVALID
from coaching.models import Advice, Event, Member
from coaching.services import gym_key_rotate

from .conftest import ADVICE_URL, EVENTS_URL, GymClient, day, pain, profile, run

pytestmark = pytest.mark.django_db

MEMBER_URL = "/api/v1/members/{}/"
MEMBER_ADVICE_URL = "/api/v1/members/{}/advice/"


@pytest.mark.parametrize(
    "method,url",
    [
        ("get", EVENTS_URL),
        ("post", EVENTS_URL),
        ("get", ADVICE_URL),
        ("get", MEMBER_URL.format("m-1")),
        ("delete", MEMBER_URL.format("m-1")),
        ("get", MEMBER_ADVICE_URL.format("m-1")),
    ],
)
def test_no_key_answers_401_with_www_authenticate(db, method, url):
    from rest_framework.test import APIClient

    response = getattr(APIClient(), method)(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer wrong-key", "Bearer", "Bearer a b", "Token abc", "Basic Zm9vOmJhcg=="])
def test_bad_key_answers_401(client, header):
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(EVENTS_URL)
    assert response.status_code == 401


def test_bad_key_message_is_written_for_the_gym_developer(client):
    client.credentials(HTTP_AUTHORIZATION="Bearer nope")
    assert client.get(EVENTS_URL).json() == {"detail": KEY_INVALID}


def test_rotated_key_replaces_the_old_one(client):
    new_key = gym_key_rotate(gym=client.gym)
    assert client.get(EVENTS_URL).status_code == 401
    assert GymClient(new_key, client.gym).get(EVENTS_URL).status_code == 200


def test_only_a_hash_of_the_key_is_stored(client):
    stored = client.gym.keys.get()
    assert client.key not in (stored.key_hash, stored.key_prefix)
    assert client.key.startswith(stored.key_prefix)


def test_another_gyms_member_answers_404_as_if_absent(client, other_client):
    client.send(run(member="m-secret"), expect=201)
    for url in (MEMBER_URL.format("m-secret"), MEMBER_ADVICE_URL.format("m-secret")):
        assert other_client.get(url).status_code == 404
        assert other_client.get(url).json() == other_client.get(MEMBER_URL.format("never-existed")).json()
    assert other_client.delete(MEMBER_URL.format("m-secret")).status_code == 404
    assert Member.objects.filter(external_id="m-secret").exists()
    assert other_client.get(EVENTS_URL, {"member": "m-secret"}).json()["results"] == []


def test_another_gyms_advice_never_shows_in_the_feed(client, other_client, pack):
    client.send(run(pain_during=8), expect=201)
    assert client.get(ADVICE_URL).json()["results"]
    assert other_client.get(ADVICE_URL).json()["results"] == []


def test_member_shows_profile_and_current_figures(client, pack):
    client.history(
        profile(at=day(-1), experience="returning", cleared_by_physician=True),
        run(at=day(0), distance_km=4),
        run(at=day(1), distance_km=5),
    )
    body = client.get(MEMBER_URL.format("m-1")).json()
    assert body["member"] == "m-1"
    assert body["profile"] == {"experience": "returning", "cleared_by_physician": True}
    figures = body["figures"]
    # As of now (months after the runs): nothing in the last weeks, profile figures still hold.
    assert figures["weekly_distance_km"] == 0
    assert figures["runs_last_7_days"] == 0
    assert figures["pain_free_run_streak"] == 2
    assert figures["cleared_by_physician"] is True and figures["back_injury"] is False
    assert figures["hours_since_last_run"] > 24 * 30
    assert body["events"] == 3


def test_unknown_member_answers_404(client):
    assert client.get(MEMBER_URL.format("nobody")).status_code == 404


def test_delete_member_erases_member_events_and_advice(client, pack):
    client.history(run(pain_during=9), pain(pain=6), run(member="m-2"))
    assert Advice.objects.filter(member__external_id="m-1").exists()
    assert client.delete(MEMBER_URL.format("m-1")).status_code == 204
    assert not Member.objects.filter(external_id="m-1").exists()
    assert not Event.objects.filter(member__external_id="m-1").exists()
    assert not Advice.objects.filter(member__external_id="m-1").exists()
    assert Member.objects.filter(external_id="m-2").exists()
    assert client.get(MEMBER_URL.format("m-1")).status_code == 404


def test_member_advice_newest_first_with_filters(client, pack):
    client.history(run(at=day(0), pain_during=6), pain(at=day(4), pain=5, numbness=True))
    url = MEMBER_ADVICE_URL.format("m-1")
    body = client.get(url).json()
    keys = [a["rule"]["key"] for a in body["results"]]
    assert "pain-stop" in keys and "red-flags" in keys
    created = [a["created_at"] for a in body["results"]]
    assert created == sorted(created, reverse=True)
    refer = client.get(url, {"severity": "refer"}).json()["results"]
    assert refer and {a["severity"] for a in refer} == {"refer"}
    pain_only = client.get(url, {"category": "pain"}).json()["results"]
    assert pain_only and {a["category"] for a in pain_only} == {"pain"}
    assert client.get(url, {"severity": "urgent"}).status_code == 400
    assert client.get(url, {"since": "2999-01-01"}).json()["results"] == []


def test_advice_has_the_contract_shape(client, pack):
    body = client.send(run(external_id="garmin-1", member="m-1042", pain_during=6, pain_after=5), expect=201).json()
    advice = next(a for a in body["advice"] if a["rule"]["key"] == "pain-stop")
    assert set(advice) == {
        "id",
        "member",
        "event",
        "rule",
        "category",
        "severity",
        "message",
        "matched_events",
        "source",
        "card",
        "created_at",
        "withdrawn",
    }
    assert advice["member"] == "m-1042"
    assert advice["event"] == "garmin-1"
    assert set(advice["rule"]) == {"key", "name", "version"} and advice["rule"]["version"] >= 1
    assert advice["severity"] == "stop" and advice["category"] == "pain"
    assert advice["matched_events"] == ["garmin-1"]
    assert advice["source"]["label"].startswith("Is Running Good For Lower Back Pain")
    card = advice["card"]
    assert len(card["summary"]) <= 140
    assert card["indicator"] == "warning"
    assert card["source"] == advice["source"]
    assert advice["message"] in card["detail"]
    assert advice["created_at"].endswith("Z")


def test_advice_is_sorted_most_urgent_first(client, pack):
    body = client.send(run(pain_during=6, warmup_min=0), expect=201).json()
    order = ["emergency", "refer", "stop", "caution", "info"]
    ranks = [order.index(a["severity"]) for a in body["advice"]]
    assert ranks == sorted(ranks)


def test_card_indicator_follows_severity_unless_the_rule_sets_its_own(client, pack):
    def indicators(*payloads):
        given = [a for payload in payloads for a in client.send(payload, expect=201).json()["advice"]]
        return {(a["rule"]["key"], a["severity"], a["card"]["indicator"]) for a in given}

    # A first run without clearance: the routine clearance is a referral shown as a warning.
    assert indicators(run(at=day(0), warmup_min=0, surface="hills", member="new")) == {
        ("medical-clearance", "refer", "warning"),
        ("flat-surface", "caution", "warning"),
        ("warm-up", "info", "info"),
    }
    client.send(profile(at=day(-1), cleared_by_physician=True), expect=201)
    assert indicators(run(at=day(0), pain_during=6)) == {("pain-stop", "stop", "warning")}
    assert indicators(pain(at=day(5), pain=8)) == {("severe-pain-refer", "refer", "critical")}
    assert indicators(pain(at=day(6), pain=2, saddle_numbness=True)) == {
        ("red-flags-emergency", "emergency", "critical")
    }


def test_healthz_needs_no_key(db, pack):
    from django.test import Client

    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert isinstance(body["ruleset_version"], int) and body["ruleset_version"] >= 1


def test_schema_and_docs_need_no_key(db):
    from django.test import Client

    schema = Client().get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/v1/events/",
        "/api/v1/advice/",
        "/api/v1/members/{member}/",
        "/api/v1/members/{member}/advice/",
    } <= set(paths)
    assert Client().get("/api/docs/").status_code == 200
