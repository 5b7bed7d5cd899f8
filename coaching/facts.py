"""The coaching domain as a source of facts for the rules admin ("try it", simulation, statistics).

Registered with ``rules.registry.registry.register_fact_source`` in ``CoachingConfig.ready``;
the rules app only ever sees plain ``Fact`` objects, never these models.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncDate

from rules.registry import FactSource
from rules.services import Fact

from .figures import figures_as_of
from .models import Advice, Event, Gym, Member

TRY_HISTORY_SPAN = dt.timedelta(days=90)
TRY_HISTORY_MAX = 2000


def event_fact(event: Event, figures: dict[str, Any] | None = None) -> Fact:
    """An event as the engine sees it: its fields over its derived figures."""
    if figures is None:
        figures = event.figures or figures_as_of(member=event.member, at=event.occurred_at, event=event)
    return Fact(
        id=str(event.pk),
        type=event.type,
        occurred_at=event.occurred_at,
        data={**figures, **(event.data or {})},
        group=str(event.member_id),
    )


class CoachingFactSource(FactSource):
    def subjects(self, *, search: str = "", limit: int = 50) -> list[tuple[str, str]]:
        members = Member.objects.select_related("gym").order_by("gym__name", "external_id")
        if search:
            members = members.filter(external_id__icontains=search)
        return [(str(m.pk), f"{m.gym.name}: {m.external_id}") for m in members[:limit]]

    def enrich(
        self, *, fact_type: str, data: dict, occurred_at: dt.datetime, subject: str | None
    ) -> tuple[Fact, list[Fact]]:
        member = Member.objects.filter(pk=subject).first() if subject else None
        figures = self._figures_for_unsaved(fact_type=fact_type, data=data, occurred_at=occurred_at, member=member)
        fact = Fact(
            id="try",
            type=fact_type,
            occurred_at=occurred_at,
            data={**figures, **data},
            group=str(member.pk) if member else "try",
        )
        history: list[Fact] = []
        if member is not None:
            events = (
                member.events.select_related("member")
                .filter(
                    occurred_at__gte=occurred_at - TRY_HISTORY_SPAN, occurred_at__lte=occurred_at + TRY_HISTORY_SPAN
                )
                .order_by("occurred_at", "pk")[:TRY_HISTORY_MAX]
            )
            history = [event_fact(e) for e in events]
        return fact, history

    @staticmethod
    def _figures_for_unsaved(
        *, fact_type: str, data: dict, occurred_at: dt.datetime, member: Member | None
    ) -> dict[str, Any]:
        # The figures are defined over stored events, so the tried event is stored for a
        # moment inside a transaction that is always rolled back: the same code computes
        # them for a real event and for a tried one, and nothing is left behind.
        offset = occurred_at.utcoffset() or dt.timedelta(0)
        with transaction.atomic():
            if member is None:
                scratch = f"try-{uuid.uuid4().hex}"
                gym = Gym.objects.create(name=scratch, key_hash=scratch)
                member = Member.objects.create(gym=gym, external_id="try")
            event = Event.objects.create(
                gym_id=member.gym_id,
                member=member,
                external_id=f"try-{uuid.uuid4().hex}",
                type=fact_type,
                occurred_at=occurred_at,
                data=data,
                utc_offset_minutes=int(offset.total_seconds() // 60),
                content_hash="try",
            )
            figures = figures_as_of(member=member, at=occurred_at, event=event)
            transaction.set_rollback(True)
        return figures

    def stored_facts(
        self, *, since: dt.datetime, window: dt.timedelta | None = None, types: Any = None
    ) -> Iterator[tuple[Fact, list[Fact], str]]:
        start = since - window if window else since
        events = (
            Event.objects.filter(occurred_at__gte=start).select_related("member", "gym").order_by("occurred_at", "pk")
        )
        earlier: dict[int, deque[Fact]] = defaultdict(deque)
        for event in events.iterator(chunk_size=1000):
            fact = event_fact(event)
            if event.occurred_at >= since:
                history: list[Fact] = []
                if window:
                    kept = earlier[event.member_id]
                    while kept and fact.occurred_at - kept[0].occurred_at > window:
                        kept.popleft()
                    history = list(kept)
                yield fact, history, f"{event.gym.name} / {event.member.external_id} / {event.external_id}"
            if window and (types is None or event.type in types):
                earlier[event.member_id].append(fact)

    def advice_counts(self, *, since: dt.datetime) -> dict[str, dict]:
        counts: dict[str, dict] = defaultdict(dict)
        rows = (
            Advice.objects.filter(created_at__gte=since)
            .annotate(day=TruncDate("created_at"))
            .values("rule_key", "day")
            .annotate(n=Count("id"))
        )
        for row in rows:
            counts[row["rule_key"]][row["day"]] = row["n"]
        return dict(counts)
