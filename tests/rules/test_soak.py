"""Soak: 100,000 evaluations over 10,000 distinct subjects in one process, flat memory, no crash."""

import datetime as dt
import random

import psutil
import pytest

from rules.evaluation import Fact, facts_evaluate
from tests.rules.conftest import T0, cond, make_spec

EVALUATIONS = 100_000
SUBJECTS = 10_000
WARM_UP = 5_000
MAX_GROWTH_MB = 50


def soak_fact(rng: random.Random, number: int) -> Fact:
    subject = number % SUBJECTS
    at = T0 + dt.timedelta(hours=6 * (number // SUBJECTS) + rng.random())
    if rng.random() < 0.2:
        return Fact(
            id=f"e{number}", type="visit", occurred_at=at, data={"minutes": rng.randint(0, 90)}, group=str(subject)
        )
    return Fact(
        id=f"e{number}",
        type="reading",
        occurred_at=at,
        group=str(subject),
        data={
            "temperature": rng.uniform(10, 40),
            "alarm": rng.random() < 0.3,
            "room": rng.choice(["hall", "attic", "kitchen"]),
        },
    )


@pytest.mark.slow
@pytest.mark.django_db
def test_soak_100k_evaluations_over_10k_subjects_with_flat_memory(publish):
    publish(
        make_spec("hot", conditions=[cond("temperature", "gt", 30)]),
        make_spec(
            "alarm-in-hall", conditions=[cond("alarm", "eq", True), cond("room", "eq", "hall", group=2)], message="x"
        ),
        make_spec(
            "hot-streak",
            pattern="count",
            count=3,
            window_hours=72,
            conditions=[cond("temperature", "gte", 30)],
            message="x",
        ),
        make_spec(
            "alarm-then-visit",
            pattern="sequence",
            window_hours=48,
            steps=[{"fact_type": "reading"}, {"fact_type": "visit"}],
            conditions=[cond("alarm", "eq", True), cond("minutes", "gte", 30, step=2)],
            message="x",
        ),
    )
    # Every fact is made before the loop, so that the RSS measured after warm-up grows with
    # what the evaluations keep, not with the 100,000 facts of the test itself (about 50 MB).
    rng = random.Random(7)
    facts = [soak_fact(rng, number) for number in range(EVALUATIONS)]
    histories: dict[str, list[Fact]] = {}
    process = psutil.Process()
    fired = 0
    baseline = None
    for number, fact in enumerate(facts):
        history = histories.setdefault(fact.group, [])
        fired += len(facts_evaluate(fact=fact, history=history[-30:]).matches)
        history.append(fact)
        del history[:-30]
        if number == WARM_UP:
            baseline = process.memory_info().rss
    growth_mb = (process.memory_info().rss - baseline) / 2**20
    print(  # shown with pytest -s
        f"\nsoak: {EVALUATIONS:,} evaluations, {fired:,} firings; RSS {baseline / 2**20:.1f} MB after "
        f"warm-up, {growth_mb:+.1f} MB at the end"
    )
    assert fired > EVALUATIONS // 4  # the rules really fired, often
    assert growth_mb < MAX_GROWTH_MB, f"RSS grew {growth_mb:.1f} MB after warm-up"
