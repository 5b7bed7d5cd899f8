"""Step 2 of the pipeline: judge each touched member's events, without writing anything.

For each member: the figures of its events in time order, its new (or re-judged) events in one
engine call for all members, the one decision policy (``rules.evaluation``), and the
difference with its stored advice, as a ``Plan``. An event later than all of its member's
others is judged from what judging kept on the member's row (``Member.kept_state``: the
policy's memory and the running state of the figures); otherwise the member's current advice
is read and the policy's memory replayed from it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from rules.evaluation import (
    Decision,
    DecisionState,
    Fact,
    HistoryShort,
    LiveRuleset,
    Policy,
    Referral,
    moment_pack,
    moment_unpack,
    timelines_judge,
)

from .. import metrics
from ..catalog import FACT_TYPES, FIGURE_NAMES
from ..evaluation import (
    OWN_FIGURES,
    advice_card,
    event_fact,
    event_order,
    fact_id,
    given_of,
    history_start,
    member_facts,
    replay_fact,
)
from ..figures import History
from ..internal.db.database import database_unavailable
from ..logs import log_context, log_context_add
from ..models import EARLIEST, Advice, Event, Member
from .read import StoredEvent, member_current_advice

logger = logging.getLogger("coaching.evaluation")  # where evaluation failures are logged

# Why advice was withdrawn, in words a gym's developer or a clinician reads.
WITHDRAWN_NO_LONGER_HOLDS = "No longer applies once the {what} of {date} ({external_id}) is counted."
WITHDRAWN_REPLACED = "Replaced by updated advice: the {what} of {date} ({external_id}) changed the figures."
WITHDRAWN_BY_REEVALUATION = "No longer given when re-evaluated with ruleset version {version}."
WITHDRAWN_REPLACED_BY_REEVALUATION = "Replaced by updated advice when re-evaluated with ruleset version {version}."

AnyEvent = Event | StoredEvent


@dataclass
class MemberWork:
    """One member the pipeline judges: its row (None: new), its stored events read, its new ones,
    from where it is judged and what caused it."""

    key: str  # the gym's id of the member
    row: Member | None
    stored: list[AnyEvent] = field(default_factory=list)  # in judging order
    new: list[Event] = field(default_factory=list)
    # Judged from this event on (an ``event_order`` key; None: from the first), and the event
    # whose arrival made it necessary (None: a re-evaluation).
    since: tuple[datetime, str] | None = None
    cause: Event | None = None
    whole: bool = False  # its whole history was read (the locked mode): everything is checked
    plan: Plan | None = None
    error: str = ""  # why its evaluation failed
    seconds: float | None = None  # its share of the batched engine call
    # The running state of its figures: as kept on its row when its new events are judged from
    # it; after judging, as it is after its last event.
    history: History | None = None
    vouched: bool = False  # its stored figures are all current (the kept state says so)

    @property
    def revision(self) -> int:
        """The revision judged: the member's as read (a new member's first is 0)."""
        return self.row.revision if self.row is not None else 0

    @property
    def events(self) -> list[AnyEvent]:
        return sorted(self.stored + self.new, key=event_order)


@dataclass
class Plan:
    """What judging one member's events changes, worked out without writing anything."""

    member: Member | None
    events: list[Event]  # the member's events read, in judging order (new ones unsaved)
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


@dataclass
class _Timeline:
    """One member's events as judging takes them: from ``first`` on (the older ones only
    counted in the figures), judged from ``start`` on, stored figures checked from ``checked``."""

    work: MemberWork
    events: list[AnyEvent]
    start: int
    first: int
    checked: int
    state: DecisionState | None = None  # None: to be replayed from the stored advice
    facts: list[Fact] = field(default_factory=list)


# -- what judging keeps on a member's row ----------------------------------------------------------
def kept_state_dump(state: DecisionState, last: AnyEvent, history: History | None) -> dict[str, Any]:
    """``Member.kept_state`` after ``last``: the policy's memory and, when counted, the figures'."""
    kept = {"through": [moment_pack(last.occurred_at), last.external_id], "decision": state.dump()}
    if history is not None:
        kept["figures"] = history.state()
    return kept


def _kept(member: Member, events: Sequence[AnyEvent]) -> dict[str, Any] | None:
    """The state kept on the member's row, if it was written after the last of ``events``."""
    kept = member.kept_state
    if not kept or not events:
        return None
    at, external_id = kept["through"]
    last = events[-1]
    if last.external_id != external_id or last.occurred_at != moment_unpack(at):
        return None
    return kept


def figures_state_load(member: Member, events: Sequence[AnyEvent]) -> History | None:
    """The running state of the figures after ``events`` (the member's latest, in order), from
    its row: None unless kept after the last of them by this version of the figures. Where it
    is, every stored event's figures are what counting gives now."""
    kept = _kept(member, events)
    return History.restored(kept["figures"]) if kept is not None and "figures" in kept else None


def decision_state_load(member: Member, events: Sequence[AnyEvent]) -> DecisionState | None:
    """What the policy remembers after ``events`` (all of the member's, in order), from its row:
    None unless kept after the last of them."""
    kept = _kept(member, events)
    if kept is None or "decision" not in kept:
        return None  # none, or kept in an earlier form: replayed from the stored advice
    state = DecisionState.load(kept["decision"])
    if state.referral is not None and member.referral_event_id is not None:
        # Kept while its event was being stored (its id then a placeholder): the row knows its key.
        state.referral = replace(state.referral, fact_id=str(member.referral_event_id))
    return state


def decision_state_replay(
    events: Sequence[AnyEvent], advice_by_event: dict[int, list[Advice]], *, policy: Policy
) -> DecisionState:
    """What the policy remembers of ``events`` (already judged), from their stored current advice."""
    steps = ((replay_fact(event), given_of(advice_by_event.get(event.pk, ()))) for event in events)
    return DecisionState.replay(steps, policy=policy)


def member_state_values(plan: Plan) -> dict[str, Any]:
    """The member's columns after ``plan`` (its new events stored): the referral in force and
    what judging keeps."""
    referral = plan.referral
    last = plan.events[-1] if plan.events else None
    return {
        "referral_since": referral.since if referral else None,
        "referral_rule_key": referral.rule_key if referral else "",
        "referral_rule_name": referral.rule_name if referral else "",
        "referral_event_id": _referral_event_id(referral, plan.by_fact) if referral else None,
        "kept_state": kept_state_dump(plan.state, last, plan.history) if last is not None else None,
        "read_from": (
            last.occurred_at - plan.window
            if last is not None and plan.history is not None and plan.window is not None
            else EARLIEST
        ),
    }


# The member's columns when what judging keeps is lost (an evaluation failed): the next ingest
# reads and counts the member's whole history.
MEMBER_STATE_FORGOTTEN = {"kept_state": None, "read_from": EARLIEST}


def _referral_event_id(referral: Referral, by_fact: dict[str, Event]) -> int | None:
    """The stored event a referral started on: judged now, or (older than the events judged, and
    so not among them) named by its primary key."""
    event = by_fact.get(referral.fact_id)
    if event is not None:
        return event.pk
    return int(referral.fact_id) if referral.fact_id.isdigit() else None


# -- judging -----------------------------------------------------------------------------------------
def judging_start(events: Sequence[AnyEvent], since: tuple[datetime, str] | None) -> int:
    """Where judging begins: at ``since``, or earlier at an event not evaluated yet; 0 for None."""
    if since is None:
        return 0
    for index, event in enumerate(events):
        if event_order(event) >= since or not event.evaluated:
            return index
    return len(events)


def histories_kept(works: Sequence[MemberWork], window: timedelta) -> list[MemberWork]:
    """Take each member's kept state where it can judge the new events (on time, the state
    current, the events read reaching back over the live rules' window); returns the members
    whose whole history must be read instead."""
    partial = []
    for work in works:
        row = work.row
        if row is None or work.whole:
            continue
        kept = figures_state_load(row, work.stored)
        first_new = min(work.new, key=event_order) if work.new else None
        if (
            kept is not None
            and first_new is not None
            and event_order(first_new) > event_order(work.stored[-1])
            and first_new.occurred_at - window >= row.read_from
        ):
            work.history = kept
            continue
        work.vouched = kept is not None
        if row.read_from > EARLIEST:
            partial.append(work)
    return partial


def judge(works: Sequence[MemberWork], live: LiveRuleset) -> None:
    """Plan every member's judging (``MemberWork.plan``): figures, one engine call, the policy,
    the difference with the stored advice. A member whose evaluation fails gets ``error`` set
    and no plan; the others are judged all the same. Raises ``HistoryShort`` when a version
    looking further back was published meanwhile (read again)."""
    window = live.history_window
    timelines = []
    for work in works:
        events = work.events
        start = judging_start(events, work.since)
        # Where the stored figures are not known to be current, they are all checked.
        checked = start if (work.history is not None or work.vouched) and not work.whole else 0
        # Facts are made for the events judged and those the engine can look back to within the
        # live version's window; the older ones are only counted (or, from a kept state, not read).
        first = min(history_start(events, start, window), checked)
        # The events judged again and checked are compared with, and their advice refers to, stored rows.
        events[checked:] = [e.event() if isinstance(e, StoredEvent) else e for e in events[checked:]]
        state = None
        if work.row is None:
            state = DecisionState()
        elif not work.whole and len(events[:start]) == len(work.stored):  # on time: the kept memory
            state = DecisionState() if start == 0 else decision_state_load(work.row, events[:start])
        timelines.append(_Timeline(work, events, start, first, checked, state))
    replayed = [t for t in timelines if t.state is None]
    current = member_current_advice([t.work.row.pk for t in replayed]) if replayed else {}
    for timeline in replayed:
        advice = current.get(timeline.work.row.pk, {})
        timeline.state = decision_state_replay(timeline.events[: timeline.start], advice, policy=live.policy)
    # The facts before the judged ones carry their figures only when the live rules' patterns
    # read one (the default pack's read only the events' own fields).
    with_figures = bool(FIGURE_NAMES & live.history_fields)
    omitted = frozenset() if with_figures else FIGURE_NAMES
    for timeline in timelines:
        _facts_make(timeline, with_figures)
    started = time.perf_counter()
    entries = [(t.facts, t.start - t.first, t.state) for t in timelines]
    try:
        judged: list[list[Decision] | None] = list(
            timelines_judge(entries, live_version=live.version, history_covered=window, history_omits=omitted)
        )
        for timeline in timelines:  # observed once written: a request judged again is counted once
            timeline.work.seconds = (time.perf_counter() - started) / len(timelines)
    except HistoryShort:
        raise
    except Exception as exc:
        if database_unavailable(exc):
            raise
        judged = _judge_one_by_one(timelines, window, omitted)
    for timeline, decisions in zip(timelines, judged, strict=True):
        if decisions is None:
            continue  # the engine failed for this member: its events are stored, waiting
        if decisions:
            log_context_add(ruleset_version=decisions[-1].version)
        work = timeline.work
        first = timeline.first
        work.plan = member_plan(
            member=work.row,
            events=timeline.events[first:],
            facts=timeline.facts,
            start=timeline.start - first,
            decisions=decisions,
            state=timeline.state,
            current=current.get(work.row.pk, {}) if work.row is not None else {},
            cause=work.cause,
            fresh={fact_id(event) for event in work.new},
            history=work.history,
            window=window,
            check_from=timeline.checked - first,
        )


def _facts_make(timeline: _Timeline, with_figures: bool) -> None:
    """The timeline's facts from ``first`` on, with the figures as of each (``work.history``: the
    running state after its last event)."""
    work, events, first, start = timeline.work, timeline.events, timeline.first, timeline.start
    if work.history is not None:  # judged from the kept state: the history facts as stored
        facts = [event_fact(event, event.figures if with_figures else {}) for event in events[first:start]]
        facts += member_facts(events[start:], history=work.history)
    elif with_figures or timeline.checked < start:
        work.history = History()
        facts = member_facts(events, first=first, history=work.history)
    else:
        work.history = History()
        for event in events[:start]:
            work.history.add(event)
        facts = [event_fact(event, {}) for event in events[first:start]]
        facts += member_facts(events[start:], history=work.history)
    timeline.facts = facts


def _judge_one_by_one(timelines: list[_Timeline], window: timedelta, omitted: frozenset[str]) -> list:
    """After a failed batch: each member on its own, so that one member's failure (recorded on
    its events) never stops the others."""
    judged: list[list[Decision] | None] = []
    for timeline in timelines:
        try:
            with metrics.evaluation_timed():
                entry = (timeline.facts, timeline.start - timeline.first, timeline.state)
                judged.append(timelines_judge([entry], history_covered=window, history_omits=omitted)[0])
        except HistoryShort:
            raise
        except Exception as exc:
            if database_unavailable(exc):
                raise
            with log_context(member=timeline.work.key):
                logger.exception("Evaluation of member %s failed", timeline.work.key)
            timeline.work.error = f"{type(exc).__name__}: {exc}"[:10000]
            judged.append(None)
    return judged


# -- the difference with the stored advice ------------------------------------------------------------
def _same(advice: Advice, match: Any, matched: list[str]) -> bool:
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


def member_plan(
    *,
    member: Member | None,
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
        member=member, events=events, decisions=decisions, start=start, state=state, cause=cause,
        history=history, window=window,
    )  # fmt: skip
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
