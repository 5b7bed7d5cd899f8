"""The gym API: thin views over coaching services and selectors (docs/api.md)."""

from __future__ import annotations

import functools
import ipaddress
import logging
from base64 import b64decode, b64encode
from collections.abc import Callable
from datetime import UTC
from typing import Any
from urllib import parse

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView, exception_handler

from config.version import VERSION

from .. import metrics, selectors, services
from ..internal.db.database import (
    PROBLEM_WORDS,
    RETRY_AFTER,
    database_problem,
)
from ..logs import log_context_add
from ..models import Member
from .authentication import GymKeyAuthentication, HasScope, IsGym
from .parsers import LimitedJSONParser, body_limit, too_large
from .schema import GYM_RESPONSES, NOT_FOUND, DetailSerializer
from .serializers import (
    AdviceFeedFilterSerializer,
    AdviceSerializer,
    BatchItemSerializer,
    ErrorsSerializer,
    EventFilterSerializer,
    EventInSerializer,
    EventSerializer,
    MemberAdviceFilterSerializer,
    MemberSerializer,
    event_representation,
)
from .throttling import GymRateThrottle, rate_limit_headers

logger = logging.getLogger(__name__)

MAX_BATCH = 500
BATCH_TOO_LARGE = f"Send at most {MAX_BATCH} events in one request."
BODY_NOT_EVENTS = "Send one event as a JSON object, or a JSON array of events."
MEMBER_NOT_FOUND = "No such member."
URL_NOT_FOUND = "No such API endpoint. See /api/docs/ for the endpoints."
URL_MOVED = "API URLs end with a slash: use {location}"
CURSOR_INVALID = "Not a cursor of this list: follow the 'next' and 'previous' links as they are, or leave it out."
PAGE_SIZE_INVALID = "Must be a whole number from 1 to 500, given once."


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with 400s reshaped to the contract's ``{"errors": {path: [message]}}``."""
    problem = database_problem(exc)
    if problem is not None:
        # SQLite under a burst of concurrent writes, a PostgreSQL lock timeout, a lost connection
        # or a read-only database: a retry will succeed once it is back, and events are idempotent.
        logger.warning("Database %s: %s", problem, exc)
        return database_unavailable_response(problem)
    response = exception_handler(exc, context)
    if response is not None and response.status_code == 400:
        if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
            response.data = {"errors": errors_flat(exc.detail)}
        else:
            detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
            response.data = {"errors": {"non_field_errors": [str(detail)]}}
    return response


def errors_flat(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors (a list's item, a nested object) as the API's flat ``{"a.0.b": [...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            flat.update(errors_flat(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}"))
    elif isinstance(detail, list) and all(isinstance(item, str) for item in detail):
        flat[prefix or "non_field_errors"] = [str(item) for item in detail]
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if item:
                flat.update(errors_flat(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "non_field_errors"] = [str(detail)]
    return flat


def database_unavailable_response(problem: str) -> Response:
    """503 naming what is wrong with the database, with the Retry-After that fits it."""
    return Response(
        {"detail": PROBLEM_WORDS[problem]},
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER[problem])},
    )


class GymAPIView(APIView):
    authentication_classes = [GymKeyAuthentication]
    permission_classes = [IsGym, HasScope]
    # The scope a request needs, by method (``authentication.HasScope``); reading needs advice:read.
    scopes: dict[str, str] = {"GET": "advice:read", "HEAD": "advice:read"}
    throttle_classes = [GymRateThrottle]
    parser_classes = [LimitedJSONParser]

    def get_exception_handler(self) -> Callable[..., Response | None]:
        return api_exception_handler

    def perform_authentication(self, request: Request) -> None:
        super().perform_authentication(request)
        if request.auth is not None:
            log_context_add(gym=request.auth.pk)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > body_limit():
            raise too_large()

    def finalize_response(self, request: Request, response: HttpResponse, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in rate_limit_headers(request).items():
            response[name] = value
        return response

    def member_or_404(self, external_id: str) -> Member:
        # No stored id has a NUL (ingest refuses them), and PostgreSQL would fail on the query.
        member = None if "\x00" in external_id else selectors.member_get(gym=self.request.auth, external_id=external_id)
        if member is None:
            raise exceptions.NotFound(MEMBER_NOT_FOUND)
        return member

    def query(self, serializer_class: type) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def paginated(self, queryset: Any, serializer_class: type) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)


class DateTimeCursorPagination(CursorPagination):
    """Cursor pages over a list ordered by a date and time first, refusing a cursor it did not make.

    DRF answers 404 to a cursor it cannot decode, takes one without a position for the first page,
    and passes a forged position to the database unchecked, where it fails (500) or overflows. The
    list exists, so a bad cursor is the client's mistake: 400 naming ``cursor``.
    """

    page_size_query_param = "page_size"
    max_page_size = 500
    list_name = "list"  # written into each cursor, so that a cursor of another list is refused

    def get_page_size(self, request: Request) -> int:
        """The ``page_size`` asked for, 1 to 500 (400 naming it otherwise)."""
        given = request.query_params.getlist(self.page_size_query_param)
        if not given:
            return self.page_size
        try:
            size = int(given[-1])
        except ValueError:
            size = 0
        if len(given) > 1 or not 1 <= size <= self.max_page_size:
            raise exceptions.ValidationError({self.page_size_query_param: [PAGE_SIZE_INVALID]})
        return size

    def encode_cursor(self, cursor: Cursor) -> str:
        tokens = {"l": self.list_name}
        if cursor.offset != 0:
            tokens["o"] = str(cursor.offset)
        if cursor.reverse:
            tokens["r"] = "1"
        if cursor.position is not None:
            tokens["p"] = cursor.position
        encoded = b64encode(parse.urlencode(tokens).encode("ascii")).decode("ascii")
        return replace_query_param(self.base_url, self.cursor_query_param, encoded)

    def decode_cursor(self, request: Request) -> Cursor | None:
        given = request.query_params.getlist(self.cursor_query_param)
        if not given:
            return None
        cursor = self._cursor_parse(given[-1]) if len(given) == 1 else None
        if cursor is None:
            raise exceptions.ValidationError({self.cursor_query_param: [CURSOR_INVALID]})
        return cursor

    def _cursor_parse(self, encoded: str) -> Cursor | None:
        """The cursor ``encode_cursor`` wrote for this list: ``l`` (the list), ``o`` (offset), ``r``
        (reverse), ``p`` (position), each at most once."""
        try:
            tokens = parse.parse_qs(b64decode(encoded.encode("ascii")).decode("ascii"), strict_parsing=True)
        except ValueError:  # also binascii.Error and UnicodeError
            return None
        if not tokens or not set(tokens) <= {"l", "o", "r", "p"} or any(len(values) != 1 for values in tokens.values()):
            return None
        if tokens.get("l", [None])[0] != self.list_name:
            return None
        reverse, position = tokens.get("r", ["0"])[0], tokens.get("p", [None])[0]
        try:
            offset = int(tokens.get("o", ["0"])[0])
        except ValueError:  # also an int of over 4300 digits
            return None
        if offset < 0 or reverse not in ("0", "1"):
            return None
        if position is not None and not self.position_valid(position):
            return None
        return Cursor(offset=min(offset, self.offset_cutoff), reverse=reverse == "1", position=position)

    def position_valid(self, position: str) -> bool:
        """Whether a cursor's position is one this list writes (a moment, for lists by time)."""
        return _moment_valid(position)


def _moment_valid(position: str) -> bool:
    # The position is the str() of an aware datetime this class wrote into a cursor earlier.
    try:
        moment = parse_datetime(position)
    except ValueError:
        return False
    if moment is None or moment.tzinfo is None:
        return False
    try:
        moment.astimezone(UTC)  # the database compares in UTC; year 1 at +14:00 has no UTC
    except OverflowError:
        return False
    return True


class EventPagination(DateTimeCursorPagination):
    ordering = ("-occurred_at", "-id")
    list_name = "events"


class AdvicePagination(DateTimeCursorPagination):
    ordering = ("-created_at", "-id")
    list_name = "advice"


class AdviceChangesPagination(AdvicePagination):
    ordering = ("changed_at", "id")
    list_name = "advice-changes"


EVENT_OR_BATCH = PolymorphicProxySerializer(
    component_name="EventOrBatch",
    serializers=[EventInSerializer, EventInSerializer(many=True, max_length=MAX_BATCH)],
    resource_type_field_name=None,
    many=False,
)
EVENT_OR_BATCH_RESULT = PolymorphicProxySerializer(
    component_name="EventOrBatchResult",
    serializers=[EventSerializer, BatchItemSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)


class EventListCreateView(GymAPIView):
    pagination_class = EventPagination
    scopes = {**GymAPIView.scopes, "POST": "events:write"}

    @extend_schema(
        summary="Send one event or an array of up to 500",
        description=(
            "One event answers 201 (new), 200 (identical repeat, same body), 409 (same external_id, other "
            "content) or 400. An array answers 200 with one {status, event} or {status: 400, errors} per "
            "item, in order; over 500 items answers 400."
        ),
        request=EVENT_OR_BATCH,
        responses={
            201: EventSerializer,
            200: OpenApiResponse(
                EVENT_OR_BATCH_RESULT,
                "An identical repeat (the first answer's body); for an array, one result per item.",
            ),
            400: ErrorsSerializer,
            409: ErrorsSerializer,
            413: OpenApiResponse(DetailSerializer, "Body over 1 MiB"),
            415: OpenApiResponse(DetailSerializer, "Body not sent as application/json"),
            **GYM_RESPONSES,
        },
    )
    def post(self, request: Request) -> Response:
        gym = request.auth
        body = request.data
        if isinstance(body, list):
            if len(body) > MAX_BATCH:
                return Response({"errors": {"non_field_errors": [BATCH_TOO_LARGE]}}, status=status.HTTP_400_BAD_REQUEST)
            items = services.events_ingest_batch(gym=gym, payloads=body)
            return Response([_batch_item(item) for item in items], status=status.HTTP_200_OK)
        if not isinstance(body, dict):
            return Response({"errors": {"non_field_errors": [BODY_NOT_EVENTS]}}, status=status.HTTP_400_BAD_REQUEST)
        try:
            result = services.event_ingest(gym=gym, payload=body)
        except services.EventInvalid as invalid:
            return Response({"errors": invalid.errors}, status=status.HTTP_400_BAD_REQUEST)
        event_body = event_representation(result.event, result.advice, result.withdrawn)
        if result.status == 409:
            return Response(
                {"errors": {"external_id": [services.CONFLICT_MESSAGE]}, "event": event_body},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(event_body, status=result.status)

    @extend_schema(
        summary="The gym's events, newest first",
        parameters=[EventFilterSerializer],
        responses={200: EventSerializer(many=True), 400: ErrorsSerializer, **GYM_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        filters = self.query(EventFilterSerializer)
        events = selectors.event_list(gym=request.auth, **filters).prefetch_related(
            "advice__member", "advice__event", "advice__withdrawn_by", "withdrawals__member", "withdrawals__event"
        )
        return self.paginated(events, EventSerializer)


def _batch_item(item: services.BatchItem) -> dict[str, Any]:
    body: dict[str, Any] = {"status": item.status}
    if item.event is not None:
        body["event"] = event_representation(item.event, item.advice or [], item.withdrawn or [])
    if item.errors:
        body["errors"] = item.errors
    return body


class MemberView(GymAPIView):
    scopes = {**GymAPIView.scopes, "DELETE": "members:erase"}

    @extend_schema(
        summary="A member's profile and current figures",
        responses={200: MemberSerializer, 404: NOT_FOUND, **GYM_RESPONSES},
    )
    def get(self, request: Request, member: str) -> Response:
        summary = selectors.member_summary(member=self.member_or_404(member))
        return Response(MemberSerializer(summary).data)

    @extend_schema(
        summary="Erase a member with all their events and advice",
        responses={204: None, 404: NOT_FOUND, **GYM_RESPONSES},
    )
    def delete(self, request: Request, member: str) -> Response:
        services.member_erase(member=self.member_or_404(member))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberAdviceView(GymAPIView):
    pagination_class = AdvicePagination

    @extend_schema(
        summary="A member's advice, newest first (or only what to show them now)",
        parameters=[MemberAdviceFilterSerializer],
        responses={200: AdviceSerializer(many=True), 400: ErrorsSerializer, 404: NOT_FOUND, **GYM_RESPONSES},
    )
    def get(self, request: Request, member: str) -> Response:
        found = self.member_or_404(member)
        filters = self.query(MemberAdviceFilterSerializer)
        return self.paginated(selectors.advice_list_for_member(member=found, **filters), AdviceSerializer)


class AdviceFeedView(GymAPIView):
    pagination_class = AdvicePagination

    @extend_schema(
        summary="All advice for the gym's members, newest first (or every change since a moment)",
        description=(
            "Current advice, newest first; `withdrawn=true` adds withdrawn advice. With `changed_since`, the "
            "advice created or withdrawn after that moment, oldest change first, so that an integration can "
            "keep its own copy in step (including taking back a message it already showed)."
        ),
        parameters=[AdviceFeedFilterSerializer],
        responses={200: AdviceSerializer(many=True), 400: ErrorsSerializer, **GYM_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        filters = self.query(AdviceFeedFilterSerializer)
        changed_since = filters.pop("changed_since", None)
        if changed_since is not None:
            moment, after_id = changed_since
            self.pagination_class = AdviceChangesPagination
            changes = selectors.advice_changes_for_gym(gym=request.auth, changed_since=moment, after_id=after_id)
            paginator = self.pagination_class()
            page = paginator.paginate_queryset(changes, request, view=self)
            response = paginator.get_paginated_response(AdviceSerializer(page, many=True).data)
            last = page[-1] if page else None
            mark = (last.changed_at, last.pk) if last is not None else (moment, after_id)
            response.data["next_changed_since"] = selectors.watermark_encode(*mark)
            return response
        advice = selectors.advice_list_for_gym(gym=request.auth, **filters)
        return self.paginated(advice, AdviceSerializer)


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField(help_text='"ok", or "degraded" when something below is not ok')
    database = serializers.CharField(
        help_text='"ok" when the database takes writes; "read-only", or "error" when it does not answer or stays busy'
    )
    detail = serializers.CharField(
        required=False, help_text="What is wrong with the database, in words (only when it is not ok)."
    )
    ruleset_version = serializers.IntegerField(allow_null=True)
    version = serializers.CharField(help_text="The product's version.")
    pending_evaluations = serializers.IntegerField(
        required=False, help_text="Events waiting for an evaluation that failed (only when there are any)."
    )


class HealthView(APIView):
    """Liveness for operators: the database takes writes, and which rule set version is live."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []
    renderer_classes = [JSONRenderer]

    @extend_schema(
        summary="Health: the database takes writes, and the live rule set version",
        auth=[],
        responses={200: HealthSerializer, 503: HealthSerializer},
    )
    def get(self, request: Request) -> Response:
        health = selectors.health_check(version=VERSION)
        if health.ok:
            return Response(health.body)
        headers = {"Retry-After": str(health.retry_after)} if health.retry_after else None
        return Response(health.body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers=headers)


METRICS_FORBIDDEN = "Metrics are open to the operator's network only (METRICS_ALLOWED_IPS)."


@functools.cache
def _networks(allowed: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allowed)


def metrics_allowed(remote_addr: str) -> bool:
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(tuple(settings.METRICS_ALLOWED_IPS)))


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for the operator's network only (the peer's address, never a header)."""
    if not metrics_allowed(request.META.get("REMOTE_ADDR", "")):
        return JsonResponse({"detail": METRICS_FORBIDDEN}, status=403)
    body, content_type = metrics.metrics_exposition(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)


@csrf_exempt
def api_not_found(request: HttpRequest) -> HttpResponse:
    """JSON for any unknown URL under /api/, redirecting a URL that only lacks its trailing slash.

    Django's APPEND_SLASH cannot redirect a POST (it raises in debug); 308 keeps the method
    and body, so a client that follows redirects still reaches the view.
    """
    path = request.path_info
    if not path.endswith("/"):
        try:
            match = resolve(path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            location = request.get_full_path(force_append_slash=True)
            response = JsonResponse(
                {"detail": URL_MOVED.format(location=location)},
                status=301 if request.method in ("GET", "HEAD") else 308,
            )
            response["Location"] = location
            return response
    return JsonResponse({"detail": URL_NOT_FOUND}, status=404)
