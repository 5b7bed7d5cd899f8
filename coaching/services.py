"""Writes of the coaching domain: gyms and keys, event ingest and evaluation, erasure.

The rules engine is reached only through ``rules.services`` (imported where used, so
the domain's non-evaluation parts never depend on the engine being importable).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import IntegrityError, transaction
from django.db.models import Q

from .catalog import PROFILE, SEVERITY_CODES
from .facts import event_fact
from .figures import figures_as_of, profile_merged
from .models import Advice, Event, Gym, Member
from .validation import CleanEvent, Errors, event_validate

logger = logging.getLogger(__name__)

KEY_PREFIX = "rlbp_"
CONFLICT_MESSAGE = "An event with this external_id was already received with different content; nothing was changed."
CLINICIANS_GROUP = "Clinicians"
CARD_SUMMARY_MAX = 140
INDICATORS = {"info": "info", "caution": "warning", "stop": "critical", "refer": "critical"}


# -- gyms and keys -------------------------------------------------------------------------
def key_hash(key: str) -> str:
    """Keys are 256-bit random tokens, so a plain SHA-256 is enough (no slow KDF needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _key_new() -> tuple[str, str, str]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key_hash(key), key[: len(KEY_PREFIX) + 6]


def gym_create(*, name: str) -> tuple[Gym, str]:
    """Create a gym; returns it with its API key, which is never retrievable again."""
    key, digest, prefix = _key_new()
    gym = Gym.objects.create(name=name, key_hash=digest, key_prefix=prefix)
    return gym, key


def gym_key_rotate(*, gym: Gym) -> str:
    """Issue a new key for ``gym``; the old one stops working at once."""
    key, digest, prefix = _key_new()
    gym.key_hash, gym.key_prefix = digest, prefix
    gym.save(update_fields=["key_hash", "key_prefix"])
    return key


# -- events ------------------------------------------------------------------------------
class EventInvalid(Exception):
    def __init__(self, errors: Errors) -> None:
        super().__init__("invalid event")
        self.errors = errors


class IngestResult(NamedTuple):
    status: int  # 201 new, 200 identical repeat, 409 conflicting repeat
    event: Event
    advice: list[Advice]


def event_ingest(*, gym: Gym, payload: Any, evaluate: bool = True) -> IngestResult:
    """Store one event for ``gym`` and evaluate it.

    The event is committed before evaluation, so a failing evaluation never loses it: it
    stays ``evaluated=False`` with the error, for ``events_reevaluate`` to pick up.
    A late event (one with later events of the member already stored) also re-judges those
    later events, since their figures now include it (see ``event_evaluate_in_time``).
    With ``evaluate=False`` the caller evaluates (a batch does, oldest first) and reads
    the advice; the result's advice is empty. Raises ``EventInvalid`` (nothing stored) when the payload
    breaks the catalog.
    """
    clean, errors = event_validate(payload)
    if errors or clean is None:
        raise EventInvalid(errors)
    content_hash = event_content_hash(clean)

    existing = _event_existing(gym=gym, external_id=clean.external_id)
    if existing is None:
        try:
            event = _event_store(gym=gym, clean=clean, content_hash=content_hash)
        except IntegrityError:  # a concurrent request stored the same external_id first
            existing = _event_existing(gym=gym, external_id=clean.external_id)
            if existing is None:
                raise
        else:
            if not evaluate:
                return IngestResult(201, event, [])
            return IngestResult(201, event, event_evaluate_in_time(event=event))

    status = 409 if existing.content_hash != content_hash else 200
    if not evaluate:
        return IngestResult(status, existing, [])
    if status == 200 and not existing.evaluated:  # a repeat is a good moment to retry a failed evaluation
        event_evaluate(event=existing)
    return IngestResult(status, existing, advice_for_event(event=existing))


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


def _event_existing(*, gym: Gym, external_id: str) -> Event | None:
    return Event.objects.select_related("member").filter(gym=gym, external_id=external_id).first()


def _event_store(*, gym: Gym, clean: CleanEvent, content_hash: str) -> Event:
    with transaction.atomic():
        member, _created = Member.objects.get_or_create(gym=gym, external_id=clean.member)
        offset = clean.occurred_at.utcoffset() or timedelta(0)
        event = Event.objects.create(
            gym=gym,
            member=member,
            external_id=clean.external_id,
            type=clean.type,
            occurred_at=clean.occurred_at,
            utc_offset_minutes=int(offset.total_seconds() // 60),
            data=clean.data,
            content_hash=content_hash,
        )
        if clean.type == PROFILE:
            member_profile_refresh(member=member)
    return event


def member_profile_refresh(*, member: Member) -> None:
    """Recompute the stored profile from all profile events: the latest by occurred_at wins."""
    member.profile = profile_merged(member.events.filter(type=PROFILE))
    member.save(update_fields=["profile"])


@dataclass(frozen=True)
class BatchItem:
    status: int
    event: Event | None = None
    advice: list[Advice] | None = None
    errors: Errors | None = None


def events_ingest_batch(*, gym: Gym, payloads: list[Any]) -> list[BatchItem]:
    """Ingest each event on its own: a bad or failing item never stops the good ones.

    All new events are stored first and then evaluated oldest first, so the outcome is the
    same as if they had arrived one by one in time order, whatever the array's order.
    """
    results: list[IngestResult | Errors] = []
    for payload in payloads:
        try:
            results.append(event_ingest(gym=gym, payload=payload, evaluate=False))
        except EventInvalid as invalid:
            results.append(invalid.errors)

    pending = {
        r.event.pk: r.event
        for r in results
        if isinstance(r, IngestResult) and (r.status == 201 or (r.status == 200 and not r.event.evaluated))
    }
    new = {r.event.pk for r in results if isinstance(r, IngestResult) and r.status == 201}
    for event in sorted(pending.values(), key=lambda e: (e.occurred_at, e.pk)):
        event_evaluate(event=event)
    earliest_new: dict[int, Event] = {}
    for event in sorted((pending[pk] for pk in new), key=lambda e: (e.occurred_at, e.pk)):
        earliest_new.setdefault(event.member_id, event)
    for event in earliest_new.values():
        _later_events_rejudge(event=event, skip=set(pending))

    advice = advice_for_events(events=[r.event for r in results if isinstance(r, IngestResult)])
    items: list[BatchItem] = []
    for result in results:
        if not isinstance(result, IngestResult):
            items.append(BatchItem(status=400, errors=result))
            continue
        errors = {"external_id": [CONFLICT_MESSAGE]} if result.status == 409 else None
        items.append(BatchItem(status=result.status, event=result.event, advice=advice[result.event.pk], errors=errors))
    return items


# -- evaluation --------------------------------------------------------------------------
# A late event changes the figures of the member's later events (weekly distance, streaks,
# days in a row...), so those are judged again: rules work on occurred_at, never on arrival
# order. Bounded so that a history sent newest first stays affordable; 30 days is the widest
# window of the derived figures.
LATE_EVENT_HORIZON = timedelta(days=30)
LATE_EVENT_MAX = 200


def event_evaluate_in_time(*, event: Event) -> list[Advice]:
    """Evaluate a newly stored ``event`` and re-judge the member's events after it.

    Returns the advice the event's arrival produced: its own and any that the later
    events gained (those carry ``trigger=event``).
    """
    event_evaluate(event=event)
    _later_events_rejudge(event=event)
    return advice_for_event(event=event)


def _later_events_rejudge(*, event: Event, skip: Collection[int] = ()) -> None:
    later = (
        Event.objects.filter(
            member_id=event.member_id,
            occurred_at__gt=event.occurred_at,
            occurred_at__lte=event.occurred_at + LATE_EVENT_HORIZON,
        )
        .exclude(pk__in={*skip, event.pk})
        .select_related("member")
        .order_by("occurred_at", "pk")
    )
    for other in later[:LATE_EVENT_MAX]:
        event_evaluate(event=other, trigger=event)


def event_evaluate(*, event: Event, trigger: Event | None = None) -> list[Advice]:
    """Run the live rules on ``event``; returns the advice this evaluation created.

    ``trigger`` is the late event that caused this re-evaluation, if any; new advice
    records it. Never raises for an engine failure: the error is recorded on the event
    instead (and nothing is returned). All of the event's advice is ``advice_for_event``.
    """
    try:
        return _event_evaluate(event, trigger=trigger)
    except Exception as exc:  # the event is safe in the database; record why and move on
        logger.exception("Evaluation of event %s failed", event.pk)
        event.evaluated = False
        event.evaluation_error = f"{type(exc).__name__}: {exc}"[:10000]
        Event.objects.filter(pk=event.pk).update(evaluated=False, evaluation_error=event.evaluation_error)
        return []


def _event_evaluate(event: Event, *, trigger: Event | None = None) -> list[Advice]:
    from rules.services import facts_evaluate, ruleset_live

    created: list[Advice] = []
    with transaction.atomic():
        member = event.member
        figures = figures_as_of(member=member, at=event.occurred_at, event=event)
        fact = event_fact(event, figures)
        history_events = _history_events(event, ruleset_live())
        # History uses the figures stored when each event was judged. One not judged yet (the
        # rest of a batch, a failed one) goes in with its own fields only: it completes any
        # pattern it takes part in on its own turn, so its figures are not computed here.
        history = [event_fact(other, other.figures or {}) for other in history_events]
        evaluation = facts_evaluate(fact=fact, history=history)

        by_fact_id = {str(e.pk): e for e in history_events}
        by_fact_id[str(event.pk)] = event
        advised = set(Advice.objects.filter(event=event).values_list("rule_key", flat=True))
        # Least urgent first: lists are newest first, so one event's advice then reads most urgent first.
        for match in sorted(evaluation.matches, key=lambda m: (-_severity_rank(m.severity), m.rule_key)):
            if match.rule_key in advised:
                continue  # advice is unique per event and rule: a re-evaluation adds nothing twice
            matched = [by_fact_id[fid] for fid in match.fact_ids if fid in by_fact_id] or [event]
            advice = _advice_store(event=event, match=match, matched=matched, trigger=trigger)
            if advice is not None:
                created.append(advice)

        event.figures = figures
        event.evaluated = True
        event.evaluation_error = ""
        event.save(update_fields=["figures", "evaluated", "evaluation_error"])
    return created


def _history_events(event: Event, live: Any) -> list[Event]:
    """The member's other events a pattern rule could join with ``event``.

    Both directions in time: a late event may be the first step of a pattern whose later
    steps are already stored.
    """
    window: timedelta = live.history_window
    types = set(live.history_types)
    if not window or not types:
        return []
    return list(
        Event.objects.filter(
            member_id=event.member_id,
            type__in=types,
            occurred_at__gte=event.occurred_at - window,
            occurred_at__lte=event.occurred_at + window,
        )
        .exclude(pk=event.pk)
        .select_related("member")
        .order_by("occurred_at", "pk")
    )


def _advice_store(*, event: Event, match: Any, matched: list[Event], trigger: Event | None = None) -> Advice | None:
    """Store one match as advice unless the rule is cooling down for the member.

    A pattern's match is found again from each of its events (a late first step, a
    re-evaluation), so one already advised on the same events is not stored twice.
    """
    occurred_at = max(e.occurred_at for e in matched)
    matched_ids = [e.external_id for e in matched]
    if len(matched) > 1 and any(
        set(ids) == set(matched_ids)
        for ids in Advice.objects.filter(
            member_id=event.member_id, rule_key=match.rule_key, occurred_at=occurred_at
        ).values_list("matched_events", flat=True)
    ):
        return None
    if match.cooldown_days and advice_in_cooldown(
        member=event.member, rule_key=match.rule_key, at=occurred_at, days=match.cooldown_days
    ):
        return None
    return Advice.objects.create(
        gym_id=event.gym_id,
        member_id=event.member_id,
        event=event,
        trigger=trigger if trigger is not None and trigger.pk != event.pk else None,
        rule_key=match.rule_key,
        rule_name=match.rule_name,
        rule_version=match.version,
        category=match.category,
        severity=match.severity,
        message=match.message,
        matched_events=matched_ids,
        source_label=match.source_label,
        card=advice_card(
            rule_name=match.rule_name, severity=match.severity, message=match.message, source_label=match.source_label
        ),
        occurred_at=occurred_at,
    )


def advice_in_cooldown(*, member: Member, rule_key: str, at: datetime, days: int) -> bool:
    """True if the rule already advised ``member`` less than ``days`` days before or after ``at``.

    Both sides count because events arrive late: advice for an earlier moment must not
    crowd one that was already given a few days after it.
    """
    window = timedelta(days=days)
    return Advice.objects.filter(
        member=member, rule_key=rule_key, occurred_at__gt=at - window, occurred_at__lt=at + window
    ).exists()


def advice_card(*, rule_name: str, severity: str, message: str, source_label: str) -> dict[str, Any]:
    """The advice as an HL7 CDS Hooks card."""
    return {
        "summary": _summary(message),
        "indicator": INDICATORS.get(severity, "info"),
        "detail": f"{message}\n\n**{rule_name}**" + (f"\n\n*Source: {source_label}*" if source_label else ""),
        "source": {"label": source_label},
    }


def _summary(message: str) -> str:
    """The message's first sentence when it fits a card summary, else the message cut to fit."""
    text = " ".join(message.split())
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first if len(first) <= CARD_SUMMARY_MAX else _shorten(text, CARD_SUMMARY_MAX)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:.")
    return cut + "…"


def advice_for_event(*, event: Event) -> list[Advice]:
    """The advice the event produced, most urgent first: its own, and any its late arrival gave later events."""
    return advice_for_events(events=[event])[event.pk]


def advice_for_events(*, events: Collection[Event]) -> dict[int, list[Advice]]:
    """``advice_for_event`` for each of ``events`` (by primary key), in one query."""
    pks = {event.pk for event in events}
    by_event: dict[int, list[Advice]] = {pk: [] for pk in pks}
    for advice in Advice.objects.filter(Q(event__in=pks) | Q(trigger__in=pks)).select_related("member", "event"):
        for pk in {advice.event_id, advice.trigger_id} & pks:
            by_event[pk].append(advice)
    for advice in by_event.values():
        advice.sort(key=lambda a: (_severity_rank(a.severity), a.rule_key))
    return by_event


def _severity_rank(severity: str) -> int:
    return SEVERITY_CODES.index(severity) if severity in SEVERITY_CODES else len(SEVERITY_CODES)


@dataclass
class ReevaluationResult:
    events: int = 0
    failed: int = 0
    advice_created: int = 0


def events_for_reevaluation(
    *,
    member: Member | None = None,
    gym: Gym | None = None,
    since: datetime | None = None,
    include_evaluated: bool = False,
):
    """Events to re-run, oldest first so cooldowns play out in time order."""
    events = Event.objects.select_related("member", "gym")
    if not include_evaluated:
        events = events.filter(evaluated=False)
    if member is not None:
        events = events.filter(member=member)
    if gym is not None:
        events = events.filter(gym=gym)
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    return events.order_by("occurred_at", "pk")


def events_reevaluate(
    *,
    member: Member | None = None,
    gym: Gym | None = None,
    since: datetime | None = None,
    include_evaluated: bool = False,
    progress: Callable[[Event], None] | None = None,
) -> ReevaluationResult:
    """Re-run evaluation of not yet evaluated events (all events with ``include_evaluated``).

    Safe to repeat: advice is unique per event and rule, so nothing is produced twice.
    """
    result = ReevaluationResult()
    events = events_for_reevaluation(member=member, gym=gym, since=since, include_evaluated=include_evaluated)
    # The ids first: evaluating writes to the very rows a lazy cursor would still be reading.
    ids = list(events.values_list("pk", flat=True))
    for start in range(0, len(ids), 200):
        chunk_ids = ids[start : start + 200]
        chunk = events.in_bulk(chunk_ids)  # an event evaluated meanwhile (a late one's re-judging) drops out
        for event in (chunk[pk] for pk in chunk_ids if pk in chunk):
            result.advice_created += len(event_evaluate(event=event))
            result.events += 1
            if not event.evaluated:
                result.failed += 1
            if progress is not None:
                progress(event)
    return result


# -- members -----------------------------------------------------------------------------
def member_erase(*, member: Member) -> None:
    """Erase the member with every event and piece of advice about them."""
    with transaction.atomic():
        Advice.objects.filter(member=member).delete()
        Event.objects.filter(member=member).delete()
        member.delete()


# -- clinicians and the rule pack -------------------------------------------------------
def clinicians_group_ensure() -> Group:
    """The Clinicians group: read the coaching records, manage everything in the rules app."""
    group, _created = Group.objects.get_or_create(name=CLINICIANS_GROUP)
    permissions = Permission.objects.filter(
        Q(
            content_type__app_label="coaching",
            content_type__model__in=["event", "advice", "member"],
            codename__startswith="view_",
        )
        | Q(content_type__app_label="rules")
    )
    group.permissions.add(*permissions)
    return group


def clinician_ensure(*, username: str, password: str | None = None) -> tuple[Any, bool]:
    """Create or update a staff user in the Clinicians group; returns (user, created)."""
    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        if password:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.is_staff = True
        user.save()
        user.groups.add(clinicians_group_ensure())
    return user, created


def rulepack_install() -> bool:
    """Install the default rule pack's missing rules; True if a version was published."""
    from rules.services import ruleset_install_pack

    from .rulepack import RULE_PACK

    return ruleset_install_pack(RULE_PACK, comment="Default rule pack (RULES.md)")
