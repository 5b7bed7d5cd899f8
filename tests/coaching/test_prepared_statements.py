"""On PostgreSQL the hot path's reads run as prepared statements once they have run a few
times (outside a transaction): the server plans them once per connection, and the answers are
the same as without. A statement that is gone from the server (a pooler that shares server
connections, say) is run as it is, and the request never notices."""

from __future__ import annotations

import pytest
from django.db import connection

from coaching.ingest.read import _TOUCHED, _TOUCHED_NO_FIGURES
from coaching.internal.db import prepared as prepared_module

from .conftest import day, pain, run

pytestmark = pytest.mark.django_db(transaction=True)


def server_statements() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def ingest_names() -> set[str]:
    return {c.name for query in (_TOUCHED, _TOUCHED_NO_FIGURES) for c in query._shapes.values()}


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (CI: make test-postgres)")


def test_the_ingest_reads_as_prepared_statements_and_answers_the_same(postgresql, pack, client, other_client):
    events = [run(at=day(n), external_id=f"r{n}", pain_during=n % 5) for n in range(8)]
    events.insert(5, pain(at=day(4, hour=20), pain=6, external_id="p1"))
    answers = [client.send(event, expect=201).json() for event in events]  # the later ones prepared
    assert server_statements() & ingest_names()

    with connection.cursor() as cursor:  # what a pooler handing out another server connection does
        cursor.execute("DEALLOCATE ALL")
    again = [other_client.send(event, expect=201).json() for event in events]

    def advice(answer):
        return [(a["rule"]["key"], a["message"], a["matched_events"]) for a in answer["advice"]]

    assert [advice(a) for a in again] == [advice(a) for a in answers]
    assert any(advice(a) for a in answers)


def test_nothing_is_prepared_inside_a_transaction(postgresql, pack, client):
    from django.db import transaction

    with transaction.atomic():
        for n in range(prepared_module.PREPARE_AFTER_RUNS + 2):
            _TOUCHED.fetch(gym_id=client.gym.pk, ids=[f"x{n}"], keys=["m-1"])
        assert not server_statements() & ingest_names()
