"""Patterns across several facts of one subject, on the facts' own timestamps."""

import datetime as dt
import itertools

import pytest

from rules.evaluation import (
    DecisionState,
    HistoryShort,
    facts_evaluate,
    facts_evaluate_many,
    ruleset_live,
    timeline_judge,
    timelines_judge,
)
from tests.rules.conftest import T0, cond, fired, make_spec, reading

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

pytestmark = pytest.mark.django_db


def alarm_then_long_visit(window_hours=48):
    """An alarm reading, then a visit of 30+ minutes within the window."""
    return make_spec(
        "alarm-then-visit",
        pattern="sequence",
        window_hours=window_hours,
        steps=[{"fact_type": "reading"}, {"fact_type": "visit"}],
        conditions=[cond("alarm", "eq", True, step=1), cond("minutes", "gte", parameter="minutes", step=2)],
        parameters=[{"name": "minutes", "label": "Visit length", "kind": "number", "value": 30, "unit": "min"}],
        message="A {minutes}-minute visit followed an alarm.",
    )


def three_hot_in_a_week():
    return make_spec(
        "hot-streak",
        pattern="count",
        count=3,
        window_hours=7 * 24,
        conditions=[cond("temperature", "gte", 30)],
        message="{count} hot readings in a week",
    )


def daily_streak():
    """Readings on consecutive days: a derived figure (readings on consecutive days) is the domain's job,
    but the same thing as a pattern: three hot readings, each within 24 h of the previous."""
    return make_spec(
        "three-days",
        pattern="count",
        count=3,
        window_hours=48,
        conditions=[cond("temperature", "gte", 30)],
        message="three days running",
    )


def test_sequence_fires_when_the_second_fact_arrives_within_the_window(publish):
    publish(alarm_then_long_visit())
    alarm = reading(T0, alarm=True)
    assert fired(reading(T0 + 47 * HOUR, type="visit", minutes=45), [alarm]) == ["alarm-then-visit"]


def test_sequence_does_not_fire_outside_the_window_or_when_a_step_fails(publish):
    publish(alarm_then_long_visit())
    alarm = reading(T0, alarm=True)
    assert fired(reading(T0 + 49 * HOUR, type="visit", minutes=45), [alarm]) == []
    assert fired(reading(T0 + 2 * HOUR, type="visit", minutes=10), [alarm]) == []
    assert fired(reading(T0 + 2 * HOUR, type="visit", minutes=45), [reading(T0, alarm=False)]) == []


def test_sequence_respects_the_order_in_time(publish):
    publish(alarm_then_long_visit())
    # The visit came first, then the alarm: not "alarm, then visit".
    visit = reading(T0, type="visit", minutes=45)
    assert fired(reading(T0 + HOUR, alarm=True), [visit]) == []


def test_a_match_belongs_to_the_last_fact_in_time(publish):
    """History is the subject's earlier facts only: a later fact passed along is left out."""
    publish(alarm_then_long_visit())
    alarm = reading(T0, alarm=True)
    visit = reading(T0 + 10 * HOUR, type="visit", minutes=60)
    matches = facts_evaluate(fact=visit, history=[alarm]).matches
    assert [(m.rule_key, m.fact_ids) for m in matches] == [("alarm-then-visit", (alarm.id, visit.id))]
    assert fired(alarm, [visit]) == []


def test_a_late_fact_that_comes_first_in_time_completes_the_sequence_of_the_later_fact(publish):
    """Posted after the visit but earlier in time, the alarm becomes the visit's history: judging
    the timeline in time order gives the visit the match."""
    publish(alarm_then_long_visit())
    visit = reading(T0 + 10 * HOUR, type="visit", minutes=60)
    assert [d.given for d in timeline_judge(facts=[visit])] == [[]]
    late_alarm = reading(T0, alarm=True)
    decisions = timeline_judge(facts=[late_alarm, visit])
    assert [[m.rule_key for m in d.given] for d in decisions] == [[], ["alarm-then-visit"]]
    assert decisions[1].given[0].fact_ids == (late_alarm.id, visit.id)


def test_count_pattern_needs_n_facts_within_the_window(publish):
    publish(three_hot_in_a_week())
    history = [reading(T0, temperature=31), reading(T0 + 2 * DAY, temperature=35)]
    assert fired(reading(T0 + 6 * DAY, temperature=30), history) == ["hot-streak"]
    assert fired(reading(T0 + 8 * DAY, temperature=30), history) == []  # first one is too old
    assert fired(reading(T0 + 6 * DAY, temperature=29), history) == []  # new one does not qualify
    assert fired(reading(T0 + 6 * DAY, temperature=30), history[:1]) == []  # only two


def test_count_pattern_fires_once_with_the_most_recent_facts(publish):
    publish(three_hot_in_a_week())
    history = [reading(T0 + i * DAY, temperature=31) for i in range(4)]
    new = reading(T0 + 5 * DAY, temperature=32)
    matches = facts_evaluate(fact=new, history=history).matches
    assert len(matches) == 1
    assert matches[0].fact_ids == (history[2].id, history[3].id, new.id)
    assert matches[0].message == "3 hot readings in a week"


def test_consecutive_days_pattern(publish):
    publish(daily_streak())
    day1, day2 = reading(T0, temperature=30), reading(T0 + DAY, temperature=31)
    assert fired(reading(T0 + 2 * DAY, temperature=32), [day1, day2]) == ["three-days"]
    assert fired(reading(T0 + 3 * DAY, temperature=32), [day1, day2]) == []


def test_only_matches_that_involve_the_new_fact_are_returned(publish):
    publish(three_hot_in_a_week())
    history = [reading(T0 + i * HOUR, temperature=40) for i in range(3)]  # already a streak
    assert fired(reading(T0 + 4 * HOUR, temperature=10), history) == []


def test_facts_of_other_subjects_in_one_batch_never_join(publish):
    publish(three_hot_in_a_week())
    a = [reading(T0, group="a", temperature=31), reading(T0 + HOUR, group="a", temperature=31)]
    lonely = reading(T0 + 2 * HOUR, group="b", temperature=31)
    complete = reading(T0 + 2 * HOUR, group="a", temperature=31)
    results = facts_evaluate_many(items=[(lonely, []), (complete, a)])
    assert [m.rule_key for m in results[0].matches] == []
    assert [m.rule_key for m in results[1].matches] == ["hot-streak"]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_the_outcome_does_not_depend_on_the_order_facts_are_passed_in(publish, order):
    """Whatever order the other facts come in, only the last fact in time completes the pattern."""
    publish(three_hot_in_a_week(), alarm_then_long_visit())
    hot = [reading(T0 + i * DAY, temperature=31 + i) for i in range(3)]
    shuffled = [hot[i] for i in order]
    for fact in hot:
        others = [h for h in shuffled if h is not fact]
        assert fired(fact, others) == (["hot-streak"] if fact is hot[-1] else []), fact
    alarm, visit = reading(T0, alarm=True), reading(T0 + DAY, type="visit", minutes=40)
    assert fired(visit, [alarm]) == ["alarm-then-visit"]
    assert fired(alarm, [visit]) == []


def test_single_and_pattern_rules_fire_together(publish):
    publish(make_spec("hot", conditions=[cond("temperature", "gt", 30)]), three_hot_in_a_week())
    history = [reading(T0, temperature=31), reading(T0 + DAY, temperature=31)]
    assert sorted(fired(reading(T0 + 2 * DAY, temperature=31), history)) == ["hot", "hot-streak"]


def test_a_timeline_cut_shorter_than_the_live_window_is_refused_not_judged_wrongly(publish):
    """A caller may leave out facts older than the live version's window (``history_covered``);
    when the version judging looks further back, it must collect them again."""
    publish(alarm_then_long_visit(window_hours=48))
    assert ruleset_live().history_window == 48 * HOUR
    facts = [reading(T0, alarm=True), reading(T0 + 47 * HOUR, type="visit", minutes=45)]
    [decisions] = timelines_judge([(facts, 1, DecisionState())], history_covered=48 * HOUR)
    assert [m.rule_key for m in decisions[0].given] == ["alarm-then-visit"]
    with pytest.raises(HistoryShort):
        timelines_judge([(facts[1:], 0, DecisionState())], history_covered=24 * HOUR)


def test_a_history_leaving_out_a_field_a_pattern_reads_is_refused(publish):
    """The facts before the judged one may leave out fields (``history_omits``) that no pattern
    of the judging version reads, in its conditions or in its message."""
    publish(alarm_then_long_visit())
    assert {"alarm", "minutes"} <= ruleset_live().history_fields
    facts = [reading(T0, alarm=True), reading(T0 + 47 * HOUR, type="visit", minutes=45)]
    [decisions] = timelines_judge([(facts, 1, DecisionState())], history_omits=frozenset({"temperature"}))
    assert [m.rule_key for m in decisions[0].given] == ["alarm-then-visit"]
    with pytest.raises(HistoryShort):
        timelines_judge([(facts, 1, DecisionState())], history_omits=frozenset({"alarm"}))
