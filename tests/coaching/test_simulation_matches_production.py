"""A simulation of a draft predicts exactly the advice that publishing it and running
``reevaluate`` produces (docs/advice.md), and try-it shows for an event what posting that event
gives.

The draft is made from whatever pack is installed (so the tests hold for any pack): the rule
that gave the most advice switched off, thresholds of three other rules moved, one cooldown
shortened and another added, and the limit of advice per event changed.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import random
from collections import Counter, defaultdict
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from coaching.evaluation import member_events, member_facts
from coaching.models import Advice, Event, Member
from rules import simulation
from rules.evaluation import timeline_judge
from rules.registry import registry
from rules.selectors import version_live
from rules.services import draft_replace, ruleset_publish

from .conftest import GymClient
from .properties import histories, member_history

pytestmark = pytest.mark.django_db

MEMBERS = 6
EVENTS = (30, 36)


def post_histories(client: GymClient, seed: int) -> None:
    payloads = [p for history in histories(seed, members=MEMBERS, events=EVENTS, now=timezone.now()) for p in history]
    random.Random(seed).shuffle(payloads)
    for start in range(0, len(payloads), 50):
        client.send(payloads[start : start + 50], expect=200)


def current_advice() -> dict[str, list[str]]:
    """Each event's current advice (event primary key -> rule keys), as production stored it."""
    by_event: dict[str, list[str]] = defaultdict(list)
    for event_id, rule_key in Advice.objects.filter(withdrawn_at__isnull=True).values_list("event_id", "rule_key"):
        by_event[str(event_id)].append(rule_key)
    return {str(pk): sorted(by_event.get(str(pk), [])) for pk in Event.objects.values_list("pk", flat=True)}


def live_advice_counts() -> Counter:
    return Counter(Advice.objects.filter(withdrawn_at__isnull=True).values_list("rule_key", flat=True))


def moved(parameter: dict[str, Any]) -> Any:
    value = float(parameter["value"]) + 1
    return int(value) if parameter["kind"] == "integer" else value


def draft_of_changes(fired: Counter) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The live version with a rule switched off, thresholds moved, cooldowns changed and
    another limit of advice per event."""
    live = version_live()
    specs = [copy.deepcopy(spec) for spec in live.snapshot]
    by_key = {spec["key"]: spec for spec in specs}
    critical = registry.safety_critical()
    busiest = [key for key, _ in fired.most_common() if key not in critical]  # those stay on
    by_key[busiest[0]]["enabled"] = False
    others = [by_key[key] for key in busiest[1:]]
    moved_rules = [spec for spec in others if any(p["kind"] in ("integer", "number") for p in spec["parameters"])]
    for spec in moved_rules[:3]:
        parameter = next(p for p in spec["parameters"] if p["kind"] in ("integer", "number"))
        parameter["value"] = moved(parameter)
    cooling = next(spec for spec in others if spec["cooldown_days"])
    cooling["cooldown_days"] = max(1, cooling["cooldown_days"] // 3)
    warming = next(spec for spec in others if not spec["cooldown_days"])
    warming["cooldown_days"] = 5
    limit = live.settings.get("advice_limit", 3)
    return specs, {**live.settings, "advice_limit": 2 if limit != 2 else 1}


def test_simulating_a_draft_predicts_exactly_what_publishing_and_reevaluate_produce(pack, client):
    post_histories(client, seed=21)
    before = current_advice()
    specs, settings = draft_of_changes(live_advice_counts())
    draft_replace(specs=specs, settings=settings)

    result = simulation.ruleset_simulate(days=365)
    assert result.events == Event.objects.count()
    assert result.changed_rules  # the draft matters

    ruleset_publish(comment="the simulated draft")
    call_command("reevaluate", stdout=io.StringIO(), stderr=io.StringIO())
    after = current_advice()
    assert after != before
    assert result.predicted == after
    assert sum(map(len, after.values())) == sum(r.draft for r in result.rules)


def tried_and_posted(client: GymClient, member: str, payload: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Try the event in the admin's try-it, then post it; returns both answers."""
    occurred_at = dt.datetime.fromisoformat(payload["occurred_at"])
    subject = str(Member.objects.get(gym=client.gym, external_id=member).pk)
    tried = simulation.rule_try(
        fact_type=payload["type"], data=payload["data"], occurred_at=occurred_at, subject=subject
    )
    return tried, client.send(payload, expect=201).json()


def as_advice(matches: list[Any], tried_as: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """Try-it's matches as the API shows advice: rule, severity, message, matched events."""
    external = dict(Event.objects.values_list("pk", "external_id"))
    return sorted(
        (m.rule_key, m.severity, m.message, tuple(tried_as if i == "try" else external[int(i)] for i in m.fact_ids))
        for m in matches
    )


def own_advice(body: dict[str, Any]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return sorted(
        (a["rule"]["key"], a["severity"], a["message"], tuple(a["matched_events"]))
        for a in body["advice"]
        if a["event"] == body["external_id"]
    )


def held_back_in_production(member: str, external_id: str) -> list[tuple[str, str]]:
    """What production's decision held back on the stored event, and why."""
    events = member_events(Member.objects.get(external_id=member))
    decisions = timeline_judge(facts=member_facts(events))
    index = next(n for n, event in enumerate(events) if event.external_id == external_id)
    return sorted((held.match.rule_key, held.reason) for held in decisions[index].held_back)


def candidates(member: str, seed: int) -> list[dict[str, Any]]:
    """Events to try: of every type, spread over the member's history (some late, some after it)."""
    rng = random.Random(seed)
    extra = member_history(rng, member, start=timezone.now() - dt.timedelta(days=100), events=16)
    for n, payload in enumerate(extra):
        payload["external_id"] = f"tried-{n}"
        at = dt.datetime.fromisoformat(payload["occurred_at"]) + dt.timedelta(minutes=17)  # never a tie
        payload["occurred_at"] = at.isoformat()
    return extra


@pytest.mark.parametrize("version", ["installed", "changed"])
def test_try_it_shows_what_posting_the_event_gives(pack, client, version):
    post_histories(client, seed=5)
    member = "m-5-0"
    if version == "changed":  # the same with another limit, cooldowns and thresholds live
        specs, settings = draft_of_changes(live_advice_counts())
        draft_replace(specs=specs, settings=settings)
        ruleset_publish(comment="changed")
        call_command("reevaluate", stdout=io.StringIO(), stderr=io.StringIO())
    tried_given = 0
    for payload in candidates(member, seed=5):
        tried, posted = tried_and_posted(client, member, payload)
        assert as_advice(tried.live, payload["external_id"]) == own_advice(posted), payload
        assert as_advice(tried.draft, payload["external_id"]) == own_advice(posted), payload  # the draft is live
        held = sorted((h.match.rule_key, h.reason) for h in tried.live_held)
        assert held == held_back_in_production(member, payload["external_id"]), payload
        tried_given += len(tried.live)
    assert tried_given  # the tries gave advice, not just nothing twice
