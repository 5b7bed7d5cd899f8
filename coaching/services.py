"""Writes of the coaching domain: gyms and keys, events (through the pipeline of
``coaching.ingest``), re-evaluation, clearance, erasure, clinicians and the rule pack."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from rules.packs import PackInstall, pack_install

from . import webhooks
from .catalog import PROFILE
from .cds import Feedback
from .ingest import IngestResult, events_ingest, members_rejudge
from .keys import ALL_SCOPES, key_new
from .logs import log_context
from .models import Advice, AdviceFeedback, Event, Gym, GymKey, Member, RateCounter
from .rulepack import LATEST, PACK_FILES, rulepack
from .validation import CleanEvent, Errors, event_validate

logger = logging.getLogger(__name__)

CONFLICT_MESSAGE = "An event with this external_id was already received with different content; nothing was changed."
CLINICIANS_GROUP = "Clinicians"


# -- gyms and keys -------------------------------------------------------------------------
def gym_create(*, name: str) -> tuple[Gym, str]:
    """Create a gym with one key of every scope; returns the gym with the key, shown only now."""
    with transaction.atomic():
        gym = Gym.objects.create(name=name)
        _key, secret = gym_key_create(gym=gym, name="default", scopes=list(ALL_SCOPES))
    return gym, secret


def gym_key_create(*, gym: Gym, name: str, scopes: list[str]) -> tuple[GymKey, str]:
    """A new key of ``gym`` that may do ``scopes``; returns it with the key, shown only now."""
    secret, digest, prefix = key_new()
    key = GymKey.objects.create(
        gym=gym, name=name[:100] or "default", key_hash=digest, key_prefix=prefix, scopes=scopes
    )
    return key, secret


def gym_key_name_in_use(*, gym: Gym, name: str) -> bool:
    """Whether one of the gym's working keys (not revoked, not replaced) has this name: keys are
    rotated and revoked by name, so a second one of the same name would go with the first."""
    return GymKey.objects.filter(gym=gym, name=name, revoked_at__isnull=True, expires_at__isnull=True).exists()


def gym_key_rotate(*, gym: Gym, name: str = "default", grace: timedelta = timedelta(0)) -> str:
    """A new key in place of the gym's keys named ``name`` (same scopes; every scope when there is
    none): the old ones keep working for ``grace``, then stop (at once without a grace)."""
    now = timezone.now()
    with transaction.atomic():
        old = list(GymKey.objects.select_for_update().filter(gym=gym, name=name, revoked_at__isnull=True))
        scopes = old[0].scopes if old else list(ALL_SCOPES)
        for key in old:
            if grace:
                key.expires_at = min(key.expires_at or now + grace, now + grace)
                key.save(update_fields=["expires_at"])
            else:
                key.revoked_at = now
                key.save(update_fields=["revoked_at"])
        _key, secret = gym_key_create(gym=gym, name=name, scopes=scopes)
    return secret


def gym_key_revoke(*, key: GymKey) -> None:
    """The key stops working at once."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])


# -- events ------------------------------------------------------------------------------
class EventInvalid(Exception):
    def __init__(self, errors: Errors) -> None:
        super().__init__("invalid event")
        self.errors = errors


@dataclass(frozen=True)
class BatchItem:
    status: int
    event: Event | None = None
    advice: list[Advice] | None = None
    withdrawn: list[Advice] | None = None
    errors: Errors | None = None


def event_ingest(*, gym: Gym, payload: Any) -> IngestResult:
    """Store one event for ``gym`` and judge the member's events from its moment on.

    The event is stored before it is judged, in the same transaction but outside the
    judging's savepoint, so a failing evaluation never loses it: it stays
    ``evaluated=False`` with the error, and the member's next evaluation (or
    ``reevaluate``) completes it. Raises ``EventInvalid`` (nothing stored) when the payload
    breaks the catalog.
    """
    clean, errors = event_validate(payload)
    if errors or clean is None:
        raise EventInvalid(errors)
    with log_context(event=clean.external_id):
        return events_ingest(gym=gym, cleans=[clean], content_hash=event_content_hash)[0]


def events_ingest_batch(*, gym: Gym, payloads: list[Any]) -> list[BatchItem]:
    """Ingest an array: a bad item never stops the good ones.

    Items are grouped by member; each member's new events are stored and judged together,
    from the earliest of them on, so the outcome is the same as sending them one by one in
    time order, whatever the array's order.
    """
    items: list[BatchItem | None] = [None] * len(payloads)
    indexed: list[tuple[int, CleanEvent]] = []
    for index, payload in enumerate(payloads):
        clean, errors = event_validate(payload)
        if errors or clean is None:
            items[index] = BatchItem(status=400, errors=errors)
        else:
            indexed.append((index, clean))
    cleans = [clean for _, clean in indexed]
    results = events_ingest(gym=gym, cleans=cleans, content_hash=event_content_hash) if indexed else []
    for (index, _), result in zip(indexed, results, strict=True):
        errors = {"external_id": [CONFLICT_MESSAGE]} if result.status == 409 else None
        items[index] = BatchItem(
            status=result.status,
            event=result.event,
            advice=result.advice,
            withdrawn=result.withdrawn,
            errors=errors,
        )
    return [item for item in items if item is not None]


def event_content_hash(clean: CleanEvent) -> str:
    """Same member, type, instant and data means the same event, whatever the offset or 6 vs 6.0."""
    data = {
        k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v) for k, v in clean.data.items()
    }
    canonical = json.dumps(
        {"member": clean.member, "type": clean.type, "occurred_at": clean.occurred_at.timestamp(), "data": data},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class ReevaluationResult:
    events: int = 0
    members: int = 0
    failed: int = 0
    advice_created: int = 0
    advice_withdrawn: int = 0


def members_for_reevaluation(
    *, member: Member | None = None, gym: Gym | None = None, since: datetime | None = None, pending: bool = False
) -> dict[int, int]:
    """Members with events to re-judge: member pk -> how many of their events are selected."""
    events = Event.objects.all()
    if pending:
        events = events.filter(evaluated=False)
    if member is not None:
        events = events.filter(member=member)
    if gym is not None:
        events = events.filter(gym=gym)
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    rows = events.values("member").annotate(n=Count("id")).order_by("member")
    return {row["member"]: row["n"] for row in rows}


def events_reevaluate(
    *,
    member: Member | None = None,
    gym: Gym | None = None,
    since: datetime | None = None,
    pending: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReevaluationResult:
    """Re-judge the selected events (and each member's events after them) with the live version.

    Adds the advice that now holds and withdraws what no longer does; advice that still holds
    is kept as it is, so repeating it changes nothing. ``pending`` selects only events whose
    evaluation failed or was cut off.
    """
    result = ReevaluationResult()
    selected = members_for_reevaluation(member=member, gym=gym, since=since, pending=pending)
    for one in Member.objects.filter(pk__in=selected).select_related("gym").order_by("pk"):
        count = selected[one.pk]
        judged = members_rejudge(member=one, since=since, pending=pending)
        result.members += 1
        result.events += count
        if judged.failed:
            result.failed += count
        else:
            result.advice_created += len(judged.created)
            result.advice_withdrawn += len(judged.withdrawn)
        if progress is not None:
            progress(count)
    return result


def referral_clear(*, member: Member, user: Any, at: datetime | None = None) -> Event:
    """A clinician's "mark cleared": recorded as a profile event of the member (cleared by a
    physician), with the clinician's name, and judged like any event."""
    at = at or timezone.now()
    name = (user.get_full_name() or user.get_username()) if user is not None else ""
    clean = CleanEvent(
        external_id=f"cleared-{at.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}",
        member=member.external_id,
        type=PROFILE,
        occurred_at=at,
        data={"cleared_by_physician": True},
    )
    return events_ingest(gym=member.gym, cleans=[clean], content_hash=event_content_hash, recorded_by=name)[0].event


def feedback_record(*, advice: Advice, feedback: Feedback, source: str) -> tuple[AdviceFeedback, bool]:
    """Store how a piece of advice landed; the same feedback again (advice, outcome and moment)
    is stored once. Returns it and whether it was new."""
    found, created = AdviceFeedback.objects.get_or_create(
        advice=advice,
        outcome=feedback.outcome,
        outcome_at=feedback.at,
        defaults={"reasons": list(feedback.reasons), "comment": feedback.comment, "source": source},
    )
    return found, created


def rate_counters_prune() -> dict[str, int]:
    """Forget the rate limit's counters of windows that ended (a periodic job)."""
    forgotten, _ = RateCounter.objects.filter(expires_at__lt=timezone.now()).delete()
    return {"forgotten": forgotten}


# -- members -----------------------------------------------------------------------------
def member_erase(*, member: Member) -> None:
    """Erase the member with every event and piece of advice about them (and tell the gym's
    webhooks, in the same transaction)."""
    with transaction.atomic():
        if Gym.objects.filter(pk=member.gym_id, webhooks_active=True).exists():
            webhooks.outbox_add(webhooks.member_changes(members=[(member, None)], kind="member.erased"))
        Advice.objects.filter(member=member).delete()
        Event.objects.filter(member=member).delete()
        member.delete()


# -- clinicians and the rule pack -------------------------------------------------------
# The writes clinicians may do to coaching records besides reading them (admin actions).
CLINICIAN_COACHING_PERMISSIONS = ("clear_referral", "reevaluate_event")


def clinicians_group_ensure() -> Group:
    """The Clinicians group: read the coaching records, mark referrals cleared and re-run
    evaluations, manage everything in the rules app."""
    group, _created = Group.objects.get_or_create(name=CLINICIANS_GROUP)
    permissions = Permission.objects.filter(
        Q(
            content_type__app_label="coaching",
            content_type__model__in=["event", "advice", "member"],
            codename__startswith="view_",
        )
        | Q(content_type__app_label="coaching", codename__in=CLINICIAN_COACHING_PERMISSIONS)
        | Q(content_type__app_label="coaching", content_type__model="overridereason")
        | Q(content_type__app_label="rules")
    )
    group.permissions.add(*permissions)
    return group


def clinician_ensure(*, username: str, password: str | None = None) -> tuple[Any, bool]:
    """Create or update a staff user in the Clinicians group; returns (user, created).

    A password must pass ``AUTH_PASSWORD_VALIDATORS``; otherwise ``ValidationError`` carries
    every validator's message and nothing is created or changed.
    """
    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        if password:
            password_validation.validate_password(password, user)
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.is_staff = True
        user.save()
        user.groups.add(clinicians_group_ensure())
    return user, created


def operator_ensure(*, username: str, password: str | None = None, email: str = "") -> tuple[Any, bool]:
    """Create or update an operator: a superuser, who manages gyms, jobs, users and everything
    clinicians do in the admin; returns (user, created).

    A password must pass ``AUTH_PASSWORD_VALIDATORS``; otherwise ``ValidationError`` carries
    every validator's message and nothing is created or changed.
    """
    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if password:
            password_validation.validate_password(password, user)
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        if email:
            user.email = email
        user.is_staff = user.is_superuser = user.is_active = True
        user.save()
    return user, created


def rulepack_install(*, upgrade: bool = False) -> PackInstall:
    """Install the default rule pack (``rules.packs.pack_install``: a first install publishes it;
    later, missing rules are staged in the draft); with ``upgrade``, stage the latest version over
    the rules of earlier versions nobody changed. Returns the ``PackInstall`` report."""
    return pack_install(
        pack=rulepack(LATEST),
        earlier=[rulepack(version) for version in PACK_FILES if version < LATEST],
        upgrade=upgrade,
        comment=f"Default rule pack, version {LATEST}",
    )
