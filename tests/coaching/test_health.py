"""/healthz (docs/api.md): ok normally; degraded while events wait for an evaluation that failed."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from coaching.models import Advice, Event
from config.version import VERSION

from .conftest import ENGINE_DOWN, day, engine_break, pain, profile, run

pytestmark = pytest.mark.django_db


def health() -> tuple[int, dict[str, Any]]:
    response = Client().get("/healthz")
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


def reevaluate(*args: str) -> str:
    out = io.StringIO()
    call_command("reevaluate", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def current_advice(external_id: str) -> list[str]:
    advice = Advice.objects.filter(event__external_id=external_id, withdrawn_at__isnull=True)
    return sorted(advice.values_list("rule_key", flat=True))


def history(member: str, prefix: str) -> list[dict[str, Any]]:
    """A cleared member's run with pain 8 and a pain report after it."""
    return [
        profile(at=day(-1), member=member, external_id=f"{prefix}-profile", cleared_by_physician=True),
        run(at=day(0), member=member, external_id=f"{prefix}-run", pain_during=8),
        pain(at=day(0, hour=2), member=member, external_id=f"{prefix}-pain", pain=3),
    ]


def test_healthz_answers_ok_with_the_live_version(client, pack):
    client.history(*history("m-1", "a"))
    status, body = health()
    assert status == 200
    assert body == {"status": "ok", "database": "ok", "ruleset_version": body["ruleset_version"], "version": VERSION}
    assert isinstance(body["ruleset_version"], int) and body["ruleset_version"] >= 1


def test_failed_evaluation_makes_healthz_degraded_until_reevaluate_pending(client, other_client, pack, monkeypatch):
    cleared, painful_run, report = history("m-1", "outage")
    client.history(cleared)
    engine_break(monkeypatch)
    assert client.send(painful_run, expect=201).json()["advice"] == []
    client.send(report, expect=201)
    monkeypatch.undo()
    assert ENGINE_DOWN in Event.objects.get(external_id="outage-run").evaluation_error

    status, body = health()
    assert status == 503
    assert body["status"] == "degraded" and body["pending_evaluations"] == 2
    assert body["database"] == "ok"

    assert "Re-evaluated 2 events" in reevaluate("--pending")
    ok = {"status": "ok", "database": "ok", "ruleset_version": body["ruleset_version"], "version": VERSION}
    assert health() == (200, ok)

    # Another gym sent the same history while the engine worked: the same advice, each piece once.
    other_client.history(*history("m-1", "normal"))
    expected = current_advice("normal-run")
    assert expected, "a run with pain 8 gets advice"
    assert current_advice("outage-run") == expected
    assert current_advice("outage-pain") == current_advice("normal-pain")
    reevaluate("--pending")
    reevaluate()
    assert sorted(Advice.objects.filter(event__external_id="outage-run").values_list("rule_key", flat=True)) == expected


def test_healthz_and_the_openapi_document_show_the_one_product_version():
    assert Client().get("/healthz").json()["version"] == VERSION
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["info"]["version"] == VERSION
