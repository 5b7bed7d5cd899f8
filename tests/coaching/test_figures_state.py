"""A member's running state of figures, kept as JSON after any event (``History.state``), gives
every later event exactly the figures that counting the whole history again gives: over random
histories of every type and offset, and over long daily streaks across offsets far apart (the
state keeps only what a later event can still reach)."""

from __future__ import annotations

import datetime as dt
import json
import random
from types import SimpleNamespace

import pytest

from coaching.catalog import FIGURE_NAMES
from coaching.figures import FIGURES_VERSION, History, figures_timeline, moment_pack, moment_unpack

from .properties import histories


def as_events(payloads):
    events = []
    for payload in payloads:
        at = dt.datetime.fromisoformat(payload["occurred_at"])
        offset = int(at.utcoffset().total_seconds() // 60)
        events.append(
            SimpleNamespace(
                type=payload["type"], occurred_at=at.astimezone(dt.UTC), utc_offset_minutes=offset, data=payload["data"]
            )
        )
    return events


def continued(events, split):
    """The figures of ``events[split:]`` from the state kept after ``events[:split]``."""
    history = History()
    figures_timeline(events[:split], history=history)
    restored = History.restored(json.loads(json.dumps(history.state())))
    return figures_timeline(events[split:], history=restored)


@pytest.mark.parametrize("seed", range(6))
def test_the_kept_state_continues_exactly_as_the_whole_history(seed):
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    for payloads in histories(seed, members=3, events=(30, 45), now=now):
        events = as_events(payloads)
        whole = figures_timeline(events)
        for split in range(1, len(events)):
            assert continued(events, split) == whole[split:], f"split at {split}"


def test_daily_streaks_across_far_apart_offsets_are_counted_whole():
    rng = random.Random(7)
    payloads = []
    for n in range(60):
        # Every local day has a run, in offsets 22 hours apart; now and then a pain report too.
        at = dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC) + dt.timedelta(days=n, minutes=rng.randint(0, 50))
        for kind in ("run", "pain_report") if n % 9 == 4 else ("run",):
            zone = dt.timezone(dt.timedelta(minutes=rng.choice([-9 * 60, 0, 13 * 60])))
            data = {"pain": rng.randint(0, 6)} if kind == "pain_report" else {"distance_km": 5.0, "pain_during": 1}
            payloads.append({"type": kind, "occurred_at": at.astimezone(zone).isoformat(), "data": data})
            at += dt.timedelta(minutes=5)
    events = as_events(payloads)
    whole = figures_timeline(events)
    assert max(f["consecutive_run_days"] for f in whole) == 60  # far longer than anything kept
    for split in range(1, len(events)):
        assert continued(events, split) == whole[split:], f"split at {split}"


def test_a_state_of_another_version_is_not_used():
    history = History()
    assert History.restored(history.state()) is not None
    assert History.restored({**history.state(), "version": FIGURES_VERSION + 1}) is None
    assert History.restored(None) is None


def test_every_figure_counted_is_a_derived_field_of_the_catalog():
    events = as_events(histories(1, members=1, events=(60, 60), now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))[0])
    assert set().union(*figures_timeline(events)) <= FIGURE_NAMES


@pytest.mark.parametrize("minutes", [0, 60, -300, 345, 765, -720])
def test_moments_are_kept_exactly_in_any_offset_and_to_the_microsecond(minutes):
    zone = dt.timezone(dt.timedelta(minutes=minutes))
    rng = random.Random(minutes)
    for _ in range(200):
        moment = dt.datetime(2026, 1, 1, tzinfo=zone) + dt.timedelta(seconds=rng.randrange(10**8))
        if rng.random() < 0.3:
            moment = moment.replace(microsecond=rng.randrange(1, 10**6))
        packed = json.loads(json.dumps(moment_pack(moment)))
        assert moment_unpack(packed) == moment
        assert isinstance(packed, int) == (moment.microsecond == 0)
    assert moment_pack(None) is None and moment_unpack(None) is None
    # As kept before the compact state: ISO 8601 text.
    assert moment_unpack("2026-11-02T03:18:27+01:00") == dt.datetime(2026, 11, 2, 2, 18, 27, tzinfo=dt.UTC)
