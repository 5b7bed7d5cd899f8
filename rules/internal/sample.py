"""A test evaluation before publishing: the compiled ruleset judged on sample facts of every type.

Validation catches what it knows of; this catches the rest (an engine limit nobody wrote
down, a message that fails to render), so a version that would fail in production is
refused at publish time instead of switching advice off for everyone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from rules.evaluation import Evaluator, Fact
from rules.registry import BOOLEAN, DATE, INTEGER, NUMBER, FieldSpec, Registry, registry
from rules.spec import COUNT_MAX

SAMPLE_START = dt.datetime(2020, 1, 6, 7, 0, tzinfo=dt.UTC)
VARIANTS = 3


def _sample_value(field: FieldSpec, variant: int) -> Any:
    if field.kind in (NUMBER, INTEGER):
        low = field.minimum if field.minimum is not None else 0
        high = field.maximum if field.maximum is not None else 1000
        value = (low, high, (low + high) / 2)[variant % 3]
        return int(value) if field.kind == INTEGER else value
    if field.kind == BOOLEAN:
        return variant % 2 == 0
    if field.kind == DATE:
        return (SAMPLE_START.date() - dt.timedelta(days=variant)).isoformat()
    return field.choices[variant % len(field.choices)] if field.choices else f"sample {variant}"


def sample_facts(catalog: Registry) -> list[Fact]:
    """Facts of every type in a few variants (lowest, highest, middle values), repeated
    closely in time so that every pattern can chain them, in time order."""
    facts = []
    at = SAMPLE_START
    for round_number in range(COUNT_MAX + 1):
        for fact_type in catalog.fact_types():
            for variant in range(VARIANTS if round_number == 0 else 1):
                data = {name: _sample_value(field, variant + round_number) for name, field in fact_type.fields.items()}
                facts.append(Fact(id=f"sample-{len(facts)}", type=fact_type.name, occurred_at=at, data=data))
                at += dt.timedelta(minutes=1)
    return facts


def ruleset_smoke_test(
    specs: Sequence[Mapping[str, Any]], *, settings: Mapping[str, Any], catalog: Registry = registry
) -> None:
    """Load ``specs`` (validated against ``catalog``) into the engine and judge sample facts of
    ``catalog``'s types with them; raises on any failure."""
    with Evaluator(specs=specs, settings=settings, catalog=catalog, checked=True) as evaluator:
        for decision in evaluator.judge(sample_facts(catalog)):
            for match in decision.given:
                _ = match.message, match.summary  # rendering must work too
