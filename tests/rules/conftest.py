"""Builders for the rules suite: specs of the test domain (see testdomain/apps.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rules import evaluation, services
from rules.evaluation import Fact
from rules.registry import BOOLEAN, NUMBER, FieldSpec, Registry
from rules.spec import condition

T0 = dt.datetime(2026, 1, 10, 8, 0, tzinfo=dt.UTC)


def make_spec(key: str = "hot", conditions: list[dict] | None = None, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "key": key,
        "name": key.replace("-", " ").title(),
        "description": "",
        "category": "safety",
        "severity": "urgent",
        "message": "Temperature {temperature}",
        "source_label": "Manual",
        "cooldown_days": 0,
        "enabled": True,
        "pattern": "single",
        "count": None,
        "window_hours": None,
        "steps": [{"fact_type": "reading"}],
        "conditions": conditions
        if conditions is not None
        else [{"step": 1, "group": 1, "field": "temperature", "operator": "gt", "value": 30}],
        "parameters": [],
    }
    spec.update(overrides)
    return spec


cond = condition  # shorter in the tables of cases


_ids = iter(range(1, 10**9))


def reading(at: dt.datetime = T0, group: str = "g1", type: str = "reading", **data: Any) -> Fact:
    return Fact(id=str(next(_ids)), type=type, occurred_at=at, data=data, group=group)


def fired(fact: Fact, history: list[Fact] | tuple = ()) -> list[str]:
    return [m.rule_key for m in evaluation.facts_evaluate(fact=fact, history=history).matches]


def boiler_catalog() -> Registry:
    """A catalog other than the registry's: boilers, whose readings are pressures."""
    catalog = Registry()
    catalog.register_fact_type(
        "pressure",
        "Pressure",
        [FieldSpec("bar", "Pressure", NUMBER, unit="bar", minimum=0, maximum=10), FieldSpec("leak", "Leak", BOOLEAN)],
    )
    catalog.register_categories([("safety", "Safety")])
    catalog.register_severities([("critical", "Critical"), ("note", "Note")])
    catalog.register_subject("boiler", "boilers")
    return catalog


def boiler_specs() -> list[dict[str, Any]]:
    """A leak refers the boiler; a high pressure is a note (held back under referral)."""
    steps = [{"fact_type": "pressure"}]
    return [
        make_spec("leak", [cond("leak", "eq", True)], steps=steps, severity="critical", refers=True, message="A leak"),
        make_spec("high", [cond("bar", "gt", 3)], steps=steps, severity="note", message="{bar} bar"),
    ]


@pytest.fixture(autouse=True)
def fresh_engine():
    evaluation.engine_reset()
    yield
    evaluation.engine_reset()


@pytest.fixture
def publish(db):
    """Save the given specs as the draft and publish them; returns the version."""

    def _publish(*specs: dict[str, Any]):
        for spec in specs:
            services.rule_save(spec=spec)
        return services.ruleset_publish(comment="test")

    return _publish


@pytest.fixture
def no_sign_off(settings):
    """A single-clinician practice: publishing in the admin takes effect at once."""
    settings.RULES_ENGINE = {**settings.RULES_ENGINE, "PUBLISH_APPROVALS": 0}
