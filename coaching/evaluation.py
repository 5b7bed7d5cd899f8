"""Evaluation in the coaching domain: judge a member's events in time order and store what changed.

A member's advice is a function of their events and the published rules: what judging the
events one at a time in ``occurred_at`` order (ties broken by ``external_id``) gives. So an
event that arrives late re-judges the member's events from its moment on: advice that now
holds is added, advice that no longer holds is withdrawn (kept, never deleted). Everything
here runs under the member's lock (``member_lock``), so evaluations of one member never
overlap, in one process or many; different members proceed in parallel.

The decision policy itself (cooldowns, precedence, referral, the limit per event) lives in
``rules.evaluation``; this module supplies the facts and keeps the records.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from rules.evaluation import (
    Decision,
    DecisionState,
    Fact,
    Given,
    Match,
    Policy,
    Referral,
    moment_pack,
    moment_unpack,
    ruleset_live,
    timeline_judge,
)

from . import metrics
from .catalog import FACT_TYPES, PROFILE, SEVERITY_CODES
from .database import database_unavailable
from .figures import History, event_pain, figures_timeline, local_zone
from .logs import log_context, log_context_add
from .models import EARLIEST, Advice, Event, Member

logger = logging.getLogger(__name__)

# Why advice was withdrawn, in words a gym's developer or a clinician reads.
WITHDRAWN_NO_LONGER_HOLDS = "No longer applies once the {what} of {date} ({external_id}) is counted."
WITHDRAWN_REPLACED = "Replaced by updated advice: the {what} of {date} ({external_id}) changed the figures."
WITHDRAWN_BY_REEVALUATION = "No longer given when re-evaluated with ruleset version {version}."
WITHDRAWN_REPLACED_BY_REEVALUATION = "Replaced by updated advice when re-evaluated with ruleset version {version}."


@dataclass
class JudgeResult:
    """What one judging of a member changed."""

    judged: int = 0
    created: list[Advice] = field(default_factory=list)
    withdrawn: list[Advice] = field(default_factory=list)


def event_order(event: Event) -> tuple[datetime, str]:
    """The order events are judged in: time, then the gym's id (never arrival order)."""
    return (event.occurred_at, event.external_id)


def member_lock(*, member_id: int) -> Member:
    """The member's row, locked until the transaction ends (PostgreSQL: a row lock, so that
    evaluations of one member never overlap across processes and hosts; SQLite serializes
    every write transaction anyway)."""
    Member.objects.filter(pk=member_id).update(revision=F("revision") + 1)
    return Member.objects.select_for_update().get(pk=member_id)


def clears_referral(event: Event) -> bool:
    return event.type == PROFILE and (event.data or {}).get("cleared_by_physician") is True


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
        occurred_at=event.occurred_at.astimezone(local_zone(event.utc_offset_minutes)),
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


def history_start(events: Sequence[Event], start: int, window: timedelta) -> int:
    """The first of ``events`` (in judging order) that judging ``events[start:]`` can look back
    to: the engine's patterns see only facts within ``window`` of the one judged. Facts for the
    older events are never needed; making them was a third of an array's judging."""
    if start >= len(events):
        return start
    since = events[start].occurred_at - window
    first = start
    while first > 0 and events[first - 1].occurred_at >= since:
        first -= 1
    return first


def member_events(member: Member) -> list[Event]:
    return list(Event.objects.filter(member=member).order_by("occurred_at", "external_id"))


def prior_state(events: Sequence[Event], advice_by_event: dict[int, list[Advice]], *, policy: Policy) -> DecisionState:
    """What the policy remembers of ``events`` (already judged), from their stored current advice."""
    return DecisionState.replay(
        (
            (
                Fact(
                    id=str(event.pk),
                    type=event.type,
                    occurred_at=event.occurred_at.astimezone(local_zone(event.utc_offset_minutes)),
                    data={},
                    clears_referral=clears_referral(event),
                ),
                [
                    Given(
                        rule_key=advice.rule_key,
                        rule_name=advice.rule_name,
                        severity=advice.severity,
                        summary=(advice.card or {}).get("summary", ""),
                        started_referral=advice.refers,
                    )
                    for advice in advice_by_event.get(event.pk, ())
                ],
            )
            for event in events
        ),
        policy=policy,
    )


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


def _same(advice: Advice, match: Match, matched: list[str]) -> bool:
    return (
        advice.severity == match.severity
        and advice.message == match.message
        and list(advice.matched_events) == matched
        and (advice.card or {}).get("summary") == match.summary
    )


def _reason(decision: Decision, rule_key: str, replaced: bool, cause: Event | None) -> str:
    held = decision.held(rule_key)
    if held is not None:
        return held.explanation
    if cause is None:
        template = WITHDRAWN_REPLACED_BY_REEVALUATION if replaced else WITHDRAWN_BY_REEVALUATION
        return template.format(version=decision.version)
    what = FACT_TYPES[cause.type][0].lower() if cause.type in FACT_TYPES else cause.type
    template = WITHDRAWN_REPLACED if replaced else WITHDRAWN_NO_LONGER_HOLDS
    return template.format(what=what, date=cause.occurred_at_local.date().isoformat(), external_id=cause.external_id)


@dataclass
class Plan:
    """What judging one member's events changes, worked out without writing anything."""

    member: Member
    events: list[Event]  # all of the member's events, in judging order (new ones may be unsaved)
    decisions: list[Decision]
    start: int
    state: DecisionState  # the policy's memory after the last event
    cause: Event | None
    creating: list[Advice] = field(default_factory=list)
    withdrawn: list[Advice] = field(default_factory=list)
    refigured: list[Event] = field(default_factory=list)  # stored events whose figures change
    completed: list[Event] = field(default_factory=list)  # stored events evaluated at last
    now: datetime = field(default_factory=timezone.now)
    by_fact: dict[str, Event] = field(default_factory=dict)  # the events by their ids when judged
    # The running state of the figures after the last event, and the live rules' history window:
    # kept on the member, an ingest of later events reads only the events within that window.
    history: History | None = None
    window: timedelta | None = None

    @property
    def referral(self) -> Referral | None:
        return self.decisions[-1].referral if self.decisions else self.state.referral


def judging_start(events: Sequence[Event], since: tuple[datetime, str] | None) -> int:
    """Where judging begins: at ``since``, or earlier at an event not evaluated yet; 0 for None."""
    if since is None:
        return 0
    for index, event in enumerate(events):
        if event_order(event) >= since or not event.evaluated:
            return index
    return len(events)


def member_plan(
    *,
    member: Member,
    events: list[Event],
    facts: list[Fact],
    start: int,
    decisions: list[Decision],
    state: DecisionState,
    current: dict[int, list[Advice]],
    cause: Event | None,
    fresh: Collection[str] = (),
    history: History | None = None,
    window: timedelta | None = None,
    check_from: int | None = None,
) -> Plan:
    """Compare the decisions for ``events[start:]`` with their stored current advice (``current``,
    by event primary key): what to create, withdraw, re-figure. ``fresh`` holds the fact ids of the
    events just stored (their new advice names no trigger). ``history`` and ``window`` are kept
    on the member (``member_state_values``); then every stored event's figures must be what they
    are now: ``check_from`` (before ``start``) is where the stored figures are not known to be."""
    plan = Plan(
        member=member,
        events=events,
        decisions=decisions,
        start=start,
        state=state,
        cause=cause,
        history=history,
        window=window,
    )
    # The facts are the events' (one each, in order): their ids are the events' fact ids.
    plan.by_fact = {fact.id: event for fact, event in zip(facts, events, strict=True)}
    external_ids = {fact.id: event.external_id for fact, event in zip(facts, events, strict=True)}
    for event, decision in zip(events[start:], decisions, strict=True):
        wanted = {match.rule_key: match for match in decision.given}
        stored = {advice.rule_key: advice for advice in current.get(event.pk, ())} if event.pk else {}
        for rule_key, advice in stored.items():
            match = wanted.get(rule_key)
            matched = [external_ids[i] for i in match.fact_ids if i in external_ids] if match else []
            if (
                match is not None
                and _same(advice, match, matched)
                and advice.refers == (decision.referral_started_by == rule_key)
            ):
                del wanted[rule_key]  # still holds, unchanged: kept as it is
                continue
            advice.withdrawn_at = advice.changed_at = plan.now
            advice.withdrawn_by = cause
            advice.withdrawn_reason = _reason(decision, rule_key, match is not None, cause)
            plan.withdrawn.append(advice)
        triggered = cause is not None and fact_id(event) not in fresh and fact_id(cause) != fact_id(event)
        # Least urgent first: lists are newest first, so one event's advice then reads most urgent first.
        for match in reversed(wanted.values()):
            matched = [external_ids[i] for i in match.fact_ids if i in external_ids] or [event.external_id]
            plan.creating.append(
                Advice(
                    gym_id=event.gym_id,
                    member=member,
                    event=event,
                    trigger=cause if triggered else None,
                    rule_key=match.rule_key,
                    rule_name=match.rule_name,
                    rule_version=match.version,
                    category=match.category,
                    severity=match.severity,
                    message=match.message,
                    matched_events=matched,
                    source_label=match.source_label,
                    card=advice_card(match=match),
                    occurred_at=event.occurred_at,
                    refers=decision.referral_started_by == match.rule_key,
                    priority=match.priority,
                    changed_at=plan.now,
                )
            )
        if event.pk is not None and (not event.evaluated or event.evaluation_error):
            plan.completed.append(event)
        event.evaluated, event.evaluation_error = True, ""
    checked = start if check_from is None else check_from
    for event, fact in zip(events[checked:], facts[checked:], strict=True):
        own = event.data or {}
        figures = {k: v for k, v in fact.data.items() if k not in own and k not in OWN_FIGURES}
        if event.figures != figures:
            event.figures = figures
            if event.pk is not None:
                plan.refigured.append(event)
    return plan


def plan_apply(plan: Plan, *, create: bool = True) -> JudgeResult:
    """Write what ``plan`` changes (the new events among ``plan.events`` stored already);
    ``create=False``: the caller writes its new advice afterwards (with other members', in one
    statement)."""
    now, cause = plan.now, plan.cause
    # Withdrawals first, so that a replacement never meets the one it replaces; they share
    # the moment and the cause, so one statement per reason writes them.
    by_reason: dict[str, list[int]] = defaultdict(list)
    for advice in plan.withdrawn:
        advice.withdrawn_by = cause  # again: a cause stored since the plan was made has its key now
        by_reason[advice.withdrawn_reason].append(advice.pk)
    for reason, pks in by_reason.items():
        Advice.objects.filter(pk__in=pks).update(
            withdrawn_at=now, changed_at=now, withdrawn_by=cause, withdrawn_reason=reason
        )
    created = Advice.objects.bulk_create(plan.creating) if plan.creating and create else plan.creating
    # Only what changed is written, one field per statement: bulk_update builds a CASE per
    # object and field, and rewriting every re-judged event cost more than judging them.
    if plan.refigured:
        Event.objects.bulk_update(plan.refigured, ["figures"], batch_size=500)
    if plan.completed:
        Event.objects.filter(pk__in=[e.pk for e in plan.completed]).update(evaluated=True, evaluation_error="")
    return JudgeResult(judged=len(plan.decisions), created=created, withdrawn=list(plan.withdrawn))


def member_state_values(plan: Plan) -> dict[str, Any]:
    """The member's columns after ``plan`` (its new events stored): the referral in force and
    the policy's memory."""
    referral = plan.referral
    by_fact = plan.by_fact
    last = plan.events[-1] if plan.events else None
    return {
        "referral_since": referral.since if referral else None,
        "referral_rule_key": referral.rule_key if referral else "",
        "referral_rule_name": referral.rule_name if referral else "",
        "referral_event_id": _referral_event_id(referral, by_fact) if referral else None,
        "policy_state": policy_state_dump(plan.state, last, plan.history) if last is not None else None,
        "read_from": (
            last.occurred_at - plan.window
            if last is not None and plan.history is not None and plan.window is not None
            else EARLIEST
        ),
    }


# The member's columns when what judging remembers is lost (an evaluation failed): the next
# ingest reads and counts the member's whole history.
MEMBER_STATE_FORGOTTEN = {"policy_state": None, "read_from": EARLIEST}


def _referral_event_id(referral: Referral, by_fact: dict[str, Event]) -> int | None:
    """The stored event a referral started on: judged now, or (older than the events judged, and
    so not among them) named by its primary key."""
    event = by_fact.get(referral.fact_id)
    if event is not None:
        return event.pk
    return int(referral.fact_id) if referral.fact_id.isdigit() else None


def policy_state_dump(state: DecisionState, last: Event, history: History | None = None) -> dict[str, Any]:
    dumped = {"through": [moment_pack(last.occurred_at), last.external_id], "decision": state.dump()}
    if history is not None:
        dumped["figures"] = history.state()
    return dumped


def figures_state_load(member: Member, events: Sequence[Event]) -> History | None:
    """The running state of the figures after ``events`` (the member's latest ones, in order),
    from the member's row: None unless it was written after the last of them, by this version
    of the figures. Where it is, every stored event's figures are what counting gives now."""
    stored = _kept_state(member, events)
    if stored is None or "figures" not in stored:
        return None
    return History.restored(stored["figures"])


def policy_state_load(member: Member, events: Sequence[Event]) -> DecisionState | None:
    """What the policy remembers after ``events`` (all of the member's, in order), from the
    member's row: None unless it was written after the last of them."""
    stored = _kept_state(member, events)
    if stored is None or "decision" not in stored:
        return None  # none, or kept before the policy's own form: read from the stored advice
    state = DecisionState.load(stored["decision"])
    if state.referral is not None and member.referral_event_id is not None:
        # Kept while its event was being stored (its id then a placeholder): the row knows its key.
        state.referral = replace(state.referral, fact_id=str(member.referral_event_id))
    return state


def _kept_state(member: Member, events: Sequence[Event]) -> dict[str, Any] | None:
    """The state kept on the member's row, if it was written after the last of ``events``."""
    stored = member.policy_state
    if not stored or not events:
        return None
    at, external_id = stored["through"]
    last = events[-1]
    if last.external_id != external_id or last.occurred_at != moment_unpack(at):
        return None
    return stored


def member_current_advice(member_ids: Collection[int]) -> dict[int, dict[int, list[Advice]]]:
    """Current advice per member and event (primary keys), oldest first."""
    current: dict[int, dict[int, list[Advice]]] = defaultdict(lambda: defaultdict(list))
    for advice in Advice.objects.filter(member_id__in=member_ids, withdrawn_at__isnull=True).order_by("id"):
        current[advice.member_id][advice.event_id].append(advice)
    return current


def member_judge(
    *,
    member: Member,
    since: tuple[datetime, str] | None,
    cause: Event | None = None,
    fresh: Collection[int] = (),
) -> JudgeResult:
    """Judge the member's events from ``since`` (an ``event_order`` key; None: from the first)
    on, and store what changed. Call it inside a transaction holding ``member_lock``.

    Events not evaluated yet (an evaluation that failed or was cut off) are judged too, so a
    later evaluation of the member completes them. ``cause`` is the late event that made the
    re-judging necessary (None: a re-evaluation); withdrawals, and new advice on events that
    are not ``fresh`` (the primary keys of the events just stored), name it. Raises on an
    engine failure; the caller's savepoint keeps the events stored.
    """
    events = member_events(member)
    start = judging_start(events, since)
    if start == len(events):
        return JudgeResult()
    history = History()
    facts = member_facts(events, history=history)
    current = member_current_advice([member.pk])[member.pk]
    live = ruleset_live()
    state = prior_state(events[:start], current, policy=live.policy)
    decisions = timeline_judge(facts=facts, start=start, state=state, live_version=live.version)
    if decisions:
        log_context_add(ruleset_version=decisions[-1].version)
    plan = member_plan(
        member=member,
        events=events,
        facts=facts,
        start=start,
        decisions=decisions,
        state=state,
        current=current,
        cause=cause,
        fresh={str(pk) for pk in fresh},
        history=history,
        window=live.history_window,
        check_from=0,  # every event's figures are at hand: the member's are all made current
    )
    result = plan_apply(plan)
    _member_state_keep(member, member_state_values(plan))
    logger.debug(
        "Judged %d events of member %s: %d advice given, %d withdrawn",
        result.judged,
        member.external_id,
        len(result.created),
        len(result.withdrawn),
    )
    return result


def _member_state_keep(member: Member, values: dict[str, Any]) -> None:
    if any(getattr(member, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(member, name, value)
        member.save(update_fields=[name.removesuffix("_id") for name in values])


def member_judge_safely(
    *, member: Member, since: tuple[datetime, str] | None, cause: Event | None, new_events: Collection[Event] = ()
) -> JudgeResult | None:
    """``member_judge`` in a savepoint: on a failure the events stay stored, not evaluated, with
    the error recorded (a later evaluation of the member, or ``reevaluate``, completes them)."""
    try:
        with (
            log_context(gym=member.gym_id, member=member.external_id),
            metrics.evaluation_timed(),
            transaction.atomic(),
        ):
            return member_judge(member=member, since=since, cause=cause, fresh={e.pk for e in new_events})
    except Exception as exc:  # the events are safe in the database; record why and move on
        if database_unavailable(exc):
            # Not the evaluation's fault, and recording it would fail the same way: the caller's
            # transaction rolls back whole, and the request is answered 503 to be sent again.
            raise
        logger.exception("Evaluation of member %s failed", member.pk)
        error = f"{type(exc).__name__}: {exc}"[:10000]
        pks = [event.pk for event in new_events]
        if since is not None:
            later = Event.objects.filter(member=member, occurred_at__gte=since[0]).values_list("pk", flat=True)
            pks.extend(later)
        Event.objects.filter(pk__in=pks).update(evaluated=False, evaluation_error=error)
        Member.objects.filter(pk=member.pk).update(**MEMBER_STATE_FORGOTTEN)
        return None


def severity_rank(severity: str) -> int:
    return SEVERITY_CODES.index(severity) if severity in SEVERITY_CODES else len(SEVERITY_CODES)
