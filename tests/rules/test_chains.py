"""Chaining pattern steps in time order within a window (the part durable_rules cannot do safely)."""

import json

from rules.internal.chains import best_chain
from rules.internal.compiler import ruleset_compile
from rules.registry import registry
from rules.spec import spec_normalize
from tests.rules.conftest import cond, make_spec

HOUR = 3600.0


def test_every_compiled_rule_binds_exactly_one_fact():
    """durable_rules crashes when facts of a completed multi-fact action are retracted: never load one."""
    specs = [
        make_spec(
            "seq",
            pattern="sequence",
            window_hours=48,
            steps=[{"fact_type": "reading"}, {"fact_type": "visit"}],
            conditions=[cond("alarm", "eq", True), cond("minutes", "gte", 30, step=2)],
            message="x",
        ),
        make_spec("cnt", pattern="count", count=3, window_hours=24, conditions=[cond("level", "gt", 5)], message="x"),
        make_spec("one", message="x"),
    ]
    compiled = ruleset_compile([spec_normalize(s) for s in specs], catalog=registry)
    for ruleset_json in (compiled.single_json, compiled.pattern_json):
        for name, rule in json.loads(ruleset_json).items():
            assert [list(binding) for binding in rule["all"]] == [["m"]], name
    assert sorted(json.loads(compiled.pattern_json)) == ["cnt#1", "seq#1", "seq#2"]
    assert compiled.chains == {"seq": ((1, 2), 48 * HOUR), "cnt": ((1, 1, 1), 24 * HOUR)}


def test_a_sequence_takes_its_steps_in_time_order():
    times = [0, HOUR, 2 * HOUR]
    # step 1 satisfied by position 0 and 2, step 2 by position 1
    assert best_chain((1, 2), {1: {0, 2}, 2: {1}}, times, 48 * HOUR, new=1) == (0, 1)
    assert best_chain((1, 2), {1: {2}, 2: {1}}, times, 48 * HOUR, new=1) is None


def test_a_chain_must_fit_the_window_and_include_the_new_fact():
    times = [0, 10 * HOUR, 30 * HOUR]
    assert best_chain((1, 1, 1), {1: {0, 1, 2}}, times, 30 * HOUR, new=2) == (0, 1, 2)
    assert best_chain((1, 1, 1), {1: {0, 1, 2}}, times, 29 * HOUR, new=2) is None
    assert best_chain((1, 1), {1: {0, 1}}, times, 30 * HOUR, new=2) is None


def test_of_several_chains_the_most_recent_is_chosen():
    times = [0, HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR]
    assert best_chain((1, 1, 1), {1: {0, 1, 2, 3, 4}}, times, 24 * HOUR, new=4) == (2, 3, 4)
    assert best_chain((1, 1, 1), {1: {0, 1, 2, 3, 4}}, times, 24 * HOUR, new=0) == (0, 3, 4)
