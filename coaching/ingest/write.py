"""Step 3 of the pipeline: write what judging planned, in one transaction.

Members first (each moved to its next revision if it is still at the one read, which locks its
row), then the events, the withdrawals, the new advice and the figures, in bulk. A member
written by another request meanwhile raises ``MemberChanged``: the request reads and judges
again.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from django.utils import timezone

from .. import webhooks
from ..catalog import PROFILE
from ..internal.db.bulk import objects_insert, rows_update
from ..models import Advice, Event, Gym, Member
from .judge import MEMBER_STATE_FORGOTTEN, MemberWork, Plan, member_state_values


class MemberChanged(Exception):
    """A member changed (or appeared) since it was read: read and judge again."""


def write(gym: Gym, works: Sequence[MemberWork]) -> None:
    """Write every member's plan (``works`` in the members' key order, as every ingest takes
    them, so two never wait on each other's rows in a circle). Call inside a transaction."""
    fresh = [work for work in works if work.row is None]
    if fresh:
        created = [Member(gym=gym, external_id=work.key) for work in fresh]
        objects_insert(created)
        for work, row in zip(fresh, created, strict=True):
            work.row = row
            for event in work.new:
                event.member = row
            if work.plan is not None:
                work.plan.member = row
                for advice in work.plan.creating:
                    advice.member = row
    referred: dict[str, Event] = {}  # by member: a referral that starts on an event stored below
    advancing = []
    referrals_changed: list[tuple[MemberWork, dict[str, Any], Any]] = []
    for work in works:
        values: dict[str, Any] = {"revision": work.revision + 1}
        if work.plan is not None:
            values.update(member_state_values(work.plan))
            before = (work.row.referral_since, work.row.referral_rule_key) if work.row.pk is not None else (None, "")
            if (values["referral_since"], values["referral_rule_key"]) != before:
                referrals_changed.append((work, values, before[0]))
            referral = work.plan.referral
            on = work.plan.by_fact.get(referral.fact_id) if referral is not None else None
            if on is not None and on.pk is None:
                referred[work.key] = on
        else:  # its evaluation failed: the next one reads and counts its whole history
            values.update(MEMBER_STATE_FORGOTTEN)
        advancing.append((work, values))
    _members_advance(advancing)
    events = []
    for work in works:
        if work.error:
            for event in work.new:
                event.evaluated, event.evaluation_error = False, work.error
        events.extend(work.new)
    objects_insert(events)
    # The members are locked (advanced above) and at the revision just written.
    profiled = [work for work in works if any(event.type == PROFILE for event in work.new)]
    _members_set(profiled, "profile", lambda work: dict(work.history.profile))
    _members_set([work for work in works if work.key in referred], "referral_event_id", lambda w: referred[w.key].pk)
    plans = [work.plan for work in works if work.plan is not None]
    _changes_stamp(plans)
    for plan in plans:  # withdrawals first: a replacement must not meet the advice it replaces
        plan_apply(plan)
    objects_insert([advice for plan in plans for advice in plan.creating])
    for work in works:
        if work.error:
            later = Event.objects.filter(member=work.row)
            if work.since is not None:
                later = later.filter(occurred_at__gte=work.since[0])
            later.update(evaluated=False, evaluation_error=work.error)
    if gym.webhooks_active:
        webhooks.outbox_add(_webhook_changes(plans, referrals_changed))


def _webhook_changes(plans: Sequence[Plan], referrals: list[tuple[MemberWork, dict[str, Any], Any]]) -> list:
    """What the gym's webhooks hear of this write: advice given and withdrawn, referrals changed
    (each about recent events only, like advice: a referral's start, or for its end the newest
    event sent, else the start of the referral that ended)."""
    changes = webhooks.advice_changes(
        created=[a for plan in plans for a in plan.creating], withdrawn=[a for plan in plans for a in plan.withdrawn]
    )
    changed = []
    for work, values, since_before in referrals:
        about = values["referral_since"] or max((e.occurred_at for e in work.new), default=since_before)
        if about is not None and not webhooks.recent(about):
            continue
        referral = None
        if values["referral_since"] is not None:
            on = work.plan.by_fact.get(work.plan.referral.fact_id)
            referral = webhooks.referral_data(
                since=values["referral_since"],
                rule_key=values["referral_rule_key"],
                rule_name=values["referral_rule_name"],
                event=on.external_id if on is not None else None,
            )
        changed.append((work.row, referral))
    return changes + webhooks.member_changes(members=changed, kind="member.referral_changed")


def _changes_stamp(plans: Sequence[Plan]) -> None:
    """Date the changes now that the members' rows are held (advanced above): a change dated
    before a wait for the write lock could commit after the change feed has listed later ones,
    and a poller's watermark would pass it. Dated here, it commits within the feed's settle time."""
    now = timezone.now()
    for plan in plans:
        plan.now = now
        for advice in plan.creating:
            advice.changed_at = now
        for advice in plan.withdrawn:
            advice.withdrawn_at = advice.changed_at = now


def plan_apply(plan: Plan) -> None:
    """Write ``plan``'s withdrawals, figures and completed evaluations (its new advice is written
    with other members', in one statement)."""
    now, cause = plan.now, plan.cause
    # Withdrawals share the moment and the cause, so one statement per reason writes them.
    by_reason: dict[str, list[int]] = defaultdict(list)
    for advice in plan.withdrawn:
        advice.withdrawn_by = cause  # again: a cause stored since the plan was made has its key now
        by_reason[advice.withdrawn_reason].append(advice.pk)
    for reason, pks in by_reason.items():
        Advice.objects.filter(pk__in=pks).update(
            withdrawn_at=now, changed_at=now, withdrawn_by=cause, withdrawn_reason=reason
        )
    # Only what changed is written, one field per statement: bulk_update builds a CASE per object
    # and field.
    if plan.refigured:
        Event.objects.bulk_update(plan.refigured, ["figures"], batch_size=500)
    if plan.completed:
        Event.objects.filter(pk__in=[e.pk for e in plan.completed]).update(evaluated=True, evaluation_error="")


def _members_advance(advancing: list[tuple[MemberWork, dict[str, Any]]]) -> None:
    """Move each member to its next revision with its new columns, in the order given, if it is
    still at the revision that was judged (``MemberChanged`` otherwise); one statement per run
    of members writing the same columns."""
    for names, group in itertools.groupby(advancing, key=lambda item: tuple(item[1])):
        rows = [(work.row.pk, work.revision, [values[name] for name in names]) for work, values in group]
        if rows_update(Member, names, rows, guard="revision") != len(rows):
            raise MemberChanged


def _members_set(advanced: list[MemberWork], name: str, value: Callable[[MemberWork], Any]) -> None:
    """Set one more column of members advanced in this transaction (so locked, at the revision
    written): one statement for all of them."""
    rows = [(work.row.pk, work.revision + 1, [value(work)]) for work in advanced]
    if rows_update(Member, [name], rows, guard="revision") != len(rows):
        raise MemberChanged  # cannot happen while the rows are locked; never write half of it
