"""The admin side of gyms' integrations: webhook endpoints and every delivery attempt (with
"send again"), the override reasons clinicians offer with each card, in words."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from coaching.models import OverrideReason, WebhookEndpoint, WebhookMessage
from coaching.services import clinician_ensure

from .conftest import GymClient, pain, run
from .test_integrations import SERVICE, Receiver, deliver_all, register

pytestmark = pytest.mark.django_db

ENDPOINTS = reverse("admin:coaching_webhookendpoint_changelist")
DELIVERIES = reverse("admin:coaching_webhookmessage_changelist")
REASONS = reverse("admin:coaching_overridereason_changelist")


@pytest.fixture
def client(client: GymClient, pack) -> GymClient:
    return client


@pytest.fixture
def operator(db) -> Client:
    browser = Client()
    browser.force_login(get_user_model().objects.create_superuser("root", password="a-long-root-password"))
    return browser


@pytest.fixture
def clinician(db) -> Client:
    user, _ = clinician_ensure(username="pt-anna", password="a-long-password")
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.fixture
def receiver():
    with override_settings(WEBHOOKS_ALLOW_HTTP=True):
        found = Receiver()
        yield found
        found.close()


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_an_operator_adds_an_endpoint_and_sees_its_secret_once(client, operator, receiver):
    response = operator.post(
        reverse("admin:coaching_webhookendpoint_add"),
        {"gym": client.gym.pk, "url": receiver.url, "events": ["advice.created", "member.erased"], "description": ""},
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    [shown] = [m for m in messages_of(response) if "secret" in m]
    assert endpoint.secret in shown and "will not be shown again" in shown
    assert endpoint.events == ["advice.created", "member.erased"]
    page = operator.get(reverse("admin:coaching_webhookendpoint_change", args=[endpoint.pk])).content.decode()
    assert endpoint.secret not in page and "new advice, a member erased" in page and "receiving" in page


def test_a_private_or_link_local_address_is_refused_in_the_admin_with_the_reason(client, operator):
    response = operator.post(
        reverse("admin:coaching_webhookendpoint_add"),
        {"gym": client.gym.pk, "url": "https://169.254.169.254/latest", "events": ["advice.created"]},
    )
    assert response.status_code == 200 and "link-local" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_every_try_is_listed_in_words_and_a_delivery_can_be_sent_again(client, operator, receiver):
    receiver.statuses = [500]
    register(client, receiver.url, ["member.referral_changed"])
    client.send(pain(at=timezone.now() - dt.timedelta(hours=1), pain=8), expect=201)
    deliver_all()
    deliver_all()
    message = WebhookMessage.objects.get()
    page = operator.get(reverse("admin:coaching_webhookmessage_change", args=[message.pk])).content.decode()
    assert "HTTP 500" in page and "HTTP 200 (received)" in page
    assert "A referral began or ended, for member m-1" in page
    listing = operator.get(DELIVERIES).content.decode()
    assert "received " in listing

    response = operator.post(DELIVERIES, {"action": "send_again", "_selected_action": [message.pk]}, follow=True)
    assert "will be sent again" in messages_of(response)[0]
    deliver_all()
    ids = [headers["webhook-id"] for headers, _body in receiver.received]
    assert len(ids) == 3 and len(set(ids)) == 1


def test_a_disabled_endpoint_says_so_and_is_started_again(client, operator, receiver):
    made = register(client, receiver.url, ["advice.created"])
    WebhookEndpoint.objects.filter(pk=made["id"]).update(
        failing_since=timezone.now() - dt.timedelta(days=6), disabled_at=timezone.now()
    )
    assert "switched off" in operator.get(ENDPOINTS).content.decode()
    operator.post(ENDPOINTS, {"action": "enable", "_selected_action": [made["id"]]})
    assert WebhookEndpoint.objects.get().disabled_at is None


def test_clinicians_keep_the_override_reasons_and_cards_offer_them(client, clinician):
    response = clinician.post(
        reverse("admin:coaching_overridereason_add"),
        {"display": "Member is training for a race", "code": "", "active": "on", "position": 9},
        follow=True,
    )
    assert response.status_code == 200
    reason = OverrideReason.objects.get(display="Member is training for a race")
    assert reason.code == "member-is-training-for-a-race"
    client.send(run(at=timezone.now() - dt.timedelta(hours=2), pain_during=6), expect=201)
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()), "context": {"patientId": "m-1"}}
    cards = client.post(SERVICE, body, format="json").json()["cards"]
    assert "member-is-training-for-a-race" in {c["code"] for c in cards[0]["overrideReasons"]}

    OverrideReason.objects.filter(pk=reason.pk).update(active=False)
    cards = client.post(SERVICE, body, format="json").json()["cards"]
    assert "member-is-training-for-a-race" not in {c["code"] for c in cards[0]["overrideReasons"]}
    assert clinician.get(REASONS).status_code == 200


def test_a_reason_code_is_never_reused(clinician):
    OverrideReason.objects.create(code="busy", display="Busy")
    response = clinician.post(reverse("admin:coaching_overridereason_add"), {"display": "Busy", "position": 0})
    assert response.status_code == 200 and "already has the code" in response.content.decode()
