"""A single on-time event of a member with history costs a handful of SQL queries, whatever the
member's history: authenticating, counting the request, reading the member's events and
current advice and the live version, then writing the member's revision, the event and its
advice: a single post stays lean however long the member's history."""

from __future__ import annotations

import pytest

from .conftest import day, run

# Real transactions, as in production: inside a test's transaction each atomic block would be a
# savepoint and its release, two statements where production runs one BEGIN.
pytestmark = pytest.mark.django_db(transaction=True)

MAX_QUERIES = 8


@pytest.mark.parametrize("history", [3, 30])
def test_an_on_time_event_of_a_member_with_history_costs_at_most_eight_queries(
    client, pack, django_assert_max_num_queries, history
):
    for n in range(history):
        client.send(run(at=day(n / 2), pain_during=n % 4), expect=201)
    with django_assert_max_num_queries(MAX_QUERIES):
        body = client.send(run(at=day(history), pain_during=6), expect=201).json()
    assert "pain-stop" in [a["rule"]["key"] for a in body["advice"]]
