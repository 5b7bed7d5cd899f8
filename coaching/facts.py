"""The coaching domain as a source of facts for the rules admin ("try it", simulation, statistics).

Registered with ``rules.registry.registry.register_fact_source`` in ``CoachingConfig.ready``;
the rules app only ever sees plain ``Fact`` objects, never these models.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.urls import reverse

from rules.evaluation import Fact
from rules.registry import AdviceTally, FactSource, FeedbackTally

from .evaluation import member_facts
from .models import Advice, AdviceFeedback, Event, Member, OverrideReason
from .words import event_fields, event_sentence


def member_words(member: Member) -> str:
    """How the rules admin names a member: "m-1042 (Riverside Runners)"."""
    return f"{member.external_id} ({member.gym.name})"


TRY_HISTORY_MAX = 5000
TIMELINE_BATCH = 500  # members whose events one query of a simulation reads


def _members_since(since: dt.datetime, part: Any) -> QuerySet[Member]:
    """The members with events since ``since``, within ``part`` ([first, last] keys, None: open)."""
    members = Member.objects.filter(pk__in=Event.objects.filter(occurred_at__gte=since).values("member_id"))
    low, high = part if part is not None else (None, None)
    if low is not None:
        members = members.filter(pk__gte=low)
    if high is not None:
        members = members.filter(pk__lte=high)
    return members


def _timelines_of(members: list[Member]) -> Iterator[tuple[list[Fact], dict[str, str]]]:
    events: dict[int, list[Event]] = defaultdict(list)
    found = Event.objects.filter(member_id__in=[m.pk for m in members])
    found = found.order_by("member_id", "occurred_at", "external_id")
    for event in found.iterator(chunk_size=5000):
        events[event.member_id].append(event)
    for member in members:
        mine = events.get(member.pk, [])
        yield member_facts(mine), dict.fromkeys((str(e.pk) for e in mine), member_words(member))


class CoachingFactSource(FactSource):
    def subjects(self, *, search: str = "", limit: int = 50) -> list[tuple[str, str]]:
        members = Member.objects.select_related("gym").order_by("gym__name", "external_id")
        if search:
            members = members.filter(external_id__icontains=search)
        return [(str(m.pk), f"{m.gym.name}: {m.external_id}") for m in members[:limit]]

    def enrich(
        self,
        *,
        fact_type: str,
        data: dict,
        occurred_at: dt.datetime,
        subject: str | None,
        replacing: str | None = None,
    ) -> tuple[Fact, list[Fact]]:
        """The tried event as production would judge it: after the member's events before it,
        with the figures they give it (a tried event sorts after stored ones of the same instant);
        ``replacing``: the stored event it stands for, left out."""
        member = Member.objects.filter(pk=subject).first() if subject else None
        events: list[Any] = []
        if member is not None:
            stored = member.events.filter(occurred_at__lte=occurred_at)
            if replacing and str(replacing).isdigit():
                stored = stored.exclude(pk=replacing)
            events = list(stored.order_by("-occurred_at", "-external_id")[:TRY_HISTORY_MAX])
            events.reverse()
        offset = occurred_at.utcoffset() or dt.timedelta(0)
        tried = SimpleNamespace(
            pk="try",
            external_id="\uffff",
            type=fact_type,
            occurred_at=occurred_at,
            utc_offset_minutes=int(offset.total_seconds() // 60),
            data=dict(data),
            member_id=member.pk if member else "try",
        )
        facts = member_facts([*events, tried])
        return facts[-1], facts[:-1]

    def timelines(self, *, since: dt.datetime, part: Any = None) -> Iterator[tuple[list[Fact], dict[str, str]]]:
        """Each member with events since ``since`` (of ``part``, a range of members from
        ``timeline_parts``): all their facts in judging order, and a label per fact id: the member
        in words ("m-1042 (Riverside Runners)"). Members are read a batch at a time, so a long
        simulation holds one batch of events, not all of them."""
        members = _members_since(since, part).select_related("gym").order_by("pk")
        batch: list[Member] = []
        for member in members.iterator(chunk_size=TIMELINE_BATCH):
            batch.append(member)
            if len(batch) == TIMELINE_BATCH:
                yield from _timelines_of(batch)
                batch = []
        yield from _timelines_of(batch)

    def timeline_parts(self, *, since: dt.datetime, parts: int) -> list[Any]:
        """Ranges of member keys, [first, last] (None: open), each with about as many members."""
        pks = list(_members_since(since, None).order_by("pk").values_list("pk", flat=True))
        parts = max(1, min(parts, len(pks)))
        if parts == 1:
            return [None]
        size = -(-len(pks) // parts)
        starts = [pks[index] for index in range(0, len(pks), size)]
        return [
            [None if index == 0 else start, None if index == len(starts) - 1 else starts[index + 1] - 1]
            for index, start in enumerate(starts)
        ]

    def fact_count(self, *, since: dt.datetime, part: Any = None) -> int:
        events = Event.objects.filter(occurred_at__gte=since)
        if part is not None:
            events = events.filter(member__in=_members_since(since, part))
        return events.count()

    def subject_url(self, subject_id: str) -> str | None:
        """The member's timeline in the coaching admin."""
        if not str(subject_id).isdigit():
            return None
        return reverse("admin:coaching_member_change", args=[subject_id])

    def fact_url(self, subject_id: str, fact_id: str, *, simulation: str = "") -> str | None:
        """The member's timeline at the event (on the page that holds it), with a simulation's
        draft advice shown beside what each event got."""
        url = self.subject_url(subject_id)
        if url is None or not str(fact_id).isdigit():
            return url
        query = urlencode({"event": fact_id, **({"simulation": simulation} if simulation else {})})
        return f"{url}?{query}#event-{fact_id}"

    def fact_words(self, fact: Fact) -> str:
        """The event in one line, as the member's timeline says it."""
        own = {name: value for name, value in fact.data.items() if name in event_fields(fact.type)}
        return event_sentence(fact.type, own)

    def subjects_words(self, subject_ids: Iterable[str]) -> dict[str, str]:
        ids = [int(subject) for subject in subject_ids if str(subject).isdigit()]
        found = {str(m.pk): member_words(m) for m in Member.objects.filter(pk__in=ids).select_related("gym")}
        return {subject: found.get(str(subject), str(subject)) for subject in subject_ids}

    def advice_statistics(self, *, first_day: dt.date) -> list[AdviceTally]:
        """Advice per rule, member and day from ``first_day`` on, counted on the local date (in
        the offset it was sent with) of the event the advice belongs to, current and withdrawn
        apart."""
        # A local date starts up to 14 hours before the UTC day of the same date: read a day early.
        since = dt.datetime.combine(first_day - dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
        tallies: dict[tuple[str, dt.date, str], list[int]] = defaultdict(lambda: [0, 0])
        rows = Advice.objects.filter(occurred_at__gte=since).values_list(
            "rule_key", "member_id", "occurred_at", "event__utc_offset_minutes", "withdrawn_at"
        )
        for rule_key, member_id, occurred_at, offset, withdrawn_at in rows.iterator(chunk_size=5000):
            day = occurred_at.astimezone(dt.timezone(dt.timedelta(minutes=offset))).date()
            if day >= first_day:
                tallies[rule_key, day, str(member_id)][1 if withdrawn_at else 0] += 1
        return [
            AdviceTally(rule_key=rule_key, day=day, subject=member, current=current, withdrawn=withdrawn)
            for (rule_key, day, member), (current, withdrawn) in tallies.items()
        ]

    def feedback_statistics(self, *, first_day: dt.date, last_day: dt.date) -> list[FeedbackTally]:
        """How the cards of the advice given on those days landed, per rule and the local day of
        the advice's event (as ``advice_statistics`` counts it): each card by its latest outcome,
        from CDS Hooks or the API, the override reasons in the words of the list clinicians edit."""
        since = dt.datetime.combine(first_day - dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
        until = dt.datetime.combine(last_day + dt.timedelta(days=2), dt.time.min, tzinfo=dt.UTC)
        latest: dict[int, tuple[str, dt.date, str, list[str]]] = {}
        rows = (
            AdviceFeedback.objects.filter(advice__occurred_at__gte=since, advice__occurred_at__lt=until)
            .order_by("advice_id", "outcome_at", "id")
            .values_list(
                "advice_id",
                "advice__rule_key",
                "advice__occurred_at",
                "advice__event__utc_offset_minutes",
                "outcome",
                "reasons",
            )
        )
        for advice_id, rule_key, occurred_at, offset, outcome, reasons in rows.iterator(chunk_size=5000):
            day = occurred_at.astimezone(dt.timezone(dt.timedelta(minutes=offset))).date()
            latest[advice_id] = (rule_key, day, outcome, list(reasons or []))
        words = dict(OverrideReason.objects.values_list("code", "display"))
        tallies: dict[tuple[str, dt.date], FeedbackTally] = {}
        for rule_key, day, outcome, reasons in latest.values():
            if not first_day <= day <= last_day:
                continue
            tally = tallies.setdefault((rule_key, day), FeedbackTally(rule_key=rule_key, day=day, reasons={}))
            if outcome == AdviceFeedback.Outcome.ACCEPTED:
                tallies[rule_key, day] = replace(tally, accepted=tally.accepted + 1)
            else:
                counted = dict(tally.reasons)
                for code in reasons or ["(no reason given)"]:
                    label = words.get(code, code.replace("-", " ").replace("_", " "))
                    counted[label] = counted.get(label, 0) + 1
                tallies[rule_key, day] = replace(tally, overridden=tally.overridden + 1, reasons=counted)
        return list(tallies.values())

    def reevaluation_count(self, *, fact_types: set[str], since: dt.datetime) -> int:
        """Members with events of ``fact_types`` since ``since`` (what a publish offers to re-judge)."""
        return _members_with(fact_types, since).count()

    def reevaluation_start(self, *, fact_types: set[str], since: dt.datetime, user: Any = None) -> Any:
        """Those members' events from ``since`` on, judged again with the live version, as a job."""
        from .jobs import reevaluate_start

        return reevaluate_start({pk: since for pk in _members_with(fact_types, since)}, user=user)


def _members_with(fact_types: set[str], since: dt.datetime) -> Any:
    return (
        Event.objects.filter(type__in=fact_types, occurred_at__gte=since)
        .values_list("member_id", flat=True)
        .distinct()
        .order_by("member_id")
    )
