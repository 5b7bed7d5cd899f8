"""The one pipeline that stores and judges events: read, judge, write.

1. **Read** (``read``), without a lock: the events the request names (its repeats), every
   touched member's row with what judging kept of it, and each touched member's events from
   the moment that kept state needs, in one query.
2. **Judge** (``judge``), without a lock: each member's figures in memory, every member's new
   events in one engine call, the one decision policy, and the difference with the stored
   advice, as a plan per member.
3. **Write** (``write``), holding the write lock only now: each member moves to its next
   revision if it is still at the one read, then the events, the advice, the withdrawals,
   the figures, in bulk.

A member written by another request between 1 and 3 makes the request start again. After a
few such attempts, or when a touched member has an evaluation to complete, the same steps run
in the **locked mode**: every touched member's row is locked first and its whole history read,
so nothing can come between reading and writing. ``members_rejudge`` (re-evaluation) always
runs locked. Either way the result is what judging each member's events one at a time in time
order gives.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction

from rules.evaluation import HistoryShort, ruleset_live, ruleset_loaded

from .. import metrics
from ..catalog import FIGURE_NAMES
from ..evaluation import advice_order, event_build, event_order
from ..internal.db.database import database_unavailable
from ..logs import log_context
from ..models import Advice, Event, Gym, Member
from ..selectors import advice_for_events, advice_withdrawn_by
from ..validation import CleanEvent
from .judge import MemberWork, histories_kept, judge
from .read import StoredEvent, histories_read, members_lock, touched_read
from .write import MemberChanged, write

__all__ = ["ATTEMPTS", "IngestResult", "RejudgeResult", "events_ingest", "members_rejudge"]

logger = logging.getLogger("coaching.evaluation")

ATTEMPTS = 3  # reads and judgings before a request that meets concurrent writes runs locked


@dataclass
class IngestResult:
    """One event's answer: 201 new, 200 an identical repeat, 409 a conflicting repeat."""

    status: int
    event: Event
    advice: list[Advice] = field(default_factory=list)  # its current advice, and what its late arrival gave
    withdrawn: list[Advice] = field(default_factory=list)  # what its late arrival withdrew


@dataclass
class RejudgeResult:
    """What judging a member's stored events again changed (None of them: its evaluation failed)."""

    created: list[Advice] = field(default_factory=list)
    withdrawn: list[Advice] = field(default_factory=list)
    failed: bool = False


class _NeedsLock(Exception):
    """A touched member cannot be judged from what was read without its lock."""


def events_ingest(
    *,
    gym: Gym,
    cleans: Sequence[CleanEvent],
    content_hash: Callable[[CleanEvent], str],
    recorded_by: str = "",
) -> list[IngestResult]:
    """Store valid events of ``gym`` (of any members) and judge what is new: an answer per clean
    event, in their order. ``recorded_by`` names who recorded new events (a clinician's "mark
    cleared"). A failing evaluation never loses an event: it stays stored, not evaluated, with
    the error, and the member's next evaluation (or ``reevaluate``) completes it."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _run(gym=gym, cleans=cleans, content_hash=content_hash, recorded_by=recorded_by, locked=False)
        except MemberChanged:
            metrics.ingest_conflict(then="again" if attempt < ATTEMPTS else "locked")
        except _NeedsLock:
            break
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _run(gym=gym, cleans=cleans, content_hash=content_hash, recorded_by=recorded_by, locked=True)
        except MemberChanged:  # an event stored by a request for another member meanwhile
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def members_rejudge(*, member: Member, since: datetime | None = None, pending: bool = False) -> RejudgeResult:
    """Judge the member's stored events again with the live version, from its first event (or
    from ``since``; ``pending``: from its first event whose evaluation failed), in the locked
    mode: advice that now holds is added, advice that no longer holds withdrawn (naming the
    re-evaluation), advice that still holds kept as it is."""
    with log_context(gym=member.gym_id, member=member.external_id), transaction.atomic():
        members_lock(gym=member.gym, keys=[member.external_id])
        row = Member.objects.get(pk=member.pk)
        work = MemberWork(key=row.external_id, row=row, whole=True)
        work.stored = histories_read([row])[row.pk]
        selected = [
            event
            for event in work.stored
            if (since is None or event.occurred_at >= since) and (not pending or not event.evaluated)
        ]
        if not selected:
            return RejudgeResult()
        work.since = event_order(selected[0]) if since is not None or pending else None
        _judge_and_write(member.gym, [work], None)
    plan = work.plan
    if plan is None:
        return RejudgeResult(failed=True)
    metrics.evaluations_observed([work.seconds] if work.seconds is not None else [])
    metrics.advice_changed(created=plan.creating, withdrawn=plan.withdrawn)
    return RejudgeResult(created=list(plan.creating), withdrawn=list(plan.withdrawn))


def _run(
    *,
    gym: Gym,
    cleans: Sequence[CleanEvent],
    content_hash: Callable[[CleanEvent], str],
    recorded_by: str,
    locked: bool,
) -> list[IngestResult]:
    ids = {clean.external_id for clean in cleans}
    keys = {clean.member for clean in cleans}
    # The stored figures are read only if the version this process knows reads them (checked below).
    likely = ruleset_loaded()
    figures = locked or likely is None or bool(FIGURE_NAMES & likely.history_fields)
    with transaction.atomic() if locked else contextlib.nullcontext():
        if locked:
            members_lock(gym=gym, keys=keys)
        found = touched_read(gym=gym, ids=ids, keys=keys, figures=figures)
        works = {key: MemberWork(key=key, row=found.members.get(key), stored=found.events.get(key, [])) for key in keys}
        known: dict[str, Event] = {event.external_id: event.event() for event in found.repeats}
        answers: list[IngestResult] = []
        for clean in cleans:
            work = works[clean.member]
            digest = content_hash(clean)
            event = known.get(clean.external_id)
            if event is not None:
                answers.append(IngestResult(200 if event.content_hash == digest else 409, event))
                continue
            event = event_build(
                gym=gym, member=work.row, clean=clean, content_hash=digest, evaluated=True, recorded_by=recorded_by
            )
            known[clean.external_id] = event
            work.new.append(event)
            answers.append(IngestResult(201, event))
        pending = {key for key, work in works.items() if any(not event.evaluated for event in work.stored)}
        if pending and not locked:
            raise _NeedsLock  # a member with an evaluation to complete is judged whole, under its lock
        # In the members' key order: concurrent requests lock shared members in one order.
        judging = sorted((w for w in works.values() if w.new or w.key in pending), key=lambda w: w.key)
        if locked:
            for work, history in zip(judging, _whole_histories(judging), strict=True):
                work.stored, work.whole = history, True
        for work in judging:
            starts = [event_order(e) for e in work.new] + [event_order(e) for e in work.stored if not e.evaluated]
            work.since = min(starts)
            work.cause = min(work.new, key=event_order) if work.new else None
        _judge_and_write(gym, judging, found.live_version, figures=figures)
    new_events = [event for work in judging for event in work.new]
    metrics.events_stored(new_events)
    metrics.evaluations_observed([work.seconds for work in judging if work.seconds is not None])
    for work in judging:
        if work.plan is not None:
            metrics.advice_changed(created=work.plan.creating, withdrawn=work.plan.withdrawn)
            if logger.isEnabledFor(logging.DEBUG):
                with log_context(member=work.key):
                    logger.debug(
                        "Judged %d events of member %s: %d advice given, %d withdrawn",
                        len(work.plan.decisions),
                        work.key,
                        len(work.plan.creating),
                        len(work.plan.withdrawn),
                    )
    _answers_fill(answers, judging)
    return answers


def _whole_histories(works: Sequence[MemberWork]) -> list[list[StoredEvent]]:
    rows = [work.row for work in works if work.row is not None]
    histories = histories_read(rows) if rows else {}
    return [histories.get(work.row.pk, []) if work.row is not None else [] for work in works]


def _judge_and_write(gym: Gym, works: list[MemberWork], live_version: int | None, *, figures: bool = True) -> None:
    """Judge ``works`` with the live version and write the plans; raises ``MemberChanged`` when
    what was read is no longer current (read and judge again), ``_NeedsLock`` when a member's
    history must be read whole and the caller does not hold the members' locks."""
    if not works:
        return
    live = ruleset_live(live_version)
    if not figures and FIGURE_NAMES & live.history_fields:
        raise MemberChanged  # a version whose patterns read figures was published: read them
    partial = histories_kept(works, live.history_window)
    if partial:
        for work, history in zip(partial, _whole_histories(partial), strict=True):
            work.stored = history
        if any(not event.evaluated for work in partial for event in work.stored):
            raise _NeedsLock
    try:
        judge(works, live)
    except HistoryShort as exc:  # a version looking further back was published meanwhile
        raise MemberChanged from exc
    try:
        with transaction.atomic():
            write(gym, works)
    except IntegrityError as exc:  # a member or event stored by a concurrent request meanwhile
        if database_unavailable(exc):
            raise
        raise MemberChanged from exc


def _answers_fill(answers: list[IngestResult], judging: list[MemberWork]) -> None:
    """Each new event's advice and withdrawals from memory; repeats' from the database."""
    created_for: dict[int, list[Advice]] = defaultdict(list)
    withdrawn_by: dict[int, list[Advice]] = defaultdict(list)
    for work in judging:
        plan = work.plan
        if plan is None:
            continue
        for advice in plan.creating:
            created_for[id(advice.event)].append(advice)
            if advice.trigger is not None:
                created_for[id(advice.trigger)].append(advice)
        if plan.cause is not None:
            withdrawn_by[id(plan.cause)].extend(plan.withdrawn)
    repeats = [answer.event for answer in answers if answer.status != 201]
    stored_advice = advice_for_events(events=repeats) if repeats else {}
    stored_withdrawn = advice_withdrawn_by(events=repeats) if repeats else {}
    for answer in answers:
        if answer.status == 201:
            answer.advice = sorted(created_for[id(answer.event)], key=advice_order)
            answer.withdrawn = withdrawn_by[id(answer.event)]
        else:
            answer.advice = stored_advice[answer.event.pk]
            answer.withdrawn = stored_withdrawn[answer.event.pk]
