"""For the property tests: seeded member histories, and the advice the API shows for them.

A history is one member's events over a few weeks: runs (pain-free streaks and painful runs,
hills, long and short, alone and in company), pain reports (red flags included), profile
updates (a physician's clearance given and taken back) and cross-training. Events sometimes
share an instant (ties, which the gym's ids break) and carry different UTC offsets, and the
gym's ids are not in time order. Each member gets a temperament (how often it hurts, how
often they run alone) so that streaks, cooldowns and patterns across events happen.

The same seed always gives the same events.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

from rest_framework.test import APIClient

from coaching.services import gym_create

from .conftest import GymClient, event

# Minutes east of UTC: UTC, Europe, the Americas, India, Nepal, Chatham Islands, Baker Island.
OFFSETS = (0, 60, 120, -300, -420, 330, 345, 765, -720)
TYPES = ("run", "pain_report", "profile", "cross_training")
TYPE_WEIGHTS = (0.55, 0.25, 0.07, 0.13)
RED_FLAGS = (
    "numbness",
    "saddle_numbness",
    "leg_weakness",
    "bladder_or_bowel_change",
    "fever",
    "night_pain",
    "unexplained_weight_loss",
    "recent_trauma",
)
# Gaps between events: ties and same-day events as well as days off; at most 2.5 days, so a
# history of 40 events stays within 100 days.
MAX_GAP_DAYS = 2.5
SPAN_DAYS = 105


def _maybe(rng: random.Random, data: dict[str, Any], name: str, value: Any, p: float = 0.85) -> None:
    """Gyms leave optional fields out now and then: a rule whose field is missing does not match."""
    if rng.random() < p:
        data[name] = value


def _run(rng: random.Random, temper: dict[str, float]) -> dict[str, Any]:
    distance = round(rng.choice([rng.uniform(1, 5), rng.uniform(3, 9), rng.uniform(6, 18)]), 1)
    data: dict[str, Any] = {
        "distance_km": distance,
        "duration_min": round(max(5.0, distance * rng.uniform(5, 8) + rng.uniform(-5, 15)), 1),
    }
    hurts = rng.random() < temper["pain"]
    _maybe(rng, data, "surface", rng.choice(["road", "track", "treadmill", "trail", "hills", "hills", "mixed"]))
    _maybe(rng, data, "elevation_gain_m", rng.choice([0, 40, 150, 400]), 0.4)
    _maybe(rng, data, "warmup_min", rng.choice([0, 2, 5, 8, 10, 15]))
    _maybe(rng, data, "pain_before", rng.randint(0, 4) if hurts else rng.randint(0, 1))
    _maybe(rng, data, "pain_during", rng.randint(3, 9) if hurts else rng.randint(0, 2), 0.95)
    _maybe(rng, data, "pain_after", rng.randint(2, 9) if hurts else rng.randint(0, 2), 0.95)
    _maybe(rng, data, "shoes_km", rng.choice([50, 300, 650, 900]), 0.6)
    _maybe(rng, data, "running_shoes", rng.random() < 0.85, 0.7)
    _maybe(rng, data, "hydrated", rng.random() < 0.7, 0.7)
    _maybe(rng, data, "fuelled", rng.random() < 0.7, 0.7)
    _maybe(rng, data, "with_group", rng.random() < temper["group"], 0.9)
    _maybe(rng, data, "posture", rng.choice(["good", "good", "slouched", "overstriding", "leaning_back"]), 0.6)
    _maybe(rng, data, "rpe", rng.randint(1, 10), 0.5)
    return data


def _pain_report(rng: random.Random, temper: dict[str, float], local_day: dt.date) -> dict[str, Any]:
    data: dict[str, Any] = {"pain": rng.randint(3, 9) if rng.random() < temper["pain"] + 0.2 else rng.randint(0, 3)}
    _maybe(rng, data, "location", rng.choice(["lower_back", "lower_back", "upper_back", "hip", "leg", "other"]), 0.7)
    _maybe(rng, data, "radiates_to_leg", rng.random() < 0.2, 0.5)
    if rng.random() < 0.12:
        data[rng.choice(RED_FLAGS)] = True
    if rng.random() < 0.3:
        data[rng.choice(RED_FLAGS)] = False
    if rng.random() < 0.3:
        data["onset_date"] = (local_day - dt.timedelta(days=rng.choice([0, 3, 20, 60, 120]))).isoformat()
    return data


def _profile(rng: random.Random) -> dict[str, Any]:
    data: dict[str, Any] = {}
    _maybe(rng, data, "cleared_by_physician", rng.random() < 0.6, 0.8)
    _maybe(rng, data, "experience", rng.choice(["new", "returning", "regular"]), 0.4)
    _maybe(rng, data, "back_injury", rng.random() < 0.3, 0.4)
    _maybe(rng, data, "chronic_back_pain", rng.random() < 0.3, 0.4)
    _maybe(rng, data, "cancer_history", rng.random() < 0.15, 0.3)
    return data


def _cross_training(rng: random.Random) -> dict[str, Any]:
    data: dict[str, Any] = {"activity": rng.choice(["yoga", "swimming", "cycling", "walking", "massage", "strength"])}
    _maybe(rng, data, "duration_min", rng.choice([20, 30, 45, 60]), 0.7)
    return data


def member_history(rng: random.Random, member: str, *, start: dt.datetime, events: int) -> list[dict[str, Any]]:
    """``events`` payloads of every type for ``member``, from about ``start`` on, in time order."""
    temper = {"pain": rng.choice([0.05, 0.15, 0.35]), "group": rng.choice([0.1, 0.5, 0.9])}
    kinds = list(TYPES) + rng.choices(TYPES, weights=TYPE_WEIGHTS, k=events - len(TYPES))
    rng.shuffle(kinds)
    at = start + dt.timedelta(hours=rng.uniform(0, 24))
    payloads = []
    for index, kind in enumerate(kinds):
        roll = rng.random()
        if index and roll < 0.08:
            pass  # a tie: the same instant as the event before (the gym's ids decide the order)
        elif roll < 0.3:
            at += dt.timedelta(hours=rng.uniform(0.5, 10))
        else:
            at += dt.timedelta(days=rng.uniform(0.6, MAX_GAP_DAYS))
        local = at.astimezone(dt.timezone(dt.timedelta(minutes=rng.choice(OFFSETS))))
        if kind == "run":
            data = _run(rng, temper)
        elif kind == "pain_report":
            data = _pain_report(rng, temper, local.date())
        elif kind == "profile":
            data = _profile(rng)
        else:
            data = _cross_training(rng)
        # The gym's ids are not in time order, so ties are broken by something else than the index.
        external_id = f"{member}-{rng.randrange(16**4):04x}{index:02d}"
        payloads.append(event(kind, data, at=local, member=member, external_id=external_id))
    return payloads


def histories(seed: int, *, members: int, events: Sequence[int], now: dt.datetime) -> list[list[dict[str, Any]]]:
    """``members`` histories (``events`` gives each one's size range), the same for the same seed."""
    rng = random.Random(seed)
    start = now - dt.timedelta(days=SPAN_DAYS)
    return [
        member_history(rng, f"m-{seed}-{n}", start=start, events=rng.randint(events[0], events[-1]))
        for n in range(members)
    ]


def judging_order(payloads: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order events are judged in (docs/advice.md): occurred_at, ties broken by external_id."""
    return sorted(payloads, key=lambda p: (dt.datetime.fromisoformat(p["occurred_at"]), p["external_id"]))


def gym_client(name: str) -> GymClient:
    """A new gym, and an API client carrying its key."""
    gym, key = gym_create(name=name)
    return GymClient(key, gym)


def pages(client: APIClient, url: str) -> list[dict[str, Any]]:
    """Every item of a paginated list, following its ``next`` links."""
    items: list[dict[str, Any]] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        items.extend(response.json()["results"])
        url = response.json()["next"]
    return items


def advice_state(client: APIClient, members: Sequence[str]) -> dict[str, Any]:
    """Each member's current advice (event, rule, matched events, severity, message, summary)
    and referral, as the API shows them; fails if a rule's advice is current twice on one event."""
    state = {}
    for member in members:
        advice = pages(client, f"/api/v1/members/{member}/advice/?page_size=500")
        assert all(a["withdrawn"] is None for a in advice)
        pairs = [(a["event"], a["rule"]["key"]) for a in advice]
        assert len(pairs) == len(set(pairs)), f"{member}: the same rule's advice twice on one event"
        state[member] = {
            "advice": sorted(
                (
                    a["event"],
                    a["rule"]["key"],
                    tuple(a["matched_events"]),
                    a["severity"],
                    a["message"],
                    a["card"]["summary"],
                )
                for a in advice
            ),
            "referral": client.get(f"/api/v1/members/{member}/").json()["referral"],
        }
    return state
