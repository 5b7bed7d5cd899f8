"""Without concurrent requests, every event is judged on the set-based path, late ones too:
nothing it writes (replacement advice, withdrawals, new members) ever collides with what is
stored, so no request falls back to judging member by member. Seen from outside through
``/metrics``: ``rlbp_ingest_conflicts_total`` stays 0 over random histories posted in random
order and in arrays (properties.py)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from .conftest import day, pain, run
from .properties import gym_client, histories

pytestmark = pytest.mark.django_db


def conflicts() -> float:
    return sum(
        REGISTRY.get_sample_value("rlbp_ingest_conflicts_total", {"then": then}) or 0 for then in ("again", "locked")
    )


@pytest.mark.parametrize("seed", range(3))
def test_late_events_and_arrays_never_meet_a_conflict_of_their_own(pack, seed):
    rng = random.Random(seed)
    now = timezone.now() - dt.timedelta(days=1)
    payloads = [payload for history in histories(seed, members=4, events=(25, 35), now=now) for payload in history]
    before = conflicts()
    client = gym_client(f"one by one {seed}")
    for payload in rng.sample(payloads, len(payloads)):  # random order: many late events
        client.send(payload, expect=201)
    arrays = gym_client(f"arrays {seed}")
    shuffled = rng.sample(payloads, len(payloads))
    for start in range(0, len(shuffled), 20):
        body = arrays.send(shuffled[start : start + 20], expect=200).json()
        assert {item["status"] for item in body} == {201}
    withdrawn = client.get("/api/v1/advice/", {"withdrawn": "true"}).json()["results"]
    assert any(advice["withdrawn"] for advice in withdrawn)  # late events did replace advice
    assert conflicts() == before


def test_a_referral_older_than_the_rules_history_window_keeps_its_event(pack, client):
    # Only the events within the live version's window (14 days) before the judged ones become
    # facts; the referral in force started a month before them and still names its event.
    client.send(pain(at=day(0), pain=7, external_id="severe"), expect=201)
    client.send([run(at=day(30 + n)) for n in range(3)], expect=200)
    client.send(run(at=day(40)), expect=201)
    referral = client.referral()
    assert referral["rule"]["key"] == "severe-pain-refer" and referral["event"] == "severe"
    assert client.member_detail()["figures"]["run_number"] == 4  # the older events still counted
