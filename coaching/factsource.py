"""The running domain's stored facts, for the admin's "try it", simulation and statistics.

Registered with the rules engine in ``CoachingConfig.ready()``. The rules app sees only
plain ``rules.services.Fact`` objects; members are the subjects a clinician can pick.
"""
from __future__ import annotations

import secrets
from collections import defaultdict, deque
from datetime import date, datetime, timedelta
from typing import Any, Iterator

from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncDate

from rules.registry import FactSource
from rules.services import Fact

from .figures import figures_as_of
from .models import Advice, Event, Gym, Member

# How far back "try it" looks for history a pattern could join with the tried event.
TRY_HISTORY = timedelta(days=60)


class _Rollback(Exception):
    """Raised to undo the temporary rows "try it" needs to compute figures."""


def _fact_data(data: dict | None, figures: dict | None) -> dict[str, Any]:
    # The event's own fields win over figures of the same name (as in coaching.services._fact).
    return {**(figures or {}), **(data or {})}


class CoachingFactSource(FactSource):
    def subjects(self, *, search: str = "", limit: int = 50) -> list[tuple[str, str]]:
        members = Member.objects.select_related("gym").order_by("gym__name", "external_id")
        if search:
            members = members.filter(external_id__icontains=search)
        return [(str(m.pk), f"{m.external_id} ({m.gym.name})") for m in members[:limit]]

    def enrich(self, *, fact_type: str, data: dict, occurred_at: datetime, subject: str | None):  # noqa: ANN201
        """The event with the figures the live pipeline would compute, as if it were stored now.

        The event is inserted inside a transaction that is always rolled back, so the
        figures come from exactly the code that evaluates real events, and nothing stays.
        """
        result: dict[str, Any] = {}
        try:
            with transaction.atomic():
                member = Member.objects.filter(pk=subject).select_related("gym").first() if subject else None
                if member is None:
                    token = secrets.token_hex(16)
                    gym = Gym.objects.create(name=f"try-it {token}", key_hash=token, key_prefix="try")
                    member = Member.objects.create(gym=gym, external_id=f"try-it-{token}")
                offset = occurred_at.utcoffset() or timedelta(0)
                event = Event.objects.create(
                    gym_id=member.gym_id, member=member, external_id=f"try-it-{secrets.token_hex(8)}", type=fact_type,
                    occurred_at=occurred_at, utc_offset_minutes=int(offset.total_seconds() // 60), data=data,
                    content_hash="try-it",
                )
                figures = figures_as_of(member=member, at=occurred_at, event=event)
                history_events = list(
                    Event.objects.filter(member=member, occurred_at__gte=occurred_at - TRY_HISTORY,
                                         occurred_at__lte=occurred_at)
                    .exclude(pk=event.pk).order_by("occurred_at", "pk")
                )
                result["history"] = [
                    Fact(id=str(e.pk), type=e.type, occurred_at=e.occurred_at,
                         data=_fact_data(e.data, e.figures or figures_as_of(member=member, at=e.occurred_at, event=e)),
                         group=str(member.pk))
                    for e in history_events
                ]
                result["fact"] = Fact(id="try-it", type=fact_type, occurred_at=occurred_at,
                                      data=_fact_data(data, figures), group=str(member.pk) if subject else "")
                raise _Rollback
        except _Rollback:
            pass
        return result["fact"], result["history"]

    def stored_facts(self, *, since: datetime, window: timedelta | None = None, types=None) -> Iterator[tuple]:  # noqa: ANN001
        """Every stored event since ``since``, oldest first, with the member's earlier events in ``window``.

        One query, streamed member by member; figures are the ones stored at evaluation
        (computed now for the rare event that was never evaluated).
        """
        window = window or timedelta(0)
        wanted = set(types) if types is not None else None
        rows = (
            Event.objects.filter(occurred_at__gte=since - window)
            .order_by("member_id", "occurred_at", "pk")
            .values_list("pk", "member_id", "member__external_id", "gym__name", "type", "occurred_at", "data", "figures")
        )
        collected: list[tuple[Fact, list[Fact], str]] = []
        current_member = None
        recent: deque[Fact] = deque()
        for pk, member_id, member_ext, gym_name, type_, occurred_at, data, figures in rows.iterator(chunk_size=2000):
            if member_id != current_member:
                current_member, recent = member_id, deque()
            if not figures:
                event = Event.objects.select_related("member").get(pk=pk)
                figures = figures_as_of(member=event.member, at=event.occurred_at, event=event)
            fact = Fact(id=str(pk), type=type_, occurred_at=occurred_at, data=_fact_data(data, figures),
                        group=str(member_id))
            while recent and recent[0].occurred_at < occurred_at - window:
                recent.popleft()
            if occurred_at >= since:
                collected.append((fact, list(recent) if window else [], f"{member_ext} ({gym_name})"))
            if window and (wanted is None or type_ in wanted):
                recent.append(fact)
        collected.sort(key=lambda item: (item[0].occurred_at, int(item[0].id)))
        return iter(collected)

    def advice_counts(self, *, since: datetime) -> dict[str, dict[date, int]]:
        counts: dict[str, dict[date, int]] = defaultdict(dict)
        rows = (
            Advice.objects.filter(created_at__gte=since)
            .annotate(day=TruncDate("created_at"))
            .values("rule_key", "day")
            .annotate(n=Count("id"))
        )
        for row in rows:
            counts[row["rule_key"]][row["day"]] = row["n"]
        return dict(counts)
