"""Reads of the coaching domain, always scoped to one gym."""

from __future__ import annotations

import logging
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db import DatabaseError, transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from rules.evaluation import DecisionState, HeldBack, ruleset_live, timeline_judge
from rules.selectors import display_days_live
from rules.spec import DISPLAY_DEFAULT_DAYS

from .catalog import PROFILE
from .evaluation import advice_order, given_of, member_events, member_facts, replay_fact
from .figures import figures_now
from .internal.db.prepared import Prepared
from .keys import key_hash
from .models import Advice, Event, Gym, GymKey, Member

logger = logging.getLogger(__name__)

# An event still not evaluated this long after it arrived had its evaluation cut off.
PENDING_AFTER = timedelta(minutes=2)


# A key's last use is written at most this often (every request would be a write otherwise).
KEY_USE_RECORDED_EVERY = timedelta(minutes=1)


def gym_for_key(*, key: str) -> tuple[Gym, GymKey] | None:
    """The gym whose API key is ``key`` and the key itself, if it works now (not revoked, not past
    its grace); asked on every API request, so compiled once."""
    if not key:
        return None
    rows, compiled = _KEY.fetch(key_hash=key_hash(key))
    if not rows:
        return None
    [row] = _KEY.converted(rows, compiled, range(len(_KEY_COLUMNS)))  # the key hash is unique
    values = dict(zip(_KEY_COLUMNS, row, strict=True))
    now = timezone.now()
    if values["revoked_at"] is not None or (values["expires_at"] is not None and values["expires_at"] <= now):
        return None
    gym = Gym.from_db(Gym.objects.db, _GYM_ATTNAMES, [values[f"gym__{name}"] for name in _GYM_ATTNAMES])
    found = GymKey.from_db(GymKey.objects.db, _KEY_ATTNAMES, [values[name] for name in _KEY_ATTNAMES])
    found.gym = gym
    if found.last_used_at is None or now - found.last_used_at > KEY_USE_RECORDED_EVERY:
        _key_use_record(found, now)
    return gym, found


def _key_use_record(key: GymKey, now: datetime) -> None:
    """Best effort: a database that refuses the write (read-only, busy) still answers the request
    as it can, and says what is wrong there."""
    try:
        with transaction.atomic():
            GymKey.objects.filter(pk=key.pk).update(last_used_at=now)
    except DatabaseError:
        logger.info("The last use of key %s was not recorded: the database refused the write", key.pk)


_GYM_ATTNAMES = [field.attname for field in Gym._meta.concrete_fields]
_KEY_ATTNAMES = [field.attname for field in GymKey._meta.concrete_fields]
_KEY_COLUMNS = (*_KEY_ATTNAMES, *(f"gym__{name}" for name in _GYM_ATTNAMES))
_KEY = Prepared(lambda key_hash: GymKey.objects.filter(key_hash=key_hash).order_by().values_list(*_KEY_COLUMNS))


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


# Events on one page of a member's timeline (a member may have hundreds).
TIMELINE_PAGE_SIZE = 50


@dataclass(frozen=True)
class ReferralInForce:
    """A referral in force when an event was judged: since when, by which rule."""

    since: datetime
    rule_name: str
    event: Event


@dataclass
class TimelineEntry:
    """One event of a member's timeline with the advice judging it produced (current advice most
    urgent first, then withdrawn advice) and the referral in force when it was judged."""

    event: Event
    advice: list[Advice] = field(default_factory=list)
    referral: ReferralInForce | None = None


def member_timeline(*, member: Member, page: int | str = 1, per_page: int = TIMELINE_PAGE_SIZE) -> Page:
    """One page of the member's events, newest first (ties in the reverse of judging order), as
    ``TimelineEntry`` objects; a page number out of range gives the last page."""
    events = member.events.select_related("gym").order_by("-occurred_at", "-external_id")
    timeline = Paginator(events, per_page).get_page(page)
    shown = list(timeline.object_list)
    produced: dict[int, list[Advice]] = defaultdict(list)
    advice = Advice.objects.filter(event__in=shown).select_related("withdrawn_by", "trigger")
    for piece in sorted(advice, key=lambda a: (a.withdrawn_at is not None, *advice_order(a))):
        produced[piece.event_id].append(piece)
    in_force = _referrals_in_force(member=member)
    timeline.object_list = [
        TimelineEntry(event=event, advice=produced.get(event.pk, []), referral=in_force.get(event.pk))
        for event in shown
    ]
    return timeline


def member_timeline_page_of(*, member: Member, event_id: Any, per_page: int = TIMELINE_PAGE_SIZE) -> int:
    """The page of the member's timeline (newest first) that shows the event ``event_id`` (1 when
    the member has no such event)."""
    event = member.events.filter(pk=event_id).first() if str(event_id).isdigit() else None
    if event is None:
        return 1
    newer = member.events.filter(
        Q(occurred_at__gt=event.occurred_at) | Q(occurred_at=event.occurred_at, external_id__gt=event.external_id)
    ).count()
    return newer // per_page + 1


def _referrals_in_force(*, member: Member) -> dict[int, ReferralInForce]:
    """For each of the member's events, the referral in force when it was judged (after a
    clearance on the event itself, before a referral it starts), replayed from the stored advice
    as the decision policy remembers it."""
    stored: dict[int, list[Advice]] = defaultdict(list)
    for advice in Advice.objects.filter(member=member, withdrawn_at__isnull=True).order_by("id"):
        stored[advice.event_id].append(advice)
    if not any(advice.refers for pieces in stored.values() for advice in pieces):
        return {}
    events = list(member.events.order_by("occurred_at", "external_id"))
    by_pk = {event.pk: event for event in events}
    state, policy = DecisionState(), ruleset_live().policy
    in_force: dict[int, ReferralInForce] = {}
    for event in events:
        referral = state.step(replay_fact(event), given_of(stored.get(event.pk, ())), policy=policy)
        if referral is not None:
            in_force[event.pk] = ReferralInForce(
                since=referral.since, rule_name=referral.rule_name, event=by_pk[int(referral.fact_id)]
            )
    return in_force


@dataclass(frozen=True)
class HeldBackNow:
    """What judging a member's events again with the live rules holds back, per event."""

    version: int
    by_event: dict[int, list[HeldBack]]


def member_held_back(*, member: Member) -> HeldBackNow:
    """Judge the member's events again, in memory, with the live rules (nothing is stored) and
    say, per event, which advice the decision policy held back and why. Production keeps no
    record of held-back advice; this recomputes it, so it costs one evaluation of the member's
    whole history (callers offer it on request)."""
    events = member_events(member)
    decisions = timeline_judge(facts=member_facts(events))
    version = decisions[-1].version if decisions else 0
    return HeldBackNow(
        version=version,
        by_event={event.pk: d.held_back for event, d in zip(events, decisions, strict=True) if d.held_back},
    )


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
    active: bool = False,
    now: datetime | None = None,
) -> QuerySet[Advice]:
    """``active``: only the advice to show now, current advice whose rule's display period (in
    the live version) has not passed since its event."""
    advice = _advice_filtered(
        Advice.objects.filter(member=member), since=since, severity=severity, category=category, withdrawn=withdrawn
    )
    return advice.filter(_shown_now(now or timezone.now())) if active else advice


def _shown_now(now: datetime) -> Q:
    """Advice whose rule's display period has not passed at ``now``: rules grouped by their
    period, one condition each; a rule the live version no longer holds keeps the default."""
    periods = display_days_live()
    by_days: dict[int, list[str]] = {}
    for key, days in periods.items():
        by_days.setdefault(days, []).append(key)
    shown = Q(withdrawn_at__isnull=True) & ~Q(rule_key__in=list(periods))
    shown &= Q(occurred_at__gte=now - timedelta(days=DISPLAY_DEFAULT_DAYS))
    for days, keys in by_days.items():
        recent = Q(rule_key__in=keys, withdrawn_at__isnull=True)
        shown |= recent if days == 0 else recent & Q(occurred_at__gte=now - timedelta(days=days))
    return shown


WATERMARK_PREFIX = "w1."


def watermark_encode(changed_at: datetime, advice_id: int) -> str:
    """Where a copy kept in step has got to: the last change applied (its moment and advice id)."""
    text = f"{changed_at.astimezone(UTC).isoformat()}|{advice_id}"
    return WATERMARK_PREFIX + urlsafe_b64encode(text.encode()).decode().rstrip("=")


def watermark_decode(token: str) -> tuple[datetime, int] | None:
    """The (moment, advice id) of a watermark ``watermark_encode`` wrote, or None."""
    if not token.startswith(WATERMARK_PREFIX):
        return None
    body = token[len(WATERMARK_PREFIX) :]
    try:
        moment, _, advice_id = urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().partition("|")
        parsed = datetime.fromisoformat(moment)
        number = int(advice_id)
    except (ValueError, UnicodeDecodeError):
        return None
    if parsed.tzinfo is None or number < 0 or number > 2**63:
        return None
    return parsed, number


def feed_settled_before() -> datetime:
    """Changes are listed once this long has passed since them, so that a watermark never moves
    past a change whose transaction has not committed yet (``FEED_SETTLE_SECONDS``)."""
    return timezone.now() - timedelta(seconds=float(getattr(settings, "FEED_SETTLE_SECONDS", 5)))


def advice_changes_for_gym(*, gym: Gym, changed_since: datetime, after_id: int = 0) -> QuerySet[Advice]:
    """The gym's advice created or withdrawn after (``changed_since``, ``after_id``) and settled,
    oldest change first (ties by id)."""
    after = Q(changed_at__gt=changed_since) | Q(changed_at=changed_since, pk__gt=after_id)
    return (
        Advice.objects.filter(gym=gym, changed_at__lte=feed_settled_before())
        .filter(after)
        .select_related("member", "event", "withdrawn_by")
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


def advice_for_event(*, event: Event) -> list[Advice]:
    """The event's current advice, most urgent first, and any its late arrival gave later events."""
    return advice_for_events(events=[event])[event.pk]


def advice_for_events(*, events: Collection[Event]) -> dict[int, list[Advice]]:
    """``advice_for_event`` for each of ``events`` (by primary key), in one query."""
    pks = {event.pk for event in events}
    by_event: dict[int, list[Advice]] = {pk: [] for pk in pks}
    current = Advice.objects.filter(withdrawn_at__isnull=True).filter(Q(event__in=pks) | Q(trigger__in=pks))
    for advice in current.select_related("member", "event", "withdrawn_by"):
        for pk in {advice.event_id, advice.trigger_id} & pks:
            by_event[pk].append(advice)
    for advice in by_event.values():
        advice.sort(key=advice_order)
    return by_event


def advice_withdrawn_by(*, events: Collection[Event]) -> dict[int, list[Advice]]:
    """The advice each of ``events`` withdrew by arriving late (by primary key), in one query."""
    pks = {event.pk for event in events}
    by_event: dict[int, list[Advice]] = {pk: [] for pk in pks}
    for advice in Advice.objects.filter(withdrawn_by__in=pks).select_related("member", "event", "withdrawn_by"):
        by_event[advice.withdrawn_by_id].append(advice)
    return by_event


def member_list(*, gym: Gym, under_referral: bool | None = None) -> QuerySet[Member]:
    """The gym's members with their first and last event and how much current advice they have."""
    members = Member.objects.filter(gym=gym).select_related("referral_event")
    if under_referral is not None:
        members = members.filter(referral_since__isnull=not under_referral)
    current = Advice.objects.filter(member=OuterRef("pk"), withdrawn_at__isnull=True).values("member")
    events = Event.objects.filter(member=OuterRef("pk")).order_by()
    return members.annotate(
        first_event_at=Subquery(events.order_by("occurred_at").values("occurred_at")[:1]),
        last_event_at=Subquery(events.order_by("-occurred_at").values("occurred_at")[:1]),
        current_advice=Coalesce(Subquery(current.annotate(n=Count("id")).values("n")), 0),
    )


def advice_of_gym(*, gym: Gym, advice_id: int) -> Advice | None:
    """One of the gym's pieces of advice (another gym's is as absent as one that never existed)."""
    return Advice.objects.filter(gym=gym, pk=advice_id).select_related("member", "event", "withdrawn_by").first()


def advice_by_uuids(*, gym: Gym, uuids: Collection[Any]) -> dict[str, Advice]:
    """The gym's advice with these card uuids, by uuid."""
    return {str(a.uuid): a for a in Advice.objects.filter(gym=gym, uuid__in=list(uuids))}


@dataclass(frozen=True)
class Health:
    """What ``/healthz`` answers: the body, and how long a client should wait when degraded."""

    body: dict[str, Any]
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.body["status"] == "ok"


def health_check(*, version: str) -> Health:
    """Whether the product can do its work: the database takes writes, the live rule set loads,
    and no event waits for its evaluation."""
    from .internal.db.database import OK, PROBLEM_WORDS, READ_ONLY, RETRY_AFTER, UNAVAILABLE, database_write_status

    body: dict[str, Any] = {"status": "ok", "database": "ok", "ruleset_version": None, "version": version}
    database = database_write_status()
    if database != OK:
        body.update(
            status="degraded",
            database=READ_ONLY if database == READ_ONLY else UNAVAILABLE,
            detail=PROBLEM_WORDS[database],
        )
        return Health(body, retry_after=RETRY_AFTER[database])
    try:
        body["ruleset_version"] = ruleset_live().version
    except Exception:
        logger.exception("The live ruleset does not load")
        body.update(status="degraded", ruleset="error")
        return Health(body)
    pending = evaluations_pending_count()
    if pending:
        body.update(status="degraded", pending_evaluations=pending)
    return Health(body)
