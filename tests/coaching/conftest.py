"""Builders for the coaching suite: gyms with keys, API clients, and event payloads."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.db import BaseDatabaseCache
from rest_framework.test import APIClient

from coaching.services import gym_create, rulepack_install
from rules import evaluation as rules_evaluation

EVENTS_URL = "/api/v1/events/"
ADVICE_URL = "/api/v1/advice/"
MEMBERS_URL = "/api/v1/members/"

# A fixed morning well in the past, so a series of days after it never reaches the future.
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(days=120)).replace(hour=7, minute=30, second=0, microsecond=0)

_ids = itertools.count(1)


# The run the API reference uses as its example (docs/api.md and the schema's examples).
DOCS_RUN = {
    "external_id": "garmin-88231",
    "member": "m-1042",
    "type": "run",
    "occurred_at": "2026-11-20T07:30:00+01:00",
    "data": {
        "distance_km": 6.2,
        "duration_min": 38,
        "surface": "hills",
        "warmup_min": 0,
        "pain_before": 2,
        "pain_during": 6,
        "pain_after": 5,
    },
}


def iso(at: dt.datetime) -> str:
    return at.isoformat()


def day(n: float, hour: int = 0) -> dt.datetime:
    """T0 plus ``n`` days (and ``hour`` hours)."""
    return T0 + dt.timedelta(days=n, hours=hour)


def weeks_before(at: dt.datetime, weeks: int, days: int = 0) -> str:
    """The date ``weeks`` weeks (and ``days`` days) before ``at``, as an ``onset_date``."""
    return (at - dt.timedelta(weeks=weeks, days=days)).date().isoformat()


def event(
    type: str, data: dict[str, Any], *, at: dt.datetime = T0, member: str = "m-1", external_id: str | None = None
) -> dict[str, Any]:
    return {
        "external_id": external_id or f"e-{next(_ids)}",
        "member": member,
        "type": type,
        "occurred_at": iso(at),
        "data": data,
    }


QUIET_RUN: dict[str, Any] = {
    "distance_km": 3,
    "duration_min": 20,
    "surface": "road",
    "warmup_min": 10,
    "pain_before": 0,
    "pain_during": 0,
    "pain_after": 0,
    "running_shoes": True,
    "shoes_km": 100,
    "hydrated": True,
    "fuelled": True,
    "with_group": True,
    "posture": "good",
}


def run(at: dt.datetime = T0, member: str = "m-1", external_id: str | None = None, **data: Any) -> dict[str, Any]:
    """A run that fires nothing on its own (apart from first-run rules), with ``data`` overriding."""
    return event("run", {**QUIET_RUN, **data}, at=at, member=member, external_id=external_id)


def pain(at: dt.datetime = T0, member: str = "m-1", external_id: str | None = None, **data: Any) -> dict[str, Any]:
    return event("pain_report", {"pain": 1, **data}, at=at, member=member, external_id=external_id)


def profile(at: dt.datetime = T0, member: str = "m-1", external_id: str | None = None, **data: Any) -> dict[str, Any]:
    return event("profile", data, at=at, member=member, external_id=external_id)


def cross(at: dt.datetime = T0, member: str = "m-1", external_id: str | None = None, **data: Any) -> dict[str, Any]:
    return event("cross_training", {"activity": "cycling", **data}, at=at, member=member, external_id=external_id)


def rule_keys(body: dict[str, Any]) -> list[str]:
    return [advice["rule"]["key"] for advice in body["advice"]]


class GymClient(APIClient):
    """An API client carrying one gym's key, with shortcuts for the event API."""

    def __init__(self, key: str, gym: Any) -> None:
        super().__init__()
        self.key = key
        self.gym = gym
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    def send(self, payload: Any, expect: int | None = None) -> Any:
        response = self.post(EVENTS_URL, payload, format="json")
        if expect is not None:
            assert response.status_code == expect, response.content
        return response

    def fired(self, payload: dict[str, Any]) -> list[str]:
        """Send one new event and return the keys of the rules it fired."""
        return rule_keys(self.send(payload, expect=201).json())

    def advice(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Send one new event and return the advice it gave (ADVICE objects)."""
        return self.send(payload, expect=201).json()["advice"]

    def history(self, *payloads: dict[str, Any]) -> None:
        for payload in payloads:
            self.send(payload, expect=201)

    def member_detail(self, member: str = "m-1") -> dict[str, Any]:
        response = self.get(f"{MEMBERS_URL}{member}/")
        assert response.status_code == 200, response.content
        return response.json()

    def referral(self, member: str = "m-1") -> dict[str, Any] | None:
        """The member's referral in force (``null`` in the member detail: None)."""
        return self.member_detail(member)["referral"]


@pytest.fixture(autouse=True)
def fresh_state():
    if not isinstance(caches["default"], BaseDatabaseCache):  # a database cache is rolled back with each test
        cache.clear()  # throttle counters
    rules_evaluation.engine_reset()
    yield
    rules_evaluation.engine_reset()


@pytest.fixture
def pack(db) -> None:
    """The default rule pack, installed and published."""
    rulepack_install()


def _client(name: str) -> GymClient:
    gym, key = gym_create(name=name)
    return GymClient(key, gym)


@pytest.fixture
def client(db) -> GymClient:
    return _client("Riverside Runners")


@pytest.fixture
def other_client(db) -> GymClient:
    return _client("Hilltop Gym")


@pytest.fixture
def member(client: GymClient) -> str:
    """A member cleared by a physician, so first-run rules stay quiet."""
    client.send(profile(at=day(-1), cleared_by_physician=True), expect=201)
    return "m-1"


ENGINE_DOWN = "engine down (simulated)"


def engine_break(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every evaluation fail as an engine failure would, until ``monkeypatch.undo()``.

    ``rules.evaluation`` binds the engine's ``evaluate`` when it is imported, so it is replaced
    there as well as in ``rules.internal.runtime``.
    """
    from rules.internal import runtime

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(ENGINE_DOWN)

    monkeypatch.setattr(runtime, "evaluate", broken)
    monkeypatch.setattr(rules_evaluation, "evaluate", broken)


def approved_by_another_clinician(request_url: str) -> tuple[Any, Any]:
    """A second clinician, pt-ben, approves the request whose page is ``request_url`` (where the
    publish and roll-back pages send their author); returns the answer and pt-ben's browser."""
    from django.test import Client

    from coaching.services import clinician_ensure

    user, _ = clinician_ensure(username="pt-ben", password="another-clinician-password")
    browser = Client()
    browser.force_login(user)
    return browser.post(request_url, {"_approve": "1"}), browser
