"""Reads of the rules app: rule specs, the draft and the published versions."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.db import connection
from django.db.models import DateTimeField, ExpressionWrapper, F, QuerySet, Subquery
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from rules.models import Rule, RuleChange, RulesetSettings, RulesetVersion
from rules.spec import (
    DISPLAY_DEFAULT_DAYS,
    LIST_OPERATORS,
    REVIEW_AFTER,
    RULE_FIELDS,
    review_due,
    settings_normalize,
    spec_normalize,
)


def rule_spec(rule: Rule) -> dict[str, Any]:
    """The rule's rows as a spec (see rules.spec), values as the clinician typed them."""
    conditions = []
    for condition in rule.conditions.all():
        value: Any = condition.value or None
        if value is not None and condition.operator in LIST_OPERATORS:
            value = [part.strip() for part in value.split(",") if part.strip()]
        conditions.append(
            {
                "step": condition.step,
                "group": condition.group,
                "field": condition.field,
                "operator": condition.operator,
                "value": value,
                "parameter": condition.parameter or None,
                "negate": condition.negate,
            }
        )
    scalars = {name: getattr(rule, name) for name in RULE_FIELDS}
    scalars["review_by"] = rule.review_by.isoformat() if isinstance(rule.review_by, dt.date) else rule.review_by
    return {
        **scalars,
        "steps": [{"fact_type": step.fact_type} for step in rule.steps.all()],
        "conditions": conditions,
        "parameters": [
            {"name": p.name, "label": p.label, "kind": p.kind, "value": p.value, "unit": p.unit}
            for p in rule.parameters.all()
        ],
    }


def rule_key_taken(key: str) -> bool:
    """Whether a rule of the draft has ``key``, or had it (its advice and change log still name it)."""
    return Rule.objects.filter(key=key).exists() or RuleChange.objects.filter(rule_key=key).exists()


def rule_review_due(rule: Rule) -> dt.date:
    """The day ``rule`` is due for review: its own review date, else a year after it last changed."""
    return review_due(rule.review_by, timezone.localdate(rule.updated_at))


def rules_review_due_expression() -> Any:
    """``rule_review_due`` as an expression, to sort and filter the rules by it in the database."""
    return Coalesce(
        "review_by", TruncDate(ExpressionWrapper(F("updated_at") + REVIEW_AFTER, output_field=DateTimeField()))
    )


def rules_past_review(*, today: dt.date | None = None) -> list[Rule]:
    """The draft's rules whose review date has passed, longest overdue first."""
    today = today or timezone.localdate()
    rules = Rule.objects.annotate(review_due=rules_review_due_expression()).filter(review_due__lt=today)
    return list(rules.order_by("review_due", "name"))


def rules_with_children() -> QuerySet[Rule]:
    return Rule.objects.prefetch_related("steps", "conditions", "parameters")


def ruleset_draft_specs() -> list[dict[str, Any]]:
    """Every rule of the draft (disabled ones included), by key."""
    return [rule_spec(rule) for rule in rules_with_children().order_by("key")]


def ruleset_draft_settings() -> dict[str, Any]:
    """The draft's ruleset-wide settings (defaults until a clinician saves them)."""
    row = RulesetSettings.objects.order_by("pk").first()
    return settings_normalize({name: getattr(row, name) for name in settings_normalize({})} if row else {})


def ruleset_fingerprint(specs: Any, settings: Any) -> str:
    """A digest of a ruleset (its rules as they judge and read, and its settings): equal for equal
    rulesets, whatever order or spelling their values were typed in."""
    rules = sorted((_normalized(spec) for spec in specs), key=lambda spec: str(spec.get("key")))
    text = json.dumps({"rules": rules, "settings": settings_normalize(settings)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _normalized(spec: Any) -> dict[str, Any]:
    try:
        return spec_normalize(spec)
    except Exception:  # an old snapshot that no longer validates: as it is
        return dict(spec)


def ruleset_draft_fingerprint() -> str:
    """``ruleset_fingerprint`` of the draft as it is now."""
    return ruleset_fingerprint(ruleset_draft_specs(), ruleset_draft_settings())


def version_live() -> RulesetVersion | None:
    return RulesetVersion.objects.order_by("-number").first()


def display_days_live() -> dict[str, int]:
    """Rule key -> how many days its advice stays worth showing after its fact (0: until it is
    withdrawn), as the live version says; a rule it does not hold: not listed."""
    live = version_live()
    return {
        spec["key"]: int(spec.get("display_days", DISPLAY_DEFAULT_DAYS)) for spec in (live.snapshot if live else [])
    }


def version_live_number_expression() -> Subquery:
    """The live version's number as an expression, to ask for it in another query's round trip
    (NULL: nothing published)."""
    return Subquery(RulesetVersion.objects.order_by("-number").values("number")[:1])


def version_live_number() -> int:
    """The live version's number (0: nothing published). Asked before every evaluation, so it is
    one plain query, without the ORM's own work."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(number) FROM {RulesetVersion._meta.db_table}")  # noqa: S608 (no user input)
        row = cursor.fetchone()
    return (row[0] if row else None) or 0


def rule_changes(rule_key: str) -> QuerySet[RuleChange]:
    """The change log of one rule, newest first."""
    return RuleChange.objects.filter(rule_key=rule_key).select_related("changed_by")


def version_changed_fact_types(version: RulesetVersion) -> set[str]:
    """The fact types whose judging ``version`` changed against the version before it: those of
    every rule it added, removed or changed in what it matches or gives (a rule's steps before
    and after; its texts do not count: advice that still holds is kept as it was given), or every
    type when the ruleset's own settings changed (they weigh on every fact)."""
    from rules.registry import registry

    previous = RulesetVersion.objects.filter(number__lt=version.number).order_by("-number").first()
    if previous is None or settings_normalize(previous.settings) != settings_normalize(version.settings):
        return {fact_type.name for fact_type in registry.fact_types()}
    before = {spec["key"]: _judging(spec) for spec in previous.snapshot}
    after = {spec["key"]: _judging(spec) for spec in version.snapshot}
    changed: set[str] = set()
    for key in before.keys() | after.keys():
        if before.get(key) != after.get(key):
            for spec in (before.get(key), after.get(key)):
                changed |= {step["fact_type"] for step in (spec or {}).get("steps") or []}
    return changed


# What does not change how a rule judges: its texts and its evidence.
_TEXTS = ("name", "description", "message", "summary", "source_label", "evidence_level", "review_by")


def _judging(spec: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in spec.items() if name not in _TEXTS}
