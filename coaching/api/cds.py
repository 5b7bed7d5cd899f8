"""The CDS Hooks service over HTTP: discovery, the service, its feedback (``coaching.cds``).

Authenticated with the gym's key like the rest of the API (scope ``advice:read``); errors are
JSON with the reason, as CDS clients expect."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from .. import cds, selectors, services
from .schema import GYM_RESPONSES
from .views import GymAPIView, api_exception_handler

MSG_CARD_UNKNOWN = "No card with this uuid was given by this service to your gym."

CARD = inline_serializer(
    "CdsCard",
    {
        "uuid": serializers.UUIDField(),
        "summary": serializers.CharField(max_length=140),
        "indicator": serializers.ChoiceField(choices=["info", "warning", "critical"]),
        "detail": serializers.CharField(),
        "source": inline_serializer("CdsSource", {"label": serializers.CharField()}),
        "overrideReasons": serializers.ListField(child=serializers.DictField()),
    },
)
CDS_ERROR = inline_serializer(
    "CdsError", {"error": serializers.CharField(), "errors": serializers.DictField(required=False)}
)


def cds_error(errors: dict[str, list[str]], status_code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    first = next(iter(errors.values()))[0]
    return Response({"error": first, "errors": errors}, status=status_code)


def cds_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The API's handler, with a 400 (an unreadable body) in the service's error shape."""
    response = api_exception_handler(exc, context)
    if response is not None and response.status_code == 400 and "errors" in (response.data or {}):
        response.data = {"error": next(iter(response.data["errors"].values()))[0], "errors": response.data["errors"]}
    return response


class CdsView(GymAPIView):
    def get_exception_handler(self) -> Any:
        return cds_exception_handler


class DiscoveryView(CdsView):
    @extend_schema(
        summary="CDS Hooks discovery: the services this product offers",
        responses={
            200: inline_serializer("CdsDiscovery", {"services": serializers.ListField(child=serializers.DictField())}),
            **GYM_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        return Response(cds.discovery())


class ServiceView(CdsView):
    scopes = {"POST": "advice:read"}

    @extend_schema(
        summary="CDS Hooks: the member's current advice as cards, most urgent first",
        request=inline_serializer(
            "CdsRequest",
            {
                "hook": serializers.ChoiceField(choices=[cds.HOOK]),
                "hookInstance": serializers.UUIDField(),
                "context": inline_serializer(
                    "CdsContext",
                    {
                        "patientId": serializers.RegexField(
                            r"^[^\u0000-\u001f\u007f-\u009f]+$",
                            min_length=1,
                            max_length=100,
                            help_text="The gym's id of the member.",
                        ),
                        "userId": serializers.CharField(required=False),
                    },
                ),
            },
        ),
        responses={
            200: inline_serializer("CdsCards", {"cards": CARD.__class__(many=True)}),
            400: CDS_ERROR,
            **GYM_RESPONSES,
        },
    )
    def post(self, request: Request) -> Response:
        errors = cds.request_problems(request.data)
        if errors:
            return cds_error(errors)
        member = request.data["context"]["patientId"]
        return Response({"cards": cds.member_cards(gym=request.auth, member=member)})


class FeedbackView(CdsView):
    scopes = {"POST": "advice:read"}

    @extend_schema(
        summary="CDS Hooks feedback: cards accepted or overridden (with reasons)",
        request=inline_serializer(
            "CdsFeedback",
            {
                "feedback": serializers.ListField(
                    min_length=1,
                    child=inline_serializer(
                        "CdsFeedbackEntry",
                        {
                            "card": serializers.UUIDField(help_text="The uuid of a card this service gave."),
                            "outcome": serializers.ChoiceField(choices=["accepted", "overridden"]),
                            "overrideReason": serializers.DictField(required=False),
                            "outcomeTimestamp": serializers.DateTimeField(),
                        },
                    ),
                )
            },
        ),
        responses={200: None, 400: CDS_ERROR, 404: CDS_ERROR, **GYM_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        entries: Any = request.data.get("feedback") if isinstance(request.data, dict) else None
        if not isinstance(entries, list) or not entries:
            return cds_error({"feedback": [cds.MSG_FEEDBACK_LIST]})
        parsed, errors = [], {}
        for index, entry in enumerate(entries):
            one, problems = cds.feedback_entry_parse(entry, path=f"feedback.{index}.")
            errors.update(problems)
            parsed.append(one)
        if errors:
            return cds_error(errors)
        advice = selectors.advice_by_uuids(gym=request.auth, uuids=[one.card for one in parsed])
        unknown = {
            f"feedback.{i}.card": [MSG_CARD_UNKNOWN] for i, one in enumerate(parsed) if str(one.card) not in advice
        }
        if unknown:
            return cds_error(unknown, status.HTTP_404_NOT_FOUND)
        for one in parsed:
            services.feedback_record(advice=advice[str(one.card)], feedback=one, source="cds-hooks")
        return Response({})


def unlisted(view: type) -> type:
    """``view`` at another URL, left out of the OpenAPI document (which lists each operation once)."""
    methods = {name: extend_schema(exclude=True) for name in ("get", "post") if hasattr(view, name)}
    return extend_schema_view(**methods)(type(view.__name__, (view,), {}))
