"""The "days in a row" pattern: a fact that meets the rule's conditions on each of N days in a
row, the facts' own local calendar days, ending on the day of the fact judged."""

import datetime as dt

import pytest

from rules import spec as S
from rules.admin.describe import message_example, spec_describe
from rules.evaluation import facts_evaluate, timeline_judge
from rules.internal.chains import days_in_a_row
from tests.rules.conftest import cond, fired, make_spec, reading

pytestmark = pytest.mark.django_db

PLUS_TWO = dt.timezone(dt.timedelta(hours=2))
DAY = dt.timedelta(days=1)


def hot_days(days: int = 3) -> dict:
    """Hot readings in the kitchen on 3 days in a row."""
    return make_spec(
        "hot-days",
        pattern="days",
        count=days,
        conditions=[cond("temperature", "gte", 30), cond("room", "eq", "kitchen", group=2)],
        message="Hot in the kitchen {count} days in a row",
    )


def at(day: int, hour: int, tz: dt.tzinfo = dt.UTC) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, 0, tzinfo=tz)


def hot(when: dt.datetime, room: str = "kitchen", temperature: float = 31) -> object:
    return reading(when, temperature=temperature, room=room)


def test_fires_on_the_third_day_in_a_row_with_a_matching_fact(publish):
    publish(hot_days())
    history = [hot(at(1, 8)), hot(at(2, 20))]
    assert fired(hot(at(3, 7)), history) == ["hot-days"]
    message = facts_evaluate(fact=hot(at(3, 7)), history=history).matches[0].message
    assert message == "Hot in the kitchen 3 days in a row"


def test_a_day_without_a_matching_fact_breaks_the_row(publish):
    publish(hot_days())
    # The 2nd had a reading, but in the hall: it does not meet the conditions.
    assert fired(hot(at(3, 7)), [hot(at(1, 8)), hot(at(2, 9), room="hall")]) == []
    # Two readings on the 2nd are still one day.
    assert fired(hot(at(3, 7)), [hot(at(2, 8)), hot(at(2, 20))]) == []
    # The judged fact must meet the conditions itself.
    assert fired(hot(at(3, 7), temperature=20), [hot(at(1, 8)), hot(at(2, 8))]) == []


def test_days_are_the_facts_own_local_days_not_24_hour_spans(publish):
    publish(hot_days(2))
    # 23:30 and 00:30 local time: one hour apart, but two calendar days of their own.
    late = hot(dt.datetime(2026, 3, 1, 23, 30, tzinfo=PLUS_TWO))
    early = hot(dt.datetime(2026, 3, 2, 0, 30, tzinfo=PLUS_TWO))
    assert fired(early, [late]) == ["hot-days"]
    # 01:00 and 23:00 of one local day: 22 hours apart, one day.
    assert fired(hot(at(2, 23, PLUS_TWO)), [hot(at(2, 1, PLUS_TWO))]) == []


def test_judging_a_timeline_fires_each_day_the_row_holds(publish):
    publish(hot_days())
    facts = [hot(at(day, 9)) for day in (1, 2, 3, 4, 6)]
    given = [[m.rule_key for m in decision.given] for decision in timeline_judge(facts=facts)]
    assert given == [[], [], ["hot-days"], ["hot-days"], []]


def test_the_match_names_one_fact_a_day_the_latest_of_each_earlier_day():
    positions = {0, 1, 2, 3}
    days = [10, 11, 11, 12]
    assert days_in_a_row(3, positions, days, new=3) == (0, 2, 3)
    assert days_in_a_row(3, {0, 3}, days, new=3) is None  # no fact of the 11th meets the step
    assert days_in_a_row(2, {0, 1}, days, new=3) is None  # the new fact does not meet the step


def test_validation_asks_for_a_number_of_days_and_no_window():
    assert S.spec_validate(hot_days()) == {}
    assert S.spec_validate(hot_days(1))["count"] == [S.MSG_DAYS]
    assert S.spec_validate(hot_days(S.DAYS_MAX + 1))["count"] == [S.MSG_DAYS]
    assert S.spec_validate({**hot_days(), "window_hours": 48})["window_hours"] == [S.MSG_WINDOW_DAYS]
    two_steps = {**hot_days(), "steps": [{"fact_type": "reading"}, {"fact_type": "visit"}]}
    assert S.spec_validate(two_steps)["steps"] == [S.MSG_DAYS_STEPS]
    assert S.spec_normalize(hot_days())["window_hours"] is None


def test_the_sentence_and_the_message_say_days_in_a_row(db):
    spec = hot_days()
    assert spec_describe(spec).startswith("When 3 days in a row each have a reading with temperature of 30 °C or more")
    assert message_example(spec) == "Hot in the kitchen 3 days in a row"
    assert S.placeholder_labels(spec)["count"] == S.DAYS_COUNT_LABEL
