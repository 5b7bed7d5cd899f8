"""Gyms in the loop (docs/integrating.md): scoped keys, the member list, feedback on advice,
CDS Hooks and Standard Webhooks, through the HTTP API as a gym's developer uses them."""

from __future__ import annotations

import datetime as dt
import http.server
import io
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from coaching import webhooks
from coaching.api.authentication import MSG_SCOPE_MISSING
from coaching.models import Advice, AdviceFeedback, GymKey, Member, WebhookMessage
from coaching.services import gym_key_create, gym_key_rotate
from rules.models import Rule
from rules.selectors import rule_spec
from rules.services import rule_save, ruleset_publish

from .conftest import EVENTS_URL, MEMBERS_URL, GymClient, day, pain, profile, run

pytestmark = pytest.mark.django_db

CDS = "/cds-services"
SERVICE = "/cds-services/running-back-advice"
WEBHOOKS = "/api/v1/webhooks/"


@pytest.fixture
def client(client: GymClient, pack) -> GymClient:
    return client


def keyed(client: GymClient, *scopes: str, name: str = "narrow") -> GymClient:
    _key, secret = gym_key_create(gym=client.gym, name=name, scopes=list(scopes))
    return GymClient(secret, client.gym)


# -- scoped keys ---------------------------------------------------------------------------------
def test_a_key_without_members_erase_cannot_erase_and_says_which_scope_it_lacks(client):
    client.send(run(member="m-9"), expect=201)
    reader = keyed(client, "advice:read", "events:write")
    response = reader.delete(f"{MEMBERS_URL}m-9/")
    assert response.status_code == 403
    assert response.json() == {"detail": MSG_SCOPE_MISSING.format(scope="members:erase", what="erasing a member")}
    assert Member.objects.filter(external_id="m-9").exists()
    assert keyed(client, "members:erase", name="eraser").delete(f"{MEMBERS_URL}m-9/").status_code == 204


def test_each_scope_allows_only_its_own_calls(client):
    poster = keyed(client, "events:write")
    assert poster.send(run(), expect=201)
    assert poster.get(EVENTS_URL).status_code == 403
    reader = keyed(client, "advice:read", name="reader")
    assert reader.get(EVENTS_URL).status_code == 200
    assert reader.send(run()).status_code == 403
    assert reader.get(WEBHOOKS).status_code == 403


def test_a_rotated_key_keeps_working_for_its_grace_then_answers_401(client):
    new = gym_key_rotate(gym=client.gym, name="default", grace=dt.timedelta(hours=24))
    assert client.get(EVENTS_URL).status_code == 200  # the old key, within its grace
    assert GymClient(new, client.gym).get(EVENTS_URL).status_code == 200
    GymKey.objects.filter(gym=client.gym, expires_at__isnull=False).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)  # as 24 hours later
    )
    assert client.get(EVENTS_URL).status_code == 401
    assert GymClient(new, client.gym).get(EVENTS_URL).status_code == 200
    out = io.StringIO()
    call_command("gymkey", client.gym.name, "--list", stdout=out)
    assert "\texpired " in out.getvalue() and "\tuntil " not in out.getvalue()


def test_gymkey_makes_lists_rotates_with_a_grace_and_revokes(client):
    out = io.StringIO()
    call_command("gymkey", client.gym.name, "--name", "app", "--scopes", "events:write", stdout=out)
    app = GymClient(out.getvalue().strip().splitlines()[-1], client.gym)
    assert app.send(run(), expect=201) and app.get(EVENTS_URL).status_code == 403

    out = io.StringIO()
    call_command("gymkey", client.gym.name, "--list", stdout=out)
    listing = out.getvalue()
    assert "app\t" in listing and "events:write" in listing and app.key not in listing

    out = io.StringIO()
    call_command("gymkey", "--rotate", client.gym.name, "--name", "app", "--grace", "24h", stdout=out)
    rotated = GymClient(out.getvalue().strip().splitlines()[-1], client.gym)
    assert rotated.send(run(), expect=201) and app.send(run(), expect=201)  # both, during the grace

    call_command("gymkey", client.gym.name, "--revoke", "app", stdout=io.StringIO())
    assert rotated.send(run()).status_code == 401 and app.send(run()).status_code == 401


def test_a_second_working_key_of_the_same_name_is_refused(client):
    from django.core.management.base import CommandError

    call_command("gymkey", client.gym.name, "--name", "app", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already has a key named"):
        call_command("gymkey", client.gym.name, "--name", "app", stdout=io.StringIO())
    assert GymKey.objects.filter(gym=client.gym, name="app").count() == 1


# -- the member list -------------------------------------------------------------------------------
def test_the_member_list_shows_each_members_events_referral_and_advice_and_filters_by_referral(client):
    client.history(
        profile(at=day(-1), member="calm", cleared_by_physician=True),
        run(at=day(0), member="calm", warmup_min=0),
        pain(at=day(1), member="referred", pain=8, external_id="bad"),
    )
    listed = {m["member"]: m for m in client.get(MEMBERS_URL).json()["results"]}
    assert set(listed) == {"calm", "referred"}
    assert listed["calm"]["referral"] is None and listed["calm"]["advice"] == 1
    assert listed["referred"]["referral"]["event"] == "bad" and listed["referred"]["advice"] == 1
    assert listed["calm"]["first_event_at"] < listed["calm"]["last_event_at"]
    under = client.get(MEMBERS_URL, {"under_referral": "true"}).json()["results"]
    assert [m["member"] for m in under] == ["referred"]
    assert [m["member"] for m in client.get(MEMBERS_URL, {"under_referral": "false"}).json()["results"]] == ["calm"]


def test_another_gyms_members_are_not_listed(client, other_client):
    other_client.send(run(member="theirs"), expect=201)
    assert client.get(MEMBERS_URL).json()["results"] == []


def test_active_advice_is_what_to_show_now_by_each_rules_display_period(client):
    now = timezone.now()
    client.history(
        run(at=now - dt.timedelta(days=20), member="a", pain_during=6, external_id="old"),
        run(at=now - dt.timedelta(days=2), member="a", pain_during=6, external_id="recent"),
    )
    url = f"{MEMBERS_URL}a/advice/"

    def stops(**query: str) -> list[str]:
        return sorted(a["event"] for a in client.get(url, query).json()["results"] if a["rule"]["key"] == "pain-stop")

    assert stops() == ["old", "recent"]  # every current piece of advice
    assert stops(active="true") == ["recent"]  # pain-stop shows for 14 days, the default
    # A clinician makes pain-stop's advice stay until it is withdrawn, and publishes it.
    rule = Rule.objects.get(key="pain-stop")
    rule_save(spec={**rule_spec(rule), "display_days": 0}, rule=rule)
    ruleset_publish(comment="Stop advice stays")
    assert stops(active="true") == ["old", "recent"]
    rule_save(spec={**rule_spec(rule), "display_days": 1}, rule=rule)
    ruleset_publish(comment="Stop advice for a day")
    assert stops(active="true") == []
    assert stops(active="false") == ["old", "recent"]


def test_active_advice_refuses_withdrawn_and_values_it_does_not_know(client):
    client.send(run(member="a"), expect=201)
    url = f"{MEMBERS_URL}a/advice/"
    both = client.get(url, {"active": "true", "withdrawn": "true"})
    assert both.status_code == 400 and "withdrawn=true" in both.json()["errors"]["active"][0]
    for value in ("maybe", ""):
        refused = client.get(url, {"active": value})
        assert refused.status_code == 400 and list(refused.json()["errors"]) == ["active"]


# -- feedback on advice --------------------------------------------------------------------------------
def test_feedback_is_stored_once_per_advice_outcome_and_moment(client, other_client):
    [advice] = client.advice(run(pain_during=6, member="x"))[1:]
    url = f"/api/v1/advice/{advice['id']}/feedback/"
    body = {"outcome": "overridden", "override_reasons": ["member-declined"], "outcome_at": "2026-11-20T08:00:00Z"}
    assert client.post(url, body, format="json").status_code == 201
    assert client.post(url, body, format="json").status_code == 200
    assert AdviceFeedback.objects.count() == 1
    assert list(AdviceFeedback.objects.values_list("reasons", flat=True)) == [["member-declined"]]
    bad = client.post(url, {"outcome": "overridden", "override_reasons": ["because"]}, format="json")
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["override_reasons"]
    assert other_client.post(url, body, format="json").status_code == 404


@pytest.mark.parametrize(
    "field, value",
    [
        ("outcome_at", None),
        ("outcome_at", "2024-01-01T12:99:00Z"),
        ("outcome_at", "soon"),
        ("comment", "x" * 2001),
        ("override_reasons", None),
        ("override_reasons", "member-declined"),
    ],
)
def test_feedback_with_a_bad_field_is_400_naming_it_and_stores_nothing(client, field, value):
    [advice] = client.advice(run(pain_during=6, member="x"))[1:]
    body = {"outcome": "accepted", field: value}
    response = client.post(f"/api/v1/advice/{advice['id']}/feedback/", body, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == [field]
    assert not AdviceFeedback.objects.exists()


# -- CDS Hooks -------------------------------------------------------------------------------------------
def cds_request(member: str = "m-1") -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"patientId": member, "userId": "Practitioner/1"},
    }


def assert_card_valid(card: dict[str, Any]) -> None:
    """The fields CDS Hooks 2.0 requires of a card, and the ones this service promises."""
    assert isinstance(card["summary"], str) and 0 < len(card["summary"]) < 141
    assert card["indicator"] in ("info", "warning", "critical")
    assert isinstance(card["source"]["label"], str) and card["source"]["label"]
    uuid.UUID(card["uuid"])
    for coding in card["overrideReasons"]:
        assert set(coding) >= {"code", "display"}


def test_discovery_describes_the_service_with_the_fields_cds_hooks_requires(client):
    body = client.get(CDS).json()
    [service] = body["services"]
    assert service["hook"] == "patient-view" and service["id"] == "running-back-advice"
    assert service["description"] and service["title"] and isinstance(service["prefetch"], dict)


def test_the_service_answers_the_members_current_advice_as_cards_most_urgent_first(client):
    client.history(
        profile(at=timezone.now() - dt.timedelta(days=3), cleared_by_physician=True),
        run(at=timezone.now() - dt.timedelta(days=2), warmup_min=0),
        pain(at=timezone.now() - dt.timedelta(days=1), pain=2, saddle_numbness=True),
        run(at=timezone.now() - dt.timedelta(days=40), member="m-1", external_id="old", surface="hills"),
    )
    cards = client.post(SERVICE, cds_request(), format="json").json()["cards"]
    for card in cards:
        assert_card_valid(card)
    assert [c["indicator"] for c in cards] == ["critical", "info"]  # the emergency, then the warm-up tip
    assert "emergency" in cards[0]["summary"]
    assert {c["code"] for c in cards[0]["overrideReasons"]} >= {"not-relevant", "already-addressed", "member-declined"}
    again = client.post(SERVICE, cds_request(), format="json").json()["cards"]
    assert [c["uuid"] for c in again] == [c["uuid"] for c in cards]  # stable per advice
    assert client.post(SERVICE, cds_request("nobody"), format="json").json() == {"cards": []}


def test_a_malformed_service_request_answers_400_with_the_reason(client):
    for body in (
        {"hook": "order-sign", "hookInstance": str(uuid.uuid4()), "context": {"patientId": "m"}},
        {"hook": "patient-view"},
        [],
    ):
        response = client.post(SERVICE, body, format="json")
        assert response.status_code == 400 and isinstance(response.json()["error"], str)


def test_cds_feedback_is_stored_per_advice_once_and_an_unknown_card_is_404(client):
    client.history(pain(at=timezone.now() - dt.timedelta(days=1), pain=8))
    [card] = client.post(SERVICE, cds_request(), format="json").json()["cards"]
    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": "already-addressed", "system": "x"}, "userComment": "seen today"},
                "outcomeTimestamp": "2026-11-20T08:00:00Z",
            }
        ]
    }
    url = SERVICE + "/feedback"
    assert client.post(url, feedback, format="json").status_code == 200
    assert client.post(url, feedback, format="json").status_code == 200
    stored = AdviceFeedback.objects.get()
    assert (stored.outcome, stored.reasons, stored.comment, stored.source) == (
        "overridden",
        ["already-addressed"],
        "seen today",
        "cds-hooks",
    )
    unknown = {"feedback": [{**feedback["feedback"][0], "card": str(uuid.uuid4())}]}
    assert client.post(url, unknown, format="json").status_code == 404


@pytest.mark.parametrize("moment", ["2024-01-01T12:99:00Z", "0001-01-01T00:00:00+14:00", "yesterday", 20240101])
def test_cds_feedback_with_an_impossible_outcome_timestamp_is_400_naming_it(client, moment):
    client.history(pain(at=timezone.now() - dt.timedelta(days=1), pain=8))
    [card] = client.post(SERVICE, cds_request(), format="json").json()["cards"]
    feedback = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": moment}]}
    response = client.post(SERVICE + "/feedback", feedback, format="json")
    assert response.status_code == 400
    assert "outcomeTimestamp" in str(response.json())
    assert not AdviceFeedback.objects.exists()


def test_cds_hooks_answer_with_a_trailing_slash_too(client):
    client.history(pain(at=timezone.now() - dt.timedelta(days=1), pain=8))
    assert client.get(CDS + "/").json() == client.get(CDS).json()
    cards = client.post(SERVICE + "/", cds_request(), format="json").json()["cards"]
    assert cards and cards == client.post(SERVICE, cds_request(), format="json").json()["cards"]


def test_cds_hooks_needs_the_gyms_key(client):
    from rest_framework.test import APIClient

    assert APIClient().get(CDS).status_code == 401


# -- webhooks -----------------------------------------------------------------------------------------------
class Receiver:
    """A real HTTP receiver on loopback: answers each POST with the next of ``statuses`` (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"

    def close(self) -> None:
        self.server.shutdown()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with override_settings(WEBHOOKS_ALLOW_HTTP=True):
        found = Receiver()
        yield found
        found.close()


def register(client: GymClient, url: str, events: list[str]) -> dict[str, Any]:
    response = client.post(WEBHOOKS, {"url": url, "events": events}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def deliver_all() -> None:
    """What a queue worker does: every due message, now (retries made due at once)."""
    WebhookMessage.objects.filter(delivered_at__isnull=True).update(next_attempt_at=timezone.now())
    webhooks.deliveries_run()


def test_advice_is_pushed_signed_to_the_standard_and_verifies_with_its_library(client, receiver):
    endpoint = register(client, receiver.url, ["advice.created"])
    assert endpoint["secret"].startswith("whsec_") and endpoint["events"] == ["advice.created"]
    client.send(profile(at=timezone.now() - dt.timedelta(days=1), cleared_by_physician=True), expect=201)
    client.send(run(at=timezone.now() - dt.timedelta(hours=1), pain_during=6, external_id="sore"), expect=201)
    deliver_all()
    [(headers, body)] = receiver.received
    payload = Webhook(endpoint["secret"]).verify(body, headers)
    assert payload["type"] == "advice.created"
    assert (payload["data"]["event"], payload["data"]["rule"]["key"]) == ("sore", "pain-stop")
    assert payload["data"] == client.get(f"{MEMBERS_URL}m-1/advice/").json()["results"][0]


def test_a_failing_receiver_gets_the_delivery_on_the_third_try_with_the_same_id(client, receiver):
    receiver.statuses = [500, 503]
    register(client, receiver.url, ["member.referral_changed"])
    client.send(pain(at=timezone.now() - dt.timedelta(hours=1), pain=8), expect=201)
    for _ in range(3):
        deliver_all()
    ids = [headers["webhook-id"] for headers, _body in receiver.received]
    assert len(ids) == 3 and len(set(ids)) == 1
    message = WebhookMessage.objects.get()
    assert message.delivered_at is not None and message.attempts == 3
    assert message.attempts_made.count() == 3
    deliver_all()  # another worker run (a restarted worker): nothing is sent twice
    assert len(receiver.received) == 3


def test_a_withdrawal_and_an_erasure_are_delivered(client, receiver):
    register(client, receiver.url, ["advice.withdrawn", "member.erased"])
    now = timezone.now()
    client.history(profile(at=now - dt.timedelta(days=3), cleared_by_physician=True))
    client.send(run(at=now - dt.timedelta(days=1), posture="slouched"), expect=201)
    client.send(run(at=now - dt.timedelta(days=2), posture="slouched"), expect=201)  # late: the cooldown moves
    client.delete(f"{MEMBERS_URL}m-1/")
    deliver_all()
    types = [body["type"] for body in receiver.bodies()]
    assert "advice.withdrawn" in types and types[-1] == "member.erased"
    assert receiver.bodies()[-1]["data"] == {"member": "m-1", "referral": None}


def test_advice_about_events_older_than_the_webhook_age_is_not_pushed(client, receiver):
    register(client, receiver.url, ["advice.created"])
    client.send(run(at=timezone.now() - dt.timedelta(days=8), pain_during=6), expect=201)
    assert not WebhookMessage.objects.exists()


def test_a_referral_about_old_events_is_not_pushed_and_a_recent_one_is(client, receiver):
    register(client, receiver.url, ["member.referral_changed"])
    client.send(pain(at=timezone.now() - dt.timedelta(days=30), pain=8, member="imported"), expect=201)
    client.send(profile(at=timezone.now() - dt.timedelta(days=29), member="imported", cleared_by_physician=True))
    assert not WebhookMessage.objects.exists()  # a history imported: its referral came and went long ago
    client.send(pain(at=timezone.now() - dt.timedelta(hours=2), pain=8, member="today"), expect=201)
    [message] = WebhookMessage.objects.all()
    assert message.payload["data"]["member"] == "today"


def test_a_link_local_address_is_refused_always_and_a_private_one_without_the_local_setting(client):
    response = client.post(
        WEBHOOKS, {"url": "https://169.254.169.254/latest", "events": ["advice.created"]}, format="json"
    )
    assert response.status_code == 400 and "link-local" in response.json()["errors"]["url"][0]
    with override_settings(WEBHOOKS_ALLOW_HTTP=True):
        assert webhooks.url_problem("http://169.254.169.254/") is not None
    assert (
        client.post(WEBHOOKS, {"url": "https://127.0.0.1/x", "events": ["advice.created"]}, format="json").status_code
        == 400
    )


@pytest.mark.parametrize(
    "events, message",
    [
        (
            ["advice.made"],
            webhooks.MSG_EVENT_UNKNOWN.format(value="advice.made", choices=", ".join(webhooks.EVENT_TYPES)),
        ),
        ([], webhooks.MSG_EVENTS_EMPTY.format(choices=", ".join(webhooks.EVENT_TYPES))),
        ("advice.created", webhooks.MSG_EVENTS_EMPTY.format(choices=", ".join(webhooks.EVENT_TYPES))),
    ],
)
def test_an_endpoint_with_events_it_cannot_send_is_400_saying_which_can_be(client, receiver, events, message):
    response = client.post(WEBHOOKS, {"url": receiver.url, "events": events}, format="json")
    assert response.status_code == 400
    assert response.json() == {"errors": {"events": [message]}}


def test_endpoints_are_listed_without_their_secret_and_removed(client, receiver):
    made = register(client, receiver.url, ["advice.created"])
    listed = client.get(WEBHOOKS).json()
    assert [e["id"] for e in listed] == [made["id"]] and "secret" not in listed[0]
    assert client.delete(f"{WEBHOOKS}{made['id']}/").status_code == 204
    assert client.get(WEBHOOKS).json() == []


def test_a_rotated_secret_signs_beside_the_new_one_for_a_day(client, receiver):
    made = register(client, receiver.url, ["advice.created"])
    rotated = client.post(f"{WEBHOOKS}{made['id']}/secret/", format="json").json()
    client.send(run(at=timezone.now() - dt.timedelta(hours=1), pain_during=6), expect=201)
    deliver_all()
    headers, body = receiver.received[0]
    for secret in (made["secret"], rotated["secret"]):
        assert Webhook(secret).verify(body, headers)


# -- keeping a copy in step ----------------------------------------------------------------------------------
def changes(client: GymClient, mark: str) -> tuple[list[dict[str, Any]], str]:
    body = client.get("/api/v1/advice/", {"changed_since": mark}).json()
    return body["results"], body["next_changed_since"]


def test_the_feeds_watermark_misses_nothing_and_repeats_nothing(client):
    client.history(profile(at=day(-1), cleared_by_physician=True))
    client.send(run(at=day(0), posture="slouched", external_id="r0"), expect=201)
    first, mark = changes(client, "2000-01-01")
    assert [(a["event"], a["withdrawn"]) for a in first] == [("r0", None)]
    assert changes(client, mark) == ([], mark)  # nothing new: the same watermark, nothing again
    client.send(run(at=day(-0.5), posture="slouched", external_id="late"), expect=201)  # withdraws r0's tip
    second, mark2 = changes(client, mark)
    assert {(a["event"], a["withdrawn"] is not None) for a in second} == {("late", False), ("r0", True)}
    assert changes(client, mark2) == ([], mark2)


def test_a_change_is_dated_once_its_members_rows_are_held_not_before_a_wait_for_the_lock(client, monkeypatch):
    import importlib

    write = importlib.import_module("coaching.ingest.write")  # the module, not the function it exports
    held_at: list[dt.datetime] = []
    advance = write._members_advance

    def advance_then_note(*args: Any, **kwargs: Any) -> None:
        advance(*args, **kwargs)
        held_at.append(timezone.now())  # the rows are held from here on

    monkeypatch.setattr(write, "_members_advance", advance_then_note)
    client.send(run(at=day(0), pain_during=6), expect=201)
    [advice] = Advice.objects.filter(rule_key="pain-stop")
    assert advice.changed_at >= held_at[0]


def test_a_bad_watermark_is_a_400_naming_the_parameter(client):
    response = client.get("/api/v1/advice/", {"changed_since": "w1.nonsense"})
    assert response.status_code == 400 and "changed_since" in response.json()["errors"]


def test_the_feed_waits_until_a_change_has_settled(client):
    client.send(run(at=day(0), pain_during=6), expect=201)
    with override_settings(FEED_SETTLE_SECONDS=3600):
        listed, mark = changes(client, "2000-01-01")
    assert listed == [] and changes(client, mark)[0]  # listed once settled
