"""A prepared query gives what its queryset gives, whatever the values and shape of its
parameters, and refuses a queryset whose parameters it could not put back in place."""

from __future__ import annotations

import pytest
from django.db.models import Q

from coaching.internal.db.prepared import Prepared
from coaching.models import Event, Member

from .conftest import day, run

pytestmark = pytest.mark.django_db

COLUMNS = ("pk", "external_id", "occurred_at", "data", "evaluated", "member__external_id", "member__kept_state")


def touched(gym_id, ids, keys):
    return (
        Event.objects.filter(Q(gym_id=gym_id, external_id__in=ids) | Q(gym_id=gym_id, member__external_id__in=keys))
        .order_by("occurred_at", "external_id")
        .values_list(*COLUMNS)
    )


@pytest.fixture
def stored(client, pack):
    for n in range(12):
        client.send(run(member=f"m{n % 4}", external_id=f"e{n}", at=day(n), pain_during=n % 3), expect=201)
    return client.gym


@pytest.mark.parametrize(
    "ids, keys",
    [
        (["e1"], ["m0"]),
        (["e2"], ["m1"]),  # the same shape again: the compiled query reused with other values
        (["e3", "e7", "e11"], ["m2", "m3"]),
        (["nope"], ["m9"]),
        (["e0", "e0"], ["m0", "m0"]),  # repeated values count once, as in the queryset
    ],
)
def test_rows_are_the_querysets_rows(stored, ids, keys):
    prepared = PREPARED
    rows, compiled = prepared.fetch(gym_id=stored.pk, ids=ids, keys=keys)
    got = [tuple(row) for row in prepared.converted(rows, compiled, range(len(COLUMNS)))]
    assert got == list(touched(stored.pk, ids, keys))


def test_rows_of_another_gym_are_not_read(stored):
    rows, _compiled = PREPARED.fetch(gym_id=stored.pk + 1000, ids=["e1"], keys=["m0"])
    assert rows == []


def test_columns_not_asked_for_stay_as_the_database_gave_them(stored):
    rows, compiled = PREPARED.fetch(gym_id=stored.pk, ids=["e1"], keys=["m1"])
    data = COLUMNS.index("data")
    converted = PREPARED.converted(rows, compiled, [data])
    assert all(isinstance(row[data], dict) for row in converted)
    member_state = COLUMNS.index("member__kept_state")
    raw = [row[member_state] for row in rows]
    assert [row[member_state] for row in converted] == raw


def test_constants_of_the_queryset_stay_in_place(stored):
    prepared = Prepared(
        lambda key: Member.objects.filter(external_id=key, revision__gte=1).values_list("external_id"),
    )
    rows, _compiled = prepared.fetch(key="m2")
    assert rows == [("m2",)]
    Member.objects.filter(external_id="m3").update(revision=0)
    assert prepared.fetch(key="m3")[0] == []


def test_a_queryset_that_drops_a_parameter_is_refused(stored):
    # "or not in nothing" is always true, so Django drops the whole condition: the value could
    # never be put back.
    prepared = Prepared(lambda key: Member.objects.filter(Q(external_id=key) | ~Q(pk__in=[])).values_list("pk"))
    with pytest.raises(ValueError, match="key"):
        prepared.fetch(key="m1")


PREPARED = Prepared(touched, lists=("ids", "keys"))


def test_a_query_has_one_name_as_a_prepared_statement_in_every_process(stored):
    # A pooler may hand one server connection to several processes: a name never means two queries.
    first = Prepared(touched, lists=("ids", "keys")).fetch(gym_id=stored.pk, ids=["e1"], keys=["m0"])[1]
    again = Prepared(touched, lists=("ids", "keys")).fetch(gym_id=stored.pk, ids=["e2"], keys=["m1"])[1]
    other = Prepared(touched, lists=("ids", "keys")).fetch(gym_id=stored.pk, ids=["e1", "e2"], keys=["m0"])[1]
    assert first.name == again.name != other.name
    assert len(first.name) < 64  # PostgreSQL's longest name
