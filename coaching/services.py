"""Writes of the coaching domain: gyms and keys, event ingest and evaluation, erasure.

The rules engine is reached only through ``rules.services`` (imported where used, so
the domain's non-evaluation parts never depend on the engine being importable).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group, Permission
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from . import metrics
from .catalog import PROFILE
from .figures import profile_merged
from .logs import log_context
from .models import Advice, Event, Gym, Member
from .validation import CleanEvent, Errors, event_validate

if TYPE_CHECKING:
    from rules.packs import PackInstall

logger = logging.getLogger(__name__)

KEY_PREFIX = "rlbp_"
CONFLICT_MESSAGE = "An event with this external_id was already received with different content; nothing was changed."
CLINICIANS_GROUP = "Clinicians"


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
    advice: list[Advice]  # the event's current advice, and advice its late arrival gave later events
    withdrawn: list[Advice]  # advice its late arrival withdrew


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
        return _events_ingest(gym=gym, cleans=[clean])[0]


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
    results = _events_ingest(gym=gym, cleans=[clean for _, clean in indexed]) if indexed else []
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


def _events_ingest(*, gym: Gym, cleans: Sequence[CleanEvent]) -> list[IngestResult]:
    """Valid events of any members: the set-based path (``coaching.ingest``), or, when a
    concurrent write got in its way, each member under its lock (the same result)."""
    from .ingest import events_ingest_set

    answers = events_ingest_set(gym=gym, cleans=cleans, content_hash=event_content_hash)
    if answers is not None:
        return [IngestResult(a.status, a.event, a.advice, a.withdrawn) for a in answers]
    by_member: dict[str, list[int]] = {}
    for position, clean in enumerate(cleans):
        by_member.setdefault(clean.member, []).append(position)
    results: list[IngestResult | None] = [None] * len(cleans)
    for member_external_id, positions in by_member.items():
        member_results = _member_ingest(
            gym=gym, member_external_id=member_external_id, cleans=[cleans[p] for p in positions]
        )
        for position, result in zip(positions, member_results, strict=True):
            results[position] = result
    return [result for result in results if result is not None]


def _member_ingest(*, gym: Gym, member_external_id: str, cleans: Sequence[CleanEvent]) -> list[IngestResult]:
    """Store one member's events (repeats recognised by their content) and judge what is new."""
    from .evaluation import event_order, member_judge_safely, member_lock

    judged = None
    with log_context(gym=gym.pk, member=member_external_id), transaction.atomic():
        member, _created = Member.objects.get_or_create(gym=gym, external_id=member_external_id)
        member = member_lock(member_id=member.pk)
        known = {
            e.external_id: e
            for e in Event.objects.select_related("member").filter(
                gym=gym, external_id__in={c.external_id for c in cleans}
            )
        }
        answers: list[tuple[int, Event]] = []
        new: list[Event] = []
        for clean in cleans:
            content_hash = event_content_hash(clean)
            event = known.get(clean.external_id)
            if event is None:
                event, created = _event_store(gym=gym, member=member, clean=clean, content_hash=content_hash)
                known[clean.external_id] = event
                if created:
                    new.append(event)
                    answers.append((201, event))
                    continue
            answers.append((200 if event.content_hash == content_hash else 409, event))
        if any(e.type == PROFILE for e in new):
            member_profile_refresh(member=member)
        to_judge = new + [e for status, e in answers if status == 200 and not e.evaluated and e.member_id == member.pk]
        if to_judge:
            earliest = min(to_judge, key=event_order)
            cause = min(new, key=event_order) if new else None
            judged = member_judge_safely(member=member, since=event_order(earliest), cause=cause, new_events=to_judge)
    # Counted once the transaction has ended: what a rollback undid was never stored.
    metrics.events_stored(new)
    if judged is not None:
        metrics.advice_changed(created=judged.created, withdrawn=judged.withdrawn)
    events = [event for _, event in answers]
    for event in events:
        event.refresh_from_db(fields=["evaluated", "evaluation_error", "figures"])
    advice = advice_for_events(events=events)
    withdrawn = advice_withdrawn_by(events=events)
    return [IngestResult(status, event, advice[event.pk], withdrawn[event.pk]) for status, event in answers]


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


def _event_store(
    *, gym: Gym, member: Member, clean: CleanEvent, content_hash: str, recorded_by: str = ""
) -> tuple[Event, bool]:
    """Store the event; (the stored event, True), or (the one stored first by a concurrent request, False)."""
    try:
        with transaction.atomic():
            event = event_build(gym=gym, member=member, clean=clean, content_hash=content_hash, recorded_by=recorded_by)
            event.save(force_insert=True)
            return event, True
    except IntegrityError:  # a concurrent request stored the same external_id first
        existing = Event.objects.select_related("member").filter(gym=gym, external_id=clean.external_id).first()
        if existing is None:
            raise
        return existing, False


def member_profile_refresh(*, member: Member) -> None:
    """Recompute the stored profile from all profile events: the latest by occurred_at wins."""
    data = member.events.filter(type=PROFILE).order_by("occurred_at", "external_id").values_list("data", flat=True)
    member.profile = profile_merged(data)
    member.save(update_fields=["profile"])


def advice_for_event(*, event: Event) -> list[Advice]:
    """The event's current advice, most urgent first, and any its late arrival gave later events."""
    return advice_for_events(events=[event])[event.pk]


def advice_for_events(*, events: Collection[Event]) -> dict[int, list[Advice]]:
    """``advice_for_event`` for each of ``events`` (by primary key), in one query."""
    from .evaluation import severity_rank

    pks = {event.pk for event in events}
    by_event: dict[int, list[Advice]] = {pk: [] for pk in pks}
    current = Advice.objects.filter(withdrawn_at__isnull=True).filter(Q(event__in=pks) | Q(trigger__in=pks))
    for advice in current.select_related("member", "event", "withdrawn_by"):
        for pk in {advice.event_id, advice.trigger_id} & pks:
            by_event[pk].append(advice)
    for advice in by_event.values():
        advice.sort(key=lambda a: (severity_rank(a.severity), a.rule_key))
    return by_event


def advice_withdrawn_by(*, events: Collection[Event]) -> dict[int, list[Advice]]:
    """The advice each of ``events`` withdrew by arriving late (by primary key), in one query."""
    pks = {event.pk for event in events}
    by_event: dict[int, list[Advice]] = {pk: [] for pk in pks}
    for advice in Advice.objects.filter(withdrawn_by__in=pks).select_related("member", "event", "withdrawn_by"):
        by_event[advice.withdrawn_by_id].append(advice)
    return by_event


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
    from .evaluation import event_order, member_judge_safely, member_lock

    result = ReevaluationResult()
    for member_pk, count in members_for_reevaluation(member=member, gym=gym, since=since, pending=pending).items():
        with transaction.atomic():
            locked = member_lock(member_id=member_pk)
            selected = Event.objects.filter(member=locked)
            if pending:
                selected = selected.filter(evaluated=False)
            if since is not None:
                selected = selected.filter(occurred_at__gte=since)
            first = selected.order_by("occurred_at", "external_id").first()
            judged = None
            if first is not None:
                judged = member_judge_safely(
                    member=locked, since=event_order(first) if (since or pending) else None, cause=None
                )
        if judged is not None:
            metrics.advice_changed(created=judged.created, withdrawn=judged.withdrawn)
        result.members += 1
        result.events += count
        if judged is None:
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
    from .validation import CleanEvent

    at = at or timezone.now()
    name = (user.get_full_name() or user.get_username()) if user is not None else ""
    clean = CleanEvent(
        external_id=f"cleared-{at.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}",
        member=member.external_id,
        type=PROFILE,
        occurred_at=at,
        data={"cleared_by_physician": True},
    )
    with transaction.atomic():  # the clearance and the name of who recorded it, or neither
        result = _member_ingest(gym=member.gym, member_external_id=member.external_id, cleans=[clean])[0]
        Event.objects.filter(pk=result.event.pk).update(recorded_by=name)
    result.event.recorded_by = name
    return result.event


# -- members -----------------------------------------------------------------------------
def member_erase(*, member: Member) -> None:
    """Erase the member with every event and piece of advice about them."""
    with transaction.atomic():
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
    from rules.packs import pack_install

    from .rulepack import LATEST, PACK_FILES, rulepack

    return pack_install(
        pack=rulepack(LATEST),
        earlier=[rulepack(version) for version in PACK_FILES if version < LATEST],
        upgrade=upgrade,
        comment=f"Default rule pack, version {LATEST}",
    )
