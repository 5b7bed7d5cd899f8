"""Step 1 of the pipeline: read what judging needs, into named types.

One round trip (``touched_read``) gives the events a request names (its repeats), every
touched member's row with its kept state, each touched member's events from the moment its
kept state needs, and the live version's number. ``histories_read`` reads members' whole
histories where the kept state cannot judge their new events; ``members_lock`` locks members'
rows first, for the locked mode.
"""

from __future__ import annotations

import functools
import operator
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connections
from django.db.models import Case, F, JSONField, QuerySet, Value, When
from django.db.models.functions import Cast

from rules.evaluation import live_version_expression

from ..internal.db.jsontext import json_field_loader
from ..internal.db.prepared import Prepared
from ..models import EARLIEST, Advice, Event, Gym, Member

# The columns read of an event: what judging and answering use.
_EVENT_FIELDS = [f for f in Event._meta.concrete_fields if f.name not in ("received_at", "recorded_by")]
_EVENT_ATTNAMES = [f.attname for f in _EVENT_FIELDS]
# A member's columns, its kept state (large) last: it comes once per member, on a row of its own.
_MEMBER_FIELDS = [f for f in Member._meta.concrete_fields if f.name not in ("profile", "created_at", "kept_state")]
_MEMBER_FIELDS.append(Member._meta.get_field("kept_state"))
_MEMBER_ATTNAMES_IN_MODEL_ORDER = [f.attname for f in sorted(_MEMBER_FIELDS, key=lambda f: f.creation_counter)]
_FIGURES_FIELD = Event._meta.get_field("figures")
_FIGURES_LOAD = json_field_loader(_FIGURES_FIELD) or _FIGURES_FIELD.from_db_value


class _Layout:
    """Where each part of a row of ``touched_read`` is: an event's columns, then its member's,
    then the live version's number."""

    events = slice(0, len(_EVENT_FIELDS))
    member = slice(len(_EVENT_FIELDS), len(_EVENT_FIELDS) + len(_MEMBER_FIELDS))
    live_version = len(_EVENT_FIELDS) + len(_MEMBER_FIELDS)
    event_id = _EVENT_ATTNAMES.index("id")
    member_id = _EVENT_ATTNAMES.index("member_id")
    figures = _EVENT_ATTNAMES.index("figures")

    def member_of(self, db: str, row: Sequence[Any]) -> Member:
        values = dict(zip((f.attname for f in _MEMBER_FIELDS), row[self.member], strict=True))
        return Member.from_db(db, _MEMBER_ATTNAMES_IN_MODEL_ORDER, [values[n] for n in _MEMBER_ATTNAMES_IN_MODEL_ORDER])


LAYOUT = _Layout()
# Every column but the figures is converted on reading: they are decoded only where used.
_CONVERTED = [position for position in range(len(_EVENT_FIELDS)) if position != LAYOUT.figures]
_MEMBER_COLUMNS = range(LAYOUT.member.start, LAYOUT.member.stop)
_NOT_READ = object()
# What a ``StoredEvent`` takes of its row, in the order of its attributes.
_STORED_READ = operator.itemgetter(
    *(
        _EVENT_ATTNAMES.index(name)
        for name in ("id", "member_id", "external_id", "type", "occurred_at", "utc_offset_minutes", "data")
        + ("content_hash", "evaluated", "evaluation_error")
    )
)


class StoredEvent:
    """A stored event as judging reads it. The model instance is made only for the events judged
    again and for repeats (answered): most events read are only history."""

    __slots__ = (
        "_figures",
        "content_hash",
        "data",
        "evaluated",
        "evaluation_error",
        "external_id",
        "member",
        "member_id",
        "occurred_at",
        "pk",
        "type",
        "utc_offset_minutes",
        "values",
    )

    def __init__(self, values: list[Any], member: Member) -> None:
        self.values, self.member, self._figures = values, member, _NOT_READ
        (
            self.pk,
            self.member_id,
            self.external_id,
            self.type,
            self.occurred_at,
            self.utc_offset_minutes,
            self.data,
            self.content_hash,
            self.evaluated,
            self.evaluation_error,
        ) = _STORED_READ(values)

    @property
    def figures(self) -> dict[str, Any]:
        if self._figures is _NOT_READ:
            self._figures = _FIGURES_LOAD(self.values[LAYOUT.figures], None, connections[Event.objects.db])
        return self._figures

    def event(self) -> Event:
        values = list(self.values)
        values[LAYOUT.figures] = self.figures
        event = Event.from_db(Event.objects.db, _EVENT_ATTNAMES, values)
        event.member = self.member
        return event


@dataclass
class TouchedRead:
    """What ``touched_read`` found: the touched members' rows (by the gym's id of the member), the
    repeats among the request's events, each touched member's events read (in judging order) and
    the live version's number."""

    live_version: int | None
    members: dict[str, Member] = field(default_factory=dict)
    repeats: list[StoredEvent] = field(default_factory=list)
    events: dict[str, list[StoredEvent]] = field(default_factory=lambda: defaultdict(list))


def _null(model_field: Any) -> Value:
    """A NULL of ``model_field``'s type (a key's: its target's)."""
    return Value(None, output_field=model_field.target_field if model_field.is_relation else model_field)


def _touched(gym_id: int, ids: list[str], keys: list[str], *, figures: bool) -> QuerySet:
    """The repeats among the request's events, each with its member's columns (but its kept
    state), the touched members' events (their member's columns empty) and the touched members'
    rows with their kept state (on rows of their own, the event's columns empty); every row
    with the live version's number. A repeat of a touched member's event comes twice. Three
    queries in one (UNION ALL), each on its own index: in one WHERE, an OR over the events' two
    made PostgreSQL read every event of the gym.

    Without ``figures`` the stored figures of a touched member's events come only where its
    row keeps no state (all of them are read and checked then): a member judged from its kept
    state needs none unless the live rules' patterns read one. A repeat's own row has them."""
    member_nulls = {f"no_member_{f.attname}": _null(f) for f in _MEMBER_FIELDS[:-1]}
    no_state = Cast(Value(None), JSONField())

    def events(*, touched: bool, **condition: Any) -> QuerySet:
        columns: tuple[str, ...] = (
            *(f.name for f in _EVENT_FIELDS),
            *(f"member__{f.name}" for f in _MEMBER_FIELDS[:-1]),
            "no_kept_state",
            "live_version",
        )
        annotations: dict[str, Any] = {"live_version": live_version_expression(), "no_kept_state": no_state}
        if touched:  # its member's columns come on the member's own row
            annotations = {**member_nulls, **annotations}
            columns = (*(f.name for f in _EVENT_FIELDS), *member_nulls, "no_kept_state", "live_version")
            if not figures:
                stored = When(member__read_from=EARLIEST, then=F("figures"))
                annotations["figures_read"] = Case(stored, default=no_state)
                columns = tuple("figures_read" if column == "figures" else column for column in columns)
        return Event.objects.filter(**condition).annotate(**annotations).order_by().values_list(*columns)

    repeats = events(touched=False, gym_id=gym_id, external_id__in=ids)
    # Each member's events from its read_from on: the window its kept state needs, or all.
    members_events = events(
        touched=True, member__gym_id=gym_id, member__external_id__in=keys, occurred_at__gte=F("member__read_from")
    )
    # Columns in the events' order: all named as annotations, which keep the order given.
    columns: dict[str, Any] = {f"no_{f.attname}": _null(f) for f in _EVENT_FIELDS}
    columns.update({f"member_{f.attname}": F(f.attname) for f in _MEMBER_FIELDS})
    columns["live_version"] = live_version_expression()
    members = (
        Member.objects.filter(gym_id=gym_id, external_id__in=keys).annotate(**columns).order_by().values_list(*columns)
    )
    return repeats.union(members_events, members, all=True).order_by("occurred_at", "external_id")


_TOUCHED = Prepared(functools.partial(_touched, figures=True), lists=("ids", "keys"))
_TOUCHED_NO_FIGURES = Prepared(functools.partial(_touched, figures=False), lists=("ids", "keys"))


def touched_read(*, gym: Gym, ids: Collection[str], keys: Collection[str], figures: bool) -> TouchedRead:
    """The request's repeats and the touched members (``keys``: the gym's ids of the members),
    in one round trip; ``figures``: read the touched members' stored figures too."""
    query = _TOUCHED if figures else _TOUCHED_NO_FIGURES
    rows, compiled = query.fetch(gym_id=gym.pk, ids=sorted(ids), keys=sorted(keys))
    found = TouchedRead(live_version=rows[0][LAYOUT.live_version] if rows else None)
    db = Event.objects.db
    by_pk: dict[int, Member] = {}
    for row in query.converted([r for r in rows if r[LAYOUT.event_id] is None], compiled, _MEMBER_COLUMNS):
        member = LAYOUT.member_of(db, row)
        by_pk[member.pk] = found.members[member.external_id] = member
    read: dict[int, StoredEvent] = {}
    for row in query.converted([r for r in rows if r[LAYOUT.event_id] is not None], compiled, _CONVERTED):
        event = read.get(row[LAYOUT.event_id])
        if event is not None:  # a repeat of a touched member's event, on its second row
            if event.values[LAYOUT.figures] is None:
                event.values[LAYOUT.figures] = row[LAYOUT.figures]  # the repeat's own row has its figures
            continue
        member = by_pk.get(row[LAYOUT.member_id])
        if member is None:  # a repeat's member, not touched: its columns are on the repeat's row
            member_row = query.converted([row], compiled, _MEMBER_COLUMNS)[0]
            member = by_pk[row[LAYOUT.member_id]] = LAYOUT.member_of(db, member_row)
        event = read[row[LAYOUT.event_id]] = StoredEvent(row[LAYOUT.events], member)
        if event.external_id in ids:
            found.repeats.append(event)
        if member.external_id in keys and found.members.get(member.external_id) is member:
            found.events[member.external_id].append(event)
    return found


def _whole(member_ids: list[int]) -> QuerySet:
    events = Event.objects.filter(member_id__in=member_ids).order_by("occurred_at", "external_id")
    return events.values_list(*(f.name for f in _EVENT_FIELDS))


_WHOLE = Prepared(_whole, lists=("member_ids",))


def histories_read(members: Sequence[Member]) -> dict[int, list[StoredEvent]]:
    """Every event of ``members``, in judging order, by member primary key."""
    by_pk = {member.pk: member for member in members}
    histories: dict[int, list[StoredEvent]] = {pk: [] for pk in by_pk}
    rows, compiled = _WHOLE.fetch(member_ids=sorted(by_pk))
    for row in _WHOLE.converted(rows, compiled, _CONVERTED):
        histories[row[LAYOUT.member_id]].append(StoredEvent(row, by_pk[row[LAYOUT.member_id]]))
    return histories


def members_lock(*, gym: Gym, keys: Collection[str]) -> None:
    """Lock the rows of the gym's members ``keys`` (made where missing) until the transaction ends,
    in the members' key order, as every ingest takes them (so two never wait on each other in a
    circle). PostgreSQL: row locks, across processes and hosts; SQLite serializes writes anyway.
    Each row moves to its next revision, so a request that read it before must read again."""
    for key in sorted(keys):
        member, _created = Member.objects.get_or_create(gym=gym, external_id=key)
        Member.objects.filter(pk=member.pk).update(revision=F("revision") + 1)
        Member.objects.select_for_update().filter(pk=member.pk).values_list("pk").get()


def member_current_advice(member_ids: Collection[int]) -> dict[int, dict[int, list[Advice]]]:
    """Current advice per member and event (primary keys), oldest first."""
    current: dict[int, dict[int, list[Advice]]] = defaultdict(lambda: defaultdict(list))
    for advice in Advice.objects.filter(member_id__in=member_ids, withdrawn_at__isnull=True).order_by("id"):
        current[advice.member_id][advice.event_id].append(advice)
    return current
