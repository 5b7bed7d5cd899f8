"""Events as the rules engine sees them, and advice as gyms and clinicians read it.

A member's advice is a function of their events and the published rules: what judging the
events one at a time in ``occurred_at`` order (ties broken by ``external_id``) gives. This
module turns stored events into the engine's facts (their fields, their derived figures, their
moment in the member's own time) and matches into the advice's card; the pipeline that stores
and judges events is ``coaching.ingest``, the decision policy ``rules.evaluation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from rules.evaluation import Fact, Given, Match

from .catalog import PROFILE, SEVERITY_CODES
from .figures import EventLike, History, event_pain, figures_timeline, local_zone
from .models import Advice, Event, Gym, Member
from .validation import CleanEvent


def event_order(event: Event) -> tuple[datetime, str]:
    """The order events are judged in: time, then the gym's id (never arrival order)."""
    return (event.occurred_at, event.external_id)


def clears_referral(event: Event) -> bool:
    return event.type == PROFILE and (event.data or {}).get("cleared_by_physician") is True


def local_moment(event: EventLike) -> datetime:
    """The event's moment in the offset it was sent with (stored moments come back in UTC)."""
    return event.occurred_at.astimezone(local_zone(event.utc_offset_minutes))


def fact_id(event: Event) -> str:
    """The engine's id of an event: its primary key, or (not stored yet) its gym's id."""
    return str(event.pk) if event.pk is not None else f"new:{event.external_id}"


# Figures made of the event's own fields alone (``event_fact``): not stored with its figures.
OWN_FIGURES = frozenset({"event_pain"})


def event_fact(event: Event, figures: dict[str, Any]) -> Fact:
    """An event as the engine sees it: its fields over its derived figures (and the figures made
    of its own fields alone, which need no history), at its moment in the offset it was sent with
    (so that dates the policy names are the member's local ones)."""
    data = {**figures, **(event.data or {})}
    pain = event_pain(event)
    if pain is not None:
        data["event_pain"] = pain
    return Fact(
        id=fact_id(event),
        type=event.type,
        occurred_at=local_moment(event),
        data=data,
        group=str(event.member_id),
        clears_referral=clears_referral(event),
    )


def member_facts(events: Sequence[Event], *, first: int = 0, history: History | None = None) -> list[Fact]:
    """``events[first:]`` (one member's events, in judging order) as facts with the figures as
    of each (the events before ``first`` counted in them). ``history``: the running state of
    the member's events before ``events`` (none: they are all of them), carried on to the last."""
    figures = figures_timeline(events, first=first, history=history)
    return [event_fact(event, figures) for event, figures in zip(events[first:], figures, strict=True)]


def replay_fact(event: EventLike) -> Fact:
    """An event already judged, as the decision policy's replay takes it (its moment and whether
    it clears a referral)."""
    return Fact(
        id=str(event.pk),
        type=event.type,
        occurred_at=local_moment(event),
        data={},
        clears_referral=clears_referral(event),
    )


def given_of(advice: Sequence[Advice]) -> list[Given]:
    """What the decision policy remembers of stored advice."""
    return [
        Given(
            rule_key=a.rule_key,
            rule_name=a.rule_name,
            severity=a.severity,
            summary=(a.card or {}).get("summary", ""),
            started_referral=a.refers,
        )
        for a in advice
    ]


def history_start(events: Sequence[Event], start: int, window: timedelta) -> int:
    """The first of ``events`` (in judging order) that judging ``events[start:]`` can look back
    to: the engine's patterns see only facts within ``window`` of the one judged, so facts for
    the older events are never made."""
    if start >= len(events):
        return start
    since = events[start].occurred_at - window
    first = start
    while first > 0 and events[first - 1].occurred_at >= since:
        first -= 1
    return first


def member_events(member: Member) -> list[Event]:
    return list(Event.objects.filter(member=member).order_by("occurred_at", "external_id"))


def advice_order(advice: Advice) -> tuple[int, int, str]:
    """Where a piece of advice comes among its event's: most urgent first, then by the rule's
    priority, then by key (as the decision policy lists them)."""
    return (severity_rank(advice.severity), advice.priority if advice.priority is not None else 0, advice.rule_key)


def advice_card(*, match: Match) -> dict[str, Any]:
    """The advice as an HL7 CDS Hooks card; its summary is the rule's own (what to do)."""
    detail = f"{match.message}\n\n**{match.rule_name}**"
    if match.source_label:
        detail += f"\n\n*Source: {match.source_label}*"
    return {
        "summary": match.summary,
        "indicator": match.indicator or "info",
        "detail": detail,
        "source": {"label": match.source_label},
    }


def severity_rank(severity: str) -> int:
    return SEVERITY_CODES.index(severity) if severity in SEVERITY_CODES else len(SEVERITY_CODES)


def event_build(*, gym: Gym, member: Member | None, clean: CleanEvent, content_hash: str, **fields: Any) -> Event:
    """The (unsaved) event a clean payload describes, with its offset kept for local days."""
    offset = clean.occurred_at.utcoffset() or timedelta(0)
    return Event(
        gym=gym,
        member=member,
        external_id=clean.external_id,
        type=clean.type,
        occurred_at=clean.occurred_at,
        utc_offset_minutes=int(offset.total_seconds() // 60),
        data=clean.data,
        content_hash=content_hash,
        **fields,
    )
