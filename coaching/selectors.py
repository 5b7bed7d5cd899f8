"""Reads of the coaching domain, always scoped to one gym."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from .figures import figures_as_of
from .models import Advice, Event, Gym, Member
from .services import key_hash


def gym_for_key(*, key: str) -> Gym | None:
    if not key:
        return None
    return Gym.objects.filter(key_hash=key_hash(key)).first()


def member_get(*, gym: Gym, external_id: str) -> Member | None:
    """The gym's member; another gym's member is as absent as one that never existed."""
    return Member.objects.filter(gym=gym, external_id=external_id).first()


def member_summary(*, member: Member, at: datetime | None = None) -> dict[str, Any]:
    at = at or timezone.now()
    return {
        "member": member.external_id,
        "profile": member.profile,
        "figures": figures_as_of(member=member, at=at),
        "figures_as_of": at,
        "events": member.events.count(),
        "advice": member.advice.count(),
        "created_at": member.created_at,
    }


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
    *, gym: Gym, since: datetime | None = None, severity: str | None = None, category: str | None = None
) -> QuerySet[Advice]:
    return _advice_filtered(Advice.objects.filter(gym=gym), since=since, severity=severity, category=category)


def advice_list_for_member(
    *, member: Member, since: datetime | None = None, severity: str | None = None, category: str | None = None
) -> QuerySet[Advice]:
    return _advice_filtered(Advice.objects.filter(member=member), since=since, severity=severity, category=category)


def _advice_filtered(
    advice: QuerySet[Advice], *, since: datetime | None, severity: str | None, category: str | None
) -> QuerySet[Advice]:
    advice = advice.select_related("member", "event")
    if since:
        advice = advice.filter(created_at__gte=since)
    if severity:
        advice = advice.filter(severity=severity)
    if category:
        advice = advice.filter(category=category)
    return advice
