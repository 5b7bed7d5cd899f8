"""The example client in examples/ works against a live server, as a gym's developer would use it."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from django.test import override_settings
from django.utils import timezone

from coaching.services import gym_create, rulepack_install

from .test_integrations import Receiver, deliver_all

ROOT = Path(__file__).resolve().parents[2]


def example_client() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_client", ROOT / "examples" / "client.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def moment(hours_ago: float) -> str:
    return (timezone.now() - dt.timedelta(hours=hours_ago)).isoformat()


def event(external_id: str, event_type: str, hours_ago: float, **data):
    return {
        "external_id": external_id,
        "member": "m-1",
        "type": event_type,
        "occurred_at": moment(hours_ago),
        "data": data,
    }


@pytest.fixture
def api(live_server, transactional_db):
    rulepack_install()
    _gym, key = gym_create(name="Riverside Runners")
    return example_client().Client(live_server.url, key=key)


def test_the_example_client_posts_reads_follows_the_feed_and_gives_feedback(api):
    client = sys.modules["example_client"]
    answers = api.post_events(
        [
            event("p-1", "profile", 30, cleared_by_physician=True),
            event("r-1", "run", 2, distance_km=5, duration_min=30, pain_during=6),
        ]
    )
    assert [a["status"] for a in answers] == [201, 201]
    advice = api.member_advice("m-1")
    assert "pain-stop" in {a["rule"]["key"] for a in advice}

    followed = list(api.follow_changes())
    assert {a["id"] for a in followed} == {a["id"] for a in advice}
    assert list(api.follow_changes()) == []  # from the watermark: nothing twice
    api.post_event(event("r-2", "run", 1, distance_km=5, duration_min=30, posture="slouched"))
    assert {a["event"] for a in api.follow_changes()} == {"r-2"}

    given = next(a for a in advice if a["rule"]["key"] == "pain-stop")
    assert api.feedback(given["id"], "accepted")["created"] is True
    with pytest.raises(client.ApiError) as refused:
        api.feedback(given["id"], "ignored")
    assert refused.value.status == 400 and "outcome" in refused.value.body["errors"]


def test_the_example_client_verifies_a_real_webhook_delivery_and_refuses_a_forged_one(api):
    client = sys.modules["example_client"]
    with override_settings(WEBHOOKS_ALLOW_HTTP=True):
        receiver = Receiver()
        try:
            endpoint = api.request("POST", "/api/v1/webhooks/", {"url": receiver.url, "events": ["advice.created"]})
            api.post_event(event("r-1", "run", 1, distance_km=5, duration_min=30, pain_during=6))
            deliver_all()
        finally:
            receiver.close()
    assert receiver.received
    headers, body = receiver.received[0]
    payload = client.verify_webhook(endpoint["secret"], headers, body)
    assert payload["type"] == "advice.created" and payload["data"]["event"] == "r-1"
    with pytest.raises(ValueError):
        client.verify_webhook(endpoint["secret"], headers, body.replace(b"r-1", b"r-9"))
