"""The event and advice answers are written directly (the API's hot path), and are exactly what
the serializers' declared fields, which the OpenAPI schema documents, give for the same objects:
new and withdrawn advice, a withdrawal by a late event and by a re-evaluation, any UTC offset,
in UTC and in another current time zone."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework import serializers

from coaching.api.serializers import AdviceSerializer, EventSerializer
from coaching.models import Advice, Event

from .added_rules import FIRST_RUN_CHECK, rules_add
from .conftest import cross, day, pain, profile, run

pytestmark = pytest.mark.django_db


def declared(serializer_class, instance, **kwargs):
    serializer = serializer_class(instance, **kwargs)
    return serializers.ModelSerializer.to_representation(serializer, instance)


@pytest.fixture
def history(client, pack):
    rules_add(FIRST_RUN_CHECK)  # advice that a late first run withdraws
    plus_two = dt.timezone(dt.timedelta(hours=2))
    client.history(
        profile(at=day(0), experience="new", back_injury=True, chronic_back_pain=True),
        run(at=day(1), distance_km=12, pain_during=7),
        pain(at=day(2).astimezone(plus_two), pain=8, external_id="pain-in-paris"),
        cross(at=day(3)),
        run(at=day(6), pain_during=2),
        run(at=day(0, hour=3), external_id="late-run", pain_during=9),  # late: withdraws and re-judges
    )
    first = Advice.objects.filter(withdrawn_at__isnull=True).order_by("id").first()
    Advice.objects.filter(pk=first.pk).update(
        withdrawn_at=timezone.now(), withdrawn_by=None, withdrawn_reason="No longer given when re-evaluated."
    )
    assert Advice.objects.filter(withdrawn_by__isnull=False).exists()
    return client


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_advice_is_written_as_its_declared_fields_give_it(history, zone):
    with timezone.override(zone):
        for advice in Advice.objects.select_related("member", "event", "withdrawn_by"):
            assert AdviceSerializer(advice).data == declared(AdviceSerializer, advice)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_events_are_written_as_their_declared_fields_give_them(history, zone):
    with timezone.override(zone):
        events = Event.objects.select_related("member").prefetch_related(
            "advice__member", "advice__event", "advice__withdrawn_by", "withdrawals__member", "withdrawals__event"
        )
        for event in events:
            assert EventSerializer(event).data == declared(EventSerializer, event)
            context = {"advice": list(event.advice.all()), "withdrawn": list(event.withdrawals.all())}
            assert EventSerializer(event, context=context).data == declared(EventSerializer, event, context=context)


def test_the_answer_to_a_post_is_what_the_declared_fields_give(history):
    body = history.send(run(at=day(7), pain_during=8), expect=201).json()
    event = Event.objects.get(external_id=body["external_id"])
    assert body["advice"]  # something to compare
    assert body == declared(EventSerializer, event)
