"""Every endpoint's example in the OpenAPI document is what the running product answers.

A gym's day, played through the API on the default rule pack: the answers are compared with the
examples the schema shows (coaching/api/examples.json), ids, moments, uuids and secrets by kind
only, since the database and the clock make their own. ``make examples`` writes the file anew
from this same play when the product's answers change on purpose.
"""

from __future__ import annotations

import json
import os
import re
import socket
from typing import Any

import pytest
from django.test import override_settings

from coaching.api.examples import EXAMPLES_PATH, operation_key
from coaching.services import gym_key_create

from .conftest import DOCS_RUN, GymClient

pytestmark = pytest.mark.django_db

HOOKS_HOST = "hooks.riverside-runners.example"
# Values the database, the clock or a random source make: compared by kind, not by value.
VOLATILE = {
    "id",
    "advice",  # a feedback's advice id (PostgreSQL's sequences move on across tests); a member's count too
    "uuid",
    "card",
    "created_at",
    "figures_as_of",
    "figures",  # as of now: they move with the clock
    "secret",
    "next_changed_since",
    "withdrawn_at",
    "outcome_at",
    "key",
    "url",
    "next",
    "previous",
    "version",
}
MOMENT = re.compile(r"^\d{4}-\d\d-\d\dT")

BATCH = [
    {
        "external_id": "app-5521",
        "member": "m-2077",
        "type": "pain_report",
        "occurred_at": "2026-11-21T19:05:00+00:00",
        "data": {"pain": 4, "location": "lower_back", "radiates_to_leg": True, "numbness": True},
    },
    {
        "external_id": "app-5522",
        "member": "m-2077",
        "type": "cross_training",
        "occurred_at": "2026-11-22T18:00:00+00:00",
        "data": {"activity": "swimming", "duration_min": 45},
    },
]


class Play:
    """Sends requests and keeps each answer as an example of its operation."""

    def __init__(self, client: GymClient) -> None:
        self.client = client
        self.examples: dict[str, Any] = {}

    def __call__(
        self, name: str, method: str, template: str, path: str, body: Any = None, *, expect: int, client: Any = None
    ) -> Any:
        call = getattr(client or self.client, method.lower())
        response = call(path, body, format="json") if body is not None else call(path)
        assert response.status_code == expect, (name, response.status_code, response.content)
        answer = response.json() if response.content else None
        operation = self.examples.setdefault(operation_key(method, template), {"requests": {}, "responses": {}})
        if body is not None:
            operation["requests"][name] = body
        if answer is not None:
            operation["responses"].setdefault(str(expect), {})[name] = answer
        query = path.partition("?")[2]
        if query:
            operation.setdefault("queries", {})[name] = query
        return answer


def public_dns(real):
    """Name resolution as on the internet for the example's receiver (the sandbox has no DNS)."""

    def resolve(host, *args, **kwargs):
        if host == HOOKS_HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443))]
        return real(host, *args, **kwargs)

    return resolve


def a_gyms_day(client: GymClient, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(socket, "getaddrinfo", public_dns(socket.getaddrinfo))
    play = Play(client)
    events, members, advice = "/api/v1/events/", "/api/v1/members/", "/api/v1/advice/"
    member = "/api/v1/members/{member}/"

    created = play("A run that hurt", "POST", events, events, DOCS_RUN, expect=201)
    play("The same event again", "POST", events, events, DOCS_RUN, expect=200)
    changed = {**DOCS_RUN, "data": {**DOCS_RUN["data"], "pain_during": 3}}
    play("The same id with other content", "POST", events, events, changed, expect=409)
    bad = {**DOCS_RUN, "external_id": "garmin-88232", "data": {**DOCS_RUN["data"], "pain_during": 11, "pace": "slow"}}
    play("An invalid event", "POST", events, events, bad, expect=400)
    play("An array of events", "POST", events, events, BATCH, expect=200)

    play("One member's runs", "GET", events, events + "?member=m-1042&type=run", expect=200)
    play("Current advice", "GET", advice, advice + "?severity=refer", expect=200)
    play("Every change since a moment", "GET", advice, advice + "?changed_since=2026-11-01", expect=200)
    play("Members under referral", "GET", members, members + "?under_referral=true", expect=200)
    play("A member", "GET", member, members + "m-1042/", expect=200)
    play("A member's advice", "GET", member + "advice/", members + "m-1042/advice/", expect=200)
    play("An unknown member", "GET", member, members + "m-9999/", expect=404)

    given = created["advice"][0]
    feedback = "/api/v1/advice/{advice_id}/feedback/"
    play(
        "Advice overridden",
        "POST",
        feedback,
        f"/api/v1/advice/{given['id']}/feedback/",
        {"outcome": "overridden", "override_reasons": ["already-addressed"], "comment": "Seen by our physio today."},
        expect=201,
    )

    hooks, hook = "/api/v1/webhooks/", "/api/v1/webhooks/{endpoint_id}/"
    endpoint = play(
        "An endpoint",
        "POST",
        hooks,
        hooks,
        {"url": f"https://{HOOKS_HOST}/advice", "events": ["advice.created", "advice.withdrawn", "member.erased"]},
        expect=201,
    )
    play("The gym's endpoints", "GET", hooks, hooks, expect=200)
    play("One endpoint", "GET", hook, f"{hooks}{endpoint['id']}/", expect=200)
    play("A new secret", "POST", hook + "secret/", f"{hooks}{endpoint['id']}/secret/", {}, expect=200)
    play("An endpoint removed", "DELETE", hook, f"{hooks}{endpoint['id']}/", expect=204)

    services = "/cds-services"
    play("Discovery", "GET", services, services, expect=200)
    request = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"patientId": "m-1042", "userId": "Practitioner/physio-7"},
    }
    advice_service = f"{services}/running-back-advice"
    service = play("Cards for a member", "POST", advice_service, advice_service, request, expect=200)
    play(
        "A card accepted",
        "POST",
        f"{services}/running-back-advice/feedback",
        f"{services}/running-back-advice/feedback",
        {
            "feedback": [
                {"card": service["cards"][0]["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-21T09:12:00Z"}
            ]
        },
        expect=200,
    )
    _key, secret = gym_key_create(gym=client.gym, name="front-desk app", scopes=["events:write", "advice:read"])
    front_desk = GymClient(secret, client.gym)
    play("A key without the scope", "DELETE", member, members + "m-2077/", expect=403, client=front_desk)
    play("A member erased", "DELETE", member, members + "m-2077/", expect=204)
    play("Healthy", "GET", "/healthz", "/healthz", expect=200)
    return play.examples


def same(example: Any, answer: Any, key: str = "") -> bool:
    if key in VOLATILE or (isinstance(example, str) and MOMENT.match(example)):
        return type(example) is type(answer) or example is None or answer is None
    if isinstance(example, dict):
        return (
            isinstance(answer, dict)
            and example.keys() == answer.keys()
            and all(same(v, answer[k], k) for k, v in example.items())
        )
    if isinstance(example, list):
        return isinstance(answer, list) and len(example) == len(answer) and all(map(same, example, answer))
    return example == answer


@override_settings(WEBHOOKS_ALLOW_HTTP=False)
def test_every_endpoints_example_is_what_the_product_answers(client, pack, monkeypatch):
    played = a_gyms_day(client, monkeypatch)
    if os.environ.get("EXAMPLES_WRITE"):
        kept = json.loads(EXAMPLES_PATH.read_text()) if EXAMPLES_PATH.exists() else {}
        # An operation whose answers did not change keeps its stored ids and moments (no noise).
        written = {op: kept[op] if op in kept and same(kept[op], new) else new for op, new in played.items()}
        EXAMPLES_PATH.write_text(json.dumps(written, indent=2, ensure_ascii=False) + "\n")
    stored = json.loads(EXAMPLES_PATH.read_text())
    assert stored.keys() == played.keys()
    for operation, examples in stored.items():
        assert same(examples, played[operation]), f"{operation}: run `make examples` and review the change"


def test_the_schema_shows_an_example_for_every_operation(client):
    schema = client.get("/api/schema/?format=json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            shown = [
                example
                for response in operation["responses"].values()
                for content in response.get("content", {}).values()
                for example in content.get("examples", {}).values()
            ]
            bodiless = any(code.startswith("2") and "content" not in r for code, r in operation["responses"].items())
            assert shown or bodiless, f"{method.upper()} {path} shows no example"
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                assert body.get("examples"), f"{method.upper()} {path} shows no request example"
