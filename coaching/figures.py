"""Derived figures: what a member's history says as of each of their events.

A pure computation over the member's events in time order (``occurred_at``, ties broken by
``external_id``): one pass carries the running state (runs, streaks, the pain episode, the
profile) forward, so the figures of every event are what the events before it say, whatever
order they arrived in.

Days are calendar days in local time, and each event carries its own: the offset of its
``occurred_at`` says which local day it fell on. "This and the 6 days before" is the judged
event's local date and the 6 local dates before it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from typing import Any, Protocol

from rules.evaluation import moment_pack, moment_unpack
from rules.registry import BOOLEAN

from .catalog import PAIN_REPORT, PROFILE, PROFILE_FIELDS, RUN

PAIN_FREE_MAX = 2  # a run with pain during and after at most this keeps the pain-free streak
STREAK_BREAKING_PAIN = 3  # a pain report of this or more breaks the pain-free streak
EPISODE_GAP = timedelta(days=14)
LONGEST_RUN_DAYS = 30
PAIN_REPORT_DAYS = 14
# Events in time order can have local dates out of order by up to two days (an offset is under
# a day each way).
LOCAL_DAYS_SLACK = timedelta(days=2)
# Runs further back than this cannot fall in any calendar window (30 days, plus offsets).
RECENT_RUNS_SPAN = timedelta(days=LONGEST_RUN_DAYS + 2)
# Bump when a figure's definition changes: a member's kept running state (``History.state``)
# of another version is not used, and the member's stored figures are all computed again.
FIGURES_VERSION = 3


class EventLike(Protocol):
    type: str
    occurred_at: datetime
    utc_offset_minutes: int
    data: Mapping[str, Any]


def local_date(moment: datetime, offset_minutes: int) -> date:
    return moment.astimezone(local_zone(offset_minutes)).date()


@functools.cache
def local_zone(offset_minutes: int) -> dt_timezone:
    """The fixed offset of ``offset_minutes`` (one object per offset)."""
    return dt_timezone(timedelta(minutes=offset_minutes))


@dataclass
class _Run:
    occurred_at: datetime
    day: date
    distance: float


@dataclass
class History:
    """The running state of one member's history, one event at a time."""

    runs: list[_Run] = field(default_factory=list)  # recent runs only, oldest first
    run_days: set[date] = field(default_factory=set)
    last_day: date | None = None  # the local date of the latest event counted
    run_count: int = 0
    last_run_at: datetime | None = None
    pain_free_streak: int = 0
    alone_streak: int = 0
    pain_report_days: list[date] = field(default_factory=list)
    last_pain_at: datetime | None = None
    episode_start: datetime | None = None
    profile: dict[str, Any] = field(default_factory=dict)

    def add(self, event: EventLike) -> None:
        data = event.data or {}
        self.last_day = local_date(event.occurred_at, event.utc_offset_minutes)
        if event.type == RUN:
            self.run_count += 1
            self.last_run_at = event.occurred_at
            day = local_date(event.occurred_at, event.utc_offset_minutes)
            self.runs.append(_Run(event.occurred_at, day, _distance(data)))
            self.run_days.add(day)
            while self.runs and event.occurred_at - self.runs[0].occurred_at > RECENT_RUNS_SPAN:
                self.runs.pop(0)
            # A pain level not reported counts as no pain: the streak is about reported trouble.
            pain_free = (data.get("pain_during") or 0) <= PAIN_FREE_MAX and (
                data.get("pain_after") or 0
            ) <= PAIN_FREE_MAX
            self.pain_free_streak = self.pain_free_streak + 1 if pain_free else 0
            self.alone_streak = 0 if data.get("with_group") is True else self.alone_streak + 1
        elif event.type == PAIN_REPORT:
            if (data.get("pain") or 0) >= STREAK_BREAKING_PAIN:
                self.pain_free_streak = 0
            self.pain_report_days.append(local_date(event.occurred_at, event.utc_offset_minutes))
            if self.last_pain_at is None or event.occurred_at - self.last_pain_at >= EPISODE_GAP:
                self.episode_start = event.occurred_at
            onset = data.get("onset_date")
            if onset:
                tz = dt_timezone(timedelta(minutes=event.utc_offset_minutes))
                started = datetime.combine(date.fromisoformat(onset), time.min, tzinfo=tz)
                self.episode_start = min(self.episode_start or started, started)
            self.last_pain_at = event.occurred_at
        elif event.type == PROFILE:
            profile_apply(self.profile, data)

    def state(self) -> dict[str, Any]:
        """What the figures of any later event need of this state, as JSON: the recent runs, the
        days of the run-day streaks that can still reach a later day, the pain reports of the
        last weeks, the streaks, the pain episode and the profile. ``History.restored`` of it
        gives every later event the figures this state itself gives it.

        Compact, since it is written with every ingest of the member: moments as ``moment_pack``
        gives them, days as how many days before ``last_day`` they are."""
        last = self.last_day
        ref = last.toordinal() if last is not None else 0
        # A later event's local date is at least two days before this one's (offsets), so only
        # streaks of run days reaching that far back can still be counted.
        days: list[int] = []
        if last is not None:
            reach = ref - (LOCAL_DAYS_SLACK + timedelta(days=1)).days
            for day in sorted((d.toordinal() for d in self.run_days), reverse=True):
                if day >= reach or (days and day == days[-1] - 1):
                    days.append(day)
                elif day < reach:
                    break
        pain_from = (last - timedelta(days=PAIN_REPORT_DAYS) - 2 * LOCAL_DAYS_SLACK).toordinal() if last else 0
        return {
            "version": FIGURES_VERSION,
            "runs": [[moment_pack(run.occurred_at), ref - run.day.toordinal(), run.distance] for run in self.runs],
            "run_days": [ref - day for day in days],
            "last_day": ref if last is not None else None,
            "run_count": self.run_count,
            "last_run_at": moment_pack(self.last_run_at),
            "pain_free_streak": self.pain_free_streak,
            "alone_streak": self.alone_streak,
            "pain_report_days": [ref - d.toordinal() for d in self.pain_report_days if d.toordinal() >= pain_from],
            "last_pain_at": moment_pack(self.last_pain_at),
            "episode_start": moment_pack(self.episode_start),
            "profile": self.profile,
        }

    @classmethod
    def restored(cls, state: Mapping[str, Any] | None) -> History | None:
        """The state ``state()`` gave, or None when there is none or it is of another version."""
        if not state or state.get("version") != FIGURES_VERSION:
            return None
        ref = state["last_day"] or 0
        return cls(
            runs=[_Run(moment_unpack(at), date.fromordinal(ref - ago), km) for at, ago, km in state["runs"]],
            run_days={date.fromordinal(ref - ago) for ago in state["run_days"]},
            last_day=date.fromordinal(ref) if state["last_day"] is not None else None,
            run_count=state["run_count"],
            last_run_at=moment_unpack(state["last_run_at"]),
            pain_free_streak=state["pain_free_streak"],
            alone_streak=state["alone_streak"],
            pain_report_days=[date.fromordinal(ref - ago) for ago in state["pain_report_days"]],
            last_pain_at=moment_unpack(state["last_pain_at"]),
            episode_start=moment_unpack(state["episode_start"]),
            profile=dict(state["profile"]),
        )

    def figures(self, *, at: datetime, today: date, this_run: EventLike | None) -> dict[str, Any]:
        # The bounds are computed once: this runs for every event judged, over every recent run.
        week_from = today - timedelta(days=6)
        previous_from, previous_to = today - timedelta(days=13), today - timedelta(days=7)
        longest_from = today - timedelta(days=LONGEST_RUN_DAYS)
        pain_from = today - timedelta(days=PAIN_REPORT_DAYS - 1)
        this = self.runs[-1] if this_run is not None and self.runs else None
        weekly = previous = longest = 0.0
        runs_last_7 = 0
        for run in self.runs:
            day = run.day
            if week_from <= day <= today:
                weekly += run.distance
                runs_last_7 += 1
            elif previous_from <= day <= previous_to:
                previous += run.distance
            if run is not this and longest_from <= day <= today and run.distance > longest:
                longest = run.distance
        figures: dict[str, Any] = {
            "weekly_distance_km": round(weekly, 3),
            "previous_week_distance_km": round(previous, 3),
            "runs_last_7_days": runs_last_7,
            "longest_run_30d_km": round(longest, 3),
            "consecutive_run_days": _consecutive_days(self.run_days, today),
            "pain_free_run_streak": self.pain_free_streak,
            "runs_without_group_streak": self.alone_streak,
            "pain_reports_last_14_days": self._pain_reports(pain_from, today),
            "pain_episode_weeks": self._episode_weeks(at),
        }
        if previous > 0:
            figures["weekly_distance_increase_pct"] = round((weekly - previous) / previous * 100, 2)
        figures.update(profile_figures(self.profile))
        return figures

    def _pain_reports(self, first: date, last: date) -> int:
        # The days are in time order, each in its own offset: a day more than two before the
        # window's first can only be followed by days before the window, so the count stops there.
        count = 0
        for day in reversed(self.pain_report_days):
            if day < first - LOCAL_DAYS_SLACK:
                break
            if first <= day <= last:
                count += 1
        return count

    def _episode_weeks(self, at: datetime) -> int:
        if self.last_pain_at is None or self.episode_start is None or at - self.last_pain_at >= EPISODE_GAP:
            return 0
        return max(0, math.floor((at - self.episode_start) / timedelta(weeks=1)))


def _consecutive_days(run_days: set[date], today: date) -> int:
    streak = 0
    day = today
    while day in run_days:
        streak += 1
        day -= timedelta(days=1)
    return streak


def _distance(data: Mapping[str, Any] | None) -> float:
    return float((data or {}).get("distance_km", 0) or 0)


def profile_figures(merged: Mapping[str, Any]) -> dict[str, Any]:
    """The profile as rules see it: the merged fields, booleans false when never said."""
    profile: dict[str, Any] = {}
    for spec in PROFILE_FIELDS:
        if spec.name in merged:
            profile[spec.name] = merged[spec.name]
        elif spec.kind == BOOLEAN:
            profile[spec.name] = False
    return profile


def figures_timeline(
    events: Sequence[EventLike], *, first: int = 0, history: History | None = None
) -> list[dict[str, Any]]:
    """The figures of each of ``events[first:]`` (one member's events, in time order), as of
    that event: the events before ``first`` are only counted. ``history``: the running state
    of the member's events before ``events`` (none: ``events`` are all of them), carried on to
    the last of them."""
    history = history if history is not None else History()
    for event in events[:first]:
        history.add(event)
    result = []
    for event in events[first:]:
        last_run_at = history.last_run_at
        history.add(event)
        today = local_date(event.occurred_at, event.utc_offset_minutes)
        this_run = event if event.type == RUN else None
        figures = history.figures(at=event.occurred_at, today=today, this_run=this_run)
        if last_run_at is not None:
            figures["hours_since_last_run"] = round((event.occurred_at - last_run_at).total_seconds() / 3600, 2)
        if this_run is not None:
            figures.update(
                _run_figures(event.data or {}, run_number=history.run_count, longest=figures["longest_run_30d_km"])
            )
        result.append(figures)
    return result


def figures_now(events: Sequence[EventLike], *, at: datetime) -> dict[str, Any]:
    """The member's figures "as of now": every event up to ``at`` counted, days in the local
    time of the latest one, and ``run_number`` the number of runs so far."""
    history = History()
    offset = 0
    for event in events:
        if event.occurred_at > at:
            break
        history.add(event)
        offset = event.utc_offset_minutes
    today = local_date(at, offset) if events else at.astimezone(UTC).date()
    figures = history.figures(at=at, today=today, this_run=None)
    if history.last_run_at is not None:
        figures["hours_since_last_run"] = round((at - history.last_run_at).total_seconds() / 3600, 2)
    figures["run_number"] = history.run_count
    return figures


def profile_apply(profile: dict[str, Any], data: Mapping[str, Any] | None) -> None:
    """One profile event over the profile as it stood: the latest value of each field wins, and a
    back injury declared without a clearance in the same event voids an earlier clearance (the
    clearance covered what was known when it was given)."""
    data = data or {}
    profile.update(data)
    if data.get("back_injury") is True and data.get("cleared_by_physician") is not True:
        profile["cleared_by_physician"] = False


def event_pain(event: EventLike) -> int | None:
    """The pain of a pain report, or of a run (the larger of pain during and after); None for
    other events and for a run that reports neither."""
    data = event.data or {}
    if event.type == PAIN_REPORT:
        return data.get("pain")
    if event.type == RUN:
        reported = [data[name] for name in ("pain_during", "pain_after") if data.get(name) is not None]
        return max(reported) if reported else None
    return None


def _run_figures(data: Mapping[str, Any], *, run_number: int, longest: float) -> dict[str, Any]:
    figures: dict[str, Any] = {"run_number": run_number}
    if longest > 0:
        figures["long_run_increase_pct"] = round((_distance(data) - longest) / longest * 100, 2)
    if "pain_before" in data and "pain_after" in data:
        figures["pain_rise"] = data["pain_after"] - data["pain_before"]
    return figures
