"""Request and response shapes of the gym API (docs/api.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..catalog import CATEGORY_CODES, FACT_TYPES, INDICATORS, SEVERITY_CODES
from ..evaluation import advice_order
from ..models import Advice, Event
from ..representations import advice_representation
from ..selectors import WATERMARK_PREFIX, advice_for_event, advice_withdrawn_by, watermark_decode
from .schema import EVENT_DATA_SCHEMA

DATETIME_FILTER_INVALID = "Must be an ISO 8601 date (2026-11-20) or date and time (2026-11-20T07:30:00+01:00)."
CHANGED_SINCE_INVALID = "This is not a next_changed_since an answer gave; pass it back as it came."


class RuleRefSerializer(serializers.Serializer):
    key = serializers.CharField(source="rule_key")
    name = serializers.CharField(source="rule_name")
    version = serializers.IntegerField(source="rule_version")


class SourceSerializer(serializers.Serializer):
    label = serializers.CharField(source="source_label")


class CardSourceSerializer(serializers.Serializer):
    label = serializers.CharField()


class CardSerializer(serializers.Serializer):
    summary = serializers.CharField(max_length=140)
    indicator = serializers.ChoiceField(choices=[code for code, _ in INDICATORS])
    detail = serializers.CharField()
    source = CardSourceSerializer()


class WithdrawnSerializer(serializers.Serializer):
    at = serializers.DateTimeField(source="withdrawn_at")
    by_event = serializers.SerializerMethodField(help_text="The gym's id of the late event; null: a re-evaluation.")
    reason = serializers.CharField(source="withdrawn_reason")

    def get_by_event(self, advice: Advice) -> str | None:
        return advice.withdrawn_by.external_id if advice.withdrawn_by_id else None


class AdviceSerializer(serializers.ModelSerializer):
    member = serializers.CharField(source="member.external_id")
    event = serializers.CharField(source="event.external_id")
    rule = RuleRefSerializer(source="*")
    category = serializers.ChoiceField(choices=CATEGORY_CODES)
    severity = serializers.ChoiceField(choices=SEVERITY_CODES)
    matched_events = serializers.ListField(child=serializers.CharField())
    source = SourceSerializer(source="*")
    card = CardSerializer()
    withdrawn = serializers.SerializerMethodField(
        help_text="null, or when and why a later-arriving event showed the advice no longer holds."
    )

    @extend_schema_field(WithdrawnSerializer(allow_null=True))
    def get_withdrawn(self, advice: Advice) -> dict[str, Any] | None:
        return WithdrawnSerializer(advice).data if advice.withdrawn_at is not None else None

    def to_representation(self, advice: Advice) -> dict[str, Any]:
        return advice_representation(advice)

    class Meta:
        model = Advice
        fields = [
            "id",
            "member",
            "event",
            "rule",
            "category",
            "severity",
            "message",
            "matched_events",
            "source",
            "card",
            "created_at",
            "withdrawn",
        ]


@extend_schema_field(EVENT_DATA_SCHEMA)
class EventDataField(serializers.DictField):
    """The event's ``data``, documented per event type from the catalog."""


class EventSerializer(serializers.ModelSerializer):
    """A stored event with the advice it produced.

    The advice comes from ``context["advice"]`` (the service's answer) when given,
    otherwise from the event's prefetched ``advice``.
    """

    member = serializers.CharField(source="member.external_id")
    occurred_at = serializers.SerializerMethodField()
    data = EventDataField()
    advice = serializers.SerializerMethodField()
    withdrawn = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = ["id", "external_id", "member", "type", "occurred_at", "data", "advice", "withdrawn"]

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_occurred_at(self, event: Event) -> str:
        return event.occurred_at_local.isoformat()

    @extend_schema_field(AdviceSerializer(many=True))
    def get_advice(self, event: Event) -> list[dict[str, Any]]:
        return AdviceSerializer(self.advice_of(event), many=True).data

    @extend_schema_field(AdviceSerializer(many=True))
    def get_withdrawn(self, event: Event) -> list[dict[str, Any]]:
        """The advice this event's late arrival withdrew (empty for an event that came in time)."""
        return AdviceSerializer(self.withdrawn_of(event), many=True).data

    def advice_of(self, event: Event) -> list[Advice]:
        advice = self.context.get("advice")
        if advice is None:
            if hasattr(event, "_prefetched_objects_cache") and "advice" in event._prefetched_objects_cache:
                current = [a for a in event.advice.all() if a.withdrawn_at is None]
                advice = sorted(current, key=advice_order)
            else:
                advice = advice_for_event(event=event)
        return advice

    def withdrawn_of(self, event: Event) -> list[Advice]:
        withdrawn = self.context.get("withdrawn")
        if withdrawn is None:
            if hasattr(event, "_prefetched_objects_cache") and "withdrawals" in event._prefetched_objects_cache:
                withdrawn = list(event.withdrawals.all())
            else:
                withdrawn = advice_withdrawn_by(events=[event])[event.pk]
        return withdrawn

    def to_representation(self, event: Event) -> dict[str, Any]:
        return event_representation(event, self.advice_of(event), self.withdrawn_of(event))


def event_representation(event: Event, advice: Sequence[Advice], withdrawn: Sequence[Advice]) -> dict[str, Any]:
    """What EventSerializer gives for ``event`` with ``advice`` and ``withdrawn`` in its context."""
    return {
        "id": event.id,
        "external_id": str(event.external_id),
        "member": str(event.member.external_id),
        "type": event.type,
        "occurred_at": event.occurred_at_local.isoformat(),
        "data": {str(key): value for key, value in event.data.items()},
        "advice": [advice_representation(one) for one in advice],
        "withdrawn": [advice_representation(one) for one in withdrawn],
    }


class EventInSerializer(serializers.Serializer):
    """The event a gym sends (documentation; the catalog check is ``coaching.validation``)."""

    external_id = serializers.CharField(
        min_length=1, max_length=100, help_text="The gym's own id of the event, unique per gym."
    )
    member = serializers.CharField(
        min_length=1, max_length=100, help_text="The gym's own id of the member; an unknown id creates the member."
    )
    type = serializers.ChoiceField(choices=list(FACT_TYPES))
    occurred_at = serializers.DateTimeField(help_text="ISO 8601 with a UTC offset, at most 1 day in the future.")
    data = EventDataField(required=False, help_text="The fields of the type; left out, it means {}.")


class BatchItemSerializer(serializers.Serializer):
    status = serializers.IntegerField()
    event = EventSerializer(required=False)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class ErrorsSerializer(serializers.Serializer):
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class ReferralRuleSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()


class ReferralSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    rule = ReferralRuleSerializer()
    event = serializers.CharField(allow_null=True, help_text="The gym's id of the event that referred the member.")


class MemberSerializer(serializers.Serializer):
    member = serializers.CharField()
    profile = serializers.DictField()
    referral = ReferralSerializer(
        allow_null=True,
        help_text="null, or the referral in force: until it ends only 'refer' and 'stop' advice is given.",
    )
    figures = serializers.DictField(help_text="The derived figures (see docs/api.md) as of figures_as_of.")
    figures_as_of = serializers.DateTimeField()
    events = serializers.IntegerField(help_text="How many events are stored.")
    advice = serializers.IntegerField(help_text="How many pieces of current advice the member has (not withdrawn).")
    created_at = serializers.DateTimeField()


class QuerySerializer(serializers.Serializer):
    """Query-string filters, where a parameter given empty is an error rather than absent.

    DRF drops an optional field given as ``name=`` from a form or query string; a client who
    sent ``since=`` meant something, and a list silently unfiltered is the wrong answer.
    """

    def to_internal_value(self, data: Any) -> Any:
        blank = {
            name: [serializers.CharField.default_error_messages["blank"]]
            for name in self.fields
            if hasattr(data, "getlist") and any(value.strip() == "" for value in data.getlist(name))
        }
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.DATETIME)
class DateOrDateTimeField(serializers.Field):
    """A moment given as an ISO 8601 date and time (UTC if no offset) or a date (in UTC).

    A date alone means the start of that day, or with ``end_of_day`` its end, so that
    ``since=2026-11-20&until=2026-11-20`` is the whole of that day.
    """

    default_error_messages = {"invalid": DATETIME_FILTER_INVALID}

    def __init__(self, *, end_of_day: bool = False, **kwargs: Any) -> None:
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> datetime:
        if not isinstance(value, str):
            self.fail("invalid")
        text = value.strip().replace(" ", "+")  # a '+' in a query string arrives as a space
        try:
            if "T" in text.upper():
                parsed = datetime.fromisoformat(text)
            else:
                parsed = datetime.combine(date.fromisoformat(text), time.max if self.end_of_day else time.min)
        except ValueError:
            self.fail("invalid")
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, UTC)
        try:
            parsed.astimezone(UTC)  # the database compares in UTC; year 1 at +14:00 has none
        except OverflowError:
            self.fail("invalid")
        return parsed

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class EventFilterSerializer(QuerySerializer):
    member = serializers.CharField(required=False, max_length=100)
    type = serializers.ChoiceField(required=False, choices=list(FACT_TYPES))
    since = DateOrDateTimeField(required=False)
    until = DateOrDateTimeField(
        required=False, end_of_day=True, help_text="Inclusive; a date alone means the end of that day (UTC)."
    )


class AdviceFilterSerializer(QuerySerializer):
    since = DateOrDateTimeField(required=False)
    severity = serializers.ChoiceField(required=False, choices=SEVERITY_CODES)
    category = serializers.ChoiceField(required=False, choices=CATEGORY_CODES)
    withdrawn = serializers.BooleanField(
        required=False, default=False, help_text="true: withdrawn advice too (by default only current advice)."
    )


MSG_ACTIVE_WITHDRAWN = "active=true lists current advice only; leave out withdrawn=true."


class MemberAdviceFilterSerializer(AdviceFilterSerializer):
    active = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "true: only the advice to show the member now: current advice whose rule's display period "
            "(set per rule by clinicians, 14 days unless they changed it) has not passed since its event."
        ),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("active") and attrs.get("withdrawn"):
            raise serializers.ValidationError({"active": [MSG_ACTIVE_WITHDRAWN]})
        return attrs


@extend_schema_field(OpenApiTypes.STR)
class ChangedSinceField(DateOrDateTimeField):
    """A moment, or the ``next_changed_since`` watermark an earlier answer gave."""

    default_error_messages = {"invalid": DATETIME_FILTER_INVALID, "watermark": CHANGED_SINCE_INVALID}

    def to_internal_value(self, value: Any) -> tuple[datetime, int]:
        if isinstance(value, str) and value.startswith(WATERMARK_PREFIX):
            found = watermark_decode(value)
            if found is None:
                self.fail("watermark")
            return found
        return super().to_internal_value(value), 0


class AdviceFeedFilterSerializer(AdviceFilterSerializer):
    changed_since = ChangedSinceField(
        required=False,
        help_text=(
            "Advice created or withdrawn after this moment, or after the `next_changed_since` watermark of an "
            "earlier answer, oldest change first (to keep a copy in step)."
        ),
    )
