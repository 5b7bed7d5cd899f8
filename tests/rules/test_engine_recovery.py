"""The engine recovers by itself: an error inside durable_rules never poisons later evaluations."""

import pytest

from rules.internal import engine as engine_module
from tests.rules.conftest import fired, make_spec, reading

pytestmark = pytest.mark.django_db


def test_after_an_engine_error_the_next_evaluation_rebuilds_and_works(publish, monkeypatch):
    publish(make_spec())
    assert fired(reading(temperature=31)) == ["hot"]
    real_start = engine_module.dre.start_action

    def failing_start(handle):
        raise RuntimeError("simulated crash inside the engine")

    monkeypatch.setattr(engine_module.dre, "start_action", failing_start)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fired(reading(temperature=31))
    monkeypatch.setattr(engine_module.dre, "start_action", real_start)
    assert fired(reading(temperature=31)) == ["hot"]
    assert fired(reading(temperature=20)) == []
