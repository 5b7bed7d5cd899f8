"""The set-based ingest: one or many events, of one or many members, in a few statements.

1. Read, without a lock: the events the request names (repeats) and every touched member's
   events, in one query; their members' rows come with them.
2. Judge, without a lock: each member's figures in memory, every member's new events in one
   engine call, the one decision policy, and the difference with the stored advice. An event
   later than all of its member's others is judged from the policy's memory kept on the
   member's row; otherwise the member's current advice is read (one query for all of them).
3. Write, holding the write lock only now: each member moves to its next revision if it is
   still at the one read in 1, then the events, the advice, the withdrawals, the figures, in
   bulk. A member written by another request meanwhile makes the request start again at 1; after
   a few such attempts each member is judged under its lock (the classic path).

So the queries of a request grow with the members it touches, not with its events, and the
result is exactly what judging each event in time order gives (the same policy, the same
comparison with stored advice as ``coaching.evaluation.member_judge``).
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import Case, F, JSONField, QuerySet, Value, When
from django.db.models.functions import Cast

from rules.evaluation import (
    DecisionState,
    HistoryShort,
    LiveRuleset,
    live_version_expression,
    ruleset_live,
    ruleset_loaded,
    timelines_judge,
)

from . import metrics
from .bulk import objects_insert, rows_update
from .catalog import FIGURE_NAMES, PROFILE
from .database import database_unavailable
from .evaluation import (
    MEMBER_STATE_FORGOTTEN,
    Plan,
    advice_order,
    event_fact,
    event_order,
    fact_id,
    figures_state_load,
    history_start,
    judging_start,
    member_current_advice,
    member_facts,
    member_plan,
    member_state_values,
    plan_apply,
    policy_state_load,
    prior_state,
)
from .figures import History
from .jsontext import json_field_loader
from .logs import log_context, log_context_add
from .models import EARLIEST, Advice, Event, Gym, Member
from .prepared import Prepared
from .services import advice_for_events, advice_withdrawn_by, event_build
from .validation import CleanEvent

logger = logging.getLogger("coaching.evaluation")  # where evaluation failures are logged


@dataclass
class Answer:
    status: int  # 201 new, 200 identical repeat, 409 conflicting repeat
    event: Event
    advice: list[Advice] = field(default_factory=list)
    withdrawn: list[Advice] = field(default_factory=list)


# The columns read: what judging and answering use (the stored figures are decoded only where
# used: history facts judged from a member's kept state, events judged again).
_EVENT_FIELDS = [f for f in Event._meta.concrete_fields if f.name not in ("received_at", "recorded_by")]
_MEMBER_FIELDS = [f for f in Member._meta.concrete_fields if f.name not in ("profile", "created_at")]
_EVENT_ATTNAMES = [field.attname for field in _EVENT_FIELDS]
# What judging reads of a stored event, by position in its row.
_EVENT_READ = {
    name: _EVENT_ATTNAMES.index(name)
    for name in ("id", "member_id", "external_id", "type", "occurred_at", "utc_offset_minutes", "data")
    + ("content_hash", "evaluated", "evaluation_error")
}


_FIGURES = _EVENT_ATTNAMES.index("figures")
_FIGURES_FIELD = Event._meta.get_field("figures")
_FIGURES_LOAD = json_field_loader(_FIGURES_FIELD) or _FIGURES_FIELD.from_db_value
# Every column but the figures is converted on reading.
_CONVERTED = [position for position in range(len(_EVENT_FIELDS)) if position != _FIGURES]


class _Stored:
    """A stored event as judging reads it. The model instance is made only for the events judged
    again and for repeats (answered): building one for every event of every touched member took
    a sixth of an array's time, and most of them are only history."""

    __slots__ = ("values", "member", "_figures", *(name for name in ("pk", *_EVENT_READ)))

    def __init__(self, values: Sequence[Any], member: Member) -> None:
        self.values, self.member = values, member
        self._figures: Any = _NOT_READ
        self.pk = values[0]
        for name, position in _EVENT_READ.items():
            setattr(self, name, values[position])

    @property
    def figures(self) -> dict[str, Any]:
        if self._figures is _NOT_READ:
            self._figures = _FIGURES_LOAD(self.values[_FIGURES], None, connections[Event.objects.db])
        return self._figures

    def event(self) -> Event:
        values = list(self.values)
        values[_FIGURES] = self.figures
        event = Event.from_db(Event.objects.db, _EVENT_ATTNAMES, values)
        event.member = self.member
        return event


_NOT_READ = object()


@dataclass
class _Member:
    """One touched member during an ingest."""

    key: str
    row: Member | None  # None: a new member
    stored: list[_Stored] = field(default_factory=list)  # its events, in judging order
    new: list[Event] = field(default_factory=list)
    plan: Plan | None = None
    error: str = ""
    seconds: float | None = None  # its share of a batched engine call
    # The running state of its figures: as kept on its row, when its new events are judged from
    # it (on time, the state current); after judging, as it is after its last event.
    history: History | None = None
    vouched: bool = False  # its stored figures are all current (the state kept is)

    @property
    def revision(self) -> int:
        """The revision judged: the member's as read (a new member's first is 0)."""
        return self.row.revision if self.row is not None else 0

    @property
    def events(self) -> list[Event | _Stored]:
        return sorted(self.stored + self.new, key=event_order)


# A member's columns, its kept state (large) last: it comes once per member, on a row of its
# own, not on each of its events' rows.
_MEMBER_FIELDS = [f for f in _MEMBER_FIELDS if f.name != "policy_state"] + [Member._meta.get_field("policy_state")]
# Model.from_db takes the values in the model's order of fields.
_MEMBER_IN_MODEL_ORDER = sorted(range(len(_MEMBER_FIELDS)), key=lambda i: _MEMBER_FIELDS[i].creation_counter)
_MEMBER_ATTNAMES = [_MEMBER_FIELDS[i].attname for i in _MEMBER_IN_MODEL_ORDER]
_MEMBER_SLICE = slice(len(_EVENT_FIELDS), len(_EVENT_FIELDS) + len(_MEMBER_FIELDS))
_LIVE_VERSION = _MEMBER_SLICE.stop
_EVENT_ROW_COLUMNS = (
    *(field.name for field in _EVENT_FIELDS),
    *(f"member__{field.name}" for field in _MEMBER_FIELDS[:-1]),
    "no_policy_state",
    "live_version",
)


def _touched(gym_id: int, ids: list[str], keys: list[str], *, figures: bool) -> QuerySet:
    """The repeats among the request's events, each with its member's columns (but its kept
    state), the touched members' events (their member's columns empty) and the touched members'
    rows with their kept state (on rows of their own, the event's columns empty); every row
    with the live version's number. A repeat of a touched member's event comes twice. Three
    queries in one (UNION ALL), each on its own index: in one WHERE, an OR over the events' two
    made PostgreSQL read every event of the gym; and the kept state repeated on each event's row
    took PostgreSQL half of the read.

    Without ``figures`` the stored figures of a touched member's events come only where its
    row keeps no state (``read_from`` the earliest: all of them are read and checked): a member
    judged from its kept state needs none unless the live rules' patterns read one, and they
    were three fifths of the bytes read. A repeat's own row (from the first query) has them."""

    def events(*, touched: bool, **condition: Any) -> QuerySet:
        # A typed NULL: in a UNION, PostgreSQL takes an untyped one of two branches for text.
        columns = _EVENT_ROW_COLUMNS
        annotations = {"live_version": live_version_expression(), "no_policy_state": Cast(Value(None), JSONField())}
        if touched:  # its member's columns come on the member's own row
            nulls = {f"no_member_{field.attname}": _null(field) for field in _MEMBER_FIELDS[:-1]}
            annotations = {**nulls, **annotations}
            columns = (*(field.name for field in _EVENT_FIELDS), *nulls, "no_policy_state", "live_version")
            if not figures:
                annotations["figures_read"] = Case(
                    When(member__read_from=EARLIEST, then=F("figures")), default=Cast(Value(None), JSONField())
                )
                columns = tuple("figures_read" if column == "figures" else column for column in columns)
        return Event.objects.filter(**condition).annotate(**annotations).order_by().values_list(*columns)

    repeats = events(touched=False, gym_id=gym_id, external_id__in=ids)
    # Each member's events from its read_from on: the window its kept state needs, or all.
    members_events = events(
        touched=True,
        member__gym_id=gym_id,
        member__external_id__in=keys,
        occurred_at__gte=F("member__read_from"),
    )
    # Columns in the events' order: all named as annotations, which keep the order given.
    columns = {f"no_{field.attname}": _null(field) for field in _EVENT_FIELDS}
    columns.update({f"member_{field.attname}": F(field.attname) for field in _MEMBER_FIELDS})
    columns["live_version"] = live_version_expression()
    members = (
        Member.objects.filter(gym_id=gym_id, external_id__in=keys).annotate(**columns).order_by().values_list(*columns)
    )
    return repeats.union(members_events, members, all=True).order_by("occurred_at", "external_id")


def _member(db: str, row: Sequence[Any]) -> Member:
    values = row[_MEMBER_SLICE]
    return Member.from_db(db, _MEMBER_ATTNAMES, [values[i] for i in _MEMBER_IN_MODEL_ORDER])


def _null(field: Any) -> Value:
    """A NULL of ``field``'s type (a key's: its target's)."""
    return Value(None, output_field=field.target_field if field.is_relation else field)


_TOUCHED = Prepared(functools.partial(_touched, figures=True), lists=("ids", "keys"))
_TOUCHED_NO_FIGURES = Prepared(functools.partial(_touched, figures=False), lists=("ids", "keys"))


def _whole(member_ids: list[int]) -> QuerySet:
    """Every event of the members, for those whose kept state cannot judge their new events."""
    events = Event.objects.filter(member_id__in=member_ids).order_by("occurred_at", "external_id")
    return events.values_list(*(field.name for field in _EVENT_FIELDS))


_WHOLE = Prepared(_whole, lists=("member_ids",))


class _Retry(Exception):
    """A member changed (or appeared) since it was read: read and judge the request again."""


ATTEMPTS = 3  # reads and judgings before a request that meets concurrent writes goes classic


def events_ingest_set(*, gym: Gym, cleans: Sequence[CleanEvent], content_hash: Any) -> list[Answer] | None:
    """Ingest valid events of ``gym``: an answer per clean event, in their order.

    Returns None when a touched member has an evaluation to complete, or when concurrent
    writes to its members got in the way of every attempt; the caller then takes the classic
    path (per member, under its lock), which gives the same result. A request that meets one
    concurrent write (another request for the same member) is read and judged again: the
    classic path costs several times as many queries.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _ingest_once(gym=gym, cleans=cleans, content_hash=content_hash)
        except _Retry:
            metrics.ingest_conflict(then="again" if attempt < ATTEMPTS else "classic")
    return None


def _ingest_once(*, gym: Gym, cleans: Sequence[CleanEvent], content_hash: Any) -> list[Answer] | None:
    """One attempt: raises _Retry when a member changed (or appeared) since it was read."""
    ids = {clean.external_id for clean in cleans}
    keys = {clean.member for clean in cleans}
    # One round trip: the repeats, the touched members' events and rows, the live version. The
    # stored figures only if the version this process knows reads them (checked below).
    likely = ruleset_loaded()
    figures = likely is None or bool(FIGURE_NAMES & likely.history_fields)
    touched_query = _TOUCHED if figures else _TOUCHED_NO_FIGURES
    rows, compiled = touched_query.fetch(gym_id=gym.pk, ids=sorted(ids), keys=sorted(keys))
    live_version = rows[0][_LIVE_VERSION] if rows else None
    db = Event.objects.db
    members: dict[str, _Member] = {}
    by_pk: dict[int, Member] = {}
    member_columns = range(_MEMBER_SLICE.start, _MEMBER_SLICE.stop)
    for row in touched_query.converted([row for row in rows if row[0] is None], compiled, member_columns):
        member = _member(db, row)
        by_pk[member.pk] = member
        members[member.external_id] = _Member(member.external_id, member)
    # Each event row is an event's columns, then its member's (on a repeat's row only: read for
    # a repeat's member that is not a touched one), then the live version's number.
    read: dict[int, _Stored] = {}
    repeats: list[_Stored] = []
    for row in touched_query.converted([row for row in rows if row[0] is not None], compiled, _CONVERTED):
        event = read.get(row[0])
        if event is not None:  # a repeat of a touched member's event, on its second row
            if event.values[_FIGURES] is None:
                event.values[_FIGURES] = row[_FIGURES]  # the repeat's own row has its figures
            continue
        member_id = row[_EVENT_READ["member_id"]]
        member = by_pk.get(member_id)
        if member is None:  # a repeat's member, not touched: its kept state is not read
            member_row = touched_query.converted([row], compiled, member_columns)[0]
            member = by_pk[member_id] = _member(db, member_row)
        event = read[row[0]] = _Stored(row[: _MEMBER_SLICE.start], member)
        if event.external_id in ids:
            repeats.append(event)
        touched = members.get(member.external_id) if member.external_id in keys else None
        if touched is not None:
            touched.stored.append(event)
    known: dict[str, Event] = {event.external_id: event.event() for event in repeats}
    for key in keys - members.keys():  # new members
        members[key] = _Member(key, None)

    answers: list[Answer] = []
    for clean in cleans:
        touched = members[clean.member]
        digest = content_hash(clean)
        event = known.get(clean.external_id)
        if event is not None:
            answers.append(Answer(200 if event.content_hash == digest else 409, event))
            continue
        event = event_build(gym=gym, member=touched.row, clean=clean, content_hash=digest, evaluated=True)
        known[clean.external_id] = event
        touched.new.append(event)
        answers.append(Answer(201, event))
    if any(not event.evaluated for touched in members.values() for event in touched.stored):
        return None  # a member with an evaluation to complete: the classic path judges it whole

    # In the order of the members' ids: concurrent requests lock shared members in one order.
    judging = sorted((m for m in members.values() if m.new), key=lambda m: m.key)
    live = ruleset_live(live_version)
    if not figures and FIGURE_NAMES & live.history_fields:
        raise _Retry  # a version whose patterns read figures was published: read them
    if not _histories_complete(judging, live.history_window):
        return None
    _judge(judging, live)
    try:
        with transaction.atomic():
            _write(gym, judging)
    except IntegrityError as exc:  # a member or event stored by a concurrent request meanwhile
        if database_unavailable(exc):
            raise
        raise _Retry from exc
    new_events = [event for m in judging for event in m.new]
    metrics.events_stored(new_events)
    metrics.evaluations_observed([m.seconds for m in judging if m.seconds is not None])
    for touched in judging:
        if touched.plan is not None and logger.isEnabledFor(logging.DEBUG):
            with log_context(member=touched.key):
                logger.debug(
                    "Judged %d events of member %s: %d advice given, %d withdrawn",
                    len(touched.plan.decisions),
                    touched.key,
                    len(touched.plan.creating),
                    len(touched.plan.withdrawn),
                )
    for touched in judging:
        if touched.plan is not None:
            metrics.advice_changed(created=touched.plan.creating, withdrawn=touched.plan.withdrawn)
    _answers_fill(answers, judging)
    return answers


def _histories_complete(judging: list[_Member], window: timedelta) -> bool:
    """Whether each member's new events are judged from the state kept on its row (on time, the
    state current, the events read reaching back over the live rules' window); the others get
    their whole history read, in one query. False: one of those has an evaluation to complete."""
    partial = []
    for touched in judging:
        row = touched.row
        if row is None:
            continue
        kept = figures_state_load(row, touched.stored)
        first_new = min(touched.new, key=event_order)
        if (
            kept is not None
            and event_order(first_new) > event_order(touched.stored[-1])
            and first_new.occurred_at - window >= row.read_from
        ):
            touched.history = kept
            continue
        touched.vouched = kept is not None
        if row.read_from > EARLIEST:
            partial.append(touched)
    if partial:
        by_pk = {touched.row.pk: touched for touched in partial}
        rows, compiled = _WHOLE.fetch(member_ids=sorted(by_pk))
        for touched in partial:
            touched.stored = []
        for row in _WHOLE.converted(rows, compiled, _CONVERTED):
            touched = by_pk[row[_EVENT_READ["member_id"]]]
            touched.stored.append(_Stored(row, touched.row))
    return all(event.evaluated for touched in partial for event in touched.stored)


def _judge(judging: list[_Member], live: LiveRuleset) -> None:
    """Plan every touched member's judging: figures, one engine call, the policy, the diff."""
    window = live.history_window
    timelines = []
    needs_advice = []
    for touched in judging:
        events = touched.events
        since = event_order(min(touched.new, key=event_order))
        start = judging_start(events, since)
        # Figures are made for the events judged and those the engine can look back to within the
        # live version's window; the older ones are only counted (or, from a kept state, not read).
        first = history_start(events, start, window)
        # Where the stored figures are not known to be current, they are all checked.
        checked = start if touched.history is not None or touched.vouched else 0
        first = min(first, checked)
        # The events judged again and checked are compared with, and their advice refers to, stored rows.
        events[checked:] = [event.event() if isinstance(event, _Stored) else event for event in events[checked:]]
        state = _memory(touched, events[:start]) if touched.row is not None else DecisionState()
        if state is None:
            needs_advice.append(touched)
        timelines.append([touched, events, start, state, first, checked])
    current = member_current_advice([t.row.pk for t in needs_advice]) if needs_advice else {}
    for entry in timelines:
        touched, events, start, state = entry[:4]
        if state is None:
            entry[3] = prior_state(events[:start], current.get(touched.row.pk, {}), policy=live.policy)
    # The facts before the judged ones carry their figures only when the live rules' patterns
    # read one (the default pack's read only the events' own fields).
    with_figures = bool(FIGURE_NAMES & live.history_fields)
    omitted = frozenset() if with_figures else FIGURE_NAMES
    prepared = []
    for touched, events, start, state, first, checked in timelines:
        if touched.history is not None:  # judged from the kept state: the history facts as stored
            facts = [event_fact(event, event.figures if with_figures else {}) for event in events[first:start]]
            facts += member_facts(events[start:], history=touched.history)
        elif with_figures or checked < start:
            touched.history = History()
            facts = member_facts(events, first=first, history=touched.history)
        else:
            touched.history = History()
            for event in events[:start]:
                touched.history.add(event)
            facts = [event_fact(event, {}) for event in events[first:start]]
            facts += member_facts(events[start:], history=touched.history)
        prepared.append((touched, events[first:], facts, start - first, state, checked - first))
    started = time.perf_counter()
    try:
        judged = timelines_judge(
            [(facts, start, state) for _t, _e, facts, start, state, _c in prepared],
            live_version=live.version,
            history_covered=window,
            history_omits=omitted,
        )
        for touched in judging:  # observed once written: a request judged again is counted once
            touched.seconds = (time.perf_counter() - started) / len(prepared)
    except HistoryShort as exc:  # a version looking further back was published meanwhile
        raise _Retry from exc
    except Exception as exc:
        if database_unavailable(exc):
            raise
        judged = _judge_one_by_one(prepared, window, omitted)
    for (touched, events, facts, start, state, checked), decisions in zip(prepared, judged, strict=True):
        if decisions is None:
            continue  # the engine failed for this member: its events are stored, waiting
        if decisions:
            log_context_add(ruleset_version=decisions[-1].version)
        cause = min(touched.new, key=event_order)
        member_advice = current.get(touched.row.pk, {}) if touched.row is not None else {}
        touched.plan = member_plan(
            member=touched.row,
            events=events,
            facts=facts,
            start=start,
            decisions=decisions,
            state=state,
            current=member_advice,
            cause=cause,
            fresh={fact_id(event) for event in touched.new},
            history=touched.history,
            window=window,
            check_from=checked,
        )


def _memory(touched: _Member, before: Sequence[Event]) -> DecisionState | None:
    """The policy's memory after ``before`` from the member's row, when the judging starts
    after all of its stored events (an on-time event); None: read from the stored advice."""
    if len(before) != len(touched.stored):
        return None
    if not before:
        return DecisionState()
    return policy_state_load(touched.row, before)


def _judge_one_by_one(prepared: list, window: timedelta, omitted: frozenset[str]) -> list:
    """After a failed batch: each member on its own, so that one member's failure (recorded on
    its events) never stops the others."""
    judged = []
    for touched, _events, facts, start, state, _checked in prepared:
        try:
            with metrics.evaluation_timed():
                judged.append(
                    timelines_judge([(facts, start, state)], history_covered=window, history_omits=omitted)[0]
                )
        except HistoryShort as exc:
            raise _Retry from exc
        except Exception as exc:
            if database_unavailable(exc):
                raise
            with log_context(member=touched.key):
                logger.exception("Evaluation of member %s failed", touched.key)
            touched.error = f"{type(exc).__name__}: {exc}"[:10000]
            judged.append(None)
    return judged


def _write(gym: Gym, judging: list[_Member]) -> None:
    """The writes, in one transaction: members first (each moved to its next revision, which
    locks its row: the classic path locks a member before its events too, so the two never wait
    on each other in a circle), then events, advice, withdrawals, figures."""
    fresh = [m for m in judging if m.row is None]
    if fresh:
        created = [Member(gym=gym, external_id=m.key) for m in fresh]
        objects_insert(created)
        for touched, row in zip(fresh, created, strict=True):
            touched.row = row
            for event in touched.new:
                event.member = row
            if touched.plan is not None:
                touched.plan.member = row
                for advice in touched.plan.creating:
                    advice.member = row
    referred: dict[str, Event] = {}  # by member: a referral that starts on an event stored below
    advancing = []
    for touched in judging:  # in the members' key order, as every ingest takes them
        values: dict[str, Any] = {"revision": touched.revision + 1}
        if touched.plan is not None:
            values.update(member_state_values(touched.plan))
            referral = touched.plan.referral
            on = touched.plan.by_fact.get(referral.fact_id) if referral is not None else None
            if on is not None and on.pk is None:
                referred[touched.key] = on
        else:  # its evaluation failed: the next one reads and counts its whole history
            values.update(MEMBER_STATE_FORGOTTEN)
        advancing.append((touched, values))
    _members_advance(advancing)
    events = []
    for touched in judging:
        if touched.error:
            for event in touched.new:
                event.evaluated, event.evaluation_error = False, touched.error
        events.extend(touched.new)
    objects_insert(events)
    # The members are locked (advanced above) and at the revision just written.
    profiled = [m for m in judging if any(event.type == PROFILE for event in m.new)]
    _members_set(profiled, "profile", lambda m: dict(m.history.profile))
    _members_set([m for m in judging if m.key in referred], "referral_event_id", lambda m: referred[m.key].pk)
    plans = [m.plan for m in judging if m.plan is not None]
    for plan in plans:  # withdrawals first: a replacement must not meet the advice it replaces
        plan_apply(plan, create=False)
    creating = [advice for plan in plans for advice in plan.creating]
    objects_insert(creating)
    for touched in judging:
        if touched.error:
            later = Event.objects.filter(member=touched.row, occurred_at__gte=min(e.occurred_at for e in touched.new))
            later.update(evaluated=False, evaluation_error=touched.error)


def _members_advance(advancing: list[tuple[_Member, dict[str, Any]]]) -> None:
    """Move each member to its next revision with its new columns, in the order given, if it is
    still at the revision that was judged: a concurrent write to one since then makes it 0 rows,
    and the request is read and judged again (``_Retry``).

    In one statement (``coaching.bulk.rows_update``) for the members writing the same columns
    (all but those whose evaluation failed), not a queryset's update each: for an array
    touching 200 members that compiled 200 updates, a fifth of the array's time.
    """
    # Runs of members with the same columns to write, in the order given.
    for names, group in itertools.groupby(advancing, key=lambda item: tuple(item[1])):
        rows = [(touched.row.pk, touched.revision, [values[name] for name in names]) for touched, values in group]
        if rows_update(Member, names, rows, guard="revision") != len(rows):
            raise _Retry


def _members_set(advanced: list[_Member], name: str, value: Callable[[_Member], Any]) -> None:
    """Set one more column of members advanced by ``_members_advance`` in this transaction (so
    locked, at the revision written): one statement for all of them."""
    rows = [(touched.row.pk, touched.revision + 1, [value(touched)]) for touched in advanced]
    if rows_update(Member, [name], rows, guard="revision") != len(rows):
        raise _Retry  # cannot happen while the rows are locked; never write half of it


def _answers_fill(answers: list[Answer], judging: list[_Member]) -> None:
    """Each new event's advice and withdrawals from memory; repeats' from the database."""
    created_for: dict[int, list[Advice]] = defaultdict(list)
    withdrawn_by: dict[int, list[Advice]] = defaultdict(list)
    for touched in judging:
        plan = touched.plan
        if plan is None:
            continue
        for advice in plan.creating:
            created_for[id(advice.event)].append(advice)
            if advice.trigger is not None:
                created_for[id(advice.trigger)].append(advice)
        if plan.cause is not None:
            withdrawn_by[id(plan.cause)].extend(plan.withdrawn)
    repeats = [answer.event for answer in answers if answer.status != 201]
    if repeats:
        stored_advice = advice_for_events(events=repeats)
        stored_withdrawn = advice_withdrawn_by(events=repeats)
    for answer in answers:
        if answer.status == 201:
            answer.advice = sorted(created_for[id(answer.event)], key=advice_order)
            answer.withdrawn = withdrawn_by[id(answer.event)]
        else:
            answer.advice = stored_advice[answer.event.pk]
            answer.withdrawn = stored_withdrawn[answer.event.pk]
