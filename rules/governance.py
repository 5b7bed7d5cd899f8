"""Two clinicians before advice changes: requests to publish or roll back, and their approval.

In the admin, publishing the draft and rolling back to an earlier version are requests that
another clinician approves (``rules.conf`` ``PUBLISH_APPROVALS``: how many clinicians other than
the author; 0 publishes at once, for a single-clinician practice). A request freezes what its
approvers see: the rules and settings that would go live, the diff against the live version, the
summary and burden of a simulation of exactly those rules, the comment, and the reason given for a
draft flagged for its burden. An approval publishes what was frozen, never anything else: a draft
edited after the request, or another version gone live, makes the request void
(``rules.services.requests_void``). The author cannot approve their own request.

Operators' commands (``importpack --publish``, a first ``installpack``) call
``rules.services.ruleset_publish`` directly, as the operator's own act.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db import transaction
from django.utils import timezone

from rules import simulation
from rules.conf import rules_settings
from rules.models import Job, PublishApproval, PublishRequest, RulesetVersion
from rules.packs import RuleDiff, RulesetDiff, ruleset_diff
from rules.registry import registry
from rules.selectors import ruleset_draft_settings, ruleset_draft_specs, ruleset_fingerprint, version_live
from rules.services import (
    MSG_VOID_DRAFT_CHANGED,
    MSG_VOID_NEW_VERSION,
    ruleset_check,
    ruleset_publish,
    ruleset_rollback,
)
from rules.spec import settings_normalize

# What a clinician reads (tests reuse these).
MSG_NOTHING_TO_PUBLISH = "The draft equals the live version: there is nothing new to publish."
MSG_SIMULATION_STALE = (
    "The draft or the live version changed since this simulation: simulate the draft as it is now first."
)
MSG_REASON_NEEDED = "This draft is flagged for the burden it puts on {subjects}: say why it should go live anyway."
MSG_OWN_REQUEST = "You made this request: another clinician must approve it."
MSG_APPROVED_ALREADY = "You approved this request already: it waits for another clinician."
MSG_NOT_PENDING = "This request no longer waits for approval: it is {status}."
MSG_NOT_AUTHOR = "Only the clinician who made a request can withdraw it."
MSG_REPLACED = "A newer request replaced it."
MSG_ROLLBACK_TO_LIVE = "Version {number} is the live version already: there is nothing to roll back to."
MSG_APPROVALS_OFF = (
    "Sign-off by a second clinician is switched off for this practice: publishing and rolling back take effect at once."
)


class RequestRefused(Exception):
    """A request cannot be made, approved or withdrawn; the message says why, for the clinician."""


def approvals_needed() -> int:
    """How many clinicians other than its author approve a request (0: none, it goes live at once)."""
    return max(int(rules_settings.PUBLISH_APPROVALS), 0)


def diff_dump(diff: RulesetDiff) -> dict[str, Any]:
    """A diff as the request keeps it (``diff_load`` reads it back)."""
    return {"rules": [asdict(rule) for rule in diff.rules], "settings": [list(row) for row in diff.settings]}


def diff_load(data: dict[str, Any] | None) -> RulesetDiff:
    data = data or {}
    rules = [
        RuleDiff(key=r["key"], name=r["name"], action=r["action"], changes=[tuple(c) for c in r["changes"]])
        for r in data.get("rules", [])
    ]
    return RulesetDiff(rules=rules, settings=[tuple(row) for row in data.get("settings", [])])


def _live() -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    live = version_live()
    return (live.number, list(live.snapshot), dict(live.settings)) if live else (0, [], {})


def _replace_pending() -> None:
    PublishRequest.objects.filter(status=PublishRequest.Status.PENDING).update(
        status=PublishRequest.Status.VOID, void_reason=MSG_REPLACED, decided_at=timezone.now()
    )


@transaction.atomic
def publish_request_create(*, user: Any, comment: str, simulation_job: Job, reason: str = "") -> PublishRequest:
    """Ask for the draft as it is now to go live, with the simulation the clinician made of it
    (``simulation_job``: of this very draft against the live version). The draft is validated now;
    a draft flagged for its burden needs ``reason``. With no approvals needed it is published at
    once. Raises ``RequestRefused`` (or ``RuleValidationError`` for a draft that cannot go live)."""
    number, live_specs, live_settings = _live()
    specs, settings = ruleset_draft_specs(), settings_normalize(ruleset_draft_settings())
    diff = ruleset_diff(live_specs, specs, settings_before=live_settings or None, settings_after=settings)
    if diff.empty and number:
        raise RequestRefused(MSG_NOTHING_TO_PUBLISH)
    fingerprint = ruleset_fingerprint(specs, settings)
    result = simulation.simulation_result(simulation_job)
    if result is None or result.fingerprint != fingerprint or result.live_version != number:
        raise RequestRefused(MSG_SIMULATION_STALE)
    if result.burden is not None and result.burden.flagged and not reason.strip():
        raise RequestRefused(MSG_REASON_NEEDED.format(subjects=registry.subject()[1]))
    checked = ruleset_check(specs, settings=settings)
    _replace_pending()
    request = PublishRequest.objects.create(
        kind=PublishRequest.Kind.PUBLISH,
        live_version=number,
        fingerprint=fingerprint,
        specs=checked,
        settings=settings,
        comment=comment,
        reason=reason.strip(),
        diff=diff_dump(diff),
        simulation=result.summary(),
        burden=asdict(result.burden) if result.burden is not None else None,
        simulation_job=str(simulation_job.pk),
        approvals_needed=approvals_needed(),
        requested_by=user if getattr(user, "pk", None) else None,
    )
    if request.approvals_needed == 0:
        _go_live(request)
    return request


@transaction.atomic
def rollback_request_create(*, user: Any, version: int, comment: str = "") -> PublishRequest:
    """Ask for an earlier version to go live again (and the draft to equal it), frozen with its
    diff against the live version and, when the stored events are few enough to judge now, the
    summary and burden of a simulation of it. With no approvals needed it is rolled back at once."""
    number, live_specs, live_settings = _live()
    if version == number:
        raise RequestRefused(MSG_ROLLBACK_TO_LIVE.format(number=number))
    old = RulesetVersion.objects.get(number=version)
    diff = ruleset_diff(live_specs, old.snapshot, settings_before=live_settings or None, settings_after=old.settings)
    summary = burden = None
    job = ""
    if registry.fact_source() is not None and simulation.simulation_facts_since(30) <= simulation.BACKGROUND_ABOVE:
        result = simulation.simulation_run(
            simulation.simulation_prepare(days=30, draft_specs=old.snapshot, draft_settings=old.settings)
        )
        summary = result.summary()
        burden = asdict(result.burden) if result.burden is not None else None
        job = str(simulation.simulation_store(result, user=user).pk)
    _replace_pending()
    request = PublishRequest.objects.create(
        kind=PublishRequest.Kind.ROLLBACK,
        rollback_to=version,
        live_version=number,
        fingerprint=ruleset_fingerprint(old.snapshot, old.settings),
        specs=list(old.snapshot),
        settings=dict(old.settings),
        comment=comment or f"Rolled back to version {version}.",
        diff=diff_dump(diff),
        simulation=summary,
        burden=burden,
        simulation_job=job,
        approvals_needed=approvals_needed(),
        requested_by=user if getattr(user, "pk", None) else None,
    )
    if request.approvals_needed == 0:
        _go_live(request)
    return request


def _still_valid(request: PublishRequest) -> str:
    """Why the request no longer describes what it would do ("" when it still does)."""
    live = version_live()
    if (live.number if live else 0) != request.live_version:
        return MSG_VOID_NEW_VERSION.format(number=live.number if live else 0)
    if request.kind == PublishRequest.Kind.PUBLISH:
        if ruleset_fingerprint(ruleset_draft_specs(), ruleset_draft_settings()) != request.fingerprint:
            return MSG_VOID_DRAFT_CHANGED
    return ""


def _go_live(request: PublishRequest) -> RulesetVersion:
    """Publish what the request froze (marked published first: publishing voids what still waits)."""
    request.status = PublishRequest.Status.PUBLISHED
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_at"])
    origin = RulesetVersion.Origin.APPROVED
    author = request.requested_by
    if request.kind == PublishRequest.Kind.ROLLBACK:
        version = ruleset_rollback(version=request.rollback_to, user=author, comment=request.comment, origin=origin)
    else:
        version = ruleset_publish(
            user=author, comment=request.comment, specs=request.specs, settings=request.settings, origin=origin
        )
    request.version = version
    request.save(update_fields=["version"])
    return version


@transaction.atomic
def publish_request_approve(*, request: PublishRequest, user: Any, comment: str = "") -> RulesetVersion | None:
    """``user``'s approval of ``request``; the last approval it needs publishes what it froze (or
    rolls back) and returns the new version (None while it needs more). Raises ``RequestRefused``
    for the author, a second approval by the same clinician, or a request that no longer waits
    (one that no longer holds is made void, saying why)."""
    request = PublishRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != PublishRequest.Status.PENDING:
        raise RequestRefused(MSG_NOT_PENDING.format(status=request.get_status_display()))
    if request.requested_by_id is not None and request.requested_by_id == getattr(user, "pk", None):
        raise RequestRefused(MSG_OWN_REQUEST)
    if request.approvals.filter(approved_by=user).exists():
        raise RequestRefused(MSG_APPROVED_ALREADY)
    stale = _still_valid(request)
    if stale:
        request.status, request.void_reason, request.decided_at = PublishRequest.Status.VOID, stale, timezone.now()
        request.save(update_fields=["status", "void_reason", "decided_at"])
        raise RequestRefused(MSG_NOT_PENDING.format(status=f"void: {stale[:1].lower()}{stale[1:]}"))
    PublishApproval.objects.create(request=request, approved_by=user, comment=comment)
    if request.approvals.count() < max(request.approvals_needed, 1):
        return None
    return _go_live(request)


@transaction.atomic
def publish_request_withdraw(*, request: PublishRequest, user: Any) -> None:
    """The author takes back a request that still waits."""
    request = PublishRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != PublishRequest.Status.PENDING:
        raise RequestRefused(MSG_NOT_PENDING.format(status=request.get_status_display()))
    if request.requested_by_id != getattr(user, "pk", None):
        raise RequestRefused(MSG_NOT_AUTHOR)
    request.status, request.decided_at = PublishRequest.Status.WITHDRAWN, timezone.now()
    request.save(update_fields=["status", "decided_at"])


def requests_pending() -> list[PublishRequest]:
    """The requests waiting for approval, oldest first."""
    return list(
        PublishRequest.objects.filter(status=PublishRequest.Status.PENDING)
        .select_related("requested_by")
        .order_by("requested_at")
    )
