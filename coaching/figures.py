"""Derived figures: what the member's stored history says as of a moment.

Every figure is computed as of the judged event's own ``occurred_at`` (never arrival
order), so a late event is judged against the history that existed at its time, and
earlier events keep the figures they had. Calendar-day figures use the offset the judged
event was sent with, so "this day" is the member's day, not UTC's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.db.models import Q, QuerySet

from rules.registry import BOOLEAN

from .catalog import PAIN_REPORT, PROFILE, PROFILE_FIELDS, RUN
from .models import Event, Member

PAIN_FREE_MAX = 2
EPISODE_GAP = timedelta(days=14)
LONGEST_RUN_WINDOW = timedelta(days=30)
PAIN_REPORT_WINDOW = timedelta(days=14)
STREAK_CHUNK = 100


def figures_as_of(*, member: Member, at: datetime, event: Event | None = None) -> dict[str, Any]:
    """The derived figures of API.md section 5 for ``member`` at ``at``.

    With ``event`` (stored, occurring at ``at``) the figures describe that event: it counts
    in totals and streaks, and run-only figures (run number, pain rise...) are added.
    Without it they describe the member "as of now".
    """
    if event is not None:
        upto = Q(occurred_at__lt=at) | Q(occurred_at=at, pk__lte=event.pk)
        tz = event.sent_timezone
    else:
        upto = Q(occurred_at__lte=at)
        latest = member.events.filter(upto).order_by("-occurred_at", "-pk").only("utc_offset_minutes").first()
        tz = latest.sent_timezone if latest else UTC
    history = member.events.filter(upto)
    runs = history.filter(type=RUN).order_by("-occurred_at", "-pk")
    this_run = event if event is not None and event.type == RUN else None

    figures: dict[str, Any] = {}
    figures.update(_training_figures(runs, at=at, tz=tz, this_run=this_run))
    figures.update(_pain_figures(history.filter(type=PAIN_REPORT).order_by("-occurred_at", "-pk"), at=at))
    figures.update(profile_as_of(history.filter(type=PROFILE)))
    if this_run is not None:
        figures.update(_run_figures(this_run, runs=runs, longest_30d=figures["longest_run_30d_km"]))
    elif event is None:
        figures["run_number"] = runs.count()  # as of now: the number of the latest run, 0 before the first
    return figures


def profile_merged(profile_events: QuerySet[Event]) -> dict[str, Any]:
    """Merge profile events oldest first, so the latest value of each field wins.

    A profile event updates the fields it carries and leaves the others as they were.
    """
    merged: dict[str, Any] = {}
    for data in profile_events.order_by("occurred_at", "pk").values_list("data", flat=True):
        merged.update(data or {})
    return merged


def profile_as_of(profile_events: QuerySet[Event]) -> dict[str, Any]:
    """The profile figures: merged profile fields, booleans false when never said."""
    merged = profile_merged(profile_events)
    profile: dict[str, Any] = {}
    for spec in PROFILE_FIELDS:
        if spec.name in merged:
            profile[spec.name] = merged[spec.name]
        elif spec.kind == BOOLEAN:
            profile[spec.name] = False
    return profile


def _training_figures(
    runs: QuerySet[Event], *, at: datetime, tz: dt_timezone, this_run: Event | None
) -> dict[str, Any]:
    today = at.astimezone(tz).date()
    fortnight_start = datetime.combine(today - timedelta(days=13), time.min, tzinfo=tz)
    since = min(fortnight_start, at - LONGEST_RUN_WINDOW)
    recent = list(runs.filter(occurred_at__gte=since).values_list("pk", "occurred_at", "data"))

    weekly = previous = 0.0
    runs_last_7 = 0
    longest = 0.0
    for pk, occurred_at, data in recent:
        day = occurred_at.astimezone(tz).date()
        distance = _distance(data)
        if today - timedelta(days=6) <= day <= today:
            weekly += distance
            runs_last_7 += 1
        elif today - timedelta(days=13) <= day <= today - timedelta(days=7):
            previous += distance
        if (this_run is None or pk != this_run.pk) and occurred_at >= at - LONGEST_RUN_WINDOW:
            longest = max(longest, distance)

    figures: dict[str, Any] = {
        "weekly_distance_km": round(weekly, 3),
        "previous_week_distance_km": round(previous, 3),
        "runs_last_7_days": runs_last_7,
        "longest_run_30d_km": round(longest, 3),
    }
    if previous > 0:
        figures["weekly_distance_increase_pct"] = round((weekly - previous) / previous * 100, 2)

    earlier = runs.exclude(pk=this_run.pk) if this_run is not None else runs
    last_run_at = earlier.values_list("occurred_at", flat=True).first()
    if last_run_at is not None:
        figures["hours_since_last_run"] = round((at - last_run_at).total_seconds() / 3600, 2)

    # Both walk the runs newest first and usually stop after a few: one query, read in small chunks.
    for_days, for_streaks = itertools.tee(runs.values_list("occurred_at", "data").iterator(chunk_size=STREAK_CHUNK))
    figures["consecutive_run_days"] = _consecutive_days(
        (occurred_at.astimezone(tz).date() for occurred_at, _data in for_days), today=today
    )
    figures.update(_streaks(data for _occurred_at, data in for_streaks))
    return figures


def _consecutive_days(days_newest_first: Iterable[date], *, today: date) -> int:
    streak = 0
    expected = today
    for day in days_newest_first:
        if day > expected:  # another run on a day already counted
            continue
        if day != expected:
            break
        streak += 1
        expected -= timedelta(days=1)
    return streak


def _streaks(run_data_newest_first: Iterable[dict[str, Any]]) -> dict[str, int]:
    # A pain level not reported counts as no pain: the streak is about reported trouble.
    pain_free = alone = 0
    pain_free_open = alone_open = True
    for data in run_data_newest_first:
        data = data or {}
        if pain_free_open:
            if data.get("pain_during", 0) <= PAIN_FREE_MAX and data.get("pain_after", 0) <= PAIN_FREE_MAX:
                pain_free += 1
            else:
                pain_free_open = False
        if alone_open:
            if data.get("with_group") is True:
                alone_open = False
            else:
                alone += 1
        if not (pain_free_open or alone_open):
            break
    return {"pain_free_run_streak": pain_free, "runs_without_group_streak": alone}


def _pain_figures(pain_reports: QuerySet[Event], *, at: datetime) -> dict[str, Any]:
    recent_count = pain_reports.filter(occurred_at__gte=at - PAIN_REPORT_WINDOW).count()
    episode_start: datetime | None = None
    newer: datetime | None = None
    for occurred_at, offset, data in pain_reports.values_list("occurred_at", "utc_offset_minutes", "data").iterator():
        if (newer or at) - occurred_at >= EPISODE_GAP:
            break
        newer = occurred_at
        started = occurred_at
        onset = (data or {}).get("onset_date")
        if onset:
            tz = dt_timezone(timedelta(minutes=offset))
            started = min(started, datetime.combine(date.fromisoformat(onset), time.min, tzinfo=tz))
        episode_start = started if episode_start is None else min(episode_start, started)
    weeks = 0
    if episode_start is not None:
        weeks = max(0, math.floor((at - episode_start).total_seconds() / timedelta(weeks=1).total_seconds()))
    return {"pain_reports_last_14_days": recent_count, "pain_episode_weeks": weeks}


def _run_figures(run: Event, *, runs: QuerySet[Event], longest_30d: float) -> dict[str, Any]:
    data = run.data or {}
    figures: dict[str, Any] = {"run_number": runs.count()}
    if longest_30d > 0:
        figures["long_run_increase_pct"] = round((_distance(data) - longest_30d) / longest_30d * 100, 2)
    if "pain_before" in data and "pain_after" in data:
        figures["pain_rise"] = data["pain_after"] - data["pain_before"]
    return figures


def _distance(data: dict[str, Any] | None) -> float:
    return float((data or {}).get("distance_km", 0) or 0)
