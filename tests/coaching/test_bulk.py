"""The bulk writes of the ingest store exactly what Django's own ``bulk_create`` and ``update``
store: the same values read back (JSON with quotes, backslashes and non-ASCII text, SQL NULL for
None, moments to the microsecond in any offset), the keys in the order given, a related object
saved after it was set, and an update only where the guard still holds. On SQLite and, in CI,
on PostgreSQL (where both take another way: one JSON document per statement)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.forms.models import model_to_dict

from coaching.internal.db.bulk import objects_insert, rows_update
from coaching.models import Event, Member

pytestmark = pytest.mark.django_db

AWKWARD = {
    "note": 'quotes " and \\ backslashes, {braces}, commas, and “curly” ümlauts 🏃',
    "nested": {"list": [1, 2.5, None, True, "x\ny"], "empty": {}},
    "number": 10**15,
}


def events(member: Member, prefix: str, count: int = 3) -> list[Event]:
    east = dt.timezone(dt.timedelta(hours=5, minutes=30))
    return [
        Event(
            gym=member.gym,
            member=member,
            external_id=f"{prefix}-{n}",
            type="run",
            occurred_at=dt.datetime(2026, 3, 1, 6, 0, 0, 123456, tzinfo=east) + dt.timedelta(days=n),
            utc_offset_minutes=330,
            data={**AWKWARD, "n": n},
            figures={} if n else {"weekly_distance_km": 1.5},
            content_hash=f"{n:064d}",
            evaluated=bool(n % 2),
            evaluation_error="" if n else "ValueError: 'quoted' \"and\" \\",
        )
        for n in range(count)
    ]


def stored(objs: list[Event]) -> list[dict]:
    fields = [f.name for f in Event._meta.concrete_fields if f.name not in ("id", "received_at")]
    return [model_to_dict(Event.objects.get(pk=obj.pk), fields=fields) for obj in objs]


def test_inserted_rows_read_back_as_bulk_create_stores_them(client):
    member = Member.objects.create(gym=client.gym, external_id="bulk")
    ours, django = events(member, "ours"), events(member, "django")
    objects_insert(ours)
    Event.objects.bulk_create(django)

    assert all(obj.pk is not None and not obj._state.adding for obj in ours)
    assert [obj.pk for obj in ours] == sorted(obj.pk for obj in ours)  # the keys in the order given
    for mine, theirs in zip(stored(ours), stored(django), strict=True):
        assert {**mine, "external_id": ""} == {**theirs, "external_id": ""}
    assert stored(ours)[0]["data"] == {**AWKWARD, "n": 0}
    assert Event.objects.get(pk=ours[0].pk).occurred_at == ours[0].occurred_at  # to the microsecond
    assert all(Event.objects.get(pk=obj.pk).received_at is not None for obj in ours)


def test_a_member_saved_after_it_was_set_gives_its_key_and_an_unsaved_one_refuses(client):
    member = Member(gym=client.gym, external_id="later")
    new = events(member, "later", count=2)
    objects_insert([member])
    objects_insert(new)
    assert set(Event.objects.filter(member=member).values_list("external_id", flat=True)) == {"later-0", "later-1"}
    assert new[0].member is member  # still the object set, not read again

    never_saved = events(Member(gym=client.gym, external_id="never"), "never", count=1)
    with pytest.raises(ValueError, match="unsaved related object"):
        objects_insert(never_saved)
    assert not Event.objects.filter(external_id="never-0").exists()


def test_a_json_none_is_stored_as_null_as_django_stores_it(client):
    member = Member(gym=client.gym, external_id="no-state", kept_state=None)
    objects_insert([member])
    assert Member.objects.filter(pk=member.pk, kept_state__isnull=True).exists()


@pytest.mark.parametrize("count", [1, 3])
def test_rows_update_writes_only_rows_whose_guard_still_holds(client, count):
    members = [Member(gym=client.gym, external_id=f"guarded-{n}", revision=4) for n in range(count)]
    objects_insert(members)
    since = dt.datetime(2026, 3, 1, 7, 30, 0, 5, tzinfo=dt.UTC)
    names = ["revision", "referral_since", "referral_rule_key", "kept_state"]
    rows = [(m.pk, 4, [5, since, 'say "hi" \\', {"through": ["x", "y"], **AWKWARD}]) for m in members]
    Member.objects.filter(pk=members[-1].pk).update(revision=9)  # written meanwhile by someone else

    assert rows_update(Member, names, rows, guard="revision") == count - 1
    for member in members[:-1]:
        member.refresh_from_db()
        assert (member.revision, member.referral_since, member.referral_rule_key) == (5, since, 'say "hi" \\')
        assert member.kept_state == {"through": ["x", "y"], **AWKWARD}
    last = Member.objects.get(pk=members[-1].pk)
    assert (last.revision, last.referral_since, last.kept_state) == (9, None, None)

    forgotten = [(m.pk, 5, [6, None]) for m in members[:-1]]
    assert rows_update(Member, ["revision", "kept_state"], forgotten, guard="revision") == count - 1
    assert Member.objects.filter(revision=6, kept_state__isnull=True).count() == count - 1  # SQL NULL
