"""Writes of the rules app: save rules to the draft, publish, roll back, discard the draft.

Evaluation lives in ``rules.evaluation``. Publishing validates the whole ruleset, checks it
against the engine's limits and evaluates it once on sample facts of every type, so a
version that would fail in production is refused before it goes live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from rules.internal.sample import ruleset_smoke_test
from rules.models import (
    PublishRequest,
    Rule,
    RuleChange,
    RuleCondition,
    RuleParameter,
    RulesetSettings,
    RulesetVersion,
    RuleStep,
)
from rules.registry import Registry, registry
from rules.selectors import rule_spec, ruleset_draft_settings, ruleset_draft_specs, version_live
from rules.spec import (
    MSG_SAFETY_DELETE,
    RULE_FIELDS,
    RuleValidationError,
    review_by_date,
    ruleset_validate,
    safety_problems,
    settings_normalize,
    settings_validate,
    spec_normalize,
    spec_validate,
    value_text,
)

MSG_CONFLICT = (
    "Someone else saved this rule while you were editing it (your copy: revision {mine}, saved: "
    "revision {theirs}). Reload the page to see their change, then make yours again."
)


MSG_KEY_TAKEN = "Another rule already uses this key."
MSG_KEY_FIXED = (
    "A saved rule keeps its key: its advice and its change log refer to it. To use another key, make a new rule."
)


class RuleConflictError(Exception):
    """A rule was saved by someone else since the editor loaded it."""


MSG_VOID_DRAFT_CHANGED = "The draft changed after it was made: a request for the draft as it is now is needed."
MSG_VOID_NEW_VERSION = (
    "Version {number} went live after it was made, so its changes no longer describe what it would do."
)


def requests_void(*, reason: str, kinds: tuple[str, ...] = tuple(PublishRequest.Kind)) -> int:
    """Make the pending requests of ``kinds`` void, saying why (what they froze no longer holds);
    returns how many."""
    return PublishRequest.objects.filter(status=PublishRequest.Status.PENDING, kind__in=kinds).update(
        status=PublishRequest.Status.VOID, void_reason=reason, decided_at=timezone.now()
    )


def _draft_changed() -> None:
    """A write changed the draft: a request to publish it asked for something else."""
    requests_void(reason=MSG_VOID_DRAFT_CHANGED, kinds=(PublishRequest.Kind.PUBLISH,))


# --------------------------------------------------------------------------------------
# Authoring
# --------------------------------------------------------------------------------------
@transaction.atomic
def rule_save(
    *,
    spec: Mapping[str, Any],
    user: Any = None,
    rule: Rule | None = None,
    expected_revision: int | None = None,
    origin: str = RuleChange.Origin.EDIT,
    origin_version: int | None = None,
) -> Rule:
    """Validate a rule spec and write it to the draft (create or replace), with an audit record
    saying where the change came from (``origin``: a hand edit unless a whole-draft operation
    says otherwise; ``origin_version``: the version a roll back or discard went back to).

    Raises ``RuleValidationError`` (field path -> messages) and nothing is written, or
    ``RuleConflictError`` when ``expected_revision`` is stale.
    """
    errors = spec_validate(spec) or safety_problems(spec)
    if rule is None:
        rule = Rule.objects.select_for_update().filter(key=spec.get("key")).first() or Rule()
    elif rule.pk:
        current = Rule.objects.select_for_update().filter(pk=rule.pk).values_list("revision", flat=True).first()
        if expected_revision is not None and current is not None and current != expected_revision:
            raise RuleConflictError(MSG_CONFLICT.format(mine=expected_revision, theirs=current))
    if rule.pk and spec.get("key") != rule.key:
        errors.setdefault("key", []).append(MSG_KEY_FIXED)
    elif Rule.objects.filter(key=spec.get("key")).exclude(pk=rule.pk).exists():
        errors.setdefault("key", []).append(MSG_KEY_TAKEN)
    if errors:
        raise RuleValidationError(errors)
    normalized = spec_normalize(spec)
    before = rule_spec(rule) if rule.pk else None
    for name in RULE_FIELDS:
        setattr(rule, name, normalized[name])
    rule.review_by = review_by_date(normalized["review_by"])
    rule.updated_by = user if getattr(user, "pk", None) else None
    rule.revision = (rule.revision or 0) + 1 if before is not None else 1
    rule.save()
    rule.steps.all().delete()
    rule.conditions.all().delete()
    rule.parameters.all().delete()
    RuleStep.objects.bulk_create(
        RuleStep(rule=rule, position=index, fact_type=step["fact_type"])
        for index, step in enumerate(normalized["steps"], start=1)
    )
    RuleCondition.objects.bulk_create(
        RuleCondition(
            rule=rule,
            position=index,
            step=c["step"],
            group=c["group"],
            field=c["field"],
            operator=c["operator"],
            negate=c["negate"],
            value=value_text(c["value"]),
            parameter=c["parameter"] or "",
        )
        for index, c in enumerate(normalized["conditions"])
    )
    RuleParameter.objects.bulk_create(
        RuleParameter(
            rule=rule, name=p["name"], label=p["label"], kind=p["kind"], value=value_text(p["value"]), unit=p["unit"]
        )
        for p in normalized["parameters"]
    )
    after = rule_spec(Rule.objects.prefetch_related("steps", "conditions", "parameters").get(pk=rule.pk))
    if before != after:
        RuleChange.objects.create(
            rule_key=rule.key,
            action="changed" if before else "created",
            before=before,
            after=after,
            changed_by=rule.updated_by,
            origin=origin,
            origin_version=origin_version,
        )
        _draft_changed()
    return rule


@transaction.atomic
def rule_delete(
    *, rule: Rule, user: Any = None, origin: str = RuleChange.Origin.EDIT, origin_version: int | None = None
) -> None:
    """Delete a rule from the draft, with an audit record; a safety-critical one is refused
    (``RuleValidationError``)."""
    reference = registry.safety_critical().get(rule.key)
    if reference is not None:
        raise RuleValidationError({"key": [MSG_SAFETY_DELETE.format(name=reference["name"])]})
    before = rule_spec(rule)
    RuleChange.objects.create(
        rule_key=rule.key,
        action="deleted",
        before=before,
        after=None,
        changed_by=user if getattr(user, "pk", None) else None,
        origin=origin,
        origin_version=origin_version,
    )
    rule.delete()
    _draft_changed()


def rule_set_enabled(*, rule: Rule, enabled: bool, user: Any = None) -> Rule:
    spec = rule_spec(rule)
    spec["enabled"] = enabled
    return rule_save(spec=spec, rule=rule, user=user)


# --------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------
MSG_SMOKE_TEST = (
    "This ruleset failed a test evaluation on sample events ({error}), so it was not published. "
    "Nothing changed for anyone."
)
MSG_SMOKE_TEST_RULE = "This rule fails the test evaluation on its own ({error}); change it or switch it off."


def ruleset_check(
    specs: Sequence[Mapping[str, Any]],
    *,
    settings: Mapping[str, Any] | None = None,
    smoke_test: bool = True,
    safety: bool = True,
    catalog: Registry = registry,
) -> list[dict[str, Any]]:
    """Validate, normalize and test a whole ruleset against ``catalog``; raise RuleValidationError
    if anything is wrong.

    Validation is ``rules.spec.ruleset_validate`` (``safety``: see there). With ``smoke_test`` the
    compiled ruleset is loaded into the engine and evaluated on sample facts of every type, so a
    version that would fail in production is never published.
    """
    normalized = ruleset_validate(specs, settings=settings, safety=safety, catalog=catalog)
    if smoke_test:
        try:
            ruleset_smoke_test(normalized, settings=settings_normalize(settings), catalog=catalog)
        except Exception as exc:  # any failure at all keeps the version from going live
            errors = {"ruleset: test evaluation": [MSG_SMOKE_TEST.format(error=_error_text(exc))]}
            errors.update(_smoke_test_culprits(normalized, settings, catalog))
            raise RuleValidationError(errors) from exc
    return normalized


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _smoke_test_culprits(
    specs: Sequence[Mapping[str, Any]], settings: Mapping[str, Any] | None, catalog: Registry
) -> dict[str, list[str]]:
    """The enabled rules that fail the test evaluation on their own (none when only the
    combination fails), so that the refusal names the rule to fix."""
    culprits: dict[str, list[str]] = {}
    for spec in specs:
        if not spec["enabled"]:
            continue
        try:
            ruleset_smoke_test([spec], settings=settings_normalize(settings), catalog=catalog)
        except Exception as exc:
            culprits[f"{spec['key']}: test evaluation"] = [MSG_SMOKE_TEST_RULE.format(error=_error_text(exc))]
    return culprits


def ruleset_publish(
    *,
    user: Any = None,
    comment: str = "",
    specs: Sequence[Mapping[str, Any]] | None = None,
    settings: Mapping[str, Any] | None = None,
    rolled_back_from: int | None = None,
    origin: str = RulesetVersion.Origin.DIRECT,
) -> RulesetVersion:
    """Freeze the draft (or ``specs`` and ``settings``) into a new immutable version, live at once
    (``origin``: how it went live). The requests still waiting for approval become void: what
    they froze was against the version before. In the admin, publishing goes through a request
    another clinician approves (``rules.governance``), which calls this."""
    settings = settings_normalize(ruleset_draft_settings() if settings is None else settings)
    snapshot = ruleset_check(ruleset_draft_specs() if specs is None else specs, settings=settings)
    for _ in range(5):
        try:
            with transaction.atomic():
                number = (RulesetVersion.objects.aggregate(top=Max("number"))["top"] or 0) + 1
                version = RulesetVersion.objects.create(
                    number=number,
                    snapshot=snapshot,
                    settings=settings,
                    comment=comment,
                    rolled_back_from=rolled_back_from,
                    origin=origin,
                    created_by=user if getattr(user, "pk", None) else None,
                )
                requests_void(reason=MSG_VOID_NEW_VERSION.format(number=number))
                return version
        except IntegrityError:  # two publishes raced for the same number: take the next one
            continue
    raise RuntimeError("Could not allocate a version number; try publishing again.")


@transaction.atomic
def ruleset_rollback(
    *, version: int, user: Any = None, comment: str = "", origin: str = RulesetVersion.Origin.DIRECT
) -> RulesetVersion:
    """Publish an earlier version again as a new version, and make the draft equal to it."""
    old = RulesetVersion.objects.get(number=version)
    draft_replace(
        specs=old.snapshot,
        settings=old.settings,
        user=user,
        origin=RuleChange.Origin.ROLLBACK,
        origin_version=version,
    )
    return ruleset_publish(
        user=user,
        specs=old.snapshot,
        settings=old.settings,
        rolled_back_from=version,
        comment=comment or f"Rolled back to version {version}.",
        origin=origin,
    )


@transaction.atomic
def ruleset_settings_save(
    *,
    settings: Mapping[str, Any],
    user: Any = None,
    origin: str = RuleChange.Origin.EDIT,
    origin_version: int | None = None,
) -> RulesetSettings:
    """Write the draft's ruleset-wide settings, recorded in the change log when they change;
    raises RuleValidationError when one is out of bounds."""
    errors = settings_validate(settings)
    if errors:
        raise RuleValidationError(errors)
    before = ruleset_draft_settings()
    row = RulesetSettings.objects.select_for_update().order_by("pk").first() or RulesetSettings()
    after = settings_normalize(settings)
    for name, value in after.items():
        setattr(row, name, value)
    row.updated_by = user if getattr(user, "pk", None) else None
    row.save()
    if before != after:
        RuleChange.objects.create(
            rule_key=RuleChange.SETTINGS_KEY,
            action="changed",
            before=before,
            after=after,
            changed_by=row.updated_by,
            origin=origin,
            origin_version=origin_version,
        )
        _draft_changed()
    return row


@transaction.atomic
def draft_replace(
    *,
    specs: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
    user: Any = None,
    origin: str = RuleChange.Origin.EDIT,
    origin_version: int | None = None,
) -> None:
    """Make the draft exactly ``specs`` (and ``settings``): rules are created, changed or deleted
    to match, each change recorded with ``origin`` (and ``origin_version``). Rules already as
    ``specs`` has them are left alone (their revision too, so nobody's open editor goes stale)."""
    keys = {spec["key"] for spec in specs}
    why = {"user": user, "origin": origin, "origin_version": origin_version}
    current = {}
    for rule in Rule.objects.prefetch_related("steps", "conditions", "parameters"):
        if rule.key in keys:
            current[rule.key] = _comparable(rule_spec(rule))
        else:
            rule_delete(rule=rule, **why)
    for spec in specs:
        if current.get(spec["key"]) != _comparable(spec):
            rule_save(spec=spec, **why)
    if settings is not None:
        ruleset_settings_save(settings=settings_normalize(settings), **why)


def _comparable(spec: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return spec_normalize(spec)
    except Exception:  # an invalid spec never equals a stored one: rule_save will say why
        return {"invalid": dict(spec)}


MSG_NOTHING_TO_DISCARD = "The draft equals the live version: there is nothing to discard."
MSG_NOTHING_LIVE = "Nothing has been published yet, so there is no live version to go back to."


class DraftDiscardError(Exception):
    """The draft cannot be discarded (nothing is live)."""


@transaction.atomic
def draft_discard(*, user: Any = None) -> RulesetVersion:
    """Make the draft equal to the live version again (its rules and its settings), every change
    recorded as a discard by ``user``; returns the live version. Raises ``DraftDiscardError``
    when nothing is live."""
    live = version_live()
    if live is None:
        raise DraftDiscardError(MSG_NOTHING_LIVE)
    draft_replace(
        specs=live.snapshot,
        settings=live.settings,
        user=user,
        origin=RuleChange.Origin.DISCARD,
        origin_version=live.number,
    )
    return live
