"""Reads of the coaching domain, always scoped to one gym."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from .catalog import PROFILE
from .figures import figures_now
from .models import Advice, Event, Gym, Member
from .services import key_hash

# An event still not evaluated this long after it arrived had its evaluation cut off.
PENDING_AFTER = timedelta(minutes=2)


def gym_for_key(*, key: str) -> Gym | None:
    if not key:
        return None
    return Gym.objects.filter(key_hash=key_hash(key)).first()


def member_get(*, gym: Gym, external_id: str) -> Member | None:
    """The gym's member; another gym's member is as absent as one that never existed."""
    return Member.objects.filter(gym=gym, external_id=external_id).first()


def member_summary(*, member: Member, at: datetime | None = None) -> dict[str, Any]:
    """The member's profile, referral and current figures (as of ``at``, default now)."""
    at = at or timezone.now()
    events = list(member.events.order_by("occurred_at", "external_id"))
    return {
        "member": member.external_id,
        "profile": member.profile,
        "referral": member_referral(member=member),
        "figures": figures_now(events, at=at),
        "figures_as_of": at,
        "events": len(events),
        "advice": member.advice.filter(withdrawn_at__isnull=True).count(),
        "created_at": member.created_at,
    }


def member_referral(*, member: Member) -> dict[str, Any] | None:
    """The referral in force: since when, by which rule, on which event (None: not referred)."""
    if member.referral_since is None:
        return None
    event = member.referral_event
    return {
        "since": member.referral_since,
        "rule": {"key": member.referral_rule_key, "name": member.referral_rule_name},
        "event": event.external_id if event is not None else None,
    }


def referral_clearance_last(*, member: Member) -> Event | None:
    """The member's latest profile event saying a physician cleared them (sent by the gym, or a
    clinician's "mark cleared" in the admin, which names the clinician in ``recorded_by``)."""
    cleared = member.events.filter(type=PROFILE, data__cleared_by_physician=True)
    return cleared.order_by("-occurred_at", "-external_id").first()


def event_list(
    *,
    gym: Gym,
    member: str | None = None,
    type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Event]:
    events = Event.objects.filter(gym=gym).select_related("member")
    if member:
        events = events.filter(member__external_id=member)
    if type:
        events = events.filter(type=type)
    if since:
        events = events.filter(occurred_at__gte=since)
    if until:
        events = events.filter(occurred_at__lte=until)
    return events


def advice_list_for_gym(
    *,
    gym: Gym,
    since: datetime | None = None,
    severity: str | None = None,
    category: str | None = None,
    withdrawn: bool = False,
) -> QuerySet[Advice]:
    return _advice_filtered(
        Advice.objects.filter(gym=gym), since=since, severity=severity, category=category, withdrawn=withdrawn
    )


def advice_list_for_member(
    *,
    member: Member,
    since: datetime | None = None,
    severity: str | None = None,
    category: str | None = None,
    withdrawn: bool = False,
) -> QuerySet[Advice]:
    return _advice_filtered(
        Advice.objects.filter(member=member), since=since, severity=severity, category=category, withdrawn=withdrawn
    )


def advice_changes_for_gym(*, gym: Gym, changed_since: datetime) -> QuerySet[Advice]:
    """The gym's advice created or withdrawn after ``changed_since``, oldest change first."""
    return Advice.objects.filter(gym=gym, changed_at__gt=changed_since).select_related(
        "member", "event", "withdrawn_by"
    )


def _advice_filtered(
    advice: QuerySet[Advice], *, since: datetime | None, severity: str | None, category: str | None, withdrawn: bool
) -> QuerySet[Advice]:
    advice = advice.select_related("member", "event", "withdrawn_by")
    if not withdrawn:
        advice = advice.filter(withdrawn_at__isnull=True)
    if since:
        advice = advice.filter(created_at__gte=since)
    if severity:
        advice = advice.filter(severity=severity)
    if category:
        advice = advice.filter(category=category)
    return advice


def evaluations_pending_count() -> int:
    """Events waiting for an evaluation that failed (or was cut off a while ago)."""
    stale = timezone.now() - PENDING_AFTER
    return Event.objects.filter(evaluated=False).filter(Q(evaluation_error__gt="") | Q(received_at__lt=stale)).count()
