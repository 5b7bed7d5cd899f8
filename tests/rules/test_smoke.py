from tests.rules.conftest import T0, cond, fired, make_spec, reading


def test_a_published_single_fact_rule_fires_only_when_its_condition_holds(publish):
    publish(make_spec())
    assert fired(reading(temperature=31)) == ["hot"]
    assert fired(reading(temperature=30)) == []
