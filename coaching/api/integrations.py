"""The API for keeping a gym's own systems in step: the member list, feedback on advice, webhook
endpoints (docs/integrating.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from .. import cds, selectors, services, webhooks
from ..models import WebhookEndpoint
from ..representations import datetime_text
from .schema import GYM_RESPONSES, NOT_FOUND
from .serializers import ErrorsSerializer, QuerySerializer, ReferralSerializer
from .views import DateTimeCursorPagination, GymAPIView

ADVICE_NOT_FOUND = "No advice with this id among your gym's advice."
ENDPOINT_NOT_FOUND = "No webhook endpoint with this id for your gym."


class MemberListItemSerializer(serializers.Serializer):
    member = serializers.CharField(help_text="The gym's id of the member.")
    first_event_at = serializers.DateTimeField(allow_null=True)
    last_event_at = serializers.DateTimeField(allow_null=True)
    referral = ReferralSerializer(allow_null=True, help_text="null, or the referral in force.")
    advice = serializers.IntegerField(help_text="How many pieces of current advice the member has.")


class MemberListFilterSerializer(QuerySerializer):
    under_referral = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: only members under referral; false: only others.",
    )


class MemberPagination(DateTimeCursorPagination):
    ordering = ("external_id", "id")
    list_name = "members"

    def position_valid(self, position: str) -> bool:
        return 0 < len(position) <= 100


def member_item(member: Any) -> dict[str, Any]:
    referral = selectors.member_referral(member=member)
    return {
        "member": member.external_id,
        "first_event_at": datetime_text(member.first_event_at) if member.first_event_at else None,
        "last_event_at": datetime_text(member.last_event_at) if member.last_event_at else None,
        "referral": ReferralSerializer(referral).data if referral else None,
        "advice": member.current_advice,
    }


class MemberListView(GymAPIView):
    pagination_class = MemberPagination

    @extend_schema(
        summary="The gym's members",
        parameters=[MemberListFilterSerializer],
        responses={200: MemberListItemSerializer(many=True), 400: ErrorsSerializer, **GYM_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        filters = self.query(MemberListFilterSerializer)
        members = selectors.member_list(gym=request.auth, under_referral=filters.get("under_referral"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(members, request, view=self)
        return paginator.get_paginated_response([member_item(member) for member in page])


class FeedbackInSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["accepted", "overridden"])
    override_reasons = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Codes of the override reasons (overridden only)."
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    outcome_at = serializers.DateTimeField(required=False, help_text="When; now if left out.")


class FeedbackSerializer(serializers.Serializer):
    advice = serializers.IntegerField()
    outcome = serializers.CharField()
    override_reasons = serializers.ListField(child=serializers.CharField())
    outcome_at = serializers.DateTimeField()
    created = serializers.BooleanField(help_text="false: the same feedback was stored before (stored once).")


class AdviceFeedbackView(GymAPIView):
    scopes = {"POST": "advice:read"}

    @extend_schema(
        summary="Say how a piece of advice landed: accepted, or overridden with reasons",
        request=FeedbackInSerializer,
        responses={
            200: FeedbackSerializer,
            201: FeedbackSerializer,
            400: ErrorsSerializer,
            404: NOT_FOUND,
            **GYM_RESPONSES,
        },
    )
    def post(self, request: Request, advice_id: int) -> Response:
        advice = selectors.advice_of_gym(gym=request.auth, advice_id=advice_id)
        if advice is None:
            raise exceptions.NotFound(ADVICE_NOT_FOUND)
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            raise exceptions.ValidationError({"outcome": [cds.MSG_OUTCOME]})
        parsed, errors = cds.feedback_entry_parse({k: v for k, v in body.items() if k != "card"}, path="api:")
        if errors:
            raise exceptions.ValidationError({key.removeprefix("api:"): value for key, value in errors.items()})
        stored, created = services.feedback_record(advice=advice, feedback=parsed, source="api")
        data = {
            "advice": advice.pk,
            "outcome": stored.outcome,
            "override_reasons": stored.reasons,
            "outcome_at": datetime_text(stored.outcome_at),
            "created": created,
        }
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema_field({"type": "array", "items": {"type": "string", "enum": list(webhooks.EVENT_TYPES)}, "minItems": 1})
class WebhookEventsField(serializers.Field):
    """The events an endpoint receives, refused in the words the admin uses too."""

    def to_internal_value(self, data: Any) -> list[str]:
        try:
            return webhooks.events_clean(data)
        except webhooks.EndpointRefused as refused:
            raise serializers.ValidationError(refused.errors["events"]) from None

    def to_representation(self, value: list[str]) -> list[str]:
        return value


class WebhookInSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    events = WebhookEventsField()
    description = serializers.CharField(required=False, allow_blank=True, max_length=200)


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    failing_since = serializers.DateTimeField(allow_null=True)
    disabled_at = serializers.DateTimeField(allow_null=True)


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="whsec_…: signs every delivery. Shown only this once.")


def endpoint_data(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    data = {
        "id": endpoint.pk,
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "created_at": datetime_text(endpoint.created_at),
        "failing_since": datetime_text(endpoint.failing_since) if endpoint.failing_since else None,
        "disabled_at": datetime_text(endpoint.disabled_at) if endpoint.disabled_at else None,
    }
    if secret is not None:
        data["secret"] = secret
    return data


class WebhookListView(GymAPIView):
    scopes = {"GET": "webhooks:manage", "POST": "webhooks:manage"}

    @extend_schema(
        summary="The gym's webhook endpoints", responses={200: WebhookSerializer(many=True), **GYM_RESPONSES}
    )
    def get(self, request: Request) -> Response:
        endpoints = WebhookEndpoint.objects.filter(gym=request.auth).order_by("id")
        return Response([endpoint_data(endpoint) for endpoint in endpoints])

    @extend_schema(
        summary="Register a webhook endpoint (its secret is shown only in this answer)",
        request=WebhookInSerializer,
        responses={201: WebhookWithSecretSerializer, 400: ErrorsSerializer, **GYM_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        given = WebhookInSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            endpoint, secret = webhooks.endpoint_register(gym=request.auth, **given.validated_data)
        except webhooks.EndpointRefused as refused:
            raise exceptions.ValidationError(refused.errors) from None
        return Response(endpoint_data(endpoint, secret), status=status.HTTP_201_CREATED)


class _EndpointView(GymAPIView):
    def endpoint(self, endpoint_id: int) -> WebhookEndpoint:
        endpoint = WebhookEndpoint.objects.filter(gym=self.request.auth, pk=endpoint_id).first()
        if endpoint is None:
            raise exceptions.NotFound(ENDPOINT_NOT_FOUND)
        return endpoint


class WebhookDetailView(_EndpointView):
    scopes = {"GET": "webhooks:manage", "DELETE": "webhooks:manage"}

    @extend_schema(summary="A webhook endpoint", responses={200: WebhookSerializer, 404: NOT_FOUND, **GYM_RESPONSES})
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(endpoint_data(self.endpoint(endpoint_id)))

    @extend_schema(summary="Remove a webhook endpoint", responses={204: None, 404: NOT_FOUND, **GYM_RESPONSES})
    def delete(self, request: Request, endpoint_id: int) -> Response:
        webhooks.endpoint_delete(endpoint=self.endpoint(endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookSecretView(_EndpointView):
    scopes = {"POST": "webhooks:manage"}

    @extend_schema(
        summary="A new secret for the endpoint; the old one still signs for 24 hours",
        request=None,
        responses={200: WebhookWithSecretSerializer, 404: NOT_FOUND, **GYM_RESPONSES},
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        endpoint = self.endpoint(endpoint_id)
        secret = webhooks.endpoint_secret_rotate(endpoint=endpoint)
        return Response(endpoint_data(endpoint, secret))
