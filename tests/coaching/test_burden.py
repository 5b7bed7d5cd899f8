"""The burden a draft puts on members, beside every simulation: its figures are exactly what
counting a simulation's own rows gives, for the live version and for the draft."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter, defaultdict

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from coaching.models import Event, Gym, Member
from coaching.services import clinician_ensure
from rules import simulation
from rules.selectors import rule_spec, rules_with_children
from rules.services import rule_save

pytestmark = pytest.mark.django_db


def history(members: int = 24, days: int = 28, seed: int = 20) -> None:
    """A month of runs and pain reports (some with warning signs) of ``members`` members."""
    rng = random.Random(seed)
    gym = Gym.objects.create(name="Riverside Runners")
    now = timezone.now()
    rows = []
    for number in range(members):
        member = Member.objects.create(gym=gym, external_id=f"m-{number}")
        offset = rng.choice([0, 60, -300])
        cleared = {"experience": "regular", "cleared_by_physician": True}
        rows.append(
            Event(
                gym=gym,
                member=member,
                external_id=f"e-{number}-profile",
                type="profile",
                occurred_at=now - dt.timedelta(days=days + 30),
                data=cleared,
                content_hash="x",
                evaluated=True,
            )
        )
        for index in range(rng.randint(4, 14)):
            at = now - dt.timedelta(hours=rng.uniform(2, days * 24))
            if rng.random() < 0.7:
                kind = "run"
                data = {
                    "distance_km": round(rng.uniform(2, 14), 1),
                    "duration_min": rng.randint(15, 90),
                    "surface": rng.choice(["road", "hills", "trail"]),
                    "warmup_min": rng.randint(0, 10),
                    "pain_before": rng.randint(0, 2),
                    "pain_during": rng.choice([0, 0, 1, 2, 3, 5]),
                    "pain_after": rng.choice([0, 0, 1, 2, 3, 5]),
                }
            else:
                kind = "pain_report"
                data = {"pain": rng.randint(0, 2), "fever": rng.random() < 0.01}
            rows.append(
                Event(
                    gym=gym,
                    member=member,
                    external_id=f"e-{number}-{index}",
                    type=kind,
                    occurred_at=at,
                    utc_offset_minutes=offset,
                    data=data,
                    content_hash="x",
                    evaluated=True,
                )
            )
    Event.objects.bulk_create(rows)


def warm_up_tips_without_a_cooldown(min_warmup: int | None = None) -> None:
    """The warm-up tip, given once a week, given after every run with a short warm-up instead
    (with ``min_warmup``, "short" is under that many minutes)."""
    rule = rules_with_children().get(key="warm-up")
    spec = {**rule_spec(rule), "cooldown_days": 0}
    if min_warmup is not None:
        spec["parameters"] = [
            {**p, "value": min_warmup} if p["name"] == "min_warmup" else p for p in spec["parameters"]
        ]
    rule_save(spec=spec, rule=rule)


def counted(rows: list[simulation.SimulatedEvent], version: str, since: dt.datetime) -> dict:
    """The burden of ``version``, counted straight from the rows, one plain loop per figure."""
    given = {row.fact_id: (row.live if version == "live" else row.draft) for row in rows}
    weeks: dict[tuple[str, int], int] = defaultdict(int)
    for row in rows:
        weeks[(row.subject, (row.occurred_at.date() - since.date()).days // 7)] += len(given[row.fact_id])
    counts = sorted(weeks.values())
    # The busiest tenth: the least advice such that at most a tenth of subject-weeks get more.
    busiest = min(v for v in counts if sum(1 for c in counts if c > v) <= len(counts) / 10)
    repeats = 0
    times: dict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
    for row in rows:
        for advice in given[row.fact_id]:
            times[(row.subject, advice.rule_key)].append(row.occurred_at)
    for moments in times.values():
        repeats += sum(1 for a, b in itertools.pairwise(moments) if b - a <= dt.timedelta(days=7))
    middle = len(counts) // 2
    return {
        "events": len(rows),
        "subjects": len({row.subject for row in rows}),
        "subject_weeks": len(counts),
        "advice": sum(len(g) for g in given.values()),
        "per_week_mean": sum(counts) / len(counts),
        "per_week_median": counts[middle] if len(counts) % 2 else (counts[middle - 1] + counts[middle]) / 2,
        "per_week_busiest_tenth": busiest,
        "events_with_advice": sum(1 for g in given.values() if g),
        "repeats": repeats,
        "by_severity": dict(Counter(a.severity for g in given.values() for a in g)),
        "most_urgent_subjects": len(
            {row.subject for row in rows for a in given[row.fact_id] if a.indicator == "critical"}
        ),
    }


def test_the_burden_figures_are_the_counts_of_the_simulations_own_rows(pack):
    history()
    warm_up_tips_without_a_cooldown()
    result = simulation.ruleset_simulate(days=30)
    rows = sorted(result.events_judged, key=lambda row: (row.subject, row.occurred_at))
    assert len(rows) == result.events > 100
    for version in ("live", "draft"):
        figures = getattr(result.burden, version)
        expected = counted(rows, version, result.since)
        assert figures.by_severity == expected.pop("by_severity"), version
        assert {name: getattr(figures, name) for name in expected} == pytest.approx(expected), version
    assert result.burden.draft.advice > result.burden.live.advice  # no cooldown: more advice ...
    assert result.burden.draft.repeats > result.burden.live.repeats  # ... and more of it again
    # Kept as a job, the burden reads back the same; the page shows it beside the simulation.
    job = simulation.simulation_store(result)
    assert simulation.simulation_result(job).burden == result.burden
    user, _ = clinician_ensure(username="pt-anna", password="a-long-clinician-password")
    browser = Client()
    browser.force_login(user)
    page = browser.get(reverse("admin:rules_rule_simulate"), {"job": str(job.pk)}).content.decode()
    burden = page.split('id="rules-burden"')[1].split("</table>")[0]
    live, draft = result.burden.live, result.burden.draft
    assert f'<td class="num">{live.per_week_mean:.2f}</td><td class="num">{draft.per_week_mean:.2f}</td>' in burden
    assert f"{draft.events_with_advice} of {draft.events}" in burden
    assert f"{draft.most_urgent_subjects} of {draft.subjects}" in burden


def test_a_draft_is_flagged_beyond_the_thresholds_of_the_settings(pack, settings):
    history()
    warm_up_tips_without_a_cooldown(min_warmup=11)  # every run's warm-up is short now: about a fifth more advice
    burden = simulation.ruleset_simulate(days=30).burden
    assert 15 < burden.rise_pct < 25
    rises = [flag for flag in burden.flags if flag.startswith("Advice per member and week rises by")]
    urgent = [flag for flag in burden.flags if "would get a “critical” card" in flag]
    assert not rises and urgent  # under the default 25 %; but more than 5 % of members get critical cards
    settings.RULES_ENGINE = {**settings.RULES_ENGINE, "BURDEN_ADVICE_RISE_PCT": 15}
    assert simulation.ruleset_simulate(days=30).burden.flags[0].startswith("Advice per member and week rises by 2")
    settings.RULES_ENGINE = {**settings.RULES_ENGINE, "BURDEN_ADVICE_RISE_PCT": 1000, "BURDEN_MOST_URGENT_PCT": 100}
    assert not simulation.ruleset_simulate(days=30).burden.flagged
